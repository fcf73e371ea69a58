"""Models described as data: inputs, limits, defaults, prices and output sizes.

Everything that validates, prices or renders a request (the request model, the emulator's
server-side checks, the notebook form) reads its rules from a :class:`ModelSpec`, so a limit is
written once. Other Happy Horse variants are just more specs.

>>> spec = REFERENCE_TO_VIDEO
>>> spec.price_usd(duration=5, resolution="1080p")
1.4
>>> spec.output_size("9:16", "720p")
(720, 1280)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["REFERENCE_TO_VIDEO", "SPECS", "FieldSpec", "ImageRules", "ModelSpec", "get_spec"]


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
    """Rules for the list of reference images."""

    field: str = "image_urls"
    min_count: int = 1
    max_count: int = 9
    formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP")  # Pillow format names; .jpg is JPEG
    min_short_side: int = 400
    max_bytes: int = 10 * 1024 * 1024
    # Pixel cap against decompression bombs: far above any real reference (≈ 16k × 16k).
    max_pixels: int = 16384 * 16384


@dataclass(frozen=True)
class ModelSpec:
    """A hosted model: its path, inputs, limits, price table and output geometry."""

    model: str
    short_path: str  # the model page's `/v1/run/...` path
    fields: tuple[FieldSpec, ...]
    images: ImageRules = field(default_factory=ImageRules)
    prompt_max_length: int = 2500
    character_tag: str = r"\bcharacter(\d+)\b"
    price_per_second: dict[str, float] = field(default_factory=dict)
    typical_latency_s: tuple[int, int] = (90, 240)

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def defaults(self) -> dict[str, Any]:
        return {f.name: f.default for f in self.fields if not f.required}

    def character_refs(self, prompt: str) -> list[int]:
        """The N of every ``characterN`` tag in ``prompt``, in order of appearance."""
        return [int(m) for m in re.findall(self.character_tag, prompt, flags=re.IGNORECASE)]

    def price_usd(self, *, duration: int, resolution: str) -> float:
        """Estimated price of one run, in dollars (rounded to the cent)."""
        return round(self.price_per_second[resolution] * duration, 2)

    def output_size(self, aspect_ratio: str, resolution: str) -> tuple[int, int]:
        """(width, height) of the output: the short side is 720 or 1080, the ratio as asked."""
        short = int(resolution.rstrip("p"))
        w, h = (int(x) for x in aspect_ratio.split(":"))
        if w >= h:
            long = round(short * w / h)
            width, height = long, short
        else:
            long = round(short * h / w)
            width, height = short, long
        # Encoders need even sizes.
        return width - width % 2, height - height % 2


REFERENCE_TO_VIDEO = ModelSpec(
    model="alibaba/happy-horse/reference-to-video",
    short_path="happy-horse/reference-to-video",
    fields=(
        FieldSpec("prompt", str, required=True, max_length=2500,
                  help="What happens in the clip; name references as character1…character9."),
        FieldSpec("aspect_ratio", str, default="16:9", choices=("16:9", "9:16", "1:1", "4:3", "3:4"),
                  help="Frame shape of the output."),
        FieldSpec("duration", int, default=5, minimum=3, maximum=15,
                  help="Length of the clip in whole seconds."),
        FieldSpec("resolution", str, default="1080p", choices=("720p", "1080p"),
                  help="Short side of the output, lower case."),
        FieldSpec("seed", int, default=None, minimum=0, maximum=2147483647,
                  help="Random seed; the same seed and inputs reproduce a clip."),
        FieldSpec("enable_safety_checker", bool, default=True,
                  help="Let the provider flag unsafe output."),
    ),
    price_per_second={"720p": 0.14, "1080p": 0.28},
)

SPECS: dict[str, ModelSpec] = {REFERENCE_TO_VIDEO.model: REFERENCE_TO_VIDEO}


def get_spec(model: str) -> ModelSpec:
    """The spec of ``model``, by its full path or its model-page path."""
    for spec in SPECS.values():
        if model in (spec.model, spec.short_path):
            return spec
    known = ", ".join(sorted(SPECS))
    raise KeyError(f"unknown model {model!r}; known models: {known}")
