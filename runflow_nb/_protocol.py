"""The Runflow protocol as plain generators: one implementation for the sync and async clients.

Each *flow* is a generator that yields actions (:class:`Send`, :class:`Sleep`, :class:`Emit`) and
receives the outcome of each :class:`Send` (an ``httpx.Response`` or the ``httpx`` exception it
raised). The clients in :mod:`runflow_nb.client` only carry actions out; retries, backoff,
``Retry-After``, client_ref look-ups and status parsing all live here, written once.

Submits are never retried blind. Every create carries an ``Idempotency-Key`` (stable for the run:
derived from its ``client_ref``), so when a submit's answer is lost (network error or 5xx) a server
that honours keys replays the first answer to the re-sent create instead of creating a second run.
Whether this server honours keys is checked once, on a free route (two identical upload-session
creates under one key must name the same asset), before the first re-send relies on it. Without
that guarantee, after a 5xx (a create that failed half-way leaves nothing to replay), and whenever
the server answers 409 ``CONFLICT`` for the key (an earlier copy of the run reached it with another
body, e.g. a re-uploaded reference's new URL) the run is looked up by its ``client_ref`` first,
because the server may already have created — and will bill — it.
"""

from __future__ import annotations

import email.utils
import hashlib
import random
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

from .errors import (
    APIError,
    DownloadError,
    ExpiredURLError,
    NetworkError,
    NotFoundError,
    RateLimitError,
    RunTimeoutError,
    ServerError,
    api_error_from_response,
)
from .runs import Run, RunEvent

__all__ = ["BatchRefused", "Emit", "Protocol", "RetryPolicy", "Send", "Sleep", "idempotency_key_for"]


def idempotency_key_for(client_ref: str) -> str:
    """The ``Idempotency-Key`` of the run created under ``client_ref``: the same in every retry,
    restart and process (the run record stores the client_ref), different for another attempt."""
    return "rfnb-" + hashlib.sha256(f"runflow_nb idempotency\n{client_ref}".encode()).hexdigest()[:40]


@dataclass
class Send:
    """Send one request. ``sink`` (when set) receives the body chunk by chunk instead of memory."""

    method: str
    url: str
    json: Any = None
    params: dict[str, Any] | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: bool = True
    sink: Any = None  # an object with write(bytes) and expect(declared size); the driver streams into it
    # Wall-clock deadline (``time.monotonic()``) for the whole exchange, body included: a server
    # trickling a byte a second cannot hold a request past it. The driver answers ReadTimeout then.
    deadline: float | None = None


@dataclass
class Sleep:
    seconds: float


@dataclass
class Emit:
    event: RunEvent


Action = Send | Sleep | Emit
Outcome = httpx.Response | Exception | None
Flow = Generator[Action, Outcome, Any]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, honouring ``Retry-After`` (capped)."""

    max_retries: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0
    max_retry_after_s: float = 120.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        backoff = random.uniform(0, min(self.cap_s, self.base_s * 2**attempt))
        if retry_after is not None:
            return min(self.max_retry_after_s, max(retry_after, backoff * 0.1))
        return backoff


def retry_after_seconds(resp: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text


def _error(resp: httpx.Response) -> APIError:
    return api_error_from_response(resp.status_code, _json(resp), request_id=resp.headers.get("x-request-id"))


class BadAnswer(ServerError):
    """A 2xx answer that is not what the API sends (an HTML page, a captive portal, garbage)."""


def _run_from(resp: httpx.Response, what: str) -> Run:
    """The run in a 2xx answer, or :class:`BadAnswer` (never a bare ValueError)."""
    try:
        return Run.parse(resp.json())
    except ValueError:
        kind = resp.headers.get("content-type", "no content type").split(";")[0]
        raise BadAnswer(f"{what}: the server answered HTTP {resp.status_code} with {kind}, not a run object "
                        f"(a proxy or captive portal in the way?): {resp.text[:120]!r}",
                        status_code=resp.status_code, request_id=resp.headers.get("x-request-id")) from None


def _definitely_unsent(exc: Exception) -> bool:
    """True when the request never reached the server (so a submit cannot have been created)."""
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def _network_error(exc: Exception, what: str) -> NetworkError:
    # The message names the failure kind, never headers (the key lives in a header).
    return NetworkError(f"{what}: {type(exc).__name__}: {str(exc)[:200] or 'no answer'}")


class Protocol:
    """Flows for one model endpoint family. Holds no connection: the drivers do I/O."""

    def __init__(self, *, base_url: str, retry: RetryPolicy, poll_interval: float, poll_max: float,
                 wait_timeout: float, clock: Callable[[], float] = time.monotonic,
                 request_timeout_s: float = 60.0, download_timeout_s: float = 900.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.request_timeout_s = request_timeout_s  # one API request, answer body included
        self.download_timeout_s = download_timeout_s  # one video download, every attempt included
        self.max_bad_polls = 10  # consecutive polls that fail (after their retries) before a wait gives up
        self.not_found_polls = 3  # consecutive 404s before a run counts as gone
        self.retry = retry
        self.poll_interval = poll_interval
        self.poll_max = poll_max
        self.wait_timeout = wait_timeout
        self.clock = clock
        self.backoff_after_s = 30.0
        # Pauses between look-ups by client_ref after a submit's answer was lost (about 7 s in all).
        self.submit_grace_s: tuple[float, ...] = (1.0, 2.0, 4.0)
        #: Does the server replay creates by Idempotency-Key? None until checked (see :meth:`keys_honoured`).
        self.honours_keys: bool | None = None
        # Uploaded references by sha256: (signed url, asset id, monotonic time), reused for a while so a
        # sweep uploads each reference once and a re-sent create carries the same body.
        self.uploads: dict[str, tuple[str, str, float]] = {}
        self.upload_reuse_s = 30 * 60.0

    def url(self, path: str) -> str:
        return self.base_url + path

    # -- one request with retries ----------------------------------------------------------

    def _deadline(self, outer: float | None) -> float:
        own = self.clock() + self.request_timeout_s
        return own if outer is None else min(own, outer)

    def _pause(self, seconds: float, deadline: float | None) -> bool:
        """False when a pause of ``seconds`` would end past ``deadline`` (so do not retry)."""
        return deadline is None or self.clock() + seconds < deadline

    def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
             idempotent: bool = True, what: str = "", headers: dict[str, str] | None = None,
             deadline: float | None = None, auth: bool = True
             ) -> Generator[Action, Outcome, httpx.Response]:
        """Send with retries. 429 is always safe to retry (the request was refused); network errors and
        5xx only for idempotent calls. Nothing (request, retries, pauses) outlasts ``deadline``."""
        what = what or f"{method} {path}"
        last: Exception | None = None
        for attempt in range(self.retry.max_retries + 1):
            out = yield Send(method, self.url(path), json=json, params=params, headers=dict(headers or {}),
                             deadline=self._deadline(deadline), auth=auth)
            if isinstance(out, Exception):
                last = _network_error(out, what)
                if not (idempotent or _definitely_unsent(out)):
                    raise last
            elif out is not None and (out.status_code == 429 or out.status_code >= 500):
                last = _error(out)
                if out.status_code != 429 and not idempotent:
                    raise last
                pause = self.retry.delay(attempt, retry_after_seconds(out))
                if attempt < self.retry.max_retries and self._pause(pause, deadline):
                    yield Sleep(pause)
                    continue
                raise last
            elif out is not None and out.status_code >= 400:
                raise _error(out)
            elif out is not None:
                return out
            pause = self.retry.delay(attempt)
            if attempt < self.retry.max_retries and self._pause(pause, deadline):
                yield Sleep(pause)
            elif attempt < self.retry.max_retries:
                break
        assert last is not None
        raise last

    # -- runs ------------------------------------------------------------------------------

    def submit(self, model: str, body: dict[str, Any], *, idempotency_key: str | None = None
               ) -> Generator[Action, Outcome, Run]:
        """Create a run (under ``Idempotency-Key``, by default the one derived from its ``client_ref``).

        A lost answer is resolved by re-sending under the same key when the server honours keys
        (it replays the first answer), else — and on a 409 for the key — by looking the run up by
        ``client_ref``; a run that may exist is never reported as refused.
        """
        client_ref = body["client_ref"]
        key = idempotency_key or idempotency_key_for(client_ref)
        path = f"/v1/models/{model}/runs"
        last: Exception | None = None
        looked_up = False  # whether any look-up by client_ref actually ran
        replayable = False  # whether a lost answer was re-sent under the key (server honours keys)
        for attempt in range(self.retry.max_retries + 1):
            out = yield Send("POST", self.url(path), json=body, headers={"Idempotency-Key": key},
                             deadline=self._deadline(None))
            retry_after: float | None = None
            if isinstance(out, Exception):
                last = _network_error(out, "submitting the run")
                ambiguous = not _definitely_unsent(out)
            elif out is not None and out.status_code == 429:
                last, ambiguous, retry_after = _error(out), False, retry_after_seconds(out)
            elif out is not None and out.status_code >= 500:
                last, ambiguous, retry_after = _error(out), True, retry_after_seconds(out)
            elif out is not None and out.status_code == 409:
                # The key was seen with another body (an earlier copy of this run, e.g. before a
                # reference was re-uploaded under a new URL) or is still being served: the run exists.
                found = yield from self._find_after_lost_answer(client_ref, f"{_error(out)}", grace=True,
                                                                metadata=body.get("metadata"))
                if found is not None:
                    return found
                raise NetworkError(f"the server holds an earlier submit of this run (409 for its Idempotency-Key) "
                                   f"but no run with client_ref {client_ref} is listed yet: it may have been "
                                   "created — look it up again before submitting anew")
            elif out is not None and out.status_code >= 400:
                raise _error(out)
            else:
                assert isinstance(out, httpx.Response)
                try:
                    return _run_from(out, "submitting the run")
                except BadAnswer as exc:  # 2xx but not a run: it may have been created
                    last, ambiguous = exc, True
            if ambiguous:
                # A lost answer: the server finished (and its middleware keeps the 201 for a replay) or
                # never got the request, so a re-send under the same key is safe where keys are
                # honoured. A 5xx is different: the server failed, maybe after creating the run, and a
                # failed create leaves nothing to replay — look the run up first. Without key support,
                # look over a grace period after a lost answer: the server may still be creating it.
                lost = isinstance(out, Exception)
                honoured = (yield from self.keys_honoured()) if lost else False
                if honoured:
                    replayable = True
                else:
                    looked_up = True
                    found = yield from self._find_after_lost_answer(client_ref, str(last), grace=lost,
                                                                    metadata=body.get("metadata"))
                    if found is not None:
                        return found
            if attempt < self.retry.max_retries:
                yield Sleep(self.retry.delay(attempt, retry_after))
        assert last is not None
        if replayable and not looked_up:
            # Re-sent under its key each time without an answer: unverified, so never "not created".
            raise NetworkError(f"{last} — the run may have been created (its answers were lost); sending it again "
                               "under the same client_ref replays it by its Idempotency-Key and pays nothing twice")
        if looked_up and isinstance(last, (RateLimitError, ServerError, NetworkError)):
            last.args = (f"{last} — the run was not created (checked by client_ref {client_ref})",)
        elif isinstance(last, NetworkError):
            last.args = (f"{last} — the server could not be reached, so the run was never sent",)
        elif isinstance(last, RateLimitError):
            last.args = (f"{last} — the server refused the run each time, so it was not created",)
        raise last

    def _find_after_lost_answer(self, client_ref: str, why: str, *, grace: bool,
                                metadata: dict[str, Any] | None = None) -> Generator[Action, Outcome, Run | None]:
        waits = (0.0, *self.submit_grace_s) if grace else (0.0,)
        try:
            for wait in waits:
                if wait:
                    yield Sleep(wait)
                found = yield from self.find(client_ref, metadata=metadata)
                if found is not None:
                    return found
        except (APIError, NetworkError) as exc:
            # The run may exist (and be billed): never report this as a refusal, or the
            # caller would submit it again under a new client_ref and pay twice.
            raise NetworkError(f"{why}; looking the run up by client_ref {client_ref} then failed ({exc}): "
                               "it may have been created — look it up again before submitting anew") from exc
        return None

    # -- batches ---------------------------------------------------------------------------

    def submit_batch(self, model: str, body: dict[str, Any], *, idempotency_key: str
                     ) -> Generator[Action, Outcome, tuple[str | None, dict[str, Run | None]]]:
        """Create a batch (items carry their ``client_ref``): ``(batch id, client_ref → Run)``.

        A 422 raises :class:`BatchRefused` (a model without batches, or items it would not take:
        send them as single runs). A lost answer is handled as for single runs: re-sent under the
        same key when the server honours keys, else each item is looked up by its ``client_ref`` (a
        ``None`` value: the item may exist but is not listed yet). A 409 for the key is looked up.
        """
        refs = [str(item["client_ref"]) for item in body["input"]]
        path = f"/v1/models/{model}/batches"
        last: Exception | None = None
        for attempt in range(self.retry.max_retries + 1):
            out = yield Send("POST", self.url(path), json=body, headers={"Idempotency-Key": idempotency_key})
            retry_after: float | None = None
            if isinstance(out, Exception):
                last, ambiguous = _network_error(out, "submitting the batch"), not _definitely_unsent(out)
            elif out is not None and out.status_code == 429:
                last, ambiguous, retry_after = _error(out), False, retry_after_seconds(out)
            elif out is not None and out.status_code >= 500:
                last, ambiguous, retry_after = _error(out), True, retry_after_seconds(out)
            elif out is not None and out.status_code == 422:
                raise BatchRefused(_error(out))
            elif out is not None and out.status_code == 409:
                found = yield from self._find_items(refs, str(_error(out)), grace=True, metadata=body.get("metadata"))
                return None, found
            elif out is not None and out.status_code >= 400:
                raise _error(out)
            else:
                assert isinstance(out, httpx.Response)
                return _batch_runs(_json(out), refs)
            if ambiguous:  # as for single runs: a re-send after a lost answer, a look-up after a 5xx
                lost = isinstance(out, Exception)
                honoured = (yield from self.keys_honoured()) if lost else False
                if not honoured:
                    found = yield from self._find_items(refs, str(last), grace=lost, metadata=body.get("metadata"))
                    if any(run is not None for run in found.values()):
                        return None, found  # the batch was created: the rest are not listed yet
            if attempt < self.retry.max_retries:
                yield Sleep(self.retry.delay(attempt, retry_after))
        assert last is not None
        raise last

    def _find_items(self, refs: list[str], why: str, *, grace: bool, metadata: dict[str, Any] | None = None
                    ) -> Generator[Action, Outcome, dict[str, Run | None]]:
        found: dict[str, Run | None] = dict.fromkeys(refs)
        waits = (0.0, *self.submit_grace_s) if grace else (0.0,)
        try:
            for wait in waits:
                if wait:
                    yield Sleep(wait)
                for ref in [r for r, run in found.items() if run is None]:
                    found[ref] = yield from self.find(ref, metadata=metadata)
                if all(run is not None for run in found.values()):
                    break
        except (APIError, NetworkError) as exc:
            raise NetworkError(f"{why}; looking the batch's runs up by client_ref then failed ({exc}): they may "
                               "have been created — look them up again before submitting anew") from exc
        return found

    def batch_items(self, batch_id: str) -> Generator[Action, Outcome, list[Run]]:
        """The runs of a batch (``GET /v1/batches/{id}/items``, each item with its full run)."""
        resp = yield from self.call("GET", f"/v1/batches/{quote(batch_id, safe='')}/items", what="polling the batch")
        data = _json(resp)
        items = data.get("items") if isinstance(data, dict) else data
        runs = []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            if isinstance(item.get("run"), dict) and item["run"].get("id"):
                runs.append(Run.parse(item["run"]))
            elif item.get("run_id"):
                runs.append(Run.parse({"id": item["run_id"], "status_code": item.get("status_code"),
                                       "client_ref": item.get("client_ref"), "batch_id": batch_id}))
        return runs

    def keys_honoured(self) -> Generator[Action, Outcome, bool]:
        """Whether the server replays a create sent twice under one ``Idempotency-Key``, checked once
        on a free route: two identical upload-session creates under one key (no bytes are sent)."""
        if self.honours_keys is not None:
            return self.honours_keys
        key = f"rfnb-probe-{uuid.uuid4().hex}"
        body = {"filename": "runflow-nb-idempotency-check.png", "mime_type": "image/png", "size_bytes": 1}
        ids = []
        try:
            for _ in range(2):
                resp = yield from self.call("POST", "/v1/asset-uploads", json=body, headers={"Idempotency-Key": key},
                                            what="checking Idempotency-Key support")
                data = _json(resp)
                ids.append(data.get("asset_id") or data.get("id") if isinstance(data, dict) else None)
        except (APIError, NetworkError):
            return False  # unknown for now: rely on the look-up, ask again next time
        self.honours_keys = ids[0] is not None and ids[0] == ids[1]
        return self.honours_keys

    def read(self, path: str, *, auth: bool = True) -> Generator[Action, Outcome, Any]:
        """``GET path`` → its JSON (account and catalogue endpoints)."""
        resp = yield from self.call("GET", path, auth=auth, what=f"reading {path}")
        return _json(resp)

    def get(self, run_id: str, *, deadline: float | None = None) -> Generator[Action, Outcome, Run]:
        resp = yield from self.call("GET", f"/v1/runs/{quote(run_id, safe='')}", what="polling the run",
                                    deadline=deadline)
        return _run_from(resp, "polling the run")

    def find(self, client_ref: str, *, max_pages: int = 5, metadata: dict[str, Any] | None = None
             ) -> Generator[Action, Outcome, Run | None]:
        """The newest run with this ``client_ref``, or None: ``GET /v1/runs?q=client_ref:<v>``, and the
        items filtered here as well (a server may ignore the filter), paging through recent runs by
        either cursor spelling (``next_pq`` or ``next``, a token or a link).

        ``client_ref`` is not documented as unique: with ``metadata`` (what our create sent), a run
        whose echoed metadata lacks or contradicts it is another caller's and is skipped; a run
        whose metadata is not shown at all is taken (nothing tells it apart).
        """
        value = client_ref if client_ref and not any(c.isspace() or c in '"|' for c in client_ref) else \
            '"' + client_ref.replace("\\", "\\\\").replace('"', '\\"') + '"'
        path, params = "/v1/runs", {"q": f"client_ref:{value}", "limit": 100, "sort_by": "created_at:desc"}
        seen: set[str] = set()
        unverified: Run | None = None
        for _ in range(max_pages):
            resp = yield from self.call("GET", path, params=params, what="looking up the run by client_ref")
            data = _json(resp)
            if not isinstance(data, (dict, list)):  # an HTML page is no proof the run does not exist
                raise BadAnswer(f"looking up the run by client_ref: HTTP {resp.status_code} is not a list of runs",
                                status_code=resp.status_code)
            items = data if isinstance(data, list) else next(
                (data[k] for k in ("items", "data", "runs", "results") if isinstance(data, dict)
                 and isinstance(data.get(k), list)), [])
            for item in items:
                if isinstance(item, dict) and item.get("client_ref") == client_ref and item.get("id"):
                    mine = _ours(item, metadata)
                    if mine:
                        return Run.parse(item)
                    if mine is None and unverified is None:
                        unverified = Run.parse(item)
            cursor = next((data.get(k) for k in ("next_pq", "next", "next_cursor") if isinstance(data, dict)
                           and isinstance(data.get(k), str) and data.get(k)), None)
            if not cursor or not items or cursor in seen:
                return unverified
            seen.add(cursor)
            path, params = self._next_page(cursor, params)
        return unverified

    def _next_page(self, cursor: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """``(path, params)`` of the page a cursor names: a bare token is sent as ``pq``; a link (path
        or same-origin URL) is followed with its own query, other hosts' links give up their ``pq``."""
        if not cursor.startswith(("/", "http://", "https://")):
            return "/v1/runs", {**params, "pq": cursor}
        parts = urlsplit(cursor)
        query = dict(parse_qsl(parts.query))
        base = urlsplit(self.base_url)
        if parts.netloc and (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
            return "/v1/runs", {**params, "pq": query.get("pq", "")}
        path = parts.path
        if base.path and base.path != "/" and path.startswith(base.path):
            path = path[len(base.path.rstrip("/")):]
        return path or "/v1/runs", {**params, **query}

    def wait(self, run_id: str, *, timeout: float | None = None, first: Run | None = None
             ) -> Generator[Action, Outcome, Run]:
        """Poll until the run ends, emitting a :class:`RunEvent` at every status change.

        ``timeout`` is wall-clock for the whole wait, polls included. A poll that fails (after its
        own retries) does not end the wait: only :attr:`max_bad_polls` failures in a row do, and
        only :attr:`not_found_polls` 404s in a row make the run count as gone (NotFoundError).
        """
        timeout = self.wait_timeout if timeout is None else timeout
        start = self.clock()
        deadline = start + timeout
        last_status: str | None = None
        run = first
        interval = self.poll_interval
        bad = not_found = 0
        latest = first
        while True:
            if run is None or not run.done:
                try:
                    run = latest = yield from self.get(run_id, deadline=deadline)
                    bad = not_found = 0
                except NotFoundError:
                    not_found += 1
                    if not_found >= self.not_found_polls:
                        raise
                    run = None
                except (ServerError, RateLimitError, NetworkError):
                    bad += 1
                    if bad >= self.max_bad_polls:
                        raise
                    run = None
            if run is not None and run.status != last_status:
                last_status = run.status
                yield Emit(RunEvent(run.status, run, self.clock() - start))
            if run is not None and run.done:
                return run
            elapsed = self.clock() - start
            if elapsed >= timeout:
                state = latest.status if latest is not None else "in an unknown state"
                raise RunTimeoutError(
                    f"run {run_id} is still {state} after {elapsed:.0f} s (wait timeout {timeout:.0f} s); "
                    "it may still finish — wait on it again, nothing is lost", run=latest)
            yield Sleep(min(interval, max(0.0, timeout - elapsed)))
            if elapsed > self.backoff_after_s:  # poll briskly at first, then ease off on long jobs
                interval = min(self.poll_max, interval * 1.25)
            run = None

    # -- assets ----------------------------------------------------------------------------

    def upload(self, data: bytes, *, filename: str, content_type: str) -> Generator[Action, Outcome, str]:
        """The documented three-step upload; returns the asset's signed ``url`` for ``image_urls``.

        ``POST /v1/asset-uploads {filename, mime_type, size_bytes}`` → ``{asset_id, upload_url}``;
        ``PUT upload_url`` with the bytes and the declared Content-Type, never the API key (403: the
        presigned URL expired, so start again); ``POST .../confirmations {folder_id}`` → the Asset
        record. The same bytes uploaded in the last ``upload_reuse_s`` seconds reuse that asset.
        """
        digest = hashlib.sha256(data).hexdigest()
        cached = self.uploads.get(digest)
        if cached is not None and self.clock() - cached[2] < self.upload_reuse_s:
            return cached[0]
        for start_over in range(3):
            resp = yield from self.call("POST", "/v1/asset-uploads", json={
                "filename": filename, "mime_type": content_type, "size_bytes": len(data)},
                what="starting an upload")
            created = _json(resp)
            asset_id = (created.get("asset_id") or created.get("id")) if isinstance(created, dict) else None
            upload_url = created.get("upload_url") if isinstance(created, dict) else None
            if not asset_id or not upload_url:
                raise APIError("the upload answer has no asset_id/upload_url", status_code=resp.status_code)
            put = yield from self._put_bytes(str(upload_url), data, content_type)
            if put == "expired" and start_over < 2:
                continue
            if put == "expired":
                raise APIError("the upload URL was refused (403: expired) three times", status_code=403)
            break
        resp = yield from self.call("POST", f"/v1/asset-uploads/{quote(str(asset_id), safe='')}/confirmations",
                                    json={"folder_id": None}, what="confirming the upload")
        record = _json(resp)
        url = record.get("url") if isinstance(record, dict) else None
        if not url:
            raise APIError("the upload confirmation (the Asset record) has no url", status_code=resp.status_code)
        self.uploads[digest] = (str(url), str(asset_id), self.clock())
        return str(url)

    def _put_bytes(self, upload_url: str, data: bytes, content_type: str) -> Generator[Action, Outcome, str]:
        """PUT to a presigned URL: ``"ok"``, or ``"expired"`` on a 403; other failures raise."""
        for attempt in range(self.retry.max_retries + 1):
            # Up to 50 MiB: as long as a video download may take, never unbounded. Never the API key.
            out = yield Send("PUT", upload_url, content=data, headers={"Content-Type": content_type},
                             auth=False, deadline=self.clock() + self.download_timeout_s)
            if isinstance(out, httpx.Response) and out.status_code < 300:
                return "ok"
            if isinstance(out, httpx.Response) and out.status_code == 403:
                return "expired"
            if isinstance(out, httpx.Response) and 400 <= out.status_code < 500 and out.status_code != 429:
                raise _error(out)
            if attempt == self.retry.max_retries:
                raise _network_error(out, "uploading the image") if isinstance(out, Exception) else _error(out)  # type: ignore[arg-type]
            yield Sleep(self.retry.delay(attempt))
        raise AssertionError("unreachable")

    # -- downloads -------------------------------------------------------------------------

    def download(self, url: str, make_sink: Callable[[int | None], Any], *, attempts: int | None = None
                 ) -> Generator[Action, Outcome, tuple[str, int]]:
        """Stream ``url`` into a fresh sink per attempt; a truncated or corrupted body is retried.

        ``make_sink(expected_size)`` returns a :class:`runflow_nb.media.HashingWriter`-like object.
        Never sends the API key: output URLs are presigned.
        """
        check_output_url(url)
        attempts = attempts or self.retry.max_retries + 1
        deadline = self.clock() + self.download_timeout_s  # the whole download, every attempt included
        last: Exception | None = None
        for attempt in range(attempts):
            sink = make_sink(None)
            try:  # the partial file goes on every exit: failure, deadline, Ctrl-C, a closed flow
                out = yield Send("GET", url, auth=False, sink=sink, deadline=deadline)
                if isinstance(out, httpx.Response) and out.status_code < 300:
                    try:
                        return sink.commit()
                    except DownloadError as exc:
                        last = exc
                else:
                    if isinstance(out, httpx.Response) and out.status_code in (401, 403, 404, 410):
                        raise ExpiredURLError(
                            f"the output URL answered HTTP {out.status_code}: it has expired or was revoked; "
                            "the video can no longer be downloaded from the provider")
                    if isinstance(out, DownloadError) and getattr(out, "final", False):
                        raise out  # refused before a byte (too big, no disk space): retrying cannot help
                    last = out if isinstance(out, DownloadError) else _network_error(out, "downloading the video") \
                        if isinstance(out, Exception) else \
                        DownloadError(f"download failed with HTTP {out.status_code if out is not None else '?'}")
            finally:
                sink.abort()  # a no-op once committed
            pause = self.retry.delay(attempt)
            if attempt < attempts - 1 and self.clock() + pause >= deadline:
                last = DownloadError(f"{last}; the download deadline of {self.download_timeout_s:.0f} s passed")
                break
            if attempt < attempts - 1:
                yield Sleep(pause)
        assert last is not None
        raise DownloadError(f"could not download the video intact after {attempt + 1} attempt"
                            f"{'s' if attempt else ''}: {last}")


class BatchRefused(APIError):
    """The batch route answered 422: the model takes no batches (or not these items)."""

    def __init__(self, error: APIError) -> None:
        super().__init__(error.message, status_code=error.status_code, code=error.code, errors=error.errors,
                         request_id=error.request_id)

    @property
    def unsupported(self) -> bool:
        """True unless the problems name items (``input[3].duration``): then only this batch was refused."""
        return not any("input[" in str(e) for e in (self.errors or []))


def _batch_runs(data: Any, refs: list[str]) -> tuple[str | None, dict[str, Run | None]]:
    found: dict[str, Run | None] = dict.fromkeys(refs)
    if not isinstance(data, dict):
        raise APIError("the batch answer is not an object")
    batch_id = str(data["id"]) if data.get("id") else None
    for item in data.get("items") or []:
        if isinstance(item, dict) and item.get("run_id") and item.get("client_ref") in found:
            found[item["client_ref"]] = Run.parse({"id": item["run_id"], "status_code": item.get("status_code"),
                                                   "client_ref": item["client_ref"], "batch_id": batch_id})
    return batch_id, found


def _ours(item: dict[str, Any], metadata: dict[str, Any] | None) -> bool | None:
    """Whether a listed run is the one our create made: True (its metadata echoes ours), False (it
    echoes other metadata), None (nothing to tell by: no metadata of ours, or none shown)."""
    theirs = item.get("metadata")
    if not metadata or not isinstance(theirs, dict):
        return None
    return all(k in theirs and theirs[k] == v for k, v in metadata.items())


def check_output_url(url: str) -> None:
    """Only http(s) URLs are fetched: ``file://`` and other schemes in a server answer are refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DownloadError(f"refusing to download from a non-http(s) URL ({parts.scheme or 'no'} scheme)")
