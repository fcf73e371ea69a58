"""Runflow's HTTP contract on top of the simulator: in-process (httpx) or on loopback, with faults.

One pure handler, :meth:`Emulator.handle` (``httpx.Request`` → ``httpx.Response``), serves
everything; use it as ``httpx.MockTransport(emulator.handle)`` in unit tests (sync or async
clients), or :func:`serve` it on a real socket (a stdlib ``ThreadingHTTPServer`` adapting to the
same handler) for end-to-end tests, other languages, or the model page's ``requests`` snippet.

>>> with serve(port=0, latency=0.1) as server:                                  # doctest: +SKIP
...     r = httpx.post(f"{server.url}/v1/run/happy-horse/reference-to-video",
...                    headers={"Authorization": "Bearer x"}, json={...}, timeout=60)
...     r.json()["video"]["url"]

Endpoints, as documented in the shared API page (``Authorization: Bearer <anything>`` on ``/v1/*``
except health; the exact key when ``api_key`` is set): ``POST /v1/models/{model}/runs`` (201, the
full run object, UUIDv7 id), ``GET /v1/runs/{id}``, ``GET /v1/runs?q=&limit=&pq=&sort_by=&fields=``
(``{"items", "next_pq", "prev_pq"}``, or ``{"items", "first", "next", "previous"}`` links with
``list_cursor_style="next"``; limit ≤ 500), ``GET /v1/runs/statuses``, ``GET /v1/runs/{id}/logs``
(``{"items"}``), ``POST /v1/models/{model}/batches``, ``GET /v1/batches/{id}[/items]``,
``GET /v1/models/{owner}/{slug}`` (``inputs[]`` from the spec), ``GET /v1/billing/balance``
(decimal strings), ``GET /v1/auth/me``, ``GET /v1/health``, ``POST /v1/asset-uploads``
``{filename, mime_type, size_bytes}`` → ``PUT upload_url`` (no auth) →
``POST /v1/asset-uploads/{id}/confirmations`` (201, the Asset record with a signed ``url``),
``GET /v1/assets/{id}``, ``GET /v1/assets/types``, ``GET /files/{token}/{run}.mp4`` (signed,
expiring; Range supported), and the model page's blocking ``POST /v1/run/{model}`` with the flat
input, answering ``{"video": {...}, "seed", "timing", "nsfw_detected", "id", "cost"}`` (a failed run
answers 500 with the failure code). Every ``POST`` under ``/v1`` goes through the
``Idempotency-Key`` middleware (:mod:`.idempotency`; which routes honour the key is the
``key_replay`` setting). Test hooks (no auth): ``GET /_emulator/ledger`` (billed runs, the create
journal, runs made and billed per client_ref), ``GET /_emulator/stats``, ``POST /_emulator/config``
(``latency``, ``faults``, ``idempotency``, ``key_replay``, ``list_lag_s``, ``get_lag_s``,
``batches``, ``list_ignores_filters``, ``list_page_cap``, ``cancel_spelling``,
``list_cursor_style``, ``model_pages``). Errors use ``{code, message, errors, request_id}``
(``errors`` is null but for a 422, which lists every problem as ``{field, message, fix}``: input
fields by bare name, e.g. ``duration``, ``image_urls[1]``; body fields ``input``, ``client_ref``,
``metadata``, ``callback_url``).

Input is checked against the model page this server serves (``inputs[]``, written from the API
page's tables in :mod:`.catalog`; :mod:`.rules`), never with the client's rules, so a client rule
error shows as a 422: integers must be JSON integers (``5.0`` is refused), ``null`` means the
default. Images may be ``data:`` URIs, this emulator's confirmed asset URLs, or http(s) URLs fetched
with a 3 s timeout. An unreachable URL (or an RFC 2606 example host such as example.com, never
fetched) becomes a generated 1280×720 placeholder with a warning in the run's logs when
``offline_images="placeholder"`` (the default, so the model page's example runs offline); with
``"reject"`` it is a 422.

Staging what the docs leave open (kwargs, ``POST /_emulator/config`` keys and CLI flags alike):
``list_lag_s`` (a new run shows in ``GET /v1/runs`` that many seconds after its create),
``get_lag_s`` (``GET /v1/runs/{id}`` answers 404 ``RUN_NOT_FOUND`` that long after the create; a new
batch's GETs likewise), ``key_replay`` (``all`` / ``creates`` / ``all_but_single_create`` / ``none``:
which POST routes honour Idempotency-Key) and the create faults ``create500`` (made, answered 500,
nothing kept) and ``create500kept`` (made, answered 500, the 201 kept for a replay). The run list's
``q`` reads ``=``, ``:``, ``>``, ``<``, ``>=``, ``<=``, ``AND``, ``OR``, ``NOT`` (:mod:`.query`).
Request bodies over :data:`MAX_BODY_BYTES` (60 MiB) answer 413 before the excess is read.

Layout: :mod:`.app` (the :class:`Emulator` and its route table), routes by topic in :mod:`.runs`,
:mod:`.batches`, :mod:`.assets`, :mod:`.account` (with :mod:`.catalog`) and :mod:`.hooks` (the
``/_emulator/`` test hooks); input checks in :mod:`.validation` (:mod:`.rules`, :mod:`.images`,
:mod:`.videos`); the list filter in :mod:`.query`; :mod:`.faults` (what can be injected, and how to
add a kind); :mod:`.idempotency` (the key middleware, per route); :mod:`.state` (the server's
bookkeeping beside the simulator's runs); :mod:`.server` (the loopback socket server) and
:mod:`.cli` (``runflow-nb emulator``, :func:`spawn`).

The fault spec syntax follows (also in ``FAULT_HELP`` and ``runflow-nb emulator --help``).
"""

from __future__ import annotations

from .app import Emulator
from .assets import MAX_ASSET_BYTES
from .cli import emulator_main, spawn
from .faults import FAULT_HELP, FAULT_KINDS, ConnectionDropped, FaultPlan
from .images import FETCH_TIMEOUT_S
from .server import MAX_BODY_BYTES, EmulatorServer, serve

__all__ = ["FAULT_HELP", "FAULT_KINDS", "FETCH_TIMEOUT_S", "MAX_ASSET_BYTES", "MAX_BODY_BYTES", "ConnectionDropped",
           "Emulator", "EmulatorServer", "FaultPlan", "emulator_main", "serve", "spawn"]

__doc__ = f"{__doc__}\n{FAULT_HELP}"
