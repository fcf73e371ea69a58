"""The model pages ``GET /v1/models/{owner}/{slug}``, written from the API page's tables.

These pages are this server's own statement of each model's inputs; :mod:`.rules` validates every
create from them (never from the client's :mod:`runflow_nb.specs`), so a wrong limit on the client's
side shows as a 422 here. A test checks that the two agree.

``inputs[]`` uses the documented fields (``name``, ``variable_type_code``, ``is_required``,
``default_value``, ``validator_code``, ``validator_attrs``, ...). The shapes of ``validator_code`` /
``validator_attrs`` are not documented; this server uses ``range`` (``{min, max}``), ``enum``
(``{options}``), ``max_length`` (``{max}``, with ``image_tags: {prefix, first, last}`` on a prompt
that names images), ``list`` (images: ``{min_items, max_items, formats, min_short_side, max_bytes,
min_aspect, max_aspect}``) and ``video`` (``{formats, min_duration, max_duration, max_bytes}``).

Readings of the table, where it is terse: "Max 10 MB each" is 10,000,000 bytes; image-to-video
states no byte limit, so the upload limit (52,428,800 bytes) applies; video-edit's "≤ 100 MB" is
100,000,000 bytes; video-edit's reference images are not restated, so reference-to-video's formats
apply with no minimum size and the 10 MB limit.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["PAGES", "model_detail"]

_UPLOAD_MAX = 52_428_800  # the asset-upload flow's documented size_bytes maximum


def _entry(name: str, type_code: str, *, required: bool = False, default: Any = None, validator: str | None = None,
           attrs: dict[str, Any] | None = None, description: str = "") -> dict[str, Any]:
    return {"name": name, "display_name": name.replace("_", " ").capitalize(), "variable_type_code": type_code,
            "is_required": required, "default_value": default, "validator_code": validator,
            "validator_attrs": attrs or {}, "description": description}


def _prompt(*, required: bool, tags: tuple[str, int, int] | None, description: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {"max": 2500}
    if tags is not None:
        attrs["image_tags"] = {"prefix": tags[0], "first": tags[1], "last": tags[2]}
    return _entry("prompt", "string", required=required, validator="max_length", attrs=attrs, description=description)


_ASPECT = _entry("aspect_ratio", "enum", default="16:9", validator="enum",
                 attrs={"options": ["16:9", "9:16", "1:1", "4:3", "3:4"]}, description="Frame shape of the output.")
_DURATION = _entry("duration", "integer", default=5, validator="range", attrs={"min": 3, "max": 15},
                   description="Length of the clip in whole seconds.")
_RESOLUTION = _entry("resolution", "enum", default="1080p", validator="enum", attrs={"options": ["720p", "1080p"]},
                     description="Short side of the output.")
_SEED = _entry("seed", "integer", validator="range", attrs={"min": 0, "max": 2147483647},
               description="Random seed; the same seed and inputs reproduce a clip.")
_REF_FORMATS = ["JPEG", "PNG", "WEBP"]  # "JPEG/JPG/PNG/WEBP"


def _page(model: str, price: tuple[float, float], inputs: list[dict[str, Any]]) -> dict[str, Any]:
    owner, _, slug = model.partition("/")
    inputs = copy.deepcopy(inputs)  # the shared entries get a sort order per page
    for i, entry in enumerate(inputs):
        entry["sort_order"] = i
    return {"id": model, "owner": owner, "slug": slug, "name": slug.replace("/", " ").replace("-", " "),
            "status_code": "active",
            "pricing_note": f"${price[0]:.2f}/s at 720p, ${price[1]:.2f}/s at 1080p; billed per second of output",
            "inputs": inputs}


PAGES: dict[str, dict[str, Any]] = {page["id"]: page for page in (
    _page("alibaba/happy-horse/reference-to-video", (0.14, 0.28), [
        _prompt(required=True, tags=("character", 1, 9),
                description="What happens in the clip; character1…character9 name the images in order."),
        _entry("image_urls", "image_list", required=True, validator="list",
               attrs={"min_items": 1, "max_items": 9, "formats": _REF_FORMATS, "min_short_side": 400,
                      "max_bytes": 10_000_000}, description="Reference images"),
        _ASPECT, _DURATION, _RESOLUTION, _SEED,
        _entry("enable_safety_checker", "boolean", default=True, description="Let the provider flag unsafe output."),
    ]),
    _page("alibaba/happy-horse/text-to-video", (0.14, 0.28), [
        _prompt(required=True, tags=None, description="What happens in the clip."),
        _ASPECT, _DURATION, _RESOLUTION, _SEED,
    ]),
    _page("alibaba/happy-horse/image-to-video", (0.14, 0.28), [
        _prompt(required=False, tags=None, description="Optional: how the image should move."),
        _entry("image_url", "image", required=True, validator="list",
               attrs={"min_items": 1, "max_items": 1, "formats": ["JPEG", "PNG", "BMP", "WEBP"], "min_short_side": 300,
                      "max_bytes": _UPLOAD_MAX, "min_aspect": 0.4, "max_aspect": 2.5}, description="The image"),
        _DURATION, _RESOLUTION, _SEED,
    ]),
    _page("alibaba/happy-horse/video-edit", (0.28, 0.56), [
        _prompt(required=True, tags=("@Image", 1, 5),
                description="The edit to make; @Image1…@Image5 name the reference images."),
        _entry("video_url", "video", required=True, validator="video",
               attrs={"formats": ["MP4", "MOV"], "min_duration": 3, "max_duration": 60, "max_bytes": 100_000_000},
               description="The clip to edit"),
        _entry("reference_image_urls", "image_list", validator="list",
               attrs={"min_items": 0, "max_items": 5, "formats": _REF_FORMATS, "min_short_side": 1,
                      "max_bytes": 10_000_000}, description="Reference images"),
        _entry("audio_setting", "enum", default="auto", validator="enum", attrs={"options": ["auto", "origin"]},
               description="auto: new sound for the edited clip; origin: keep the input video's audio."),
        _RESOLUTION, _SEED,
    ]),
)}


def model_detail(model: Any) -> dict[str, Any]:
    """The model page of ``model`` (a model id, or anything with a ``.model`` id) as the catalogue
    serves it: a copy, so callers may change it."""
    key = model if isinstance(model, str) else model.model
    return copy.deepcopy(PAGES[key])
