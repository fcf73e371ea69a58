"""The money a sweep may commit: spent + in flight + unknown, never more than the budget.

Every run that may be billed holds a *reservation* (its estimate) from the moment it is about to
be submitted, or re-attached, until its fate is known:

* ``in_flight``  submitted (or re-attached) and still running on the server;
* ``unknown``    the server may have the run but the client cannot tell (a lost answer, a wait
  that timed out, polls that kept failing, a stop mid-submit): the reservation stays until a later
  sweep resolves the run, because the server will bill it if it succeeds;
* ``spent``      the run ended billed (its real cost replaces the estimate).

A run that ends unbilled (failed, canceled, refused, not found) hands its reservation back, and a
waiting submit may use it. ``budget_usd`` is what *this call* may commit; an experiment-level cap
is turned into that number before the sweep starts (see :class:`runflow_nb.Experiment`), and the
sweep checks it again against the store at every claim, so concurrent processes share it
(:mod:`runflow_nb.sweep.runner`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

__all__ = ["Budget"]

_EPS = 1e-9


@dataclass
class Reservation:
    usd: float = 0.0
    kind: str = ""  # "in_flight" | "unknown" | "" (none)


class Budget:
    """Reservations against one cap (``None`` = no cap). All methods run on the sweep's loop."""

    def __init__(self, cap_usd: float | None) -> None:
        self.cap = cap_usd
        self.spent = 0.0
        self.in_flight = 0.0
        self.unknown = 0.0
        self.exhausted = False
        self.closed = False  # no new reservations (stop, fatal answer)
        self._cond = asyncio.Condition()

    @property
    def committed(self) -> float:
        return self.spent + self.in_flight + self.unknown

    def _add(self, r: Reservation, sign: float) -> None:
        if r.kind == "in_flight":
            self.in_flight = max(0.0, round(self.in_flight + sign * r.usd, 6))
        elif r.kind == "unknown":
            self.unknown = max(0.0, round(self.unknown + sign * r.usd, 6))

    async def reserve(self, need: float) -> Reservation | None:
        """Reserve ``need`` for a new submit, waiting while runs in flight might still free room.

        None when it cannot fit (the budget is then exhausted for this sweep: later runs are skipped,
        so a cut never lets a cheaper run jump the queue) or when the budget was closed.
        """
        async with self._cond:
            while True:
                if self.closed:
                    return None
                if self.cap is None or (not self.exhausted and self.committed + need <= self.cap + _EPS):
                    r = Reservation(need, "in_flight")
                    self._add(r, +1)
                    return r
                # Only a run in flight can still hand money back (fail unbilled); unknown ones cannot
                # until a later sweep resolves them.
                if self.exhausted or self.in_flight <= _EPS or self.spent + self.unknown + need > self.cap + _EPS:
                    self.exhausted = True
                    return None
                await self._cond.wait()

    def fits(self) -> bool:
        """Whether everything committed (held runs included) is within the cap: a run that holds an
        unchecked reservation (re-attached, unknown) may be sent again only then."""
        return not self.closed and (self.cap is None or self.committed <= self.cap + _EPS)

    async def hold(self, usd: float, kind: str) -> Reservation:
        """Reserve without checking the cap: a run that may already be billed (re-attached, unknown)."""
        async with self._cond:
            r = Reservation(usd, kind)
            self._add(r, +1)
            return r

    async def move(self, r: Reservation, kind: str) -> None:
        """Re-file a reservation (e.g. in flight → unknown when its fate becomes unknown)."""
        async with self._cond:
            self._add(r, -1)
            r.kind = kind
            self._add(r, +1)
            self._cond.notify_all()

    async def settle(self, r: Reservation, *, spent: float = 0.0) -> None:
        """The run's fate is known: drop its reservation and book what it really cost."""
        async with self._cond:
            self._add(r, -1)
            r.usd, r.kind = 0.0, ""
            self.spent = round(self.spent + spent, 6)
            self._cond.notify_all()

    async def close(self) -> None:
        """No more reservations: waiting submits give up (a stop or a fatal answer)."""
        async with self._cond:
            self.closed = True
            self._cond.notify_all()
