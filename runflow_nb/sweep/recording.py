"""How a sweep records its runs: counts for the progress display, store writes, and how each run ends.

:class:`Recorder` is the bookkeeping half of the sweep (:mod:`runflow_nb.sweep.runner` drives the runs):
every change of a run's status goes to the store and to the live counts, and every ending books
the run's money (:mod:`runflow_nb.sweep.budget`):

* ended unbilled (failed, canceled, refused): the reservation is handed back;
* ended billed: the real cost (or the estimate when none is reported) is spent; a ``succeeded``
  run without a video is charged and marked ``download_failed`` (a re-run fetches it again);
* fate unknown (an error while the server may have the run, a create no look-up sees yet, a run
  the server answers 404 for although we hold its id): it stays ``unknown`` and keeps its
  reservation until a later sweep resolves it;
* caught by a stop: recorded where it was, resumable, never lost;
* a fatal answer (401/403, 402 ``INSUFFICIENT_CREDIT``) closes the budget: nothing more is submitted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..client import AsyncClient
from ..errors import (
    AuthenticationError,
    DownloadError,
    ExpiredURLError,
    InsufficientCreditError,
    NotFoundError,
)
from ..media.fetch import VideoFetcher
from ..request import VideoRequest
from ..runs import Output, Run
from .budget import Budget, Reservation
from .status import ACTIVE, SweepProgress

if TYPE_CHECKING:
    from ..store.runstore import Store

__all__ = ["FATAL", "Job", "Recorder", "error_text", "now_utc"]

FATAL = (AuthenticationError, InsufficientCreditError)  # end submitting at the first one


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def error_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:2000]


@dataclass
class Job:
    """One planned run as the sweep drives it: where it is (``phase``) and the money it holds."""

    req: VideoRequest
    run_id: str
    status: str
    row: dict[str, Any]
    phase: str = "planned"  # planned | submitting | remote | download | done
    hold: Reservation = field(default_factory=Reservation)
    client_ref: str | None = None  # the reference of the create being sent (phase submitting)
    sent: bool = False  # its create was handed to the client (it may have reached the server)
    charged: bool = False  # the run's cost is already booked in the store
    stopping: bool = False  # a stop caught it; it is recording where it was


class Recorder:
    """Store writes, live counts and run endings of one sweep (the sweep sets these attributes)."""

    store: Store
    client: AsyncClient
    fetch: VideoFetcher
    money: Budget
    progress: SweepProgress
    on_progress: Callable[[SweepProgress], None] | None
    fatal: BaseException | None
    runs: Any  # the client, or a batcher (runflow_nb.sweep.batches) that knows which submits never left
    experiment: str
    _db_pool: concurrent.futures.ThreadPoolExecutor
    price_factor: float = 1.0  # the most the service charged over an estimate: later reservations scale by it

    def reserve_usd(self, req: Any) -> float:
        """What a run of ``req`` is reserved at: its estimate, scaled up once the service has charged
        more than estimated for a run (prices change; the documents disagree), so the runs sent
        after that are held at what they will really cost and the budget stays a ceiling."""
        return round(req.estimate_usd() * self.price_factor, 6)

    def _price_from(self, rows: list[dict[str, Any]]) -> None:
        """Start from the highest price this experiment's earlier runs were charged over their
        estimate: a price the service asked once holds for every later call, not only this one."""
        ratios = [float(r["cost_usd"]) / float(r["cost_estimate_usd"]) for r in rows
                  if isinstance(r.get("cost_usd"), (int, float)) and isinstance(r.get("cost_estimate_usd"), (int, float))
                  and r["cost_estimate_usd"] > 0 and r["cost_usd"] > 0]
        factor = max(ratios, default=1.0)
        if factor > self.price_factor + 1e-9:
            self.price_factor = factor
            self._say(f"earlier runs of {self.experiment} were charged up to {factor:.2f}× their estimate; runs are "
                      "reserved at that price, so the budget still holds")

    def _price_seen(self, job: Job, cost: float) -> None:
        est = job.req.estimate_usd()
        if est <= 0 or cost <= est * self.price_factor + 1e-9:
            return
        self.price_factor = cost / est
        self._say(f"{job.run_id}: the service charged ${cost:.2f} for a run estimated at ${est:.2f}; the runs sent "
                  f"from now on are reserved at {self.price_factor:.2f}× their estimate, so the budget still holds")

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

    async def _move(self, job: Job, status: str, **fields: Any) -> None:
        await self._update(job.run_id, status=status, **fields)
        self._set(status, job.status)
        job.status = status

    async def _fail(self, job: Job, exc: Exception) -> None:
        if isinstance(exc, FATAL):
            await self._fatal(exc)
        if job.phase == "download":  # billed; only the file is missing: a re-run fetches it again
            await self._move(job, "download_failed", error_code=type(exc).__name__, error_message=error_text(exc))
            return
        if isinstance(exc, NotFoundError) and job.phase == "remote" and job.charged:
            # A run this experiment was charged for (its video never stored) that the server no longer
            # serves: it stays charged and is never sent again; only its video is out of reach.
            await self.money.settle(job.hold)
            await self._move(job, "download_failed", error_code=exc.code or "RUN_NOT_FOUND",
                             error_message=f"the server no longer serves this run ({exc}); it was charged "
                                           f"${float(job.row.get('cost_usd') or 0):.2f} and is not sent again, but "
                                           "its video can no longer be fetched")
            return
        if isinstance(exc, NotFoundError) and job.phase == "remote":
            # We hold the run's id from the server (a 201, a listed run): it exists, and a 404 is a read
            # lagging behind the create, never an ending. It keeps its money; a later sweep reads it again.
            await self.money.move(job.hold, "unknown")
            await self._move(job, "unknown", error_code=exc.code or "RUN_NOT_FOUND",
                             error_message=f"the server does not show this run yet ({exc}); it was created (its id "
                                           "came from the server), so it keeps its budget share and a re-run reads "
                                           "it again — it is never sent anew")
            return
        current = await self._db(self.store.get_run, job.run_id) or job.row
        if current.get("remote_id") or job.phase in ("submitting", "remote") or job.status in (*ACTIVE, "unknown"):
            # The server may have the run and bill it: its fate is unknown and it keeps its money.
            await self.money.move(job.hold, "unknown")
            await self._move(job, "unknown", error_code=type(exc).__name__, error_message=error_text(exc))
        else:
            await self.money.settle(job.hold)
            await self._move(job, "error", error_code=type(exc).__name__, error_message=error_text(exc))

    async def _stopped(self, job: Job) -> None:
        """Record a run the stop caught half-way: resumable by the next sweep, never lost."""
        try:
            if job.phase == "submitting" and self._never_sent(job):
                await self.money.settle(job.hold)  # not sent yet, or still gathered for a batch
                job.phase = "planned"
                await self._move(job, "planned", submitted_at=None)
            elif job.phase == "submitting":
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

    def _never_sent(self, job: Job) -> bool:
        """True when the submit surely never left: not yet handed to the client (claimed, still
        checking the experiment cap), or a batcher still gathering it; a single create may have
        reached the server once it started."""
        if not job.sent:
            return True
        unsent = getattr(self.runs, "unsent", None)
        return job.client_ref is not None and unsent is not None and bool(unsent(job.client_ref))

    async def _fatal(self, exc: BaseException) -> None:
        if self.fatal is None:
            self.fatal = exc
            self.progress.stopped = str(exc).splitlines()[0]
            await self.money.close()
            self._say(f"stopped submitting: {exc} — runs already on the server finish and are recorded; the "
                      "runs not sent stay planned (fix the key or top up the credit, then run the plan again)")

    async def _finish(self, job: Job, run: Run) -> Run | None:
        """Record how the remote run ended; a run with a video is returned for :meth:`_collect`."""
        if run.status not in ("succeeded", "partial_succeeded") and job.charged:
            # Charged earlier (it succeeded; its video was not stored), now reported otherwise: what was
            # paid stays paid, and the run is never sent again.
            await self.money.settle(job.hold)
            await self._move(job, "download_failed", error_code=run.failure_code or run.status.upper(),
                             error_message=f"the server now reports this run {run.status}; it was charged "
                                           f"${float(job.row.get('cost_usd') or 0):.2f} and is not sent again, but "
                                           "its video can no longer be fetched")
            return None
        if run.status not in ("succeeded", "partial_succeeded"):  # failed / canceled: not billed...
            cost = run.cost_usd or 0.0  # ... unless the server says it charged for it after all
            await self.money.settle(job.hold, spent=cost)
            job.charged = cost > 0
            await self._move(job, run.status, completed_at=run.completed_at, error_code=run.failure_code,
                             error_message=run.failure_message or f"run {run.status}", cost_usd=cost)
            return None
        cost = run.cost_usd if run.cost_usd is not None else job.req.estimate_usd()
        self._price_seen(job, cost)
        await self.money.settle(job.hold, spent=0.0 if job.charged else cost)
        job.charged = True
        out = run.output or Output()
        await self._update(job.run_id, output_url=out.video_url, seed_returned=out.seed,
                           nsfw_detected=out.nsfw_detected, inference_ms=out.inference_ms,
                           started_at=run.started_at, cost_usd=cost, completed_at=run.completed_at or now_utc(),
                           queue_s=run.queue_s)
        if not run.succeeded:  # billed but no video URL: a server fault, re-fetched by the next sweep
            await self._move(job, "download_failed", error_code="NO_OUTPUT",
                             error_message=f"the server reported {run.status} without any output (no video URL): "
                                           f"a server fault; it is charged ${cost:.2f}; a re-run fetches the run again")
            return None
        return run

    async def _collect(self, job: Job, run: Run) -> None:
        """Fetch, check and describe the video of a succeeded run."""
        row = await self._db(self.store.get_run, job.run_id)
        assert row is not None
        final = "partial_succeeded" if run.status == "partial_succeeded" else "succeeded"
        try:
            try:
                qa = await self.fetch.download(row, run, final)
            except ExpiredURLError:
                # Presigned URLs expire; the run itself may hand out a fresh one.
                fresh = await self.client.get(run.id, retry_not_found=True)
                if not (fresh.succeeded and fresh.output and run.output
                        and fresh.output.video_url != run.output.video_url):
                    raise
                await self._update(job.run_id, output_url=fresh.output.video_url)
                qa = await self.fetch.download(row, fresh, final)
        except DownloadError as exc:
            await self._move(job, "download_failed", error_code=type(exc).__name__, error_message=str(exc))
            return
        self.progress.flagged += qa is not None and qa != "ok"
        self._set(final, job.status)
        job.status = final
