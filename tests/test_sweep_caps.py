"""The experiment cap when another sweep spends meanwhile: every claim is checked against the store.

Same zero-latency harness as ``test_sweep_money.py``. Another process's spending is written to the
shared store while this sweep runs (as that process would write it), and the sweep must see it at
its next claim, not only when it started.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from _fast_sweep import RUN, Service, Sweeper, plan


def spend_elsewhere(sweeper: Sweeper, usd: float, *, status: str = "succeeded", owner: str | None = None) -> None:
    """Another process of this experiment records a run (billed, or still being submitted)."""
    row, _ = sweeper.store.claim_run({
        "run_key": f"elsewhere-{status}-{usd}-{owner}", "client_ref": f"rfnb-elsewhere-{status}",
        "experiment": sweeper.experiment, "model": "alibaba/happy-horse/reference-to-video", "status": "planned",
        "prompt": "elsewhere", "images": [], "cost_estimate_usd": usd, "created_at": datetime.now(timezone.utc)})
    fields: dict[str, Any] = {"status": status, "owner": owner}
    if status == "succeeded":
        fields["cost_usd"] = usd
    sweeper.store.update_run(row["run_id"], **fields)


def test_spending_by_another_process_after_the_start_is_seen_at_the_next_claim(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    spent: list[bool] = []

    def other_process_spends(p: Any) -> None:
        if not spent:  # right after this sweep read the experiment's spending
            spent.append(True)
            spend_elsewhere(sweeper, 2 * RUN)

    s = sweeper.run(plan(ref_images, range(3)), experiment_budget_usd=3 * RUN, on_progress=other_process_spends)
    assert spent and service.created() == 1 and s.submitted == 1
    counts = Counter(r["status"] for r in sweeper.rows() if r["prompt"] != "elsewhere")
    assert counts == Counter({"succeeded": 1, "skipped_budget": 2})
    skipped = [r for r in sweeper.rows() if r["status"] == "skipped_budget"]
    assert any("other sweeps of this experiment committed its budget of $1.26" in (r["error_message"] or "")
               for r in skipped)


def test_a_claim_contested_by_a_submit_elsewhere_never_overspends(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    seen: list[bool] = []

    def contender(p: Any) -> None:
        if not seen:
            seen.append(True)  # another process is submitting a run that fills the cap
            spend_elsewhere(sweeper, 2 * RUN, status="submitting", owner="elsewhere:1")

    s = sweeper.run(plan(ref_images, range(2)), experiment_budget_usd=2 * RUN, on_progress=contender)
    assert seen and s.submitted == 0 and service.created() == 0  # never past the cap, even while contested
    assert Counter(r["status"] for r in sweeper.rows() if r["prompt"] != "elsewhere") == Counter({"skipped_budget": 2})


def test_without_an_experiment_cap_spending_elsewhere_does_not_limit_a_call(service: Service, sweeper: Sweeper,
                                                                            ref_images: list[Path]) -> None:
    spend_elsewhere(sweeper, 100.0)
    s = sweeper.run(plan(ref_images, range(2)), budget_usd=2 * RUN)
    assert s.submitted == 2 and service.created() == 2


def test_the_experiment_cap_allows_a_claim_that_exactly_fills_it(service: Service, sweeper: Sweeper,
                                                                 ref_images: list[Path]) -> None:
    spend_elsewhere(sweeper, RUN)
    s = sweeper.run(plan(ref_images, range(2)), experiment_budget_usd=3 * RUN)
    assert s.submitted == 2 and s.skipped_budget == 0


@pytest.mark.parametrize("elsewhere", ["failed", "skipped_budget"])
def test_runs_elsewhere_that_cost_nothing_leave_the_cap_free(service: Service, sweeper: Sweeper,
                                                             ref_images: list[Path], elsewhere: str) -> None:
    spend_elsewhere(sweeper, 5 * RUN, status=elsewhere)
    s = sweeper.run(plan(ref_images, range(2)), experiment_budget_usd=2 * RUN)
    assert s.submitted == 2
