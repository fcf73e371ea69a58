"""The emulator's settings, state and fault draws, shared by every group of routes."""

from __future__ import annotations

import hmac
import math
from pathlib import Path
from typing import Any

import httpx

from ..simulator.engine import Simulator
from ..specs import ModelSpec
from .callbacks import CallbackSender
from .faults import BROKEN_ANSWER, CREATE_FAULTS, FAULT_KINDS, CreateFault, FaultPlan, Injector
from .idempotency import KEY_REPLAY_MODES
from .images import FETCH_TIMEOUT_S
from .state import EmulatorState
from .wire import HTTPError

__all__ = ["DROP_ANSWER", "SIMULATOR_LATENCY", "EmulatorBase", "lag_seconds", "replay_mode"]

#: ``request.extensions`` key a route sets to break its answer after the Idempotency-Key middleware
#: saw it (see :class:`.faults.CreateFault`).
DROP_ANSWER = BROKEN_ANSWER

#: ``request.extensions`` key an in-process caller sets on a create to give the runs it makes their
#: own latency (seconds) instead of the simulator's: each client of the one shared in-process
#: emulator keeps its own ``simulator_latency``. Extensions never travel over HTTP.
SIMULATOR_LATENCY = "runflow_nb.simulator_latency"


def lag_seconds(value: object, name: str) -> float:
    """A lag setting: a finite number of seconds, 0 or more (ValueError naming ``name`` otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{name} must be a number of seconds (0 or more)")
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds (0 or more), not {value!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{name} must be a finite number of seconds, 0 or more, not {value!r}")
    return seconds


def replay_mode(value: object) -> str:
    """A ``key_replay`` setting (one of :data:`~.idempotency.KEY_REPLAY_MODES`; True/False read as
    ``all``/``none``, as the ``idempotency`` switch always did)."""
    if value is True or value is False:
        return "all" if value else "none"
    if value not in KEY_REPLAY_MODES:
        raise ValueError(f"key_replay must be one of {', '.join(KEY_REPLAY_MODES)}, not {value!r}")
    return str(value)


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
        idempotency: bool | None = None,
        key_replay: str | None = None,
        list_lag_s: float = 0.0,
        get_lag_s: float = 0.0,
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
        if key_replay is not None and idempotency is not None and replay_mode(idempotency) != "all" \
                and replay_mode(key_replay) != "none":
            raise ValueError("idempotency=False and key_replay disagree: pass key_replay only")
        replay = replay_mode(key_replay if key_replay is not None else (True if idempotency is None else idempotency))
        list_lag, get_lag = lag_seconds(list_lag_s, "list_lag_s"), lag_seconds(get_lag_s, "get_lag_s")
        plan = FaultPlan.parse(faults)  # every setting is checked before a simulator is made
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
        self._injector = Injector(plan)
        self.state = EmulatorState()
        #: Which POST routes honour ``Idempotency-Key`` (replay / 409): ``all`` (every POST under /v1,
        #: as documented), ``creates`` (the run and batch creates only), ``all_but_single_create``
        #: (every POST but ``POST /v1/models/{model}/runs``) or ``none`` (no middleware).
        self.key_replay = replay
        #: A new run shows in ``GET /v1/runs`` only this many seconds after it was created.
        self.list_lag_s = list_lag
        #: ``GET /v1/runs/{id}`` (and a new batch's GETs) answer 404 for this many seconds after creation.
        self.get_lag_s = get_lag
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
        #: Model pages served (and validated by) instead of this server's own (model id → detail object).
        self.model_pages: dict[str, dict[str, Any]] = {}
        #: POSTs each run's end to its ``callback_url`` (enabled by a served emulator; see :mod:`.callbacks`).
        self.callbacks = CallbackSender(self)

    # -- settings --------------------------------------------------------------------------------

    @property
    def latency(self) -> float:
        return self.simulator.latency

    @latency.setter
    def latency(self, value: float) -> None:
        self.simulator.latency = float(value)

    @property
    def idempotency(self) -> bool:
        """True when some route honours ``Idempotency-Key`` (set True/False: ``key_replay`` all/none)."""
        return self.key_replay != "none"

    @idempotency.setter
    def idempotency(self, value: bool) -> None:
        self.key_replay = replay_mode(bool(value))

    def lagging(self, born: float | None, lag_s: float) -> bool:
        """True while something created at ``born`` (simulator clock) is still hidden by ``lag_s``."""
        return born is not None and lag_s > 0 and self.simulator.now() < born + lag_s

    def hide_new(self, ident: str, what: str) -> None:
        """Answer 404 for a run or batch created less than ``get_lag_s`` ago (read-after-create lag)."""
        if self.get_lag_s > 0 and self.lagging(self.state.born_at(ident), self.get_lag_s):
            self.state.count("lag:get_404")
            code = "RUN_NOT_FOUND" if what == "run" else "BATCH_NOT_FOUND"
            raise HTTPError(404, code, "does not exist or belongs to another org")

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
        self.callbacks.close()
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
        """Draw the faults that break a create's answer (drop, create500, create500kept); apply after
        creating."""
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
            "idempotency": self.idempotency, "key_replay": self.key_replay, "batches": self.batches,
            "list_lag_s": self.list_lag_s, "get_lag_s": self.get_lag_s,
            "lag_404s": counts.get("lag:get_404", 0),
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
