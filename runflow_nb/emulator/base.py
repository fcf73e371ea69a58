"""The emulator's settings, state and fault draws, shared by every group of routes."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

import httpx

from ..simulator.engine import Simulator
from ..specs import ModelSpec
from .faults import BROKEN_ANSWER, CREATE_FAULTS, FAULT_KINDS, CreateFault, FaultPlan, Injector
from .images import FETCH_TIMEOUT_S
from .state import EmulatorState
from .wire import HTTPError

__all__ = ["DROP_ANSWER", "EmulatorBase"]

#: ``request.extensions`` key a route sets to break its answer after the Idempotency-Key middleware
#: saw it (see :class:`.faults.CreateFault`).
DROP_ANSWER = BROKEN_ANSWER


class EmulatorBase:
    """Settings (latency, faults, key, base URL, image policy), the state and the counters."""

    def __init__(
        self,
        *,
        simulator: Simulator | None = None,
        latency: float | None = None,
        faults: str | FaultPlan | None = None,
        api_key: str | None = None,
        base_url: str = "http://127.0.0.1",
        offline_images: str = "placeholder",
        fetch_timeout_s: float = FETCH_TIMEOUT_S,
        blocking_timeout_s: float = 3600.0,
        idempotency: bool = True,
        idempotency_ttl_s: float = 24 * 3600.0,
        batches: bool = True,
        cancel_spelling: str = "canceled",
        list_cursor_style: str = "next_pq",
        list_ignores_filters: bool = False,
    ) -> None:
        if offline_images not in ("placeholder", "reject"):
            raise ValueError("offline_images must be 'placeholder' or 'reject'")
        if cancel_spelling not in ("canceled", "cancelled"):
            raise ValueError("cancel_spelling must be 'canceled' or 'cancelled'")
        if list_cursor_style not in ("next_pq", "next"):
            raise ValueError("list_cursor_style must be 'next_pq' or 'next'")
        self._owns_simulator = simulator is None
        self.simulator = simulator if simulator is not None else Simulator(
            latency=0.3 if latency is None else latency)
        if simulator is not None and latency is not None:
            self.simulator.latency = latency
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.offline_images = offline_images
        self.fetch_timeout_s = fetch_timeout_s
        self.blocking_timeout_s = blocking_timeout_s
        self._injector = Injector(FaultPlan.parse(faults))
        self.state = EmulatorState()
        #: Honour ``Idempotency-Key`` (replay / 409); False serves as a server without the middleware.
        self.idempotency = idempotency
        self.idempotency_ttl_s = idempotency_ttl_s
        #: Accept ``POST /v1/models/{model}/batches``; False answers 422 as a non-template model does.
        self.batches = batches
        #: ``canceled`` (newer docs) or ``cancelled`` (older docs) in run objects.
        self.cancel_spelling = cancel_spelling
        #: ``next_pq``: ``{"items", "next_pq", "prev_pq"}``; ``next``: ``{"items", "first", "next", "previous"}``.
        self.list_cursor_style = list_cursor_style
        #: Serve ``GET /v1/runs`` ignoring ``q`` (a server whose filter the client must not trust).
        self.list_ignores_filters = list_ignores_filters
        #: Answer at most this many runs per list page whatever ``limit`` asks (None: ``limit`` rules).
        self.list_page_cap: int | None = None
        #: Model pages served instead of the one generated from the spec (model id → detail object).
        self.model_pages: dict[str, dict[str, Any]] = {}

    # -- settings --------------------------------------------------------------------------------

    @property
    def latency(self) -> float:
        return self.simulator.latency

    @latency.setter
    def latency(self, value: float) -> None:
        self.simulator.latency = float(value)

    @property
    def faults(self) -> FaultPlan:
        return self._injector.plan

    @faults.setter
    def faults(self, value: str | FaultPlan | None) -> None:
        """Replace the fault plan (its random stream restarts from its seed)."""
        self._injector = Injector(FaultPlan.parse(value))

    @property
    def _assets(self) -> dict[str, dict[str, Any]]:
        """The uploaded assets by id (for tests)."""
        return self.state.assets

    def close(self) -> None:
        """Close the simulator if this emulator created it."""
        if self._owns_simulator:
            self.simulator.close()

    # -- faults and counters ---------------------------------------------------------------------

    def fault(self, kind: str) -> bool:
        """Draw fault ``kind`` (see :mod:`.faults`); a hit is counted in :meth:`stats`."""
        if self._injector.hit(kind):
            self.state.count(f"fault:{kind}")
            return True
        return False

    def create_fault(self) -> CreateFault:
        """Draw the faults that break a create's answer (drop, create500); apply after creating."""
        return CreateFault(next((kind for kind in CREATE_FAULTS if self.fault(kind)), None))

    def draw_error(self, eligible: tuple[str, ...]) -> str | None:
        """At most one of the ``eligible`` error faults for this request, counted."""
        kind = self._injector.error(eligible)
        if kind is not None:
            self.state.count(f"fault:{kind}")
        return kind

    def stats(self) -> dict[str, Any]:
        """Requests served, faults injected by kind, runs by status and what was billed."""
        counts = self.state.counts()
        faults = {k: counts.get(f"fault:{k}", 0) for k in FAULT_KINDS}
        runs = self.simulator.counts()
        ledger = self.simulator.ledger()
        return {
            "requests": counts.get("requests", 0), "faults": faults, "faults_total": sum(faults.values()),
            "placeholders": counts.get("placeholders", 0), "runs": runs.pop("runs"), "runs_by_status": runs,
            "billed_runs": len(ledger), "billed_usd": round(sum(e["cost_usd"] for e in ledger), 2),
            "fault_plan": str(self.faults), "latency": self.latency,
            "creates": {v: counts.get(f"creates:{v}", 0) for v in ("created", "replayed", "conflict")},
            "client_ref_lookups": counts.get("lookups:client_ref", 0),
            "idempotency": self.idempotency, "batches": self.batches,
        }

    def asset_from_url(self, path: str, params: httpx.QueryParams) -> dict[str, Any] | str:
        """The confirmed asset behind one of this server's signed asset URLs, or why not (routes)."""
        raise NotImplementedError

    def _start_run(self, spec: ModelSpec, inp: dict[str, Any], images: list[Any], notes: list[str],
                   request: httpx.Request, request_id: str, *, video: Path | None = None, in_batch: bool = False,
                   **extra: Any) -> dict[str, Any]:
        """Create one run of checked input, drawing its outcome faults (routes)."""
        raise NotImplementedError

    def run_view(self, run: dict[str, Any]) -> dict[str, Any]:
        """A simulator run view as this server shows it (routes)."""
        raise NotImplementedError

    def spell(self, status: str) -> str:
        return "cancelled" if status == "canceled" and self.cancel_spelling == "cancelled" else status

    def present(self, run: dict[str, Any]) -> dict[str, Any]:
        """A simulator run view as this server spells it."""
        if run.get("status_code") == "canceled" and self.cancel_spelling == "cancelled":
            run = {**run, "status_code": "cancelled"}
        return run

    def authenticate(self, request: httpx.Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise HTTPError(401, "UNAUTHORIZED", "missing API key: send 'Authorization: Bearer <key>'")
        if self.api_key is not None and not hmac.compare_digest(token.encode(), self.api_key.encode()):
            raise HTTPError(401, "UNAUTHORIZED", "invalid API key")
