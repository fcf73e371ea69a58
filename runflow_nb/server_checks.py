"""Server-side input checks, read from the model's spec: what the simulator and the emulator refuse.

These mirror :mod:`runflow_nb.request` (the client's checks; the prompt's rules are one shared
:mod:`runflow_nb._prompt_rules`) but read the wire strictly, as the
service does: ints must be JSON integers (``5.0``, ``"5"`` and booleans are refused), enums match
exactly, booleans are booleans, an absent or ``null`` optional field takes its default and unknown
keys are ignored. Decoding images and fetching videos is the emulator's part
(:mod:`runflow_nb.emulator.validation`); :func:`media_issues` checks what it decoded.

>>> from runflow_nb.specs import TEXT_TO_VIDEO
>>> clean, issues = validate_input({"prompt": "a horse", "duration": 5.0}, spec=TEXT_TO_VIDEO)
>>> [i.field for i in issues]
['duration']
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from ._prompt_rules import prompt_issues, tag_issues
from .errors import Issue
from .specs import REFERENCE_TO_VIDEO, ModelSpec

__all__ = ["media_issues", "validate_input"]

_MISSING = object()


def validate_input(raw: Mapping[str, Any], *, spec: ModelSpec = REFERENCE_TO_VIDEO,
                   n_images: int | None = None) -> tuple[dict[str, Any], list[Issue]]:
    """Check the scalar inputs and the prompt's ``characterN`` tags; return (clean input, issues).

    The rules are the spec's, read strictly: ints must be JSON integers (``5.0``, ``"5"`` and
    booleans are refused), enums match exactly, booleans are booleans. An absent or ``null``
    optional field takes its default; unknown keys are ignored. ``n_images`` is the length of the
    given ``image_urls`` list (None when there is none: the tag count is then not checked).
    Images themselves are checked by the caller (the emulator decodes them).
    """
    clean: dict[str, Any] = {}
    issues: list[Issue] = []
    for f in spec.fields:
        value = raw.get(f.name, _MISSING)
        if value is _MISSING or value is None:
            if f.required:
                issues.append(Issue(f.name, "is required", f"send {f.name}"))
            else:
                clean[f.name] = f.default
            continue
        if f.type is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = int(value)
        problem = _field_problem(f, value)
        if problem:
            issues.append(Issue(f.name, *problem))
        else:
            clean[f.name] = value
    prompt = clean.get("prompt")
    if isinstance(prompt, str):
        issues += prompt_issues(prompt, required="prompt" in spec.field_names and spec.field("prompt").required)
    if isinstance(raw.get("prompt"), str) and spec.tags is not None:  # the client's rule, read the same way
        issues += tag_issues(spec.tags, raw["prompt"], n_images=n_images)
    return clean, issues


def media_issues(spec: ModelSpec, images: Sequence[Any], video: Any = None) -> list[Issue]:
    """The spec's rules for decoded images (count, size, aspect) and the input video's presence."""
    issues: list[Issue] = []
    rules = spec.images
    if rules is None:
        if images:
            issues.append(Issue("images", f"{spec.variant} takes no images", "send none"))
    else:
        if not rules.min_count <= len(images) <= rules.max_count:
            allowed = "exactly one image" if rules.single else f"{rules.min_count}–{rules.max_count} images"
            issues.append(Issue(rules.field, f"got {len(images)} images; {allowed} allowed",
                                f"send {allowed}"))
        for i, img in enumerate(images):
            where = rules.field if rules.single else f"{rules.field}[{i}]"
            if not (hasattr(img, "size") and hasattr(img, "mode")):
                issues.append(Issue(where, f"a {type(img).__name__} is not a decoded image", "pass PIL images"))
                continue
            w, h = img.size
            if min(w, h) < rules.min_short_side:
                issues.append(Issue(where, f"is {w}×{h}; the shortest side must be at least "
                                           f"{rules.min_short_side} px", "use a larger image"))
            aspect = rules.aspect_problem(w, h)
            if aspect:
                issues.append(Issue(where, aspect, "crop it to a less extreme shape"))
    if spec.video is not None and video is None:
        issues.append(Issue(spec.video.field, "is required: the clip to edit", "send an MP4 or MOV URL"))
    return issues


def _field_problem(f: Any, value: Any) -> tuple[str, str] | None:
    """(message, fix) when ``value`` breaks the rules of field spec ``f``; None when it is fine."""
    if f.choices is not None:
        if isinstance(value, str) and value in f.choices:
            return None
        hint = f" (did you mean {value.lower()!r}?)" if isinstance(value, str) and value.lower() in f.choices else ""
        return f"{value!r} is not allowed{hint}", "use one of " + ", ".join(map(repr, f.choices))
    if f.type is bool:
        return None if isinstance(value, bool) else (f"must be true or false, got {value!r}", "send a boolean")
    if f.type is int:
        if type(value) is not int:
            return (f"must be a whole number, got {value!r}",
                    f"send an integer between {f.minimum} and {f.maximum}")
        if (f.minimum is not None and value < f.minimum) or (f.maximum is not None and value > f.maximum):
            return f"{value} is out of range", f"use {f.minimum}–{f.maximum}"
        return None
    if f.type is str:
        if not isinstance(value, str):
            return f"must be text, got {type(value).__name__}", "send a string"
        if f.max_length is not None and len(value) > f.max_length:
            return (f"is {len(value)} characters; the limit is {f.max_length}",
                    f"shorten it by {len(value) - f.max_length} characters")
    return None
