"""Server-side checks of a run's input, read from the model's spec (:mod:`runflow_nb.specs`).

Every problem is gathered (never just the first) and answered as one 422 ``VALIDATION_ERROR``
listing ``{field, message, fix}`` per problem. Scalar inputs are checked by
:func:`runflow_nb.server_checks.validate_input` (the same rules the client applies); the model's image
inputs are fetched and decoded here by :func:`.images.resolve_images`, an input video (video-edit)
by :func:`.videos.resolve_video`; both read their rules from the spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import Issue
from ..server_checks import validate_input
from ..specs import ModelSpec
from .images import resolve_images
from .videos import resolve_video

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
                ) -> tuple[list[Image.Image], list[Issue], list[str], Path | None]:
    """Check ``inp`` against ``spec``: ``(decoded images, problems, notes for the run's logs, input video)``.

    Images are a list (``image_urls``, ``reference_image_urls``) or one URL (``image_url``), as the
    spec says; a model with an input video (video-edit) gets it fetched and checked here too.
    """
    rules = spec.images
    urls: Any = inp.get(rules.field) if spec.has_images else None
    n_images = (1 if isinstance(urls, str) else len(urls) if isinstance(urls, list) else
                0 if urls is None and not rules.min_count else None)
    _, issues = validate_input(inp, spec=spec, n_images=n_images)
    issues = list(issues)
    images: list[Image.Image] = []
    notes: list[str] = []
    if spec.has_images:
        count = "one image URL" if rules.single else f"{rules.min_count}–{rules.max_count} image URLs"
        if urls is None:
            if rules.min_count:
                issues.append(Issue(rules.field, "is required", f"send {count}"))
            urls = []
        elif rules.single:
            if not isinstance(urls, str):
                issues.append(Issue(rules.field, "must be one image URL (a string)", "send a single URL"))
                urls = []
            else:
                urls = [urls]
        elif not isinstance(urls, list):
            issues.append(Issue(rules.field, "must be a list of image URLs", "send a JSON array"))
            urls = []
        elif not rules.min_count <= len(urls) <= rules.max_count:
            issues.append(Issue(rules.field, f"got {len(urls)} images; {rules.min_count}–{rules.max_count} "
                                             "are allowed", f"send {count}"))
        images, img_issues, notes = resolve_images(emu, urls[: rules.max_count], request, spec)
        issues += img_issues
    video: Path | None = None
    if spec.video is not None:
        video, video_issues = resolve_video(emu, inp.get(spec.video.field), request, spec)
        issues += video_issues
    return images, issues, notes, video
