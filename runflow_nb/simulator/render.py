"""The offline simulator's clip renderer: a real H.264 + AAC MP4 built from the reference images.

The picture is a slow pan over each reference image (cover-cropped to the output shape) with
crossfades between them and a visible label (top right, under the seed stamp, clear of the labels
reference images often carry top left), so nobody mistakes it for model output. The seed
films it: its :class:`~runflow_nb.simulator.look.SeedLook` picks the framing, the camera path of each shot
and a colour grade, and a ``seed N`` stamp sits in the top-right corner, so a seed sweep shows
different pictures (and poster frames) side by side. The prompt shapes it too, as a model's prompt
would: a colour cast and a turn of the camera path from its words, and its start as a caption
(:func:`~runflow_nb.simulator.look.with_prompt`), so prompt rows of a study look different. The seed also picks the notes of the sound
track and is written to the container's ``comment``. The encoded video-only stream is cached per
(image pixels, look, prompt, duration, size, fps, label), so re-rendering a clip (a repeated run) only
encodes its audio and remuxes the cached video packets.

Output is deterministic for the same inputs and seed (x264's thread count is pinned), for the same
PyAV/FFmpeg build; the cache key includes the PyAV version.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import math
import os
import pathlib
import tempfile
import threading
from collections.abc import Iterator, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from runflow_nb._files import write_whole
from runflow_nb.simulator.look import (
    SeedLook,
    badge_planes,
    even,
    look_for,
    paste,
    plane_arrays,
    prompt_caption,
    rgb_to_yuv_planes,
    with_prompt,
)
from runflow_nb.specs import REFERENCE_TO_VIDEO

if TYPE_CHECKING:
    import numpy as np
    from av.audio.stream import AudioStream
    from av.container import OutputContainer
    from av.packet import Packet
    from av.stream import Stream
    from PIL import Image

__all__ = ["default_cache_dir", "render_clip"]

_RENDER_VERSION = 8  # bump when the picture or the encoder settings change
SAMPLE_RATE = 48_000
# A constant quantizer, not CRF: CRF's per-frame analysis doubled the encode time of a clip for no
# visible gain on these pictures (bench_render measures it against the same frames encoded with CRF).
_X264_OPTIONS = {"preset": "ultrafast", "qp": "23"}
_X264_THREADS = 1  # pinned: x264 output depends on its thread count; one leaves cores to parallel renders
_AUDIO_BIT_RATE = 128_000
_PAN_FULL_S = 5.0  # an image shown this long (or longer) pans across the whole margin
_CROSSFADE_S = 0.75
_MAX_CACHE_BYTES = 2 << 30
_CACHE_LOCKS: dict[str, threading.Lock] = {}
_CACHE_LOCKS_GUARD = threading.Lock()


def default_cache_dir() -> pathlib.Path:
    """Where encoded video-only streams are cached unless ``cache_dir`` is given."""
    return pathlib.Path(tempfile.gettempdir()) / "runflow_nb_render_cache"


def render_clip(
    images: Sequence[Image.Image],
    *,
    duration: int,
    aspect_ratio: str,
    resolution: str,
    seed: int,
    dest: str | os.PathLike[str],
    label: str = "SIMULATED",
    fps: int = 24,
    cache_dir: str | os.PathLike[str] | None = None,
    prompt: str = "",
) -> pathlib.Path:
    """Render a clip to ``dest`` (MP4: H.264 yuv420p + AAC stereo 48 kHz, faststart) and return its path.

    ``prompt`` (when given) tints the picture, turns the camera path and is shown as a caption.

    ``dest`` is replaced atomically, so an interrupted render never leaves a partial file there.
    """
    if not images:
        raise ValueError("render_clip needs at least one image")
    if duration <= 0 or fps <= 0:
        raise ValueError(f"duration and fps must be positive, got duration={duration}, fps={fps}")
    width, height = REFERENCE_TO_VIDEO.output_size(aspect_ratio, resolution)
    dest = pathlib.Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    cache = pathlib.Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    look = with_prompt(look_for(seed), prompt)
    caption = prompt_caption(prompt)
    key = _cache_key(images, look=look, duration=duration, size=(width, height), fps=fps,
                     label=f"{label}\n{caption}" if caption else label)
    video_path = cache / f"{key}.mp4"

    samples = _tone_track(seed, duration)
    for attempt in range(2):
        with _locked(cache / f"{key}.lock"):
            if video_path.exists():
                with contextlib.suppress(OSError):
                    os.utime(video_path)
            else:
                write_whole(
                    video_path,
                    lambda tmp: _encode_video(str(tmp), images, look=look, duration=duration,
                                              size=(width, height), fps=fps, label=label, caption=caption),
                )
                _prune(cache, keep=video_path)
        try:
            write_whole(dest, lambda tmp: _mux(str(tmp), video_path, samples, seed=seed, label=label))
            return dest
        except _CacheReadError:
            # Pruned or damaged by someone else between the check and the read: rebuild once.
            with contextlib.suppress(OSError):
                video_path.unlink()
            if attempt:
                raise
    raise AssertionError("unreachable")


class _CacheReadError(RuntimeError):
    """The cached video stream could not be read."""


# --- cache -------------------------------------------------------------------------------------


def _cache_key(images: Sequence[Image.Image], *, look: SeedLook, duration: int, size: tuple[int, int],
               fps: int, label: str) -> str:
    import av

    digests = []
    for img in images:
        h = hashlib.sha256()
        orientation = img.getexif().get(0x0112, 1)
        h.update(f"{img.mode}:{img.size}:{orientation}:".encode())
        h.update(img.tobytes())
        digests.append(h.hexdigest())
    parts = {
        "v": _RENDER_VERSION, "av": av.__version__, "x264": _X264_OPTIONS, "threads": _X264_THREADS,
        "images": digests, "look": repr(look), "duration": duration, "size": size, "fps": fps, "label": label,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@contextlib.contextmanager
def _locked(lock_path: pathlib.Path) -> Iterator[None]:
    """Serialize work on one cache key across threads (and processes, where flock exists)."""
    with _CACHE_LOCKS_GUARD:
        lock = _CACHE_LOCKS.setdefault(str(lock_path), threading.Lock())
    with lock:
        try:
            import fcntl
        except ImportError:  # Windows: threads are serialized; processes rely on atomic replace
            yield
            return
        with open(lock_path, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _prune(cache: pathlib.Path, *, keep: pathlib.Path) -> None:
    """Drop the least recently used cached streams beyond the size cap."""
    entries = []
    for p in cache.glob("*.mp4"):
        with contextlib.suppress(OSError):
            st = p.stat()
            entries.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in entries)
    for _, size, p in sorted(entries, key=lambda e: e[0]):
        if total <= _MAX_CACHE_BYTES:
            break
        if p != keep:
            with contextlib.suppress(OSError):
                p.unlink()
                total -= size


# --- picture -----------------------------------------------------------------------------------


def add_aac_stream(out: Any) -> Any:
    """An AAC stereo 48 kHz stream on the open PyAV container ``out`` (FFmpeg's fast AAC coder: a
    quarter less time than its default on the tone tracks, same bit rate)."""
    stream = out.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
    stream.bit_rate = _AUDIO_BIT_RATE
    stream.options = {"aac_coder": "fast"}
    return stream


def add_h264_stream(out: Any, *, size: tuple[int, int], fps: int) -> Any:
    """An H.264 stream on the open PyAV container ``out``: BT.709 limited range, a keyframe every 2 s,
    ``ultrafast`` with a pinned thread count (the same bytes for the same frames). Every simulated
    picture (generated or edited) is encoded through this one set-up."""
    from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

    width, height = size
    stream = out.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    ctx = stream.codec_context
    ctx.thread_count = _X264_THREADS
    ctx.gop_size = 2 * fps
    ctx.colorspace, ctx.color_range = Colorspace.ITU709, ColorRange.MPEG
    ctx.color_primaries, ctx.color_trc = ColorPrimaries.BT709, ColorTrc.BT709
    stream.options = dict(_X264_OPTIONS)
    return stream


def _encode_video(path: str, images: Sequence[Image.Image], *, look: SeedLook, duration: int,
                  size: tuple[int, int], fps: int, label: str, caption: str = "") -> None:
    """Encode the video-only stream to ``path``, one frame at a time."""
    import av

    with av.open(path, "w", format="mp4") as out:
        stream = add_h264_stream(out, size=size, fps=fps)
        for i, frame in enumerate(_frames(images, look=look, duration=duration, size=size, fps=fps, label=label,
                                          caption=caption)):
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _frames(images: Sequence[Image.Image], *, look: SeedLook, duration: int, size: tuple[int, int], fps: int,
            label: str, caption: str = "") -> Iterator[Any]:
    """Yield yuv420p ``av.VideoFrame``s: the look's pans over each (graded) image, crossfades between
    them, the seed stamp top right with the label under it, the prompt's caption bottom left and a
    playhead crossing the bottom edge. The top left stays the picture's: a reference's own label (the
    sample images name their character there) reads clear of the simulator's marks."""
    import av
    import numpy as np

    width, height = size
    cw, ch = even(width * look.margin), even(height * look.margin)
    n_img = len(images)
    seg = duration / n_img
    fade = min(_CROSSFADE_S, 0.4 * seg) if n_img > 1 else 0.0
    canvases: dict[int, list[np.ndarray]] = {}
    # Sized by the long side: a gallery shows landscape and portrait clips at about the same size, so
    # the label and stamp read the same in both (by the height alone a 16:9 clip's were half as big).
    long_side = max(width, height)
    badge = badge_planes(label, long_side) if label else None
    stamp = badge_planes(look.stamp_text(), long_side, scale=2.0)  # readable in a thumbnail
    words = badge_planes(caption, long_side, scale=1.2) if caption else None

    def window(i: int, t: float) -> list[np.ndarray]:
        if i not in canvases:
            canvases[i] = look.grade_planes(rgb_to_yuv_planes(_cover(images[i], (cw, ch))))
            for old in [j for j in canvases if j < i - 1]:
                del canvases[old]
        start, end = max(0.0, i * seg - fade / 2), min(float(duration), (i + 1) * seg + fade / 2)
        p = min(1.0, max(0.0, (t - start) / (end - start)))
        reach = min(1.0, (end - start) / _PAN_FULL_S)  # short shots pan less, so speed stays gentle
        (x0, y0), (x1, y1) = look.pan(i)
        fx = 0.5 + (x0 + (x1 - x0) * p - 0.5) * reach
        fy = 0.5 + (y0 + (y1 - y0) * p - 0.5) * reach
        # Whole, even pixels: chroma moves exactly with luma, so each frame is a pure shift of the last
        # and the encoder codes it as motion (far fewer bits and less work than a residual everywhere).
        x, y = 2 * round(fx * (cw - width) / 2), 2 * round(fy * (ch - height) / 2)
        return [canvases[i][0][y:y + height, x:x + width],
                *(c[y // 2:y // 2 + height // 2, x // 2:x // 2 + width // 2] for c in canvases[i][1:])]

    for n in range(duration * fps):
        t = n / fps
        i = min(int(t / seg), n_img - 1)
        frame = av.VideoFrame(width, height, "yuv420p")
        planes = plane_arrays(frame)
        # Inside a crossfade around the boundary b between image j-1 and j?
        j = round(t / seg)
        w = (t - (j * seg - fade / 2)) / fade if fade and 0 < j < n_img else -1.0
        if 0.0 <= w < 1.0:
            weight = np.uint16(round(w * 256))
            for dst, a, b in zip(planes, window(j - 1, t), window(j, t), strict=True):
                mix = a.astype(np.uint16) * (256 - weight) + b.astype(np.uint16) * weight
                np.right_shift(mix, 8, out=mix)
                dst[...] = mix
        else:
            for dst, src in zip(planes, window(i, t), strict=True):
                dst[...] = src
        paste(planes, stamp, corner="top-right")  # the player's controls cover the bottom edge
        if badge is not None:
            paste(planes, badge, corner="top-right", down=stamp[0].shape[0] + even(height / 80))
        _playhead(planes, n / max(1, duration * fps - 1))
        if words is not None:
            _paste_caption(planes, words, height)
        yield frame


def _playhead(planes: list[np.ndarray], progress: float) -> None:
    """A square crossing the bottom edge once per clip (under the player's controls when they show,
    clear of any label): every simulated clip moves, even a pan over a flat reference (which clip QA
    would rightly call frozen). It is light over a dark picture and dark over a light one: a fixed
    light grey vanished over a white or pale reference (under 10 luma levels apart), and clip QA then
    saw a frozen clip."""
    height, width = planes[0].shape
    knob = even(max(height, width) / 40)
    top = max(0, height - knob - even(height / 80))
    x = 2 * round((width - knob) * min(1.0, max(0.0, progress)) / 2)
    under = planes[0][top:top + knob, x:x + knob]
    under[...] = 220 if under.mean() < 128 else 32
    for chroma in planes[1:]:
        chroma[top // 2:(top + knob) // 2, x // 2:(x + knob) // 2] = 128


def _paste_caption(planes: list[np.ndarray], words: list[np.ndarray], height: int) -> None:
    """The prompt's caption bottom left, an eighth of the height up (clear of the player's controls)."""
    lift = even(height / 8)
    paste([p[: p.shape[0] - (lift if k == 0 else lift // 2)] for k, p in enumerate(planes)], words,
          corner="bottom-left")


def _cover(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``img`` upright, flattened to RGB and cover-cropped (centered) to exactly ``size``."""
    from PIL import Image, ImageOps

    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.new("RGB", img.size, (0, 0, 0))
        img.paste(rgba, mask=rgba.getchannel("A"))
    img = img.convert("RGB")
    w, h = img.size
    scale = max(size[0] / w, size[1] / h)
    bw, bh = size[0] / scale, size[1] / scale
    box = (max(0.0, (w - bw) / 2), max(0.0, (h - bh) / 2), min(w, (w + bw) / 2), min(h, (h + bh) / 2))
    return img.resize(size, Image.Resampling.BICUBIC, box=box, reducing_gap=2.0)


# --- sound -------------------------------------------------------------------------------------


def _tone_track(seed: int, duration: int) -> np.ndarray:
    """A gentle stereo melody whose notes come from ``seed``: float32 array of shape (2, samples)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = duration * SAMPLE_RATE
    out = np.zeros((2, n), np.float32)
    root = 220.0 * 2 ** (int(rng.integers(-5, 7)) / 12)
    scale = root * 2 ** (np.array([0, 2, 4, 7, 9, 12, 14, 16, 19, 21]) / 12)  # major pentatonic
    note_s = float(rng.choice([0.25, 0.375, 0.5]))
    note_n = int(note_s * SAMPLE_RATE)
    t = np.arange(note_n) / SAMPLE_RATE
    attack = np.minimum(1.0, t / 0.01)
    env = attack * np.exp(-3.0 * t / note_s)
    for k in range(math.ceil(n / note_n)):
        freq = float(rng.choice(scale))
        pan = float(rng.uniform(0.25, 0.75))
        tone = (np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(4 * np.pi * freq * t)) * env
        seg = slice(k * note_n, min(n, (k + 1) * note_n))
        m = seg.stop - seg.start
        out[0, seg] += (1 - pan) * tone[:m]
        out[1, seg] += pan * tone[:m]
    drone = 0.25 * np.sin(2 * np.pi * (root / 2) * np.arange(n) / SAMPLE_RATE)
    out += drone.astype(np.float32)
    fade = np.ones(n, np.float32)
    fin, fout = min(n, SAMPLE_RATE // 20), min(n, SAMPLE_RATE // 2)
    fade[:fin] = np.linspace(0, 1, fin)
    fade[n - fout:] = np.minimum(fade[n - fout:], np.linspace(1, 0, fout))
    out *= 0.2 * fade
    return out


def _audio_packets(stream: AudioStream, samples: np.ndarray) -> Iterator[Packet]:
    import av
    import numpy as np

    frame_size = stream.codec_context.frame_size or 1024
    for start in range(0, samples.shape[1], frame_size):
        chunk = np.ascontiguousarray(samples[:, start:start + frame_size])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
        yield from stream.encode(frame)
    yield from stream.encode(None)


# --- final file --------------------------------------------------------------------------------


def _mux(path: str, video_path: pathlib.Path, samples: np.ndarray, *, seed: int, label: str) -> None:
    """Write the final MP4: the cached video packets, the freshly encoded audio, interleaved."""
    import av

    from runflow_nb.media.probe import open_input

    try:
        src = open_input(video_path)
    except (OSError, av.FFmpegError) as exc:
        raise _CacheReadError(str(exc)) from exc
    with src, av.open(path, "w", format="mp4", container_options={"movflags": "+faststart"}) as out:
        vin = src.streams.video[0]
        vout = out.add_stream_from_template(vin)
        aout = add_aac_stream(out)
        out.metadata["comment"] = f"runflow_nb simulator ({label}); seed={seed}"
        _interleave(out, _video_packets(src, vin, vout), _audio_packets(aout, samples))


def _video_packets(src: Any, vin: Stream, vout: Stream) -> Iterator[Packet]:
    import av

    try:
        for packet in src.demux(vin):
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            if packet.is_corrupt:
                raise _CacheReadError(f"corrupt packet in {src.name}")
            packet.stream = vout
            yield packet
    except av.FFmpegError as exc:
        raise _CacheReadError(str(exc)) from exc


def _interleave(out: OutputContainer, *streams: Iterator[Packet]) -> None:
    """Mux packets in decode-time order so the file plays while it downloads."""

    def timed(packets: Iterator[Packet], order: int) -> Iterator[tuple[Fraction, int, Packet]]:
        for p in packets:
            yield (p.dts if p.dts is not None else 0) * p.time_base, order, p

    for _, _, packet in heapq.merge(*(timed(s, k) for k, s in enumerate(streams)), key=lambda e: e[:2]):
        out.mux(packet)
