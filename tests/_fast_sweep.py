"""A sweep at zero latency: the real runner, client, store and emulator, with no sockets and no waiting.

The emulator (with the ``before`` hooks and create records of :mod:`_scripted`) answers through an
``httpx.MockTransport``; its simulator runs on a clock the test moves (:class:`Clock`), so a run
stays in flight exactly until the test says it ended, and every "rendered" clip is a copy of one
real MP4 made once per session (the sweep still downloads, hashes, probes and posters it). The
store is SQLite in memory. A sweep of a few runs takes a fraction of a second, which is what lets
mutation testing run these tests for every planted bug. The fixtures (``fast_clip``, ``no_fsync``,
``service``, ``sweeper``) are in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from _scripted import Scripted, answer, is_download, is_poll

import runflow_nb as rf
from runflow_nb.simulator.engine import Simulator
from runflow_nb.store.runstore import Store
from runflow_nb.sweep.runner import SweepProgress, SweepSummary, run_plan

KEY = "rf_test_fast_sweep"
BASE = "https://api.runflow.test"
PROMPT = "character1 gallops along the shore"
RUN = 0.42  # 3 s at 720p
HOLD_S = 1000.0  # how long a run created while frozen lasts on the simulator's clock

AsyncHook = Callable[[httpx.Request], Awaitable["httpx.Response | None"]]


class Clock:
    """Epoch seconds the test can move ahead (the simulator's notion of time)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class Service:
    """The documented API in-process: an emulator on a test-driven clock, no latency."""

    def __init__(self, clip: Path, *, faults: str | None = None, frozen: bool = False) -> None:
        self.clock = Clock()

        def renderer(images: Any, *, dest: Any, **kw: Any) -> Path:
            shutil.copyfile(clip, dest)
            return Path(dest)

        self.sim = Simulator(latency=HOLD_S if frozen else 0.0, clock=self.clock, renderer=renderer, max_workers=1)
        self.emu = Scripted(simulator=self.sim, api_key=KEY, base_url=BASE, faults=faults)
        self.async_before: list[AsyncHook] = []  # hooks that may await (a submit held open, a stop mid-request)

    def freeze(self) -> None:
        """Runs created from now on stay on the server (queued, then running) until :meth:`thaw`."""
        self.sim.latency = HOLD_S

    def thaw(self) -> None:
        """Every run created so far ends at once (on the clock); new runs end as soon as they start."""
        self.sim.latency = 0.0
        self.clock.offset += 2 * HOLD_S

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        for hook in list(self.async_before):
            got = await hook(request)
            if got is not None:
                return got
        return self.emu.handle(request)

    def client(self, **kw: Any) -> rf.AsyncClient:
        kw.setdefault("poll_interval", 0.005)
        kw.setdefault("max_retries", 0)
        client = rf.AsyncClient(api_key=KEY, base_url=BASE, transport=httpx.MockTransport(self._handle), **kw)
        client._proto.submit_grace_s = (0.01, 0.02, 0.04)  # look-ups over a grace period, in milliseconds
        return client

    # -- what the server saw -------------------------------------------------------------------

    def created(self) -> int:
        return int(self.sim.counts()["runs"])

    def billed(self) -> float:
        self.thaw()
        self.sim.counts()  # let every run reach its end on the clock
        return round(sum(e["cost_usd"] for e in self.sim.ledger()), 2)

    def close(self) -> None:
        self.emu.close()

    def other_runs(self, n: int, tag: str) -> None:
        """``n`` runs made by someone else on this account (client_refs ``<tag>-<i>``), at the clock's now."""
        from PIL import Image

        img = Image.new("RGB", (800, 600), (1, 2, 3))
        for i in range(n):
            self.sim.submit({"prompt": "character1 other", "image_urls": [img], "duration": 3, "resolution": "720p",
                             "seed": i}, images=[img], client_ref=f"{tag}-{i}")

    def list_reads(self) -> list[str]:
        """The query strings of every run-list read from now on (``GET /v1/runs``)."""
        reads: list[str] = []

        async def count(request: httpx.Request) -> httpx.Response | None:
            if request.method == "GET" and request.url.path == "/v1/runs":
                reads.append(str(request.url.query))
            return None

        self.async_before.append(count)
        return reads

    def charge_on_success(self, cost: str) -> None:
        """Every run read back as succeeded shows ``cost`` (a price other than the estimate)."""
        def charged(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
            if not is_poll(request):
                return None
            body = json.loads(response.read())
            if body.get("status_code") == "succeeded":
                body["cost"] = cost
            return httpx.Response(200, json=body)

        self.emu.after.append(charged)

    def expire_first_download(self) -> list[str]:
        """The first video download answers 410 (its presigned link expired); the run then hands out a
        renewed link (``?renewed=1``) that works. Returns the download URLs as they are asked for."""
        downloads: list[str] = []

        async def expire_first(request: httpx.Request) -> httpx.Response | None:
            if not is_download(request):
                return None
            downloads.append(str(request.url))
            if len(downloads) == 1:
                return answer(410, {"code": "URL_EXPIRED", "message": "the link expired"})
            return self.emu.handle(httpx.Request("GET", str(request.url.copy_with(query=None))))

        def renewed_link(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
            if not (is_poll(request) and downloads):
                return None
            text = response.read().decode()
            old = downloads[0].replace(BASE, "")
            return httpx.Response(200, content=text.replace(old, old + "?renewed=1").encode(),
                                  headers={"content-type": "application/json"})

        self.async_before.append(expire_first)
        self.emu.after.append(renewed_link)
        return downloads


class Sweeper:
    """Runs plans into one store through one service, as repeated ``exp.run`` calls would."""

    def __init__(self, service: Service, tmp_path: Path, *, experiment: str = "fast", store: str = ":memory:") -> None:
        self.service = service
        self.store = Store(store)
        self.artifacts = tmp_path / "artifacts"
        self.experiment = experiment
        self.progress: list[SweepProgress] = []
        self.cancel = threading.Event()

    def run(self, plan: rf.Plan, *, on_progress: Callable[[SweepProgress], None] | None = None,
            client: rf.AsyncClient | None = None, **kw: Any) -> SweepSummary:
        kw.setdefault("concurrency", 1)

        def seen(p: SweepProgress) -> None:
            self.progress.append(p)
            if on_progress is not None:
                on_progress(p)

        async def go() -> SweepSummary:
            c = client or self.service.client()
            try:
                return await run_plan(store=self.store, experiment=self.experiment, plan=plan, client=c,
                                      artifacts=self.artifacts, on_progress=seen, cancel=self.cancel, **kw)
            finally:
                await c.aclose()

        with _one_batch_per_wave(kw):
            return asyncio.run(go())

    def rows(self) -> list[dict[str, Any]]:
        return list(self.store.runs(self.experiment))

    def status_writes(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Every store write from now on that sets a run's status, as (the fields written, the row after it)."""
        writes: list[tuple[dict[str, Any], dict[str, Any]]] = []
        real_update = self.store.update_run

        def update_run(run_id: str, **fields: Any) -> Any:
            row = real_update(run_id, **fields)
            if "status" in fields:
                writes.append((fields, row))
            return row

        self.store.update_run = update_run  # type: ignore[method-assign]
        return writes

    def statuses(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows():
            out[r["status"]] = out.get(r["status"], 0) + 1
        return out


@contextlib.contextmanager
def _one_batch_per_wave(kw: dict[str, Any]) -> Iterator[None]:
    """A batched sweep sends the runs it has in flight together (a full batch of ``concurrency``
    goes at once), however slowly the machine hands them to the batcher: the runner's own 0.1 s
    gathering window would split them on a loaded machine. A test that set its own window
    (:func:`gather_batches`) keeps it."""
    import functools

    import runflow_nb.sweep.batches as batches

    real = batches.Batcher
    if not kw.get("batch") or isinstance(real, functools.partial):
        yield
        return
    wave = max(1, min(int(kw["concurrency"]), batches.MAX_BATCH_ITEMS))

    class Wave(real):  # type: ignore[valid-type,misc]  # a class still, for the sweep's isinstance checks
        def __init__(self, client: Any, **options: Any) -> None:
            options.setdefault("window_s", 5.0)
            options.setdefault("max_delay_s", 10.0)
            options.setdefault("max_items", wave)
            super().__init__(client, **options)

    batches.Batcher = Wave  # type: ignore[misc]
    try:
        yield
    finally:
        batches.Batcher = real  # type: ignore[misc]


def plan(images: list[Path], seeds: Any, **kw: Any) -> rf.Plan:
    kw.setdefault("duration", 3)
    kw.setdefault("resolution", "720p")
    return rf.grid(prompt=kw.pop("prompt", PROMPT), images=[images[:1]], seed=seeds, **kw)


def sweep_together(sweepers: list[Sweeper], plans: list[rf.Plan], **kw: Any) -> list[SweepSummary]:
    """Run ``sweepers[i].run(plans[i], **kw)`` on threads that start submitting together (each waits
    at a barrier on its first progress report, as two processes starting at once would); every
    sweep must finish without an error."""
    started = threading.Barrier(len(sweepers), timeout=20)
    results: list[Any] = [None] * len(sweepers)

    def sweep(i: int) -> None:
        waited: list[bool] = []

        def together(p: SweepProgress) -> None:
            if not waited:
                waited.append(True)
                started.wait()

        try:
            results[i] = sweepers[i].run(plans[i], on_progress=together, **kw)
        except BaseException as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=sweep, args=(i,)) for i in range(len(sweepers))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert all(r is not None and not isinstance(r, BaseException) for r in results), results
    return results


def gather_batches(monkeypatch: Any, *, window_s: float, max_delay_s: float) -> None:
    """Sweeps from now on gather their batches for this long (the runner's Batcher, made with these)."""
    import functools

    import runflow_nb.sweep.batches as batches

    # the runner imports the class when a sweep starts; a second call's values override the first's
    monkeypatch.setattr(batches, "Batcher", functools.partial(batches.Batcher, window_s=window_s,
                                                              max_delay_s=max_delay_s))
