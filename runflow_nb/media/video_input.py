"""Input videos (video-edit's ``video_url``): a local MP4/MOV checked before anything is sent, or a URL.

>>> from runflow_nb.specs import VIDEO_EDIT
>>> src = load_video("clip.mp4", rules=VIDEO_EDIT.video)          # doctest: +SKIP
>>> src.duration_s, src.needs_upload                               # doctest: +SKIP
(5.0, True)

A local file is probed with PyAV (container, duration, a decodable frame) and hashed, so the run
key names exactly which clip went in. It is sent through the documented asset-upload flow, whose
cap is 50 MiB: a larger local clip is refused with a message that says to pass its URL instead
(the model takes up to 100 MB by URL). A URL is passed as given; the service checks it.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .._sources import a_or_an, is_http_url, local_file, unsupported_scheme, url_issues
from ..errors import Issue
from ..specs import VideoRules

__all__ = ["VideoSource", "billed_seconds", "load_video"]

_MIME = {"MP4": "video/mp4", "MOV": "video/quicktime"}
# Decoders report a few hundredths over the nominal length (AAC priming): 3.02 s bills as 3 s.
_SECONDS_SLACK = 0.05


@dataclass(frozen=True)
class VideoSource:
    """One input video: a checked local file or a URL.

    ``sha256`` identifies the clip (of the file's bytes; of the URL itself for a URL).
    ``duration_s`` is known for local files (and for URLs when the caller knows it, e.g. the
    stored length of a clip made by an earlier run); the price of an edit depends on it.
    """

    kind: Literal["path", "url"]
    display: str
    sha256: str
    path: Path | None = None
    size_bytes: int | None = None
    duration_s: float | None = None
    format: str | None = None  # MP4 or MOV
    width: int | None = None
    height: int | None = None
    has_audio: bool | None = None

    @property
    def url(self) -> str | None:
        return self.display if self.kind == "url" else None

    @property
    def mime(self) -> str:
        return _MIME.get(self.format or "MP4", "video/mp4")

    @property
    def needs_upload(self) -> bool:
        return self.kind == "path"

    @property
    def aspect_ratio(self) -> str | None:
        """The frame shape as ``"w:h"`` (None when unknown)."""
        return f"{self.width}:{self.height}" if self.width and self.height else None

    def read_bytes(self) -> bytes:
        assert self.path is not None
        return self.path.read_bytes()


def billed_seconds(duration_s: float) -> int:
    """Whole seconds billed for a clip of ``duration_s`` (rounded up, past decoder slack)."""
    return max(1, math.ceil(duration_s - _SECONDS_SLACK))


def load_video(obj: Any, *, rules: VideoRules, duration_s: float | None = None) -> VideoSource | list[Issue]:
    """Check one input video (a path or an http(s) URL) or return why it cannot be used."""
    where = rules.field
    try:
        return _load(obj, where, rules, duration_s)
    except (ValueError, UnicodeError, RuntimeError, OSError) as exc:
        return [Issue(where, f"cannot be used as a video ({type(exc).__name__}: {str(exc)[:120]})",
                      "pass a plain file path or an http(s) URL")]


def _load(obj: Any, where: str, rules: VideoRules, duration_s: float | None) -> VideoSource | list[Issue]:
    if isinstance(obj, VideoSource):
        return obj
    if obj is None:
        return [Issue(where, "is required: the clip to edit", "pass video='clip.mp4' or an http(s) URL")]
    if is_http_url(obj):
        url = obj.strip()
        issues = url_issues(url, where)
        if not issues and duration_s is not None:
            issues = _duration_issues(duration_s, where, rules)
        return issues or VideoSource("url", url, hashlib.sha256(url.encode()).hexdigest(), duration_s=duration_s)
    bad_scheme = unsupported_scheme(obj, where)
    if bad_scheme:
        return bad_scheme
    if not isinstance(obj, (str, os.PathLike)):
        return [Issue(where, f"{a_or_an(type(obj).__name__)} is not a video", "pass a file path or an http(s) URL")]
    found = local_file(obj, where=where, noun="video")
    if isinstance(found, list):
        return found
    path, size = found
    if size > rules.max_bytes:
        return [Issue(where, f"is {size / 1e6:.1f} MB; the limit is {rules.max_bytes / 1e6:.0f} MB",
                      "trim or re-encode it (3–60 s of MP4 or MOV)")]
    if size > rules.max_upload_bytes:
        return [Issue(where, f"is {size / 2**20:.1f} MiB: local videos are sent through an asset upload, "
                             f"capped at {rules.max_upload_bytes // 2**20} MiB",
                      f"host the file and pass its http(s) URL instead (the model takes up to "
                      f"{rules.max_bytes / 1e6:.0f} MB by URL), or re-encode it smaller")]
    with open(path, "rb") as fh:
        head = fh.read(12)
    fmt = _container_format(head)
    if fmt is None or fmt not in rules.formats:
        return [Issue(where, f"{str(path)!r} is not an MP4 or MOV file",
                      "convert it, e.g. ffmpeg -i in.webm -c:v libx264 -c:a aac out.mp4")]
    from ..errors import DownloadError
    from .probe import probe, sha256_file

    try:
        info = probe(path)
    except DownloadError as exc:
        return [Issue(where, f"is not a playable video ({str(exc).removeprefix(str(path)).strip(' :')})",
                      "re-export the clip as MP4 (H.264)")]
    issues = _duration_issues(info.duration, where, rules)
    if issues:
        return issues
    return VideoSource("path", str(path), sha256_file(path), path=path, size_bytes=size, duration_s=info.duration,
                       format=fmt, width=info.width, height=info.height, has_audio=info.has_audio)


def _duration_issues(duration_s: float, where: str, rules: VideoRules) -> list[Issue]:
    lo, hi = rules.min_duration_s, rules.max_duration_s
    if isinstance(duration_s, bool) or not isinstance(duration_s, (int, float)) or not math.isfinite(duration_s):
        return [Issue("video_duration_s", f"is {duration_s!r}", f"give the clip's length in seconds ({lo:g}–{hi:g})")]
    if duration_s < lo - _SECONDS_SLACK or duration_s > hi + _SECONDS_SLACK:
        return [Issue(where, f"is {duration_s:.1f} s long; the clip must be {lo:g}–{hi:g} s",
                      "trim it (or loop a short one) to fit")]
    return []


def _container_format(head: bytes) -> str | None:
    """MP4 or MOV from the ISO-BMFF ``ftyp`` brand (None for anything else)."""
    if len(head) < 12:
        return None
    box = head[4:8]
    if box == b"ftyp":
        return "MOV" if head[8:12] == b"qt  " else "MP4"
    if box in (b"moov", b"mdat", b"wide", b"free"):  # old QuickTime files start without ftyp
        return "MOV"
    return None
