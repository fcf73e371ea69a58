"""Sweeps: bounded concurrency, a budget guard, stop on demand, and resume that never pays twice.

A run is written to the store *before* it is submitted (status ``submitting`` with its
``client_ref``) and updated at every change. Re-running a plan therefore

* reuses keys that already succeeded (re-downloading a missing file when its URL still works),
* re-attaches runs whose remote id is known, or finds them by ``client_ref`` when the submit's
  answer was lost, and
* submits only what never reached the server.

A run being driven holds a lease in the store (:mod:`runflow_nb.leases`), renewed while this
process works on it: a run another live process holds is waited for (and its result reused),
and a run whose holder died is taken over once its lease lapses.

Guarantees (each has a test):

* **Budget** = spent + in flight + unknown (see :mod:`runflow_nb._budget`). A run whose fate is
  unknown keeps its reservation; a ``succeeded`` run without a video is charged (a server fault,
  re-fetched by the next sweep), ``partial_succeeded`` is charged and never submitted again.
* **Balanced cuts**: runs are submitted in :func:`runflow_nb.plan.balanced_order`, so a budget that
  runs out leaves every prompt and parameter represented.
* **Stop means stop**: once ``cancel`` is set (Ctrl-C / Kernel ▸ Interrupt, a Stop button, a
  background handle's ``cancel()``) nothing more is submitted; runs in flight stay recorded with
  their remote ids (the next sweep re-attaches them) and a message says what still runs and what
  it may cost.
* **Fatal answers** (401/403, 402 ``INSUFFICIENT_CREDIT``) end submitting at the first one; the
  runs not yet sent stay ``planned``; runs in flight are waited for and recorded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from ._budget import Budget, Reservation
from .artifacts import Artifacts
from .client import AsyncClient, new_client_ref, safe_name
from .errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    DownloadError,
    ExpiredURLError,
    InsufficientCreditError,
    Issue,
    NetworkError,
    NotFoundError,
    ValidationError,
)
from .leases import LeaseKeeper, held_elsewhere
from .request import VideoRequest
from .runs import Output, Run

if TYPE_CHECKING:
    from .plan import Plan
    from .store import Store

__all__ = ["SweepProgress", "SweepSummary", "run_plan"]

ACTIVE = ("submitting", "queued", "dispatching", "running")
CHARGED = ("succeeded", "partial_succeeded", "download_failed")  # billed: never submitted again
FATAL = (AuthenticationError, InsufficientCreditError)


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
    """Live counts for a progress display (updated from the sweep's thread).

    ``done`` counts runs that ended (succeeded, failed, ...); runs skipped by the budget are
    ``skipped``, not done, so a cut sweep never shows a full bar. ``budget_usd`` is what this call
    may commit (``budget_scope`` says whether it came from ``exp.run(budget_usd=...)`` or from the
    experiment's cap, whose earlier spending is ``prior_usd``).
    """

    total: int
    counts: Counter[str] = field(default_factory=Counter)
    spent_usd: float = 0.0
    in_flight_usd: float = 0.0
    unknown_usd: float = 0.0
    budget_usd: float | None = None
    budget_scope: str = "call"  # "call" | "experiment"
    prior_usd: float = 0.0
    started: float = field(default_factory=time.monotonic)
    finished: bool = False
    stopped: str | None = None  # why submitting ended early (stop request, fatal answer)
    messages: list[str] = field(default_factory=list)
    simulated: bool = False  # offline simulator: "spent" is what the model would have charged

    @property
    def skipped(self) -> int:
        return self.counts.get("skipped_budget", 0)

    @property
    def done(self) -> int:
        return sum(v for k, v in self.counts.items() if k not in (*ACTIVE, "planned", "skipped_budget"))

    def eta_s(self) -> float | None:
        done, todo = self.done, self.total - self.skipped
        if done == 0 or done >= todo or self.stopped:
            return None
        return (time.monotonic() - self.started) / done * (todo - done)

    def money(self) -> str:
        spent = "simulated spend" if self.simulated else "spent"
        text = f"{spent} ${self.spent_usd:.2f}"
        if self.in_flight_usd > 0.005:
            text += f" + in flight ${self.in_flight_usd:.2f}"
        if self.unknown_usd > 0.005:
            text += f" + unknown ${self.unknown_usd:.2f}"
        if self.budget_usd is not None:
            text += f" of ${self.budget_usd:.2f} " + (
                "budget for this call" if self.budget_scope == "call"
                else f"left of the experiment budget (${self.prior_usd:.2f} spent before)")
        return text

    def line(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()) if v and k != "skipped_budget")
        skipped = f" | {self.skipped} skipped (budget)" if self.skipped else ""
        eta = self.eta_s()
        return (f"[{self.done}/{self.total}] {parts}{skipped} | {self.money()}"
                + (f" | ETA {eta:.0f} s" if eta is not None else "")
                + (f" | stopped: {self.stopped}" if self.stopped else ""))


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
    stopped: str | None = None
    fatal: BaseException | None = None  # the 401/402/403 that ended submitting
    still_running: int = 0  # runs left on the server (in flight or unknown) by a stop
    may_cost_usd: float = 0.0  # what those runs may still cost

    def __str__(self) -> str:
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items()))
        money = (f"simulated spend ${self.spent_usd:.2f} (offline simulator: nothing charged)" if self.simulated
                 else f"spent ${self.spent_usd:.2f}")
        return (f"{self.total} planned runs ({parts}); submitted {self.submitted}, re-attached {self.reattached}, "
                f"reused {self.reused}; {money} in {self.wall_s:.1f} s"
                + (f"; stopped: {self.stopped}" if self.stopped else ""))


@dataclass
class _Job:
    req: VideoRequest
    run_id: str
    status: str
    row: dict[str, Any]
    phase: str = "planned"  # planned | submitting | remote | download | done
    hold: Reservation = field(default_factory=Reservation)
    charged: bool = False  # the run's cost is already booked in the store
    stopping: bool = False  # a stop caught it; it is recording where it was


def charged_usd(row: dict[str, Any]) -> float:
    """What a stored run has cost (or, when its fate is open, may cost)."""
    status = row.get("status")
    cost, est = row.get("cost_usd"), row.get("cost_estimate_usd")
    if status in CHARGED:
        return float(cost) if isinstance(cost, (int, float)) and cost == cost else float(est or 0.0)
    if status in (*ACTIVE, "unknown"):
        return float(est or 0.0)
    return 0.0


class _Sweep:
    def __init__(self, *, store: Store, experiment: str, plan: Plan, client: AsyncClient, artifacts: Path | Artifacts,
                 concurrency: int, budget_usd: float | None, experiment_budget_usd: float | None,
                 on_progress: Callable[[SweepProgress], None] | None, cancel: threading.Event,
                 timeout: float | None, batch: bool | str = False) -> None:
        self.store = store
        self.experiment = experiment
        self.plan = plan
        self.client = client
        self.artifacts = artifacts if isinstance(artifacts, Artifacts) else Artifacts(artifacts)
        self.sem = asyncio.Semaphore(max(1, concurrency))
        self.call_budget = budget_usd
        self.experiment_budget = experiment_budget_usd
        self.on_progress = on_progress
        self.cancel = cancel
        self.timeout = timeout
        self.progress = SweepProgress(total=len(plan), simulated=client.backend == "simulator")
        self.money = Budget(None)
        self.started_wall = time.time()
        self._db_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="runflow_nb-store")
        self.fatal: BaseException | None = None
        self.jobs: list[_Job] = []
        # Leases say which process drives a run, renewed while it does (runflow_nb.leases).
        self.leases = LeaseKeeper(store, call=self._db, on_lost=lambda run_id, holder: self.progress.messages.append(
            f"{run_id}: this process stalled past its lease and {holder} took the run over"))
        self.reused = self.reattached = self.submitted = self.skipped = 0
        # Submits and waits go through ``runs``: the client itself, or a Batcher (runflow_nb.batches).
        self.runs: Any = client
        if batch:
            from .batches import Batcher

            self.runs = Batcher(client, mode=batch, cancel=cancel)

    # -- bookkeeping ---------------------------------------------------------------------------

    def _sync_money(self) -> None:
        p, m = self.progress, self.money
        p.spent_usd, p.in_flight_usd, p.unknown_usd = m.spent, m.in_flight, m.unknown

    def _notify(self) -> None:
        self._sync_money()
        if self.on_progress is not None:
            with contextlib.suppress(Exception):  # a broken display must never break a paid sweep
                self.on_progress(self.progress)

    def _set(self, status: str, old: str | None = None) -> None:
        if old is not None:
            self.progress.counts[old] -= 1
        self.progress.counts[status] += 1
        self._notify()

    def _say(self, message: str) -> None:
        self.progress.messages.append(message)
        self._notify()

    async def _db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Store calls run on their own worker threads, so neither a slow database nor video probing
        (which uses the default executor) delays the polls and submits of other runs."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_pool, functools.partial(fn, *args, **kwargs))

    async def _update(self, run_id: str, **fields: Any) -> dict[str, Any]:
        return await self._db(self.store.update_run, run_id, **fields)

    async def _move(self, job: _Job, status: str, **fields: Any) -> None:
        await self._update(job.run_id, status=status, **fields)
        self._set(status, job.status)
        job.status = status

    def _record(self, req: VideoRequest) -> dict[str, Any]:
        return {
            "run_key": req.run_key(), "client_ref": new_client_ref(), "experiment": self.experiment,
            "status": "planned", **req.record(), "created_at": _now(),
            "cost_simulated": self.client.backend == "simulator", "backend": self.client.backend,
            "library_version": __version__, "attempts": 0, "tags": [],
        }

    @property
    def submitting_closed(self) -> bool:
        return self.cancel.is_set() or self.fatal is not None

    # -- before anything is paid ---------------------------------------------------------------

    def _check_artifacts(self) -> None:
        """A folder the videos cannot be written to is found now, not after the runs were paid."""
        if not self.artifacts.is_local:
            return
        where = Path(self.artifacts.root) / safe_name(self.experiment)
        try:
            probe = self.artifacts.local_tmp(f"{safe_name(self.experiment)}/.write-check-{os.getpid()}")
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot write videos to {where} ({exc.strerror or exc}): nothing was submitted; "
                "choose a writable artifacts folder") from None

    async def _claim_all(self) -> None:
        from .plan import balanced_order

        self._check_artifacts()
        requests = list(self.plan)
        rows = await self._db(lambda: [self.store.claim_run(self._record(r))[0] for r in requests])
        self.jobs = [_Job(req=r, run_id=row["run_id"], status=row["status"], row=row)
                     for r, row in zip(requests, rows, strict=True)]
        self.jobs = [self.jobs[i] for i in balanced_order(requests)]
        prior = 0.0
        if self.experiment_budget is not None:
            mine = {j.run_id for j in self.jobs}
            others = await self._db(self.store.runs, self.experiment)
            prior = sum(charged_usd(r) for r in others if r["run_id"] not in mine)
            prior += sum(charged_usd(j.row) for j in self.jobs if j.status in CHARGED)
        caps = [c for c in (self.call_budget,
                            None if self.experiment_budget is None else max(0.0, self.experiment_budget - prior))
                if c is not None]
        cap = min(caps) if caps else None
        self.money = Budget(cap)
        p = self.progress
        p.budget_usd, p.prior_usd = cap, prior
        p.budget_scope = ("experiment" if self.experiment_budget is not None and cap is not None
                          and (self.call_budget is None or cap < self.call_budget) else "call")
        for job in self.jobs:
            job.charged = job.status in CHARGED
            if job.status in (*ACTIVE, "unknown"):  # may be billed already: counts before any new submit
                job.hold = await self.money.hold(job.req.estimate_usd(), "unknown")
            self.progress.counts[job.status] += 1
        self._notify()

    # -- one planned run -------------------------------------------------------------------------

    async def job(self, job: _Job) -> None:
        row = job.row
        if job.status in ("succeeded", "partial_succeeded"):
            self.reused += 1
            await self._ensure_artifact(row)
            return
        if held_elsewhere(row, owner=self.leases.owner):
            got = await self._wait_for_holder(job, row)
            if got is None or got["status"] in ("succeeded", "partial_succeeded"):
                await self.money.settle(job.hold)  # the holder's sweep books it, not this one
                self.reused += got is not None
                return
            row = job.row = got
        try:
            await self._job(job, row)
        finally:
            await self.leases.release(job.run_id)  # ended or left: another process may take it at once

    async def _wait_for_holder(self, job: _Job, row: dict[str, Any]) -> dict[str, Any] | None:
        """Wait (without a slot) while another live process drives the run: until it releases its
        lease (the run has ended there) or stops renewing it (it died: the run is taken over).
        None when the sweep is stopped meanwhile."""
        self._say(f"{job.run_id}: being run by {row.get('owner')}; waiting for it to end there, or to be "
                  "taken over if that process stops renewing its lease")
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
        try:
            async with self.sem:  # the slot bounds runs in flight on the server; downloads come after it
                if self.submitting_closed and job.status not in (*ACTIVE, "unknown", "download_failed"):
                    return
                with _driving(job.run_id) as mine:
                    fresh = await self._db(self.store.get_run, job.run_id) or row
                    if fresh["status"] != job.status:  # another process moved it since the claim
                        self._set(fresh["status"], job.status)
                        job.status = fresh["status"]
                    # The lease is held from here until the run is recorded (download included).
                    if not mine or job.status in ("succeeded", "partial_succeeded") \
                            or not await self.leases.take(job.run_id):
                        await self.money.settle(job.hold)
                        owner = (await self._db(self.store.get_run, job.run_id) or fresh).get("owner")
                        self._say(f"{job.run_id}: taken by {owner}; left to it")
                        return
                    done = await self._drive(job, fresh)
            if done is not None:  # the remote run has ended: its slot is already free for the next one
                succeeded = await self._finish(job, done)
                if succeeded is not None:
                    job.phase = "download"
                    await self._collect(job, succeeded)
            job.phase = "done"
        except asyncio.CancelledError:
            job.stopping = True
            await asyncio.shield(self._stopped(job))
        except Exception as exc:  # every run ends in a definite, explained state
            await self._fail(job, exc)

    async def _fail(self, job: _Job, exc: Exception) -> None:
        if isinstance(exc, FATAL):
            await self._fatal(exc)
        if job.phase == "download":  # billed; only the file is missing: a re-run fetches it again
            await self._move(job, "download_failed", error_code=type(exc).__name__, error_message=_message(exc))
            return
        if isinstance(exc, NotFoundError) and job.phase == "remote":
            # The server says the run does not exist (after repeated 404s): nothing to bill, resolved.
            await self.money.settle(job.hold)
            await self._move(job, "failed", error_code=exc.code or "RUN_NOT_FOUND", cost_usd=0.0,
                             error_message=f"the server no longer knows this run ({exc}); a re-run submits it anew")
            return
        current = await self._db(self.store.get_run, job.run_id) or job.row
        if current.get("remote_id") or job.phase in ("submitting", "remote") or job.status in (*ACTIVE, "unknown"):
            # The server may have the run and bill it: its fate is unknown and it keeps its money.
            await self.money.move(job.hold, "unknown")
            await self._move(job, "unknown", error_code=type(exc).__name__, error_message=_message(exc))
        else:
            await self.money.settle(job.hold)
            await self._move(job, "error", error_code=type(exc).__name__, error_message=_message(exc))

    async def _stopped(self, job: _Job) -> None:
        """Record a run the stop caught half-way: resumable by the next sweep, never lost."""
        try:
            if job.phase == "submitting":
                await self.money.move(job.hold, "unknown")
                await self._move(job, "unknown", error_code="STOPPED",
                                 error_message="stopped while the submit was in flight: the server may have "
                                               "created the run; a re-run looks it up by client_ref first")
            elif job.phase == "remote":
                await self._update(job.run_id, error_code="STOPPED",
                                   error_message="stopped while running on the server (it may still be billed); "
                                                 "a re-run re-attaches it")
            elif job.phase == "download":
                await self._move(job, "download_failed", error_code="STOPPED",
                                 error_message="stopped during the download; a re-run downloads it")
            elif job.status == "unknown" and job.hold.kind:
                pass  # keeps its reservation; still unknown
        except Exception as exc:  # the store itself failing: say so, the next sweep re-reads the server
            self.progress.messages.append(f"{job.run_id}: could not record the stop ({exc})")

    async def _fatal(self, exc: BaseException) -> None:
        if self.fatal is None:
            self.fatal = exc
            self.progress.stopped = str(exc).splitlines()[0]
            await self.money.close()
            self._say(f"stopped submitting: {exc} — runs already on the server finish and are recorded; the "
                      "runs not sent stay planned (fix the key or top up the credit, then run the plan again)")

    async def _drive(self, job: _Job, row: dict[str, Any]) -> Run | None:
        """Submit (or re-attach) and wait; returns the ended remote run (None when nothing was sent)."""
        req, run_id = job.req, job.run_id
        run: Run | None = None
        if job.status in (*ACTIVE, "unknown", "download_failed"):
            job.phase = "remote"
            run = await self._reattach(row)
            if run is not None:
                self.reattached += 1
                if not job.charged:
                    await self.money.move(job.hold, "in_flight")
            elif job.status == "download_failed":
                return None  # billed: never submitted again
            else:
                await self.money.settle(job.hold)  # nothing under that client_ref: it never got there
                job.phase = "planned"
        if run is None:
            if self.submitting_closed:
                return None
            hold = await self.money.reserve(req.estimate_usd())
            if hold is None:
                if self.submitting_closed:  # closed while waiting for room: left planned
                    return None
                self.skipped += 1
                cap = self.money.cap or 0.0
                if self.skipped == 1:
                    self._say(f"budget guard: committed ${self.money.committed:.2f} (spent + in flight + unknown) "
                              f"+ next run ${req.estimate_usd():.2f} would exceed ${cap:.2f}; the remaining runs are "
                              "marked skipped_budget (run again with a larger budget to finish them)")
                await self._move(job, "skipped_budget", error_code="BUDGET",
                                 error_message=f"skipped: the next run would take spending past the budget of "
                                               f"${cap:.2f}")
                return None
            job.hold = hold
            client_ref = row["client_ref"]
            if job.status in ("failed", "canceled", "error", "skipped_budget"):
                client_ref = new_client_ref()  # the old reference names a finished (or refused) attempt
            # Compare-and-set: of several processes sweeping the same plan, exactly one submits.
            if not await self._db(self.store.transition, run_id, from_statuses=[job.status],
                                  expect={"attempts": row.get("attempts") or 0, "owner": self.leases.owner},
                                  status="submitting",
                                  client_ref=client_ref, submitted_at=_now(), owner=self.leases.owner,
                                  attempts=(row.get("attempts") or 0) + 1, error_code=None, error_message=None):
                await self.money.settle(job.hold)
                self._say(f"{run_id}: submitted by another process; left to it")
                return None
            self._set("submitting", job.status)
            job.status, job.phase = "submitting", "submitting"
            if self.submitting_closed:  # the stop came while this run waited for its turn
                await self.money.settle(job.hold)
                await self._move(job, "planned", submitted_at=None)
                job.phase = "planned"
                return None
            try:
                run = await self.runs.submit(req, client_ref=client_ref,
                                             metadata={"experiment": self.experiment, "run_id": run_id})
            except APIError as exc:
                if isinstance(exc, FATAL):  # refused (nothing created): the run stays planned
                    await self.money.settle(job.hold)
                    job.phase = "planned"
                    await self._move(job, "planned", error_code=exc.code or str(exc.status_code),
                                     error_message=_message(exc), submitted_at=None)
                    await self._fatal(exc)
                    return None
                if exc.status_code is not None and 400 <= exc.status_code < 500:  # refused: not billed
                    await self.money.settle(job.hold)
                    job.phase = "planned"
                    await self._move(job, "error", error_code=exc.code or str(exc.status_code),
                                     error_message=_message(exc))
                    return None
                raise
            self.submitted += 1
        job.phase = "remote"
        await self._move(job, run.status if not run.done else "running", remote_id=run.id, owner=self.leases.owner)

        writes: list[asyncio.Task[Any]] = []

        def on_event(event: Any) -> None:
            r: Run = event.run
            if r.status != job.status and not r.done:
                self._set(r.status, job.status)
                job.status = r.status
                writes.append(asyncio.ensure_future(self._update(run_id, status=r.status, started_at=r.started_at)))

        try:
            if not run.done:
                run = await self.runs.wait(run.id, timeout=self.timeout, on_event=on_event)
        finally:
            await asyncio.gather(*writes, return_exceptions=True)
        return run

    async def _reattach(self, row: dict[str, Any]) -> Run | None:
        """The remote run behind a row whose outcome is unknown, by remote id or client_ref."""
        if row.get("remote_id"):
            return await self.client.get(row["remote_id"])
        if row.get("client_ref"):
            return await self.client.find(row["client_ref"])
        return None

    async def _finish(self, job: _Job, run: Run) -> Run | None:
        """Record how the remote run ended; a run with a video is returned for :meth:`_collect`."""
        if run.status not in ("succeeded", "partial_succeeded"):  # failed / canceled: not billed
            await self.money.settle(job.hold)
            await self._move(job, run.status, completed_at=run.completed_at, error_code=run.failure_code,
                             error_message=run.failure_message or f"run {run.status}", cost_usd=0.0)
            return None
        cost = run.cost_usd if run.cost_usd is not None else job.req.estimate_usd()
        await self.money.settle(job.hold, spent=0.0 if job.charged else cost)
        job.charged = True
        out = run.output or Output()
        await self._update(job.run_id, output_url=out.video_url, seed_returned=out.seed,
                           nsfw_detected=out.nsfw_detected, inference_ms=out.inference_ms,
                           started_at=run.started_at, cost_usd=cost, completed_at=run.completed_at or _now(),
                           queue_s=run.queue_s)
        if not run.succeeded:  # billed but no video URL: a server fault, re-fetched by the next sweep
            await self._move(job, "download_failed", error_code="NO_OUTPUT",
                             error_message=f"the server reported {run.status} without any output (no video URL): "
                                           f"a server fault; it is charged ${cost:.2f}; a re-run fetches the run again")
            return None
        return run

    async def _collect(self, job: _Job, run: Run) -> None:
        """Fetch, check and describe the video of a succeeded run."""
        row = await self._db(self.store.get_run, job.run_id)
        assert row is not None
        final = "partial_succeeded" if run.status == "partial_succeeded" else "succeeded"
        try:
            try:
                await self._download(row, run, final)
            except ExpiredURLError:
                # Presigned URLs expire; the run itself may hand out a fresh one.
                fresh = await self.client.get(run.id)
                if not (fresh.succeeded and fresh.output and run.output
                        and fresh.output.video_url != run.output.video_url):
                    raise
                await self._update(job.run_id, output_url=fresh.output.video_url)
                await self._download(row, fresh, final)
        except DownloadError as exc:
            await self._move(job, "download_failed", error_code=type(exc).__name__, error_message=str(exc))
            return
        self._set(final, job.status)
        job.status = final

    async def _download(self, row: dict[str, Any], run: Run, final: str = "succeeded") -> None:
        rel = f"{safe_name(self.experiment)}/{safe_name(row['run_id'])}.mp4"
        dest = self.artifacts.local_tmp(rel)  # local target: the final path; shared storage: a temp file
        _remove_stale_parts(dest, older_than=self.started_wall)
        sha, _size = await self.client.download(run, dest)
        try:
            info = await asyncio.to_thread(_probe_and_poster, dest)
            info["poster_path"] = await asyncio.to_thread(self.artifacts.commit, info["poster_path"], rel[:-4] + ".jpg")
            video_uri = await asyncio.to_thread(self.artifacts.commit, dest, rel)  # a path, or s3://...
        except OSError as exc:
            raise DownloadError(f"could not store the video: {exc}") from exc
        submitted = row.get("submitted_at")
        wall = (_now() - submitted).total_seconds() if isinstance(submitted, datetime) else None
        await self._update(row["run_id"], status=final, video_path=video_uri, video_sha256=sha,
                           wall_s=wall, error_code=None, error_message=None, **info)

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
            await self._download(row, run, row.get("status") or "succeeded")
        except ExpiredURLError as exc:
            self.progress.messages.append(f"{row['run_id']}: video file missing and {exc}")
            await self._update(row["run_id"], error_code="ARTIFACT_MISSING", error_message=str(exc))
        except (DownloadError, NetworkError) as exc:
            self.progress.messages.append(f"{row['run_id']}: video file missing; re-download failed: {exc}")

    # -- the whole sweep ---------------------------------------------------------------------------

    async def _watch_cancel(self, tasks: list[asyncio.Task[None]]) -> None:
        """Turn a stop request from any thread into cancelled waits, at once."""
        while not self.cancel.is_set():
            await asyncio.sleep(0.05)
        self.progress.stopped = self.progress.stopped or "stop requested"
        await self.money.close()
        # Cancel every job that is not already recording its stop, and again while any keeps going
        # (a library deep in a request may swallow one cancellation; a stop must not depend on it).
        while True:
            live = [(t, j) for t, j in zip(tasks, self.jobs, strict=True) if not t.done() and not j.stopping]
            if not live:
                return
            for t, _ in live:
                t.cancel()
            await asyncio.sleep(0.1)

    def _stop_report(self) -> tuple[int, float]:
        left = [j for j in self.jobs if j.phase in ("submitting", "remote") and j.hold.kind]
        return len(left), round(sum(j.hold.usd for j in left), 2)

    async def run(self) -> SweepSummary:
        t0 = time.monotonic()
        self.leases.start()
        try:
            await self._db(self.store.ensure_experiment, self.experiment)
            await self._claim_all()
            tasks = [asyncio.ensure_future(self.job(j)) for j in self.jobs]
            watcher = asyncio.ensure_future(self._watch_cancel(tasks))
            try:
                await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                watcher.cancel()
        finally:
            self.leases.stop()
            self._db_pool.shutdown(wait=False)
            if self.runs is not self.client:
                await self.runs.aclose()
                self.progress.messages.extend(self.runs.messages)
        still, may_cost = self._stop_report() if self.cancel.is_set() else (0, 0.0)
        if self.cancel.is_set():
            planned = self.progress.counts.get("planned", 0)
            self.progress.messages.append(
                f"stopped: nothing more was submitted; {still} run{'s' if still != 1 else ''} still on the server "
                f"(in flight or fate unknown) may cost up to ${may_cost:.2f}; {planned} left planned. "
                "Run the same plan again to collect them (nothing is paid twice).")
        self.progress.finished = True
        self._notify()
        return SweepSummary(total=len(self.plan), counts={k: v for k, v in self.progress.counts.items() if v},
                            spent_usd=self.money.spent, reused=self.reused, reattached=self.reattached,
                            submitted=self.submitted, skipped_budget=self.skipped,
                            wall_s=time.monotonic() - t0, messages=list(self.progress.messages),
                            simulated=self.progress.simulated, stopped=self.progress.stopped, fatal=self.fatal,
                            still_running=still, may_cost_usd=may_cost)


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
                   concurrency: int = 4, budget_usd: float | None = None, experiment_budget_usd: float | None = None,
                   on_progress: Callable[[SweepProgress], None] | None = None,
                   cancel: threading.Event | None = None, timeout: float | None = None,
                   batch: bool | str = False) -> SweepSummary:
    """Run ``plan`` into ``store`` (see the module docstring for the guarantees).

    ``batch`` (``"auto"`` or True) sends runs in batches (:mod:`runflow_nb.batches`), falling back to
    single runs when the model takes none; the guarantees are the same.

    ``budget_usd`` caps what this call commits; ``experiment_budget_usd`` caps everything the
    experiment has spent or may still be billed for in the store, this call included.
    """
    problems = [] if isinstance(concurrency, int) and concurrency >= 1 else [
        Issue("concurrency", f"is {concurrency!r}", "use a whole number of at least 1")]
    for name, value in (("budget_usd", budget_usd), ("experiment budget_usd", experiment_budget_usd)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0):
            problems.append(Issue(name, f"is {value!r}", "use a dollar amount of zero or more, or None"))
    if problems:
        raise ValidationError(problems)
    sweep = _Sweep(store=store, experiment=experiment, plan=plan, client=client, artifacts=artifacts,
                   concurrency=concurrency, budget_usd=budget_usd, experiment_budget_usd=experiment_budget_usd,
                   on_progress=on_progress, cancel=cancel or threading.Event(), timeout=timeout, batch=batch)
    return await sweep.run()
