"""Batches whose create's answer was lost, settled when a sweep resumes, before it sends anything.

Each run of a batch records the batch's ``Idempotency-Key`` (``batch_key``) just before the batch
is sent. When the answer is lost and a later look-up by client_ref lists none of its runs, sending
them again one by one, or in another batch, would carry other keys: a server that did make the
batch would make, and bill, its runs a second time. So a resumed sweep sends the same runs again as
the same batch (same body, same key): a server that made it replays it, and the runs are recorded
as made; one that did not makes it now. Runs of a lost batch that cannot all be sent again together
(one of them is listed after all, or is not part of this plan) are never sent again: they stay
unknown, their money reserved, and each later sweep looks them up again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import RunflowError

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
            if not any(found.values()):
                runs = await _batcher(sweep).resend(
                    jobs[0].req.model, [(j.req, j.row["client_ref"], sweep._metadata(j.run_id)) for j in jobs])
                found = {j.run_id: runs.get(j.row["client_ref"]) for j in jobs}
                sweep._say(f"sent the {len(jobs)} run(s) of a batch whose answer was lost again, whole and under its "
                           "own key: a server that had made it replays it, so nothing is paid twice")
        except RunflowError as exc:
            sweep._say(f"{len(jobs)} run(s) of a batch whose answer was lost stay unknown ({exc}); a re-run tries again")
            continue
        for job in jobs:
            run = found.get(job.run_id)
            if run is not None:  # known by id from now on: the sweep re-attaches it like any run in flight
                job.row = await sweep._update(job.run_id, remote_id=run.id)


def _batcher(sweep: Any) -> Any:
    from .batches import Batcher

    return sweep.runs if isinstance(sweep.runs, Batcher) else Batcher(sweep.client, cancel=sweep.cancel)
