"""Input videos on the emulator's side (video-edit's ``video_url``): resolved to a local file and
checked under the model page's video rule (container, length, size).

A ``video_url`` may be a confirmed upload of this emulator, one of its own output files (the clip
of an earlier run, ``/files/{token}/{run}.mp4``, signature and expiry checked), or any http(s)
URL, fetched with the emulator's timeout and at most the rule's byte limit (the model takes up to
100 MB by URL). Unlike images there is no placeholder: a clip that cannot be had is a 422.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from .._files import write_whole
from ..errors import APIError, DownloadError, Issue
from .images import EXAMPLE_HOST
from .rules import VideoRule

if TYPE_CHECKING:
    from .base import EmulatorBase

__all__ = ["resolve_video"]

_SLACK_S = 0.05  # decoders report a few hundredths over a clip's nominal length


def resolve_video(emu: EmulatorBase, value: Any, request: httpx.Request, rules: VideoRule
                  ) -> tuple[Path | None, list[Issue]]:
    """The local file behind ``value`` and the problems found (the file is None when there are any)."""
    where = rules.field
    if value is None:
        return None, [Issue(where, "is required: the clip to edit", "send the URL of an MP4 or MOV clip (3–60 s)")]
    if not isinstance(value, str):
        return None, [Issue(where, f"must be a URL string, got {type(value).__name__}",
                            "send an http(s) URL or an uploaded asset URL")]
    url = value.strip()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None, [Issue(where, "is not an http(s) URL", "send a full http(s) URL or an uploaded asset URL")]
    local = {urllib.parse.urlsplit(emu.base_url).netloc.lower(), request.url.netloc.decode("ascii").lower()}
    inbox = emu.simulator.workdir / "inputs"
    inbox.mkdir(parents=True, exist_ok=True)
    if parts.netloc.lower() in local and parts.path.startswith("/assets/"):
        asset = emu.asset_from_url(parts.path, httpx.QueryParams(parts.query))
        if isinstance(asset, str):
            return None, [Issue(where, asset, "PUT the bytes to upload_url, confirm the upload and send the "
                                              "Asset record's signed url")]
        path = _keep(inbox, asset["data"])
    elif parts.netloc.lower() in local and parts.path.startswith("/files/"):
        _, _, token, name = parts.path.split("/", 3)
        try:
            path = emu.simulator.resolve_file(token, name)
        except (APIError, DownloadError) as exc:  # unknown, bad signature, expired
            return None, [Issue(where, f"could not be fetched ({exc})", "use a fresh URL of the clip")]
    elif EXAMPLE_HOST.search(parts.hostname or ""):
        return None, [Issue(where, "could not be fetched (a reserved example host, never fetched)",
                            "use a reachable URL or an uploaded asset")]
    else:
        try:
            data = _fetch(url, rules.max_bytes, emu.fetch_timeout_s)
        except httpx.HTTPError as exc:
            return None, [Issue(where, f"could not be fetched ({type(exc).__name__}: {exc})"[:240],
                                "use a reachable URL or an uploaded asset")]
        if data is None:
            return None, [Issue(where, f"is larger than {rules.max_bytes / 1e6:.0f} MB", "trim or re-encode it")]
        if isinstance(data, Issue):
            return None, [data]
        path = _keep(inbox, data)
    issues = check_video_file(path, rules)
    return (None, issues) if issues else (path, [])


def check_video_file(path: Path, rules: VideoRule) -> list[Issue]:
    """The page's rule for a clip on disk: size, MP4/MOV container, a playable video, its length."""
    from ..media.probe import probe

    where = rules.field
    size = path.stat().st_size
    if size > rules.max_bytes:
        return [Issue(where, f"is {size / 1e6:.1f} MB; the limit is {rules.max_bytes / 1e6:.0f} MB",
                      "trim or re-encode it")]
    with open(path, "rb") as fh:
        head = fh.read(12)
    if len(head) < 12 or head[4:8] not in (b"ftyp", b"moov", b"mdat", b"wide", b"free"):
        return [Issue(where, "is not an MP4 or MOV file", "send an MP4 (H.264) or MOV clip")]
    try:
        info = probe(path)
    except DownloadError as exc:
        return [Issue(where, f"is not a playable video ({str(exc)[-160:]})", "re-export the clip as MP4")]
    lo, hi = rules.min_duration_s, rules.max_duration_s
    if not lo - _SLACK_S <= info.duration <= hi + _SLACK_S:
        return [Issue(where, f"is {info.duration:.1f} s long; the clip must be {lo:g}–{hi:g} s", "trim it")]
    return []


def _keep(folder: Path, data: bytes) -> Path:
    path = folder / f"{hashlib.sha256(data).hexdigest()}.mp4"
    if not path.exists():  # concurrent requests may keep one clip: each writes its own temporary file
        write_whole(path, lambda tmp: tmp.write_bytes(data))
    return path


def _fetch(url: str, max_bytes: int, timeout_s: float) -> bytes | Issue | None:
    """The body (None when it is larger than ``max_bytes``; an Issue for an HTTP error)."""
    with httpx.Client(timeout=timeout_s, follow_redirects=True, trust_env=False) as client, \
            client.stream("GET", url) as resp:
        if resp.status_code >= 400:
            return Issue("video_url", f"could not be fetched: the server answered HTTP {resp.status_code}",
                         "use a URL that answers with the clip")
        buf = bytearray()
        for chunk in resp.iter_bytes():
            buf += chunk
            if len(buf) > max_bytes:
                return None
        return bytes(buf)
