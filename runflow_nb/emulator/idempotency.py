"""The ``Idempotency-Key`` middleware, as documented: global, on every create (``POST``) route.

Which routes honour the key is a setting (``key_replay``), so the emulator can also stage servers
that depart from the documented "global": ``all`` (every ``POST`` under ``/v1``, as documented),
``creates`` (only ``POST /v1/models/{model}/runs`` and ``.../batches``), ``all_but_single_create``
(every ``POST`` but ``POST /v1/models/{model}/runs``: a key probe on another route succeeds while
the single-run create ignores the key), ``none`` (no middleware: every re-send makes a new run).
On a route that does not honour it, the header is ignored.

Same key + same body → the first answer (201) is replayed: same run id, no second run, nothing
billed twice. Same key + another body (or another route) → **409** ``CONFLICT``. Keys are scoped
to the API key that sent them and kept ``idempotency_ttl_s`` seconds. Only successful answers are
kept: a refused request (422, an injected 429/5xx) may be sent again with the same key. A request
whose first copy is still being served answers 409 as well (the first one has not finished).
Replays carry ``Idempotent-Replayed: true``; the create journal (``/_emulator/ledger``) records
each one as ``replayed``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from .faults import BROKEN_ANSWER, CreateFault
from .state import IdempotencyRecord
from .wire import HTTPError

if TYPE_CHECKING:
    from .base import EmulatorBase

__all__ = ["KEY_REPLAY_MODES", "ROUTE_LABELS", "fingerprint", "honours_key", "with_idempotency"]

#: The ``key_replay`` settings, from the documented behaviour to none at all.
KEY_REPLAY_MODES = ("all", "creates", "all_but_single_create", "none")

#: How the create journal names each create route (others by their route name).
ROUTE_LABELS = {"submit": "runs", "create_batch": "batches", "create_upload": "asset-uploads",
                "confirm_upload": "confirmations", "run_blocking": "run"}


def fingerprint(request: httpx.Request) -> str:
    """Route and body, the body compared as JSON (key order and spacing do not matter)."""
    try:
        body = json.dumps(json.loads(request.content or b"null"), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        body = request.content
    return hashlib.sha256(f"{request.method} {request.url.path}\n".encode() + body).hexdigest()


def honours_key(mode: str, route: str) -> bool:
    """Whether the POST route named ``route`` (a route-table name) honours Idempotency-Key under ``mode``."""
    if mode == "all":
        return True
    if mode == "creates":
        return route in ("submit", "create_batch")
    if mode == "all_but_single_create":
        return route != "submit"
    return False


def _replayed_refs(content: bytes) -> tuple[list[str], list[str | None]]:
    """Run ids and client_refs in a kept 201 (a run, or a batch's items)."""
    try:
        body = json.loads(content)
    except ValueError:
        return [], []
    if not isinstance(body, dict):
        return [], []
    items = body.get("items")
    if isinstance(items, list) and "items_total" in body:
        return ([str(i.get("run_id")) for i in items if isinstance(i, dict)],
                [i.get("client_ref") for i in items if isinstance(i, dict)])
    return ([str(body["id"])] if body.get("id") else []), ([body.get("client_ref")] if "client_ref" in body else [])


def _scope(request: httpx.Request) -> str:
    auth = request.headers.get("authorization", "")
    return hashlib.sha256(auth.encode()).hexdigest()[:16]


def with_idempotency(emu: EmulatorBase, request: httpx.Request, route: str,
                     serve: Callable[[], httpx.Response]) -> httpx.Response:
    """Serve ``request`` through the middleware (``serve`` runs the route)."""
    key = request.headers.get("idempotency-key")
    if request.method != "POST" or not key or not honours_key(emu.key_replay, route):
        return serve()
    route = ROUTE_LABELS.get(route, route)
    state, now = emu.state, time.time()
    slot = (_scope(request), key)
    fp = fingerprint(request)
    with state.lock:
        for k in [k for k, r in state.idempotency.items() if now - r.created > emu.idempotency_ttl_s]:
            del state.idempotency[k]
        record = state.idempotency.get(slot)
        owner = record is None
        if owner:
            record = state.idempotency[slot] = IdempotencyRecord(fingerprint=fp, route=route, created=now)
    assert record is not None
    if not owner:
        if record.fingerprint != fp:
            state.note_create(route=route, via="conflict", ids=[], idempotency_key=key, client_refs=[],
                              answer="409")
            raise HTTPError(409, "CONFLICT", "this Idempotency-Key was used with a different request body")
        if record.status is None:
            raise HTTPError(409, "CONFLICT", "a request with this Idempotency-Key is still being processed")
        replay = httpx.Response(record.status, content=record.content,
                                headers={**record.headers, "Idempotent-Replayed": "true"})
        ids, refs = _replayed_refs(record.content)
        state.note_create(route=route, via="replayed", ids=ids, idempotency_key=key, client_refs=refs)
        return replay
    try:
        response = serve()
    except BaseException:
        with state.lock:
            state.idempotency.pop(slot, None)
        raise
    broken = request.extensions.get(BROKEN_ANSWER)
    kept = broken is None or broken in CreateFault.KEPT  # create500: the server failed, nothing is kept
    if 200 <= response.status_code < 300 and kept:
        response.read()
        with state.lock:
            record.status, record.content = response.status_code, response.content
            record.headers = {k: v for k, v in response.headers.items()
                              if k.lower() in ("content-type", "location")}
            record.done.set()
    else:
        with state.lock:
            state.idempotency.pop(slot, None)
    return response
