"""The :class:`Emulator`: the route table, one pure handler, the error envelope and the test hooks.

The routes themselves live by topic in :mod:`.runs`, :mod:`.batches`, :mod:`.assets`,
:mod:`.account` and :mod:`.hooks` (the ``/_emulator/`` test hooks); each is a method ``_ep_<name>(request, request_id, **path_params)`` named in :data:`ROUTES`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time

import httpx

from ..errors import APIError, ValidationError
from .account import AccountRoutes
from .assets import AssetRoutes
from .base import DROP_ANSWER
from .batches import BatchRoutes
from .faults import ERROR_FAULTS, ConnectionDropped, break_answer
from .hooks import HookRoutes
from .idempotency import with_idempotency
from .runs import RunRoutes
from .wire import HTTPError, invalid, json_response

__all__ = ["ROUTES", "Emulator"]

log = logging.getLogger("runflow_nb.emulator")

ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), name) for m, p, name in [
        ("POST", r"/v1/models/(?P<model>.+)/runs", "submit"),
        ("POST", r"/v1/models/(?P<model>.+)/batches", "create_batch"),
        ("GET", r"/v1/models/(?P<model>.+)", "model_detail"),
        ("POST", r"/v1/run/(?P<model>.+)", "run_blocking"),
        ("GET", r"/v1/runs", "list_runs"),
        ("GET", r"/v1/runs/statuses", "run_statuses"),
        ("GET", r"/v1/runs/(?P<run_id>[^/]+)", "get_run"),
        ("GET", r"/v1/runs/(?P<run_id>[^/]+)/logs", "run_logs"),
        ("GET", r"/v1/batches/(?P<batch_id>[^/]+)", "get_batch"),
        ("GET", r"/v1/batches/(?P<batch_id>[^/]+)/items", "batch_items"),
        ("GET", r"/v1/billing/balance", "balance"),
        ("GET", r"/v1/auth/me", "me"),
        ("GET", r"/v1/health", "health"),
        ("POST", r"/v1/asset-uploads", "create_upload"),
        ("POST", r"/v1/asset-uploads/(?P<asset_id>[^/]+)/confirmations", "confirm_upload"),
        ("GET", r"/v1/assets/types", "asset_types"),
        ("GET", r"/v1/assets/(?P<asset_id>[^/]+)", "asset_record"),
        ("PUT", r"/uploads/(?P<asset_id>[^/]+)", "put_upload"),
        ("GET", r"/assets/(?P<asset_id>[^/]+)/(?P<name>[^/]+)", "get_asset"),
        ("GET", r"/files/(?P<token>[^/]+)/(?P<name>[^/]+)", "get_file"),
        ("GET", r"/_emulator/ledger", "ledger"),
        ("GET", r"/_emulator/stats", "stats_endpoint"),
        ("POST", r"/_emulator/config", "config"),
    ]
]
PUBLIC = ("/v1/health",)


class Emulator(RunRoutes, BatchRoutes, AssetRoutes, AccountRoutes, HookRoutes):
    """Runflow's API as a pure function over a :class:`~runflow_nb.simulator.engine.Simulator`.

    ``latency`` applies to a simulator created here (default 0.3 s) or, when given, overrides the
    one passed in; ``latency``, ``faults`` and the staging knobs (``list_lag_s``, ``get_lag_s``,
    ``key_replay``) can be changed later (attributes, or ``POST /_emulator/config``). ``base_url``
    prefixes the URLs the emulator hands out (output files, uploads, assets);
    :func:`~runflow_nb.emulator.serve` sets it to the server's address.

    Staging what the docs leave open (see :mod:`.idempotency` and :mod:`.hooks`): ``list_lag_s``
    (a new run shows in ``GET /v1/runs`` that many seconds after it was created), ``get_lag_s``
    (``GET /v1/runs/{id}`` and a new batch's GETs answer 404 ``RUN_NOT_FOUND`` / ``BATCH_NOT_FOUND``
    for that long), ``key_replay`` (``all`` / ``creates`` / ``all_but_single_create`` / ``none``:
    which POST routes honour Idempotency-Key; ``idempotency=True/False`` is ``all``/``none``).

    >>> emulator = Emulator(latency=0.05, faults="429=0.2,seed=3")
    >>> client = httpx.Client(transport=httpx.MockTransport(emulator.handle), base_url="http://emu")
    >>> client.get("/v1/health").json()["status"]
    'ok'
    >>> emulator.close()
    """

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the handler -----------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (blocking: slow polls and ``/v1/run/...`` sleep in this thread)."""
        request_id = f"req_{secrets.token_hex(8)}"
        self.state.count("requests")
        try:
            try:
                request.content  # noqa: B018 (is the body loaded?)
            except httpx.RequestNotRead:
                request.read()
            response = self._dispatch(request, request_id)
        except ConnectionDropped:
            raise
        except HTTPError as exc:
            response = json_response(exc.status, {"code": exc.code, "message": exc.message,
                                                  "errors": exc.errors or None, "request_id": request_id,
                                                  **exc.extra}, exc.headers)
        except ValidationError as exc:
            err = invalid(exc.issues)
            response = json_response(422, {"code": err.code, "message": err.message, "errors": err.errors,
                                           "request_id": request_id})
        except APIError as exc:
            response = json_response(exc.status_code or 500, {"code": exc.code or "ERROR", "message": exc.message,
                                                              "errors": exc.errors or None, "request_id": request_id})
        except Exception:
            log.exception("emulator: %s %s failed", request.method, request.url.path)
            response = json_response(500, {"code": "INTERNAL_ERROR", "message": "the emulator hit a bug",
                                           "errors": None, "request_id": request_id})
        response = break_answer(request.extensions.get(DROP_ANSWER), request, response)
        response.headers["X-Request-Id"] = request_id
        return response

    async def ahandle(self, request: httpx.Request) -> httpx.Response:
        """:meth:`handle` in a worker thread, for async clients that must not block their loop."""
        await request.aread()
        return await asyncio.to_thread(self.handle, request)

    def _dispatch(self, request: httpx.Request, request_id: str) -> httpx.Response:
        path = request.url.path.rstrip("/") or "/"
        method = "GET" if request.method == "HEAD" else request.method
        matched = [(m, name, match) for m, rx, name in ROUTES if (match := rx.fullmatch(path))]
        if not matched:
            raise HTTPError(404, "NOT_FOUND", f"no such endpoint: {request.method} {path}")
        found = next(((name, match) for m, name, match in matched if m == method), None)
        if found is None:
            allowed = ", ".join(sorted({m for m, _, _ in matched}))
            raise HTTPError(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here; use {allowed}",
                            headers={"Allow": allowed})
        name, match = found
        if path.startswith("/v1/") and path not in PUBLIC:
            self.authenticate(request)
        if not path.startswith("/_emulator/") and path not in PUBLIC:
            kind = self.draw_error(tuple(ERROR_FAULTS) if path.startswith("/v1/") else ("500", "503"))
            if kind is not None:
                status, code, message = ERROR_FAULTS[kind]
                headers = {"Retry-After": str(self.faults.retry_after)} if kind == "429ra" else None
                raise HTTPError(status, code, message, headers=headers)
            if method == "GET" and path.startswith("/v1/") and self.fault("slow"):
                time.sleep(self.faults.slow_s)
        handler = getattr(self, f"_ep_{name}")
        params = match.groupdict()  # httpx's URL.path is already decoded
        if path.startswith("/v1/"):
            return with_idempotency(self, request, name, lambda: handler(request, request_id, **params))
        return handler(request, request_id, **params)
