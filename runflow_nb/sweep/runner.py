"""Sweeps: bounded concurrency, a budget guard, stop on demand, and resume that never pays twice.

A run is written to the store *before* it is submitted (status ``submitting`` with its
``client_ref``) and updated at every change. Re-running a plan therefore

* reuses keys that already succeeded (re-downloading a missing file when its URL still works),
* re-attaches runs whose remote id is known, or finds them by ``client_ref`` when the submit's
  answer was lost, and
* submits only what never reached the server.

A run being driven holds a lease in the store (:mod:`runflow_nb.sweep.leases`), renewed while this
process works on it: a run another live process holds is waited for (and its result reused),
and a run whose holder died is taken over once its lease lapses. How each run's end is recorded
and booked is :mod:`runflow_nb.sweep.recording`; fetching videos is :mod:`runflow_nb.media.fetch`.

Guarantees (each has a test):

* **Budget** = spent + in flight + unknown (see :mod:`runflow_nb.sweep.budget`). An experiment cap also
  holds across processes sweeping the same experiment at once: each claim is checked against what
  the store says the whole experiment has committed. A run whose fate is unknown keeps its reservation; a ``succeeded`` run without a video is charged (a server fault,
  re-fetched by the next sweep), ``partial_succeeded`` is charged and never submitted again.
  Runs are reserved at their estimate until the service charges more than estimated for one; from
  then on at that price, in later calls too (only the runs already in flight when it is first seen
  can pass the cap). A charged run stays charged whatever the server says of it later.
* **Balanced cuts**: runs are submitted in :func:`runflow_nb.plan.balanced_order` and reserve their money
  in that order (:mod:`runflow_nb.sweep.turns`), so a budget that runs out leaves every prompt, model and
  parameter represented, however long each run takes to get ready.
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
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from .._protocol.lookup import SKEW
from ..client import AsyncClient, new_client_ref
from ..errors import APIError, Issue, ValidationError
from ..media.artifacts import Artifacts
from ..media.fetch import VideoFetcher
from ..request import VideoRequest
from ..runs import Run
from .batches import NotSent
from .budget import Budget
from .leases import LeaseKeeper, held_elsewhere
from .lost_batches import resend_lost_batches, went_out_in_a_lost_batch
from .recording import FATAL, Job, Recorder, error_text, now_utc
from .status import ACTIVE, CHARGED, SweepProgress, SweepSummary, charged_usd
from .turns import Turns

if TYPE_CHECKING:
    from ..plan import Plan
    from ..store.runstore import Store

__all__ = ["SweepProgress", "SweepSummary", "charged_usd", "run_plan"]

_CAP_LOOKS = 5  # looks at an experiment cap contested by a concurrent sweep before a run is skipped




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


class _Sweep(Recorder):
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
        self.fetch = VideoFetcher(client=client, artifacts=self.artifacts, experiment=experiment, update=self._update,
                                  note=self.progress.messages.append, started_wall=time.time())
        self._db_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="runflow_nb-store")
        self.fatal: BaseException | None = None
        self.jobs: list[Job] = []
        self.turns = Turns(0)  # reservations by queue position (set with the jobs)
        self._turn: dict[int, int] = {}
        # Leases say which process drives a run, renewed while it does (runflow_nb.sweep.leases).
        self.leases = LeaseKeeper(store, call=self._db, on_lost=lambda run_id, holder: self.progress.messages.append(
            f"{run_id}: this process stalled past its lease and {holder} took the run over"))
        self.reused = self.reattached = self.submitted = self.skipped = 0
        # Submits and waits go through ``runs``: the client itself, or a Batcher (runflow_nb.sweep.batches).
        self.runs: Any = client
        if batch:
            from .batches import Batcher

            self.runs = Batcher(client, mode=batch, cancel=cancel)
            self.runs.on_send = self._record_batch_key

    async def _record_batch_key(self, key: str | None, client_refs: list[str]) -> None:
        """Keep a batch's key with its runs before it is sent (see :mod:`runflow_nb.sweep.lost_batches`);
        None: the batch was refused and its runs go out alone."""
        refs = set(client_refs)
        ids = [j.run_id for j in self.jobs if j.client_ref in refs]
        await self._db(lambda: [self.store.update_run(run_id, batch_key=key) for run_id in ids])

    def _record(self, req: VideoRequest) -> dict[str, Any]:
        return {
            "run_key": req.run_key(), "client_ref": new_client_ref(), "experiment": self.experiment,
            "status": "planned", **req.record(), "created_at": now_utc(),
            "cost_simulated": self.client.backend == "simulator", "backend": self.client.backend,
            "library_version": __version__, "attempts": 0, "tags": [],
        }

    def _metadata(self, run_id: str) -> dict[str, Any]:
        """What a create sends as ``metadata`` (echoed by the server: it tells our run from another
        caller's under the same client_ref)."""
        return {"experiment": self.experiment, "run_id": run_id}

    @property
    def submitting_closed(self) -> bool:
        return self.cancel.is_set() or self.fatal is not None

    # -- before anything is paid ---------------------------------------------------------------

    async def _claim_all(self) -> list[dict[str, Any]]:
        """Claim every run of the plan and set up the money; returns the experiment's stored runs."""
        from ..plan import balanced_order

        self.fetch.check_writable()
        requests = list(self.plan)
        rows = await self._db(lambda: [self.store.claim_run(self._record(r))[0] for r in requests])
        self.jobs = [Job(req=r, run_id=row["run_id"], status=row["status"], row=row)
                     for r, row in zip(requests, rows, strict=True)]
        self.jobs = [self.jobs[i] for i in balanced_order(requests)]
        self.turns, self._turn = Turns(len(self.jobs)), {id(j): i for i, j in enumerate(self.jobs)}
        prior = 0.0
        stored = await self._db(self.store.runs, self.experiment)
        if self.experiment_budget is not None:
            mine = {j.run_id for j in self.jobs}
            prior = sum(charged_usd(r) for r in stored if r["run_id"] not in mine)
            prior += sum(charged_usd(j.row) for j in self.jobs if j.status in CHARGED)
        self._price_from(stored)
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
                job.hold = await self.money.hold(self.reserve_usd(job.req), "unknown")
            self.progress.counts[job.status] += 1
        self._notify()
        return stored

    # -- one planned run -------------------------------------------------------------------------

    async def job(self, job: Job) -> None:
        try:
            await self._job_in_turn(job)
        finally:
            await self._turn_done(job)  # whatever happened, later runs may reserve

    async def _turn_done(self, job: Job) -> None:
        await self.turns.done(self._turn.get(id(job), len(self.jobs)))

    async def _job_in_turn(self, job: Job) -> None:
        row = job.row
        if job.status in ("succeeded", "partial_succeeded"):
            self.reused += 1
            await self._turn_done(job)
            await self.fetch.ensure(row)
            self.progress.flagged += row.get("qa") not in (None, "ok")
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

    async def _wait_for_holder(self, job: Job, row: dict[str, Any]) -> dict[str, Any] | None:
        """Wait (without a slot) while another live process drives the run: until it releases its
        lease (the run has ended there) or stops renewing it (it died: the run is taken over).
        None when the sweep is stopped meanwhile."""
        self._say(f"{job.run_id}: being run by {row.get('owner')}; waiting for it to end there, or to be "
                  "taken over if that process stops renewing its lease")
        await self._turn_done(job)  # a run that waits on another process does not hold up the queue
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

    async def _job(self, job: Job, row: dict[str, Any]) -> None:
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

    async def _drive(self, job: Job, row: dict[str, Any]) -> Run | None:
        """Submit (or re-attach) and wait; returns the ended remote run (None when nothing was sent)."""
        req, run_id = job.req, job.run_id
        run: Run | None = None
        if job.status in (*ACTIVE, "unknown", "download_failed"):
            job.phase = "remote"
            run = await self._reattach(row)
            if run is not None:
                await self._turn_done(job)  # re-attached: it needs no new reservation
                self.reattached += 1
                if not job.charged:
                    await self.money.move(job.hold, "in_flight")
            elif job.status == "download_failed":
                return None  # billed: never submitted again
            elif went_out_in_a_lost_batch(row):  # other keys would pay again: see runflow_nb.sweep.lost_batches
                await self._keep_unknown(job, "LOST_BATCH", "its batch's answer was lost and the run is not listed: "
                                         "it may exist, so it is never sent again; a re-run looks it up again")
                return None
            elif not self._unlisted_long_enough(row):  # "not visible yet" is never "not made"
                await self._keep_unknown(job, "NOT_LISTED_YET", "its create may have reached the server and the run "
                                         "is not listed yet: it keeps its budget share and is not sent again until a "
                                         "look-up sees it, or the list has had time to show it")
                return None
            else:
                await self.money.settle(job.hold)  # not listed long after its send: it never got there
                job.phase = "planned"
        if run is None:
            if self.submitting_closed:
                return None
            await self.turns.wait(self._turn.get(id(job), 0))  # the runs queued before it reserve first
            hold = await self.money.reserve(self.reserve_usd(req))
            await self._turn_done(job)
            if hold is None:
                if self.submitting_closed:  # closed while waiting for room: left planned
                    return None
                self.skipped += 1
                cap = self.money.cap or 0.0
                if self.skipped == 1:
                    self._say(f"budget guard: committed ${self.money.committed:.2f} (spent + in flight + unknown) "
                              f"+ next run ${self.reserve_usd(req):.2f} would exceed ${cap:.2f}; the remaining runs are "
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
                                  status="submitting", batch_key=None,
                                  client_ref=client_ref, submitted_at=now_utc(), owner=self.leases.owner,
                                  attempts=(row.get("attempts") or 0) + 1, error_code=None, error_message=None):
                await self.money.settle(job.hold)
                self._say(f"{run_id}: submitted by another process; left to it")
                return None
            self._set("submitting", job.status)
            job.status, job.phase, job.client_ref, job.sent = "submitting", "submitting", client_ref, False
            if self.submitting_closed:  # the stop came while this run waited for its turn
                await self.money.settle(job.hold)
                await self._move(job, "planned", submitted_at=None)
                job.phase = "planned"
                return None
            if not await self._within_experiment_cap(job):  # another sweep of it took the rest meanwhile
                await self.money.settle(job.hold)
                job.phase = "planned"
                if self.submitting_closed:  # a stop came while it looked: it stays planned, not skipped
                    await self._move(job, "planned", submitted_at=None)
                    return None
                self.skipped += 1
                await self._move(job, "skipped_budget", submitted_at=None, error_code="BUDGET",
                                 error_message=f"skipped: other sweeps of this experiment committed its budget of "
                                               f"${self.experiment_budget or 0:.2f} meanwhile")
                return None
            job.sent = True
            try:
                run = await self.runs.submit(req, client_ref=client_ref, metadata=self._metadata(run_id))
            except NotSent:  # stopped while gathered for a batch: it never left, it stays planned
                await self.money.settle(job.hold)
                job.phase = "planned"
                await self._move(job, "planned", submitted_at=None)
                return None
            except APIError as exc:
                if isinstance(exc, FATAL):  # refused (nothing created): the run stays planned
                    await self.money.settle(job.hold)
                    job.phase = "planned"
                    await self._move(job, "planned", error_code=exc.code or str(exc.status_code),
                                     error_message=error_text(exc), submitted_at=None)
                    await self._fatal(exc)
                    return None
                if exc.status_code is not None and 400 <= exc.status_code < 500:  # refused: not billed
                    await self.money.settle(job.hold)
                    job.phase = "planned"
                    await self._move(job, "error", error_code=exc.code or str(exc.status_code),
                                     error_message=error_text(exc))
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
            if run.status in ("succeeded", "partial_succeeded") and run.output is None:
                # ended in a summary (a batch's answer): read the run itself, past a lagging 404
                run = await self.client.get(run.id, retry_not_found=True)
                if not run.done:  # the summary ran ahead of the run: it is not over (nor billed) yet
                    run = await self.client.wait(run.id, timeout=self.timeout, on_event=on_event)
        finally:
            await asyncio.gather(*writes, return_exceptions=True)
        return run

    async def _within_experiment_cap(self, job: Job) -> bool:
        """With an experiment cap, everything the store says the experiment has spent or may be billed
        for (this run's claim included) must fit, read after the claim was written: of two processes
        claiming at once, at least one sees the other's claim. Seeing a concurrent claim push it past
        the cap, this run steps back (planned, its lease kept) for a random pause and looks again, so
        two polite sweeps do not both give up; past the cap without a contender, it is skipped."""
        cap = self.experiment_budget
        if cap is None:
            return True
        for attempt in range(_CAP_LOOKS):
            rows = await self._db(self.store.runs, self.experiment)
            if sum(charged_usd(r) for r in rows) <= cap + 1e-9:
                return True
            contested = any(r["status"] == "submitting" and r.get("owner") != self.leases.owner
                            and r["run_id"] != job.run_id for r in rows)
            if not contested or attempt == _CAP_LOOKS - 1 or self.submitting_closed:
                return False
            await self._update(job.run_id, status="planned")
            await asyncio.sleep(random.uniform(0.01, 0.05) * 2**attempt)
            await self._update(job.run_id, status="submitting")
        return False

    def _unlisted_long_enough(self, row: dict[str, Any]) -> bool:
        """Whether a create that no look-up found was sent so long ago (more than the list's lag) that
        its run would be listed if it had been made. A row without a send time was never sent: the
        send time is written in the same step that marks a run ``submitting``, before any create."""
        sent = row.get("submitted_at")
        return not isinstance(sent, datetime) or (now_utc() - sent).total_seconds() > self.client._proto.list_lag_s

    async def _keep_unknown(self, job: Job, code: str, message: str) -> None:
        """A run that may exist and is not seen: ``unknown``, its reservation kept, never re-sent now."""
        if job.hold.kind != "unknown":
            await self.money.move(job.hold, "unknown")
        if job.status != "unknown":
            await self._move(job, "unknown", error_code=code, error_message=message)
        else:
            await self._update(job.run_id, error_code=code, error_message=message)
        job.phase = "done"

    async def _reattach(self, row: dict[str, Any]) -> Run | None:
        """The remote run behind a row whose outcome is unknown, by remote id or client_ref."""
        if row.get("remote_id"):
            # A run we know was created: a passing 404 is read again before "gone" frees its money.
            return await self.client.get(row["remote_id"], retry_not_found=True)
        if row.get("client_ref"):
            # The experiment tells our run from another caller's under the same client_ref; run_id is not
            # asked for: runs created in a batch echo the batch's metadata, which cannot carry it.
            sent = row.get("submitted_at")
            recent = not self._unlisted_long_enough(row)
            since = sent - SKEW if isinstance(sent, datetime) else None  # read the list back to the create
            return await self.client.find(row["client_ref"], metadata={"experiment": self.experiment}, grace=recent,
                                          since=since)
        return None

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

    async def _reconcile(self) -> None:
        """Read the server's runs of this plan back (see :mod:`runflow_nb.sweep.reconcile`); one line says
        what was found."""
        from .reconcile import reconcile

        mine = {j.run_id for j in self.jobs}
        rows = await self._db(self.store.runs, self.experiment)
        sent = [r["submitted_at"] for r in rows if r["run_id"] in mine and isinstance(r.get("submitted_at"), datetime)]
        if not sent:
            return
        try:
            found = await reconcile(store=self.store, experiment=self.experiment, client=self.client, since=min(sent),
                                    rows=rows)
        except Exception as exc:  # the sweep's own outcome stands; say why the read-back failed
            self.progress.messages.append(f"reconcile: could not compare with the server ({exc})")
            return
        line = found.line()
        if line:  # nothing listed: nothing to say
            self.progress.messages.append(line)

    def _stop_report(self) -> tuple[int, float]:
        left = [j for j in self.jobs if j.phase in ("submitting", "remote") and j.hold.kind]
        return len(left), round(sum(j.hold.usd for j in left), 2)

    async def run(self) -> SweepSummary:
        t0 = time.monotonic()
        self.leases.start()
        try:
            await self._db(self.store.ensure_experiment, self.experiment)
            stored = await self._claim_all()
            await resend_lost_batches(self, stored)  # once the money is set up
            tasks = [asyncio.ensure_future(self.job(j)) for j in self.jobs]
            watcher = asyncio.ensure_future(self._watch_cancel(tasks))
            try:
                await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                watcher.cancel()
            await self._reconcile()
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
                            still_running=still, may_cost_usd=may_cost, flagged=self.progress.flagged)


async def run_plan(*, store: Store, experiment: str, plan: Plan, client: AsyncClient, artifacts: Path | Artifacts,
                   concurrency: int = 4, budget_usd: float | None = None, experiment_budget_usd: float | None = None,
                   on_progress: Callable[[SweepProgress], None] | None = None,
                   cancel: threading.Event | None = None, timeout: float | None = None,
                   batch: bool | str = False) -> SweepSummary:
    """Run ``plan`` into ``store`` (see the module docstring for the guarantees).

    ``batch`` (``"auto"`` or True) sends runs in batches (:mod:`runflow_nb.sweep.batches`), falling back to
    single runs when the model takes none; the guarantees are the same.

    ``budget_usd`` caps what this call commits; ``experiment_budget_usd`` caps everything the
    experiment has spent or may still be billed for in the store, this call included.
    """
    problems = [] if isinstance(concurrency, int) and not isinstance(concurrency, bool) and concurrency >= 1 else [
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
