"""`Client` and `AsyncClient`: submit, wait, download — over the real API or the offline simulator.

>>> import runflow_nb as rf
>>> client = rf.Client()                                    # doctest: +SKIP
>>> result = client.generate(prompt="character1 gallops on a beach", images=["horse.png"],
...                          duration=5, resolution="720p", seed=7)       # doctest: +SKIP
>>> result.video_path, result.seed, result.wall_s, result.cost_usd     # doctest: +SKIP

Both clients drive the same protocol flows (:mod:`runflow_nb._protocol`); only the sending layer
differs. With no ``RUNFLOW_API_KEY`` (and no explicit key or base URL) the client runs on the
offline simulator and says so once: the clips are synthetic and nothing is charged. What both clients
share lives in :mod:`runflow_nb._client_base`, the sending layer in :mod:`runflow_nb._http`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from ._boundary import public
from ._client_base import DEFAULT_WAIT_TIMEOUT as DEFAULT_WAIT_TIMEOUT
from ._client_base import SIMULATOR_BASE_URL as SIMULATOR_BASE_URL
from ._client_base import _Base
from ._client_base import new_client_ref as new_client_ref
from ._client_base import safe_name as safe_name
from ._client_base import simulator_emulator as simulator_emulator
from ._http import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from ._http import refuse_non_http, refuse_non_http_async, send_async, send_sync
from ._protocol import Action, Emit, Outcome, Send, Sleep
from .errors import UsageError
from .request import VideoRequest
from .result import Result, probe_result
from .runs import Run, RunEvent

__all__ = ["AsyncClient", "Client", "Result"]


class _Twins(_Base):
    """Either client makes the other with the same settings."""

    def to_async(self) -> AsyncClient:
        """An :class:`AsyncClient` with the same settings (a new connection pool)."""
        return AsyncClient(**self._init_kwargs)

    def to_sync(self) -> Client:
        """A :class:`Client` with the same settings."""
        return Client(**self._init_kwargs)


class Client(_Twins):
    """Blocking client. Safe inside Jupyter's running event loop (it never touches asyncio).

    >>> client = Client()                                   # doctest: +SKIP
    >>> run = client.submit(prompt="character1 runs", images=["a.png"], resolution="720p")  # doctest: +SKIP
    >>> for event in client.events(run.id): print(event)   # doctest: +SKIP
    """

    _http: httpx.Client | None = None

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=self._timeout, transport=self._transport_for_backend(),
                                      follow_redirects=True, event_hooks={"request": [refuse_non_http]})
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
        return send_sync(self._client(), action, headers=self._headers(action), timeout=self._timeout)

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

    @public
    def submit(self, request: VideoRequest | None = None, /, *, client_ref: str | None = None,
               metadata: dict[str, Any] | None = None, idempotency_key: str | None = None, **inputs: Any) -> Run:
        """Validate and submit; returns the queued run at once.

        The create carries an ``Idempotency-Key`` (``idempotency_key``, by default derived from
        ``client_ref``): submitting again with the same ``client_ref`` never creates a second run on
        a server that honours keys, and a lost answer is re-sent safely.
        """
        req = self._as_request(request, inputs)
        return self._run(self._submit_flow(req, client_ref, metadata, idempotency_key))

    @public
    def get(self, run_id: str, *, retry_not_found: bool = False) -> Run:
        """The run as it is now. With ``retry_not_found`` a 404 is read again (``poll_interval`` apart,
        up to three reads in a row) before :class:`NotFoundError`: for a run known to exist."""
        return self._run(self._proto.look(run_id) if retry_not_found else self._proto.get(run_id))

    @public
    def logs(self, run_id: str) -> list[dict[str, Any]]:
        """The run's log items (``GET /v1/runs/{id}/logs``), oldest first."""
        return _log_items(self._run(self._proto.read(_logs_path(run_id))))

    @public
    def _read(self, path: str, *, auth: bool = True) -> Any:
        """The JSON of ``GET path`` (for :func:`runflow_nb.diagnose.doctor`)."""
        return self._run(self._proto.read(path, auth=auth))

    @public
    def find(self, client_ref: str, *, metadata: dict[str, Any] | None = None, grace: bool = False,
             since: datetime | None = None) -> Run | None:
        """The run created with ``client_ref``, if the server has one (with ``metadata``, the one
        whose echoed metadata is what our create sent: ``client_ref`` is not unique).

        ``grace=True`` for a create sent moments ago: the list may not show a new run at once, so
        it is read again over a few seconds before the answer is None. ``since`` (when the create
        was sent) reads the list back to that moment, however many runs were made after it.
        """
        return self._run(self._proto.look_up(client_ref, metadata=metadata, grace=grace, since=since))

    @public
    def wait(self, run_id: str, *, timeout: float | None = None) -> Run:
        return self._run(self._proto.wait(run_id, timeout=timeout))

    @public
    def events(self, run_id: str, *, timeout: float | None = None) -> Iterator[RunEvent]:
        """Status changes (queued → running → succeeded/failed) until the run ends."""
        return (yield from self._iter(self._proto.wait(run_id, timeout=timeout)))

    @public
    def download(self, run: Run, dest: str | os.PathLike[str]) -> tuple[str, int]:
        """Stream the run's video to ``dest`` (atomically); returns (sha256, size)."""
        return self._run(self._download_flow(run, Path(dest)))

    @public
    def generate(self, request: VideoRequest | None = None, /, *, out_dir: str | os.PathLike[str] | None = None,
                 timeout: float | None = None, client_ref: str | None = None, download: bool = True,
                 on_event: Callable[[RunEvent], None] | None = None, **inputs: Any) -> Result:
        """Submit, wait and download (checking, probing and making a poster): the one call most notebooks need.

        ``on_event`` receives each status change (queued → running → succeeded) for a progress display.
        """
        req = self._as_request(request, inputs)
        _check_generate(out_dir, on_event)
        it = self._iter(self._generate_flow(req, client_ref=client_ref, out_dir=Path(out_dir) if out_dir else None,
                                            timeout=timeout, download=download))
        while True:
            try:
                event = next(it)
            except StopIteration as stop:
                return probe_result(stop.value)
            if on_event is not None:
                on_event(event)

    @public
    def balance(self) -> Any:
        return self._run(self._proto.call("GET", "/v1/billing/balance")).json()

    @public
    def health(self) -> Any:
        return self._run(self._proto.call("GET", "/v1/health")).json()


class AsyncClient(_Twins):
    """The asyncio twin of :class:`Client`, for sweeps and async code."""

    _http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout, transport=self._transport_for_backend(),
                                           follow_redirects=True,
                                           event_hooks={"request": [refuse_non_http_async]},
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
        return await send_async(self._client(), action, headers=self._headers(action))

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

    @public
    async def submit(self, request: VideoRequest | None = None, /, *, client_ref: str | None = None,
                     metadata: dict[str, Any] | None = None, idempotency_key: str | None = None,
                     **inputs: Any) -> Run:
        req = self._as_request(request, inputs)
        return await self._run(self._submit_flow(req, client_ref, metadata, idempotency_key))

    @public
    async def get(self, run_id: str, *, retry_not_found: bool = False) -> Run:
        """The run as it is now. With ``retry_not_found`` a 404 is read again (``poll_interval`` apart,
        up to three reads in a row) before :class:`NotFoundError`: for a run known to exist."""
        return await self._run(self._proto.look(run_id) if retry_not_found else self._proto.get(run_id))

    @public
    async def logs(self, run_id: str) -> list[dict[str, Any]]:
        """The run's log items (``GET /v1/runs/{id}/logs``), oldest first."""
        return _log_items(await self._run(self._proto.read(_logs_path(run_id))))

    @public
    async def find(self, client_ref: str, *, metadata: dict[str, Any] | None = None, grace: bool = False,
                   since: datetime | None = None) -> Run | None:
        return await self._run(self._proto.look_up(client_ref, metadata=metadata, grace=grace, since=since))

    @public
    async def wait(self, run_id: str, *, timeout: float | None = None, on_event: Any = None) -> Run:
        return await self._run(self._proto.wait(run_id, timeout=timeout), on_event)

    @public
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

    @public
    async def download(self, run: Run, dest: str | os.PathLike[str]) -> tuple[str, int]:
        return await self._run(self._download_flow(run, Path(dest)))

    @public
    async def generate(self, request: VideoRequest | None = None, /, *, out_dir: str | os.PathLike[str] | None = None,
                       timeout: float | None = None, client_ref: str | None = None, download: bool = True,
                       on_event: Callable[[RunEvent], None] | None = None, **inputs: Any) -> Result:
        req = self._as_request(request, inputs)
        _check_generate(out_dir, on_event)
        result = await self._run(self._generate_flow(req, client_ref=client_ref,
                                                     out_dir=Path(out_dir) if out_dir else None,
                                                     timeout=timeout, download=download), on_event)
        return await asyncio.to_thread(probe_result, result)

    @public
    async def balance(self) -> Any:
        return (await self._run(self._proto.call("GET", "/v1/billing/balance"))).json()

    @public
    async def health(self) -> Any:
        return (await self._run(self._proto.call("GET", "/v1/health"))).json()


def _logs_path(run_id: str) -> str:
    from urllib.parse import quote

    return f"/v1/runs/{quote(run_id, safe='')}/logs"


def _log_items(body: Any) -> list[dict[str, Any]]:
    """``{"items": [...]}`` as documented; anything else is no items (never an error for a note)."""
    items = body.get("items") if isinstance(body, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _check_generate(out_dir: Any, on_event: Any) -> None:
    """The arguments of ``generate`` that are not the request, checked before anything is sent."""
    if out_dir is not None and not isinstance(out_dir, (str, os.PathLike)):
        raise UsageError(f"out_dir is {type(out_dir).__name__}: use a folder path")
    if on_event is not None and not callable(on_event):
        raise UsageError(f"on_event is {type(on_event).__name__}: use a function that takes one RunEvent")
