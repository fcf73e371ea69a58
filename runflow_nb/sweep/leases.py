"""Run leases: which process drives a run, until when, renewed while it does.

A process that submits or waits for a run holds a *lease* on its row in the store: the ``owner``
column names the process (``host:pid:random``, unique even where pids repeat across containers)
and ``lease_expires_at`` says until when the claim holds. The driving process renews its leases
every third of the lease length (``RUNFLOW_LEASE_S``, default 60 s) while it works; one that dies, hangs or loses its kernel stops
renewing, and once the lease has expired any other process (on any host) may take the run over
and re-attach to it. Nothing is probed by process id, so this works across hosts, containers and
operating systems alike. Hosts sharing a store need clocks that agree to within a few seconds
(NTP), far below the lease length.

>>> keeper = LeaseKeeper(store)                       # doctest: +SKIP
>>> await keeper.take(run_id)                         # doctest: +SKIP
True
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..store.runstore import Store

__all__ = ["LeaseKeeper", "held_elsewhere", "process_owner"]

_owner: tuple[int, str] | None = None


def process_owner() -> str:
    """This process's owner token, ``host:pid:random`` (a fresh one after a fork)."""
    global _owner
    pid = os.getpid()
    if _owner is None or _owner[0] != pid:
        _owner = (pid, f"{socket.gethostname()}:{pid}:{secrets.token_hex(4)}")
    return _owner[1]


def held_elsewhere(row: dict[str, Any], *, owner: str | None = None, now: datetime | None = None) -> bool:
    """True while another owner holds an unexpired lease on ``row``."""
    holder = row.get("owner")
    expires = row.get("lease_expires_at")
    if not holder or holder == (owner or process_owner()) or not isinstance(expires, datetime):
        return False
    return expires > (now or datetime.now(timezone.utc))


class LeaseKeeper:
    """Takes, renews and releases one process's leases on runs in one store.

    Renewal runs on its own thread (:meth:`start`), so a busy event loop or a saturated store
    executor never lets a live process's lease lapse. ``call`` runs the blocking take/release off
    the event loop (default: ``asyncio.to_thread``). ``on_lost(run_id, holder)`` is told when a
    renewal finds that another owner took a run over (this process stalled past its lease).
    """

    def __init__(self, store: Store, *, lease_s: float | None = None, owner: str | None = None,
                 call: Callable[..., Awaitable[Any]] | None = None,
                 on_lost: Callable[[str, str | None], None] | None = None) -> None:
        from .. import settings

        self.store = store
        self.lease_s = settings.lease_seconds(lease_s)
        self.owner = owner or process_owner()
        self._call = call or asyncio.to_thread
        self._on_lost = on_lost
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> set[str]:
        """The runs this keeper holds leases on now."""
        with self._lock:
            return set(self._held)

    async def take(self, run_id: str) -> bool:
        """Take the lease if it is free, expired or already ours; False while another owner holds it."""
        ok: bool = await self._call(self.store.take_lease, run_id, owner=self.owner, lease_s=self.lease_s)
        if ok:
            with self._lock:
                self._held.add(run_id)
        return ok

    async def release(self, run_id: str) -> None:
        """Give the lease up (the run has ended, or this process leaves it)."""
        with self._lock:
            if run_id not in self._held:
                return
            self._held.discard(run_id)
        with contextlib.suppress(Exception):  # an unreachable store: the lease simply lapses
            await self._call(self.store.release_lease, run_id, owner=self.owner)

    def renew_once(self) -> set[str]:
        """Extend every held lease (blocking); returns (and forgets) the runs another owner took over."""
        ids = sorted(self.held)
        if not ids:
            return set()
        kept = self.store.renew_leases(ids, owner=self.owner, lease_s=self.lease_s)
        lost = set(ids) - kept
        with self._lock:
            self._held -= lost
        for run_id in sorted(lost):
            if self._on_lost is not None:
                row = self.store.get_run(run_id) or {}
                self._on_lost(run_id, row.get("owner"))
        return lost

    def start(self) -> None:
        """Renew every ``lease_s / 3`` on a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(self.lease_s / 3):
                with contextlib.suppress(Exception):  # the store was unreachable: retried next time
                    self.renew_once()

        self._thread = threading.Thread(target=loop, name="runflow_nb-leases", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (leases still held lapse on their own, or are released by the caller)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
