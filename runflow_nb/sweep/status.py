"""What a sweep tells its caller: live progress, the closing summary, and what a stored run costs.

>>> p = SweepProgress(total=4, budget_usd=2.0)
>>> p.counts["succeeded"] += 1
>>> p.spent_usd = 0.7
>>> p.money()
'spent $0.70 of $2.00 budget for this call'

Statuses: ``ACTIVE`` runs are on their way or on the server; ``CHARGED`` runs were billed and are
never submitted again. :func:`charged_usd` is the money view of one stored row that the sweep's
budget and an experiment-level cap both read.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ACTIVE", "CHARGED", "SIMULATED_NOTE", "SweepProgress", "SweepSummary", "charged_usd"]

SIMULATED_NOTE = "nothing charged"
"""Said after every simulated spend (offline simulator): ``simulated spend $X (nothing charged)``."""

ACTIVE = ("submitting", "queued", "dispatching", "running")
CHARGED = ("succeeded", "partial_succeeded", "download_failed")  # billed: never submitted again


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
    flagged: int = 0  # this plan's clips that clip QA flagged (runflow_nb.qa)

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
        text = (f"simulated spend ${self.spent_usd:.2f} ({SIMULATED_NOTE})" if self.simulated
                else f"spent ${self.spent_usd:.2f}")
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
                + (f" | {self.flagged} flagged by QA" if self.flagged else "")
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
    flagged: int = 0  # this plan's clips that clip QA flagged (see exp.table(qa="flagged"))

    def __str__(self) -> str:
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items()))
        money = (f"simulated spend ${self.spent_usd:.2f} ({SIMULATED_NOTE})" if self.simulated
                 else f"spent ${self.spent_usd:.2f}")
        return (f"{self.total} planned runs ({parts}); submitted {self.submitted}, re-attached {self.reattached}, "
                f"reused {self.reused}; {money} in {self.wall_s:.1f} s"
                + (f"; {self.flagged} clip{'s' if self.flagged != 1 else ''} flagged by QA "
                   "(exp.table(qa='flagged'))" if self.flagged else "")
                + (f"; stopped: {self.stopped}" if self.stopped else ""))

    def _repr_html_(self) -> str:
        """The summary as a small table, its messages below (escaped, money safe from MathJax)."""
        from ..views import html as _html

        t = _html.text
        rows = [("planned runs", t(self.total)),
                ("by status", t(", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items())) or "none")),
                ("submitted / re-attached / reused", t(f"{self.submitted} / {self.reattached} / {self.reused}")),
                ("skipped by the budget", t(self.skipped_budget)),
                (f"simulated spend ({SIMULATED_NOTE})" if self.simulated else "spent",
                 _html.money(self.spent_usd, simulated=self.simulated)),
                ("wall time", t(f"{self.wall_s:.1f} s"))]
        if self.stopped:
            rows.append(("stopped", t(self.stopped)))
        if self.still_running:
            rows.append(("still on the server",
                         f"{t(self.still_running)} runs, may cost up to {_html.money(self.may_cost_usd)}"))
        body = "".join(f"<tr><th style='text-align:left'>{t(k)}</th><td>{v}</td></tr>" for k, v in rows)
        notes = "".join(f"<li>{_html.text(m)}</li>" for m in self.messages)
        return _html.block(f"<table>{body}</table>" + (f"<ul>{notes}</ul>" if notes else ""))


def charged_usd(row: dict[str, Any]) -> float:
    """What a stored run has cost (or, when its fate is open, may cost)."""
    status = row.get("status")
    cost, est = row.get("cost_usd"), row.get("cost_estimate_usd")
    if status in (*CHARGED, "duplicate"):  # a duplicate: a run the server made that no plan asked for
        return float(cost) if isinstance(cost, (int, float)) and cost == cost else float(est or 0.0)
    if status in (*ACTIVE, "unknown"):
        return float(est or 0.0)
    if isinstance(cost, (int, float)) and cost == cost and cost > 0:  # e.g. a failed run the server charged
        return float(cost)
    return 0.0


