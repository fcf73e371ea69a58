"""Procedural stills for the simulator's text-to-video clips: a landscape drawn from the prompt and seed.

The simulator has no model, so a text-to-video clip pans over a scene made here: a sky gradient,
a sun or moon, layered hills and a caption with the start of the prompt. Colours and shapes come
from the seed (and the prompt's words), so seeds differ at a glance while the same seed and prompt
always give the same picture. NumPy and Pillow only; a 1472×828 scene takes about a tenth of a second.

>>> img = text_scene("a horse on a beach at dusk", seed=7, size=(640, 360))
>>> img.size
(640, 360)
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["text_scene"]

_WARM = ("dusk", "sunset", "sunrise", "desert", "fire", "autumn", "golden", "warm", "beach")
_COLD = ("night", "moon", "snow", "winter", "ice", "storm", "rain", "blue", "ocean", "sea")
_GREEN = ("forest", "meadow", "grass", "spring", "jungle", "garden", "field", "hill")


def text_scene(prompt: str, *, seed: int, size: tuple[int, int]) -> Image.Image:
    """An RGB landscape of ``size`` for ``prompt`` and ``seed`` (deterministic)."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    out_size = size
    width, height = max(2, size[0] // 2), max(2, size[1] // 2)  # smooth shapes: drawn small, then scaled
    digest = hashlib.sha256(f"{seed}:{prompt}".encode("utf-8", "replace")).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    words = prompt.lower()
    warm, cold, green = (any(w in words for w in group) for group in (_WARM, _COLD, _GREEN))
    hue = rng.uniform(0, 1)
    if warm:
        top, bottom = np.array([70, 40, 110]), np.array([250, 150, 80])
    elif cold:
        top, bottom = np.array([10, 20, 60]), np.array([70, 110, 170])
    else:
        top, bottom = np.array([60, 120, 210]), np.array([190, 220, 245])
    shift = np.roll(np.array([30.0, -20.0, 10.0]), int(hue * 3)) * rng.uniform(-1, 1)
    y = np.linspace(0.0, 1.0, height)[:, None, None]
    sky = top + (bottom - top) * y + shift
    img = np.broadcast_to(sky, (height, width, 3)).copy()

    # Sun (or moon): a soft disc.
    cx, cy = rng.uniform(0.15, 0.85) * width, rng.uniform(0.12, 0.45) * height
    radius = rng.uniform(0.05, 0.1) * height
    yy, xx = np.mgrid[0:height, 0:width]
    dist = np.hypot(xx - cx, yy - cy)
    glow = np.clip(1.4 - dist / radius, 0.0, 1.0)[..., None]
    disc = np.array([250, 245, 220]) if cold else np.array([255, 220, 120])
    img = img * (1 - glow) + disc * glow

    # Hills: three layers of summed sines, nearer ones darker and lower.
    base = np.array([60, 140, 70]) if green or not (warm or cold) else (
        np.array([150, 100, 60]) if warm else np.array([80, 90, 120]))
    x = np.linspace(0.0, 1.0, width)
    for layer in range(3):
        level = 0.55 + 0.13 * layer + rng.uniform(-0.04, 0.04)
        waves = [rng.uniform(0.01, 0.05) * np.sin(2 * np.pi * (x * rng.uniform(1, 4) + rng.uniform(0, 1)))
                 for _ in range(3)]
        ridge = level + np.sum(waves, axis=0)
        mask = (yy / height) > ridge[None, :]
        colour = base * (1.0 - 0.22 * layer) + rng.uniform(-15, 15, 3)
        img[mask] = colour
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").resize(out_size, Image.Resampling.BICUBIC)
    width, height = out_size

    caption = prompt.strip() or "(no prompt)"
    caption = caption if len(caption) <= 60 else caption[:57] + "..."
    draw = ImageDraw.Draw(pil)
    text = f"text-to-video · seed {seed}: {caption}"
    pad = max(4, height // 90)
    x0, y0 = round(0.1 * width), round(0.78 * height)  # inside any pan window
    room = width / 1.15 - x0 - 2 * pad  # the caption ends inside the window a pan shows, portrait too
    font_px = max(12, height // 30)
    while True:
        try:
            font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.load_default(size=font_px)
        except (TypeError, OSError, ImportError):  # Pillow without FreeType
            font = ImageFont.load_default()
        left, top_, right, bottom_ = draw.textbbox((0, 0), text, font=font)
        if right - left <= room or font_px <= 10 or not isinstance(font, ImageFont.FreeTypeFont):
            break
        font_px = max(10, int(font_px * room / (right - left)))  # scale the font to the room left
    draw.rectangle((x0 - pad, y0 - pad, x0 + right - left + pad, y0 + bottom_ - top_ + pad), fill=(16, 16, 16))
    draw.text((x0 - left, y0 - top_), text, font=font, fill=(240, 240, 240))
    return pil
