"""One streaming pass over a clip with PyAV: black and frozen stretches, audio level, silence and
clipping, the decoded length, size and frame rate, and decode errors.

Memory stays bounded whatever the clip's length: each video frame is reduced to a subsampled luma
plane (about 32,000 samples: every 8th pixel of every 8th row at 1080p) compared with the one before and then dropped; each audio
frame adds to running sums. Only stretches long enough to report are kept (at most
:data:`MAX_SPANS` of each kind). The luma is read straight from the decoded frame's first plane
(every YUV format H.264 produces), so no colour conversion or scaling runs per frame; this pass
measured faster than FFmpeg's blackdetect + freezedetect through a PyAV filter graph
(``benchmarks/bench_qa.py``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..settings import QAThresholds

if TYPE_CHECKING:
    import numpy as np

__all__ = ["MAX_SPANS", "Measurements", "measure"]

MAX_SPANS = 20  # stretches kept per kind; the total seconds count them all
_MOVE_LEVELS = 10  # a sample "moved" when its luma changed by more than this (8-bit levels)
# Formats whose first plane is the 8-bit luma (full or limited range): read as is, no conversion.
_EIGHT_BIT_LUMA = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p",
                             "yuvj440p", "yuv411p", "yuv410p", "nv12", "nv21", "nv16", "gray"})
_TARGET_SAMPLES = 1 << 15  # luma samples looked at per frame (a stride picks them; 240×135 at 1080p)
# An audio sample at or above this magnitude (-0.45 dBFS) counts as at full scale: AAC's ringing pulls
# a hard-clipped waveform's decoded samples below 1.0 (a tone driven 12 dB past full scale decodes
# with 0.07% of its samples at 0.999 or more, but 17% at 0.95 or more).
_FULL_SCALE = 0.95


@dataclass
class Measurements:
    """What one pass over a clip found (times in seconds from the first frame)."""

    frames: int = 0
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    duration_s: float = 0.0  # decoded: the last frame's end
    black_spans: list[tuple[float, float]] = field(default_factory=list)
    black_s: float = 0.0  # total seconds in black stretches at least black_min_s long
    frozen_spans: list[tuple[float, float]] = field(default_factory=list)
    frozen_s: float = 0.0
    has_audio: bool = False
    audio_s: float = 0.0
    rms_db: float | None = None  # the whole track's RMS, dBFS
    peak_db: float | None = None
    clipped_share: float | None = None  # share of samples at full scale
    silent_spans: list[tuple[float, float]] = field(default_factory=list)
    silent_s: float = 0.0
    decode_errors: int = 0
    error: str | None = None  # the file could not be read at all (or stopped being readable)


class _Stretches:
    """Runs of consecutive hits (frames or audio windows), kept when at least ``min_s`` long."""

    def __init__(self, min_s: float) -> None:
        self.min_s = min_s
        self.start: float | None = None
        self.end = 0.0
        self.spans: list[tuple[float, float]] = []
        self.total = 0.0

    def hit(self, start: float, end: float) -> None:
        if self.start is None:
            self.start = start
        self.end = end

    def miss(self) -> None:
        if self.start is not None:
            length = self.end - self.start
            if length >= self.min_s - 1e-6:
                self.total += length
                if len(self.spans) < MAX_SPANS:
                    self.spans.append((round(self.start, 3), round(self.end, 3)))
            self.start = None


class _VideoPass:
    def __init__(self, stream: Any, limits: QAThresholds, m: Measurements) -> None:
        self.m = m
        self.limits = limits
        self.black = _Stretches(limits.black_min_s)
        self.frozen = _Stretches(limits.frozen_min_s)
        self.anchor: np.ndarray | None = None  # the frame a still stretch is measured from
        self.anchor_t = 0.0
        self.t0: float | None = None
        rate = stream.average_rate or stream.guessed_rate
        self.frame_s = 1 / float(rate) if rate else 1 / 24
        m.fps = float(rate) if rate else None
        self.stride = 1

    def frame(self, frame: Any) -> None:
        import numpy as np

        m = self.m
        if m.width is None:
            m.width, m.height = frame.width, frame.height
            self.stride = max(1, round(math.sqrt(frame.width * frame.height / _TARGET_SAMPLES)))
        t = float(frame.time) if frame.time is not None else m.frames * self.frame_s
        if self.t0 is None:
            self.t0 = t
        t -= self.t0
        m.frames += 1
        m.duration_s = max(m.duration_s, t + self.frame_s)
        if frame.format.name in _EIGHT_BIT_LUMA:
            plane = frame.planes[0]
            luma = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)
            y = np.ascontiguousarray(luma[::self.stride, :frame.width:self.stride])  # one gather, then small
        else:  # 10-bit, RGB, palette...: let FFmpeg scale it down to 8-bit grey first
            small = frame.reformat(width=max(1, frame.width // self.stride),
                                   height=max(1, frame.height // self.stride), format="gray")
            plane = small.planes[0]
            y = np.frombuffer(plane, np.uint8).reshape(small.height, plane.line_size)[:, :small.width]
        bright = np.count_nonzero(y > self.limits.black_luma)
        is_black = bright <= (1 - self.limits.black_share) * y.size
        if is_black:
            self.black.hit(t, t + self.frame_s)
        else:
            self.black.miss()
        # As FFmpeg's freezedetect: each frame is compared with the first frame of the still stretch
        # (the anchor), not only the one before, so a slow pan that moves a pixel a frame adds up.
        if self.anchor is not None and not is_black:
            moved = np.count_nonzero(np.abs(np.subtract(y, self.anchor, dtype=np.int16)) > _MOVE_LEVELS)
            if moved < self.limits.frozen_change * y.size:
                self.frozen.hit(self.anchor_t, t + self.frame_s)
                return  # the anchor stays
        self.frozen.miss()
        self.anchor, self.anchor_t = (None, 0.0) if is_black else (y, t)

    def close(self) -> None:
        self.black.miss()
        self.frozen.miss()
        m = self.m
        m.black_spans, m.black_s = self.black.spans, round(self.black.total, 3)
        m.frozen_spans, m.frozen_s = self.frozen.spans, round(self.frozen.total, 3)


class _AudioPass:
    def __init__(self, limits: QAThresholds, m: Measurements) -> None:
        self.m = m
        self.floor = 10 ** (limits.silence_db / 20)
        self.silent = _Stretches(limits.silence_min_s)
        self.sum_sq = 0.0
        self.count = 0
        self.peak = 0.0
        self.clipped = 0
        self.t0: float | None = None
        self.end = 0.0

    def frame(self, frame: Any) -> None:
        import numpy as np

        samples = frame.to_ndarray()
        if samples.dtype.kind == "i":
            samples = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max + 1)
        elif samples.dtype.kind == "u":  # u8: centred on 128
            samples = (samples.astype(np.float32) - 128) / 128
        n = samples.size
        if n == 0:
            return
        flat = samples.ravel()
        sq = float(np.dot(flat, flat))  # float32 sums of ~2,000 samples: precise enough for a level
        self.sum_sq += sq
        self.count += n
        mag = np.abs(flat)
        self.peak = max(self.peak, float(mag.max()))
        self.clipped += int(np.count_nonzero(mag >= _FULL_SCALE))
        rate = frame.sample_rate or 48_000
        t = float(frame.time) if frame.time is not None else self.end
        if self.t0 is None:
            self.t0 = t
        t -= self.t0
        end = t + frame.samples / rate
        self.end = max(self.end, end)
        if math.sqrt(sq / n) < self.floor:
            self.silent.hit(t, end)
        else:
            self.silent.miss()

    def close(self) -> None:
        self.silent.miss()
        m = self.m
        m.audio_s = round(self.end, 3)
        m.silent_spans, m.silent_s = self.silent.spans, round(self.silent.total, 3)
        if self.count:
            rms = math.sqrt(self.sum_sq / self.count)
            m.rms_db = round(20 * math.log10(rms), 1) if rms > 0 else -math.inf
            m.peak_db = round(20 * math.log10(self.peak), 1) if self.peak > 0 else -math.inf
            m.clipped_share = self.clipped / self.count


def measure(path: str | os.PathLike[str], *, limits: QAThresholds) -> Measurements:
    """Decode ``path`` once (its first video and first audio stream) and measure it.

    Never raises for a bad file: what could not be read is counted in ``decode_errors`` and,
    when nothing more can be read, described in ``error``.
    """
    import av

    from ..media.probe import open_input

    m = Measurements()
    try:
        container = open_input(path)
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        m.error = f"cannot open: {exc}"
        return m
    with container:
        vstreams, astreams = container.streams.video, container.streams.audio
        if not vstreams:
            m.error = "no video stream"
            return m
        video = _VideoPass(vstreams[0], limits, m)
        audio = _AudioPass(limits, m) if astreams else None
        m.has_audio = audio is not None
        streams = [vstreams[0], *astreams[:1]]
        try:
            for packet in container.demux(*streams):
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    m.decode_errors += 1
                    continue
                for frame in frames:
                    if packet.stream.type == "video":
                        video.frame(frame)
                    elif audio is not None:
                        audio.frame(frame)
        except av.FFmpegError as exc:  # the container stops being readable (e.g. a truncated file)
            m.decode_errors += 1
            m.error = f"stopped reading: {exc}"
        video.close()
        if audio is not None:
            audio.close()
    if m.frames == 0 and m.error is None:
        m.error = "no frame could be decoded"
    return m
