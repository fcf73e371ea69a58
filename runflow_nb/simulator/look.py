"""The per-seed look of a simulated clip: camera path, framing, colour grade and a visible seed stamp.

A seed sweep is the toolkit's main study, so the offline simulator's pictures must differ by seed
the way a model's would: the same references, framed and moved differently. :func:`look_for`
maps a seed to a :class:`SeedLook` deterministically (NumPy's PCG64 stream of the seed), and every
renderer (reference-to-video today, other models as they come) draws its frames through one:

>>> look = look_for(7)
>>> look.seed, look.grade in GRADES
(7, True)
>>> look.pan(0)[0] != look_for(8).pan(0)[0] or look.grade != look_for(8).grade
True

Everything works on BT.709 limited-range ``yuv420p`` planes (NumPy ``uint8`` arrays), the
encoder's own format: the grade is a lookup table applied once per source canvas, the stamp a small
block copied into each frame, so a look costs next to nothing on top of the encode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["GRADES", "SeedLook", "badge_planes", "even", "look_for", "paste", "plane_arrays", "prompt_caption",
           "rgb_to_yuv_planes", "with_prompt"]

# name: (contrast, lift, saturation, U shift, V shift) in limited-range code values.
GRADES: dict[str, tuple[float, float, float, float, float]] = {
    "neutral": (1.0, 0.0, 1.0, 0.0, 0.0),
    "warm": (1.03, 2.0, 1.05, -9.0, 11.0),
    "cool": (1.02, 0.0, 0.95, 12.0, -7.0),
    "faded": (0.78, 16.0, 0.7, 2.0, 3.0),
    "vivid": (1.15, -6.0, 1.35, 0.0, 0.0),
    "dusk": (1.06, -8.0, 1.1, 8.0, 9.0),
    "verdant": (1.0, 0.0, 1.1, -7.0, -9.0),
    "silver": (1.1, 0.0, 0.25, 0.0, 0.0),
}
_MARGIN_RANGE = (1.1, 1.32)  # canvas size relative to the frame: how tight the framing is
_GOLDEN_ANGLE = math.pi * (3 - math.sqrt(5))


@dataclass(frozen=True)
class SeedLook:
    """How one seed films its references: a canvas margin (framing), a pan per shot and a grade.

    ``margin`` > 1 is the canvas size relative to the frame (larger = tighter framing, longer pans);
    ``angle`` is the direction of the first shot's pan (radians; each next shot turns by the
    golden angle); ``grade`` names an entry of :data:`GRADES`, ``strength`` scales it.

    >>> look_for(3).margin >= 1.1
    True
    """

    seed: int
    margin: float
    angle: float
    grade: str
    strength: float
    tint: tuple[float, float] = (0.0, 0.0)  # a prompt's own colour cast (U, V shifts), see with_prompt

    def pan(self, shot: int) -> tuple[tuple[float, float], tuple[float, float]]:
        """Start and end of shot ``shot``'s pan as fractions of the free margin (0 = left/top)."""
        a = self.angle + shot * _GOLDEN_ANGLE
        dx, dy = 0.5 * math.cos(a), 0.5 * math.sin(a)
        return (0.5 - dx, 0.5 - dy), (0.5 + dx, 0.5 + dy)

    def grade_planes(self, planes: list[np.ndarray]) -> list[np.ndarray]:
        """The colour grade applied to yuv420p ``[Y, U, V]`` planes (new arrays)."""
        import numpy as np

        contrast, lift, sat, du, dv = GRADES[self.grade]
        k = self.strength
        contrast, lift, sat, du, dv = 1 + (contrast - 1) * k, lift * k, 1 + (sat - 1) * k, du * k, dv * k
        du, dv = du + self.tint[0], dv + self.tint[1]
        codes = np.arange(256, dtype=np.float32)
        y_lut = np.clip(16 + (codes - 16) * contrast + lift, 16, 235).round().astype(np.uint8)
        u_lut = np.clip(128 + (codes - 128) * sat + du, 16, 240).round().astype(np.uint8)
        v_lut = np.clip(128 + (codes - 128) * sat + dv, 16, 240).round().astype(np.uint8)
        y, u, v = planes
        return [y_lut[y], u_lut[u], v_lut[v]]

    def stamp_text(self) -> str:
        return f"seed {self.seed}"


def look_for(seed: int) -> SeedLook:
    """The look of ``seed`` (any int; the same seed always gives the same look)."""
    import numpy as np

    rng = np.random.default_rng(seed & 0xFFFF_FFFF_FFFF_FFFF)
    names = sorted(GRADES)
    return SeedLook(seed=int(seed), margin=float(rng.uniform(*_MARGIN_RANGE)),
                    angle=float(rng.uniform(0, 2 * math.pi)), grade=names[int(rng.integers(len(names)))],
                    strength=float(rng.uniform(0.7, 1.0)))


_TINT = 16.0  # code values: a cast clearly seen side by side, gentle enough to keep the references' colours


def with_prompt(look: SeedLook, prompt: str) -> SeedLook:
    """``look`` shaped by ``prompt`` as a model's clip would be: a colour cast and a turn of the camera
    path that come from the prompt's words (the same prompt always gives the same ones; an empty
    prompt changes nothing).

    >>> a, b = with_prompt(look_for(1), "a horse at dusk"), with_prompt(look_for(1), "a horse in the snow")
    >>> a.tint != b.tint and a.angle != b.angle and a.grade == b.grade
    True
    """
    import hashlib
    from dataclasses import replace

    text = " ".join(prompt.split()).lower()
    if not text:
        return look
    digest = hashlib.sha256(text.encode("utf-8", "replace")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536 * 2 * math.pi
    turn = (int.from_bytes(digest[2:4], "big") / 65536 - 0.5) * math.pi  # up to a quarter turn either way
    return replace(look, tint=(round(_TINT * math.cos(hue), 2), round(_TINT * math.sin(hue), 2)),
                   angle=look.angle + turn)


def prompt_caption(prompt: str, *, limit: int = 48) -> str:
    """The start of ``prompt`` as the clip's caption (one line)."""
    text = " ".join(prompt.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def even(x: float) -> int:
    """``x`` rounded to an even number of pixels (at least 2): yuv420p halves both sides for chroma."""
    return max(2, round(x / 2) * 2)


def badge_planes(text: str, height: int, *, scale: float = 1.0) -> list[np.ndarray]:
    """``text`` as a white-on-dark badge sized for a frame ``height`` tall (``scale`` × the label
    size, a thirty-sixth of the height), in yuv420p planes."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font: Any = ImageFont.load_default(size=max(12, round(scale * height / 36)))
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the tiny bitmap font
        font = ImageFont.load_default()
    left, top, right, bottom = font.getbbox(text)
    pad = max(4, height // 120)
    badge = Image.new("RGB", (even(right - left + 2 * pad), even(bottom - top + 2 * pad)), (16, 16, 16))
    ImageDraw.Draw(badge).text((pad - left, pad - top), text, font=font, fill=(240, 240, 240))
    return rgb_to_yuv_planes(badge)


def rgb_to_yuv_planes(img: Any) -> list[np.ndarray]:
    """BT.709 limited-range yuv420p planes (copies) of an RGB PIL image with even dimensions."""
    import av
    from av.video.reformatter import Colorspace

    yuv = av.VideoFrame.from_image(img).reformat(format="yuv420p", dst_colorspace=Colorspace.ITU709)
    return [plane.copy() for plane in plane_arrays(yuv)]


def plane_arrays(frame: Any) -> list[np.ndarray]:
    """Writable numpy views of an ``av.VideoFrame``'s planes (without the line padding)."""
    import numpy as np

    return [np.frombuffer(memoryview(p), np.uint8).reshape(p.height, p.line_size)[:, : p.width]
            for p in frame.planes]


def paste(planes: list[np.ndarray], badge: list[np.ndarray], *, corner: str = "top-left", down: int = 0) -> None:
    """Copy a badge into frame planes, inset from ``corner`` ("top-left", "top-right", "bottom-left"
    or "bottom-right"), a top corner's badge ``down`` (even) pixels lower (under another badge); a badge
    wider or taller than the frame is cut at the edge."""
    height = planes[0].shape[0]
    m = even(height / 40)
    for k, (dst, src) in enumerate(zip(planes, badge, strict=True)):
        o = m if k == 0 else m // 2
        d = down if k == 0 else down // 2
        top = o + d if corner.startswith("top") else o
        src = src[: max(0, dst.shape[0] - top), : max(0, dst.shape[1] - o)]
        h, w = src.shape
        if corner == "top-left":
            dst[top:top + h, o:o + w] = src
        elif corner == "bottom-left":
            dst[dst.shape[0] - o - h:dst.shape[0] - o, o:o + w] = src
        elif corner == "top-right":
            dst[top:top + h, dst.shape[1] - o - w:dst.shape[1] - o] = src
        else:
            dst[dst.shape[0] - o - h:dst.shape[0] - o, dst.shape[1] - o - w:dst.shape[1] - o] = src
