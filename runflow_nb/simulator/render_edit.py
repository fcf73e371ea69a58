"""The simulator's video-edit clips: the input video, visibly transformed, with sound per ``audio_setting``.

Every frame of the input is scaled to the output size (short side 720/1080, the input's shape),
colour-graded by the seed (chroma planes swapped, saturated or inverted; fading in over the first
second), framed by a thin border, with the reference images as small insets along the bottom and a
label naming the edit. ``audio_setting="origin"`` keeps the input's audio (decoded and re-encoded,
so the clip has one AAC track like every other); ``"auto"`` lays a new seed-picked tone track.
The result is a real H.264 + AAC MP4, written atomically.

>>> render_edit("in.mp4", references=[], prompt="make it night", seed=3, resolution="720p",
...             audio_setting="origin", dest="out.mp4")                       # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .._files import write_whole
from ..specs import VIDEO_EDIT
from .look import plane_arrays, rgb_to_yuv_planes
from .render import (
    SAMPLE_RATE,
    _audio_packets,
    _interleave,
    _tone_track,
    add_aac_stream,
    add_h264_stream,
)

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

__all__ = ["render_edit"]

_FPS = 24
_INSET_SHARE = 0.16  # inset height relative to the frame


def render_edit(video: str | os.PathLike[str], *, references: Sequence[Image.Image], prompt: str, seed: int,
                resolution: str, audio_setting: str, dest: str | os.PathLike[str],
                label: str = "SIMULATED") -> pathlib.Path:
    """Render the edited clip of ``video`` to ``dest`` and return its path."""
    import av

    src_path = str(video)
    with av.open(src_path) as probe:
        vin = probe.streams.video[0]
        src_w, src_h = vin.codec_context.width, vin.codec_context.height
    width, height = VIDEO_EDIT.output_size(f"{src_w}:{src_h}", resolution)
    dest = pathlib.Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_whole(dest, lambda tmp: _encode(str(tmp), src_path, references=references, prompt=prompt, seed=seed,
                                          size=(width, height), audio_setting=audio_setting, label=label))
    return dest


def _encode(path: str, src_path: str, *, references: Sequence[Image.Image], prompt: str, seed: int,
            size: tuple[int, int], audio_setting: str, label: str) -> None:
    import av

    grade = _grade(seed)
    overlay = _overlay(references, prompt=prompt, seed=seed, size=size, label=label)
    with av.open(src_path) as src, av.open(path, "w", format="mp4",
                                           container_options={"movflags": "+faststart"}) as out:
        vin = src.streams.video[0]
        ain = src.streams.audio[0] if src.streams.audio else None
        vout = add_h264_stream(out, size=size, fps=_FPS)
        duration = _duration(src, vin)
        n_frames = max(1, round(duration * _FPS))
        frames = _edited_frames(src, vin, size=size, grade=grade, overlay=overlay, n_frames=n_frames)
        streams: list[Iterator[Any]] = [_video_packets(vout, frames)]
        samples = None
        if audio_setting == "origin":
            samples = _decoded_audio(src_path, duration) if ain is not None else None
        else:
            samples = _tone_track(seed, max(1, math.ceil(duration)))[:, : round(duration * SAMPLE_RATE)]
        if samples is not None:
            aout = add_aac_stream(out)
            streams.append(_audio_packets(aout, samples))
        out.metadata["comment"] = f"runflow_nb simulator ({label}); video-edit; seed={seed}; audio={audio_setting}"
        _interleave(out, *streams)


def _duration(src: Any, vin: Any) -> float:
    import av

    if vin.duration:
        return float(vin.duration * vin.time_base)
    if src.duration:
        return src.duration / av.time_base
    raise ValueError("the input video does not declare its duration")


def _edited_frames(src: Any, vin: Any, *, size: tuple[int, int], grade: tuple[bool, list[np.ndarray | None]],
                   overlay: tuple[list[np.ndarray], list[np.ndarray]], n_frames: int) -> Iterator[Any]:
    """``n_frames`` yuv420p frames at 24 fps (input frames repeated or dropped by their time
    stamps), transformed; streamed one at a time, so a 60 s clip never sits in memory. The edit
    works on the planes with lookup tables and masked copies: a 720p frame costs milliseconds."""
    import av
    import numpy as np

    width, height = size
    swap, luts = grade
    masks, colours = overlay
    n_out = 0
    last: Any = None
    for frame in src.decode(vin):
        if n_out >= n_frames:
            return
        t = float(frame.time or 0.0)
        source = plane_arrays(frame.reformat(width=width, height=height, format="yuv420p"))
        planes = [source[0], source[2], source[1]] if swap else source
        weight = min(1.0, (t + 0.25) / 1.0)  # the edit fades in over the first second
        out = av.VideoFrame(width, height, "yuv420p")
        for dst, before, plane, lut, mask, colour in zip(plane_arrays(out), source, planes, luts, masks, colours,
                                                         strict=True):
            if lut is None:
                dst[...] = plane
            else:
                np.take(lut, plane, out=dst)
            if weight < 1.0:
                w = np.uint16(round(weight * 256))
                mix = before.astype(np.uint16) * (256 - w) + dst.astype(np.uint16) * w
                np.right_shift(mix, 8, out=mix)
                dst[...] = mix
            np.copyto(dst, colour, where=mask)
        last, fresh = out, True
        while n_out < n_frames and n_out / _FPS <= t + 1e-6:
            yield last if fresh else _copy(last)  # a frame shown twice needs its own pts
            fresh = False
            n_out += 1
    if last is None:
        raise ValueError("the input video has no frames")
    while n_out < n_frames:
        yield _copy(last)
        n_out += 1


def _copy(frame: Any) -> Any:
    import av

    out = av.VideoFrame(frame.width, frame.height, "yuv420p")
    for dst, src in zip(plane_arrays(out), plane_arrays(frame), strict=True):
        dst[...] = src
    return out


def _video_packets(stream: Any, frames: Iterator[Any]) -> Iterator[Any]:
    for i, frame in enumerate(frames):
        frame.pts = i
        yield from stream.encode(frame)
    yield from stream.encode(None)


def _grade(seed: int) -> tuple[bool, list[np.ndarray | None]]:
    """A seed-picked colour grade on the chroma planes: swapped (a strong hue change) or not, then
    saturated or inverted by a lookup table each. Luma is kept: the picture stays readable, and the
    grade costs a quarter of the pixels."""
    import numpy as np

    rng = np.random.default_rng(seed)
    swap = bool(rng.integers(2))
    x = np.arange(256, dtype=np.float32)
    chroma: list[np.ndarray | None] = [None]
    for _ in range(2):
        gain = rng.uniform(1.3, 1.8) * (1 if swap or rng.integers(2) else -1)  # saturate, or invert the hue
        chroma.append(np.clip(128 + (x - 128) * gain + rng.uniform(-18, 18), 0, 255).round().astype(np.uint8))
    return swap, chroma


def _overlay(references: Sequence[Image.Image], *, prompt: str, seed: int, size: tuple[int, int],
             label: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(masks, colours) per yuv420p plane of the still parts: border, reference insets and the label."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont, ImageOps

    width, height = size
    canvas = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    border = max(4, height // 90)
    draw.rectangle((0, 0, width - 1, height - 1), outline=(255, 255, 255, 200), width=border)
    inset_h = round(height * _INSET_SHARE)
    x = border * 3
    for ref in references[:5]:
        thumb = ImageOps.exif_transpose(ref).convert("RGB")
        thumb.thumbnail((inset_h * 2, inset_h))
        y = height - thumb.height - border * 3
        draw.rectangle((x - 2, y - 2, x + thumb.width + 1, y + thumb.height + 1), fill=(255, 255, 255, 255))
        canvas.paste(thumb, (x, y))
        x += thumb.width + border * 2
    try:
        font: Any = ImageFont.load_default(size=max(12, height // 36))
    except (TypeError, OSError, ImportError):
        font = ImageFont.load_default()
    caption = prompt.strip() if len(prompt.strip()) <= 60 else prompt.strip()[:57] + "..."
    text = f"{label} · video-edit · seed {seed}: {caption}"
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(4, height // 120)
    x0, y0 = border * 3, height // 12  # clear of the border; the input's own marks sit top right
    draw.rectangle((x0, y0, x0 + right - left + 2 * pad, y0 + bottom - top + 2 * pad), fill=(16, 16, 16, 255))
    draw.text((x0 + pad - left, y0 + pad - top), text, font=font, fill=(240, 240, 240, 255))
    arr = np.asarray(canvas)
    mask = arr[..., 3] >= 128
    colour = rgb_to_yuv_planes(Image.fromarray(np.ascontiguousarray(arr[..., :3]), "RGB"))
    return [mask, mask[::2, ::2], mask[::2, ::2]], colour


def _decoded_audio(src_path: str, duration: float) -> np.ndarray | None:
    """The input's audio as float32 stereo at 48 kHz, cut or padded to ``duration``."""
    import av
    import numpy as np

    chunks = []
    with av.open(src_path) as src:
        if not src.streams.audio:
            return None
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
        for frame in src.decode(src.streams.audio[0]):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray())
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
    n = round(duration * SAMPLE_RATE)
    samples = np.concatenate(chunks, axis=1).astype(np.float32) if chunks else np.zeros((2, 0), np.float32)
    if samples.shape[1] < n:
        samples = np.pad(samples, ((0, 0), (0, n - samples.shape[1])))
    return np.ascontiguousarray(samples[:, :n])
