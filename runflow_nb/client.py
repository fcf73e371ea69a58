"""`Client` and `AsyncClient`: submit, wait, download — over the real API or the offline simulator.

>>> import runflow_nb as rf
>>> client = rf.Client()                                    # doctest: +SKIP
>>> result = client.generate(prompt="character1 gallops on a beach", images=["horse.png"],
...                          duration=5, resolution="720p", seed=7)       # doctest: +SKIP
>>> result.video_path, result.seed, result.wall_s, result.cost_usd     # doctest: +SKIP

Both clients drive the same protocol flows (:mod:`runflow_nb._protocol`); only the sending layer
differs. With no ``RUNFLOW_API_KEY`` (and no explicit key or base URL) the client runs on the
offline simulator and says so once: the clips are synthetic and cost nothing.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import httpx

from . import __version__, settings
from ._protocol import Action, Emit, Outcome, Protocol, RetryPolicy, Send, Sleep
from .errors import (
    ConfigurationError,
    DownloadError,
    Issue,
    NoOutputError,
    RunFailedError,
    RunflowError,
    ValidationError,
    library_error,
)
from .request import VideoRequest
from .runs import Run, RunEvent

__all__ = ["AsyncClient", "Client", "Result"]

log = logging.getLogger("runflow_nb")

DEFAULT_BASE_URL = settings.DEFAULT_BASE_URL
SIMULATOR_BASE_URL = "http://simulator.runflow-nb.invalid"
# Per-request limits; the total wait is separate (a clip takes 90–240 s, queues can add more).
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=15.0, pool=60.0)
DEFAULT_WAIT_TIMEOUT = 30 * 60.0

_announced = False
_announce_lock = threading.Lock()


def _announce_simulator() -> None:
    global _announced
    with _announce_lock:
        if _announced:
            return
        _announced = True
    log.warning(
        "runflow_nb: RUNFLOW_API_KEY is not set, so runs use the OFFLINE SIMULATOR. Its clips are synthetic "
        "(pans over your reference images framed and graded by the seed, drawn scenes for text-to-video, "
        "re-graded clips for video-edit, with a tone track), not output of the model, and cost nothing.")


_shared_emulator: Any = None


def simulator_emulator(latency: float | None = None) -> Any:
    """The process-wide in-process emulator that backs simulator clients (created on first use)."""
    global _shared_emulator
    from .emulator import Emulator
    from .simulator import Simulator

    with _announce_lock:
        if _shared_emulator is None:
            lat = settings.simulator_latency(latency)
            _shared_emulator = Emulator(simulator=Simulator(latency=lat), base_url=SIMULATOR_BASE_URL)
        elif latency is not None:
            _shared_emulator.simulator.latency = latency
    return _shared_emulator


@dataclass
class Result:
    """A finished generation: the local video, its seed, timing and cost.

    ``simulated`` is True for clips from the offline simulator (their cost is an estimate of what
    the real model would charge, not money spent).
    """

    run: Run
    request: VideoRequest
    video_path: Path | None
    video_sha256: str | None
    size_bytes: int | None
    seed: int | None
    submitted_at: datetime
    completed_at: datetime
    wall_s: float
    queue_s: float | None
    inference_ms: float | None
    cost_usd: float | None
    cost_estimate_usd: float
    backend: str
    nsfw_detected: bool | None = None
    poster_path: Path | None = None
    probe: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def simulated(self) -> bool:
        return self.backend == "simulator"

    def __repr__(self) -> str:
        sim = " SIMULATED" if self.simulated else ""
        cost = f"${self.cost_usd:.2f}" if self.cost_usd is not None else "n/a"
        return (f"<Result{sim} {self.run.id} seed={self.seed} wall={self.wall_s:.1f}s cost={cost} "
                f"video={str(self.video_path)!r}>")

    def _repr_html_(self) -> str:
        from .display import result_html

        return result_html(self)


class _Base:
    """Configuration shared by both clients: key, base URL, backend, protocol flows."""

    def __init__(self, api_key: str | settings.Secret | None = None, *, base_url: str | None = None, backend: str = "auto",
                 timeout: float | httpx.Timeout | None = None, wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
                 max_retries: int = 5, poll_interval: float | None = None, poll_max: float = 10.0,
                 transport: Any = None, simulator_latency: float | None = None,
                 artifacts_dir: str | os.PathLike[str] | None = None, download_timeout: float = 900.0) -> None:
        # An explicit key is held by a Secret: never in vars(), a repr or a pickle of this client.
        self.__key = settings.Secret.wrap(api_key)
        self._init_kwargs = {"api_key": self.__key, "base_url": base_url, "backend": backend, "timeout": timeout,
                             "wait_timeout": wait_timeout, "max_retries": max_retries,
                             "poll_interval": poll_interval, "poll_max": poll_max, "transport": transport,
                             "simulator_latency": simulator_latency, "artifacts_dir": artifacts_dir,
                             "download_timeout": download_timeout}
        if backend not in ("auto", "runflow", "simulator"):
            raise ConfigurationError("backend must be 'auto', 'runflow' or 'simulator'")
        self._download_timeout = float(download_timeout)
        self._request_timeout = _overall_timeout(timeout)
        self._base_url_arg = base_url
        self._backend_arg = backend
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else (
            DEFAULT_TIMEOUT if timeout is None else httpx.Timeout(timeout))
        self._wait_timeout = wait_timeout
        self._retry = RetryPolicy(max_retries=max_retries)
        self._poll_interval = poll_interval
        self._poll_max = poll_max
        self._transport = transport
        self._simulator_latency = simulator_latency
        # Default: where Experiment keeps artifacts (RUNFLOW_ARTIFACTS, else beside the store), if local.
        self.artifacts_dir = Path(artifacts_dir if artifacts_dir is not None else settings.local_artifacts_dir())
        self._resolved: tuple[str, str, Protocol] | None = None
        self._resolve_lock = threading.Lock()

    def to_async(self) -> AsyncClient:
        """An :class:`AsyncClient` with the same settings (a new connection pool)."""
        return AsyncClient(**self._init_kwargs)

    def to_sync(self) -> Client:
        """A :class:`Client` with the same settings."""
        return Client(**self._init_kwargs)

    # -- lazily resolved settings ------------------------------------------------------------

    def _resolve(self) -> tuple[str, str, Protocol]:
        """(backend, base_url, protocol), decided at first use so a key set after import counts."""
        with self._resolve_lock:
            if self._resolved is None:
                backend = settings.backend(self._backend_arg, api_key=self.__key)
                if backend == "simulator":
                    _announce_simulator()
                    base_url = SIMULATOR_BASE_URL
                    poll = 0.05 if self._poll_interval is None else self._poll_interval
                else:
                    base_url = _checked_base_url(settings.base_url(self._base_url_arg))
                    poll = 2.0 if self._poll_interval is None else self._poll_interval
                proto = Protocol(base_url=base_url, retry=self._retry, poll_interval=poll,
                                 poll_max=max(poll, self._poll_max if backend == "runflow" else poll),
                                 wait_timeout=self._wait_timeout, request_timeout_s=self._request_timeout,
                                 download_timeout_s=self._download_timeout)
                self._resolved = (backend, base_url, proto)
            return self._resolved

    @property
    def backend(self) -> str:
        return self._resolve()[0]

    @property
    def base_url(self) -> str:
        return self._resolve()[1]

    @property
    def _proto(self) -> Protocol:
        return self._resolve()[2]

    def _api_key(self) -> str:
        if self.backend == "simulator":
            return "simulator"
        key = settings.api_key(self.__key) or ""
        if not key:
            raise ConfigurationError("no API key: pass api_key=... or set RUNFLOW_API_KEY")
        if not (key.isascii() and key.isprintable()):  # httpx would echo the header value in its error
            raise ConfigurationError("the API key holds characters an HTTP header cannot carry (non-ASCII or "
                                     "control characters): check api_key=... / RUNFLOW_API_KEY for stray ones")
        return key

    def _headers(self, action: Send) -> dict[str, str]:
        headers = {"User-Agent": f"runflow_nb/{__version__}", **action.headers}
        if action.auth:
            headers["Authorization"] = f"Bearer {self._api_key()}"
        org = settings.organization_id()
        if org and action.auth:
            headers["X-Organization-Id"] = org
        return headers

    def _transport_for_backend(self) -> Any:
        if self._transport is not None:
            return self._transport
        if self.backend == "simulator":
            return httpx.MockTransport(simulator_emulator(self._simulator_latency).handle)
        return None

    def __repr__(self) -> str:
        key = "set" if (self.__key is not None or settings.has_api_key()) else "unset"
        backend = self._resolved[0] if self._resolved else self._backend_arg
        return f"{type(self).__name__}(backend={backend!r}, base_url={self._base_url_arg!r}, api_key={key})"

    # -- request preparation -----------------------------------------------------------------

    @staticmethod
    def _as_request(request: VideoRequest | None, kwargs: dict[str, Any]) -> VideoRequest:
        if request is not None and kwargs:
            raise ValidationError([Issue("request", "both a VideoRequest and keyword inputs were given",
                                         "pass one or the other")])
        req = request if request is not None else VideoRequest.build(**kwargs)
        # An unset seed is drawn here, so the result can be reproduced and the run key is stable.
        return req if req.seed is not None else req.with_seed()

    def _input_flow(self, req: VideoRequest) -> Any:
        urls: list[str] = []
        for i, ref in enumerate(req.images):
            if ref.url:
                urls.append(ref.url)
            elif req.needs_upload(ref):
                assert ref.data is not None and ref.mime is not None
                ext = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/bmp": "bmp"}[ref.mime]
                urls.append((yield from self._proto.upload(ref.data, filename=f"reference{i + 1}.{ext}",
                                                          content_type=ref.mime)))
            else:
                urls.append(ref.data_uri())
        video_url = None
        if req.video is not None and req.video.needs_upload:  # local clips always go as an asset (≤ 50 MiB)
            ext = "mov" if req.video.format == "MOV" else "mp4"
            data = yield from _read_file_flow(req.video)
            video_url = yield from self._proto.upload(data, filename=f"input.{ext}", content_type=req.video.mime)
        return req.to_input(urls, video_url=video_url)

    def _submit_flow(self, req: VideoRequest, client_ref: str | None, metadata: dict[str, Any] | None,
                     idempotency_key: str | None = None) -> Any:
        body_input = yield from self._input_flow(req)
        body: dict[str, Any] = {"input": body_input, "client_ref": client_ref or new_client_ref(),
                                "metadata": {"library": f"runflow_nb/{__version__}", **(metadata or {})}}
        if len(body["client_ref"]) > 255:
            raise ValidationError([Issue("client_ref", f"is {len(body['client_ref'])} characters; the limit is 255",
                                         "use a shorter reference")])
        return (yield from self._proto.submit(req.model, body, idempotency_key=idempotency_key))

    def _download_flow(self, run: Run, dest: Path) -> Any:
        from .media import HashingWriter

        if not run.output or not run.output.video_url:
            raise DownloadError(f"run {run.id} {run.status} without a video URL (a server fault: it may be billed); "
                                "fetch the run again later")
        out, url = run.output, run.output.video_url
        return (yield from self._proto.download(
            url, lambda _size: HashingWriter(dest, expected_size=out.size, expected_sha256=out.sha256)))

    def _generate_flow(self, req: VideoRequest, *, client_ref: str | None, out_dir: Path | None,
                       timeout: float | None, download: bool) -> Any:
        submitted = datetime.now(timezone.utc)
        t0 = time.monotonic()
        run = yield from self._submit_flow(req, client_ref, None)
        run = yield from self._proto.wait(run.id, timeout=timeout, first=run if run.done else None)
        return (yield from self._finish_flow(req, run, submitted=submitted, t0=t0, out_dir=out_dir,
                                             download=download))

    def _finish_flow(self, req: VideoRequest, run: Run, *, submitted: datetime, t0: float,
                     out_dir: Path | None, download: bool, filename: str | None = None) -> Any:
        if run.status in ("succeeded", "partial_succeeded") and not run.succeeded:
            cost = run.cost_usd if run.cost_usd is not None else req.estimate_usd()
            raise NoOutputError(f"run {run.id} {run.status} but the server gave no video URL: a server fault. It is "
                                f"billed (about ${cost:.2f}); fetch it again later with client.get({run.id!r}) or "
                                "ask Runflow support", run=run)
        if not run.succeeded:
            reason = run.failure_message or run.failure_code or run.status
            raise RunFailedError(f"run {run.id} {run.status}: {reason} (failed runs are not billed)", run=run)
        path = sha = size = None
        if download:
            folder = Path(out_dir) if out_dir is not None else self.artifacts_dir
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / (filename or f"{safe_name(run.id)}.mp4")
            sha, size = yield from self._download_flow(run, path)
        completed = datetime.now(timezone.utc)
        out = run.output
        assert out is not None
        backend = self.backend
        return Result(
            run=run, request=req, video_path=path, video_sha256=sha, size_bytes=size,
            seed=out.seed if out.seed is not None else req.seed, submitted_at=submitted, completed_at=completed,
            wall_s=time.monotonic() - t0, queue_s=run.queue_s, inference_ms=out.inference_ms,
            cost_usd=run.cost_usd if run.cost_usd is not None else req.estimate_usd(),
            cost_estimate_usd=req.estimate_usd(), backend=backend, nsfw_detected=out.nsfw_detected)


def _read_file_flow(video: Any) -> Any:
    """The bytes of a local input video (a generator, like the protocol flows, for ``yield from``)."""
    try:
        return video.read_bytes()
    except OSError as exc:
        raise ValidationError([Issue("video_url", f"cannot read {video.display!r}: {exc.strerror or exc}",
                                     "check that the file still exists")]) from None
    yield  # pragma: no cover - makes this a generator


def _overall_timeout(timeout: float | httpx.Timeout | None) -> float:
    """The wall-clock limit of one API request (answer included) from the ``timeout`` option."""
    if timeout is None:
        return 60.0
    if isinstance(timeout, httpx.Timeout):
        return float(timeout.read) if timeout.read is not None else 60.0
    return float(timeout)


def _checked_base_url(url: str) -> str:
    """An http(s) base URL with a host, or ConfigurationError (never httpx.InvalidURL later)."""
    try:
        parsed = httpx.URL(url)
        ok = parsed.scheme in ("http", "https") and bool(parsed.host) and not any(c.isspace() for c in url)
        ok = ok and (parsed.port is None or 0 < parsed.port < 65536)
    except (httpx.InvalidURL, ValueError, TypeError):
        ok = False
    if not ok:
        raise ConfigurationError("the base URL (base_url= or RUNFLOW_BASE_URL) must be an http:// or https:// URL "
                                 "with a host, e.g. https://api.runflow.io")
    return url


def _timeouts(configured: httpx.Timeout, deadline: float | None) -> httpx.Timeout:
    """Per-operation timeouts, none longer than what is left before ``deadline``."""
    if deadline is None:
        return configured
    left = max(0.001, deadline - time.monotonic())

    def cap(value: float | None) -> float:
        return left if value is None else min(value, left)

    return httpx.Timeout(connect=cap(configured.connect), read=cap(configured.read), write=cap(configured.write),
                         pool=cap(configured.pool))


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _deadline_error(request: httpx.Request) -> httpx.ReadTimeout:
    return httpx.ReadTimeout("the request's overall deadline passed before the answer was complete",
                             request=request)


def _buffered(resp: httpx.Response, body: bytes) -> httpx.Response:
    """A plain response holding the (already decoded) body read under a deadline."""
    headers = [(k, v) for k, v in resp.headers.multi_items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
    return httpx.Response(resp.status_code, headers=headers, content=body, request=resp.request)


def _mapped(exc: Exception) -> RunflowError:
    return library_error(exc)


F = TypeVar("F", bound=Callable[..., Any])


def _public(fn: F) -> F:
    """Only library errors leave a public method: anything else is mapped (and chained)."""
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except RunflowError:
                raise
            except Exception as exc:
                raise _mapped(exc) from exc

        return awrapper  # type: ignore[return-value]
    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def agen(*args: Any, **kwargs: Any) -> Any:
            try:
                async for item in fn(*args, **kwargs):
                    yield item
            except RunflowError:
                raise
            except Exception as exc:
                raise _mapped(exc) from exc

        return agen  # type: ignore[return-value]
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*args: Any, **kwargs: Any) -> Any:
            try:
                return (yield from fn(*args, **kwargs))
            except RunflowError:
                raise
            except Exception as exc:
                raise _mapped(exc) from exc

        return gen  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RunflowError:
            raise
        except Exception as exc:
            raise _mapped(exc) from exc

    return wrapper  # type: ignore[return-value]


def _refuse_non_http(request: httpx.Request) -> None:
    """Every request, redirects included, must stay on http(s): a 302 to file:// is never followed."""
    if request.url.scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(f"refusing a {request.url.scheme}:// URL", request=request)


async def _refuse_non_http_async(request: httpx.Request) -> None:
    _refuse_non_http(request)


def _describe(result: Result) -> Result:
    """Probe the downloaded video (a bad file raises DownloadError) and write its poster frame."""
    if result.video_path is not None:
        from .media import describe

        result.probe, result.poster_path = describe(result.video_path)
    return result


def new_client_ref() -> str:
    return f"rfnb-{uuid.uuid4().hex}"


def safe_name(text: str) -> str:
    """A file-name-safe version of a server-provided id: it can never escape the artifacts folder."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:120]
    return cleaned or "run"


class Client(_Base):
    """Blocking client. Safe inside Jupyter's running event loop (it never touches asyncio).

    >>> client = Client()                                   # doctest: +SKIP
    >>> run = client.submit(prompt="character1 runs", images=["a.png"], resolution="720p")  # doctest: +SKIP
    >>> for event in client.events(run.id): print(event)   # doctest: +SKIP
    """

    _http: httpx.Client | None = None

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=self._timeout, transport=self._transport_for_backend(),
                                      follow_redirects=True, event_hooks={"request": [_refuse_non_http]})
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _do(self, action: Send) -> Outcome:
        """One exchange. Every read is bounded by what is left of ``action.deadline`` and the body is
        read chunk by chunk, so a server trickling bytes cannot hold the request past it."""
        deadline = action.deadline
        try:
            req = self._client().build_request(action.method, action.url, json=action.json, params=action.params,
                                               content=action.content, headers=self._headers(action),
                                               timeout=_timeouts(self._timeout, deadline))
            resp = self._client().send(req, stream=True)
            try:
                sink = action.sink if resp.status_code < 300 else None
                if sink is not None:
                    declared = resp.headers.get("content-length")
                    sink.expect(int(declared) if declared and declared.isdigit() else None)
                body = bytearray()
                for chunk in resp.iter_bytes():
                    if _past(deadline):
                        return _deadline_error(req)
                    if sink is not None:
                        sink.write(chunk)
                    else:
                        body += chunk
            finally:
                resp.close()
            return resp if sink is not None else _buffered(resp, bytes(body))
        except (httpx.HTTPError, httpx.InvalidURL, DownloadError) as exc:  # a failed attempt, for the flow
            return exc

    def _iter(self, flow: Any) -> Iterator[RunEvent]:
        value: Outcome = None
        try:
            while True:
                try:
                    action: Action = flow.send(value)
                except StopIteration as stop:
                    return stop.value
                value = None
                if isinstance(action, Emit):
                    yield action.event
                elif isinstance(action, Sleep):
                    time.sleep(action.seconds)
                else:
                    value = self._do(action)
        finally:
            flow.close()  # an interrupt or error mid-flow runs the flow's cleanup (partial files)

    def _run(self, flow: Any) -> Any:
        it = self._iter(flow)
        while True:
            try:
                next(it)
            except StopIteration as stop:
                return stop.value

    # -- public API ---------------------------------------------------------------------------

    @_public
    def submit(self, request: VideoRequest | None = None, /, *, client_ref: str | None = None,
               metadata: dict[str, Any] | None = None, idempotency_key: str | None = None, **inputs: Any) -> Run:
        """Validate and submit; returns the queued run at once.

        The create carries an ``Idempotency-Key`` (``idempotency_key``, by default derived from
        ``client_ref``): submitting again with the same ``client_ref`` never creates a second run on
        a server that honours keys, and a lost answer is re-sent safely.
        """
        req = self._as_request(request, inputs)
        return self._run(self._submit_flow(req, client_ref, metadata, idempotency_key))

    @_public
    def get(self, run_id: str) -> Run:
        return self._run(self._proto.get(run_id))

    @_public
    def _read(self, path: str, *, auth: bool = True) -> Any:
        """The JSON of ``GET path`` (for :func:`runflow_nb.diagnose.doctor`)."""
        return self._run(self._proto.read(path, auth=auth))

    @_public
    def find(self, client_ref: str) -> Run | None:
        """The run created with ``client_ref``, if the server has one."""
        return self._run(self._proto.find(client_ref))

    @_public
    def wait(self, run_id: str, *, timeout: float | None = None) -> Run:
        return self._run(self._proto.wait(run_id, timeout=timeout))

    @_public
    def events(self, run_id: str, *, timeout: float | None = None) -> Iterator[RunEvent]:
        """Status changes (queued → running → succeeded/failed) until the run ends."""
        return (yield from self._iter(self._proto.wait(run_id, timeout=timeout)))

    @_public
    def download(self, run: Run, dest: str | os.PathLike[str]) -> tuple[str, int]:
        """Stream the run's video to ``dest`` (atomically); returns (sha256, size)."""
        return self._run(self._download_flow(run, Path(dest)))

    @_public
    def generate(self, request: VideoRequest | None = None, /, *, out_dir: str | os.PathLike[str] | None = None,
                 timeout: float | None = None, client_ref: str | None = None, download: bool = True,
                 on_event: Callable[[RunEvent], None] | None = None, **inputs: Any) -> Result:
        """Submit, wait and download (checking, probing and making a poster): the one call most notebooks need.

        ``on_event`` receives each status change (queued → running → succeeded) for a progress display.
        """
        req = self._as_request(request, inputs)
        it = self._iter(self._generate_flow(req, client_ref=client_ref, out_dir=Path(out_dir) if out_dir else None,
                                            timeout=timeout, download=download))
        while True:
            try:
                event = next(it)
            except StopIteration as stop:
                return _describe(stop.value)
            if on_event is not None:
                on_event(event)

    @_public
    def balance(self) -> Any:
        return self._run(self._proto.call("GET", "/v1/billing/balance")).json()

    @_public
    def health(self) -> Any:
        return self._run(self._proto.call("GET", "/v1/health")).json()


class AsyncClient(_Base):
    """The asyncio twin of :class:`Client`, for sweeps and async code."""

    _http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout, transport=self._transport_for_backend(),
                                           follow_redirects=True,
                                           event_hooks={"request": [_refuse_non_http_async]},
                                           limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _do(self, action: Send) -> Outcome:
        """One exchange, cut off at ``action.deadline`` however slowly the server answers."""
        if action.deadline is None:
            return await self._exchange(action)
        left = max(0.001, action.deadline - time.monotonic())
        try:
            if sys.version_info >= (3, 11):  # asyncio.timeout never swallows an outside cancellation
                async with asyncio.timeout(left):
                    return await self._exchange(action)
            return await asyncio.wait_for(self._exchange(action), left)
        except asyncio.TimeoutError:
            return httpx.ReadTimeout("the request's overall deadline passed before the answer was complete")

    async def _exchange(self, action: Send) -> Outcome:
        try:
            req = self._client().build_request(action.method, action.url, json=action.json, params=action.params,
                                               content=action.content, headers=self._headers(action))
            resp = await self._client().send(req, stream=True)
            try:
                sink = action.sink if resp.status_code < 300 else None
                if sink is not None:
                    declared = resp.headers.get("content-length")
                    sink.expect(int(declared) if declared and declared.isdigit() else None)
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    if sink is not None:
                        sink.write(chunk)
                    else:
                        body += chunk
            finally:
                await resp.aclose()
            return resp if sink is not None else _buffered(resp, bytes(body))
        except (httpx.HTTPError, httpx.InvalidURL, DownloadError) as exc:  # a failed attempt, for the flow
            return exc

    async def _step(self, action: Action) -> Outcome:
        if isinstance(action, Sleep):
            await asyncio.sleep(action.seconds)
            return None
        if isinstance(action, Send):
            return await self._do(action)
        return None

    async def _run(self, flow: Any, on_event: Any = None) -> Any:
        value: Outcome = None
        try:
            while True:
                try:
                    action = flow.send(value)
                except StopIteration as stop:
                    return stop.value
                if isinstance(action, Emit) and on_event is not None:
                    on_event(action.event)
                value = await self._step(action)
        finally:
            flow.close()  # a cancelled task or an error mid-flow runs the flow's cleanup (partial files)

    @_public
    async def submit(self, request: VideoRequest | None = None, /, *, client_ref: str | None = None,
                     metadata: dict[str, Any] | None = None, idempotency_key: str | None = None,
                     **inputs: Any) -> Run:
        req = self._as_request(request, inputs)
        return await self._run(self._submit_flow(req, client_ref, metadata, idempotency_key))

    @_public
    async def get(self, run_id: str) -> Run:
        return await self._run(self._proto.get(run_id))

    @_public
    async def find(self, client_ref: str) -> Run | None:
        return await self._run(self._proto.find(client_ref))

    @_public
    async def wait(self, run_id: str, *, timeout: float | None = None, on_event: Any = None) -> Run:
        return await self._run(self._proto.wait(run_id, timeout=timeout), on_event)

    @_public
    async def events(self, run_id: str, *, timeout: float | None = None) -> AsyncIterator[RunEvent]:
        flow = self._proto.wait(run_id, timeout=timeout)
        value: Outcome = None
        try:
            while True:
                try:
                    action = flow.send(value)
                except StopIteration:
                    return
                if isinstance(action, Emit):
                    yield action.event
                value = await self._step(action)
        finally:
            flow.close()

    @_public
    async def download(self, run: Run, dest: str | os.PathLike[str]) -> tuple[str, int]:
        return await self._run(self._download_flow(run, Path(dest)))

    @_public
    async def generate(self, request: VideoRequest | None = None, /, *, out_dir: str | os.PathLike[str] | None = None,
                       timeout: float | None = None, client_ref: str | None = None, download: bool = True,
                       on_event: Callable[[RunEvent], None] | None = None, **inputs: Any) -> Result:
        req = self._as_request(request, inputs)
        result = await self._run(self._generate_flow(req, client_ref=client_ref,
                                                     out_dir=Path(out_dir) if out_dir else None,
                                                     timeout=timeout, download=download), on_event)
        return await asyncio.to_thread(_describe, result)

    @_public
    async def balance(self) -> Any:
        return (await self._run(self._proto.call("GET", "/v1/billing/balance"))).json()

    @_public
    async def health(self) -> Any:
        return (await self._run(self._proto.call("GET", "/v1/health"))).json()
