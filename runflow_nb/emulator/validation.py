"""Server-side checks of a run's input, read from the model page this server serves (:mod:`.catalog`,
or a page set through ``model_pages``), never from the client's rules.

Every problem is gathered (never just the first) and answered as one 422 ``VALIDATION_ERROR``
listing ``{field, message, fix}`` per problem. Scalar inputs and the prompt's image tags are
checked by :func:`.rules.scalar_issues`; the model's image inputs are fetched and decoded by
:func:`.images.resolve_images`, an input video (video-edit) by :func:`.videos.resolve_video`;
all read their rules from the page's ``inputs[]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import Issue
from .catalog import PAGES
from .images import resolve_images
from .rules import PageRules, page_rules, scalar_issues
from .videos import resolve_video
from .wire import HTTPError

if TYPE_CHECKING:
    from PIL import Image

    from .base import EmulatorBase

__all__ = ["check_envelope", "check_input", "served_rules"]


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


def served_rules(emu: EmulatorBase, model: str) -> PageRules:
    """The rules of the model page this server serves for ``model`` (a page set through
    ``model_pages`` replaces its own; media rules it lacks come from this server's own page)."""
    own = PAGES.get(model)
    page = emu.model_pages.get(model) or own
    if page is None:
        raise HTTPError(404, "MODEL_NOT_FOUND", f"no model {model!r}")
    return page_rules(page, fallback=own)


def check_input(emu: EmulatorBase, model: str, inp: dict[str, Any], request: httpx.Request
                ) -> tuple[list[Image.Image], list[Issue], list[str], Path | None]:
    """Check ``inp`` against the model's page: ``(decoded images, problems, notes for the run's
    logs, input video)``.

    Images are a list (``image_urls``, ``reference_image_urls``) or one URL (``image_url``), as the
    page's ``variable_type_code`` says; a model with an input video (video-edit) gets it fetched and
    checked here too.
    """
    rules = served_rules(emu, model)
    image = rules.images
    urls: Any = inp.get(image.field) if image is not None else None
    n_images = (1 if isinstance(urls, str) else len(urls) if isinstance(urls, list) else
                0 if urls is None and image is not None and not image.min_count else None)
    issues = scalar_issues(rules, inp, n_images=n_images)
    images: list[Image.Image] = []
    notes: list[str] = []
    if image is not None:
        count = "one image URL" if image.single else f"{image.min_count}–{image.max_count} image URLs"
        if urls is None:
            if image.min_count:
                issues.append(Issue(image.field, "is required", f"send {count}"))
            urls = []
        elif image.single:
            if not isinstance(urls, str):
                issues.append(Issue(image.field, "must be one image URL (a string)", "send a single URL"))
                urls = []
            else:
                urls = [urls]
        elif not isinstance(urls, list):
            issues.append(Issue(image.field, "must be a list of image URLs", "send a JSON array"))
            urls = []
        elif not image.min_count <= len(urls) <= image.max_count:
            issues.append(Issue(image.field, f"got {len(urls)} images; {image.min_count}–{image.max_count} "
                                             "are allowed", f"send {count}"))
        images, img_issues, notes = resolve_images(emu, urls[: image.max_count], request, image)
        issues += img_issues
    video: Path | None = None
    if rules.video is not None:
        video, video_issues = resolve_video(emu, inp.get(rules.video.field), request, rules.video)
        issues += video_issues
    return images, issues, notes, video
