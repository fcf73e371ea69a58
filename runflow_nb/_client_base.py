"""What both clients share: the key and backend (resolved at first use), the base URL, the headers,
the simulator behind a keyless client, and the client-level flows (inputs, submit, download,
generate) built on the protocol. :mod:`runflow_nb.client` adds the sync and async drivers.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from . import __version__, settings
from ._files import prove_writable
from ._http import DEFAULT_TIMEOUT
from ._protocol import Protocol, RetryPolicy, Send
from .errors import ConfigurationError, DownloadError, Issue, NoOutputError, RunFailedError, ValidationError
from .request import VideoRequest
from .result import Result
from .runs import Run

__all__ = ["DEFAULT_WAIT_TIMEOUT", "SIMULATOR_BASE_URL", "new_client_ref", "safe_name", "simulator_emulator"]

log = logging.getLogger("runflow_nb")

SIMULATOR_BASE_URL = "http://simulator.runflow-nb.invalid"
DEFAULT_WAIT_TIMEOUT = 30 * 60.0

_announced = False
_announce_lock = threading.Lock()


def _announce_simulator() -> None:
    global _announced
    with _announce_lock:
        if _announced:
            return
        _announced = True
    from .notices import show_once

    text = ("runflow_nb: RUNFLOW_API_KEY is not set, so runs use the OFFLINE SIMULATOR. Its clips are synthetic "
            "(pans over your reference images framed and graded by the seed and prompt, drawn scenes for "
            "text-to-video, re-graded clips for video-edit, with a tone track), not output of the model. Nothing "
            "is charged: what a run would cost shows as simulated spend.")
    show_once("simulator", text)  # once per kernel / CLI invocation, on stderr
    log.warning(text)  # for applications that route the package's logs (no handler: dropped, not lastResort)


_shared_emulator: Any = None


def simulator_emulator(latency: float | None = None) -> Any:
    """The process-wide in-process emulator that backs simulator clients (created on first use).

    Its runs take ``latency`` (else ``RUNFLOW_SIMULATOR_LATENCY``) unless the request says otherwise:
    each client sends its own ``simulator_latency`` with its creates, so clients never change each
    other's. ``latency`` given here changes the default for requests that carry none."""
    global _shared_emulator
    from .emulator import Emulator
    from .simulator.engine import Simulator

    with _announce_lock:
        if _shared_emulator is None:
            lat = settings.simulator_latency(latency)
            _shared_emulator = Emulator(simulator=Simulator(latency=lat), base_url=SIMULATOR_BASE_URL)
        elif latency is not None:
            _shared_emulator.simulator.latency = latency
    return _shared_emulator


def _own_latency(emulator: Any, latency: float | None) -> Any:
    """``emulator.handle`` with the client's latency on each request: the emulator is shared by every
    simulator client of the process, the latency is each client's own (``None``:
    ``RUNFLOW_SIMULATOR_LATENCY`` as it is when the request is made, so a value set in a notebook cell
    counts for a client built before it)."""
    from .emulator.base import SIMULATOR_LATENCY

    def handle(request: httpx.Request) -> httpx.Response:
        request.extensions[SIMULATOR_LATENCY] = settings.simulator_latency(latency)
        return emulator.handle(request)

    return handle


class _Base:
    """Configuration shared by both clients: key, base URL, backend, protocol flows."""

    def __init__(self, api_key: str | settings.Secret | None = None, *, base_url: str | None = None, backend: str = "auto",
                 timeout: float | httpx.Timeout | None = None, wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
                 max_retries: int = 4, poll_interval: float | None = None, poll_max: float = 10.0,
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
        # Every setting is checked here, before anything is sent: a bad one found after a submit would
        # leave a paid run behind an error.
        for name, value, may_be_none in (("timeout", timeout, True), ("wait_timeout", wait_timeout, False),
                                         ("poll_interval", poll_interval, True), ("poll_max", poll_max, False),
                                         ("download_timeout", download_timeout, False)):
            if not (may_be_none and value is None) and not (name == "timeout" and isinstance(value, httpx.Timeout)):
                seconds(name, value)
        if simulator_latency is not None:
            seconds("simulator_latency", simulator_latency, zero=True)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or not 0 <= max_retries <= 4:
            raise ConfigurationError(f"max_retries is {max_retries!r}: use a whole number from 0 to 4 (the docs allow "
                                     "at most 5 attempts per request)")
        if artifacts_dir is not None and not isinstance(artifacts_dir, (str, os.PathLike)):
            raise ConfigurationError(f"artifacts_dir is {type(artifacts_dir).__name__}: use a folder path")
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
        # The run-end webhook (see callback_url): a Secret, as its URL may carry a token.
        self.__callback: settings.Secret | None = None
        self._simulator_latency = simulator_latency
        # Default: where Experiment keeps artifacts (RUNFLOW_ARTIFACTS, else beside the store), if local.
        self.artifacts_dir = Path(artifacts_dir if artifacts_dir is not None else settings.local_artifacts_dir())
        self._resolved: tuple[str, str, Protocol] | None = None
        self._resolve_lock = threading.Lock()

    @property
    def callback_url(self) -> str | None:
        """The documented ``callback_url`` sent on every create (runs and batches), to which the service
        POSTs each run's end; None sends none. Set it to a full http(s) URL (or a Secret holding one);
        it reads back redacted (``https://hooks.example.org/***?token=***``), since a webhook URL
        usually carries a token. ``Experiment.set_callback_url`` sets it for an experiment's sweeps."""
        return None if self.__callback is None else settings.redact_url(self.__callback.reveal())

    @callback_url.setter
    def callback_url(self, url: str | settings.Secret | None) -> None:
        value = url.reveal() if isinstance(url, settings.Secret) else url
        self.__callback = settings.Secret.wrap(settings.check_callback_url(value))

    def _callback_for_create(self) -> str | None:
        """The webhook URL itself, for a create body: keep the result nowhere."""
        return None if self.__callback is None else self.__callback.reveal()

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
            return httpx.MockTransport(_own_latency(simulator_emulator(), self._simulator_latency))
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
        callback = self._callback_for_create()
        if callback:
            body["callback_url"] = callback
        if len(body["client_ref"]) > 255:
            raise ValidationError([Issue("client_ref", f"is {len(body['client_ref'])} characters; the limit is 255",
                                         "use a shorter reference")])
        return (yield from self._proto.submit(req.model, body, idempotency_key=idempotency_key))

    def _download_flow(self, run: Run, dest: Path) -> Any:
        from .media.probe import HashingWriter

        if not run.done:
            raise DownloadError(f"run {run.id} is still {run.status}: wait for it first (client.wait({run.id!r})), "
                                "then download the run that wait returns")
        if run.status not in ("succeeded", "partial_succeeded"):
            raise DownloadError(f"run {run.id} ended {run.status}: it has no video to download (failed runs are "
                                "not billed)")
        if not run.output or not run.output.video_url:
            raise DownloadError(f"run {run.id} {run.status} without a video URL (a server fault: it may be billed); "
                                "fetch the run again later")
        out, url = run.output, run.output.video_url
        return (yield from self._proto.download(
            url, lambda _size: HashingWriter(dest, expected_size=out.size, expected_sha256=out.sha256)))

    def _generate_flow(self, req: VideoRequest, *, client_ref: str | None, out_dir: Path | None,
                       timeout: float | None, download: bool) -> Any:
        if timeout is not None:
            seconds("timeout", timeout)
        if download:  # a folder the video cannot be written to is found before the run is paid for
            writable_folder(Path(out_dir) if out_dir is not None else self.artifacts_dir, "out_dir")
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


def new_client_ref() -> str:
    return f"rfnb-{uuid.uuid4().hex}"


def safe_name(text: str) -> str:
    """A file-name-safe version of a server-provided id: it can never escape the artifacts folder."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:120]
    return cleaned or "run"


def seconds(name: str, value: Any, *, zero: bool = False) -> float:
    """``value`` as a positive (``zero``: or zero) finite number of seconds, or ConfigurationError."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and (
        value >= 0 if zero else value > 0)
    if not ok:
        raise ConfigurationError(f"{name} is {value!r}: use a number of seconds "
                                 f"{'of zero or more' if zero else 'above zero'}")
    return float(value)


def writable_folder(folder: Path, name: str) -> None:
    """Create ``folder`` if needed and prove a file can be written in it, or ConfigurationError."""
    try:
        prove_writable(folder)
    except OSError as exc:
        raise ConfigurationError(f"{name}: cannot write videos to {folder} ({exc.strerror or exc}); nothing was "
                                 "submitted — choose a writable folder") from None
