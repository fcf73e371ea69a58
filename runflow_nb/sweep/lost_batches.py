"""Batches whose create's answer was lost, settled when a sweep resumes, before it sends anything.

Each run of a batch records the batch's ``Idempotency-Key`` (``batch_key``) just before the batch
is sent. When the answer is lost and a later look-up by client_ref lists none of its runs, sending
them again one by one, or in another batch, would carry other keys: a server that did make the
batch would make, and bill, its runs a second time. "Not visible yet" is never "not made": while
the batch was sent less than the list's lag ago (``list_lag_s``), its runs stay ``unknown`` with
their money held and nothing is sent. Only once that has passed and a look-up read back past the
send still lists none of them is the batch sent again — whole, same body, same key (a server that
made it replays it) — and only if the budget holds it: its runs' reservations must fit the cap
before anything goes out (a resume with ``budget_usd=0`` sends nothing). Runs of a lost batch that
cannot all be sent again together (one of them is listed after all, or is not part of this plan)
are never sent again: they stay unknown, their money reserved, and each later sweep looks them up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import RunflowError
from .recording import now_utc

if TYPE_CHECKING:
    from .recording import Job

__all__ = ["resend_lost_batches", "went_out_in_a_lost_batch"]


def went_out_in_a_lost_batch(row: dict[str, Any]) -> bool:
    """True for a run whose create went out in a batch and whose run is still not known by id."""
    return bool(row.get("batch_key")) and not row.get("remote_id")


async def resend_lost_batches(sweep: Any, stored: list[dict[str, Any]]) -> None:
    """Look up, then send again whole, every lost batch this sweep holds all the runs of."""
    groups: dict[str, list[Job]] = {}
    for job in sweep.jobs:
        if job.status in ("unknown", "submitting") and went_out_in_a_lost_batch(job.row):
            groups.setdefault(job.row["batch_key"], []).append(job)
    for key, jobs in groups.items():
        if sweep.cancel.is_set():
            return
        members = {r["run_id"] for r in stored if r.get("batch_key") == key}
        if members != {j.run_id for j in jobs} or len({j.req.model for j in jobs}) != 1:
            sweep._say(f"{len(jobs)} run(s) of a batch whose answer was lost are not all in this plan (or one is "
                       "already listed): they stay unknown and are never sent again; run the plan that made them")
            continue
        try:
            found = {j.run_id: await sweep._reattach(j.row) for j in jobs}
            if not any(found.values()) and not all(sweep._unlisted_long_enough(j.row) for j in jobs):
                sweep._say(f"{len(jobs)} run(s) of a batch whose answer was lost are not listed yet: they may exist, "
                           "so they stay unknown with their money held and nothing is sent again")
                continue
            if not any(found.values()) and not sweep.money.fits():
                sweep._say(f"{len(jobs)} run(s) of a batch whose answer was lost were not sent again: the budget "
                           f"(${sweep.money.cap or 0:.2f}) does not hold them; they stay unknown")
                continue
            if not any(found.values()):
                for job in jobs:  # reserved first (their held share, checked above), sent second
                    await sweep.money.move(job.hold, "in_flight")
                    job.row = await sweep._update(job.run_id, submitted_at=now_utc())  # the lag counts from here
                runs = await _batcher(sweep).resend(
                    jobs[0].req.model, [(j.req, j.row["client_ref"], sweep._metadata(j.run_id)) for j in jobs])
                found = {j.run_id: runs.get(j.row["client_ref"]) for j in jobs}
                sweep._say(f"sent the {len(jobs)} run(s) of a batch whose answer was lost again, whole and under its "
                           "own key: a server that had made it replays it, so nothing is paid twice")
        except RunflowError as exc:
            for job in jobs:  # may have been made: the money stays held
                if job.hold.kind == "in_flight":
                    await sweep.money.move(job.hold, "unknown")
            sweep._say(f"{len(jobs)} run(s) of a batch whose answer was lost stay unknown ({exc}); a re-run tries again")
            continue
        for job in jobs:
            run = found.get(job.run_id)
            if run is not None:  # known by id from now on: the sweep re-attaches it like any run in flight
                job.row = await sweep._update(job.run_id, remote_id=run.id)


def _batcher(sweep: Any) -> Any:
    from .batches import Batcher

    return sweep.runs if isinstance(sweep.runs, Batcher) else Batcher(sweep.client, cancel=sweep.cancel)
