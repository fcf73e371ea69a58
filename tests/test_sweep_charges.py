"""Money a sweep was charged stays charged: across calls, whatever the server says later.

Found by an adversarial review and kept as its repro tests (same zero-latency harness as
``test_sweep_money.py``): a billed run whose video was never stored must not be booked as free,
and sent again, when the server later answers 404 or reports it failed; a price the service
charged above the estimate in an earlier call holds for the next call's reservations; a run that
ends failed or canceled but carries a cost is counted against the budget.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import httpx
import pytest
from _fast_sweep import RUN, Service, Sweeper, plan
from _scripted import answer, is_poll


def by_status(sw: Sweeper) -> Counter[str]:
    return Counter(r["status"] for r in sw.rows())


def test_a_billed_download_failed_run_that_the_server_404s_is_never_paid_again(
        fast_clip: Path, no_fsync: None, tmp_path: Path, ref_images: list[Path]) -> None:
    svc = Service(fast_clip, faults="truncate=1x")  # sweep 1: billed, but the video download breaks
    try:
        sw = Sweeper(svc, tmp_path)
        cap = {"experiment_budget_usd": RUN}  # Experiment(..., budget_usd=0.42): one run, ever
        sw.run(plan(ref_images, range(1)), **cap)
        (row,) = sw.rows()
        assert row["status"] == "download_failed" and row["remote_id"] and row["cost_usd"] == pytest.approx(RUN)

        # Days later the service no longer serves that run record (404 RUN_NOT_FOUND on GET /v1/runs/{id}).
        async def purged(request: httpx.Request) -> httpx.Response | None:
            if is_poll(request):
                return answer(404, {"code": "RUN_NOT_FOUND", "message": "no such run"})
            return None

        svc.async_before.append(purged)
        sw.run(plan(ref_images, range(1)), **cap)   # re-run to fetch the missing video
        (row,) = sw.rows()
        assert row["status"] == "download_failed" and row["cost_usd"] == pytest.approx(RUN)  # still charged
        assert "not sent again" in row["error_message"] and "RUN_NOT_FOUND" in row["error_code"]
        svc.async_before.remove(purged)
        sw.run(plan(ref_images, range(1)), **cap)   # and once more
        assert svc.billed() <= RUN + 1e-9, "the experiment cap of $0.42 was exceeded"
        assert svc.created() == 1, "a run that was already billed was submitted (and billed) again"
    finally:
        svc.close()


def test_a_billed_run_later_reported_failed_stays_charged_and_is_never_sent_again(
        fast_clip: Path, no_fsync: None, tmp_path: Path, ref_images: list[Path]) -> None:
    """Same path as the 404 case, reached by a status that goes backwards (succeeded -> failed)."""
    svc = Service(fast_clip, faults="truncate=1x")
    try:
        sw = Sweeper(svc, tmp_path)
        cap = {"experiment_budget_usd": RUN}
        sw.run(plan(ref_images, range(1)), **cap)
        (row,) = sw.rows()
        assert row["status"] == "download_failed" and row["cost_usd"] == pytest.approx(RUN)

        def regressed(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
            if not is_poll(request):
                return None
            body = json.loads(response.read())
            body.update(status_code="failed", output=None, failure_code="EXPIRED")
            return httpx.Response(200, json=body)

        svc.emu.after.append(regressed)
        sw.run(plan(ref_images, range(1)), **cap)
        (row,) = sw.rows()
        assert row["status"] == "download_failed" and row["cost_usd"] == pytest.approx(RUN)
        assert "now reports this run failed" in row["error_message"]
        svc.emu.after.remove(regressed)
        sw.run(plan(ref_images, range(1)), **cap)
        assert svc.created() == 1 and svc.billed() <= RUN + 1e-9
    finally:
        svc.close()


def test_a_later_call_reserves_at_the_price_an_earlier_call_was_charged(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    service.charge_on_success("0.84")  # charged $0.28/s for a clip estimated at $0.14/s
    cap = 4 * RUN  # Experiment(..., budget_usd=1.68)
    sweeper.run(plan(ref_images, range(1)), experiment_budget_usd=cap)  # learns (and stores) the 2x price
    (row,) = sweeper.rows()
    assert row["cost_usd"] == pytest.approx(2 * RUN) and row["cost_estimate_usd"] == pytest.approx(RUN)

    service.freeze()  # runs take a while, as real ones do (90-240 s)
    polls: list[int] = []

    async def end_later(request: httpx.Request) -> httpx.Response | None:
        if is_poll(request):
            polls.append(1)
            if len(polls) == 20:
                service.thaw()
        return None

    service.async_before.append(end_later)
    s = sweeper.run(plan(ref_images, range(5)), experiment_budget_usd=cap, concurrency=4)
    charged = sum(r["cost_usd"] or 0 for r in sweeper.rows())
    assert s.submitted == 1 and any("charged up to 2.00×" in m for m in s.messages)  # one more fits at $0.84
    assert charged <= cap + 1e-9, f"the service charged ${charged:.2f} against an experiment budget of ${cap:.2f}"


@pytest.mark.parametrize("status", ["failed", "canceled"])
def test_a_run_ending_failed_or_canceled_with_a_reported_cost_counts_against_the_budget(
        status: str, service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    """The docs say failed runs are not billed, but also that an (admin) cancel 'does not ... refund'.
    When the server's own run object reports a non-zero ``cost`` on such a run, that cost is booked."""
    def ended_but_charged(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if not is_poll(request):
            return None
        body = json.loads(response.read())
        if body.get("status_code") == "succeeded":
            body.update(status_code=status, output=None, cost="0.42", failure_code="PROVIDER_ERROR")
        return httpx.Response(200, json=body)

    service.emu.after.append(ended_but_charged)
    s = sweeper.run(plan(ref_images, range(4)), budget_usd=2 * RUN)
    ended = [r for r in sweeper.rows() if r["status"] == status]
    assert ended and all(r["cost_usd"] == pytest.approx(RUN) for r in ended)
    assert s.spent_usd == pytest.approx(RUN * len(ended))
    assert s.submitted * RUN <= 2 * RUN + 1e-9, (
        f"{s.submitted} runs each reported cost $0.42 were sent under a $0.84 budget")
