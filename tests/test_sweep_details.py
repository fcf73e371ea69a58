"""What each stopped or broken run says on its row, and a stop while a batch create is in the air.

Same zero-latency harness as ``test_sweep_money.py``. A row's ``error_code``/``error_message`` is
what the researcher reads in the table to know why a run is where it is and what a re-run will do.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from _fast_sweep import RUN, Service, Sweeper, gather_batches, plan
from _scripted import answer, is_create, is_download, is_poll


def by_status(sw: Sweeper) -> Counter[str]:
    return Counter(r["status"] for r in sw.rows())


def test_a_download_whose_renewal_fails_names_the_error(service: Service, sweeper: Sweeper,
                                                        ref_images: list[Path]) -> None:
    expired: list[str] = []

    async def expire_then_fail(request: httpx.Request) -> httpx.Response | None:
        if is_download(request):
            expired.append(request.url.path)
            return answer(410, {"code": "URL_EXPIRED", "message": "the link expired"})
        if is_poll(request) and expired:
            return answer(503, {"code": "MODEL_UNAVAILABLE", "message": "busy right now"})
        return None

    service.async_before.append(expire_then_fail)
    sweeper.run(plan(ref_images, range(1)))
    (row,) = sweeper.rows()
    assert (row["status"], row["error_code"]) == ("download_failed", "ServerError")
    assert "busy right now" in row["error_message"]


def test_a_store_failure_before_a_new_run_is_sent_is_explained(service: Service, sweeper: Sweeper,
                                                               ref_images: list[Path]) -> None:
    sweeper.run(plan(ref_images, range(1)), budget_usd=0)
    (row,) = sweeper.rows()
    real_get = sweeper.store.get_run
    failed: list[str] = []

    def get_run(rid: str, *args: Any, **kw: Any) -> Any:
        if rid == row["run_id"] and not failed:
            failed.append(rid)
            raise RuntimeError("database is locked")
        return real_get(rid, *args, **kw)

    sweeper.store.get_run = get_run  # type: ignore[method-assign]
    sweeper.run(plan(ref_images, range(1)))
    (row,) = sweeper.rows()
    assert (row["status"], row["error_code"], row["error_message"]) == ("error", "RuntimeError", "database is locked")


def test_a_stop_during_the_submit_says_the_run_is_looked_up_first(service: Service, sweeper: Sweeper,
                                                                   ref_images: list[Path]) -> None:
    async def hold_create(request: httpx.Request) -> httpx.Response | None:
        if is_create(request):
            sweeper.cancel.set()
            await asyncio.sleep(30)
        return None

    service.async_before.append(hold_create)
    sweeper.run(plan(ref_images, range(1)))
    (row,) = sweeper.rows()
    assert (row["status"], row["error_code"]) == ("unknown", "STOPPED")
    assert row["error_message"] == ("stopped while the submit was in flight: the server may have created the run; "
                                    "a re-run looks it up by client_ref first")


def test_rows_a_stop_caught_on_the_server_or_downloading_say_what_a_re_run_does(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    async def stop_mid_download(request: httpx.Request) -> httpx.Response | None:
        if is_download(request):
            sweeper.cancel.set()
            await asyncio.sleep(30)
        return None

    service.async_before.append(stop_mid_download)
    sweeper.run(plan(ref_images, range(1)))
    (row,) = sweeper.rows()
    assert row["error_message"] == "stopped during the download; a re-run downloads it"

    service.async_before.clear()
    sweeper.cancel.clear()
    service.freeze()

    def stop_once_running(p: Any) -> None:
        if p.counts.get("queued", 0) + p.counts.get("running", 0) >= 1:
            sweeper.cancel.set()

    sweeper.run(plan(ref_images, range(1, 2)), on_progress=stop_once_running)
    row = next(r for r in sweeper.rows() if r["seed"] == 1)
    assert row["error_message"] == ("stopped while running on the server (it may still be billed); "
                                    "a re-run re-attaches it")


def test_runs_a_stop_caught_while_gathered_for_a_batch_are_as_if_never_claimed(
        service: Service, sweeper: Sweeper, ref_images: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    gather_batches(monkeypatch, window_s=30.0, max_delay_s=30.0)

    def stop_when_all_wait(p: Any) -> None:
        if p.counts.get("submitting", 0) == 3:
            sweeper.cancel.set()

    sweeper.run(plan(ref_images, range(3)), concurrency=3, batch="auto", on_progress=stop_when_all_wait)
    rows = sweeper.rows()
    assert [r["status"] for r in rows] == ["planned"] * 3
    assert all(r["submitted_at"] is None for r in rows)


def test_a_stop_while_the_batch_create_is_in_the_air_leaves_its_runs_unknown_and_reserved(
        service: Service, sweeper: Sweeper, ref_images: list[Path]) -> None:
    async def hold_batch(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path.endswith("/batches"):
            sweeper.cancel.set()  # the batch was sent: its runs may exist on the server
            await asyncio.sleep(30)
        return None

    service.async_before.append(hold_batch)
    s = sweeper.run(plan(ref_images, range(3)), concurrency=3, batch="auto", budget_usd=3 * RUN)
    assert by_status(sweeper) == Counter({"unknown": 3}), by_status(sweeper)
    assert sweeper.progress[-1].unknown_usd == pytest.approx(3 * RUN)
    assert (s.still_running, s.may_cost_usd) == (3, pytest.approx(3 * RUN))
