"""Every money decision of a sweep, at zero latency: reservations, releases, stops, fatal answers, order.

The real runner, client, store and emulator (:mod:`_fast_sweep`: in-process transport, a clock the
test moves). What the *server* saw (runs created, the ledger) is checked next to what the sweep
reports, so a sweep that under-counts its own spending is caught as surely as one that overspends.
The loopback, interrupt and crash versions of these guarantees are in ``test_money.py`` and
``test_crash.py``; these are the cheap ones mutation testing runs for every planted bug.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from _fast_sweep import BASE, RUN, Service, Sweeper, gather_batches, plan, sweep_together
from _scripted import answer, is_create, is_download, is_poll

import runflow_nb as rf
from runflow_nb import errors
from runflow_nb.sweep.runner import SweepProgress
from runflow_nb.sweep.status import charged_usd


def by_status(sw: Sweeper) -> Counter[str]:
    return Counter(r["status"] for r in sw.rows())


# --- reservations and releases ---------------------------------------------------------------------


def test_a_budget_admits_exactly_the_runs_it_covers(service: Service, sweeper: Sweeper,
                                                    ref_images: list[Path]) -> None:
    s = sweeper.run(plan(ref_images, range(5)), budget_usd=3 * RUN)
    assert by_status(sweeper) == Counter({"succeeded": 3, "skipped_budget": 2})
    assert (s.submitted, s.skipped_budget, s.spent_usd) == (3, 2, pytest.approx(3 * RUN))
    assert service.created() == 3 and service.billed() == pytest.approx(3 * RUN)
    skipped = [r for r in sweeper.rows() if r["status"] == "skipped_budget"]
    assert all(r["error_code"] == "BUDGET" and "$1.26" in r["error_message"] for r in skipped)
    assert sum("budget guard" in m for m in s.messages) == 1  # said once, not once per skipped run
    last = sweeper.progress[-1]
    assert last.finished and last.skipped == 2 and last.done == 3 and last.spent_usd == pytest.approx(3 * RUN)


def test_a_budget_that_covers_the_plan_cuts_nothing_and_zero_buys_nothing(service: Service, sweeper: Sweeper,
                                                                          ref_images: list[Path]) -> None:
    s = sweeper.run(plan(ref_images, range(3)), budget_usd=3 * RUN)
    assert s.submitted == 3 and s.skipped_budget == 0
    s = sweeper.run(plan(ref_images, range(3, 5)), budget_usd=0)
    assert s.submitted == 0 and s.skipped_budget == 2 and service.created() == 3


def test_runs_that_end_unknown_keep_their_share(service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    service.freeze()  # runs stay on the server; the sweep's wait gives up on them
    s = sweeper.run(plan(ref_images, range(8)), budget_usd=3 * RUN, concurrency=4, timeout=0.05)
    assert by_status(sweeper) == Counter({"unknown": 3, "skipped_budget": 5})
    assert s.submitted == 3 and service.created() == 3 and s.spent_usd == 0
    last = sweeper.progress[-1]
    assert last.unknown_usd == pytest.approx(3 * RUN) and last.in_flight_usd == 0
    assert "unknown $1.26" in last.money()
    unknown = [r for r in sweeper.rows() if r["status"] == "unknown"]
    assert all(r["remote_id"] and r["error_code"] == "RunTimeoutError" for r in unknown)
    assert service.billed() == pytest.approx(3 * RUN)  # alive on the server, billed: why they count


def test_failed_runs_free_their_share_for_the_next_run(fast_clip: Path, no_fsync: None, tmp_path: Path,
                                                       ref_images: list[Path]) -> None:
    svc = Service(fast_clip, faults="fail=2x")
    try:
        sw = Sweeper(svc, tmp_path)
        s = sw.run(plan(ref_images, range(6)), budget_usd=3 * RUN)
        assert by_status(sw) == Counter({"failed": 2, "succeeded": 3, "skipped_budget": 1})
        assert s.spent_usd == pytest.approx(3 * RUN) and svc.billed() == pytest.approx(3 * RUN)
        failed = [r for r in sw.rows() if r["status"] == "failed"]
        assert all(r["cost_usd"] == 0 and r["error_code"] for r in failed)
    finally:
        svc.close()


def test_failures_free_the_share_a_waiting_submit_needs(fast_clip: Path, no_fsync: None, tmp_path: Path,
                                                        ref_images: list[Path]) -> None:
    svc = Service(fast_clip, faults="fail=1x", frozen=True)
    try:
        sw = Sweeper(svc, tmp_path)

        async def release(request: httpx.Request) -> httpx.Response | None:
            if is_poll(request) and svc.created() >= 1:
                svc.thaw()  # the first run (the failing one) ends only once the next submit is waiting
            return None

        svc.async_before.append(release)
        s = sw.run(plan(ref_images, range(2)), budget_usd=RUN, concurrency=2)
        assert by_status(sw) == Counter({"failed": 1, "succeeded": 1}) and s.skipped_budget == 0
        assert svc.billed() == pytest.approx(RUN)
    finally:
        svc.close()


def test_re_attached_and_unknown_runs_count_before_any_new_submit(service: Service, sweeper: Sweeper,
                                                                  ref_images: list[Path]) -> None:
    service.freeze()
    sweeper.run(plan(ref_images, range(2)), timeout=0.05, concurrency=2)
    assert by_status(sweeper) == Counter({"unknown": 2})
    service.thaw()  # they end on the server meanwhile
    s = sweeper.run(plan(ref_images, range(5)), budget_usd=3 * RUN)
    assert (s.reattached, s.submitted, s.skipped_budget) == (2, 1, 2)
    assert by_status(sweeper) == Counter({"succeeded": 3, "skipped_budget": 2})
    assert s.spent_usd == pytest.approx(3 * RUN)  # the re-attached runs are charged to this call
    assert service.created() == 3 and service.billed() == pytest.approx(3 * RUN)


def test_runs_still_running_from_an_earlier_sweep_hold_their_share(service: Service, sweeper: Sweeper,
                                                                   ref_images: list[Path]) -> None:
    service.freeze()
    stop_after_submits(sweeper, 2)
    sweeper.run(plan(ref_images, range(4)), concurrency=2)
    assert by_status(sweeper)["running"] + by_status(sweeper)["queued"] == 2
    sweeper.cancel.clear()
    service.thaw()
    s = sweeper.run(plan(ref_images, range(4)), budget_usd=3 * RUN, concurrency=2)
    assert (s.reattached, s.submitted, s.skipped_budget) == (2, 1, 1)
    assert service.created() == 3 and service.billed() == pytest.approx(3 * RUN)


def test_re_attached_runs_still_running_hold_their_share_while_new_runs_are_decided(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    service.freeze()  # they never end during this test: every decision is taken while they run
    sweeper.run(plan(ref_images, range(2)), timeout=0.05, concurrency=2)
    s = sweeper.run(plan(ref_images, range(5)), budget_usd=3 * RUN, concurrency=5, timeout=0.05)
    assert (s.reattached, s.submitted, s.skipped_budget) == (2, 1, 2)
    assert service.created() == 3 and sweeper.progress[-1].unknown_usd == pytest.approx(3 * RUN)


def _list_shows_nothing(svc: Service) -> dict[str, bool]:
    """Make the run list show nothing while ``flag["lagging"]`` (a search index catching up)."""
    flag = {"lagging": True}

    async def lag(request: httpx.Request) -> httpx.Response | None:
        if request.method == "GET" and request.url.path == "/v1/runs" and flag["lagging"]:
            return answer(200, {"items": []})
        return None

    svc.async_before.append(lag)
    return flag


def test_a_run_whose_submit_answer_was_lost_keeps_its_share_and_is_found_not_resubmitted(
        fast_clip: Path, no_fsync: None, tmp_path: Path, ref_images: list[Path]) -> None:
    svc = Service(fast_clip, faults="drop=1x")  # created on the server, the answer never arrives
    flag = _list_shows_nothing(svc)  # ... and the list does not show it yet
    try:
        sw = Sweeper(svc, tmp_path)
        s = sw.run(plan(ref_images, range(3)), budget_usd=3 * RUN)
        assert by_status(sw) == Counter({"succeeded": 2, "unknown": 1})
        lost = next(r for r in sw.rows() if r["status"] == "unknown")
        assert lost["remote_id"] is None and lost["client_ref"]
        assert sw.progress[-1].unknown_usd == pytest.approx(RUN) and s.spent_usd == pytest.approx(2 * RUN)
        flag["lagging"] = False
        s = sw.run(plan(ref_images, range(4)), budget_usd=RUN)  # found by its client_ref: counted, not re-sent
        assert (s.reattached, s.submitted, s.skipped_budget) == (1, 0, 1)
        assert by_status(sw) == Counter({"succeeded": 3, "skipped_budget": 1})
        assert svc.created() == 3 and svc.billed() == pytest.approx(3 * RUN)
    finally:
        svc.close()


def test_resume_finds_our_run_not_another_callers_with_the_same_client_ref(
        fast_clip: Path, no_fsync: None, tmp_path: Path, ref_images: list[Path]) -> None:
    # the create's answer is lost, and another caller's run (newer, other seed) shares the client_ref
    svc = Service(fast_clip, faults="drop=1x,dupref=1x")
    flag = _list_shows_nothing(svc)
    try:
        sw = Sweeper(svc, tmp_path)
        sw.run(plan(ref_images, [7]))
        flag["lagging"] = False
        (row,) = sw.rows()
        assert row["status"] == "unknown" and row["remote_id"] is None
        on_server = svc.sim.list_runs(limit=10)[0]
        assert len(on_server) == 2 and {r["client_ref"] for r in on_server} == {row["client_ref"]}
        (ours,) = [r for r in on_server if (r.get("metadata") or {}).get("run_id") == row["run_id"]]
        s = sw.run(plan(ref_images, [7]))
        (row,) = sw.rows()
        assert s.reattached == 1 and s.submitted == 0
        assert row["remote_id"] == ours["id"] and row["seed_returned"] == 7 and row["status"] == "succeeded"
    finally:
        svc.close()


def test_runs_of_a_batch_whose_answer_was_lost_are_found_on_resume_not_paid_twice(
        fast_clip: Path, no_fsync: None, tmp_path: Path, ref_images: list[Path]) -> None:
    svc = Service(fast_clip, faults="drop=1x")  # the batch is created, its answer never arrives
    flag = _list_shows_nothing(svc)
    try:
        sw = Sweeper(svc, tmp_path)
        sw.run(plan(ref_images, range(3)), concurrency=3, batch="auto")
        assert svc.created() == 3 and by_status(sw) == Counter({"unknown": 3})
        flag["lagging"] = False
        s = sw.run(plan(ref_images, range(3)), concurrency=3)  # batch runs echo the batch's metadata
        assert (s.reattached, s.submitted) == (3, 0) and by_status(sw) == Counter({"succeeded": 3})
        assert svc.created() == 3 and svc.billed() == pytest.approx(3 * RUN)
    finally:
        svc.close()


@pytest.mark.parametrize("batch", ["auto", False])
def test_a_resume_moments_after_a_lost_answer_waits_out_a_lagging_list_and_pays_once(
        batch: Any, fast_clip: Path, no_fsync: None, tmp_path: Path, ref_images: list[Path]) -> None:
    """The runs exist but the list does not show them yet (a search index catching up): a resume
    right away must not take "not listed" for "never created" and send them again. The resumed
    plan is larger, so a re-sent batch would carry another key; single runs go to a server that
    does not replay keys. Only the look-up stands between the sweep and a second charge."""
    svc = Service(fast_clip, faults="drop=1x")  # the create is made, its answer never arrives
    svc.emu.idempotency = bool(batch)
    lagging = {"left": 10**6}  # list reads that show nothing yet

    async def lag(request: httpx.Request) -> httpx.Response | None:
        if request.method == "GET" and request.url.path == "/v1/runs" and lagging["left"] > 0:
            lagging["left"] -= 1
            return answer(200, {"items": []})
        return None

    svc.async_before.append(lag)
    try:
        sw = Sweeper(svc, tmp_path)
        sw.run(plan(ref_images, range(3)), concurrency=3, batch=batch)
        lost = sum(r["status"] == "unknown" for r in sw.rows())
        assert svc.created() == 3 and lost == (3 if batch else 1)
        lagging["left"] = 2 * lost  # the resume's first reads still show nothing
        s = sw.run(plan(ref_images, range(5)), concurrency=5, batch=batch)
        assert lagging["left"] < 2 * lost  # the resume read the list while it lagged
        assert (s.reattached, s.submitted) == (lost, 2) and by_status(sw) == Counter({"succeeded": 5})
        assert svc.created() == 5 and svc.billed() == pytest.approx(5 * RUN)  # each run paid once
    finally:
        svc.close()


def test_an_unknown_run_sent_long_ago_is_looked_up_once_then_freed(service: Service, sweeper: Sweeper,
                                                                   ref_images: list[Path]) -> None:
    """The list has long caught up with a create sent an hour ago: one read decides it. One sent
    moments ago is read over the grace period and, still not listed, keeps its money unsent."""
    from datetime import datetime, timedelta, timezone

    sweeper.run(plan(ref_images, range(1)))
    reads: list[int] = []
    for age_s, expect_reads, sent in ((3600, 1, 1), (5, 4, 0)):
        sweeper.store.update_run(sweeper.rows()[0]["run_id"], status="unknown", remote_id=None,
                                 client_ref=f"never-sent-{age_s}", video_path=None,
                                 submitted_at=datetime.now(timezone.utc) - timedelta(seconds=age_s))

        async def count(request: httpx.Request, age_s: int = age_s) -> httpx.Response | None:
            if request.method == "GET" and request.url.path == "/v1/runs" and "q" in request.url.params:
                reads.append(age_s)  # look-ups by client_ref (the closing reconcile reads the list unfiltered)
            return None

        service.async_before[:] = [count]
        s = sweeper.run(plan(ref_images, range(1)))
        assert (s.reattached, s.submitted) == (0, sent) and reads.count(age_s) == expect_reads
    assert sweeper.rows()[0]["status"] == "unknown" and sweeper.rows()[0]["error_code"] == "NOT_LISTED_YET"


def test_an_unknown_run_that_never_reached_the_server_frees_its_share(service: Service, sweeper: Sweeper,
                                                                      ref_images: list[Path]) -> None:
    from datetime import datetime, timedelta, timezone

    sweeper.run(plan(ref_images, range(2)))
    sweeper.store.update_run(sweeper.rows()[0]["run_id"], status="unknown", remote_id=None,
                             client_ref="never-sent-0000", video_path=None,
                             submitted_at=datetime.now(timezone.utc) - timedelta(hours=1))
    s = sweeper.run(plan(ref_images, range(3)), budget_usd=2 * RUN)
    # sent an hour ago, and a look-up read back past it finds nothing: its reservation is released, it is sent
    assert (s.reattached, s.submitted, s.skipped_budget) == (0, 2, 0)
    # the run its first attempt made (under the client_ref this test wiped) is found by the closing
    # reconcile and shown as what it is: a second billed run of that row
    assert by_status(sweeper) == Counter({"succeeded": 3, "duplicate": 1}) and service.created() == 4


def test_the_experiment_cap_counts_what_earlier_calls_spent(service: Service, sweeper: Sweeper,
                                                            ref_images: list[Path]) -> None:
    sweeper.run(plan(ref_images, range(3)), experiment_budget_usd=5 * RUN)
    lines: list[str] = []
    s = sweeper.run(plan(ref_images, range(3, 9)), experiment_budget_usd=5 * RUN,
                    on_progress=lambda p: lines.append(p.line()))
    assert (s.submitted, s.skipped_budget) == (2, 4)
    p = sweeper.progress[-1]
    assert p.budget_scope == "experiment" and p.prior_usd == pytest.approx(3 * RUN)
    assert p.budget_usd == pytest.approx(2 * RUN)
    assert "left of the experiment budget ($1.26 spent before)" in lines[-1]
    s = sweeper.run(plan(ref_images, range(9, 12)), budget_usd=100, experiment_budget_usd=5 * RUN)
    assert s.submitted == 0 and s.skipped_budget == 3  # a call's budget cannot lift the experiment's
    assert service.created() == 5 and service.billed() == pytest.approx(5 * RUN)


def test_the_experiment_cap_counts_unknown_runs_and_not_failed_ones(fast_clip: Path, no_fsync: None,
                                                                    tmp_path: Path, ref_images: list[Path]) -> None:
    svc = Service(fast_clip, faults="fail=1x")
    try:
        sw = Sweeper(svc, tmp_path)
        sw.run(plan(ref_images, range(2)))  # one failed (costs nothing), one succeeded
        svc.freeze()
        sw.run(plan(ref_images, range(2, 3)), timeout=0.05)  # one unknown (may be billed)
        svc.thaw()
        s = sw.run(plan(ref_images, range(3, 7)), experiment_budget_usd=4 * RUN)
        p = sw.progress[-1]
        assert p.prior_usd == pytest.approx(2 * RUN)  # succeeded + unknown; the failed run is free
        assert s.submitted + s.skipped_budget == 4 and p.budget_usd == pytest.approx(2 * RUN)
    finally:
        svc.close()


def test_the_experiment_cap_holds_across_two_processes_sweeping_at_once(service: Service, tmp_path: Path,
                                                                     ref_images: list[Path]) -> None:
    # Two sweeps (each with its own store connection, as two processes have) start together: both
    # read the experiment's spending before either submits, so each alone would think the whole
    # cap is free.
    url = str(tmp_path / "shared.sqlite")
    sweepers = [Sweeper(service, tmp_path / str(i), store=url) for i in range(2)]
    sweep_together(sweepers, [plan(ref_images, range(4 * i, 4 * i + 4)) for i in range(2)],
                   experiment_budget_usd=3 * RUN, concurrency=2)
    assert service.created() <= 3 and service.billed() <= 3 * RUN + 1e-9, service.created()
    assert service.created() >= 1  # not a deadlock of two polite sweeps
    statuses = Counter(r["status"] for r in sweepers[0].rows())
    assert statuses["succeeded"] == service.created() and statuses["skipped_budget"] == 8 - service.created()


def test_the_smaller_of_the_call_and_experiment_caps_applies(service: Service, sweeper: Sweeper,
                                                             ref_images: list[Path]) -> None:
    sweeper.run(plan(ref_images, range(1)))
    s = sweeper.run(plan(ref_images, range(1, 6)), budget_usd=2 * RUN, experiment_budget_usd=10 * RUN)
    p = sweeper.progress[-1]
    assert s.submitted == 2 and p.budget_scope == "call" and p.budget_usd == pytest.approx(2 * RUN)
    assert "budget for this call" in p.money()
    s = sweeper.run(plan(ref_images, range(6, 9)), budget_usd=5 * RUN, experiment_budget_usd=4 * RUN)
    p = sweeper.progress[-1]
    assert s.submitted == 1 and p.budget_scope == "experiment" and p.budget_usd == pytest.approx(RUN)
    s = sweeper.run(plan(ref_images, range(9, 10)), experiment_budget_usd=RUN)
    assert s.submitted == 0 and sweeper.progress[-1].budget_usd == 0.0  # spent past the cap: nothing, never < 0


def test_an_experiment_cap_reuses_finished_runs_of_the_same_plan_free(service: Service, sweeper: Sweeper,
                                                                       ref_images: list[Path]) -> None:
    sweeper.run(plan(ref_images, range(2)), experiment_budget_usd=3 * RUN)
    s = sweeper.run(plan(ref_images, range(3)), experiment_budget_usd=3 * RUN)
    assert (s.reused, s.submitted, s.skipped_budget) == (2, 1, 0)
    assert sweeper.progress[-1].prior_usd == pytest.approx(2 * RUN)


@pytest.mark.parametrize(("row", "usd"), [
    ({"status": "succeeded", "cost_usd": 0.7, "cost_estimate_usd": 0.42}, 0.7),
    ({"status": "partial_succeeded", "cost_usd": None, "cost_estimate_usd": 0.42}, 0.42),
    ({"status": "download_failed", "cost_usd": math.nan, "cost_estimate_usd": 0.42}, 0.42),
    ({"status": "succeeded", "cost_usd": 0, "cost_estimate_usd": 0.42}, 0.0),
    ({"status": "running", "cost_usd": None, "cost_estimate_usd": 0.42}, 0.42),
    ({"status": "submitting", "cost_estimate_usd": 0.7}, 0.7),
    ({"status": "unknown", "cost_usd": None, "cost_estimate_usd": 0.42}, 0.42),
    ({"status": "queued", "cost_estimate_usd": None}, 0.0),
    ({"status": "failed", "cost_usd": 0.0, "cost_estimate_usd": 0.42}, 0.0),
    ({"status": "error", "cost_estimate_usd": 0.42}, 0.0),
    ({"status": "planned", "cost_estimate_usd": 0.42}, 0.0),
    ({"status": "skipped_budget", "cost_estimate_usd": 0.42}, 0.0),
    ({"status": "canceled", "cost_estimate_usd": 0.42}, 0.0),
])
def test_what_a_stored_run_costs_or_may_cost(row: dict[str, Any], usd: float) -> None:
    got = charged_usd(row)
    assert isinstance(got, float) and got == pytest.approx(usd)


# --- outcomes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "status"), [("nooutput", "succeeded"), ("partialnooutput", "partial_succeeded")])
def test_a_billed_run_without_a_video_is_charged_and_never_submitted_again(
        fast_clip: Path, no_fsync: None, tmp_path: Path, ref_images: list[Path], fault: str, status: str) -> None:
    svc = Service(fast_clip, faults=f"{fault}=1x")
    try:
        sw = Sweeper(svc, tmp_path)
        s = sw.run(plan(ref_images, range(2)), budget_usd=2 * RUN)
        rows = {r["status"]: r for r in sw.rows()}
        bad = rows["download_failed"]
        assert bad["error_code"] == "NO_OUTPUT" and bad["cost_usd"] == pytest.approx(RUN)
        assert status in bad["error_message"] and "charged $0.42" in bad["error_message"]
        assert s.spent_usd == pytest.approx(2 * RUN)
        s = sw.run(plan(ref_images, range(2)), budget_usd=2 * RUN)
        assert s.submitted == 0 and svc.created() == 2  # billed once: looked at again, never re-sent
        assert s.spent_usd == 0
    finally:
        svc.close()


def test_a_failed_run_is_sent_again_under_a_new_client_ref(fast_clip: Path, no_fsync: None, tmp_path: Path,
                                                          ref_images: list[Path]) -> None:
    svc = Service(fast_clip, faults="fail=1x")
    try:
        sw = Sweeper(svc, tmp_path)
        sw.run(plan(ref_images, range(1)))
        (first,) = sw.rows()
        assert first["status"] == "failed"
        s = sw.run(plan(ref_images, range(1)))
        (again,) = sw.rows()
        assert s.submitted == 1 and again["status"] == "succeeded" and again["attempts"] == 2
        # the old reference names the failed attempt: a look-up by it would find that run
        assert again["client_ref"] != first["client_ref"] and again["remote_id"] != first["remote_id"]
        refs = [r["client_ref"] for r in svc.sim.list_runs(limit=10)[0]]
        assert sorted(refs) == sorted([first["client_ref"], again["client_ref"]])
    finally:
        svc.close()


def test_a_partial_run_is_charged_and_kept(fast_clip: Path, no_fsync: None, tmp_path: Path,
                                           ref_images: list[Path]) -> None:
    svc = Service(fast_clip, faults="partial=1x")
    try:
        sw = Sweeper(svc, tmp_path)
        s = sw.run(plan(ref_images, range(2)), budget_usd=2 * RUN)
        assert by_status(sw) == Counter({"partial_succeeded": 1, "succeeded": 1})
        assert s.spent_usd == pytest.approx(2 * RUN) and all(r["video_path"] for r in sw.rows())
        s = sw.run(plan(ref_images, range(2)))
        assert (s.reused, s.submitted) == (2, 0)
    finally:
        svc.close()


def test_a_run_the_server_answers_404_for_is_lag_and_keeps_its_share(service: Service, sweeper: Sweeper,
                                                                     ref_images: list[Path]) -> None:
    forgotten: list[str] = []

    async def gone(request: httpx.Request) -> httpx.Response | None:
        if is_poll(request):
            forgotten[:] = forgotten or [request.url.path]
            if request.url.path == forgotten[0]:
                return answer(404, {"code": "RUN_NOT_FOUND", "message": "no such run"})
        return None

    service.async_before.append(gone)
    s = sweeper.run(plan(ref_images, range(2)), budget_usd=RUN, timeout=0.5)
    # its id came from a 201: the 404s are lag; it keeps its share, so the second run does not fit
    assert by_status(sweeper) == Counter({"unknown": 1, "skipped_budget": 1}) and s.submitted == 1
    kept = next(r for r in sweeper.rows() if r["status"] == "unknown")
    assert kept["remote_id"] and kept["cost_usd"] is None and "404" in kept["error_message"]
    assert sweeper.progress[-1].unknown_usd == pytest.approx(RUN) and service.created() == 1


def test_a_refused_submit_is_an_error_frees_its_share_and_the_sweep_goes_on(service: Service, sweeper: Sweeper,
                                                                            ref_images: list[Path]) -> None:
    async def refuse_first(request: httpx.Request) -> httpx.Response | None:
        if is_create(request) and not refused:
            refused.append(request)
            return answer(422, {"code": "VALIDATION_ERROR", "message": "prompt: refused by the server",
                                "errors": [{"field": "prompt", "message": "refused"}]})
        return None

    refused: list[httpx.Request] = []
    service.async_before.append(refuse_first)
    s = sweeper.run(plan(ref_images, range(3)), budget_usd=2 * RUN)
    assert by_status(sweeper) == Counter({"error": 1, "succeeded": 2})
    err = next(r for r in sweeper.rows() if r["status"] == "error")
    assert err["error_code"] and err["error_message"]
    assert s.fatal is None and s.stopped is None and service.created() == 2


def test_a_failed_download_is_charged_and_fetched_again_without_a_new_submit(service: Service, sweeper: Sweeper,
                                                                            ref_images: list[Path]) -> None:
    async def broken(request: httpx.Request) -> httpx.Response | None:
        return answer(500, {"code": "INTERNAL_ERROR", "message": "disk"}) if is_download(request) else None

    service.async_before.append(broken)
    s = sweeper.run(plan(ref_images, range(2)), budget_usd=2 * RUN)
    assert by_status(sweeper) == Counter({"download_failed": 2}) and s.spent_usd == pytest.approx(2 * RUN)
    service.async_before.remove(broken)
    s = sweeper.run(plan(ref_images, range(2)), budget_usd=0)  # costs nothing more: a budget of 0 is enough
    assert by_status(sweeper) == Counter({"succeeded": 2}) and s.submitted == 0 and service.created() == 2
    assert all(Path(r["video_path"]).exists() for r in sweeper.rows())


def test_an_error_while_waiting_leaves_the_run_unknown_with_its_share(service: Service, sweeper: Sweeper,
                                                                      ref_images: list[Path]) -> None:
    async def flaky(request: httpx.Request) -> httpx.Response | None:
        return answer(503, {"code": "MODEL_UNAVAILABLE", "message": "busy"}) if is_poll(request) else None

    service.freeze()
    service.async_before.append(flaky)
    s = sweeper.run(plan(ref_images, range(3)), budget_usd=2 * RUN, concurrency=2)
    assert by_status(sweeper) == Counter({"unknown": 2, "skipped_budget": 1}) and s.submitted == 2
    assert sweeper.progress[-1].unknown_usd == pytest.approx(2 * RUN)
    service.async_before.remove(flaky)
    service.thaw()
    s = sweeper.run(plan(ref_images, range(3)), budget_usd=2 * RUN)  # resolved, paid once, nothing new fits
    assert (s.reattached, s.submitted) == (2, 0) and by_status(sweeper)["succeeded"] == 2
    assert service.created() == 2


# --- stop means stop --------------------------------------------------------------------------------


def stop_after_submits(sw: Sweeper, n: int) -> None:
    """The next sweep of ``sw`` is stopped as soon as ``n`` runs exist on the server (checked at
    every progress change, as a Stop button's handler would)."""
    original = sw.run

    def on_progress(p: SweepProgress) -> None:
        if sw.service.created() >= n:
            sw.cancel.set()

    def run(*args: Any, **kw: Any) -> Any:
        sw.run = original  # type: ignore[method-assign]
        return original(*args, on_progress=on_progress, **kw)

    sw.run = run  # type: ignore[method-assign]


def test_nothing_is_submitted_after_a_stop(service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    service.freeze()
    stop_after_submits(sweeper, 2)
    s = sweeper.run(plan(ref_images, range(8)), concurrency=2, budget_usd=8 * RUN)
    assert service.created() == 2 and s.submitted == 2
    counts = by_status(sweeper)
    assert counts["planned"] == 6 and counts["running"] + counts["queued"] == 2, counts
    assert s.stopped == "stop requested" and (s.still_running, s.may_cost_usd) == (2, pytest.approx(2 * RUN))
    assert any("2 runs still on the server" in m and "$0.84" in m and "6 left planned" in m for m in s.messages)
    on_server = [r for r in sweeper.rows() if r["remote_id"]]
    assert len(on_server) == 2 and all(r["error_code"] == "STOPPED" for r in on_server)
    last = sweeper.progress[-1]
    assert last.finished and last.stopped == "stop requested" and last.in_flight_usd == pytest.approx(2 * RUN)


def test_a_stop_before_the_start_submits_nothing(service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    sweeper.cancel.set()
    s = sweeper.run(plan(ref_images, range(4)), concurrency=2)
    assert service.created() == 0 and s.submitted == 0 and by_status(sweeper) == Counter({"planned": 4})
    assert (s.still_running, s.may_cost_usd) == (0, 0.0) and "0 runs still on the server" in " ".join(s.messages)


def test_a_stopped_sweep_resumes_without_paying_twice(service: Service, sweeper: Sweeper,
                                                      ref_images: list[Path]) -> None:
    service.freeze()
    stop_after_submits(sweeper, 2)
    sweeper.run(plan(ref_images, range(5)), concurrency=2)
    sweeper.cancel.clear()
    service.thaw()
    s = sweeper.run(plan(ref_images, range(5)), concurrency=2)
    assert (s.reattached, s.submitted) == (2, 3) and by_status(sweeper) == Counter({"succeeded": 5})
    assert service.created() == 5 and service.billed() == pytest.approx(5 * RUN)


def test_a_stop_that_lands_while_the_run_is_being_claimed_sends_nothing(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    claim = sweeper.store.transition

    def claim_then_stop(*args: Any, **kw: Any) -> Any:
        got = claim(*args, **kw)
        sweeper.cancel.set()  # the stop arrives between the claim and the submit
        return got

    sweeper.store.transition = claim_then_stop  # type: ignore[method-assign]
    s = sweeper.run(plan(ref_images, range(2)), budget_usd=2 * RUN)
    assert service.created() == 0 and s.submitted == 0
    assert by_status(sweeper) == Counter({"planned": 2})
    assert all(r["submitted_at"] is None for r in sweeper.rows())
    assert sweeper.progress[-1].in_flight_usd == 0 and sweeper.progress[-1].unknown_usd == 0


def test_a_stop_while_a_submit_waits_for_budget_leaves_it_planned(service: Service, sweeper: Sweeper,
                                                                  ref_images: list[Path]) -> None:
    service.freeze()
    stop_after_submits(sweeper, 1)
    s = sweeper.run(plan(ref_images, range(3)), concurrency=3, budget_usd=RUN)
    counts = by_status(sweeper)
    assert counts["skipped_budget"] == 0 and counts["planned"] == 2, counts  # a stop is not a budget cut
    assert s.submitted == 1 and service.created() == 1


def test_a_stop_during_the_submit_request_leaves_the_run_unknown_and_reserved(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    async def hold_create(request: httpx.Request) -> httpx.Response | None:
        if is_create(request):
            sweeper.cancel.set()
            await asyncio.sleep(30)  # cancelled by the stop long before
        return None

    service.async_before.append(hold_create)
    s = sweeper.run(plan(ref_images, range(3)), concurrency=1, budget_usd=3 * RUN)
    counts = by_status(sweeper)
    assert counts == Counter({"unknown": 1, "planned": 2}), counts
    row = next(r for r in sweeper.rows() if r["status"] == "unknown")
    assert row["error_code"] == "STOPPED" and row["client_ref"]
    assert (s.still_running, s.may_cost_usd) == (1, pytest.approx(RUN))
    assert sweeper.progress[-1].unknown_usd == pytest.approx(RUN)
    service.async_before.clear()
    sweeper.cancel.clear()
    s = sweeper.run(plan(ref_images, range(3)), budget_usd=3 * RUN)  # looked up first: it was never made
    # not listed yet, and sent moments ago: it keeps its share unsent until the list has had time
    assert by_status(sweeper) == Counter({"succeeded": 2, "unknown": 1}) and service.created() == 2


def test_a_stop_while_runs_are_gathered_for_a_batch_leaves_them_planned(
        service: Service, sweeper: Sweeper, ref_images: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    # a long gathering window: the batch is surely still being gathered when the stop comes
    gather_batches(monkeypatch, window_s=30.0, max_delay_s=30.0)

    def stop_when_all_wait(p: SweepProgress) -> None:
        if p.counts.get("submitting", 0) == 4:  # three runs are queued for the batch; none was sent
            sweeper.cancel.set()

    s = sweeper.run(plan(ref_images, range(4)), concurrency=4, batch="auto", on_progress=stop_when_all_wait)
    assert service.created() == 0 and s.submitted == 0
    assert by_status(sweeper) == Counter({"planned": 4})  # nothing was sent: nothing is unknown
    assert (s.still_running, s.may_cost_usd) == (0, 0.0)
    assert sweeper.progress[-1].unknown_usd == 0 and sweeper.progress[-1].in_flight_usd == 0
    gather_batches(monkeypatch, window_s=0.1, max_delay_s=0.5)
    sweeper.cancel.clear()
    s = sweeper.run(plan(ref_images, range(4)), concurrency=4, batch="auto")
    assert by_status(sweeper) == Counter({"succeeded": 4}), [r["error_message"] for r in sweeper.rows()]
    assert service.created() == 4


def test_runs_a_batch_answer_already_shows_ended_are_read_in_full_before_they_are_recorded(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    def ended_before_the_answer(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.method != "POST" or not request.url.path.endswith("/batches") or response.status_code != 201:
            return None
        body = json.loads(response.read())
        for item in body.get("items") or []:  # the runs ended before the create answered (a fast model)
            item["status_code"] = service.sim.wait(item["run_id"], timeout=10, base_url=BASE)["status_code"]
        return httpx.Response(201, json=body, headers={k: v for k, v in response.headers.items()
                                                      if k.lower() not in ("content-length", "content-encoding")})

    service.emu.after.append(ended_before_the_answer)
    s = sweeper.run(plan(ref_images, range(4)), concurrency=4, batch="auto")
    assert by_status(sweeper) == Counter({"succeeded": 4}), [r["error_message"] for r in sweeper.rows()]
    assert all(Path(r["video_path"]).exists() for r in sweeper.rows()) and s.spent_usd == pytest.approx(4 * RUN)
    assert service.created() == 4


# --- fatal answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code", "error"), [
    (401, "UNAUTHORIZED", errors.AuthenticationError),
    (402, "INSUFFICIENT_CREDIT", errors.InsufficientCreditError),
    (403, "PERMISSION_DENIED", errors.AuthenticationError),
])
def test_a_fatal_answer_ends_submitting_at_the_first_one(service: Service, sweeper: Sweeper, ref_images: list[Path],
                                                         status: int, code: str, error: type[Exception]) -> None:
    async def refuse_after_two(request: httpx.Request) -> httpx.Response | None:
        if is_create(request):
            attempts.append(request)
            if len(attempts) > 2:
                return answer(status, {"code": code, "message": f"refused ({code})"})
        return None

    attempts: list[httpx.Request] = []
    service.async_before.append(refuse_after_two)
    s = sweeper.run(plan(ref_images, range(8)), concurrency=2)
    assert len(attempts) <= 4 and service.created() == 2  # the first refusal ends it (two may be in the air)
    assert isinstance(s.fatal, error) and s.stopped and code in s.stopped
    counts = by_status(sweeper)
    assert counts["succeeded"] == 2 and counts["planned"] == 6 and counts["error"] == 0, counts
    refused = [r for r in sweeper.rows() if r["error_code"] == code]
    assert 1 <= len(refused) <= 2 and all(r["status"] == "planned" for r in refused)
    assert sum("stopped submitting" in m for m in s.messages) == 1
    assert sweeper.progress[-1].in_flight_usd == 0 and sweeper.progress[-1].unknown_usd == 0


def test_a_fatal_answer_while_waiting_also_ends_submitting(service: Service, sweeper: Sweeper,
                                                           ref_images: list[Path]) -> None:
    async def key_revoked(request: httpx.Request) -> httpx.Response | None:
        if is_poll(request):
            return answer(401, {"code": "UNAUTHORIZED", "message": "key revoked"})
        return None

    service.freeze()
    service.async_before.append(key_revoked)
    s = sweeper.run(plan(ref_images, range(5)), concurrency=1)
    assert service.created() == 1 and isinstance(s.fatal, errors.AuthenticationError)
    counts = by_status(sweeper)
    assert counts["unknown"] == 1 and counts["planned"] == 4, counts  # created: it may be billed


def test_runs_in_flight_at_a_fatal_answer_are_waited_for_and_recorded(service: Service, sweeper: Sweeper,
                                                                      ref_images: list[Path]) -> None:
    async def refuse_second(request: httpx.Request) -> httpx.Response | None:
        if is_create(request):
            n = len(attempts)
            attempts.append(request)
            if n == 1:
                return answer(402, {"code": "INSUFFICIENT_CREDIT", "message": "top up"})
        return None

    attempts: list[httpx.Request] = []
    service.async_before.append(refuse_second)
    s = sweeper.run(plan(ref_images, range(6)), concurrency=1)
    assert by_status(sweeper) == Counter({"succeeded": 1, "planned": 5})
    assert len(attempts) == 2 and s.spent_usd == pytest.approx(RUN)


# --- order: a cut leaves a balanced sample ----------------------------------------------------------


def test_a_budget_cut_leaves_every_condition_represented(service: Service, sweeper: Sweeper,
                                                         ref_images: list[Path]) -> None:
    grid = rf.grid(prompt=["character1 walks", "character1 runs"], images=[ref_images[:1]], seed=range(3),
                   duration=3, resolution="720p", aspect_ratio=["16:9", "1:1"])
    sweeper.run(grid, budget_usd=4 * RUN)
    done = [r for r in sweeper.rows() if r["status"] == "succeeded"]
    assert len(done) == 4
    assert Counter((r["prompt"], r["aspect_ratio"]) for r in done) == Counter(
        {(p, a): 1 for p in ("character1 walks", "character1 runs") for a in ("16:9", "1:1")})
    assert len({r["seed"] for r in done}) == 1  # conditions compared on the same seed


def test_a_budget_cut_mid_round_spreads_over_every_varied_parameter(service: Service, sweeper: Sweeper,
                                                                    ref_images: list[Path]) -> None:
    grid = rf.grid(prompt=["character1 walks", "character1 runs"], images=[ref_images[:1]], seed=range(2),
                   duration=3, resolution="720p", aspect_ratio=["16:9", "1:1"])
    sweeper.run(grid, budget_usd=2 * RUN)
    done = [r for r in sweeper.rows() if r["status"] == "succeeded"]
    assert len({r["prompt"] for r in done}) == 2 and len({r["aspect_ratio"] for r in done}) == 2


# --- bad options: refused before anything is claimed --------------------------------------------------


@pytest.mark.parametrize(("option", "field"), [
    ({"concurrency": 0}, "concurrency"), ({"concurrency": 1.5}, "concurrency"), ({"concurrency": True}, "concurrency"),
    ({"budget_usd": -1}, "budget_usd"),
    ({"budget_usd": True}, "budget_usd"), ({"budget_usd": "5"}, "budget_usd"),
    ({"budget_usd": math.nan}, "budget_usd"), ({"experiment_budget_usd": -0.01}, "experiment budget_usd"),
])
def test_bad_sweep_options_are_refused_before_anything_runs(service: Service, sweeper: Sweeper,
                                                            ref_images: list[Path], option: dict[str, Any],
                                                            field: str) -> None:
    with pytest.raises(errors.ValidationError) as exc:
        sweeper.run(plan(ref_images, range(2)), **option)
    assert exc.value.fields == [field]
    (issue,) = exc.value.issues
    assert issue.message == f"is {next(iter(option.values()))!r}"
    assert issue.fix == ("use a whole number of at least 1" if field == "concurrency"
                         else "use a dollar amount of zero or more, or None")
    assert sweeper.rows() == [] and service.created() == 0


def test_a_lost_batch_is_found_on_resume_past_hundreds_of_newer_runs_when_the_server_ignores_the_filter(
        fast_clip: Path, no_fsync: None, tmp_path: Path, ref_images: list[Path]) -> None:
    """A server that ignores ``q=client_ref:`` (the filter is INFERRED in the contract) lists every
    run of the account, newest first; a busy account has made 500 runs since the lost batch. The
    look-up reads back to the time the batch was sent instead of stopping after five pages."""
    svc = Service(fast_clip, faults="drop=1x")  # the batch is created, its answer never arrives
    svc.emu.list_ignores_filters = True
    flag = _list_shows_nothing(svc)
    try:
        sw = Sweeper(svc, tmp_path)
        sw.run(plan(ref_images, range(3)), concurrency=3, batch="auto")
        assert svc.created() == 3 and by_status(sw) == Counter({"unknown": 3})
        flag["lagging"] = False
        svc.other_runs(500, "other")  # other runs of the account, made after the batch
        lists = svc.list_reads()
        s = sw.run(plan(ref_images, range(3)), concurrency=3)
        assert (s.reattached, s.submitted) == (3, 0) and by_status(sw) == Counter({"succeeded": 3})
        assert svc.created() - 500 == 3  # each run of the lost batch paid once
        lookups = [q for q in lists if "client_ref" in q]  # the closing reconcile reads the list unfiltered
        assert len(lookups) <= 3 * 7  # each look-up stopped at its run (six pages of 100), not at a page cap
    finally:
        svc.close()


def test_a_look_up_with_a_send_time_reads_back_to_it_and_no_further(fast_clip: Path, no_fsync: None) -> None:
    import asyncio
    from datetime import datetime, timezone

    svc = Service(fast_clip)
    svc.emu.list_ignores_filters = True
    try:
        svc.other_runs(300, "before")
        svc.clock.offset += 60  # a minute later: the create whose answer was lost is sent now
        sent = datetime.fromtimestamp(svc.clock(), timezone.utc)
        svc.clock.offset += 1
        svc.other_runs(150, "after")
        lists = svc.list_reads()

        async def find(ref: str, since: Any) -> Any:
            async with svc.client() as client:
                return await client.find(ref, since=since)

        assert asyncio.run(find("never-made", sent)) is None
        assert len(lists) == 3  # 150 newer runs (two pages), then a page that reaches back past the send
        lists.clear()
        assert asyncio.run(find("never-made", None)) is None and len(lists) == 5  # without it: five pages
        lists.clear()
        assert asyncio.run(find("before-3", sent)) is None  # made before the send: not ours to find
        found = asyncio.run(find("after-7", sent))
        assert found is not None and found.client_ref == "after-7"
    finally:
        svc.close()
