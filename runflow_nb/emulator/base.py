"""The emulator's settings, state and fault draws, shared by every group of routes."""

from __future__ import annotations

import hmac
from typing import Any

import httpx

from ..simulator import Simulator
from .faults import CREATE_FAULTS, FAULT_KINDS, CreateFault, FaultPlan, Injector
from .images import FETCH_TIMEOUT_S
from .state import EmulatorState
from .wire import HTTPError

__all__ = ["EmulatorBase"]


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
    ) -> None:
        if offline_images not in ("placeholder", "reject"):
            raise ValueError("offline_images must be 'placeholder' or 'reject'")
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
        }

    def authenticate(self, request: httpx.Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise HTTPError(401, "UNAUTHORIZED", "missing API key: send 'Authorization: Bearer <key>'")
        if self.api_key is not None and not hmac.compare_digest(token.encode(), self.api_key.encode()):
            raise HTTPError(401, "UNAUTHORIZED", "invalid API key")
