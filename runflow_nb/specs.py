"""Models described as data: inputs, limits, defaults, prices and output sizes.

Everything that validates, prices or renders a request (the request model, the emulator's
server-side checks, the notebook form, cross-model plans) reads its rules from a
:class:`ModelSpec`, so a limit is written once. The Happy Horse family is four specs:
reference-to-video (r2v), text-to-video (t2v), image-to-video (i2v) and video-edit.

>>> spec = REFERENCE_TO_VIDEO
>>> spec.price_usd(duration=5, resolution="1080p")
1.4
>>> spec.output_size("9:16", "720p")
(720, 1280)
>>> get_spec("t2v").model, get_spec("video-edit").price_usd(duration=10, resolution="720p")
('alibaba/happy-horse/text-to-video', 2.8)

Rules the page documents are marked as such; where it is silent (a sibling's limit that is not
restated), the spec stays permissive rather than refuse input the service may take, and says so.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FAMILY",
    "IMAGE_TO_VIDEO",
    "REFERENCE_TO_VIDEO",
    "SPECS",
    "TEXT_TO_VIDEO",
    "VIDEO_EDIT",
    "FieldSpec",
    "ImageRules",
    "ModelSpec",
    "TagRules",
    "VideoRules",
    "get_spec",
]

# Every model-local upload goes through the asset-upload flow, whose documented cap is 50 MiB.
UPLOAD_MAX_BYTES = 52_428_800


@dataclass(frozen=True)
class FieldSpec:
    """One scalar input of a model: its type, bounds or choices, default and help text."""

    name: str
    type: type
    default: Any = None
    required: bool = False
    choices: tuple[Any, ...] | None = None
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    help: str = ""


@dataclass(frozen=True)
class ImageRules:
    """Rules for a model's input images: a list (``image_urls``) or one URL (``single``)."""

    field: str = "image_urls"
    min_count: int = 1
    max_count: int = 9
    formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP")  # Pillow format names; .jpg is JPEG
    min_short_side: int = 400
    # The docs say "Max 10 MB each"; read as decimal megabytes (10,000,000 bytes), the stricter of
    # the two readings, so nothing the server might refuse as "over 10 MB" is ever sent.
    max_bytes: int = 10_000_000
    # Pixel cap against decompression bombs: far above any real reference (8192 × 8192 = 64 MP) and
    # below Pillow's own bomb threshold (≈ 89 MP), so this number is the cap actually applied.
    max_pixels: int = 8192 * 8192
    single: bool = False  # the field is one URL string, not a list (image-to-video's image_url)
    min_aspect: float | None = None  # width / height bounds, e.g. 1:2.5 → 0.4
    max_aspect: float | None = None
    label: str = "reference image"

    @property
    def max_bytes_text(self) -> str:
        """The byte limit as every message states it, e.g. ``10 MB (10,000,000 bytes)``."""
        return f"{self.max_bytes / 1e6:g} MB ({self.max_bytes:,} bytes)"

    def size_issue_text(self, size: int) -> str:
        return f"is {size:,} bytes; the limit is {self.max_bytes_text}"

    def aspect_problem(self, width: int, height: int) -> str | None:
        """Why a ``width``×``height`` image breaks the aspect bounds (None when it does not)."""
        if width <= 0 or height <= 0:
            return f"is {width}×{height}: an image with no pixels"
        ratio = width / height
        lo, hi = self.min_aspect, self.max_aspect
        if (lo is not None and ratio < lo - 1e-9) or (hi is not None and ratio > hi + 1e-9):
            return (f"is {width}×{height} (aspect {_ratio_text(ratio)}); the aspect ratio must be between "
                    f"{_ratio_text(lo or 0)} and {_ratio_text(hi or math.inf)}")
        return None


@dataclass(frozen=True)
class VideoRules:
    """Rules for an input video (video-edit's ``video_url``)."""

    field: str = "video_url"
    formats: tuple[str, ...] = ("MP4", "MOV")
    min_duration_s: float = 3.0
    max_duration_s: float = 60.0
    # "≤ 100 MB": read as 10^8 bytes, the smaller reading, so nothing the service refuses is sent.
    max_bytes: int = 100_000_000
    # Local files go through the asset-upload flow (≤ 50 MiB); anything larger must be a URL.
    max_upload_bytes: int = UPLOAD_MAX_BYTES


@dataclass(frozen=True)
class TagRules:
    """Prompt tags that name input images in order (``character1``…, ``@Image1``…)."""

    pattern: str  # one group: the number (ASCII digits only)
    template: str  # how tag n is written, e.g. "character{n}"
    first: int = 1
    last: int = 9

    def refs(self, prompt: str) -> list[int]:
        """The N of every well-formed tag (ASCII digits, no leading zero), in order of appearance."""
        return [int(m) for m in re.findall(self.pattern, prompt, flags=re.IGNORECASE | re.ASCII)
                if not m.startswith("0")]

    def lookalikes(self, prompt: str) -> list[str]:
        """Words that look like a tag but are not one (``character01``, a non-ASCII digit such as
        ``character٣``): refused by name rather than sent for the model to misread."""
        prefix = re.escape(self.template.split("{n}")[0])
        good = re.compile(self.pattern, flags=re.IGNORECASE | re.ASCII)
        out = []
        # Words end where refs() ends them (at an ASCII letter, digit or underscore), so a tag that
        # refs() would read is never a look-alike and a look-alike never escapes as a word
        for m in re.finditer(rf"(?<![A-Za-z0-9_]){prefix}(\d+)(?![A-Za-z0-9_])", prompt, flags=re.IGNORECASE):
            word, digits = m.group(0), m.group(1)
            if not (digits.isascii() and not digits.startswith("0") and good.fullmatch(word)):
                out.append(word)
        return out

    def name(self, n: int) -> str:
        return self.template.format(n=n)


@dataclass(frozen=True)
class ModelSpec:
    """A hosted model: its path, inputs, limits, price table and output geometry."""

    model: str
    short_path: str  # the model page's `/v1/run/...` path
    fields: tuple[FieldSpec, ...]
    images: ImageRules = field(default_factory=ImageRules)  # max_count 0: the model takes no images
    video: VideoRules | None = None
    tags: TagRules | None = None
    prompt_max_length: int = 2500
    price_per_second: dict[str, float] = field(default_factory=dict)
    typical_latency_s: tuple[int, int] = (90, 240)
    alias: str = ""  # short name for notebooks and the CLI: r2v, t2v, i2v, edit
    title: str = ""  # one line for pickers and tables

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def has_images(self) -> bool:
        return self.images.max_count > 0

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def input_names(self) -> tuple[str, ...]:
        """Every wire input of the model, as sent in ``input`` (scalars, image field, video field).

        >>> TEXT_TO_VIDEO.input_names
        ('prompt', 'aspect_ratio', 'duration', 'resolution', 'seed')
        >>> IMAGE_TO_VIDEO.input_names
        ('prompt', 'duration', 'resolution', 'seed', 'image_url')
        """
        media = ((self.images.field,) if self.has_images else ()) + ((self.video.field,) if self.video else ())
        return self.field_names + media

    @property
    def variant(self) -> str:
        """The last segment of the model id, e.g. ``text-to-video``."""
        return self.model.rsplit("/", 1)[-1]

    def takes(self, name: str) -> bool:
        """True when ``name`` (a scalar field, ``images`` or ``video``) is an input of this model."""
        if name in ("images", "image", "references"):
            return self.has_images
        if name == "video":
            return self.video is not None
        return name in self.field_names

    @property
    def defaults(self) -> dict[str, Any]:
        return {f.name: f.default for f in self.fields if not f.required}

    @property
    def character_tag(self) -> str:
        return self.tags.pattern if self.tags is not None else r"(?!x)x"

    def character_refs(self, prompt: str) -> list[int]:
        """The N of every image tag (``characterN``, ``@ImageN``) in ``prompt``, in order of appearance."""
        return self.tags.refs(prompt) if self.tags is not None else []

    def price_usd(self, *, duration: float, resolution: str) -> float:
        """Estimated price of one run, in dollars (rounded to the cent)."""
        return round(self.price_per_second[resolution] * duration, 2)

    def output_size(self, aspect_ratio: str, resolution: str) -> tuple[int, int]:
        """(width, height) of the output: the short side is 720 or 1080, the ratio as asked (any "w:h")."""
        short = int(resolution.rstrip("p"))
        w, h = (float(x) for x in aspect_ratio.split(":"))
        if w >= h:
            long = round(short * w / h)
            width, height = long, short
        else:
            long = round(short * h / w)
            width, height = short, long
        # Encoders need even sizes.
        return width - width % 2, height - height % 2


def _ratio_text(r: float) -> str:
    if math.isinf(r):
        return "any"
    return f"{r:g}:1" if r >= 1 else f"1:{1 / r:g}"


def _prompt(*, required: bool, help: str) -> FieldSpec:
    return FieldSpec("prompt", str, required=required, max_length=2500, help=help)


_ASPECT = FieldSpec("aspect_ratio", str, default="16:9", choices=("16:9", "9:16", "1:1", "4:3", "3:4"),
                    help="Frame shape of the output.")
_DURATION = FieldSpec("duration", int, default=5, minimum=3, maximum=15, help="Length of the clip in whole seconds.")
_RESOLUTION = FieldSpec("resolution", str, default="1080p", choices=("720p", "1080p"),
                        help="Short side of the output, lower case.")
_SEED = FieldSpec("seed", int, default=None, minimum=0, maximum=2147483647,
                  help="Random seed; the same seed and inputs reproduce a clip.")
_PRICE = {"720p": 0.14, "1080p": 0.28}

REFERENCE_TO_VIDEO = ModelSpec(
    model="alibaba/happy-horse/reference-to-video",
    short_path="happy-horse/reference-to-video",
    fields=(
        _prompt(required=True, help="What happens in the clip; name references as character1…character9."),
        _ASPECT,
        _DURATION,
        _RESOLUTION,
        _SEED,
        FieldSpec("enable_safety_checker", bool, default=True, help="Let the provider flag unsafe output."),
    ),
    images=ImageRules(),
    tags=TagRules(r"\bcharacter([0-9]+)\b", "character{n}", 1, 9),
    price_per_second=dict(_PRICE),
    alias="r2v",
    title="reference-to-video: a prompt and 1–9 reference images",
)

TEXT_TO_VIDEO = ModelSpec(
    model="alibaba/happy-horse/text-to-video",
    short_path="happy-horse/text-to-video",
    fields=(_prompt(required=True, help="What happens in the clip."), _ASPECT, _DURATION, _RESOLUTION, _SEED),
    images=ImageRules(field="", min_count=0, max_count=0),
    price_per_second=dict(_PRICE),
    alias="t2v",
    title="text-to-video: a prompt only",
)

IMAGE_TO_VIDEO = ModelSpec(
    model="alibaba/happy-horse/image-to-video",
    short_path="happy-horse/image-to-video",
    fields=(_prompt(required=False, help="Optional: how the image should move."), _DURATION, _RESOLUTION, _SEED),
    # Documented: ≥ 300 px, JPEG/PNG/BMP/WEBP, aspect 1:2.5–2.5:1. No byte limit is documented
    # for this variant: local files are capped by the upload limit only.
    images=ImageRules(field="image_url", min_count=1, max_count=1, formats=("JPEG", "PNG", "BMP", "WEBP"),
                      min_short_side=300, max_bytes=UPLOAD_MAX_BYTES, single=True, min_aspect=1 / 2.5,
                      max_aspect=2.5, label="image"),
    price_per_second=dict(_PRICE),
    alias="i2v",
    title="image-to-video: one image brought to life (the output keeps its aspect ratio)",
)

VIDEO_EDIT = ModelSpec(
    model="alibaba/happy-horse/video-edit",
    short_path="happy-horse/video-edit",
    fields=(
        _prompt(required=True, help="The edit to make; name reference images as @Image1…@Image5."),
        FieldSpec("audio_setting", str, default="auto", choices=("auto", "origin"),
                  help="auto: new sound for the edited clip; origin: keep the input video's audio."),
        _RESOLUTION,
        _SEED,
    ),
    # Documented: ≤ 5 references. Their formats and sizes are not restated for this variant:
    # the reference-to-video formats apply, with no minimum size.
    images=ImageRules(field="reference_image_urls", min_count=0, max_count=5, min_short_side=1,
                      max_bytes=10_000_000),
    video=VideoRules(),
    tags=TagRules(r"@Image([0-9]+)\b", "@Image{n}", 1, 5),
    price_per_second={"720p": 0.28, "1080p": 0.56},
    alias="edit",
    title="video-edit: a clip (3–60 s) re-made by a prompt and up to 5 reference images",
)

FAMILY: tuple[ModelSpec, ...] = (REFERENCE_TO_VIDEO, TEXT_TO_VIDEO, IMAGE_TO_VIDEO, VIDEO_EDIT)
SPECS: dict[str, ModelSpec] = {spec.model: spec for spec in FAMILY}


def get_spec(model: str | ModelSpec) -> ModelSpec:
    """The spec of ``model``: its full id, its model-page path, its variant or its alias (``t2v``)."""
    if isinstance(model, ModelSpec):
        return model
    key = str(model).strip().strip("/")
    for spec in SPECS.values():
        if key in (spec.model, spec.short_path, spec.variant, spec.alias, "alibaba/" + spec.short_path) or (
                key.lower() in (spec.alias, spec.variant)):
            return spec
    known = ", ".join(f"{s.model} ({s.alias})" for s in SPECS.values())
    raise KeyError(f"unknown model {model!r}; known models: {known}")
