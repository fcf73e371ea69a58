"""Runflow's HTTP contract on top of the simulator: in-process (httpx) or on loopback, with faults.

One pure handler, :meth:`Emulator.handle` (``httpx.Request`` → ``httpx.Response``), serves
everything; use it as ``httpx.MockTransport(emulator.handle)`` in unit tests (sync or async
clients), or :func:`serve` it on a real socket (a stdlib ``ThreadingHTTPServer`` adapting to the
same handler) for end-to-end tests, other languages, or the model page's ``requests`` snippet.

>>> with serve(port=0, latency=0.1) as server:                                  # doctest: +SKIP
...     r = httpx.post(f"{server.url}/v1/run/happy-horse/reference-to-video",
...                    headers={"Authorization": "Bearer x"}, json={...}, timeout=60)
...     r.json()["video"]["url"]

Endpoints (``Authorization: Bearer <anything>`` on ``/v1/*`` except health; the exact key when
``api_key`` is set): ``POST /v1/models/{model}/runs`` (201, the queued run), ``GET /v1/runs/{id}``,
``GET /v1/runs?client_ref=&limit=&cursor=`` (``{"data", "next_cursor"}``, limit ≤ 500),
``GET /v1/runs/{id}/logs``, ``GET /v1/billing/balance``, ``GET /v1/auth/me``, ``GET /v1/health``,
``POST /v1/asset-uploads`` → ``PUT upload_url`` → ``POST /v1/asset-uploads/{id}/confirmations``,
``GET /files/{token}/{run}.mp4`` (signed, expiring; Range supported), and the model page's blocking
``POST /v1/run/{model}`` with the flat input, answering ``{"video": {...}, "seed", "timing",
"nsfw_detected", "id", "cost"}`` (a failed run answers 500 with the failure code). Test hooks
(no auth): ``GET /_emulator/ledger``, ``GET /_emulator/stats``, ``POST /_emulator/config``
``{"latency": s, "faults": "spec"}``. Errors always use ``{code, message, errors[], request_id}``;
a 422 lists every problem as ``{field, message, fix}`` (input fields by bare name, e.g.
``duration``, ``image_urls[1]``; body fields ``input``, ``client_ref``, ``metadata``,
``callback_url``).

Input is checked as :mod:`runflow_nb.request` checks it (rules from :mod:`runflow_nb.specs`):
integers must be JSON integers (``5.0`` is refused), ``null`` means the default. Images may be
``data:`` URIs, this emulator's confirmed asset URLs, or http(s) URLs fetched with a 3 s timeout.
An unreachable URL (or an RFC 2606 example host such as example.com, never fetched) becomes a
generated 1280×720 placeholder with a warning in the run's logs when ``offline_images="placeholder"``
(the default, so the model page's example runs offline); with ``"reject"`` it is a 422.

The fault spec syntax follows (also in ``FAULT_HELP`` and ``runflow-nb emulator --help``).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import concurrent.futures
import contextlib
import functools
import hashlib
import hmac
import io
import json
import logging
import random
import re
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from .errors import APIError, ExpiredURLError, Issue, RunTimeoutError, ValidationError
from .simulator import MAX_PAGE_SIZE, Simulator, iso_utc, validate_input
from .specs import ModelSpec, get_spec

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["FAULT_HELP", "FAULT_KINDS", "ConnectionDropped", "Emulator", "EmulatorServer", "FaultPlan",
           "emulator_main", "serve", "spawn"]

log = logging.getLogger(__name__)

FAULT_HELP = """\
Fault spec: comma-separated KIND=VALUE items, e.g.
  "429=0.1,429ra=0.05,500=0.05,503=0.05,drop=0.05,slow=0.05,fail=0.05,nsfw=0.05,truncate=0.05,
   expire=0.05,seed=1,slow_s=3"
VALUE is a probability 0–1 per eligible request, or Nx for exactly the first N eligible requests
(e.g. drop=1x); a bare KIND means 1 (always). Kinds:
  429       429 RATE_LIMITED without Retry-After         (any /v1 API endpoint but health)
  429ra     429 RATE_LIMITED with Retry-After: retry_after s (default 1)
  500, 503  500 INTERNAL_ERROR / 503 MODEL_UNAVAILABLE   (any endpoint, downloads and uploads
            included, but health and /_emulator)
  drop      a submit is accepted (run created, billed if it succeeds) but the connection is
            closed before the answer; in-process: httpx.RemoteProtocolError
  slow      a GET under /v1 sleeps slow_s seconds (default 3) before answering
  fail      the run fails (GENERATION_FAILED, not billed)
  nsfw      the run succeeds with nsfw_detected=true (when the safety checker is on)
  truncate  a video download sends Content-Length of the full body, then half of it and closes
  expire    a video download answers 410 URL_EXPIRED (a really expired URL answers 403)
The four error kinds are exclusive per request (one draw). Options: seed=N (the faults' random
stream; same seed and request order → same faults), slow_s=S, retry_after=N. "none" = no faults.
"""
__doc__ = f"{__doc__}\n{FAULT_HELP}"

FAULT_KINDS = ("429", "429ra", "500", "503", "drop", "slow", "fail", "nsfw", "truncate", "expire")
_ERROR_FAULTS = {"429": (429, "RATE_LIMITED", "too many requests; slow down"),
                 "429ra": (429, "RATE_LIMITED", "too many requests; retry after the delay given"),
                 "500": (500, "INTERNAL_ERROR", "internal server error (injected)"),
                 "503": (503, "MODEL_UNAVAILABLE", "the model is temporarily unavailable (injected)")}
_EXAMPLE_HOST = re.compile(r"(^|\.)(example\.(com|net|org)|example|test|invalid)$", re.I)
MAX_ASSET_BYTES = 50 * 1024 * 1024
MAX_BODY_BYTES = 256 * 1024 * 1024
FETCH_TIMEOUT_S = 3.0


# --- faults -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultPlan:
    """Which faults to inject and how often. Build one with :meth:`parse` (syntax in ``FAULT_HELP``).

    >>> plan = FaultPlan.parse("429=0.1,drop=1x,seed=7")
    >>> plan.rates["429"], plan.counts["drop"], plan.seed
    (0.1, 1, 7)
    """

    rates: Mapping[str, float] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)
    seed: int = 0
    slow_s: float = 3.0
    retry_after: int = 1

    @classmethod
    def parse(cls, spec: str | FaultPlan | None) -> FaultPlan:
        """Parse a fault spec; raises ValueError naming the bad item and the known kinds."""
        if isinstance(spec, FaultPlan):
            return spec
        rates: dict[str, float] = {}
        counts: dict[str, int] = {}
        opts: dict[str, Any] = {}
        text = (spec or "").strip()
        if text.lower() in ("", "none", "off", "0"):
            return cls()
        for item in text.split(","):
            key, sep, value = (s.strip() for s in item.strip().partition("="))
            key = key.lower()
            if not key:
                continue
            try:
                if key == "seed":
                    opts["seed"] = int(value)
                elif key in ("slow_s", "slow-s"):
                    opts["slow_s"] = _nonneg(float(value))
                elif key in ("retry_after", "retry-after", "retry_after_s"):
                    opts["retry_after"] = int(_nonneg(int(value)))
                elif key in FAULT_KINDS:
                    if not sep:
                        rates[key] = 1.0
                    elif value.lower().endswith("x"):
                        counts[key] = int(_nonneg(int(value[:-1])))
                    else:
                        p = float(value)
                        if not 0.0 <= p <= 1.0:
                            raise ValueError("a probability must be between 0 and 1")
                        rates[key] = p
                else:
                    raise ValueError(f"unknown fault kind; known: {', '.join(FAULT_KINDS)}, "
                                     "seed, slow_s, retry_after")
            except ValueError as exc:
                raise ValueError(f"bad fault spec item {item.strip()!r}: {exc}") from None
        if sum(rates.get(k, 0.0) for k in _ERROR_FAULTS) > 1.0 + 1e-9:
            raise ValueError("the probabilities of 429, 429ra, 500 and 503 add up to more than 1")
        return cls(rates=rates, counts=counts, **opts)

    def __str__(self) -> str:
        items = [f"{k}={self.rates[k]:g}" for k in FAULT_KINDS if self.rates.get(k)]
        items += [f"{k}={self.counts[k]}x" for k in FAULT_KINDS if self.counts.get(k)]
        if not items:
            return "none"
        return ",".join([*items, f"seed={self.seed}", f"slow_s={self.slow_s:g}", f"retry_after={self.retry_after}"])


def _nonneg(x: float) -> float:
    if x < 0:
        raise ValueError("must not be negative")
    return x


class _Injector:
    """Draws faults from a seeded random stream; counts what it injected. Thread-safe."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._rng = random.Random(plan.seed)
        self._left = dict(plan.counts)
        self._lock = threading.Lock()

    def hit(self, kind: str) -> bool:
        with self._lock:
            if self._left.get(kind, 0) > 0:
                self._left[kind] -= 1
                return True
            p = self.plan.rates.get(kind, 0.0)
            return p > 0 and self._rng.random() < p

    def error(self, eligible: tuple[str, ...]) -> str | None:
        """At most one of the ``eligible`` error kinds for this request (one draw)."""
        with self._lock:
            for kind in eligible:
                if self._left.get(kind, 0) > 0:
                    self._left[kind] -= 1
                    return kind
            if not any(self.plan.rates.get(k) for k in eligible):
                return None
            r, acc = self._rng.random(), 0.0
            for kind in eligible:
                acc += self.plan.rates.get(kind, 0.0)
                if r < acc:
                    return kind
            return None


class ConnectionDropped(httpx.RemoteProtocolError):
    """The emulator drops the connection (injected). In-process clients see this
    ``httpx.RemoteProtocolError``; the loopback server closes the socket instead."""


class _TruncatedStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that stops early and then fails as a closed connection does."""

    def __init__(self, data: bytes, expected: int, request: httpx.Request) -> None:
        self._data, self._expected, self._request = data, expected, request

    def _error(self) -> ConnectionDropped:
        return ConnectionDropped(f"peer closed connection without sending complete message body "
                                 f"(received {len(self._data)} bytes, expected {self._expected})",
                                 request=self._request)

    def __iter__(self) -> Iterator[bytes]:
        yield self._data
        raise self._error()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._data
        raise self._error()


# --- responses --------------------------------------------------------------------------------


def _json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> httpx.Response:
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return httpx.Response(status, content=content, headers={"Content-Type": "application/json", **(headers or {})})


def _issue_item(issue: Issue) -> dict[str, str]:
    return {"field": issue.field, "message": issue.message, "fix": issue.fix}


class _HTTPError(Exception):
    def __init__(self, status: int, code: str, message: str, errors: list[Any] | None = None,
                 headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.errors, self.headers, self.extra = errors or [], dict(headers or {}), extra


def _invalid(issues: list[Issue]) -> _HTTPError:
    n = len(issues)
    return _HTTPError(422, "VALIDATION_ERROR", f"{n} problem{'s' if n != 1 else ''} with the request",
                      [_issue_item(i) for i in issues])


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), name) for m, p, name in [
        ("POST", r"/v1/models/(?P<model>.+)/runs", "submit"),
        ("POST", r"/v1/run/(?P<model>.+)", "run_blocking"),
        ("GET", r"/v1/runs", "list_runs"),
        ("GET", r"/v1/runs/(?P<run_id>[^/]+)", "get_run"),
        ("GET", r"/v1/runs/(?P<run_id>[^/]+)/logs", "run_logs"),
        ("GET", r"/v1/billing/balance", "balance"),
        ("GET", r"/v1/auth/me", "me"),
        ("GET", r"/v1/health", "health"),
        ("POST", r"/v1/asset-uploads", "create_upload"),
        ("POST", r"/v1/asset-uploads/(?P<asset_id>[^/]+)/confirmations", "confirm_upload"),
        ("PUT", r"/uploads/(?P<asset_id>[^/]+)", "put_upload"),
        ("GET", r"/assets/(?P<asset_id>[^/]+)/(?P<name>[^/]+)", "get_asset"),
        ("GET", r"/files/(?P<token>[^/]+)/(?P<name>[^/]+)", "get_file"),
        ("GET", r"/_emulator/ledger", "ledger"),
        ("GET", r"/_emulator/stats", "stats_endpoint"),
        ("POST", r"/_emulator/config", "config"),
    ]
]
_PUBLIC = ("/v1/health",)


# --- the emulator -----------------------------------------------------------------------------


class Emulator:
    """Runflow's API as a pure function over a :class:`Simulator`.

    ``latency`` applies to a simulator created here (default 0.3 s) or, when given, overrides the
    one passed in; both ``latency`` and ``faults`` can be changed later (attributes, or
    ``POST /_emulator/config``). ``base_url`` prefixes the URLs the emulator hands out (output
    files, uploads, assets); :func:`serve` sets it to the server's address.

    >>> emulator = Emulator(latency=0.05, faults="429=0.2,seed=3")              # doctest: +SKIP
    >>> client = httpx.Client(transport=httpx.MockTransport(emulator.handle), base_url="http://emu")
    """

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
        self._injector = _Injector(FaultPlan.parse(faults))
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._assets: dict[str, dict[str, Any]] = {}
        self._secret = secrets.token_bytes(16)

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
        self._injector = _Injector(FaultPlan.parse(value))

    def close(self) -> None:
        """Close the simulator if this emulator created it."""
        if self._owns_simulator:
            self.simulator.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> EmulatorServer:
        """Serve this emulator on a real socket (see :func:`serve`)."""
        return EmulatorServer(self, host=host, port=port, owns_emulator=False)

    # -- counters ----------------------------------------------------------------------------------

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + n

    def _fault(self, kind: str) -> bool:
        if self._injector.hit(kind):
            self._count(f"fault:{kind}")
            return True
        return False

    def stats(self) -> dict[str, Any]:
        """Requests served, faults injected by kind, runs by status and what was billed."""
        with self._lock:
            counts = dict(self._counts)
        faults = {k: counts.get(f"fault:{k}", 0) for k in FAULT_KINDS}
        runs = self.simulator.counts()
        ledger = self.simulator.ledger()
        return {
            "requests": counts.get("requests", 0), "faults": faults, "faults_total": sum(faults.values()),
            "placeholders": counts.get("placeholders", 0), "runs": runs.pop("runs"), "runs_by_status": runs,
            "billed_runs": len(ledger), "billed_usd": round(sum(e["cost_usd"] for e in ledger), 2),
            "fault_plan": str(self.faults), "latency": self.latency,
        }

    # -- the handler -----------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (blocking: slow polls and ``/v1/run/...`` sleep in this thread)."""
        request_id = f"req_{secrets.token_hex(8)}"
        self._count("requests")
        try:
            try:
                request.content  # noqa: B018 (is the body loaded?)
            except httpx.RequestNotRead:
                request.read()
            response = self._dispatch(request, request_id)
        except ConnectionDropped:
            raise
        except _HTTPError as exc:
            response = _json_response(exc.status, {"code": exc.code, "message": exc.message, "errors": exc.errors,
                                                   "request_id": request_id, **exc.extra}, exc.headers)
        except ValidationError as exc:
            err = _invalid(exc.issues)
            response = _json_response(422, {"code": err.code, "message": err.message, "errors": err.errors,
                                            "request_id": request_id})
        except APIError as exc:
            response = _json_response(exc.status_code or 500, {"code": exc.code or "ERROR", "message": exc.message,
                                                               "errors": exc.errors, "request_id": request_id})
        except Exception:
            log.exception("emulator: %s %s failed", request.method, request.url.path)
            response = _json_response(500, {"code": "INTERNAL_ERROR", "message": "the emulator hit a bug",
                                            "errors": [], "request_id": request_id})
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
        matched = [(m, name, match) for m, rx, name in _ROUTES if (match := rx.fullmatch(path))]
        if not matched:
            raise _HTTPError(404, "NOT_FOUND", f"no such endpoint: {request.method} {path}")
        found = next(((name, match) for m, name, match in matched if m == method), None)
        if found is None:
            allowed = ", ".join(sorted({m for m, _, _ in matched}))
            raise _HTTPError(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here; use {allowed}",
                             headers={"Allow": allowed})
        name, match = found
        if path.startswith("/v1/") and path not in _PUBLIC:
            self._authenticate(request)
        if not path.startswith("/_emulator/") and path not in _PUBLIC:
            kind = self._injector.error(tuple(_ERROR_FAULTS) if path.startswith("/v1/") else ("500", "503"))
            if kind is not None:
                self._count(f"fault:{kind}")
                status, code, message = _ERROR_FAULTS[kind]
                headers = {"Retry-After": str(self.faults.retry_after)} if kind == "429ra" else None
                raise _HTTPError(status, code, message, headers=headers)
            if method == "GET" and path.startswith("/v1/") and self._fault("slow"):
                time.sleep(self.faults.slow_s)
        handler = getattr(self, f"_ep_{name}")
        return handler(request, request_id, **match.groupdict())  # httpx's URL.path is already decoded

    def _authenticate(self, request: httpx.Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _HTTPError(401, "UNAUTHORIZED", "missing API key: send 'Authorization: Bearer <key>'")
        if self.api_key is not None and not hmac.compare_digest(token.encode(), self.api_key.encode()):
            raise _HTTPError(401, "UNAUTHORIZED", "invalid API key")

    # -- runs ------------------------------------------------------------------------------------

    def _ep_submit(self, request: httpx.Request, request_id: str, *, model: str) -> httpx.Response:
        spec = _spec(model)
        body = _json_body(request)
        issues: list[Issue] = []
        client_ref, metadata, callback_url = body.get("client_ref"), body.get("metadata"), body.get("callback_url")
        if client_ref is not None and (not isinstance(client_ref, str) or len(client_ref) > 255):
            issues.append(Issue("client_ref", "must be a string of at most 255 characters",
                                "use a shorter reference"))
        if metadata is not None and not isinstance(metadata, dict):
            issues.append(Issue("metadata", "must be an object", "send a JSON object"))
        if callback_url is not None and not (isinstance(callback_url, str)
                                             and callback_url.lower().startswith(("http://", "https://"))):
            issues.append(Issue("callback_url", "must be an http(s) URL", "send a full URL or leave it out"))
        inp = body.get("input")
        if not isinstance(inp, dict):
            issues.append(Issue("input", "is required: an object with the model's inputs",
                                'send {"input": {"prompt": ..., "image_urls": [...]}}'))
            raise _invalid(issues)
        run = self._create_run(spec, inp, request, request_id, issues, client_ref=client_ref,
                               metadata=metadata, callback_url=callback_url)
        return _json_response(201, run, {"Location": f"/v1/runs/{run['id']}"})

    def _ep_run_blocking(self, request: httpx.Request, request_id: str, *, model: str) -> httpx.Response:
        spec = _spec(model)
        run = self._create_run(spec, _json_body(request), request, request_id, [])
        try:
            done = self.simulator.wait(run["id"], timeout=self.blocking_timeout_s, base_url=self.base_url)
        except RunTimeoutError:
            raise _HTTPError(504, "TIMEOUT", "the run did not finish in time; poll it", id=run["id"]) from None
        if done["status_code"] != "succeeded":
            raise _HTTPError(500, done["failure_code"] or "RUN_FAILED", done["failure_message"] or "the run failed",
                             id=done["id"], status_code=done["status_code"], cost=done["cost"])
        out = done["output"]
        video = {k: v for k, v in out["outputs"][0].items() if k != "type"}
        return _json_response(200, {"video": video, "seed": out["seed"], "timing": out["timing"],
                                    "nsfw_detected": out["nsfw_detected"], "id": done["id"], "cost": done["cost"],
                                    "status_code": done["status_code"], "duration_ms": done["duration_ms"]})

    def _create_run(self, spec: ModelSpec, inp: dict[str, Any], request: httpx.Request, request_id: str,
                    issues: list[Issue], **extra: Any) -> dict[str, Any]:
        rules = spec.images
        urls = inp.get(rules.field)
        _, more = validate_input(inp, spec=spec, n_images=len(urls) if isinstance(urls, list) else None)
        issues = [*issues, *more]
        images: list[Image.Image] = []
        notes: list[str] = []
        if urls is None:
            issues.append(Issue(rules.field, "is required", "send 1–9 image URLs"))
        elif not isinstance(urls, list):
            issues.append(Issue(rules.field, "must be a list of image URLs", "send a JSON array"))
        else:
            if not rules.min_count <= len(urls) <= rules.max_count:
                issues.append(Issue(rules.field, f"got {len(urls)} images; {rules.min_count}–{rules.max_count} "
                                                 "are allowed", "send between 1 and 9 images"))
            images, img_issues, notes = self._resolve_images(urls[: rules.max_count], request, spec)
            issues += img_issues
        if issues:
            raise ValidationError(issues)
        fail = self._fault("fail")
        nsfw = not fail and self._fault("nsfw")  # a failed run has nothing to flag
        drop = self._fault("drop")
        run = self.simulator.submit(inp, images=images, model=spec.model, request_id=request_id,
                                    force_failure=fail, force_nsfw=nsfw, notes=notes, **extra)
        if drop:
            raise ConnectionDropped("Server disconnected without sending a response.", request=request)
        return self.simulator.get(run["id"], base_url=self.base_url)

    def _ep_get_run(self, request: httpx.Request, request_id: str, *, run_id: str) -> httpx.Response:
        return _json_response(200, self.simulator.get(run_id, base_url=self.base_url))

    def _ep_run_logs(self, request: httpx.Request, request_id: str, *, run_id: str) -> httpx.Response:
        return _json_response(200, {"run_id": run_id, "data": self.simulator.logs(run_id)})

    def _ep_list_runs(self, request: httpx.Request, request_id: str) -> httpx.Response:
        params = request.url.params
        limit_text = params.get("limit", "100")
        try:
            limit: Any = int(limit_text)
        except ValueError:
            limit = limit_text
        client_ref = params.get("client_ref") or None
        data, next_cursor = self.simulator.list_runs(client_ref=client_ref, limit=limit,
                                                     cursor=params.get("cursor") or None, base_url=self.base_url)
        return _json_response(200, {"data": data, "next_cursor": next_cursor, "has_more": next_cursor is not None,
                                    "limit": limit, "max_limit": MAX_PAGE_SIZE})

    # -- account ---------------------------------------------------------------------------------

    def _ep_balance(self, request: httpx.Request, request_id: str) -> httpx.Response:
        return _json_response(200, {"balance": f"{self.simulator.balance():.2f}", "currency": "USD"})

    def _ep_me(self, request: httpx.Request, request_id: str) -> httpx.Response:
        org = request.headers.get("x-organization-id") or "org_emulator"
        return _json_response(200, {"id": "usr_emulator", "email": "emulator@runflow-nb.invalid",
                                    "name": "runflow_nb emulator", "organization_id": org})

    def _ep_health(self, request: httpx.Request, request_id: str) -> httpx.Response:
        return _json_response(200, {"status": "ok", "emulator": True, "time": iso_utc(time.time())})

    # -- uploads ---------------------------------------------------------------------------------

    def _upload_sig(self, asset_id: str) -> str:
        return hmac.new(self._secret, asset_id.encode(), hashlib.sha256).hexdigest()[:32]

    def _ep_create_upload(self, request: httpx.Request, request_id: str) -> httpx.Response:
        body = _json_body(request)
        filename, content_type, size = body.get("filename"), body.get("content_type"), body.get("size")
        issues = []
        if not isinstance(filename, str) or not 1 <= len(filename) <= 255 or "/" in filename:
            issues.append(Issue("filename", "must be a file name of 1–255 characters without '/'",
                                "send e.g. reference1.png"))
        if not isinstance(content_type, str) or "/" not in content_type:
            issues.append(Issue("content_type", "must be a MIME type", "send e.g. image/png"))
        if type(size) is not int or not 1 <= size <= MAX_ASSET_BYTES:
            issues.append(Issue("size", f"must be a whole number of bytes, 1–{MAX_ASSET_BYTES} (50 MiB)",
                                "send the file's exact size"))
        if issues:
            raise _invalid(issues)
        asset_id = f"asset_{secrets.token_hex(10)}"
        with self._lock:
            self._assets[asset_id] = {"filename": filename, "content_type": content_type, "size": size,
                                      "data": None, "status": "pending"}
        name = urllib.parse.quote(str(filename))
        return _json_response(201, {
            "id": asset_id, "status": "pending", "method": "PUT",
            "upload_url": f"{self.base_url}/uploads/{asset_id}?signature={self._upload_sig(asset_id)}",
            "headers": {"Content-Type": content_type}, "url": f"{self.base_url}/assets/{asset_id}/{name}",
            "expires_at": iso_utc(time.time() + 3600)})

    def _ep_put_upload(self, request: httpx.Request, request_id: str, *, asset_id: str) -> httpx.Response:
        sig = request.url.params.get("signature", "")
        with self._lock:
            asset = self._assets.get(asset_id)
            if asset is None or not hmac.compare_digest(sig, self._upload_sig(asset_id)):
                raise _HTTPError(403, "FORBIDDEN", "the upload URL is not valid")
            data = request.content
            if len(data) != asset["size"]:
                raise _HTTPError(400, "SIZE_MISMATCH", f"declared {asset['size']} bytes, received {len(data)}")
            asset["data"], asset["status"] = data, "uploaded"
        return httpx.Response(200, headers={"ETag": f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'})

    def _ep_confirm_upload(self, request: httpx.Request, request_id: str, *, asset_id: str) -> httpx.Response:
        with self._lock:
            asset = self._assets.get(asset_id)
            if asset is None:
                raise _HTTPError(404, "NOT_FOUND", f"no upload with id {asset_id!r}")
            if asset["data"] is None:
                raise _HTTPError(409, "CONFLICT", "nothing was uploaded yet: PUT the bytes to upload_url first")
            asset["status"] = "confirmed"
            name = urllib.parse.quote(asset["filename"])
            return _json_response(200, {"id": asset_id, "status": "confirmed", "size": asset["size"],
                                        "content_type": asset["content_type"],
                                        "url": f"{self.base_url}/assets/{asset_id}/{name}"})

    def _ep_get_asset(self, request: httpx.Request, request_id: str, *, asset_id: str, name: str) -> httpx.Response:
        with self._lock:
            asset = self._assets.get(asset_id)
        if asset is None or asset["status"] != "confirmed":
            raise _HTTPError(404, "NOT_FOUND", "no such asset")
        data = b"" if request.method == "HEAD" else asset["data"]
        return httpx.Response(200, content=data, headers={"Content-Type": asset["content_type"],
                                                          "Content-Length": str(len(asset["data"]))})

    # -- downloads -------------------------------------------------------------------------------

    def _ep_get_file(self, request: httpx.Request, request_id: str, *, token: str, name: str) -> httpx.Response:
        if self._fault("expire"):
            raise _HTTPError(410, "URL_EXPIRED", "this signed URL has expired")
        try:
            path = self.simulator.resolve_file(token, name)
        except ExpiredURLError as exc:
            raise _HTTPError(403, "URL_EXPIRED", str(exc)) from None
        data = Path(path).read_bytes()
        headers = {"Content-Type": "video/mp4", "Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600",
                   "ETag": f'"{hashlib.sha256(data).hexdigest()[:32]}"'}
        status, body = 200, data
        rng = _parse_range(request.headers.get("range"), len(data))
        if rng == "bad":
            raise _HTTPError(416, "RANGE_NOT_SATISFIABLE", "the requested range is not satisfiable",
                             headers={"Content-Range": f"bytes */{len(data)}"})
        if isinstance(rng, tuple):
            start, end = rng
            status, body = 206, data[start:end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        headers["Content-Length"] = str(len(body))
        if request.method == "HEAD":
            return httpx.Response(status, headers=headers, content=b"")
        if len(body) > 1 and self._fault("truncate"):
            return httpx.Response(status, headers=headers,
                                  stream=_TruncatedStream(body[: len(body) // 2], len(body), request))
        return httpx.Response(status, headers=headers, content=body)

    # -- test hooks ------------------------------------------------------------------------------

    def _ep_ledger(self, request: httpx.Request, request_id: str) -> httpx.Response:
        ledger = self.simulator.ledger()
        return _json_response(200, {"billed": ledger, "count": len(ledger),
                                    "total_usd": round(sum(e["cost_usd"] for e in ledger), 2)})

    def _ep_stats_endpoint(self, request: httpx.Request, request_id: str) -> httpx.Response:
        return _json_response(200, self.stats())

    def _ep_config(self, request: httpx.Request, request_id: str) -> httpx.Response:
        body = _json_body(request)
        try:
            if "latency" in body:
                self.latency = _nonneg(float(body["latency"]))
            if "faults" in body:
                self.faults = body["faults"]
        except (TypeError, ValueError) as exc:
            raise _HTTPError(422, "VALIDATION_ERROR", str(exc)) from None
        return _json_response(200, {"latency": self.latency, "faults": str(self.faults)})

    # -- reference images ------------------------------------------------------------------------

    def _resolve_images(self, urls: list[Any], request: httpx.Request, spec: ModelSpec
                        ) -> tuple[list[Image.Image], list[Issue], list[str]]:
        """Fetch and decode every image (remote ones in parallel); gather every problem."""
        local = {urllib.parse.urlsplit(self.base_url).netloc.lower(), request.url.netloc.decode("ascii").lower()}
        jobs = [functools.partial(self._load_image, u, i, local, spec) for i, u in enumerate(urls)]
        remote = sum(1 for u in urls if isinstance(u, str) and u.lower().startswith(("http://", "https://")))
        if remote > 1:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(jobs), 9)) as pool:
                results = list(pool.map(lambda job: job(), jobs))
        else:
            results = [job() for job in jobs]
        images: list[Image.Image] = []
        issues: list[Issue] = []
        notes: list[str] = []
        for got, note in results:
            if isinstance(got, list):
                issues += got
            else:
                images.append(got)
            if note:
                notes.append(note)
                self._count("placeholders")
                log.warning("emulator: %s", note)
        return images, issues, notes

    def _load_image(self, value: Any, index: int, local: set[str], spec: ModelSpec
                    ) -> tuple[Image.Image | list[Issue], str | None]:
        where = f"{spec.images.field}[{index}]"
        rules = spec.images
        if not isinstance(value, str):
            return [Issue(where, f"must be a URL string, got {type(value).__name__}",
                          "send an http(s) URL, a data: URI or an uploaded asset URL")], None
        url = value.strip()
        if url[:5].lower() == "data:":
            got = _data_uri_bytes(url, where, rules.max_bytes)
            return (got if isinstance(got, list) else _decode_image(got, where, spec)), None
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            return [Issue(where, "is not an http(s) URL, a data: URI or an uploaded asset URL",
                          "send a full http(s) URL")], None
        if parts.netloc.lower() in local and parts.path.startswith("/assets/"):
            asset_id = parts.path.split("/")[2]
            with self._lock:
                asset = self._assets.get(asset_id)
            if asset is None or asset["status"] != "confirmed":
                return [Issue(where, "is not a confirmed upload of this server",
                              "PUT the bytes to upload_url, then POST /v1/asset-uploads/{id}/confirmations")], None
            return _decode_image(asset["data"], where, spec), None
        reason: str | None = None
        if _EXAMPLE_HOST.search(parts.hostname or ""):
            reason = "a reserved example host, never fetched"
        else:
            try:
                data = self._fetch(url, rules.max_bytes)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"[:200]
            except _HTTPError as exc:
                return [Issue(where, exc.message, "use a URL that answers with the image")], None
            else:
                return _decode_image(data, where, spec), None
        if self.offline_images == "placeholder":
            note = f"{where}: {url[:200]} could not be fetched ({reason}); a 1280×720 placeholder image was used"
            return _placeholder(url), note
        return [Issue(where, f"could not be fetched ({reason})",
                      "use a reachable URL, a data: URI or an uploaded asset")], None

    def _fetch(self, url: str, max_bytes: int) -> bytes:
        with httpx.Client(timeout=self.fetch_timeout_s, follow_redirects=True, trust_env=False) as client, \
                client.stream("GET", url) as resp:
            if resp.status_code >= 400:
                raise _HTTPError(422, "", f"could not be fetched: the server answered HTTP {resp.status_code}")
            buf = bytearray()
            for chunk in resp.iter_bytes():
                buf += chunk
                if len(buf) > max_bytes:
                    break
            return bytes(buf)


# --- image helpers ----------------------------------------------------------------------------


def _spec(model: str) -> ModelSpec:
    try:
        return get_spec(model)
    except KeyError:
        raise _HTTPError(404, "MODEL_NOT_FOUND", f"no model {model!r}") from None


def _json_body(request: httpx.Request) -> dict[str, Any]:
    try:
        body = json.loads(request.content or b"null")
    except (ValueError, UnicodeDecodeError):
        raise _HTTPError(400, "BAD_REQUEST", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _HTTPError(400, "BAD_REQUEST", "the body must be a JSON object")
    return body


def _data_uri_bytes(uri: str, where: str, max_bytes: int) -> bytes | list[Issue]:
    head, sep, payload = uri[5:].partition(",")
    if not sep:
        return [Issue(where, "is not a valid data: URI", "use data:image/png;base64,<data>")]
    if len(payload) > 2 * max_bytes:  # clearly too big: don't even decode it
        return [Issue(where, f"is about {len(payload) * 3 / 4 / 1e6:.1f} MB; the limit is "
                             f"{max_bytes // 2**20} MB", "re-encode it as JPEG or scale it down")]
    if head.lower().endswith(";base64"):
        try:
            return base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            return [Issue(where, "is not valid base64", "encode the image bytes with standard base64")]
    return urllib.parse.unquote_to_bytes(payload)


_DECODED: collections.OrderedDict[tuple[str, str], Image.Image] = collections.OrderedDict()
_DECODED_LOCK = threading.Lock()


def _decode_image(data: bytes, where: str, spec: ModelSpec) -> Image.Image | list[Issue]:
    """:func:`_decode_image_uncached`, remembering the last few good images: a sweep sends the same
    references with every run, and decoding them each time made every submit slower."""
    key = (hashlib.sha256(data).hexdigest(), spec.model)
    with _DECODED_LOCK:
        hit = _DECODED.get(key)
        if hit is not None:
            _DECODED.move_to_end(key)
            return hit
    got = _decode_image_uncached(data, where, spec)
    if not isinstance(got, list):
        with _DECODED_LOCK:
            _DECODED[key] = got
            while len(_DECODED) > 16:
                _DECODED.popitem(last=False)
    return got


def _decode_image_uncached(data: bytes, where: str, spec: ModelSpec) -> Image.Image | list[Issue]:
    """Decode with Pillow under the spec's rules (mirrors ``runflow_nb.request._decode_checked``)."""
    from PIL import Image, UnidentifiedImageError

    rules = spec.images
    if len(data) > rules.max_bytes:
        return [Issue(where, f"is {len(data) / 1e6:.1f} MB; the limit is {rules.max_bytes // 2**20} MB",
                      "re-encode it as JPEG or scale it down")]
    limit = min(rules.max_pixels, Image.MAX_IMAGE_PIXELS or rules.max_pixels)
    try:
        img = Image.open(io.BytesIO(data))
        fmt = (img.format or "").upper()
        width, height = img.size
        if width * height > limit:
            raise Image.DecompressionBombError(f"{width}x{height} pixels")
        if fmt in rules.formats:
            img.load()
    except Image.DecompressionBombError as exc:
        return [Issue(where, f"has too many pixels to be a reference image ({exc})",
                      "scale it down to a normal photo size")]
    except UnidentifiedImageError:
        return [Issue(where, "is not an image Pillow can read", f"use a {'/'.join(rules.formats)} file")]
    except (OSError, SyntaxError, ValueError) as exc:
        return [Issue(where, f"is a damaged or truncated image ({exc})", "re-export the image")]
    if fmt not in rules.formats:
        return [Issue(where, f"is {fmt or 'an unknown format'}; accepted formats are JPEG, PNG and WEBP",
                      "convert it to PNG or JPEG")]
    if min(width, height) < rules.min_short_side:
        return [Issue(where, f"is {width}×{height}; the shortest side must be at least {rules.min_short_side} px",
                      "use a larger image (720 px or more is advised)")]
    return img


@functools.lru_cache(maxsize=32)
def _placeholder_image(url: str) -> Image.Image:
    from PIL import Image, ImageDraw

    digest = hashlib.sha256(url.encode()).digest()
    bg = (40 + digest[0] % 120, 40 + digest[1] % 120, 40 + digest[2] % 120)
    img = Image.new("RGB", (1280, 720), bg)
    draw = ImageDraw.Draw(img)
    fg = (255 - bg[0] // 2, 255 - bg[1] // 2, 255 - bg[2] // 2)
    for k in range(6):
        x, y, r = digest[3 + k] * 5, digest[9 + k] * 2 + 100, 40 + digest[15 + k] % 120
        draw.ellipse((x - r, y - r, x + r, y + r), outline=fg, width=6)
    name = urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1][:60] or url[:60]
    draw.text((40, 640), f"PLACEHOLDER for {name} (not fetched: offline)", fill=fg)
    return img


def _placeholder(url: str) -> Image.Image:
    return _placeholder_image(url).copy()


def _parse_range(value: str | None, size: int) -> tuple[int, int] | str | None:
    """One ``bytes=a-b`` range → (start, end) inclusive; ``"bad"`` if unsatisfiable; None if absent."""
    if not value:
        return None
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", value)
    if not m or (not m[1] and not m[2]):
        return None  # unsupported (e.g. several ranges): send the whole body
    if not m[1]:
        start, end = max(0, size - int(m[2])), size - 1
    else:
        start, end = int(m[1]), min(size - 1, int(m[2])) if m[2] else size - 1
    return (start, end) if start <= end and start < size else "bad"


# --- the loopback server ----------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
    emulator: Emulator
    base_url: str

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # a client hung up (reset, broken pipe): routine, not a bug
            log.debug("emulator: connection from %s ended: %s", client_address, exc)
        else:
            log.exception("emulator: error while serving %s", client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, keep-alive clients wait ~40 ms for
    # the delayed ACK on every answer.
    disable_nagle_algorithm = True
    server_version = "runflow-nb-emulator"
    timeout = 300  # idle keep-alive connections end eventually
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("emulator: %s - %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
                if len(out) > MAX_BODY_BYTES:
                    raise ValueError("body too large")
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY_BYTES:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.send_error(413 if self.command != "GET" else 400)
            self.close_connection = True
            return
        skip = {"content-length", "transfer-encoding"}
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in skip]
        try:
            request = httpx.Request(self.command, self.server.base_url + self.path, headers=headers, content=body)
            response = self.server.emulator.handle(request)
        except ConnectionDropped:
            self.close_connection = True  # the socket closes without a byte of answer
            return
        except (httpx.InvalidURL, ValueError):
            self.send_error(400)
            return
        try:
            self.send_response(response.status_code)
            for key, value in response.headers.multi_items():
                if key.lower() not in ("transfer-encoding", "connection", "content-encoding"):
                    self.send_header(key, value)
            if "content-length" not in response.headers:
                response.read()
                self.send_header("Content-Length", str(len(response.content)))
            self.end_headers()
            if self.command != "HEAD":
                assert isinstance(response.stream, httpx.SyncByteStream)
                for chunk in response.stream:
                    self.wfile.write(chunk)
            self.wfile.flush()
        except ConnectionDropped:
            with contextlib.suppress(OSError):
                self.wfile.flush()
            self.close_connection = True
        except OSError:  # the client went away
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch


class EmulatorServer:
    """An emulator served on a real socket by a daemon thread. Use as a context manager.

    >>> with serve(port=0, latency=0.05) as server:                           # doctest: +SKIP
    ...     httpx.get(f"{server.url}/v1/health").json()
    """

    def __init__(self, emulator: Emulator, *, host: str = "127.0.0.1", port: int = 0,
                 owns_emulator: bool = False) -> None:
        self.emulator = emulator
        self._owns = owns_emulator
        self._server = (_Server6 if ":" in host else _Server)((host, port), _Handler)
        self.host, self.port = host, int(self._server.server_address[1])
        shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
        self.url = f"http://[{shown}]:{self.port}" if ":" in shown else f"http://{shown}:{self.port}"
        self._server.emulator = emulator
        self._server.base_url = self.url
        emulator.base_url = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"runflow-emulator-{self.port}", daemon=True)
        self._thread.start()
        self._closed = False

    def close(self) -> None:
        """Stop serving and free the port (and close the emulator if :func:`serve` made it)."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self._owns:
            self.emulator.close()

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<EmulatorServer {self.url} faults={self.emulator.faults}>"


def serve(host: str = "127.0.0.1", port: int = 0, *, emulator: Emulator | None = None,
          **kw: Any) -> EmulatorServer:
    """Serve ``emulator`` (or a new ``Emulator(**kw)``) on ``host:port`` (0 = any free port)."""
    if emulator is not None and kw:
        raise TypeError("pass either an emulator or Emulator options, not both")
    owns = emulator is None
    emu = emulator if emulator is not None else Emulator(**kw)
    try:
        return EmulatorServer(emu, host=host, port=port, owns_emulator=owns)
    except BaseException:
        if owns:
            emu.close()
        raise


# --- CLI --------------------------------------------------------------------------------------


@contextlib.contextmanager
def spawn(*, latency: float = 0.3, faults: str | None = None, workdir: str | Path | None = None,
          api_key: str | None = None) -> Iterator[tuple[str, Any]]:
    """``runflow-nb emulator --port 0`` in a child process, so its encoding never shares the caller's
    GIL; yields ``(url, process)`` once it serves and stops it on exit.

    >>> with spawn(latency=1.0) as (url, _proc):                            # doctest: +SKIP
    ...     client = runflow_nb.Client(api_key="rf_test", base_url=url)
    """
    import os
    import subprocess

    cmd = [sys.executable, "-m", "runflow_nb.emulator", "--host", "127.0.0.1", "--port", "0",
           "--latency", str(latency)]
    if faults:
        cmd += ["--faults", faults]
    if workdir is not None:
        cmd += ["--workdir", os.fspath(workdir)]
    if api_key is not None:
        cmd += ["--api-key", api_key]
    env = {k: v for k, v in os.environ.items() if k not in ("RUNFLOW_API_KEY", "RUNFLOW_BASE_URL")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**env, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()  # the server prints its URL first, once it listens
        if not url.startswith("http://"):
            raise RuntimeError(f"the emulator did not start (printed {url!r}, exit {proc.poll()})")
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def emulator_main(argv: list[str] | None = None) -> int:
    """``runflow-nb emulator``: serve the emulator until interrupted. Prints the base URL first."""
    parser = argparse.ArgumentParser(
        prog="runflow-nb emulator", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve Runflow's API contract on loopback, backed by the offline simulator (real MP4s). "
                    "Point RUNFLOW_BASE_URL at the printed URL.", epilog=FAULT_HELP)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port (default 8787; 0 = any free port)")
    parser.add_argument("--latency", type=float, default=0.3, help="simulated seconds per run, a floor (default 0.3)")
    parser.add_argument("--faults", default=None, metavar="SPEC", help="faults to inject (syntax below)")
    parser.add_argument("--api-key", default=None, metavar="K", help="require exactly this bearer key")
    parser.add_argument("--workdir", default=None, metavar="DIR", help="where rendered videos go (default: temp)")
    parser.add_argument("--offline-images", choices=("placeholder", "reject"), default="placeholder",
                        help="unreachable image URLs: use a placeholder (default) or refuse with 422")
    parser.add_argument("--url-ttl", type=float, default=3 * 86400, metavar="S",
                        help="seconds an output URL stays valid (default 3 days)")
    parser.add_argument("--balance", type=float, default=10_000.0, metavar="USD", help="starting credit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    try:
        plan = FaultPlan.parse(args.faults)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    sim = Simulator(latency=args.latency, workdir=args.workdir, url_ttl_s=args.url_ttl, balance_usd=args.balance)
    emu = Emulator(simulator=sim, faults=plan, api_key=args.api_key, offline_images=args.offline_images)
    try:
        server = EmulatorServer(emu, host=args.host, port=args.port)
    except OSError as exc:
        sim.close()
        print(f"runflow-nb emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread
            signal.signal(sig, lambda *_: stop.set())
    print(server.url, flush=True)
    print(f"runflow-nb emulator: serving {server.url} (latency {args.latency:g} s, faults: {plan}, "
          f"videos in {sim.workdir}); Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.close()
        sim.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(emulator_main())
