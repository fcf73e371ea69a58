"""Sweeps through batches: many runs in one create, one poll for all of them.

A sweep with ``batch="auto"`` (or ``True``) hands its submits to a :class:`Batcher` instead of the
client. Runs that are ready to go within a short window are gathered (up to 100, the documented
limit) and sent as ``POST /v1/models/{model}/batches``, each item with its own ``client_ref`` — the
one already stored with the run, so resume and look-ups work exactly as for single runs. The
batch's runs are then waited for together with ``GET /v1/batches/{id}/items`` (one request per
poll for the whole batch, where single runs poll one request each).

What does not change: every run is in the store (``submitting``, with its client_ref) and holds its
budget reservation *before* the batch is sent; the batch create carries an ``Idempotency-Key``
derived from its items' client_refs, and a lost answer is resolved as for single runs (replay by
key, else look-up by client_ref; a run that may exist is never reported as refused). A model that
does not support batches answers 422: the batcher then sends single runs, for this batch and the
rest of the sweep (``batch="auto"``); ``batch=True`` says so in the sweep's messages as well.

>>> exp.run(plan, concurrency=50, batch="auto")                             # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._protocol import BatchRefused
from ..errors import APIError, NetworkError, RunflowError, RunMayExistError, RunTimeoutError
from ..runs import Run, RunEvent

if TYPE_CHECKING:
    from ..client import AsyncClient
    from ..request import VideoRequest

__all__ = ["MAX_BATCH_ITEMS", "Batcher", "NotSent", "batch_key"]

MAX_BATCH_ITEMS = 100


def batch_key(client_refs: list[str]) -> str:
    """The ``Idempotency-Key`` of a batch: the same items (by client_ref) give the same key."""
    digest = hashlib.sha256("\n".join(["runflow_nb batch", *sorted(client_refs)]).encode()).hexdigest()
    return f"rfnb-batch-{digest[:40]}"


class NotSent(RunflowError):
    """A run queued for a batch was never sent: the sweep stopped while it waited for companions."""


@dataclass
class _Item:
    req: VideoRequest
    client_ref: str
    metadata: dict[str, Any] | None
    future: asyncio.Future[Run]


@dataclass
class _Waiter:
    run_id: str
    future: asyncio.Future[Run]
    on_event: Callable[[RunEvent], None] | None
    deadline: float
    started: float
    last_status: str | None = None


@dataclass
class _Batch:
    id: str
    waiters: dict[str, _Waiter] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None


class Batcher:
    """``submit``/``wait`` with the client's signatures, through batches where the server takes them.

    ``window_s`` is how long a submit waits for companions (each new one restarts it, up to
    ``max_delay_s``); a full batch of ``max_items`` goes at once. ``cancel`` (the sweep's stop
    event) is checked before a batch is sent: nothing is sent after a stop.
    """

    def __init__(self, client: AsyncClient, *, mode: bool | str = "auto", max_items: int = MAX_BATCH_ITEMS,
                 window_s: float = 0.1, max_delay_s: float = 0.5, cancel: threading.Event | None = None) -> None:
        if mode not in ("auto", True):
            raise ValueError("batch must be 'auto', True or False")
        if not 1 <= max_items <= MAX_BATCH_ITEMS:
            raise ValueError(f"a batch holds 1–{MAX_BATCH_ITEMS} items")
        self.client = client
        self.mode = mode
        self.max_items = max_items
        self.window_s, self.max_delay_s = window_s, max_delay_s
        self.cancel = cancel or threading.Event()
        self.supported: bool | None = None
        self.messages: list[str] = []
        self._queues: dict[str, list[_Item]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._first: dict[str, float] = {}
        self._batches: dict[str, _Batch] = {}
        self._run_batch: dict[str, str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sent: set[str] = set()  # client_refs whose create request may have left
        #: Called with (batch key, client_refs) just before a batch is sent: the sweep records the key
        #: with its runs, so a batch whose answer is lost can be re-sent whole, under the same key; and
        #: with (None, client_refs) when a refused batch's runs go out alone, each under its own key.
        self.on_send: Callable[[str | None, list[str]], Awaitable[None]] | None = None

    def unsent(self, client_ref: str) -> bool:
        """True while no create for ``client_ref`` has been sent (it waits in a batch being gathered)."""
        return client_ref not in self._sent

    # -- submitting ------------------------------------------------------------------------------

    async def submit(self, req: VideoRequest, *, client_ref: str, metadata: dict[str, Any] | None = None) -> Run:
        """Queue one run for the next batch of its model; returns its queued run once the batch is created."""
        if self.supported is False:
            self._sent.add(client_ref)
            return await self.client.submit(req, client_ref=client_ref, metadata=metadata)
        loop = asyncio.get_running_loop()
        item = _Item(req=req, client_ref=client_ref, metadata=metadata, future=loop.create_future())
        model = req.model
        queue = self._queues.setdefault(model, [])
        queue.append(item)
        self._first.setdefault(model, loop.time())
        timer = self._timers.pop(model, None)
        if timer is not None:
            timer.cancel()
        waited = loop.time() - self._first[model]
        if len(queue) >= self.max_items or waited >= self.max_delay_s:
            self._flush_soon(model)
        else:
            delay = min(self.window_s, self.max_delay_s - waited)
            self._timers[model] = loop.call_later(delay, self._flush_soon, model)
        return await item.future

    def _flush_soon(self, model: str) -> None:
        self._timers.pop(model, None)
        queue = self._queues.get(model) or []
        take, self._queues[model] = queue[: self.max_items], queue[self.max_items:]
        self._first.pop(model, None)
        if self._queues[model]:
            self._first[model] = asyncio.get_running_loop().time()
            self._timers[model] = asyncio.get_running_loop().call_later(self.window_s, self._flush_soon, model)
        if take:
            self._spawn(self._send(model, take))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, model: str, items: list[_Item]) -> None:
        try:
            await self._send_batch(model, items)
        except BaseException as exc:  # every waiting run gets an answer, whatever happened
            for it in items:
                if not it.future.done():
                    it.future.set_exception(exc if isinstance(exc, Exception) else RunflowError(str(exc)))
            if not isinstance(exc, Exception):
                raise

    @staticmethod
    def _never_sent(items: list[_Item]) -> None:
        for it in items:
            if not it.future.done():
                it.future.set_exception(NotSent("the sweep was stopped before this run was sent"))

    async def _send_batch(self, model: str, items: list[_Item]) -> None:
        if self.cancel.is_set():
            self._never_sent(items)
            return
        if self.supported is False:
            await self._singles(items)
            return
        items = sorted(items, key=lambda it: it.client_ref)  # the same runs make the same body, in any order
        body = await self._body(items)
        key = batch_key([it.client_ref for it in items])
        if self.on_send is not None:
            await self.on_send(key, [it.client_ref for it in items])
        # Checked again after the uploads, with no await before the refs count as sent: a stop that came
        # while references uploaded finds these runs never sent (planned, their money freed), so the
        # batch must not go out after it.
        if self.cancel.is_set():
            self._never_sent(items)
            return
        self._sent.update(it.client_ref for it in items)
        try:
            batch_id, runs = await self.client._run(self.client._proto.submit_batch(model, body, idempotency_key=key))
        except BatchRefused as exc:
            if exc.unsupported:
                self.supported = False
                self.messages.append(f"{model} takes no batches ({exc.message}); sending single runs")
            if self.on_send is not None:  # refused whole (nothing made): each run now goes under its own key
                await self.on_send(None, [it.client_ref for it in items])
            await self._singles(items)
            return
        self.supported = True
        self._track(batch_id, runs)
        for it in items:
            run = runs.get(it.client_ref)
            if run is None:
                it.future.set_exception(RunMayExistError(
                    f"the batch answer was lost and run {it.client_ref} is not listed yet: it may have been "
                    "created — look it up again before submitting anew", client_ref=it.client_ref))
                continue
            it.future.set_result(run)

    def _track(self, batch_id: str | None, runs: dict[str, Run | None]) -> None:
        """Wait for a created batch's runs through the batch (one poll for all of them)."""
        if not batch_id:
            return
        batch = self._batches.setdefault(batch_id, _Batch(batch_id))
        for run in runs.values():
            if run is not None:
                self._run_batch[run.id] = batch.id

    async def _body(self, items: list[_Item]) -> dict[str, Any]:
        inputs = [await self.client._run(self.client._input_flow(it.req)) for it in items]
        metadata = {"library": "runflow_nb", **{k: v for k, v in (items[0].metadata or {}).items() if k != "run_id"}}
        return {"input": [{**inp, "client_ref": it.client_ref} for inp, it in zip(inputs, items, strict=True)],
                "metadata": metadata, "callback_url": self.client._callback_for_create()}

    async def resend(self, model: str, runs: list[tuple[VideoRequest, str, dict[str, Any] | None]]
                     ) -> dict[str, Run | None]:
        """Send a batch whose answer was lost again, whole: the same runs make the same body under the
        same key, so a server that created it replays it (nothing is paid twice) and one that did
        not creates it now. Returns client_ref → run (None: not listed). Never falls back to single
        runs (they would carry other keys): a refusal is raised."""
        loop = asyncio.get_running_loop()
        items = sorted((_Item(req=req, client_ref=ref, metadata=meta, future=loop.create_future())
                        for req, ref, meta in runs), key=lambda it: it.client_ref)
        body = await self._body(items)
        key = batch_key([it.client_ref for it in items])
        self._sent.update(it.client_ref for it in items)
        batch_id, found = await self.client._run(self.client._proto.submit_batch(model, body, idempotency_key=key))
        self._track(batch_id, found)
        return found

    async def _singles(self, items: list[_Item]) -> None:
        async def one(it: _Item) -> None:
            try:
                self._sent.add(it.client_ref)
                run = await self.client.submit(it.req, client_ref=it.client_ref, metadata=it.metadata)
            except Exception as exc:
                it.future.set_exception(exc)
            else:
                it.future.set_result(run)

        await asyncio.gather(*(one(it) for it in items))

    # -- waiting ---------------------------------------------------------------------------------

    async def wait(self, run_id: str, *, timeout: float | None = None,
                   on_event: Callable[[RunEvent], None] | None = None) -> Run:
        """Wait for a run; runs of a batch are polled together, one request per poll."""
        batch_id = self._run_batch.get(run_id)
        if batch_id is None:
            return await self.client.wait(run_id, timeout=timeout, on_event=on_event)
        batch = self._batches[batch_id]
        loop = asyncio.get_running_loop()
        proto = self.client._proto
        limit = proto.wait_timeout if timeout is None else timeout
        waiter = _Waiter(run_id=run_id, future=loop.create_future(), on_event=on_event,
                         deadline=time.monotonic() + limit, started=time.monotonic())
        batch.waiters[run_id] = waiter
        if batch.task is None or batch.task.done():
            batch.task = asyncio.ensure_future(self._poll(batch))
        return await waiter.future

    async def _poll(self, batch: _Batch) -> None:
        proto = self.client._proto
        interval, started = proto.poll_interval, time.monotonic()
        try:
            while batch.waiters:
                await asyncio.sleep(interval)
                try:
                    runs = await self.client._run(proto.batch_items(batch.id))
                except (APIError, NetworkError) as exc:
                    self.messages.append(f"batch {batch.id}: polling it failed ({exc}); waiting run by run")
                    for w in list(batch.waiters.values()):
                        self._spawn(self._wait_single(batch, w))
                    return
                by_id = {r.id: r for r in runs}
                now = time.monotonic()
                for run_id, w in list(batch.waiters.items()):
                    run = by_id.get(run_id)
                    if run is not None and run.status != w.last_status:
                        w.last_status = run.status
                        if w.on_event is not None:
                            with contextlib.suppress(Exception):
                                w.on_event(RunEvent(run.status, run, now - w.started))
                    if run is not None and run.done:
                        del batch.waiters[run_id]
                        w.future.set_result(run)
                    elif now >= w.deadline:
                        del batch.waiters[run_id]
                        status = run.status if run is not None else "unknown"
                        w.future.set_exception(RunTimeoutError(
                            f"run {run_id} is still {status} after {now - w.started:.0f} s; it may still finish — "
                            "wait on it again, nothing is lost", run=run))
                if now - started > proto.backoff_after_s:
                    interval = min(proto.poll_max, interval * 1.25)
        except BaseException as exc:
            for w in batch.waiters.values():
                if not w.future.done():
                    w.future.set_exception(exc if isinstance(exc, Exception) else RunflowError(str(exc)))
            batch.waiters.clear()
            raise

    async def _wait_single(self, batch: _Batch, w: _Waiter) -> None:
        batch.waiters.pop(w.run_id, None)
        try:
            left = max(0.0, w.deadline - time.monotonic())
            w.future.set_result(await self.client.wait(w.run_id, timeout=left, on_event=w.on_event))
        except Exception as exc:
            w.future.set_exception(exc)

    async def aclose(self) -> None:
        """Cancel polling tasks (the sweep is over)."""
        for batch in self._batches.values():
            if batch.task is not None and not batch.task.done():
                batch.task.cancel()
        for task in list(self._tasks):
            task.cancel()
