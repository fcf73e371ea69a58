"""What the emulator does not stage itself, for the few tests that need it: a run list that leaves
out chosen runs whatever their age (``list_hides``, a predicate on the listed item, e.g. by seed:
a list that shows a batch only in part), and a record of every single-run create's JSON body
(``create_bodies``: what the client sent, image bytes included).

The lags, per-route key replay and "made, 500, 201 kept" are the emulator's own knobs
(``list_lag_s``, ``get_lag_s``, ``key_replay``, the ``create500kept`` fault).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from runflow_nb.emulator import Emulator


def _single_create(request: httpx.Request) -> bool:
    path = request.url.path
    return request.method == "POST" and path.startswith("/v1/models/") and path.endswith("/runs")


class Lagging(Emulator):
    """The emulator with a list that hides runs by a predicate and a record of single-run create bodies."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        #: Runs the list leaves out while this says so (a predicate on the listed item), e.g. by seed.
        self.list_hides: Any = None
        self.create_bodies: list[dict[str, Any]] = []  # every single-run create's JSON body, in order
        self._mu = threading.Lock()

    def handle(self, request: httpx.Request) -> httpx.Response:
        if _single_create(request):
            with self._mu:
                self.create_bodies.append(json.loads(request.content or b"{}"))
        return super().handle(request)

    def _ep_list_runs(self, request: httpx.Request, request_id: str) -> httpx.Response:
        response = super()._ep_list_runs(request, request_id)
        hides = self.list_hides
        if hides is None or response.status_code != 200:
            return response
        body = json.loads(response.content)
        body["items"] = [item for item in body.get("items", []) if not hides(item)]
        return httpx.Response(200, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
