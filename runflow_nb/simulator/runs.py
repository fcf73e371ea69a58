"""A simulated run's record: its id and times, the clip's shape, and the fields its view echoes.

Used by :mod:`runflow_nb.simulator.engine` (the job engine) and :mod:`runflow_nb.emulator` (over HTTP).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..specs import ModelSpec


def uuid7(now: float | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits; sorts by creation time."""
    ms = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(secrets.token_bytes(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def iso_utc(t: float | None) -> str | None:
    """Epoch seconds → ISO-8601 UTC with a ``Z`` (milliseconds), or None."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- runs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Clip:
    """The output's shape: length (and the seconds billed) and frame ratio, per model."""

    seconds: float
    billed_s: int
    aspect_ratio: str


def _clip_shape(spec: ModelSpec, clean: Mapping[str, Any], images: Sequence[Any], video: Any) -> _Clip:
    """r2v/t2v: as asked; i2v: the image's ratio; video-edit: the input clip's length and ratio."""
    if spec.video is not None:
        from ..media.probe import probe
        from ..media.video_input import billed_seconds

        info = probe(video)
        return _Clip(info.duration, billed_seconds(info.duration), f"{info.width}:{info.height}")
    seconds = int(clean["duration"])
    if spec.has_images and spec.images.single:
        w, h = images[0].size
        return _Clip(seconds, seconds, f"{w}:{h}")
    return _Clip(seconds, seconds, str(clean["aspect_ratio"]))


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


@dataclass
class _Run:
    id: str
    seq: int
    model: str
    input: dict[str, Any]
    params: dict[str, Any]
    seed: int
    created: float
    latency: float
    request_id: str | None
    client_ref: str | None
    metadata: dict[str, Any] | None
    callback_url: str | None
    force_failure: bool
    force_nsfw: bool
    price: float
    clip: _Clip
    outcome: str = "succeeded"  # how the run ends when it does not fail: succeeded / partial_succeeded / canceled
    batch_id: str | None = None
    flaw: str | None = None  # render a clip with this one flaw (simulator.flaws), for clip QA
    status: str = "queued"
    started: float | None = None
    completed: float | None = None
    future: concurrent.futures.Future[None] | None = None
    render_done_at: float | None = None
    render_error: str | None = None
    path: Path | None = None
    size: int | None = None
    sha256: str | None = None
    token: str | None = None
    failure: tuple[str, str, str] | None = None
    billed: bool = False
    logs: list[dict[str, Any]] = field(default_factory=list)


ORG_ID = "0193a8c2-0000-7000-8000-00000000e0e0"  # the emulated organisation


def _model_uuid(model: str) -> str:
    """A stable UUID-shaped id per model slug (the API names models by UUID in run objects)."""
    h = hashlib.sha256(model.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"


def _seed_for(run_id: str) -> int:
    """A seed drawn for a run that did not ask for one: deterministic per run id."""
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:4], "big") & 0x7FFFFFFF


def _describe_image(x: Any) -> Any:
    """How an image shows in the run's echoed input: URLs as given, data: URIs and pixels shortened."""
    if isinstance(x, str):
        if x.startswith("data:") and len(x) > 96:
            head = x.split(",", 1)[0]
            return f"{head},…({len(x) - len(head) - 1} characters)"
        return x
    size = getattr(x, "size", None)
    return f"<image {size[0]}x{size[1]}>" if isinstance(size, tuple) and len(size) == 2 else repr(x)[:80]
