"""How each run of a sweep ends when something breaks half-way, and what it keeps of the budget.

The same zero-latency harness as ``test_sweep_money.py`` (:mod:`_fast_sweep`). Each test breaks one
step (the store, the download, the wait) at one moment and checks the row's status, its message and
the sweep's money view, so a run never ends in a state that loses money or hides why.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from _fast_sweep import RUN, Service, Sweeper, plan, sweep_together
from _scripted import answer, is_download, is_poll


def by_status(sw: Sweeper) -> Counter[str]:
    return Counter(r["status"] for r in sw.rows())


def one_unknown_run(service: Service, sweeper: Sweeper, ref_images: list[Path]) -> dict[str, Any]:
    """A sweep whose only run outlives its wait: left ``unknown`` with its remote id."""
    service.freeze()
    sweeper.run(plan(ref_images, range(1)), timeout=0.05)
    (row,) = sweeper.rows()
    assert row["status"] == "unknown"
    return row


def test_an_unknown_run_keeps_its_wait_error_and_its_remote_id(service: Service, sweeper: Sweeper,
                                                               ref_images: list[Path]) -> None:
    row = one_unknown_run(service, sweeper, ref_images)
    assert row["remote_id"] and row["error_code"] == "RunTimeoutError" and "still" in row["error_message"]
    assert sweeper.progress[-1].unknown_usd == pytest.approx(RUN)


@pytest.mark.parametrize("lost", ["answer", "wait"])
def test_an_unknown_run_stays_unknown_and_reserved_when_the_store_fails_before_it_is_looked_at(
        fast_clip: Path, no_fsync: None, tmp_path: Path, ref_images: list[Path], lost: str) -> None:
    service = Service(fast_clip, faults="drop=1x" if lost == "answer" else None)
    sweeper = Sweeper(service, tmp_path)
    if lost == "answer":  # the create's answer never came, and the list does not show it yet
        async def lagging(request: httpx.Request) -> httpx.Response | None:
            if request.method == "GET" and request.url.path == "/v1/runs":
                return answer(200, {"items": []})
            return None

        service.async_before.append(lagging)
        sweeper.run(plan(ref_images, range(1)))
        service.async_before.remove(lagging)
        (row,) = sweeper.rows()
        assert row["status"] == "unknown" and not row["remote_id"]
    else:
        row = one_unknown_run(service, sweeper, ref_images)
        service.thaw()
    real_get = sweeper.store.get_run
    failed: list[str] = []

    def get_run(run_id: str, *args: Any, **kw: Any) -> Any:
        if run_id == row["run_id"] and not failed:
            failed.append(run_id)
            raise RuntimeError("database is locked")
        return real_get(run_id, *args, **kw)

    sweeper.store.get_run = get_run  # type: ignore[method-assign]
    s = sweeper.run(plan(ref_images, range(2)), budget_usd=RUN)
    assert failed
    rows = {r["run_id"]: r for r in sweeper.rows()}
    again = rows[row["run_id"]]
    assert again["status"] == "unknown" and again["error_code"] == "RuntimeError"
    assert "database is locked" in again["error_message"]
    # its share is still taken: the other run does not fit in a budget of one run
    assert by_status(sweeper) == Counter({"unknown": 1, "skipped_budget": 1}) and s.submitted == 0
    assert sweeper.progress[-1].unknown_usd == pytest.approx(RUN)
    service.close()


def test_a_stop_does_not_count_old_unknown_runs_it_never_touched(service: Service, sweeper: Sweeper,
                                                                  ref_images: list[Path]) -> None:
    one_unknown_run(service, sweeper, ref_images)
    sweeper.cancel.set()
    s = sweeper.run(plan(ref_images, range(3)), concurrency=1)
    assert s.submitted == 0 and service.created() == 1
    assert (s.still_running, s.may_cost_usd) == (0, 0.0)  # left by an earlier sweep, not by this stop
    assert by_status(sweeper) == Counter({"unknown": 1, "planned": 2})


def test_a_download_that_breaks_off_is_charged_and_left_for_the_next_run(service: Service, sweeper: Sweeper,
                                                                       ref_images: list[Path]) -> None:
    async def drop(request: httpx.Request) -> httpx.Response | None:
        if is_download(request):
            raise httpx.ReadError("connection reset by peer", request=request)
        return None

    service.async_before.append(drop)
    s = sweeper.run(plan(ref_images, range(2)), budget_usd=2 * RUN, concurrency=1)
    rows = sweeper.rows()
    assert by_status(sweeper) == Counter({"download_failed": 2}), [(r["error_code"], r["error_message"]) for r in rows]
    assert all(r["remote_id"] and r["cost_usd"] == pytest.approx(RUN) for r in rows)
    assert all(r["error_message"] for r in rows)
    assert s.spent_usd == pytest.approx(2 * RUN) and sweeper.progress[-1].unknown_usd == 0
    service.async_before.clear()
    s = sweeper.run(plan(ref_images, range(2)), budget_usd=0)
    assert by_status(sweeper) == Counter({"succeeded": 2}) and service.created() == 2 and s.submitted == 0


def test_a_failure_while_renewing_an_expired_video_url_leaves_the_run_charged_not_unknown(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    expired: list[str] = []

    async def expire_then_fail(request: httpx.Request) -> httpx.Response | None:
        if is_download(request):
            expired.append(request.url.path)
            return answer(410, {"code": "URL_EXPIRED", "message": "the link expired"})
        if is_poll(request) and expired:  # asking the run for a fresh link fails too
            return answer(503, {"code": "MODEL_UNAVAILABLE", "message": "busy"})
        return None

    service.async_before.append(expire_then_fail)
    s = sweeper.run(plan(ref_images, range(1)), budget_usd=RUN)
    (row,) = sweeper.rows()
    assert expired and row["status"] == "download_failed", (row["status"], row["error_code"], row["error_message"])
    assert row["cost_usd"] == pytest.approx(RUN) and s.spent_usd == pytest.approx(RUN)
    assert sweeper.progress[-1].unknown_usd == 0 and sweeper.progress[-1].in_flight_usd == 0


def test_a_stop_during_a_download_leaves_the_run_charged_and_resumable(service: Service, sweeper: Sweeper,
                                                                      ref_images: list[Path]) -> None:
    async def stop_mid_download(request: httpx.Request) -> httpx.Response | None:
        if is_download(request):
            sweeper.cancel.set()
            await asyncio.sleep(30)  # the stop cancels this long before
        return None

    service.async_before.append(stop_mid_download)
    s = sweeper.run(plan(ref_images, range(3)), budget_usd=3 * RUN, concurrency=1)
    counts = by_status(sweeper)
    # The slot frees when a run ends, before its download: the next run's create may already be out
    # when the first download meets the stop (at zero latency it ends and is caught downloading too).
    caught = counts["download_failed"]
    assert caught in (1, 2) and counts == Counter({"download_failed": caught, "planned": 3 - caught}), counts
    assert service.created() == caught  # what the server made is exactly what was caught downloading
    for row in (r for r in sweeper.rows() if r["status"] == "download_failed"):
        assert row["error_code"] == "STOPPED" and "re-run downloads it" in row["error_message"]
        assert row["cost_usd"] == pytest.approx(RUN)
    assert s.spent_usd == pytest.approx(caught * RUN)
    assert (s.still_running, s.may_cost_usd) == (0, 0.0)  # billed already: nothing more to come
    service.async_before.clear()
    sweeper.cancel.clear()
    s = sweeper.run(plan(ref_images, range(3)))
    assert by_status(sweeper) == Counter({"succeeded": 3}) and service.created() == 3


def test_a_stop_while_runs_wait_on_the_server_says_so_on_each_row(service: Service, sweeper: Sweeper,
                                                                  ref_images: list[Path]) -> None:
    service.freeze()

    def stop_once_running(p: Any) -> None:
        if p.counts.get("queued", 0) + p.counts.get("running", 0) >= 2:
            sweeper.cancel.set()

    s = sweeper.run(plan(ref_images, range(4)), concurrency=2, on_progress=stop_once_running)
    left = [r for r in sweeper.rows() if r["remote_id"]]
    assert len(left) == 2 and s.still_running == 2
    for r in left:
        assert r["error_code"] == "STOPPED" and r["status"] in ("queued", "running")
        assert "may still be billed" in r["error_message"] and "re-attaches" in r["error_message"]


@pytest.mark.parametrize(("body", "code"), [({"code": "NOT_FOUND", "message": "gone"}, "NOT_FOUND"),
                                           ({"message": "gone"}, "RUN_NOT_FOUND")])
def test_a_run_the_server_answers_404_for_stays_unknown_with_its_share(service: Service, sweeper: Sweeper,
                                                               ref_images: list[Path], body: dict[str, Any],
                                                               code: str) -> None:
    async def gone(request: httpx.Request) -> httpx.Response | None:
        if is_poll(request):
            return answer(404, body)
        return None

    service.freeze()
    service.async_before.append(gone)
    sweeper.run(plan(ref_images, range(1)), timeout=0.5)
    (row,) = sweeper.rows()
    # its id came from a 201: the 404s are lag, never an ending; it keeps its share, its cost unknown
    assert row["status"] == "unknown" and row["remote_id"] and row["cost_usd"] is None
    assert "404" in row["error_message"] and sweeper.progress[-1].unknown_usd == pytest.approx(RUN)


def _fail_first_read(sweeper: Sweeper, run_id: str) -> list[str]:
    """The store fails the first time the sweep reads ``run_id`` (a locked database, say)."""
    real_get = sweeper.store.get_run
    failed: list[str] = []

    def get_run(rid: str, *args: Any, **kw: Any) -> Any:
        if rid == run_id and not failed:
            failed.append(rid)
            raise RuntimeError("database is locked")
        return real_get(rid, *args, **kw)

    sweeper.store.get_run = get_run  # type: ignore[method-assign]
    return failed


def test_a_store_failure_before_a_new_run_is_sent_is_an_error_that_frees_its_share(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    first = plan(ref_images, range(2))
    sweeper.run(first, budget_usd=0)  # both rows exist (skipped), none sent
    target = sorted(sweeper.rows(), key=lambda r: r["seed"])[0]
    failed = _fail_first_read(sweeper, target["run_id"])
    s = sweeper.run(first, budget_usd=RUN)
    rows = {r["run_id"]: r for r in sweeper.rows()}
    assert failed and rows[target["run_id"]]["status"] == "error"  # never sent: nothing to keep
    assert rows[target["run_id"]]["error_code"] == "RuntimeError"
    assert s.submitted == 1 and service.created() == 1  # its share went to the other run
    assert sweeper.progress[-1].unknown_usd == 0


def test_a_store_failure_on_a_billed_run_without_its_video_never_leads_to_a_second_payment(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    async def broken(request: httpx.Request) -> httpx.Response | None:
        return answer(500, {"code": "INTERNAL_ERROR", "message": "disk"}) if is_download(request) else None

    service.async_before.append(broken)
    sweeper.run(plan(ref_images, range(1)))
    (row,) = sweeper.rows()
    assert row["status"] == "download_failed" and row["remote_id"]
    service.async_before.clear()
    failed = _fail_first_read(sweeper, row["run_id"])
    sweeper.run(plan(ref_images, range(1)))
    (row,) = sweeper.rows()
    assert failed and row["status"] != "error"  # it was paid for: never a run to send again
    sweeper.run(plan(ref_images, range(1)))
    (row,) = sweeper.rows()
    assert row["status"] == "succeeded" and service.created() == 1 and service.billed() == pytest.approx(RUN)


@pytest.mark.parametrize("cost", [0.5, None])
def test_the_servers_cost_is_what_is_booked_and_the_estimate_stands_in_when_it_says_none(
        service: Service, sweeper: Sweeper, ref_images: list[Path], cost: float | None) -> None:
    def priced(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if not is_poll(request):
            return None
        body = json.loads(response.read())
        if body.get("status_code") == "succeeded":
            body["cost"] = cost
        return httpx.Response(200, json=body)

    service.emu.after.append(priced)
    s = sweeper.run(plan(ref_images, range(1)))
    (row,) = sweeper.rows()
    booked = RUN if cost is None else cost
    assert row["status"] == "succeeded" and row["cost_usd"] == pytest.approx(booked)
    assert s.spent_usd == pytest.approx(booked)


def test_a_billed_run_without_a_price_anywhere_costs_nothing_rather_than_a_guess() -> None:
    from runflow_nb.sweep.status import charged_usd

    assert charged_usd({"status": "succeeded", "cost_usd": None, "cost_estimate_usd": None}) == 0.0
    assert charged_usd({"status": "unknown", "cost_estimate_usd": None}) == 0.0


def test_a_failed_run_keeps_the_servers_reason_and_end_time(fast_clip: Path, no_fsync: None, tmp_path: Path,
                                                          ref_images: list[Path]) -> None:
    service = Service(fast_clip, faults="fail=1x")
    try:
        sweeper = Sweeper(service, tmp_path)
        sweeper.run(plan(ref_images, range(1)))
        (row,) = sweeper.rows()
        assert row["status"] == "failed" and row["error_code"] == "GENERATION_FAILED"
        assert "could not generate this clip" in row["error_message"]
        assert row["completed_at"] is not None and row["cost_usd"] == 0.0
    finally:
        service.close()


def test_a_run_that_ended_without_a_reason_says_how_it_ended(service: Service, sweeper: Sweeper,
                                                             ref_images: list[Path]) -> None:
    def no_reason(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if not is_poll(request):
            return None
        body = json.loads(response.read())
        body.update(status_code="canceled", failure_code=None, failure_message=None, error=None, cost=None)
        return httpx.Response(200, json=body)

    service.emu.after.append(no_reason)
    sweeper.run(plan(ref_images, range(1)))
    (row,) = sweeper.rows()
    assert row["status"] == "canceled" and row["error_message"] == "run canceled" and row["cost_usd"] == 0.0


def test_a_run_left_unknown_with_its_remote_id_is_re_attached_by_that_id(service: Service, sweeper: Sweeper,
                                                                          ref_images: list[Path]) -> None:
    one_unknown_run(service, sweeper, ref_images)
    service.thaw()

    async def empty_list(request: httpx.Request) -> httpx.Response | None:
        if request.method == "GET" and request.url.path == "/v1/runs":  # the list shows nothing (yet)
            return answer(200, {"items": [], "next_pq": None})
        return None

    service.async_before.append(empty_list)
    s = sweeper.run(plan(ref_images, range(1)))
    assert (s.reattached, s.submitted) == (1, 0) and service.created() == 1
    assert by_status(sweeper) == Counter({"succeeded": 1})


def test_an_expired_video_link_is_renewed_from_the_run_and_fetched_once_more(service: Service, sweeper: Sweeper,
                                                                             ref_images: list[Path]) -> None:
    downloads = service.expire_first_download()
    s = sweeper.run(plan(ref_images, range(1)), budget_usd=RUN)
    (row,) = sweeper.rows()
    assert row["status"] == "succeeded" and Path(row["video_path"]).exists(), row["error_message"]
    assert len(downloads) == 2 and downloads[1] == downloads[0] + "?renewed=1" and row["output_url"] == downloads[1]
    assert s.submitted == 1 and service.created() == 1 and s.spent_usd == pytest.approx(RUN)


def test_a_reused_run_whose_video_went_missing_is_fetched_again_without_a_new_submit(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    sweeper.run(plan(ref_images, range(2)))
    gone = sweeper.rows()[0]
    Path(gone["video_path"]).unlink()
    s = sweeper.run(plan(ref_images, range(2)), budget_usd=0)
    assert (s.reused, s.submitted) == (2, 0) and service.created() == 2
    assert Path(next(r for r in sweeper.rows() if r["run_id"] == gone["run_id"])["video_path"]).exists()


def test_the_stop_message_counts_one_run_in_the_singular(service: Service, sweeper: Sweeper,
                                                         ref_images: list[Path]) -> None:
    service.freeze()

    def stop_once_running(p: Any) -> None:
        if p.counts.get("queued", 0) + p.counts.get("running", 0) >= 1:
            sweeper.cancel.set()

    s = sweeper.run(plan(ref_images, range(3)), on_progress=stop_once_running)
    (msg,) = [m for m in s.messages if m.startswith("stopped:")]
    assert "1 run still on the server" in msg and "$0.42" in msg and "2 left planned" in msg
    assert s.stopped == "stop requested" and sweeper.progress[-1].stopped == "stop requested"


def test_a_call_budget_equal_to_what_the_experiment_has_left_is_reported_as_the_calls(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    sweeper.run(plan(ref_images, range(1)))
    sweeper.run(plan(ref_images, range(1, 3)), budget_usd=2 * RUN, experiment_budget_usd=3 * RUN)
    p = sweeper.progress[-1]
    assert p.budget_scope == "call" and p.budget_usd == pytest.approx(2 * RUN) and p.prior_usd == pytest.approx(RUN)


def test_two_sweeps_of_one_plan_in_one_process_send_each_run_once(service: Service, tmp_path: Path,
                                                                 ref_images: list[Path]) -> None:
    url = str(tmp_path / "shared.sqlite")
    sweepers = [Sweeper(service, tmp_path / str(i), store=url) for i in range(2)]
    results = sweep_together(sweepers, [plan(ref_images, range(4))] * 2, concurrency=4)
    assert service.created() == 4 and sum(r.submitted for r in results) == 4
    assert Counter(r["status"] for r in sweepers[0].rows()) == Counter({"succeeded": 4})
