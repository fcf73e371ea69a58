"""The queue and history of a run store: every run in flight and recently ended, read from the
store, so runs of other cells, background sweeps, other processes and earlier kernels all show.

>>> rows = queue_rows(exp.store, experiment="horses")     # doctest: +SKIP
>>> [(r.status, r.driver, r.cost_usd) for r in rows]      # doctest: +SKIP

Runflow has no public cancel (admin only; it neither stops the provider's job nor refunds), and
the API reports no queue position. So :func:`stop_sweep_of` is the honest "cancel": it stops the
background sweep of this kernel that would send or drive the run. A run not sent yet is never sent
(it stays ``planned``); a run already on the server keeps running there and is billed if it
succeeds, and the store still records it (run the plan again to collect it). ``position`` is the
run's place among this store's runs still waiting to be sent, never a server queue position.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..sweep.background import SweepHandle, live_handles
from ..sweep.leases import process_owner
from ..sweep.status import ACTIVE, charged_usd

if TYPE_CHECKING:
    from ..store.runstore import Store

__all__ = ["OPEN", "QueueRow", "handle_for", "queue_rows", "stop_sweep_of"]

OPEN = ("planned", "submitting", *ACTIVE[1:], "unknown")
"""Statuses of runs not ended yet (waiting to be sent, on their way, on the server, or of unknown fate)."""

NO_CANCEL = ("Runflow has no public cancel: a run already sent keeps running on the server and is billed if it "
             "succeeds; the store records it when it ends")


@dataclass(frozen=True)
class QueueRow:
    """One run as the queue panel shows it."""

    run_id: str
    experiment: str
    status: str
    model: str
    prompt: str
    seed: int | None
    backend: str
    driver: str  # "this kernel", "another process (host:pid)" or "" (no one drives it now)
    position: int | None  # place among this store's runs waiting to be sent (1 = next); None otherwise
    elapsed_s: float | None  # since it was sent (to its end, once ended)
    expected_s: float | None  # median wall time of this store's recent finished runs of the same model
    cost_usd: float  # charged (ended) or reserved (in flight, unknown)
    cost_kind: str  # "charged", "reserved", "simulated" or "" (nothing to pay)
    remote_id: str | None
    ended: bool
    error: str
    stoppable: bool  # a background sweep of this kernel sends or drives it: stop_sweep_of() stops it

    @property
    def remaining_s(self) -> float | None:
        if self.ended or self.expected_s is None or self.elapsed_s is None:
            return None
        return max(0.0, self.expected_s - self.elapsed_s)


def _seconds(a: Any, b: Any) -> float | None:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return max(0.0, (b - a).total_seconds())
    return None


def _driver(row: dict[str, Any], now: datetime, mine: str) -> str:
    owner, expires = row.get("owner"), row.get("lease_expires_at")
    if not owner or not isinstance(expires, datetime) or expires <= now:
        return ""
    if owner == mine:
        return "this kernel"
    host, _, rest = str(owner).partition(":")
    pid = rest.partition(":")[0]
    return f"another process ({host}:{pid})"


def handle_for(row: dict[str, Any], handles: list[SweepHandle] | None = None) -> SweepHandle | None:
    """The live background sweep of this process whose plan holds ``row``'s run, if any."""
    for handle in handles if handles is not None else live_handles():
        if (not handle.done and handle.experiment.name == row.get("experiment")
                and row.get("run_key") in handle.run_keys):
            return handle
    return None


def queue_rows(store: Store, *, experiment: str | None = None, recent_s: float = 3600.0, limit: int = 200,
               now: datetime | None = None, handles: list[SweepHandle] | None = None) -> list[QueueRow]:
    """Runs in flight (any age) and runs changed in the last ``recent_s`` seconds, open ones first
    (oldest sent first), then ended ones (latest first). ``experiment`` narrows it to one."""
    if isinstance(recent_s, bool) or not isinstance(recent_s, (int, float)) or recent_s < 0:
        raise UsageError(f"recent_s is {recent_s!r}: use seconds of history to show (zero or more)")
    now = now or datetime.now(timezone.utc)
    rows = store.recent_runs(now - timedelta(seconds=float(recent_s)), experiment=experiment,
                             open_statuses=OPEN, limit=limit)
    handles = live_handles() if handles is None else handles
    mine = process_owner()
    walls: dict[tuple[Any, Any], list[float]] = {}
    for r in rows:
        wall = r.get("wall_s")
        if r.get("status") == "succeeded" and isinstance(wall, (int, float)) and wall == wall:
            walls.setdefault((r.get("model"), r.get("backend")), []).append(float(wall))
    waiting = sorted((r for r in rows if r.get("status") == "planned"),
                     key=lambda r: (r.get("created_at") or now, r["run_id"]))
    positions = {r["run_id"]: i + 1 for i, r in enumerate(waiting)}
    out = []
    for r in rows:
        status = str(r.get("status"))
        ended = status not in OPEN
        sent = r.get("submitted_at")
        elapsed = _seconds(sent, r.get("completed_at") or r.get("updated_at") if ended else now)
        cost = charged_usd(r)
        kind = ("" if cost <= 0 else "simulated" if r.get("cost_simulated") else
                "reserved" if status in (*ACTIVE, "unknown") else "charged")
        history = walls.get((r.get("model"), r.get("backend")))
        handle = None if ended else handle_for(r, handles)
        out.append(QueueRow(
            run_id=str(r["run_id"]), experiment=str(r.get("experiment")), status=status,
            model=str(r.get("model") or ""), prompt=str(r.get("prompt") or ""), seed=r.get("seed"),
            backend=str(r.get("backend") or ""), driver=_driver(r, now, mine), position=positions.get(r["run_id"]),
            elapsed_s=elapsed, expected_s=statistics.median(history) if history else None, cost_usd=cost,
            cost_kind=kind, remote_id=r.get("remote_id"), ended=ended,
            error=str(r.get("error_message") or r.get("error_code") or ""),
            stoppable=handle is not None and not handle.stopping))
    opened = [q for q in out if not q.ended]
    opened.sort(key=lambda q: (q.position is not None, q.position or 0, -(q.elapsed_s or 0.0)))
    return opened + [q for q in out if q.ended]


def stop_sweep_of(store: Store, run_id: str, *, handles: list[SweepHandle] | None = None) -> str:
    """Stop the background sweep of this kernel that sends or drives ``run_id``; returns what that
    means for the run. A run of another process, or already ended, is left alone (UsageError)."""
    row = store.get_run(run_id) if isinstance(run_id, str) and run_id else None
    if row is None:
        raise UsageError(f"{run_id!r} is no run in {store!r}: use a run id from the queue")
    if row.get("status") not in OPEN:
        raise UsageError(f"run {run_id} has ended ({row.get('status')}): there is nothing to stop")
    handle = handle_for(row, handles)
    if handle is None:
        raise UsageError(f"run {run_id} is not driven by a background sweep of this kernel (another process, or a "
                         f"sweep that ended): stop it where it runs. {NO_CANCEL}")
    handle.cancel()
    if row.get("status") == "planned":
        return (f"stopped the background sweep of {row.get('experiment')!r}: run {run_id} was not sent and never "
                "will be by it (it stays planned; run the plan again to send it)")
    return (f"stopped the background sweep of {row.get('experiment')!r}: nothing more is submitted. Run {run_id} "
            f"was already sent ({row.get('status')}): {NO_CANCEL}")
