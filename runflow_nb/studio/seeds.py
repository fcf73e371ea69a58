"""Several seeds of one request, sent as one small sweep: the plan, its estimate and its budget.

>>> seeds = SeedsPlan.build(request, n=4, start=100)     # seeds 100, 101, 102, 103   # doctest: +SKIP
>>> seeds.estimate.usd, seeds.check_budget(2.0), seeds.fits(1.0)   # doctest: +SKIP

``start=None`` draws ``n`` distinct random seeds (a ``random.Random`` may be passed for a
reproducible draw). The sweep is capped at the budget the way ``exp.run(plan, budget_usd=...)``
is: a budget below the estimate runs the seeds that fit, in order, and the rest end
``skipped_budget`` (:meth:`SeedsPlan.fits` says how many fit before anything is sent), so the strip
never costs more than the form says.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import Issue, ValidationError

if TYPE_CHECKING:
    from ..plan import Estimate, Plan
    from ..request import VideoRequest

__all__ = ["MAX_SEEDS", "SEED_MAX", "SeedsPlan", "form_experiment"]

MAX_SEEDS = 16
"""The most seeds one press sends (a strip, not a study: use ``rf.grid`` for more)."""
SEED_MAX = 2147483647


def _count(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SEEDS:
        raise ValidationError([Issue("n", f"is {n!r}", f"use a whole number of seeds from 1 to {MAX_SEEDS} "
                                                       "(rf.grid(seed=range(...)) for a larger study)")])
    return n


def seeds_for(n: int, *, start: int | None = None, rng: random.Random | None = None) -> list[int]:
    """``n`` seeds: ``start, start+1, …`` or, with ``start=None``, ``n`` distinct random ones."""
    n = _count(n)
    if start is None:
        draw = rng or random.SystemRandom()
        seen: list[int] = []
        while len(seen) < n:
            s = draw.randrange(0, SEED_MAX + 1)
            if s not in seen:
                seen.append(s)
        return seen
    if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= SEED_MAX - n + 1:
        raise ValidationError([Issue("start seed", f"is {start!r}",
                                     f"use a whole number from 0 to {SEED_MAX - n + 1} (so all {n} seeds are valid), "
                                     "or leave it empty for random seeds")])
    return [start + i for i in range(n)]


@dataclass(frozen=True)
class SeedsPlan:
    """``request`` at each of ``seeds``: the :class:`~runflow_nb.plan.Plan` and its estimate."""

    plan: Plan
    seeds: list[int]
    estimate: Estimate

    @classmethod
    def build(cls, request: VideoRequest, *, n: int, start: int | None = None,
              rng: random.Random | None = None) -> SeedsPlan:
        from ..plan import Plan

        seeds = seeds_for(n, start=start, rng=rng)
        plan = Plan([request.with_seed(s) for s in seeds])
        return cls(plan=plan, seeds=seeds, estimate=plan.estimate())

    def check_budget(self, budget_usd: Any) -> float:
        """``budget_usd`` as a float (a dollar amount of zero or more); else ValidationError (nothing
        sent). A budget below the estimate is taken, as ``exp.run`` takes it: see :meth:`fits`."""
        if isinstance(budget_usd, bool) or not isinstance(budget_usd, (int, float)) or not budget_usd >= 0:
            raise ValidationError([Issue("budget", f"is {budget_usd!r}", "use a dollar amount of zero or more")])
        return float(budget_usd)

    def fits(self, budget_usd: Any) -> int:
        """How many of the seeds, in order, fit in ``budget_usd`` at their published estimate (the
        rest are skipped for the budget)."""
        budget, total, n = self.check_budget(budget_usd), 0.0, 0
        for req in self.plan:
            total += req.estimate_usd()
            if total > budget + 1e-9:
                break
            n += 1
        return n

    def rows(self, store: Any, experiment: str) -> list[Mapping[str, Any] | None]:
        """Each seed's stored row (None while it is not stored yet), in seed order."""
        return [store.find_run(experiment=experiment, run_key=req.run_key()) for req in self.plan]


def form_experiment(client: Any = None) -> Any:
    """The experiment a form without one sends its seeds to: ``"form"`` in the default store."""
    from ..experiment import Experiment

    return Experiment("form", client=client)
