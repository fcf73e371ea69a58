"""Run leases: one driver per run, renewed while it drives, taken over once it lapses (no pid probing)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

import runflow_nb as rf
from runflow_nb.store.runstore import Store, UnknownRunError
from runflow_nb.sweep.leases import LeaseKeeper, held_elsewhere, process_owner

KEY = "rf_test_lease_key"
OTHER = "elsewhere.example:4242:0badc0de"  # a process on another host: nothing local could probe it


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _row(store: Store, **fields: Any) -> str:
    row, _ = store.claim_run({"experiment": "leases", "run_key": f"k-{time.monotonic_ns()}", "status": "planned",
                              **fields})
    return str(row["run_id"])


# -- the store's conditional updates -------------------------------------------------------------

def test_take_renew_release_and_takeover(store_url: str) -> None:
    with Store(store_url) as store:
        store.ensure_experiment("leases")
        rid = _row(store)
        assert store.take_lease(rid, owner="a:1:x", lease_s=30)
        held = store.get_run(rid)
        assert held is not None and held["owner"] == "a:1:x"
        assert timedelta(seconds=25) < held["lease_expires_at"] - _now() <= timedelta(seconds=30)
        assert not store.take_lease(rid, owner="b:2:y", lease_s=30)  # held and not expired
        assert store.take_lease(rid, owner="a:1:x", lease_s=30)  # the holder may re-take (renew)
        assert store.renew_leases([rid], owner="b:2:y", lease_s=30) == set()  # not b's to renew
        assert store.renew_leases([rid], owner="a:1:x", lease_s=90) == {rid}
        renewed = store.get_run(rid)
        assert renewed is not None and renewed["lease_expires_at"] - _now() > timedelta(seconds=80)

        assert not store.release_lease(rid, owner="b:2:y")
        assert store.release_lease(rid, owner="a:1:x")
        released = store.get_run(rid)
        assert released is not None and released["owner"] == "a:1:x" and released["lease_expires_at"] is None
        assert store.take_lease(rid, owner="b:2:y", lease_s=30)  # released: free at once

        expired = _row(store, owner="c:3:z", lease_expires_at=_now() - timedelta(seconds=1))
        assert store.take_lease(expired, owner="b:2:y", lease_s=30)  # lapsed: taken over
        assert store.renew_leases([rid, expired], owner="b:2:y", lease_s=30) == {rid, expired}
        assert store.renew_leases([rid, expired], owner="c:3:z", lease_s=30) == set()  # c lost it
        with pytest.raises(UnknownRunError):
            store.take_lease("no-such-run", owner="b:2:y", lease_s=30)


def test_of_many_contenders_exactly_one_takes_a_lease(tmp_path: Path) -> None:
    path = tmp_path / "race.sqlite"
    with Store(path) as store:
        store.ensure_experiment("leases")
        rid = _row(store, owner="dead:1:x", lease_expires_at=_now() - timedelta(seconds=5))
    winners: list[str] = []
    start = threading.Barrier(6)

    def contend(n: int) -> None:
        with Store(path) as own:  # a connection each, like separate processes
            start.wait()
            if own.take_lease(rid, owner=f"w:{n}:t", lease_s=30):
                winners.append(f"w:{n}:t")

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with Store(path) as store:
        row = store.get_run(rid)
    assert len(winners) == 1 and row is not None and row["owner"] == winners[0]


def test_owner_tokens_and_held_elsewhere() -> None:
    me = process_owner()
    host, pid, token = me.rsplit(":", 2)
    assert host == __import__("socket").gethostname()
    assert pid == str(os.getpid()) and len(token) == 8 and process_owner() == me
    future, past = _now() + timedelta(seconds=10), _now() - timedelta(seconds=1)
    assert held_elsewhere({"owner": OTHER, "lease_expires_at": future})
    assert not held_elsewhere({"owner": OTHER, "lease_expires_at": past})  # lapsed
    assert not held_elsewhere({"owner": OTHER, "lease_expires_at": None})  # released
    assert not held_elsewhere({"owner": me, "lease_expires_at": future})  # ours
    assert not held_elsewhere({"owner": None, "lease_expires_at": future})


def test_a_keeper_renews_while_it_drives(tmp_path: Path) -> None:
    lost: list[tuple[str, str | None]] = []

    async def scenario() -> tuple[datetime, datetime, set[str]]:
        with Store(tmp_path / "k.sqlite") as store:
            store.ensure_experiment("leases")
            rid, stolen = _row(store), _row(store)
            keeper = LeaseKeeper(store, lease_s=0.6, on_lost=lambda r, h: lost.append((r, h)))
            assert await keeper.take(rid) and await keeper.take(stolen)
            first = (store.get_run(rid) or {})["lease_expires_at"]
            keeper.start()
            await asyncio.sleep(1.0)  # well past the first expiry: renewed meanwhile
            later = (store.get_run(rid) or {})["lease_expires_at"]
            # Another process takes one run over (as if this one had stalled): the keeper notices.
            store.release_lease(stolen, owner=keeper.owner)
            assert store.take_lease(stolen, owner=OTHER, lease_s=30)
            await asyncio.sleep(0.5)
            keeper.stop()
            held = keeper.held
            await keeper.release(rid)
            assert (store.get_run(rid) or {})["lease_expires_at"] is None
            return first, later, held

    first, later, held = asyncio.run(scenario())
    assert later > first + timedelta(seconds=0.3)
    assert len(held) == 1 and len(lost) == 1 and lost[0][1] == OTHER


# -- sweeps ----------------------------------------------------------------------------------------

def _sweep_setup(tmp_path: Path, url: str, ref_images: list[Path]) -> tuple[rf.Experiment, Any, Any]:
    client = rf.Client(api_key=KEY, base_url=url, poll_interval=0.05)
    exp = rf.Experiment("leased", store=str(tmp_path / "store.sqlite"), artifacts=tmp_path / "a", client=client)
    plan = rf.grid(prompt="character1", images=[ref_images[:1]], seed=[3], duration=3, resolution="720p")
    return exp, plan, plan[0]


def _claimed_elsewhere(exp: rf.Experiment, req: Any, *, lease_s: float) -> str:
    row, _ = exp.store.claim_run({
        "run_key": req.run_key(), "client_ref": "rfnb-elsewhere", "experiment": exp.name, "model": req.model,
        "status": "submitting", "prompt": req.prompt, "images": req.image_displays(), **req.params(),
        "owner": OTHER, "lease_expires_at": _now() + timedelta(seconds=lease_s)})
    return str(row["run_id"])


def _ledger(url: str) -> list[dict[str, Any]]:
    return httpx.get(f"{url}/_emulator/ledger").json()["billed"]  # type: ignore[no-any-return]


def test_a_lapsed_lease_of_a_crashed_process_is_taken_over(emulator_server: Any, ref_images: list[Path],
                                                           tmp_path: Path) -> None:
    """The holder (on another host) stops renewing: nothing is submitted while its lease holds, then
    the run is taken over and paid once."""
    exp, plan, req = _sweep_setup(tmp_path, emulator_server.url, ref_images)
    run_id = _claimed_elsewhere(exp, req, lease_s=1.5)
    before = len(_ledger(emulator_server.url))
    t0 = time.monotonic()
    df = exp.run(plan, progress=None)
    waited = time.monotonic() - t0
    billed = [e for e in _ledger(emulator_server.url)[before:] if e.get("client_ref") == "rfnb-elsewhere"]
    row = exp.store.get_run(run_id)
    assert list(df.status) == ["succeeded"] and row is not None and row["owner"] == process_owner()
    assert len(billed) == 1  # submitted once, under the run's own client_ref, after the takeover
    assert waited >= 1.0  # not before the lease lapsed (ordering, not a speed bound)
    assert row["lease_expires_at"] is None  # released when the sweep finished with it
    assert exp.last_summary is not None and any("being run by" in m for m in exp.last_summary.messages)


def test_a_live_holder_is_waited_for_and_its_result_reused(emulator_server: Any, ref_images: list[Path],
                                                           tmp_path: Path) -> None:
    """The holder keeps renewing and then finishes the run: the sweep submits nothing and reuses it."""
    exp, plan, req = _sweep_setup(tmp_path, emulator_server.url, ref_images)
    run_id = _claimed_elsewhere(exp, req, lease_s=1.0)
    other = Store(tmp_path / "store.sqlite")  # the other process's own connection
    stop = threading.Event()

    def holder() -> None:
        for _ in range(6):  # renews for a while, past several of its own lease lengths
            if stop.wait(0.3):
                return
            other.renew_leases([run_id], owner=OTHER, lease_s=1.0)
        other.update_run(run_id, status="succeeded", video_path="elsewhere.mp4", cost_usd=0.42)
        other.release_lease(run_id, owner=OTHER)

    thread = threading.Thread(target=holder)
    before = len(_ledger(emulator_server.url))
    thread.start()
    try:
        df = exp.run(plan, progress=None)
    finally:
        stop.set()
        thread.join()
        other.close()
    assert list(df.status) == ["succeeded"] and [Path(p).name for p in df.video_path] == ["elsewhere.mp4"]
    assert len(_ledger(emulator_server.url)) == before  # nothing submitted by this sweep
    assert exp.last_summary is not None and exp.last_summary.submitted == 0 and exp.last_summary.reused == 1
    row = exp.store.get_run(run_id)
    assert row is not None and row["owner"] == OTHER


def test_a_held_run_is_left_when_the_sweep_is_cancelled(emulator_server: Any, ref_images: list[Path],
                                                        tmp_path: Path) -> None:
    exp, plan, req = _sweep_setup(tmp_path, emulator_server.url, ref_images)
    run_id = _claimed_elsewhere(exp, req, lease_s=3600)
    before = len(_ledger(emulator_server.url))
    handle = exp.run(plan, progress=None, background=True)
    time.sleep(0.5)
    assert not handle.done  # waiting for the holder, not submitting
    handle.cancel()
    df = handle.wait(timeout=30)
    assert list(df.status) == ["submitting"] and len(_ledger(emulator_server.url)) == before
    row = exp.store.get_run(run_id)
    assert row is not None and row["owner"] == OTHER  # never taken
