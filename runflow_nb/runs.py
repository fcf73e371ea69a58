"""Run records as the API reports them, parsed tolerantly in one place.

The API's run object is documented loosely (``output`` has several shapes in the wild), so every
field is read defensively here and nowhere else.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = ["TERMINAL", "Output", "Run", "RunEvent", "normalize_status", "notices_in", "parse_time"]

TERMINAL = frozenset({"succeeded", "failed", "canceled", "partial_succeeded"})
_ALIASES = {"cancelled": "canceled", "completed": "succeeded", "success": "succeeded", "error": "failed",
            "in_progress": "running", "processing": "running", "pending": "queued", "starting": "dispatching"}


def normalize_status(value: Any) -> str:
    """The documented status names, accepting ``cancelled`` and a few common synonyms."""
    s = str(value or "unknown").strip().lower()
    return _ALIASES.get(s, s)


@functools.lru_cache(maxsize=1)
def _datetime_adapter() -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(datetime)


def parse_time(value: Any) -> datetime | None:
    """A timestamp as the API may send it → aware UTC datetime; None when absent or garbled.

    Parsed by pydantic, so every supported Python reads the same forms the same way: ISO 8601 with
    ``Z`` or an offset (``+02:00``/``+0200``), a space or ``T`` between date and time, any number
    of fractional digits (kept to microseconds), a date alone (midnight UTC), and epoch seconds or
    milliseconds as numbers or digit strings. Naive times are taken as UTC.

    >>> parse_time("2024-05-01T12:00:00.123456789Z")
    datetime.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=datetime.timezone.utc)
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    elif not isinstance(value, (int, float, datetime)):
        return None
    from pydantic import ValidationError

    try:
        dt: datetime = _datetime_adapter().validate_python(value)
    except (ValidationError, ValueError, TypeError, OverflowError):
        return None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _num(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _int(value: Any) -> int | None:
    f = _num(value)
    return int(f) if f is not None else None


@dataclass(frozen=True)
class Output:
    """The video a run produced, whichever shape the API used to describe it."""

    video_url: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    seed: int | None = None
    inference_ms: float | None = None
    nsfw_detected: bool | None = None
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None

    @classmethod
    def parse(cls, obj: Any) -> Output | None:
        """Accepts ``{"outputs": [{"url"...}], "seed", "timing", "nsfw_detected"}`` and the variants
        ``{"video": {"url"}}``, ``{"url"}``, ``{"output_url"}``, a bare URL string, or a list of outputs."""
        if obj is None:
            return None
        if isinstance(obj, str):
            return cls(video_url=obj)
        if isinstance(obj, list):
            obj = {"outputs": obj}
        if not isinstance(obj, dict):
            return None
        item: dict[str, Any] = {}
        outputs = obj.get("outputs")
        if isinstance(outputs, list) and outputs:
            videos = [o for o in outputs if isinstance(o, dict) and o.get("type", "video") == "video"]
            item = videos[0] if videos else (outputs[0] if isinstance(outputs[0], dict) else {})
        elif isinstance(obj.get("video"), dict):
            item = obj["video"]
        elif isinstance(obj.get("video"), str):
            item = {"url": obj["video"]}
        url = item.get("url") or obj.get("url") or obj.get("output_url") or obj.get("video_url")
        timing = obj.get("timing") if isinstance(obj.get("timing"), dict) else {}
        nsfw = obj.get("nsfw_detected", item.get("nsfw_detected"))
        if isinstance(nsfw, list):
            nsfw = any(bool(x) for x in nsfw)
        return cls(
            video_url=str(url) if url else None,
            width=_int(item.get("width")),
            height=_int(item.get("height")),
            duration=_num(item.get("duration")),
            seed=_int(obj.get("seed", item.get("seed"))),
            inference_ms=_num(timing.get("inference_ms") if timing else obj.get("inference_ms")),
            nsfw_detected=None if nsfw is None else bool(nsfw),
            content_type=item.get("content_type") if isinstance(item.get("content_type"), str) else None,
            size=_int(item.get("size")),
            sha256=item.get("sha256") if isinstance(item.get("sha256"), str) else None,
        )


@dataclass(frozen=True)
class Run:
    """A snapshot of one remote run (``GET /v1/runs/{id}``)."""

    id: str
    status: str
    output: Output | None = None
    cost_usd: float | None = None
    duration_ms: float | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    failure_stage_code: str | None = None
    request_id: str | None = None
    client_ref: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, data: Any) -> Run:
        if isinstance(data, dict) and isinstance(data.get("data"), dict) and "id" not in data:
            data = data["data"]  # some endpoints wrap the object
        if not isinstance(data, dict) or not data.get("id"):
            raise ValueError("the answer is not a run object (no id)")
        out = Output.parse(data.get("output"))
        if out is None and (data.get("video") or data.get("url") or data.get("output_url")):
            out = Output.parse(data)  # the model page's flat answer: {"video": {"url"}, "seed", ...}
        meta = data.get("metadata")
        if isinstance(data.get("callback_url"), str):  # the server echoes the webhook URL: keep its token out of sight
            from .settings import redact_url

            data = {**data, "callback_url": redact_url(data["callback_url"])}
        return cls(
            id=str(data["id"]),
            status=normalize_status(data.get("status_code") or data.get("status")),
            output=out,
            cost_usd=_num(data.get("cost")),
            duration_ms=_num(data.get("duration_ms")),
            failure_code=_str(data.get("failure_code")),
            failure_message=_str(data.get("failure_message")),
            # Both spellings appear in the docs: ``failure_stage_code`` (run object) and ``failure_stage``.
            failure_stage_code=_str(data.get("failure_stage_code") or data.get("failure_stage")),
            request_id=_str(data.get("request_id")),
            client_ref=_str(data.get("client_ref")),
            metadata=meta if isinstance(meta, dict) else {},
            created_at=parse_time(data.get("created_at")),
            started_at=parse_time(data.get("started_at")),
            completed_at=parse_time(data.get("completed_at")),
            raw=data,
        )

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.status in ("succeeded", "partial_succeeded") and bool(self.output and self.output.video_url)

    @property
    def notices(self) -> tuple[str, ...]:
        """Warnings the server attached to the run (warning/error items of its ``logs`` field), e.g.
        that a reference image could not be fetched and a placeholder was used."""
        return notices_in(self.raw.get("logs"))

    @property
    def logs_left_out(self) -> bool:
        """The server says the run has logs (``has_logs``) but its view does not carry them: they
        are read from ``GET /v1/runs/{id}/logs``."""
        return bool(self.raw.get("has_logs")) and not isinstance(self.raw.get("logs"), list)

    @property
    def queue_s(self) -> float | None:
        if self.created_at and self.started_at:
            return max(0.0, (self.started_at - self.created_at).total_seconds())
        return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class RunEvent:
    """A status change seen while waiting: what a progress display consumes."""

    status: str
    run: Run
    elapsed_s: float

    def __str__(self) -> str:
        return f"{self.run.id}: {self.status} after {self.elapsed_s:.1f} s"


def notices_in(items: Any) -> tuple[str, ...]:
    """The messages of the warning and error items of a run's log items (any level spelling)."""
    if not isinstance(items, list):
        return ()
    found = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("message"), str):
            level = str(item.get("level_code") or item.get("level") or "").lower()
            if level.startswith(("warn", "error")):
                found.append(item["message"])
    return tuple(found)
