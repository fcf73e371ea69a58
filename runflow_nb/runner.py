"""Sweeps: bounded concurrency, a budget guard, and resume that never pays twice.

A run is written to the store *before* it is submitted (status ``submitting`` with its
``client_ref``) and updated at every change. Re-running a plan therefore

* skips keys that already succeeded (re-downloading a missing file when its URL still works),
* re-attaches runs whose remote id is known, or finds them by ``client_ref`` when the submit's
  answer was lost, and
* submits only what never reached the server.

A run being driven holds a lease in the store (:mod:`runflow_nb.leases`), renewed while this
process works on it: a run another live process holds is waited for (and its result reused),
and a run whose holder died is taken over once its lease lapses.

The budget guard counts money spent *and* in flight: a run is submitted only when the spending of
this sweep, plus the estimates of the runs still running, plus its own estimate, stays within the
budget. Everything else is marked ``skipped_budget`` with a message that says so.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .artifacts import Artifacts
from .client import AsyncClient, new_client_ref, safe_name
from .errors import APIError, DownloadError, ExpiredURLError, NetworkError
from .leases import LeaseKeeper, held_elsewhere
from .request import VideoRequest
from .runs import Output, Run

if TYPE_CHECKING:
    from .plan import Plan
    from .store import Store

__all__ = ["SweepProgress", "SweepSummary", "run_plan"]

ACTIVE = ("submitting", "queued", "dispatching", "running")


def _now() -> datetime:
    return datetime.now(timezone.utc)


_DRIVING: set[str] = set()  # run ids that some sweep of this process is submitting or waiting for
_DRIVING_LOCK = threading.Lock()


@contextlib.contextmanager
def _driving(run_id: str) -> Iterator[bool]:
    """True (and the run marked as driven) unless another sweep of this process drives it: a lease
    names a process, so only this keeps two sweeps in one kernel apart."""
    with _DRIVING_LOCK:
        mine = run_id not in _DRIVING
        _DRIVING.add(run_id)
    try:
        yield mine
    finally:
        if mine:
            with _DRIVING_LOCK:
                _DRIVING.discard(run_id)


@dataclass
class SweepProgress:
    """Live counts for a progress display (updated from the sweep's thread)."""

    total: int
    counts: Counter[str] = field(default_factory=Counter)
    spent_usd: float = 0.0
    in_flight_usd: float = 0.0
    budget_usd: float | None = None
    started: float = field(default_factory=time.monotonic)
    finished: bool = False
    messages: list[str] = field(default_factory=list)
    simulated: bool = False  # offline simulator: "spent" is what the model would have charged

    @property
    def done(self) -> int:
        return sum(v for k, v in self.counts.items() if k not in ACTIVE and k != "planned")

    def eta_s(self) -> float | None:
        done = self.done
        if done == 0 or done >= self.total:
            return None
        rate = (time.monotonic() - self.started) / done
        return rate * (self.total - done)

    def line(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()) if v)
        spent = "simulated spend" if self.simulated else "spent"
        money = f"{spent} ${self.spent_usd:.2f}" + (f" of ${self.budget_usd:.2f}" if self.budget_usd is not None else "")
        eta = self.eta_s()
        return (f"[{self.done}/{self.total}] {parts} | {money}"
                + (f" | ETA {eta:.0f} s" if eta is not None else ""))


@dataclass
class SweepSummary:
    total: int
    counts: dict[str, int]
    spent_usd: float
    reused: int
    reattached: int
    submitted: int
    skipped_budget: int
    wall_s: float
    messages: list[str]
    simulated: bool = False

    def __str__(self) -> str:
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items()))
        money = (f"simulated spend ${self.spent_usd:.2f} (offline simulator: nothing charged)" if self.simulated
                 else f"spent ${self.spent_usd:.2f}")
        return (f"{self.total} planned runs ({parts}); submitted {self.submitted}, re-attached {self.reattached}, "
                f"reused {self.reused}; {money} in {self.wall_s:.1f} s")


@dataclass
class _Job:
    req: VideoRequest
    run_id: str
    status: str
    reserved: float = 0.0


class _Sweep:
    def __init__(self, *, store: Store, experiment: str, plan: Plan, client: AsyncClient, artifacts: Path | Artifacts,
                 concurrency: int, budget_usd: float | None, on_progress: Callable[[SweepProgress], None] | None,
                 cancel: threading.Event, timeout: float | None) -> None:
        self.store = store
        self.experiment = experiment
        self.plan = plan
        self.client = client
        self.artifacts = artifacts if isinstance(artifacts, Artifacts) else Artifacts(artifacts)
        self.sem = asyncio.Semaphore(max(1, concurrency))
        self.budget = budget_usd
        self.on_progress = on_progress
        self.cancel = cancel
        self.timeout = timeout
        self.progress = SweepProgress(total=len(plan), budget_usd=budget_usd,
                                      simulated=client.backend == "simulator")
        self.budget_cond = asyncio.Condition()
        self.started_wall = time.time()
        self._db_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="runflow_nb-store")
        self.budget_exhausted = False
        # Leases say which process drives a run, renewed while it does (runflow_nb.leases).
        self.leases = LeaseKeeper(store, call=self._db, on_lost=lambda run_id, holder: self.progress.messages.append(
            f"{run_id}: this process stalled past its lease and {holder} took the run over"))
        self.reused = self.reattached = self.submitted = self.skipped = 0

    # -- bookkeeping ---------------------------------------------------------------------------

    def _set(self, status: str, old: str | None = None) -> None:
        if old is not None:
            self.progress.counts[old] -= 1
        self.progress.counts[status] += 1
        if self.on_progress is not None:
            with contextlib.suppress(Exception):  # a broken display must never break a paid sweep
                self.on_progress(self.progress)

    async def _db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Store calls run on their own worker threads, so neither a slow database nor video probing
        (which uses the default executor) delays the polls and submits of other runs."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_pool, functools.partial(fn, *args, **kwargs))

    async def _update(self, run_id: str, **fields: Any) -> dict[str, Any]:
        return await self._db(self.store.update_run, run_id, **fields)

    def _record(self, req: VideoRequest) -> dict[str, Any]:
        return {
            "run_key": req.run_key(), "client_ref": new_client_ref(), "experiment": self.experiment,
            "status": "planned", **req.record(), "created_at": _now(),
            "cost_simulated": self.client.backend == "simulator", "backend": self.client.backend,
            "library_version": __version__, "attempts": 0, "tags": [],
        }

    # -- one planned run -------------------------------------------------------------------------

    async def job(self, req: VideoRequest) -> None:
        row, _created = await self._db(self.store.claim_run, self._record(req))
        job = _Job(req=req, run_id=row["run_id"], status=row["status"])
        self._set(job.status)
        if job.status == "succeeded":
            self.reused += 1
            await self._ensure_artifact(row)
            return
        if held_elsewhere(row, owner=self.leases.owner):
            row = await self._wait_for_holder(job, row)
            if row is None:
                return
            if row["status"] == "succeeded":
                self.reused += 1
                return
        try:
            await self._job(job, row)
        finally:
            await self.leases.release(job.run_id)  # ended or left: another process may take it at once

    async def _wait_for_holder(self, job: _Job, row: dict[str, Any]) -> dict[str, Any] | None:
        """Wait (without a slot) while another live process drives the run: until it releases its
        lease (the run has ended there) or stops renewing it (it died: the run is taken over).
        None when the sweep is cancelled meanwhile."""
        self.progress.messages.append(f"{job.run_id}: being run by {row.get('owner')}; waiting for it to end "
                                      "there, or to be taken over if that process stops renewing its lease")
        poll = min(2.0, max(0.1, self.leases.lease_s / 6))
        while held_elsewhere(row, owner=self.leases.owner):
            if self.cancel.is_set():
                return None
            await asyncio.sleep(poll)
            row = await self._db(self.store.get_run, job.run_id) or row
        if row["status"] != job.status:
            self._set(row["status"], job.status)
            job.status = row["status"]
        return row

    async def _job(self, job: _Job, row: dict[str, Any]) -> None:
        done: Run | None = None
        # The slot bounds runs in flight on the server; downloads happen after it is freed.
        async with self.sem:
            if self.cancel.is_set():
                return
            try:
                with _driving(job.run_id) as mine:
                    fresh = await self._db(self.store.get_run, job.run_id) or row
                    if fresh["status"] != job.status:  # another process moved it since the claim
                        self._set(fresh["status"], job.status)
                        job.status = fresh["status"]
                    # The lease is held from here until the run is recorded (download included).
                    if not mine or job.status == "succeeded" or not await self.leases.take(job.run_id):
                        owner = (await self._db(self.store.get_run, job.run_id) or fresh).get("owner")
                        self.progress.messages.append(f"{job.run_id}: taken by {owner}; left to it")
                        return
                    done = await self._drive(job, fresh)
            except Exception as exc:  # every run ends in a definite, explained state
                await self._fail(job, row, exc)
                return
        if done is not None:  # the remote run has ended: its slot is already free for the next one
            try:
                succeeded = await self._finish(job, done)
                if succeeded is not None:
                    await self._collect(job, succeeded)
            except Exception as exc:
                await self._fail(job, row, exc)

    async def _fail(self, job: _Job, row: dict[str, Any], exc: Exception) -> None:
        await self._release(job)
        current = await self._db(self.store.get_run, job.run_id) or row
        # Unknown (resumable by remote id / client_ref) when the server may have the run.
        final = "unknown" if (current.get("remote_id") or job.status in (*ACTIVE, "unknown")) else "error"
        await self._move(job, final, error_code=type(exc).__name__, error_message=_message(exc))

    async def _move(self, job: _Job, status: str, **fields: Any) -> None:
        await self._update(job.run_id, status=status, **fields)
        self._set(status, job.status)
        job.status = status

    async def _drive(self, job: _Job, row: dict[str, Any]) -> Run | None:
        """Submit (or re-attach) and wait; returns the ended remote run (None when nothing was sent)."""
        req, run_id = job.req, job.run_id
        run: Run | None = None
        if job.status in (*ACTIVE, "unknown", "download_failed"):
            run = await self._reattach(row)
            if run is not None:
                self.reattached += 1
                await self._commit_in_flight(job)
        if run is None:
            if not await self._reserve_budget(job):
                self.skipped += 1
                await self._move(job, "skipped_budget", error_code="BUDGET",
                                 error_message=f"skipped: the next run would take spending past the budget of "
                                               f"${self.budget:.2f}")
                return None
            client_ref = row["client_ref"]
            if job.status in ("failed", "canceled", "error", "skipped_budget", "download_failed"):
                client_ref = new_client_ref()  # the old reference names a finished (or refused) attempt
            # Compare-and-set: of several processes sweeping the same plan, exactly one submits.
            if not await self._db(self.store.transition, run_id, from_statuses=[job.status],
                                  expect={"attempts": row.get("attempts") or 0, "owner": self.leases.owner},
                                  status="submitting",
                                  client_ref=client_ref, submitted_at=_now(), owner=self.leases.owner,
                                  attempts=(row.get("attempts") or 0) + 1, error_code=None, error_message=None):
                await self._release(job)
                self.progress.messages.append(f"{run_id}: submitted by another process; left to it")
                return None
            self._set("submitting", job.status)
            job.status = "submitting"
            try:
                run = await self.client.submit(req, client_ref=client_ref,
                                               metadata={"experiment": self.experiment, "run_id": run_id})
            except APIError as exc:  # refused (4xx): nothing was created, nothing billed
                await self._release(job)
                await self._move(job, "error", error_code=exc.code or str(exc.status_code),
                                 error_message=_message(exc))
                return None
            self.submitted += 1
        await self._move(job, run.status if not run.done else "running", remote_id=run.id, owner=self.leases.owner)

        writes: list[asyncio.Task[Any]] = []

        def on_event(event: Any) -> None:
            r: Run = event.run
            if r.status != job.status and not r.done:
                self._set(r.status, job.status)
                job.status = r.status
                writes.append(asyncio.ensure_future(self._update(run_id, status=r.status, started_at=r.started_at)))

        if not run.done:
            run = await self.client.wait(run.id, timeout=self.timeout, on_event=on_event)
        await asyncio.gather(*writes)
        return run

    async def _reattach(self, row: dict[str, Any]) -> Run | None:
        """The remote run behind a row whose outcome is unknown, by remote id or client_ref."""
        if row.get("remote_id"):
            return await self.client.get(row["remote_id"])
        if row.get("client_ref"):
            return await self.client.find(row["client_ref"])
        return None

    async def _finish(self, job: _Job, run: Run) -> Run | None:
        """Record how the remote run ended; a success is returned for :meth:`_collect`."""
        if not run.succeeded:
            await self._release(job)
            await self._move(job, run.status, completed_at=run.completed_at, error_code=run.failure_code,
                             error_message=run.failure_message or f"run {run.status}",
                             cost_usd=0.0 if run.status in ("failed", "canceled") else None)
            return None
        out = run.output
        assert out is not None
        cost = run.cost_usd if run.cost_usd is not None else job.req.estimate_usd()
        await self._release(job, spent=cost)
        await self._update(job.run_id, output_url=out.video_url, seed_returned=out.seed,
                           nsfw_detected=out.nsfw_detected, inference_ms=out.inference_ms,
                           started_at=run.started_at, cost_usd=cost, completed_at=run.completed_at or _now(),
                           queue_s=run.queue_s)
        return run

    async def _collect(self, job: _Job, run: Run) -> None:
        """Fetch, check and describe the video of a succeeded run."""
        row = await self._db(self.store.get_run, job.run_id)
        assert row is not None
        try:
            try:
                await self._download(row, run)
            except ExpiredURLError:
                # Presigned URLs expire; the run itself may hand out a fresh one.
                fresh = await self.client.get(run.id)
                if not (fresh.succeeded and fresh.output and run.output
                        and fresh.output.video_url != run.output.video_url):
                    raise
                await self._update(job.run_id, output_url=fresh.output.video_url)
                await self._download(row, fresh)
        except DownloadError as exc:
            await self._move(job, "download_failed", error_code=type(exc).__name__, error_message=str(exc))
            return
        self._set("succeeded", job.status)
        job.status = "succeeded"

    async def _download(self, row: dict[str, Any], run: Run) -> None:
        rel = f"{safe_name(self.experiment)}/{safe_name(row['run_id'])}.mp4"
        dest = self.artifacts.local_tmp(rel)  # local target: the final path; shared storage: a temp file
        _remove_stale_parts(dest, older_than=self.started_wall)
        sha, _size = await self.client.download(run, dest)
        info = await asyncio.to_thread(_probe_and_poster, dest)
        info["poster_path"] = await asyncio.to_thread(self.artifacts.commit, info["poster_path"], rel[:-4] + ".jpg")
        video_uri = await asyncio.to_thread(self.artifacts.commit, dest, rel)  # a path, or s3://...
        submitted = row.get("submitted_at")
        wall = (_now() - submitted).total_seconds() if isinstance(submitted, datetime) else None
        await self._update(row["run_id"], status="succeeded", video_path=video_uri, video_sha256=sha,
                           wall_s=wall, **info)

    async def _ensure_artifact(self, row: dict[str, Any]) -> None:
        """A succeeded run whose file went missing is fetched again while its URL still works."""
        path = row.get("video_path")
        try:
            if path and await asyncio.to_thread(self.artifacts.exists, path):
                return
        except Exception as exc:  # shared storage unreachable: leave the run as it is
            self.progress.messages.append(f"{row['run_id']}: cannot check its video {path}: {exc}")
            return
        if not row.get("output_url"):
            return
        run = Run(id=row.get("remote_id") or row["run_id"], status="succeeded",
                  output=Output(video_url=row["output_url"]))
        try:
            await self._download(row, run)
        except ExpiredURLError as exc:
            self.progress.messages.append(f"{row['run_id']}: video file missing and {exc}")
            await self._update(row["run_id"], error_code="ARTIFACT_MISSING", error_message=str(exc))
        except (DownloadError, NetworkError) as exc:
            self.progress.messages.append(f"{row['run_id']}: video file missing; re-download failed: {exc}")

    # -- budget ------------------------------------------------------------------------------------

    async def _reserve_budget(self, job: _Job) -> bool:
        """Reserve this run's estimate, waiting while runs in flight might still free room."""
        need = job.req.estimate_usd()
        async with self.budget_cond:
            while True:
                p = self.progress
                if self.budget is None or (not self.budget_exhausted
                                           and p.spent_usd + p.in_flight_usd + need <= self.budget + 1e-9):
                    p.in_flight_usd += need
                    job.reserved = need
                    return True
                if self.budget_exhausted or p.in_flight_usd <= 1e-9 or p.spent_usd + need > self.budget + 1e-9:
                    if not self.budget_exhausted:
                        p.messages.append(
                            f"budget guard: spent ${p.spent_usd:.2f} + in flight ${p.in_flight_usd:.2f} + next run "
                            f"${need:.2f} would exceed the budget of ${self.budget:.2f}; the remaining runs are "
                            "marked skipped_budget (re-run with a larger budget to finish them)")
                    self.budget_exhausted = True
                    return False
                await self.budget_cond.wait()  # a run in flight may fail (not billed) and free its share

    async def _commit_in_flight(self, job: _Job) -> None:
        """A re-attached run counts against the budget until it ends (conservative: never overspend)."""
        async with self.budget_cond:
            self.progress.in_flight_usd += job.req.estimate_usd()
            job.reserved = job.req.estimate_usd()

    async def _release(self, job: _Job, *, spent: float = 0.0) -> None:
        async with self.budget_cond:
            p = self.progress
            p.in_flight_usd = max(0.0, p.in_flight_usd - job.reserved)
            job.reserved = 0.0
            p.spent_usd = round(p.spent_usd + spent, 6)
            self.budget_cond.notify_all()

    async def run(self) -> SweepSummary:
        t0 = time.monotonic()
        self.leases.start()
        try:
            await self._db(self.store.ensure_experiment, self.experiment)
            await asyncio.gather(*(self.job(req) for req in self.plan))
        finally:
            self.leases.stop()
            self._db_pool.shutdown(wait=False)
        self.progress.finished = True
        if self.on_progress is not None:
            self.on_progress(self.progress)
        return SweepSummary(total=len(self.plan), counts={k: v for k, v in self.progress.counts.items() if v},
                            spent_usd=self.progress.spent_usd, reused=self.reused, reattached=self.reattached,
                            submitted=self.submitted, skipped_budget=self.skipped,
                            wall_s=time.monotonic() - t0, messages=list(self.progress.messages),
                            simulated=self.progress.simulated)


def _remove_stale_parts(dest: Path, *, older_than: float) -> None:
    """Partial downloads of this file left by a killed process (older than this sweep) are removed."""
    for part in dest.parent.glob(f".{dest.name}.*.part"):
        with contextlib.suppress(OSError):
            if part.stat().st_mtime < older_than:
                part.unlink()


def _probe_and_poster(path: Path) -> dict[str, Any]:
    from .media import describe

    info, poster = describe(path)
    return {"width": info.width, "height": info.height, "video_duration": info.duration,
            "has_audio": info.has_audio, "poster_path": str(poster)}


def _message(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:2000]


async def run_plan(*, store: Store, experiment: str, plan: Plan, client: AsyncClient, artifacts: Path | Artifacts,
                   concurrency: int = 4, budget_usd: float | None = None,
                   on_progress: Callable[[SweepProgress], None] | None = None,
                   cancel: threading.Event | None = None, timeout: float | None = None) -> SweepSummary:
    """Run ``plan`` into ``store`` (see the module docstring for the guarantees)."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if budget_usd is not None and budget_usd < 0:
        raise ValueError("budget_usd must be positive")
    sweep = _Sweep(store=store, experiment=experiment, plan=plan, client=client, artifacts=artifacts,
                   concurrency=concurrency, budget_usd=budget_usd, on_progress=on_progress,
                   cancel=cancel or threading.Event(), timeout=timeout)
    return await sweep.run()

