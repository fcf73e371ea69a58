"""What a sweep writes at each turn of a run's way, read back from the store and the server.

Same zero-latency harness as ``test_sweep_money.py`` (:mod:`_fast_sweep`). These pin the row a
researcher (or another process) reads while and after a run is sent: who sent it and when, which
``client_ref`` a retried run goes out under, what a refusal leaves behind, and what a stop caught
while a run is re-attached reports.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from _fast_sweep import HOLD_S, RUN, Service, Sweeper, plan
from _scripted import answer, is_create, is_poll


def by_status(sw: Sweeper) -> Counter[str]:
    return Counter(r["status"] for r in sw.rows())


def test_a_run_says_who_sent_it_and_when_before_its_create_leaves(service: Service, sweeper: Sweeper,
                                                                 ref_images: list[Path]) -> None:
    seen: list[dict[str, Any]] = []

    async def look_while_sending(request: httpx.Request) -> httpx.Response | None:
        if is_create(request):  # what another process reading the store sees while the create is in the air
            seen.append(dict(sweeper.store.runs(sweeper.experiment)[0]))
        return None

    service.async_before.append(look_while_sending)
    sweeper.run(plan(ref_images, range(1)))
    (row,) = sweeper.rows()
    (during,) = seen
    assert during["status"] == "submitting" and during["attempts"] == 1
    assert during["owner"] and during["owner"] == row["owner"]  # claimed: a live owner, never up for grabs
    assert during["submitted_at"] is not None and during["submitted_at"] == row["submitted_at"]
    assert during["client_ref"] == row["client_ref"]


def test_a_failed_run_sent_again_drops_the_earlier_failure_once_it_succeeds(
        fast_clip: Path, no_fsync: None, tmp_path: Path, ref_images: list[Path]) -> None:
    svc = Service(fast_clip, faults="fail=1x")
    try:
        sw = Sweeper(svc, tmp_path)
        sw.run(plan(ref_images, range(1)))
        (first,) = sw.rows()
        assert first["status"] == "failed" and first["error_code"] and first["error_message"]
        sw.run(plan(ref_images, range(1)))
        (again,) = sw.rows()
        assert again["status"] == "succeeded" and again["attempts"] == 2
        assert again["error_code"] is None and again["error_message"] is None  # the table shows no stale failure
    finally:
        svc.close()


def _end_with(status: str, service: Service, sweeper: Sweeper, ref_images: list[Path]) -> dict[str, Any]:
    """A first sweep of one run that ends ``status`` (nothing billed), its row."""
    if status == "skipped_budget":
        sweeper.run(plan(ref_images, range(1)), budget_usd=0)
    else:
        async def refuse_or_cancel(request: httpx.Request) -> httpx.Response | None:
            if status == "error" and is_create(request):
                return answer(422, {"code": "VALIDATION_ERROR", "message": "prompt: refused by the server",
                                    "errors": [{"field": "prompt", "message": "refused"}]})
            return None

        service.async_before.append(refuse_or_cancel)
        if status == "canceled":
            service.emu.faults = "cancel=1x"  # canceled by an administrator on the server: not billed
        sweeper.run(plan(ref_images, range(1)))
        service.emu.faults = None
        service.async_before.remove(refuse_or_cancel)
    (row,) = sweeper.rows()
    assert row["status"] == status, row
    return row


@pytest.mark.parametrize("status", ["canceled", "error", "skipped_budget"])
def test_a_run_that_ended_unbilled_is_sent_again_under_a_new_client_ref(
        service: Service, sweeper: Sweeper, ref_images: list[Path], status: str) -> None:
    first = _end_with(status, service, sweeper, ref_images)
    created_before = service.created()
    sent: list[str] = []

    async def record(request: httpx.Request) -> httpx.Response | None:
        if is_create(request):
            import json

            sent.append(json.loads(request.content)["client_ref"])
        return None

    service.async_before.append(record)
    s = sweeper.run(plan(ref_images, range(1)))
    (again,) = sweeper.rows()
    assert s.submitted == 1 and again["status"] == "succeeded" and service.created() == created_before + 1
    # the old reference names an attempt that ended (or never went out): a look-up by it must not find that
    assert sent == [again["client_ref"]] and again["client_ref"] != first["client_ref"]


def test_a_fatal_answer_leaves_the_refused_run_planned_with_the_servers_words(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    async def no_credit(request: httpx.Request) -> httpx.Response | None:
        if is_create(request):
            return answer(402, {"code": "INSUFFICIENT_CREDIT", "message": "top up: balance 0.10 USD"})
        return None

    service.async_before.append(no_credit)
    s = sweeper.run(plan(ref_images, range(3)))
    rows = sweeper.rows()
    assert [r["status"] for r in rows] == ["planned"] * 3 and s.fatal is not None
    (refused,) = [r for r in rows if r["error_code"]]
    assert refused["error_code"] == "INSUFFICIENT_CREDIT"
    assert "top up: balance 0.10 USD" in refused["error_message"]
    assert refused["submitted_at"] is None and refused["remote_id"] is None  # nothing is on the server
    assert service.created() == 0


@pytest.mark.parametrize(("status", "code"), [(400, "BAD_REQUEST"), (404, "MODEL_NOT_FOUND"),
                                              (422, "VALIDATION_ERROR")])
def test_a_create_refused_with_a_4xx_is_an_unbilled_error(service: Service, sweeper: Sweeper,
                                                          ref_images: list[Path], status: int, code: str) -> None:
    async def refuse(request: httpx.Request) -> httpx.Response | None:
        return answer(status, {"code": code, "message": "refused here"}) if is_create(request) else None

    service.async_before.append(refuse)
    s = sweeper.run(plan(ref_images, range(2)), budget_usd=2 * RUN)
    assert by_status(sweeper) == Counter({"error": 2}) and s.fatal is None
    assert all(r["error_code"] == code and "refused here" in r["error_message"] for r in sweeper.rows())
    assert sweeper.progress[-1].unknown_usd == 0 and sweeper.progress[-1].in_flight_usd == 0  # shares freed


def test_a_create_answered_500_is_never_taken_for_a_refusal(service: Service, sweeper: Sweeper,
                                                            ref_images: list[Path]) -> None:
    async def broken(request: httpx.Request) -> httpx.Response | None:
        return answer(500, {"code": "INTERNAL_ERROR", "message": "oops"}) if is_create(request) else None

    service.async_before.append(broken)
    sweeper.run(plan(ref_images, range(1)))
    (row,) = sweeper.rows()
    # a 5xx may come after the run was created: its fate is unknown and it keeps its share until looked up
    assert row["status"] == "unknown" and sweeper.progress[-1].unknown_usd == pytest.approx(RUN)


def test_the_budget_guard_explains_itself_once(service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    s = sweeper.run(plan(ref_images, range(5)), budget_usd=2 * RUN)
    assert s.total == 5 and 0 < s.wall_s < 600 and (s.still_running, s.may_cost_usd) == (0, 0.0)
    assert s.skipped_budget == 3 and by_status(sweeper)["skipped_budget"] == 3
    guards = [m for m in s.messages if m.startswith("budget guard:")]
    assert len(guards) == 1 and "would exceed $0.84" in guards[0]
    assert all(r["error_code"] == "BUDGET" and r["error_message"].endswith("budget of $0.84")
               for r in sweeper.rows() if r["status"] == "skipped_budget")


def test_a_billed_run_whose_download_failed_is_never_sent_again_even_when_the_server_lost_it(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    sweeper.run(plan(ref_images, range(1)))
    (row,) = sweeper.rows()
    # as a crash mid-download might leave it: billed, no file, and only the client_ref to find it by
    sweeper.store.update_run(row["run_id"], status="download_failed", remote_id=None, video_path=None)
    service.async_before.append(_empty_lists)
    s = sweeper.run(plan(ref_images, range(1)))
    assert s.submitted == 0 and service.created() == 1  # paid once: never submitted again
    (after,) = sweeper.rows()
    assert after["status"] == "download_failed"


async def _empty_lists(request: httpx.Request) -> httpx.Response | None:
    """A server whose run list no longer shows the run (the look-up by client_ref finds nothing)."""
    if request.method == "GET" and request.url.path == "/v1/runs":
        return answer(200, {"items": []})
    return None


def test_a_stop_while_a_run_is_re_attached_counts_it_as_still_on_the_server(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    service.freeze()

    def stop_once_running(p: Any) -> None:
        if p.counts.get("queued", 0) + p.counts.get("running", 0) >= 1:
            sweeper.cancel.set()

    sweeper.run(plan(ref_images, range(1)), on_progress=stop_once_running)  # left running on the server
    sweeper.cancel.clear()

    async def stop_on_the_first_look(request: httpx.Request) -> httpx.Response | None:
        if is_poll(request):
            sweeper.cancel.set()
            await asyncio.sleep(30)
        return None

    service.async_before.append(stop_on_the_first_look)
    s = sweeper.run(plan(ref_images, range(1)))
    assert s.reattached == 0 and s.submitted == 0 and service.created() == 1
    assert (s.still_running, s.may_cost_usd) == (1, pytest.approx(RUN))
    assert any("1 run still on the server" in m and "0 left planned" in m for m in s.messages)
    (row,) = sweeper.rows()
    assert row["error_message"] == ("stopped while running on the server (it may still be billed); "
                                    "a re-run re-attaches it")


def test_a_re_attached_run_still_running_is_shown_in_flight_not_unknown(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    service.freeze()

    async def flaky(request: httpx.Request) -> httpx.Response | None:
        return answer(503, {"code": "MODEL_UNAVAILABLE", "message": "busy"}) if is_poll(request) else None

    service.async_before.append(flaky)
    sweeper.run(plan(ref_images, range(1)))  # the wait fails: unknown, still running on the server
    assert by_status(sweeper) == Counter({"unknown": 1})
    service.async_before.remove(flaky)
    shares: list[tuple[float, float]] = []

    async def look(request: httpx.Request) -> httpx.Response | None:
        if is_poll(request):  # the first look re-attaches the run; the next ones are its wait
            p = sweeper.progress[-1]
            shares.append((p.in_flight_usd, p.unknown_usd))
            if len(shares) == 2:
                service.thaw()
        return None

    service.async_before.append(look)
    s = sweeper.run(plan(ref_images, range(1)))
    assert s.reattached == 1 and by_status(sweeper) == Counter({"succeeded": 1})
    assert len(shares) >= 2 and shares[-1] == (pytest.approx(RUN), 0)  # waited for as in flight


# --- the experiment cap contested by another sweep ---------------------------------------------------


def _claim_elsewhere(sweeper: Sweeper, usd: float, status: str, owner: str) -> str:
    from test_sweep_caps import spend_elsewhere

    spend_elsewhere(sweeper, usd, status=status, owner=owner)
    return next(r["run_id"] for r in sweeper.store.runs(sweeper.experiment) if r["prompt"] == "elsewhere")


def _watch(sweeper: Sweeper) -> tuple[list[int], list[str]]:
    """(the sweep's looks at the experiment's runs once its run was claimed for submitting, the statuses
    it wrote to its run meanwhile)."""
    looks: list[int] = []
    written: list[str] = []
    claimed: list[str] = []
    real_runs, real_update, real_transition = sweeper.store.runs, sweeper.store.update_run, sweeper.store.transition

    def runs(*args: Any, **kw: Any) -> Any:
        if claimed:
            looks.append(1)
        return real_runs(*args, **kw)

    def update_run(run_id: str, **fields: Any) -> Any:
        if claimed and run_id == claimed[0] and "status" in fields:
            written.append(fields["status"])
        return real_update(run_id, **fields)

    def transition(run_id: str, **fields: Any) -> Any:
        done = real_transition(run_id, **fields)
        if done and fields.get("status") == "submitting":
            claimed.append(run_id)
        return done

    sweeper.store.runs = runs  # type: ignore[method-assign]
    sweeper.store.update_run = update_run  # type: ignore[method-assign]
    sweeper.store.transition = transition  # type: ignore[method-assign]
    return looks, written


def test_a_claim_contested_by_a_sweep_that_then_steps_back_is_sent_after_a_second_look(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    looks, written = _watch(sweeper)
    watched = sweeper.store.runs
    other: list[str] = []

    def runs(*args: Any, **kw: Any) -> Any:
        rows = watched(*args, **kw)
        if len(looks) == 1 and other:  # the sweep's first look at the cap, once its run is claimed
            sweeper.store.update_run(other[0], status="skipped_budget")  # the other sweep steps back meanwhile
        return rows

    def contender(p: Any) -> None:  # another sweep claims a run that, with this one, passes the cap
        if not other:
            other.append(_claim_elsewhere(sweeper, 2 * RUN, "submitting", "elsewhere:1"))

    sweeper.store.runs = runs  # type: ignore[method-assign]
    s = sweeper.run(plan(ref_images, range(1)), experiment_budget_usd=2 * RUN, on_progress=contender)
    assert s.submitted == 1 and service.created() == 1 and s.skipped_budget == 0
    assert len(looks) == 3  # a contested look, then a clear one (and the closing reconcile's read)
    # between its looks the run stepped back to planned, so the other sweep did not count it as a contender
    assert written[:2] == ["planned", "submitting"], written


def test_a_claim_past_the_cap_with_no_contender_is_skipped_at_the_first_look(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    mine = sweeper.run(plan(ref_images, range(1)), budget_usd=0)  # a row of this sweep's own, never sent
    assert mine.skipped_budget == 1
    looks, written = _watch(sweeper)
    spent: list[str] = []

    def spent_elsewhere(p: Any) -> None:  # after the start: another sweep's run finished, not being submitted
        if not spent:
            spent.append(_claim_elsewhere(sweeper, 2 * RUN, "succeeded", "elsewhere:1"))

    s = sweeper.run(plan(ref_images, range(1, 2)), experiment_budget_usd=2.5 * RUN, on_progress=spent_elsewhere)
    assert s.submitted == 0 and s.skipped_budget == 1 and service.created() == 0
    assert len(looks) == 2 and "planned" not in written  # looked once (then the reconcile), never stepped back


def test_a_claim_that_stays_contested_gives_up_after_its_looks_and_says_why(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    looks, written = _watch(sweeper)
    claimed: list[str] = []

    def contender(p: Any) -> None:
        if not claimed:
            claimed.append(_claim_elsewhere(sweeper, 2 * RUN, "submitting", "elsewhere:1"))

    s = sweeper.run(plan(ref_images, range(1)), experiment_budget_usd=2 * RUN, on_progress=contender)
    assert s.submitted == 0 and s.skipped_budget == 1 and service.created() == 0
    assert len(looks) == 6  # every look the contest allows, then the closing reconcile's read
    assert written.count("planned") == 4 and written[-1] == "skipped_budget"
    (row,) = [r for r in sweeper.rows() if r["prompt"] != "elsewhere"]
    assert row["status"] == "skipped_budget" and row["error_code"] == "BUDGET" and row["submitted_at"] is None
    assert row["error_message"] == "skipped: other sweeps of this experiment committed its budget of $0.84 meanwhile"


# --- downloads and the recorded run -----------------------------------------------------------------


def test_an_expired_link_the_run_cannot_renew_is_a_charged_download_failure(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    tries: list[str] = []

    async def always_expired(request: httpx.Request) -> httpx.Response | None:
        if request.method == "GET" and request.url.path.startswith("/files/"):
            tries.append(str(request.url))
            return answer(410, {"code": "URL_EXPIRED", "message": "the link expired"})
        return None

    service.async_before.append(always_expired)  # the run hands out the same (expired) link again
    s = sweeper.run(plan(ref_images, range(1)))
    (row,) = sweeper.rows()
    assert len(tries) == 1  # the same dead link is not asked for twice
    assert row["status"] == "download_failed" and row["error_code"] == "ExpiredURLError"
    assert "expired" in row["error_message"] and row["cost_usd"] == pytest.approx(RUN)
    assert s.counts["download_failed"] == 1 and sweeper.progress[-1].counts["download_failed"] == 1
    assert s.spent_usd == pytest.approx(RUN)


def test_a_partial_run_whose_link_expired_is_renewed_and_stays_partial(
        fast_clip: Path, no_fsync: None, tmp_path: Path, ref_images: list[Path]) -> None:
    svc = Service(fast_clip, faults="partial=1x")
    try:
        sw = Sweeper(svc, tmp_path)
        downloads = svc.expire_first_download()
        sw.run(plan(ref_images, range(1)))
        (row,) = sw.rows()
        assert len(downloads) == 2 and row["status"] == "partial_succeeded" and Path(row["video_path"]).exists()
    finally:
        svc.close()


def test_a_run_keeps_the_servers_end_time_and_gets_one_when_the_server_gives_none(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    sweeper.run(plan(ref_images, range(1)))
    (row,) = sweeper.rows()
    (server_run,) = service.sim.list_runs(limit=10)[0]
    assert row["completed_at"] is not None and row["completed_at"].isoformat().startswith(
        str(server_run["completed_at"])[:19])

    def no_end_time(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if not is_poll(request):
            return None
        import json

        body = json.loads(response.read())
        body["completed_at"] = None
        return httpx.Response(response.status_code, json=body)

    service.emu.after.append(no_end_time)
    sweeper.run(plan(ref_images, range(1, 2)))
    row = next(r for r in sweeper.rows() if r["seed"] == 1)
    assert row["status"] == "succeeded" and row["completed_at"] is not None


# --- a stop during a batch's uploads; a passing 404 while re-attaching ----------------------------


def test_a_stop_while_a_batchs_references_upload_sends_no_batch_and_a_resume_pays_once(
        service: Service, sweeper: Sweeper, tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    big = tmp_path / "big.png"  # over the inline limit: each run's reference goes through the upload
    Image.fromarray(np.random.default_rng(7).integers(0, 255, (1100, 1500, 3), dtype=np.uint8)).save(big)

    async def stop_during_upload(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == "/v1/asset-uploads":
            sweeper.cancel.set()  # Stop pressed while the batch's reference uploads
            await asyncio.sleep(0.1)  # the upload finishes a moment after the stop
        return None

    real_update = sweeper.store.update_run

    def busy_store(run_id: str, **fields: Any) -> Any:  # the stop's writes take a moment (a busy store)
        if fields.get("status") == "planned":
            time.sleep(0.3)
        return real_update(run_id, **fields)

    sweeper.store.update_run = busy_store  # type: ignore[method-assign]
    service.async_before.append(stop_during_upload)
    s = sweeper.run(plan([big], range(2)), concurrency=2, batch="auto", budget_usd=2 * RUN)
    sweeper.store.update_run = real_update  # type: ignore[method-assign]
    assert service.created() == 0, "a batch went out after the stop"
    assert by_status(sweeper) == Counter({"planned": 2}) and (s.still_running, s.may_cost_usd) == (0, 0.0)
    service.async_before.clear()
    sweeper.cancel.clear()
    s = sweeper.run(plan([big], range(2)), concurrency=2, budget_usd=2 * RUN)
    assert by_status(sweeper) == Counter({"succeeded": 2}) and service.created() == 2
    assert service.billed() == pytest.approx(2 * RUN)


def test_a_passing_404_while_re_attaching_never_makes_a_billed_run_look_unbilled(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    service.freeze()
    sweeper.run(plan(ref_images, range(1)), timeout=0.05)  # the wait times out: unknown, with its remote id
    (row,) = sweeper.rows()
    assert row["status"] == "unknown" and row["remote_id"]
    service.thaw()  # it succeeds, and is billed, on the server
    looks: list[int] = []

    async def one_stale_read(request: httpx.Request) -> httpx.Response | None:
        if is_poll(request) and not looks:
            looks.append(1)  # a lagging read answers 404 once
            return answer(404, {"code": "RUN_NOT_FOUND", "message": "not yet"})
        return None

    service.async_before.append(one_stale_read)
    s = sweeper.run(plan(ref_images, range(1)))
    (row,) = sweeper.rows()
    assert looks and row["status"] == "succeeded" and s.reattached == 1 and s.submitted == 0
    service.async_before.clear()
    s = sweeper.run(plan(ref_images, range(1)))
    assert s.submitted == 0 and service.created() == 1 and service.billed() == pytest.approx(RUN)


def test_a_service_charging_more_than_estimated_is_reserved_at_its_price_from_then_on(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    service.charge_on_success("0.84")  # 3 s at 720p, charged at $0.28/s instead of the estimated $0.14/s
    s = sweeper.run(plan(ref_images, range(4)), budget_usd=3 * RUN)
    # the first run shows the real price; the next is reserved at it and no longer fits the $1.26
    assert s.spent_usd == pytest.approx(2 * RUN) and s.spent_usd <= 3 * RUN and s.submitted == 1
    assert by_status(sweeper) == Counter({"succeeded": 1, "skipped_budget": 3})
    assert any("charged $0.84 for a run estimated at $0.42" in m and "2.00×" in m for m in s.messages)
    assert any("next run $0.84 would exceed $1.26" in m for m in s.messages)


def test_a_run_is_shown_queued_then_ended_and_never_succeeded_before_its_video_is_stored(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    import json

    writes = sweeper.status_writes()
    s = sweeper.run(plan(ref_images, range(1)))
    written = [(f["status"], bool(row.get("video_path"))) for f, row in writes]
    assert written[0][0] == "queued" and written[-1] == ("succeeded", True), written
    assert s.spent_usd == pytest.approx(RUN) and sweeper.progress[-1].prior_usd == 0  # no cap: nothing earlier counts

    def ended_at_once(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if not is_create(request):
            return None
        body = json.loads(response.read())
        body["status_code"] = "succeeded"  # a server that answers the create with the finished run
        return httpx.Response(201, json=body)

    polls: list[int] = []

    async def the_run_ends_later(request: httpx.Request) -> httpx.Response | None:
        if is_poll(request):
            polls.append(1)
            if len(polls) == 1:  # the first read of the run itself lags behind the summary
                return answer(404, {"code": "RUN_NOT_FOUND", "message": "not yet"})
            if len(polls) == 3:  # the run itself ends only after it has been read as still going
                service.thaw()
        return None

    writes.clear()
    service.freeze()
    service.emu.after.append(ended_at_once)
    service.async_before.append(the_run_ends_later)
    s = sweeper.run(plan(ref_images, range(1, 2)))
    written = [(f["status"], bool(row.get("video_path"))) for f, row in writes]
    statuses = [st for st, _ in written]
    assert statuses[0] == "running" and statuses[-1] == "succeeded", written
    assert "queued" not in statuses and s.spent_usd == pytest.approx(RUN)  # never recorded as ended unbilled
    assert all(has_video for st, has_video in written if st == "succeeded"), written


def test_a_passing_404_while_renewing_an_expired_link_still_gets_the_video(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    downloads = service.expire_first_download()
    stale: list[int] = []

    async def one_stale_read(request: httpx.Request) -> httpx.Response | None:
        if is_poll(request) and downloads and not stale:  # the first read of the run after the expiry
            stale.append(1)
            return answer(404, {"code": "RUN_NOT_FOUND", "message": "not yet"})
        return None

    service.async_before.insert(0, one_stale_read)
    sweeper.run(plan(ref_images, range(1)))
    (row,) = sweeper.rows()
    assert stale and row["status"] == "succeeded" and Path(row["video_path"]).exists(), row["error_message"]
    assert len(downloads) == 2


# --- prices, refusals without a code, and the budget guard's first skip ---------------------------------


def _charge(service: Service, costs: list[str]) -> None:
    """The server charges ``costs[i]`` for the i-th run that ends (then what it would charge anyway)."""
    import json

    charged: dict[str, str] = {}

    def priced(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if not is_poll(request):
            return None
        body = json.loads(response.read())
        if body.get("status_code") == "succeeded":
            if body["id"] not in charged and len(charged) < len(costs):
                charged[body["id"]] = costs[len(charged)]
            if body["id"] in charged:
                body["cost"] = charged[body["id"]]
        return httpx.Response(200, json=body)

    service.emu.after.append(priced)


def test_a_normally_priced_sweep_says_nothing_about_prices(service: Service, sweeper: Sweeper,
                                                         ref_images: list[Path]) -> None:
    s = sweeper.run(plan(ref_images, range(3)), budget_usd=3 * RUN)
    assert s.submitted == 3 and s.spent_usd == pytest.approx(3 * RUN)
    assert not [m for m in s.messages if "charged" in m]


def test_a_cheaper_run_after_a_dearer_one_does_not_lower_the_reservation(service: Service, sweeper: Sweeper,
                                                                        ref_images: list[Path]) -> None:
    _charge(service, ["0.84", "0.42"])  # the second run is charged its estimate again
    s = sweeper.run(plan(ref_images, range(3)), budget_usd=0.84 + 0.42 + 0.5)
    # the third is still reserved at $0.84: 1.26 spent + 0.84 would pass $1.76, so it is skipped
    assert s.submitted == 2 and s.skipped_budget == 1 and s.spent_usd == pytest.approx(1.26)
    assert sum("charged $0.84" in m for m in s.messages) == 1


@pytest.mark.parametrize(("status", "kept"), [(400, "error"), (402, "planned")])
def test_a_refusal_without_a_code_is_recorded_by_its_status(service: Service, sweeper: Sweeper,
                                                            ref_images: list[Path], status: int, kept: str) -> None:
    async def bare(request: httpx.Request) -> httpx.Response | None:
        return answer(status, {"message": "refused without a code"}) if is_create(request) else None

    service.async_before.append(bare)
    sweeper.run(plan(ref_images, range(1)))
    (row,) = sweeper.rows()
    assert (row["status"], row["error_code"]) == (kept, str(status))


def test_the_budget_guard_speaks_at_the_first_skip(service: Service, sweeper: Sweeper,
                                                   ref_images: list[Path]) -> None:
    s = sweeper.run(plan(ref_images, range(2)), budget_usd=RUN)
    assert s.skipped_budget == 1 and sum(m.startswith("budget guard:") for m in s.messages) == 1


def test_a_re_sent_run_shows_no_old_failure_while_its_create_is_in_the_air(
        fast_clip: Path, no_fsync: None, tmp_path: Path, ref_images: list[Path]) -> None:
    svc = Service(fast_clip, faults="fail=1x")
    try:
        sw = Sweeper(svc, tmp_path)
        sw.run(plan(ref_images, range(1)))
        seen: list[dict[str, Any]] = []

        async def look(request: httpx.Request) -> httpx.Response | None:
            if is_create(request):
                seen.append(dict(sw.store.runs(sw.experiment)[0]))
            return None

        svc.async_before.append(look)
        sw.run(plan(ref_images, range(1)))
        (during,) = seen
        assert during["status"] == "submitting" and during["error_code"] is None and during["error_message"] is None
    finally:
        svc.close()


def test_this_sweeps_own_submits_never_count_as_a_contest_for_the_cap(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    looks, _ = _watch(sweeper)
    spent: list[str] = []

    def spent_elsewhere(p: Any) -> None:  # after the start, another sweep's run finished (not being submitted)
        if not spent:
            spent.append(_claim_elsewhere(sweeper, 2 * RUN, "succeeded", "elsewhere:1"))

    s = sweeper.run(plan(ref_images, range(2)), concurrency=2, experiment_budget_usd=2.5 * RUN,
                    on_progress=spent_elsewhere)
    assert s.submitted == 0 and s.skipped_budget == 2
    assert len(looks) == 3  # one look each (and the reconcile's): the other run is no contender to wait for


def test_while_a_run_waits_its_row_follows_the_server_queued_running_then_ended(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    writes = sweeper.status_writes()
    service.freeze()
    polls: list[int] = []

    async def move_the_clock(request: httpx.Request) -> httpx.Response | None:
        if is_poll(request):
            polls.append(1)
            if len(polls) == 3:
                service.clock.offset += HOLD_S / 2  # the run has started on the server
            if len(polls) == 6:
                service.thaw()
        return None

    service.async_before.append(move_the_clock)
    s = sweeper.run(plan(ref_images, range(1)))
    written = [(f["status"], f.get("started_at")) for f, _ in writes]
    assert [st for st, _ in written] == ["queued", "running", "succeeded"], written
    assert written[1][1] is not None  # the server's start time, written as the run starts
    (row,) = sweeper.rows()
    assert row["started_at"] is not None and s.counts == {"succeeded": 1}
    assert dict(sweeper.progress[-1].counts) == {"succeeded": 1} or all(
        v == 0 for k, v in sweeper.progress[-1].counts.items() if k != "succeeded")


@pytest.mark.parametrize("when", ["at its look", "while it steps back"])
def test_a_stop_while_a_contested_claim_steps_back_leaves_the_run_planned_and_unpaid(
        when: str, service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    """A run backing off from a contested experiment cap has sent nothing: a stop then leaves it
    planned with its money free, not unknown (held as if it might be billed) nor skipped."""
    looks, _ = _watch(sweeper)
    watched, watched_update = sweeper.store.runs, sweeper.store.update_run
    other: list[str] = []

    def runs(*args: Any, **kw: Any) -> Any:
        rows = watched(*args, **kw)
        if when == "at its look" and len(looks) == 1 and other:  # contested: it will back off
            sweeper.cancel.set()  # the researcher presses Stop meanwhile
        return rows

    def update_run(run_id: str, **fields: Any) -> Any:
        if when == "while it steps back" and looks and fields.get("status") == "planned" \
                and not sweeper.cancel.is_set():
            sweeper.cancel.set()  # Stop lands while the step back is being written
            time.sleep(0.3)  # long enough for the stop to cancel the sweep's waits
        return watched_update(run_id, **fields)

    def contender(p: Any) -> None:
        if not other:
            other.append(_claim_elsewhere(sweeper, 2 * RUN, "submitting", "elsewhere:1"))

    sweeper.store.runs = runs  # type: ignore[method-assign]
    sweeper.store.update_run = update_run  # type: ignore[method-assign]
    s = sweeper.run(plan(ref_images, range(1)), experiment_budget_usd=2 * RUN, on_progress=contender)
    assert sweeper.cancel.is_set() and len(looks) >= 1
    assert service.created() == 0 and s.submitted == 0 and s.skipped_budget == 0
    (row,) = [r for r in sweeper.rows() if r["prompt"] != "elsewhere"]
    assert row["status"] == "planned" and row["submitted_at"] is None, row
    last = sweeper.progress[-1]
    assert last.unknown_usd == 0 and last.in_flight_usd == 0
