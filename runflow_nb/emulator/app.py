"""The :class:`Emulator`: the route table, one pure handler, the error envelope and the test hooks.

The routes themselves live by topic in :mod:`.runs`, :mod:`.assets` and :mod:`.account`; each is a
method ``_ep_<name>(request, request_id, **path_params)`` named in :data:`ROUTES`.
"""

from __future__ import annotations

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
from .faults import ERROR_FAULTS, ConnectionDropped, break_answer, nonneg
from .idempotency import with_idempotency
from .runs import RunRoutes
from .wire import HTTPError, invalid, json_body, json_response

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


class Emulator(RunRoutes, BatchRoutes, AssetRoutes, AccountRoutes):
    """Runflow's API as a pure function over a :class:`~runflow_nb.simulator.engine.Simulator`.

    ``latency`` applies to a simulator created here (default 0.3 s) or, when given, overrides the
    one passed in; both ``latency`` and ``faults`` can be changed later (attributes, or
    ``POST /_emulator/config``). ``base_url`` prefixes the URLs the emulator hands out (output
    files, uploads, assets); :func:`~runflow_nb.emulator.serve` sets it to the server's address.

    >>> emulator = Emulator(latency=0.05, faults="429=0.2,seed=3")              # doctest: +SKIP
    >>> client = httpx.Client(transport=httpx.MockTransport(emulator.handle), base_url="http://emu")
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
        import anyio.to_thread

        await request.aread()
        return await anyio.to_thread.run_sync(self.handle, request)

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

    # -- test hooks ------------------------------------------------------------------------------

    def _ep_ledger(self, request: httpx.Request, request_id: str) -> httpx.Response:
        ledger = self.simulator.ledger()
        return json_response(200, {"billed": ledger, "count": len(ledger),
                                   "total_usd": round(sum(e["cost_usd"] for e in ledger), 2),
                                   "creates": self.state.creates()})

    def _ep_stats_endpoint(self, request: httpx.Request, request_id: str) -> httpx.Response:
        return json_response(200, self.stats())

    def _ep_config(self, request: httpx.Request, request_id: str) -> httpx.Response:
        body = json_body(request)
        try:
            if "latency" in body:
                self.latency = nonneg(float(body["latency"]))
            if "faults" in body:
                self.faults = body["faults"]
            for flag in ("idempotency", "batches", "list_ignores_filters"):
                if flag in body:
                    if not isinstance(body[flag], bool):
                        raise ValueError(f"{flag} must be true or false")
                    setattr(self, flag, body[flag])
            if "list_page_cap" in body:
                cap = body["list_page_cap"]
                if cap is not None and (type(cap) is not int or cap < 1):
                    raise ValueError("list_page_cap must be a positive integer or null")
                self.list_page_cap = cap
            if "cancel_spelling" in body:
                if body["cancel_spelling"] not in ("canceled", "cancelled"):
                    raise ValueError("cancel_spelling must be 'canceled' or 'cancelled'")
                self.cancel_spelling = body["cancel_spelling"]
            if "list_cursor_style" in body:
                if body["list_cursor_style"] not in ("next_pq", "next"):
                    raise ValueError("list_cursor_style must be 'next_pq' or 'next'")
                self.list_cursor_style = body["list_cursor_style"]
            if "model_pages" in body:
                pages = body["model_pages"]
                if not isinstance(pages, dict) or not all(isinstance(v, dict) for v in pages.values()):
                    raise ValueError("model_pages must map model ids to model detail objects")
                self.model_pages = dict(pages)
        except (TypeError, ValueError) as exc:
            raise HTTPError(422, "VALIDATION_ERROR", str(exc)) from None
        return json_response(200, {"latency": self.latency, "faults": str(self.faults),
                                   "idempotency": self.idempotency, "batches": self.batches,
                                   "list_ignores_filters": self.list_ignores_filters,
                                   "list_page_cap": self.list_page_cap,
                                   "cancel_spelling": self.cancel_spelling,
                                   "list_cursor_style": self.list_cursor_style,
                                   "model_pages": sorted(self.model_pages)})
