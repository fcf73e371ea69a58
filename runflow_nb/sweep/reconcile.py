"""Reconciling an experiment with the server: the table never shows less than was billed.

At the end of every sweep, and on ``exp.reconcile()``, the server's run list is read back (newest
first, paged, bounded) to the oldest send of the experiment's runs, and every run that carries
this experiment's metadata is matched with the store:

* known by its id: nothing to do;
* the run of a stored row that has no id yet (``unknown``, or sent and never answered): a
  positive sighting; its id is recorded, and the next sweep re-attaches it like any run in flight;
* a second run under a row's client_ref, or a run made under an earlier attempt's client_ref of a
  row (its metadata names the row): a run the server made and bills that the table did not show.
  It is recorded as a row of status ``duplicate`` with what it costs (the server's cost, else the
  estimate of the row it copies), so ``exp.table()``, the experiment's budget guard and the money
  it reports count it. Its ``parent_run_id`` names the row it copies; it is never sent again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._protocol.lookup import DEEP_PAGES, SKEW
from ..runs import Run
from .recording import now_utc
from .status import ACTIVE

if TYPE_CHECKING:
    from ..client import AsyncClient
    from ..store.runstore import Store

__all__ = ["Reconciled", "reconcile"]

_COPIED = ("prompt", "seed", "duration", "resolution", "aspect_ratio", "images", "model", "audio_setting",
           "source_video", "enable_safety_checker", "cost_estimate_usd", "params", "image_sha256", "backend",
           "cost_simulated")


@dataclass
class Reconciled:
    """What a reconcile found: runs listed for the experiment, sightings, and runs the table lacked."""

    listed: int = 0
    held: int = 0  # rows of the experiment in the table (store) when it was compared
    sighted: int = 0
    extra_runs: int = 0
    extra_usd: float = 0.0
    error: str | None = None

    def line(self) -> str:
        """One line saying what was found; empty when the server listed none of the experiment's runs
        (nothing was read back, so nothing is claimed)."""
        if self.error:
            return f"reconcile: could not read the server's run list ({self.error}); run exp.reconcile() later"
        if not self.listed:
            return ""
        text = (f"reconciled with the server: {self.listed} run(s) of this experiment listed against "
                f"{self.held} row(s) in the table")
        if self.sighted:
            text += f", {self.sighted} unknown run(s) seen there (their ids are recorded)"
        if self.extra_runs:
            return (text + f"; {self.extra_runs} run(s) the table lacked were made and billed (about "
                    f"${self.extra_usd:.2f}): recorded as status 'duplicate' and counted in the spend")
        return text + "; every listed run is in the table"


async def reconcile(*, store: Store, experiment: str, client: AsyncClient, since: datetime | None = None,
                    max_pages: int = DEEP_PAGES, rows: list[dict[str, Any]] | None = None) -> Reconciled:
    """Match the server's runs of ``experiment`` with the store (see the module docstring); ``rows``:
    the experiment's stored runs when the caller has just read them."""
    if rows is None:
        rows = await asyncio.to_thread(store.runs, experiment)
    found = Reconciled(held=len(rows))
    sent = [r["submitted_at"] for r in rows if isinstance(r.get("submitted_at"), datetime)]
    start = since or (min(sent) if sent else None)
    if start is None:
        return found
    try:
        items = await client._run(client._proto.recent(since=start - SKEW, max_pages=max_pages))
    except Exception as exc:  # a reconcile that cannot read the list changes nothing
        found.error = str(exc)[:200]
        return found
    known = {str(r["remote_id"]) for r in rows if r.get("remote_id")}
    by_ref = {str(r["client_ref"]): r for r in rows if r.get("client_ref")}
    by_id = {str(r["run_id"]): r for r in rows}
    dupes = {str(r["remote_id"]): r for r in rows if r.get("status") == "duplicate" and r.get("remote_id")}
    for item in items:
        meta = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
        if meta.get("experiment") != experiment:
            continue
        found.listed += 1
        run_id = str(item["id"])
        if run_id in known:
            await asyncio.to_thread(_price_duplicate, store, dupes.get(run_id), Run.parse(item))
            continue
        row = by_ref.get(str(item.get("client_ref"))) or by_id.get(str(meta.get("run_id")))
        if row is None:  # no row of this store names it (another store's experiment of the same name)
            continue
        run = Run.parse(item)
        if run.status in ("failed", "canceled") and not run.cost_usd:
            continue  # an earlier attempt that ended unbilled (a failed run is sent again under a new client_ref)
        if row is not None and not row.get("remote_id") and row.get("client_ref") == item.get("client_ref") \
                and row.get("status") in (*ACTIVE, "unknown"):
            await asyncio.to_thread(store.update_run, row["run_id"], remote_id=run_id)
            row["remote_id"] = run_id
            known.add(run_id)
            found.sighted += 1
            continue
        cost = await asyncio.to_thread(_record_duplicate, store, experiment, run, row)
        known.add(run_id)
        found.extra_runs += 1
        found.extra_usd = round(found.extra_usd + cost, 6)
    return found


def _price_duplicate(store: Store, row: dict[str, Any] | None, run: Run) -> None:
    """A duplicate recorded while it ran gets its real cost once the server reports it."""
    if row is not None and row.get("cost_usd") is None and run.done and run.cost_usd is not None:
        store.update_run(row["run_id"], cost_usd=run.cost_usd)


def _record_duplicate(store: Store, experiment: str, run: Run, row: dict[str, Any] | None) -> float:
    """Store a run the table lacked as a ``duplicate`` row; returns what it costs (or may cost)."""
    base = {k: row.get(k) for k in _COPIED if row is not None and row.get(k) is not None}
    cost = run.cost_usd if run.cost_usd is not None and run.done else None
    record: dict[str, Any] = {
        **base, "experiment": experiment, "status": "duplicate", "remote_id": run.id,
        "run_key": f"{row['run_key'] if row else 'unplanned'}#duplicate-{run.id}",
        "parent_run_id": row["run_id"] if row else None, "cost_usd": cost,
        "created_at": run.created_at or now_utc(), "submitted_at": run.created_at, "attempts": 1, "tags": [],
        "error_code": "DUPLICATE",
        "error_message": f"a run the server made and bills (status {run.status}) that the table did not show: "
                         f"{'a second run for ' + str(row['run_id']) if row else 'no planned run names it'}; "
                         "it is counted in the spend and never sent again",
    }
    stored, _ = store.claim_run(record)
    if cost is not None and stored.get("cost_usd") != cost:
        store.update_run(stored["run_id"], cost_usd=cost)
    return float(cost if cost is not None else base.get("cost_estimate_usd") or 0.0)
