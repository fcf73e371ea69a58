"""What a create's input must satisfy, read from the model page this server serves (``inputs[]``).

:func:`page_rules` turns a page (:mod:`.catalog`, or one set through ``model_pages``) into
:class:`PageRules`: the scalar inputs with their ``variable_type_code`` / ``validator_code`` /
``validator_attrs``, the image input, the input video and the prompt's image tags.
:func:`scalar_issues` checks the scalar inputs and the tags; :mod:`.images` and :mod:`.videos`
check media under :class:`ImageRule` / :class:`VideoRule`. Nothing here reads the client's rules.

The wire is read strictly: an ``integer`` must be a JSON integer (``5.0``, ``"5"`` and booleans are
refused), an ``enum`` matches exactly, a ``boolean`` is a boolean; an absent or ``null`` optional
input takes its default; unknown keys are ignored. A required prompt must say something.
Image tags (``character1``…, ``@Image1``…) are the prefix and ASCII digits with no leading zero;
a look-alike (``character01``, ``character٣``) is refused, and a tag must name an image that is given.

>>> from .catalog import model_detail
>>> rules = page_rules(model_detail("alibaba/happy-horse/text-to-video"))
>>> [i.field for i in scalar_issues(rules, {"prompt": "a horse", "duration": 5.0}, n_images=None)]
['duration']
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import Issue

__all__ = ["ImageRule", "PageRules", "TagRule", "VideoRule", "page_rules", "scalar_issues"]

#: Decoded pixels beyond this are refused as a decompression bomb (below Pillow's own threshold).
MAX_PIXELS = 8192 * 8192
_MEDIA_TYPES = ("image", "image_list", "video")
_UNSET = object()


@dataclass(frozen=True)
class ImageRule:
    """A model's image input: one URL (``single``) or a list, and what each image must be."""

    field: str
    single: bool
    required: bool
    min_count: int
    max_count: int
    formats: tuple[str, ...]
    min_short_side: int
    max_bytes: int
    min_aspect: float | None = None
    max_aspect: float | None = None
    max_pixels: int = MAX_PIXELS

    @property
    def label(self) -> str:
        return "image" if self.single else "reference image"

    def size_issue_text(self, size: int) -> str:
        return f"is {size:,} bytes; the limit is {self.max_bytes / 1e6:g} MB ({self.max_bytes:,} bytes)"

    def aspect_problem(self, width: int, height: int) -> str | None:
        """Why a ``width``×``height`` image breaks the aspect bounds (None when it does not)."""
        if width <= 0 or height <= 0:
            return f"is {width}×{height}: an image with no pixels"
        ratio, lo, hi = width / height, self.min_aspect, self.max_aspect
        if (lo is not None and ratio < lo - 1e-9) or (hi is not None and ratio > hi + 1e-9):
            return (f"is {width}×{height} (aspect {_ratio(ratio)}); the aspect ratio must be between "
                    f"{_ratio(lo or 0)} and {_ratio(hi or math.inf)}")
        return None


@dataclass(frozen=True)
class VideoRule:
    """A model's input video (``video_url``)."""

    field: str
    formats: tuple[str, ...]
    min_duration_s: float
    max_duration_s: float
    max_bytes: int


@dataclass(frozen=True)
class TagRule:
    """Prompt words that name the input images in order: ``prefix`` + ``first``…``last``."""

    prefix: str
    first: int
    last: int

    def name(self, n: int) -> str:
        return f"{self.prefix}{n}"


@dataclass(frozen=True)
class PageRules:
    """Everything :func:`page_rules` reads from one model page."""

    model: str
    scalars: tuple[Mapping[str, Any], ...]
    images: ImageRule | None
    video: VideoRule | None
    tags: TagRule | None


def _ratio(r: float) -> str:
    if math.isinf(r):
        return "any"
    return f"{r:g}:1" if r >= 1 else f"1:{1 / r:g}"


def _attrs(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    attrs = entry.get("validator_attrs")
    return attrs if isinstance(attrs, Mapping) else {}


def _number(attrs: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value = attrs.get(key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def page_rules(page: Mapping[str, Any], *, fallback: Mapping[str, Any] | None = None) -> PageRules:
    """The rules of ``page``; media rules it lacks are taken from ``fallback`` (this server's own page)."""
    inputs = [e for e in page.get("inputs") or [] if isinstance(e, Mapping) and isinstance(e.get("name"), str)]
    scalars = tuple(e for e in inputs if e.get("variable_type_code") not in _MEDIA_TYPES)
    images = video = None
    for entry in inputs:
        attrs, kind = _attrs(entry), entry.get("variable_type_code")
        if kind in ("image", "image_list") and images is None:
            single = kind == "image"
            images = ImageRule(
                field=entry["name"], single=single, required=bool(entry.get("is_required")),
                min_count=int(_number(attrs, "min_items", 1 if entry.get("is_required") else 0)),
                max_count=int(_number(attrs, "max_items", 1 if single else 9)),
                formats=tuple(str(f).upper() for f in attrs.get("formats") or ("JPEG", "PNG", "WEBP")),
                min_short_side=int(_number(attrs, "min_short_side", 1)),
                max_bytes=int(_number(attrs, "max_bytes", 52_428_800)),
                min_aspect=_number(attrs, "min_aspect"), max_aspect=_number(attrs, "max_aspect"))
        elif kind == "video" and video is None:
            video = VideoRule(field=entry["name"], formats=tuple(str(f).upper() for f in attrs.get("formats") or ()),
                              min_duration_s=float(_number(attrs, "min_duration", 0)),
                              max_duration_s=float(_number(attrs, "max_duration", math.inf)),
                              max_bytes=int(_number(attrs, "max_bytes", 100_000_000)))
    tags = None
    prompt = next((e for e in scalars if e["name"] == "prompt"), None)
    spec = _attrs(prompt).get("image_tags") if prompt is not None else None
    if isinstance(spec, Mapping) and isinstance(spec.get("prefix"), str):
        tags = TagRule(spec["prefix"], int(_number(spec, "first", 1)), int(_number(spec, "last", 9)))
    if fallback is not None:
        own = page_rules(fallback)
        images = images or own.images
        video = video or own.video
        tags = tags or own.tags
    return PageRules(model=str(page.get("id") or ""), scalars=scalars, images=images, video=video, tags=tags)


def scalar_issues(rules: PageRules, inp: Mapping[str, Any], *, n_images: int | None) -> list[Issue]:
    """Problems with the scalar inputs and the prompt's tags. ``n_images`` is the number of images
    given (None when the image input is missing or malformed: tags are then not counted)."""
    issues: list[Issue] = []
    for entry in rules.scalars:
        name = entry["name"]
        value = inp.get(name, _UNSET)
        if value is _UNSET or value is None:
            if entry.get("is_required"):
                issues.append(Issue(name, "is required", f"send {name}"))
            continue
        problem = _problem(entry, value)
        if problem:
            issues.append(Issue(name, *problem))
        elif name == "prompt" and isinstance(value, str):
            issues += _prompt_problems(value, required=bool(entry.get("is_required")))
    prompt = inp.get("prompt")
    if rules.tags is not None and isinstance(prompt, str):
        issues += _tag_problems(rules.tags, prompt, n_images)
    return issues


def _problem(entry: Mapping[str, Any], value: Any) -> tuple[str, str] | None:
    """(message, fix) when ``value`` breaks the page's rule for ``entry``; None when it is fine."""
    kind, attrs, validator = entry.get("variable_type_code"), _attrs(entry), entry.get("validator_code")
    options = attrs.get("options") if validator == "enum" or kind == "enum" else None
    if isinstance(options, list):
        if isinstance(value, str) and value in options:
            return None
        hint = f" (did you mean {value.lower()!r}?)" if isinstance(value, str) and value.lower() in options else ""
        return f"{value!r} is not allowed{hint}", "use one of " + ", ".join(map(repr, options))
    if kind == "boolean":
        return None if isinstance(value, bool) else (f"must be true or false, got {value!r}", "send a boolean")
    if kind in ("integer", "number"):
        ok = type(value) is int or (kind == "number" and type(value) is float and math.isfinite(value))
        lo, hi = (_number(attrs, "min"), _number(attrs, "max")) if validator == "range" else (None, None)
        if not ok:
            return (f"must be a {'whole ' if kind == 'integer' else ''}number, got {value!r}",
                    f"send {'an integer' if kind == 'integer' else 'a number'}"
                    + (f" between {lo} and {hi}" if lo is not None and hi is not None else ""))
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            return f"{value} is out of range", f"use {lo}–{hi}"
        return None
    if kind == "string":
        if not isinstance(value, str):
            return f"must be text, got {type(value).__name__}", "send a string"
        limit = _number(attrs, "max") if validator == "max_length" else None
        if limit is not None and len(value) > limit:
            return f"is {len(value)} characters; the limit is {limit}", f"shorten it by {len(value) - limit} characters"
    return None


def _prompt_problems(prompt: str, *, required: bool) -> list[Issue]:
    issues = []
    if required and not prompt.strip():
        issues.append(Issue("prompt", "is empty", "describe the clip"))
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError:
        issues.append(Issue("prompt", "contains characters that are not valid UTF-8 (lone surrogates)",
                            "remove or replace them"))
    return issues


def _tag_problems(tag: TagRule, prompt: str, n_images: int | None) -> list[Issue]:
    """Look-alikes always; with ``n_images`` known, tags out of range or naming a missing image."""
    prefix = re.escape(tag.prefix)
    before = r"(?<![A-Za-z0-9_])" if re.match(r"\w", tag.prefix) else ""
    ascii_tags = re.compile(rf"{before}{prefix}([0-9]+)(?![A-Za-z0-9_])", re.IGNORECASE)
    any_digits = re.compile(rf"(?<!\w){prefix}(\d+)(?!\w)", re.IGNORECASE)
    bad = {m[0] for m in ascii_tags.finditer(prompt) if m[1].startswith("0")}
    bad |= {m[0] for m in any_digits.finditer(prompt) if not m[1].isascii() or m[1].startswith("0")}
    first, last = tag.name(tag.first), tag.name(tag.last)
    issues = [Issue("prompt", f"{word!r} is not an image tag: tags are {first} … {last} in plain digits, "
                              "without a leading zero", f"write e.g. {first}") for word in sorted(bad)]
    if n_images is None:
        return issues
    for n in sorted({int(m[1]) for m in ascii_tags.finditer(prompt) if not m[1].startswith("0")}):
        if not tag.first <= n <= tag.last:
            issues.append(Issue("prompt", f"names {tag.name(n)}; tags run from {first} to {last}",
                                "renumber the tag to match an image"))
        elif n > n_images:
            issues.append(Issue("prompt", f"names {tag.name(n)} but only {n_images} image"
                                          f"{'s are' if n_images != 1 else ' is'} given",
                                "add a reference image or change the tag"))
    return issues
