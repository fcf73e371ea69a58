"""Sweeps through batches, at zero latency: the key, the fall-back to single runs, polling a batch.

Same harness as ``test_sweep_paths.py`` (:mod:`_fast_sweep`); these are the batch paths mutation
testing found unguarded: a key that must stay the same across releases, single runs that must
carry the client_ref their rows keep, and waits that must go through the batch (one request per
poll), honour the sweep's per-run timeout and report each run's status as it changes.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from _fast_sweep import RUN, Service, Sweeper, plan
from _scripted import answer

from runflow_nb.sweep.batches import batch_key


def test_a_batch_key_names_its_items_in_any_order_and_never_changes_across_releases() -> None:
    # A resume after an upgrade re-sends a lost batch under this key: if its spelling changed, the
    # server would take the re-send for a new batch and bill it again. The value is pinned.
    assert batch_key(["rfnb-a", "rfnb-b"]) == batch_key(["rfnb-b", "rfnb-a"])
    assert batch_key(["rfnb-a", "rfnb-b"]) != batch_key(["rfnb-a", "rfnb-c"]) != batch_key(["rfnb-a"])
    assert batch_key(["rfnb-a", "rfnb-b"]) == "rfnb-batch-54a79b584f77f5a819f773af4fb3429b833a5ef0"


def test_a_model_that_takes_no_batches_gets_single_runs_each_under_its_rows_client_ref(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    service.emu.batches = False  # the batch route answers 422, as for a model that is not template-backed
    s = sweeper.run(plan(ref_images, range(3)), concurrency=3, batch="auto")
    assert s.submitted == 3 and Counter(r["status"] for r in sweeper.rows()) == Counter({"succeeded": 3})
    stored = {r["client_ref"] for r in sweeper.rows()}
    on_server = {run["client_ref"] for run in service.sim.list_runs(limit=500)[0]}
    assert stored == on_server and None not in stored and len(stored) == 3  # a resume finds each by it
    assert [r["batch_key"] for r in sweeper.rows()] == [None] * 3  # each went out under its own key
    made = service.sim.list_runs(limit=500)[0]
    assert all((run.get("metadata") or {}).get("experiment") == "fast" for run in made)  # told apart from others'
    assert service.created() == 3 and service.billed() == pytest.approx(3 * RUN)
    assert any("takes no batches" in m for m in s.messages)
    s = sweeper.run(plan(ref_images, range(3)), concurrency=3, batch="auto")
    assert s.reused == 3 and service.created() == 3


def test_the_runs_of_a_batch_are_waited_for_through_the_batch(service: Service, sweeper: Sweeper,
                                                              ref_images: list[Path]) -> None:
    seen: list[str] = []

    async def note(request: httpx.Request) -> httpx.Response | None:
        if request.method == "GET":
            seen.append(request.url.path)
        return None

    service.async_before.append(note)
    service.freeze()  # the runs stay on the server until each was seen running: the sweep has to poll
    writes: list[str] = []
    polls = {"n": 0, "thawed": False}

    def running_until_thawed(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.method != "GET" or polls["thawed"]:
            return None
        polls["n"] += 1
        if polls["n"] > 400:  # a safety net: the sweep never reported them all running
            polls["thawed"] = True
            service.thaw()
            return None
        if not request.url.path.endswith("/items"):
            return None
        body = json.loads(response.read())
        for item in body.get("items", []):  # the polls find them running ...
            if isinstance(item.get("run"), dict):
                item["run"]["status_code"] = item["status_code"] = "running"
        if polls["n"] == 2:  # ... and one lists only some of them (a page, a lagging read): the rest wait on
            body["items"] = body.get("items", [])[:2]
        return httpx.Response(200, json=body)

    service.emu.after.append(running_until_thawed)
    real_update = sweeper.store.update_run

    def update_run(run_id: str, **fields: Any) -> Any:
        if "status" in fields:
            writes.append(fields["status"])
            if writes.count("running") == 4 and not polls["thawed"]:  # all four seen running: let them end
                polls["thawed"] = True
                service.thaw()
        return real_update(run_id, **fields)

    sweeper.store.update_run = update_run  # type: ignore[method-assign]
    s = sweeper.run(plan(ref_images, range(4)), concurrency=4, batch="auto")
    assert s.submitted == 4 and Counter(r["status"] for r in sweeper.rows()) == Counter({"succeeded": 4})
    items = [p for p in seen if p.startswith("/v1/batches/") and p.endswith("/items")]
    singles = [p for p in seen if p.startswith("/v1/runs/") and p.count("/") == 3]
    assert len(items) >= 2 and len(singles) <= 4  # one request a poll for all four (each run read once at its end)
    made = service.sim.list_runs(limit=500)[0]
    assert len(made) == 4 and all((run.get("metadata") or {}).get("experiment") == "fast" for run in made), [
        run.get("metadata") for run in made]  # a look-up can tell these runs from another caller's
    assert writes.count("running") == 4 and polls["n"] <= 400  # each run's change followed, from the batch's poll


def test_the_sweeps_per_run_timeout_holds_for_runs_of_a_batch(service: Service, sweeper: Sweeper,
                                                              ref_images: list[Path]) -> None:
    service.freeze()  # the runs outlast the sweep's wait
    s = sweeper.run(plan(ref_images, range(3)), concurrency=3, batch="auto", timeout=0.5, budget_usd=3 * RUN)
    rows = sweeper.rows()
    assert Counter(r["status"] for r in rows) == Counter({"unknown": 3})
    assert all(r["error_code"] == "RunTimeoutError" and r["remote_id"] for r in rows)
    assert all("is still queued" in r["error_message"] or "is still running" in r["error_message"] for r in rows)
    assert s.submitted == 3 and sweeper.progress[-1].unknown_usd == pytest.approx(3 * RUN)
    service.thaw()
    reads = service.list_reads()
    s = sweeper.run(plan(ref_images, range(3)), concurrency=3, batch="auto")
    assert (s.reattached, s.submitted) == (3, 0) and Counter(r["status"] for r in sweeper.rows()) == Counter(
        {"succeeded": 3})
    lookups = [q for q in reads if "client_ref" in q]  # the closing reconcile reads the list unfiltered
    assert lookups == []  # known by id: re-attached without a look-up, not taken for a lost batch


async def _list_shows_nothing(request: httpx.Request) -> httpx.Response | None:
    """A run list that never shows the runs (a look-up that cannot find them, however long it looks)."""
    if request.method == "GET" and request.url.path == "/v1/runs":
        return answer(200, {"items": []})
    return None


@pytest.mark.parametrize("resume", ["single runs, same plan", "batches, a larger plan"])
def test_a_lost_batch_the_list_never_shows_is_sent_again_whole_under_its_key_and_paid_once(
        resume: str, fast_clip: Path, no_fsync: None, tmp_path: Path, ref_images: list[Path]) -> None:
    from datetime import timedelta

    svc = Service(fast_clip, faults="drop=1x")  # the batch is made, its answer never arrives
    svc.async_before.append(_list_shows_nothing)
    try:
        sw = Sweeper(svc, tmp_path)
        sw.run(plan(ref_images, range(3)), concurrency=3, batch="auto")
        rows = sw.rows()
        assert svc.created() == 3 and {r["status"] for r in rows} == {"unknown"}
        assert len({r["batch_key"] for r in rows}) == 1 and rows[0]["batch_key"].startswith("rfnb-batch-")
        for row in rows:  # resumed long after: the list has had time to show them, and shows none
            sw.store.update_run(row["run_id"], submitted_at=row["submitted_at"] - timedelta(hours=1))
        seeds, batch = (range(3), False) if resume.startswith("single") else (range(5), "auto")
        s = sw.run(plan(ref_images, seeds), concurrency=len(seeds), batch=batch)
        assert Counter(r["status"] for r in sw.rows()) == Counter({"succeeded": len(seeds)})
        assert (s.reattached, s.submitted) == (3, len(seeds) - 3)
        assert svc.created() == len(seeds) and svc.billed() == pytest.approx(len(seeds) * RUN)
        assert any("whole and under its own key" in m for m in s.messages)
    finally:
        svc.close()


def test_runs_of_a_lost_batch_that_cannot_be_sent_again_together_are_never_sent_again(
        fast_clip: Path, no_fsync: None, tmp_path: Path, ref_images: list[Path]) -> None:
    svc = Service(fast_clip, faults="drop=1x")
    svc.async_before.append(_list_shows_nothing)
    try:
        sw = Sweeper(svc, tmp_path)
        sw.run(plan(ref_images, range(3)), concurrency=3, batch="auto")
        s = sw.run(plan(ref_images, range(2)), concurrency=2)  # only two of the batch's three runs
        assert s.submitted == 0 and svc.created() == 3  # the batch was made: nothing is made again
        rows = {r["seed"]: r for r in sw.rows()}
        assert [rows[i]["status"] for i in range(3)] == ["unknown"] * 3
        assert rows[0]["error_code"] == "LOST_BATCH" and "never sent again" in rows[0]["error_message"]
        assert sw.progress[-1].unknown_usd == pytest.approx(2 * RUN)  # still reserved: they may be billed
        svc.async_before.remove(_list_shows_nothing)
        s = sw.run(plan(ref_images, range(3)), concurrency=3)  # the list shows them again: all collected
        assert s.reattached == 3 and s.submitted == 0 and svc.created() == 3
        assert Counter(r["status"] for r in sw.rows()) == Counter({"succeeded": 3})
    finally:
        svc.close()


def test_a_run_sent_alone_after_its_batch_failed_keeps_no_batch_key(service: Service, sweeper: Sweeper,
                                                                    ref_images: list[Path]) -> None:
    sweeper.run(plan(ref_images, range(2)), concurrency=2, batch="auto")
    assert all(r["batch_key"] for r in sweeper.rows())
    run_id = sweeper.rows()[0]["run_id"]
    sweeper.store.update_run(run_id, status="failed")
    sweeper.run(plan(ref_images, range(2)), concurrency=2)  # sent again, alone, under a new client_ref
    row = sweeper.store.get_run(run_id)
    assert row["status"] == "succeeded" and row["batch_key"] is None  # its own key protects it now


def test_a_stop_while_a_refused_batchs_single_creates_are_in_the_air_leaves_them_unknown(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    """Sent alone after the batch was refused, a create may have reached the server when the stop
    comes: the run is held as unknown (looked up on resume), not taken for never sent."""
    import asyncio

    service.emu.batches = False

    async def hold_single_creates(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path.endswith("/runs"):
            sweeper.cancel.set()  # the researcher presses Stop while the creates are in flight
            await asyncio.sleep(30)
        return None

    service.async_before.append(hold_single_creates)
    s = sweeper.run(plan(ref_images, range(2)), concurrency=2, batch="auto", budget_usd=2 * RUN)
    assert Counter(r["status"] for r in sweeper.rows()) == Counter({"unknown": 2})
    assert (s.still_running, s.may_cost_usd) == (2, pytest.approx(2 * RUN))


def test_when_polling_a_batch_fails_its_runs_are_waited_for_one_by_one(service: Service, sweeper: Sweeper,
                                                                       ref_images: list[Path]) -> None:
    async def items_fail(request: httpx.Request) -> httpx.Response | None:
        if request.method == "GET" and request.url.path.endswith("/items"):
            return answer(500, {"code": "INTERNAL", "message": "the batch cannot be read"})
        return None

    def thaw_once_read_alone(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.method == "GET" and request.url.path.startswith("/v1/runs/") and request.url.path.count("/") == 3:
            service.thaw()  # the runs end once they are waited for one by one
        return None

    service.async_before.append(items_fail)
    service.emu.after.append(thaw_once_read_alone)
    service.freeze()  # still queued when the batch is first polled
    s = sweeper.run(plan(ref_images, range(3)), concurrency=3, batch="auto")
    assert Counter(r["status"] for r in sweeper.rows()) == Counter({"succeeded": 3}) and service.created() == 3
    assert any("polling it failed" in m and "waiting run by run" in m for m in s.messages)


def test_runs_sent_alone_in_a_batch_sweep_keep_the_sweeps_timeout_and_report_their_status(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    service.emu.batches = False  # every run goes alone, waited for by the batcher's single-run path
    writes = sweeper.status_writes()

    def running_first(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.method == "GET" and request.url.path.startswith("/v1/runs/") and request.url.path.count("/") == 3:
            body = json.loads(response.read())
            if body.get("status_code") == "queued":
                body["status_code"] = "running"
                return httpx.Response(200, json=body)
        return None

    service.emu.after.append(running_first)
    service.freeze()
    s = sweeper.run(plan(ref_images, range(2)), concurrency=2, batch="auto", timeout=1.0)
    rows = sweeper.rows()
    assert Counter(r["status"] for r in rows) == Counter({"unknown": 2}) and s.submitted == 2
    assert all(r["error_code"] == "RunTimeoutError" for r in rows)
    assert [f["status"] for f, _ in writes].count("running") == 2  # each change to running reported, written
