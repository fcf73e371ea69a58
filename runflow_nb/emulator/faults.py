"""Faults the emulator can inject: the spec syntax, the seeded draws, and broken connections/bodies.

Adding a fault kind takes two steps:

1. add ``KIND: "help line"`` to :data:`FAULTS` below (the help text, ``FAULT_KINDS`` and the
   parser follow from it; an error answer also goes into :data:`ERROR_FAULTS`);
2. where the fault applies (a route in :mod:`.runs`, :mod:`.assets`, ...), ask
   ``if self.fault("KIND"): ...`` — it draws from the plan's seeded stream and counts the hit in
   ``/_emulator/stats``.

>>> plan = FaultPlan.parse("429=0.1,drop=1x,seed=7")
>>> plan.rates["429"], plan.counts["drop"], plan.seed
(0.1, 1, 7)
"""

from __future__ import annotations

import random
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["BROKEN_ANSWER", "CLIP_FAULTS", "CREATE_FAULTS", "ERROR_FAULTS", "FAULTS", "FAULT_HELP", "FAULT_KINDS", "ConnectionDropped", "CreateFault",
           "FaultPlan", "Injector", "TruncatedStream", "break_answer", "hollow_view", "nonneg"]

#: Every fault kind with its help line (continuation lines are indented by the help formatter).
FAULTS: dict[str, str] = {
    "429": "429 RATE_LIMITED without Retry-After         (any /v1 API endpoint but health)",
    "429ra": "429 RATE_LIMITED with Retry-After: retry_after s (default 1)",
    "500": "500 INTERNAL_ERROR                           (any endpoint, downloads and uploads\n"
           "included, but health and /_emulator)",
    "503": "503 MODEL_UNAVAILABLE                        (same endpoints as 500)",
    "drop": "a create is carried out (a run: created, billed if it succeeds; a batch: all its\n"
            "runs, one draw per batch create; an upload or its confirmation: recorded) but the\n"
            "connection is closed before the answer; in-process: httpx.RemoteProtocolError",
    "create500": "a create is carried out as for drop, then answered 500 INTERNAL_ERROR and nothing\n"
                 "is kept for a replay (the classic double charge when a client takes 5xx for \"not\n"
                 "created\" and a re-send under the same key makes a second run)",
    "create500kept": "as create500, but the 201 is kept: a re-send under the same Idempotency-Key\n"
                     "replays it (a proxy failed after the backend answered)",
    "slow": "a GET under /v1 sleeps slow_s seconds (default 3) before answering",
    "fail": "the run fails (GENERATION_FAILED, not billed)",
    "partial": "the run ends partial_succeeded, with its outputs (billed)",
    "cancel": "the run ends canceled by an administrator (not billed, no output)",
    "nsfw": "the run succeeds with nsfw_detected=true (when the safety checker is on)",
    "truncate": "a video download sends Content-Length of the full body, then half of it and closes",
    "expire": "a video download answers 410 URL_EXPIRED (a really expired URL answers 403)",
    "listall": "the run list ignores its filters, order and page size: every run, oldest first",
    "nooutput": "a run succeeds (and is billed) but carries no outputs",
    "partialnooutput": "a run ends partial_succeeded (billed) and carries no outputs",
    "dupref": "right after a run is created, another caller creates one with the same client_ref\n"
              "(other seed, other metadata; it runs and is billed like any run)",
    # Flawed clips (rendered by runflow_nb.simulator.flaws), one flaw a run, for clip QA:
    "black": "the run succeeds with a clip that is black but for its last second",
    "frozen": "the run succeeds with a clip whose picture stops after one second",
    "silent": "the run succeeds with a clip whose audio track is digital silence",
    "noaudio": "the run succeeds with a clip that has no audio track",
    "short": "the run succeeds with a clip half as long as asked (billed in full)",
    "wrongsize": "the run succeeds with a clip half the width and height asked",
    "clipped": "the run succeeds with a clip whose audio is driven far past full scale",
}
FAULT_KINDS = tuple(FAULTS)

#: Error answers drawn once per request, before the route runs: kind → (status, code, message).
ERROR_FAULTS: dict[str, tuple[int, str, str]] = {
    "429": (429, "RATE_LIMITED", "too many requests; slow down"),
    "429ra": (429, "RATE_LIMITED", "too many requests; retry after the delay given"),
    "500": (500, "INTERNAL_ERROR", "internal server error (injected)"),
    "503": (503, "MODEL_UNAVAILABLE", "the model is temporarily unavailable (injected)"),
}


#: Faults that make a succeeding run's clip flawed (one per run, first hit wins), for clip QA.
CLIP_FAULTS = ("black", "frozen", "silent", "noaudio", "short", "wrongsize", "clipped")


#: Faults that break the answer of a create after the create was carried out.
CREATE_FAULTS = ("drop", "create500", "create500kept")


#: ``request.extensions`` key under which a route marks its answer broken (a kind of CREATE_FAULTS);
#: :meth:`Emulator.handle` breaks it after the Idempotency-Key middleware has seen it.
BROKEN_ANSWER = "runflow_emulator_broken_answer"


class CreateFault:
    """A create fault drawn before the create and applied after it: ``fault.apply(request)`` marks
    the request, and once the run (or upload) exists and the route has answered, the handler drops
    the connection (``drop``: the server finished, so the Idempotency-Key middleware keeps the 201 for
    a replay) or answers 500 (``create500``: the server failed after creating, so nothing is kept for a
    replay — only a look-up by client_ref finds the run; ``create500kept``: the 201 is kept, so a
    re-send under the same key replays it)."""

    #: Kinds whose 201 the Idempotency-Key middleware keeps for a replay.
    KEPT = frozenset({"drop", "create500kept"})

    def __init__(self, kind: str | None) -> None:
        self.kind = kind

    def apply(self, request: httpx.Request) -> None:
        if self.kind is not None:
            request.extensions[BROKEN_ANSWER] = self.kind


def break_answer(kind: str | None, request: httpx.Request, response: httpx.Response) -> httpx.Response:
    """The answer a client sees once a create fault was applied (raises for a dropped connection)."""
    if kind == "drop":
        raise ConnectionDropped("Server disconnected without sending a response.", request=request)
    if kind in ("create500", "create500kept"):
        import json

        body = {"code": "INTERNAL_ERROR", "message": "internal server error (injected, after the create)",
                "errors": None}
        return httpx.Response(500, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return response


def hollow_view(view: dict[str, Any], status: str | None) -> dict[str, Any]:
    """A run as a faulty server shows it when it ended ``status`` without outputs (nooutput /
    partialnooutput); other runs, and runs still going, are shown as they are."""
    if status is None or view.get("status_code") != "succeeded":
        return view
    output = dict(view.get("output") or {})
    output["outputs"] = []
    return {**view, "status_code": status, "output": output}


def _help() -> str:
    lines = []
    for kind, text in FAULTS.items():
        first, *rest = text.split("\n")
        lines.append(f"  {kind:<15} {first}")
        lines += [f"{'':18}{more}" for more in rest]
    return "\n".join(lines)


FAULT_HELP = f"""\
Fault spec: comma-separated KIND=VALUE items, e.g.
  "429=0.1,429ra=0.05,500=0.05,503=0.05,drop=0.05,slow=0.05,fail=0.05,nsfw=0.05,truncate=0.05,
   expire=0.05,seed=1,slow_s=3"
VALUE is a probability 0–1 per eligible request, or Nx for exactly the first N eligible requests
(e.g. drop=1x); a bare KIND means 1 (always). Kinds:
{_help()}
The {len(ERROR_FAULTS)} error kinds ({", ".join(ERROR_FAULTS)}) are exclusive per request (one draw). Options: seed=N
(the faults' random stream; same seed and request order → same faults), slow_s=S, retry_after=N.
"none" = no faults.
"""


@dataclass(frozen=True)
class FaultPlan:
    """Which faults to inject and how often. Build one with :meth:`parse` (syntax in ``FAULT_HELP``).

    >>> plan = FaultPlan.parse("429=0.1,drop=1x,seed=7")
    >>> plan.rates["429"], plan.counts["drop"], plan.seed
    (0.1, 1, 7)
    """

    rates: Mapping[str, float] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)
    seed: int = 0
    slow_s: float = 3.0
    retry_after: int = 1

    @classmethod
    def parse(cls, spec: str | FaultPlan | None) -> FaultPlan:
        """Parse a fault spec; raises ValueError naming the bad item and the known kinds."""
        if isinstance(spec, FaultPlan):
            return spec
        rates: dict[str, float] = {}
        counts: dict[str, int] = {}
        opts: dict[str, Any] = {}
        text = (spec or "").strip()
        if text.lower() in ("", "none", "off", "0"):
            return cls()
        for item in text.split(","):
            key, sep, value = (s.strip() for s in item.strip().partition("="))
            key = key.lower()
            if not key:
                continue
            try:
                if key == "seed":
                    opts["seed"] = int(value)
                elif key in ("slow_s", "slow-s"):
                    opts["slow_s"] = nonneg(float(value))
                elif key in ("retry_after", "retry-after", "retry_after_s"):
                    opts["retry_after"] = int(nonneg(int(value)))
                elif key in FAULTS:
                    if not sep:
                        rates[key] = 1.0
                    elif value.lower().endswith("x"):
                        counts[key] = int(nonneg(int(value[:-1])))
                    else:
                        p = float(value)
                        if not 0.0 <= p <= 1.0:
                            raise ValueError("a probability must be between 0 and 1")
                        rates[key] = p
                else:
                    raise ValueError(f"unknown fault kind; known: {', '.join(FAULT_KINDS)}, "
                                     "seed, slow_s, retry_after")
            except ValueError as exc:
                raise ValueError(f"bad fault spec item {item.strip()!r}: {exc}") from None
        if sum(rates.get(k, 0.0) for k in ERROR_FAULTS) > 1.0 + 1e-9:
            raise ValueError(f"the probabilities of {', '.join(ERROR_FAULTS)} add up to more than 1")
        return cls(rates=rates, counts=counts, **opts)

    def __str__(self) -> str:
        items = [f"{k}={self.rates[k]:g}" for k in FAULT_KINDS if self.rates.get(k)]
        items += [f"{k}={self.counts[k]}x" for k in FAULT_KINDS if self.counts.get(k)]
        if not items:
            return "none"
        return ",".join([*items, f"seed={self.seed}", f"slow_s={self.slow_s:g}", f"retry_after={self.retry_after}"])


def nonneg(x: float) -> float:
    if x < 0:
        raise ValueError("must not be negative")
    return x


class Injector:
    """Draws faults from a seeded random stream; counts what it injected. Thread-safe."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._rng = random.Random(plan.seed)
        self._left = dict(plan.counts)
        self._lock = threading.Lock()

    def hit(self, kind: str) -> bool:
        with self._lock:
            if self._left.get(kind, 0) > 0:
                self._left[kind] -= 1
                return True
            p = self.plan.rates.get(kind, 0.0)
            return p > 0 and self._rng.random() < p

    def error(self, eligible: tuple[str, ...]) -> str | None:
        """At most one of the ``eligible`` error kinds for this request (one draw)."""
        with self._lock:
            for kind in eligible:
                if self._left.get(kind, 0) > 0:
                    self._left[kind] -= 1
                    return kind
            if not any(self.plan.rates.get(k) for k in eligible):
                return None
            r, acc = self._rng.random(), 0.0
            for kind in eligible:
                acc += self.plan.rates.get(kind, 0.0)
                if r < acc:
                    return kind
            return None


class ConnectionDropped(httpx.RemoteProtocolError):
    """The emulator drops the connection (injected). In-process clients see this
    ``httpx.RemoteProtocolError``; the loopback server closes the socket instead."""


class TruncatedStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that stops early and then fails as a closed connection does."""

    def __init__(self, data: bytes, expected: int, request: httpx.Request) -> None:
        self._data, self._expected, self._request = data, expected, request

    def _error(self) -> ConnectionDropped:
        return ConnectionDropped(f"peer closed connection without sending complete message body "
                                 f"(received {len(self._data)} bytes, expected {self._expected})",
                                 request=self._request)

    def __iter__(self) -> Iterator[bytes]:
        yield self._data
        raise self._error()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._data
        raise self._error()
