"""A server that has made a run but does not show it yet: the emulator plus the lags real services
have and the docs leave open.

* ``list_lag_s``: a run shows in ``GET /v1/runs`` only that long after it was created;
* ``get_lag_s``: ``GET /v1/runs/{id}`` and the batch GETs answer 404 ``RUN_NOT_FOUND`` that long
  after creation (read-after-create lag);
* ``key_replay``: which create routes honour ``Idempotency-Key`` — ``all``, ``creates`` (runs and
  batches, not uploads), ``all_but_single_create`` (everything but ``POST .../runs``) or ``none``;
* ``kept500``: the next N creates are made, answered 500, and their 201 is kept for a replay (a
  proxy failing after the backend committed); ``create500``/``drop`` stay the emulator's own.

Every knob is an attribute, switchable while the server runs. Tests use this until the emulator
itself serves the same knobs.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from runflow_nb.emulator import Emulator
from runflow_nb.emulator.faults import BROKEN_ANSWER, CreateFault

_UPLOADS = ("/v1/asset-uploads",)


def _route(request: httpx.Request) -> str:
    path = request.url.path
    if request.method != "POST":
        return ""
    if path.startswith("/v1/models/") and path.endswith("/runs"):
        return "runs"
    if path.startswith("/v1/models/") and path.endswith("/batches"):
        return "batches"
    if path.startswith(_UPLOADS):
        return "uploads"
    return "other"


class Lagging(Emulator):
    """The emulator with list and read lags, per-route key replay and "made, 500, 201 kept"."""

    def __init__(self, *, list_lag_s: float = 0.0, get_lag_s: float = 0.0, key_replay: str = "all",
                 kept500: int = 0, **kw: Any) -> None:
        super().__init__(**kw)
        self.list_lag_s = list_lag_s
        self.get_lag_s = get_lag_s
        self.key_replay = key_replay
        self.kept500 = kept500
        #: Runs the list leaves out while this says so (a predicate on the listed item), e.g. by seed.
        self.list_hides: Any = None
        self.create_bodies: list[dict[str, Any]] = []  # every single-run create's JSON body, in order
        self.born: dict[str, float] = {}  # run or batch id -> monotonic time it was made
        self._mu = threading.Lock()

    # -- creation times --------------------------------------------------------------------------

    def _start_run(self, *args: Any, **kw: Any) -> dict[str, Any]:
        run = super()._start_run(*args, **kw)
        with self._mu:
            self.born[run["id"]] = time.monotonic()
            if kw.get("batch_id"):
                self.born.setdefault(kw["batch_id"], time.monotonic())
        return run

    def _young(self, some_id: str, lag: float) -> bool:
        with self._mu:
            born = self.born.get(some_id)
        return lag > 0 and born is not None and time.monotonic() - born < lag

    def create_fault(self) -> CreateFault:
        with self._mu:
            if self.kept500 > 0:
                self.kept500 -= 1
                self.state.count("fault:create500kept")
                return CreateFault("create500kept")
        return super().create_fault()

    # -- the routes ------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        route = _route(request)
        honoured = {"all": True, "none": False, "creates": route in ("runs", "batches"),
                    "all_but_single_create": route != "runs"}[self.key_replay]
        if route and not honoured and "idempotency-key" in request.headers:
            del request.headers["idempotency-key"]  # this route has no middleware: the key is ignored
        if route == "runs":
            with self._mu:
                self.create_bodies.append(json.loads(request.content or b"{}"))
        response = super().handle(request)
        if request.extensions.get(BROKEN_ANSWER) == "create500kept":  # kept by the middleware, answered 500
            body = {"code": "INTERNAL_ERROR", "message": "internal server error (after the create)", "errors": None}
            return httpx.Response(500, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        return response

    def _not_found(self) -> httpx.Response:
        body = {"code": "RUN_NOT_FOUND", "message": "run not found", "errors": None}
        return httpx.Response(404, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})

    def _ep_get_run(self, request: httpx.Request, request_id: str, *, run_id: str) -> httpx.Response:
        if self._young(run_id, self.get_lag_s):
            return self._not_found()
        return super()._ep_get_run(request, request_id, run_id=run_id)

    def _ep_get_batch(self, request: httpx.Request, request_id: str, *, batch_id: str) -> httpx.Response:
        if self._young(batch_id, self.get_lag_s):
            return self._not_found()
        return super()._ep_get_batch(request, request_id, batch_id=batch_id)

    def _ep_batch_items(self, request: httpx.Request, request_id: str, *, batch_id: str) -> httpx.Response:
        if self._young(batch_id, self.get_lag_s):
            return self._not_found()
        return super()._ep_batch_items(request, request_id, batch_id=batch_id)

    def _ep_list_runs(self, request: httpx.Request, request_id: str) -> httpx.Response:
        response = super()._ep_list_runs(request, request_id)
        if (self.list_lag_s <= 0 and self.list_hides is None) or response.status_code != 200:
            return response
        body = json.loads(response.content)
        hides = self.list_hides or (lambda item: False)
        body["items"] = [item for item in body.get("items", [])
                         if not self._young(str(item.get("id")), self.list_lag_s) and not hides(item)]
        return httpx.Response(200, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})

    # -- what the server made --------------------------------------------------------------------

    def made_per_ref(self) -> dict[str, int]:
        """client_ref -> runs made under it (every run on the server)."""
        out: dict[str, int] = {}
        for run in self.simulator.list_runs(limit=500)[0]:
            out[run.get("client_ref") or ""] = out.get(run.get("client_ref") or "", 0) + 1
        return out

    def settle(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = self.simulator.counts()
            if not any(counts.get(s, 0) for s in ("queued", "dispatching", "running")):
                return
            time.sleep(0.05)
        raise AssertionError(f"runs still going on the server after {timeout} s")

    def billed(self) -> tuple[int, float]:
        ledger = self.simulator.ledger()
        return len(ledger), round(sum(e["cost_usd"] for e in ledger), 2)
