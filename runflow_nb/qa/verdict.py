"""From measurements to a verdict: the short ``qa`` text (``ok`` or the findings), whether the clip
is flagged, and the numbers stored beside it.

>>> from runflow_nb.qa.measure import Measurements
>>> m = Measurements(frames=96, width=1280, height=720, fps=24.0, duration_s=2.0, has_audio=True,
...                  audio_s=2.0, rms_db=-20.0, peak_db=-3.0, clipped_share=0.0)
>>> verdict(m, Expectation(duration_s=4, width=1280, height=720), limits=QA_DEFAULTS).text
'2.0 s of 4 s'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..settings import QA_DEFAULTS, QAThresholds
from .measure import Measurements

__all__ = ["OK", "Expectation", "Verdict", "expectation_for", "verdict"]

OK = "ok"
_SIZE_SLACK = 0.02  # a side or a ratio may differ this much (encoders round to even or 16-pixel sizes)
_SILENT_COVER = 0.95  # a track silent over this share of its length is called silent outright


@dataclass(frozen=True)
class Expectation:
    """What was asked: the length (seconds), and the frame size or its short side and ratio.

    ``duration_slack_s`` widens the lower bound for clips whose asked length is rounded up (a
    video-edit run is billed in whole seconds of its input clip).
    """

    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    short_side: int | None = None
    duration_slack_s: float = 0.0


def expectation_for(row: Mapping[str, Any]) -> Expectation:
    """What a stored run asked for: its duration, and its frame size where the model fixes it
    (reference- and text-to-video: resolution and ratio; image-to-video and video-edit keep their
    input's ratio, so only the short side is checked)."""
    from ..specs import get_spec

    duration = row.get("duration")
    resolution = row.get("resolution")
    short = int(str(resolution).rstrip("p")) if isinstance(resolution, str) and resolution[:-1].isdigit() else None
    try:
        spec = get_spec(str(row.get("model") or "r2v"))
    except Exception:  # an unknown model name: check what does not depend on it
        spec = None
    edit = spec is not None and spec.video is not None
    width = height = None
    ratio = row.get("aspect_ratio")
    if spec is not None and not edit and isinstance(ratio, str) and ":" in ratio and short:
        try:
            width, height = spec.output_size(ratio, f"{short}p")
        except ValueError:
            width = height = None
    return Expectation(duration_s=float(duration) if isinstance(duration, (int, float)) else None,
                       width=width, height=height, short_side=short, duration_slack_s=1.0 if edit else 0.0)


@dataclass(frozen=True)
class Verdict:
    """``text`` is ``ok`` or the findings joined by ``; ``; ``columns`` are the values stored with the run."""

    findings: tuple[str, ...]
    columns: dict[str, Any]

    @property
    def flagged(self) -> bool:
        return bool(self.findings)

    @property
    def text(self) -> str:
        return "; ".join(self.findings) if self.findings else OK


def _s(x: float) -> str:
    return f"{x:.1f}"


def _spans(kind: str, spans: list[tuple[float, float]], total: float) -> str:
    shown = ", ".join(f"{_s(a)}–{_s(b)}" for a, b in spans[:2])
    more = f" (+{len(spans) - 2} more, {_s(total)} s in all)" if len(spans) > 2 else ""
    return f"{kind} {shown} s{more}"


def _db(x: float | None) -> float | None:
    return None if x is None or math.isinf(x) else x


def verdict(m: Measurements, expect: Expectation, *, limits: QAThresholds = QA_DEFAULTS,
            nsfw_detected: bool | None = None) -> Verdict:
    """The findings for one clip, in a fixed order: unreadable, black, frozen, audio, length,
    size, frame rate, decode errors, the service's NSFW flag."""
    found: list[str] = []
    if m.error is not None and m.frames == 0:
        found.append(f"unreadable ({m.error})")
    if m.black_spans:
        found.append(_spans("black", m.black_spans, m.black_s))
    if m.frozen_spans:
        found.append(_spans("frozen", m.frozen_spans, m.frozen_s))
    if m.frames:
        if not m.has_audio:
            found.append("no audio")
        elif (m.audio_s <= 0 or m.silent_s >= _SILENT_COVER * m.audio_s
              or m.peak_db is None or m.peak_db < limits.silence_db):  # however short, all of it below
            found.append("silent")
        elif m.silent_spans:
            found.append(_spans("silent", m.silent_spans, m.silent_s))
        if m.has_audio and m.clipped_share is not None and m.clipped_share >= limits.clipped_share > 0:
            found.append(f"clipped audio {m.clipped_share:.1%}")
        if expect.duration_s is not None:
            low = expect.duration_s - expect.duration_slack_s - limits.duration_tolerance_s
            if not low <= m.duration_s <= expect.duration_s + limits.duration_tolerance_s:
                found.append(f"{_s(m.duration_s)} s of {expect.duration_s:g} s")
        size = _size_finding(m, expect)
        if size:
            found.append(size)
        if m.fps is not None and m.fps < limits.min_fps:
            found.append(f"{m.fps:.3g} fps")
    if m.decode_errors and m.frames:
        found.append(f"decode errors {m.decode_errors}")
    if nsfw_detected:
        found.append("nsfw")
    columns = {
        "qa": "; ".join(found) if found else OK,
        "qa_black_s": m.black_s, "qa_frozen_s": m.frozen_s, "qa_silent_s": m.silent_s if m.has_audio else None,
        "qa_rms_db": _db(m.rms_db), "qa_peak_db": _db(m.peak_db),
        "qa_clipped": round(m.clipped_share, 6) if m.clipped_share is not None else None,
        "qa_duration_s": round(m.duration_s, 3) if m.frames else None, "qa_fps": m.fps, "qa_frames": m.frames,
        "qa_decode_errors": m.decode_errors,
    }
    return Verdict(tuple(found), columns)


def _size_finding(m: Measurements, expect: Expectation) -> str | None:
    if m.width is None or m.height is None:
        return None
    got = f"{m.width}×{m.height}"
    if expect.width and expect.height:
        off = (abs(m.width - expect.width) > _SIZE_SLACK * expect.width
               or abs(m.height - expect.height) > _SIZE_SLACK * expect.height)
        return f"{got}, asked {expect.width}×{expect.height}" if off else None
    if expect.short_side:
        short = min(m.width, m.height)
        if abs(short - expect.short_side) > _SIZE_SLACK * expect.short_side:
            return f"{got}, asked {expect.short_side}p"
    return None
