"""Clips with one known flaw (or a hard case that is no flaw), for clip QA's tests and demos.

The simulator renders one when a run is submitted with ``flaw=KIND`` (the emulator's fault
options of the same names, e.g. ``--faults black=1x,silent=0.2``). Every clip here is a real
H.264 + AAC MP4 of a synthetic, moving scene: a textured backdrop the camera pans across and a
bright disc that crosses the frame, with a steady two-note tone; the flaw is the only thing wrong.

Flaws (:data:`FLAWS`): ``black`` (black but for the last second), ``frozen`` (moves for a second,
then the picture stops), ``silent`` (an audio track of digital silence), ``noaudio`` (no audio
track), ``short`` (half the length asked), ``wrongsize`` (half the size asked), ``clipped`` (the
tone driven far past full scale).

Hard cases that must pass (:data:`NEAR_MISSES`): ``dark`` (a night scene: dark backdrop, a dim
subject moving), ``still`` (a locked-off camera: nothing moves but a small subject), ``quiet``
(audio at about -48 dBFS), ``pan`` (nothing moves but a slow pan, a fiftieth of the width a
second, over soft clouds without grain).

>>> render_flawed("frozen", duration=3, size=(640, 360), seed=1, dest="frozen.mp4")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import pathlib
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["FLAWS", "NEAR_MISSES", "render_flawed"]

FLAWS = ("black", "frozen", "silent", "noaudio", "short", "wrongsize", "clipped")
NEAR_MISSES = ("dark", "still", "quiet", "pan")
_RATE = 48_000


def render_flawed(kind: str, *, duration: float, size: tuple[int, int], seed: int,
                  dest: str | os.PathLike[str], fps: int = 24) -> pathlib.Path:
    """Write a ``duration`` s clip of ``size`` (as asked) to ``dest`` with flaw ``kind`` (one of
    :data:`FLAWS`, or a near miss from :data:`NEAR_MISSES` that must pass clip QA)."""
    import av

    from .render import add_aac_stream, add_h264_stream

    if kind not in FLAWS + NEAR_MISSES:
        raise ValueError(f"unknown flaw {kind!r}; use one of {', '.join(FLAWS + NEAR_MISSES)}")
    width, height = size
    if kind == "wrongsize":
        width, height = max(2, width // 4 * 2), max(2, height // 4 * 2)
    seconds = duration / 2 if kind == "short" else duration
    n_frames = max(1, round(seconds * fps))
    dest = pathlib.Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.flaw.part")
    scene = _Scene(kind, (width, height), seed, fps, black_frames=max(0, n_frames - fps))
    tone = _tone(kind, n_frames / fps, seed)
    try:
        with av.open(os.fspath(tmp), "w", format="mp4") as out:
            vstream = add_h264_stream(out, size=(width, height), fps=fps)
            astream = add_aac_stream(out) if tone is not None else None
            step = _RATE // fps
            for i in range(n_frames):
                frame = av.VideoFrame.from_ndarray(scene.frame(i), format="yuv420p")
                frame.pts = i
                out.mux(vstream.encode(frame))
                if astream is not None and tone is not None:
                    chunk = tone[:, i * step:(i + 1) * step]
                    if chunk.shape[1]:
                        a = av.AudioFrame.from_ndarray(chunk.copy(), format="fltp", layout="stereo")
                        a.sample_rate, a.pts, a.time_base = _RATE, i * step, Fraction(1, _RATE)
                        out.mux(astream.encode(a))
            out.mux(vstream.encode(None))
            if astream is not None:
                out.mux(astream.encode(None))
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


class _Scene:
    """yuv420p frames (as one (h*3/2, w) array): a panned texture and a moving disc, with the flaw."""

    def __init__(self, kind: str, size: tuple[int, int], seed: int, fps: int, *, black_frames: int) -> None:
        import numpy as np

        self.kind, self.fps = kind, fps
        self.w, self.h = size
        rng = np.random.default_rng(seed)
        # A backdrop wider than the frame (the camera pans across it): smooth blobs plus fine grain.
        bw = self.w + self.w // 2
        coarse = rng.uniform(0, 1, (self.h // 16 + 2, bw // 16 + 2))
        backdrop: np.ndarray
        if kind == "pan":  # soft clouds, no grain: the least a slow pan can show
            from PIL import Image

            clouds = Image.fromarray((coarse[:8, :12] * 255).astype(np.uint8)).resize((bw, self.h),
                                                                                     Image.Resampling.BICUBIC)
            backdrop = np.asarray(clouds, np.float64) / 255
        else:
            backdrop = np.kron(coarse, np.ones((16, 16)))[: self.h, :bw]
            backdrop = 0.7 * backdrop + 0.3 * rng.uniform(0, 1, (self.h, bw))
        lo, hi = (16, 34) if kind == "dark" else (40, 200)  # dark: a night scene, all of it below 10% luma
        self.backdrop = (lo + (hi - lo) * backdrop).astype(np.uint8)
        self.disc_luma = 70 if kind == "dark" else 235
        self.radius = max(4, min(self.w, self.h) // (12 if kind == "still" else 6))
        self.frozen_at = fps  # frozen: the picture stops after one second
        self.black_frames = black_frames if kind == "black" else 0
        self._last: np.ndarray | None = None

    def frame(self, i: int) -> np.ndarray:
        import numpy as np

        w, h = self.w, self.h
        if self.kind == "frozen" and i > self.frozen_at and self._last is not None:
            return self._last
        n_total = self.fps * 10
        if i < self.black_frames:
            y = np.full((h, w), 16, np.uint8)
        else:
            pan = 0 if self.kind == "still" else int((self.backdrop.shape[1] - w) * (i % n_total) / n_total)
            if self.kind == "pan":  # a fiftieth of the width a second: 50 s to cross the frame
                pan = min(self.backdrop.shape[1] - w, i * w // (50 * self.fps))
            y = self.backdrop[:, pan:pan + w].copy()
            if self.kind == "pan":
                return self._yuv(y)
            t = i / self.fps
            cx = int((0.1 + 0.8 * ((t / 4) % 1.0)) * w)
            cy = int(h / 2 + h / 4 * np.sin(t))
            r = self.radius
            y0, y1, x0, x1 = max(0, cy - r), min(h, cy + r + 1), max(0, cx - r), min(w, cx + r + 1)
            yy, xx = np.ogrid[y0:y1, x0:x1]
            box = y[y0:y1, x0:x1]
            box[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = self.disc_luma
        return self._yuv(y)

    def _yuv(self, y: np.ndarray) -> np.ndarray:
        import numpy as np

        out = np.empty((self.h * 3 // 2, self.w), np.uint8)
        out[:self.h] = y
        out[self.h:] = 128
        self._last = out
        return out


def _tone(kind: str, seconds: float, seed: int) -> np.ndarray | None:
    """Stereo float32 (2, samples): two steady notes; None for ``noaudio``."""
    import numpy as np

    if kind == "noaudio":
        return None
    n = round(seconds * _RATE)
    if kind == "silent":
        return np.zeros((2, n), np.float32)
    t = np.arange(n) / _RATE
    f = 220.0 * 2 ** ((seed % 12) / 12)
    wave = 0.6 * np.sin(2 * np.pi * f * t) + 0.3 * np.sin(2 * np.pi * 1.5 * f * t)
    level = {"quiet": 10 ** (-42 / 20), "clipped": 4.0}.get(kind, 0.3)
    wave = np.clip(level * wave, -1.0, 1.0)
    return np.stack([wave, wave]).astype(np.float32)
