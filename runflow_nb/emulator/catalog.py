"""The model page ``GET /v1/models/{owner}/{slug}``, generated from the model's spec.

``inputs[]`` lists every input as the documented fields (``name``, ``variable_type_code``,
``is_required``, ``default_value``, ``validator_code``, ``validator_attrs``, ...). The shapes of
``validator_code``/``validator_attrs`` are not documented; this server uses ``range``
(``{min, max}``), ``enum`` (``{options}``), ``max_length`` (``{max}``) and ``list``
(``{min_items, max_items, formats, min_short_side, max_bytes}``).
"""

from __future__ import annotations

from typing import Any

from ..specs import ModelSpec

__all__ = ["model_detail"]

_TYPES = {str: "string", int: "integer", bool: "boolean", float: "number"}


def _field_entry(f: Any, order: int) -> dict[str, Any]:
    validator: str | None = None
    attrs: dict[str, Any] = {}
    if f.choices:
        validator, attrs = "enum", {"options": list(f.choices)}
    elif f.minimum is not None or f.maximum is not None:
        validator, attrs = "range", {"min": f.minimum, "max": f.maximum}
    elif f.max_length is not None:
        validator, attrs = "max_length", {"max": f.max_length}
    return {"name": f.name, "display_name": f.name.replace("_", " ").capitalize(),
            "variable_type_code": "enum" if f.choices else _TYPES.get(f.type, "string"),
            "is_required": bool(f.required), "default_value": f.default, "validator_code": validator,
            "validator_attrs": attrs, "description": f.help, "sort_order": order}


def model_detail(spec: ModelSpec) -> dict[str, Any]:
    """The model page of ``spec`` as the catalogue serves it."""
    owner, _, slug = spec.model.partition("/")
    inputs = [_field_entry(f, i) for i, f in enumerate(spec.fields)]
    rules = spec.images
    media: list[dict[str, Any]] = []
    if spec.has_images:
        media.append({
            "name": rules.field, "display_name": rules.label.capitalize(),
            "variable_type_code": "image" if rules.single else "image_list",
            "is_required": rules.min_count > 0, "default_value": None, "validator_code": "list",
            "validator_attrs": {"min_items": rules.min_count, "max_items": rules.max_count,
                                "formats": list(rules.formats), "min_short_side": rules.min_short_side,
                                "max_bytes": rules.max_bytes},
            "description": f"{rules.label}s", "sort_order": 0})
    if spec.video is not None:
        v = spec.video
        media.append({
            "name": v.field, "display_name": "Video", "variable_type_code": "video", "is_required": True,
            "default_value": None, "validator_code": "video",
            "validator_attrs": {"formats": list(v.formats), "min_duration": v.min_duration_s,
                                "max_duration": v.max_duration_s, "max_bytes": v.max_bytes},
            "description": "the clip to edit", "sort_order": 0})
    inputs[1:1] = media
    for i, entry in enumerate(inputs):
        entry["sort_order"] = i
    prices = ", ".join(f"${p:.2f}/s at {r}" for r, p in spec.price_per_second.items())
    return {"id": spec.model, "owner": owner, "slug": slug, "name": slug.replace("/", " ").replace("-", " "),
            "status_code": "active", "pricing_note": f"{prices}; billed per second of output",
            "inputs": inputs}
