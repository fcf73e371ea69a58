"""Server-side checks of a run's input, read from the model's spec (:mod:`runflow_nb.specs`).

Every problem is gathered (never just the first) and answered as one 422 ``VALIDATION_ERROR``
listing ``{field, message, fix}`` per problem. Scalar inputs are checked by
:func:`runflow_nb.simulator.validate_input` (the same rules the client applies); the model's image
inputs are fetched and decoded here by :func:`.images.resolve_images`. A model with other kinds
of input adds its checks to :func:`check_input`, reading its rules from its spec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from ..errors import Issue
from ..simulator import validate_input
from ..specs import ModelSpec
from .images import resolve_images

if TYPE_CHECKING:
    from PIL import Image

    from .base import EmulatorBase

__all__ = ["check_envelope", "check_input"]


def check_envelope(body: dict[str, Any]) -> list[Issue]:
    """Problems with a create body's fields beside ``input`` (``client_ref``, ``metadata``, ``callback_url``)."""
    issues: list[Issue] = []
    client_ref, metadata, callback_url = body.get("client_ref"), body.get("metadata"), body.get("callback_url")
    if client_ref is not None and (not isinstance(client_ref, str) or len(client_ref) > 255):
        issues.append(Issue("client_ref", "must be a string of at most 255 characters",
                            "use a shorter reference"))
    if metadata is not None and not isinstance(metadata, dict):
        issues.append(Issue("metadata", "must be an object", "send a JSON object"))
    if callback_url is not None and not (isinstance(callback_url, str)
                                         and callback_url.lower().startswith(("http://", "https://"))):
        issues.append(Issue("callback_url", "must be an http(s) URL", "send a full URL or leave it out"))
    return issues


def check_input(emu: EmulatorBase, spec: ModelSpec, inp: dict[str, Any], request: httpx.Request
                ) -> tuple[list[Image.Image], list[Issue], list[str]]:
    """Check ``inp`` against ``spec``: ``(decoded images, problems, notes for the run's logs)``."""
    rules = spec.images
    urls = inp.get(rules.field)
    _, issues = validate_input(inp, spec=spec, n_images=len(urls) if isinstance(urls, list) else None)
    issues = list(issues)
    images: list[Image.Image] = []
    notes: list[str] = []
    if urls is None:
        issues.append(Issue(rules.field, "is required", "send 1–9 image URLs"))
    elif not isinstance(urls, list):
        issues.append(Issue(rules.field, "must be a list of image URLs", "send a JSON array"))
    else:
        if not rules.min_count <= len(urls) <= rules.max_count:
            issues.append(Issue(rules.field, f"got {len(urls)} images; {rules.min_count}–{rules.max_count} "
                                             "are allowed", "send between 1 and 9 images"))
        images, img_issues, notes = resolve_images(emu, urls[: rules.max_count], request, spec)
        issues += img_issues
    return images, issues, notes
