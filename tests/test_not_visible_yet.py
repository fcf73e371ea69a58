"""A server that has made a run but does not show it yet never makes the researcher pay twice.

"Not visible yet" is never "not made": a create that may have reached the server (a lost answer,
a 5xx) frees its money or is sent again only after a positive sighting, a replay proven on that
route, or an answer the docs say creates nothing. Each test stages one such server on loopback
with the emulator's own knobs (``list_lag_s``, ``get_lag_s``, ``key_replay``, the ``create500`` and
``drop`` faults) and asserts on what its ledger says it made and billed: runs per client_ref, the
billed total.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _ledger import billed, made_per_ref, made_twice, settle

import runflow_nb as rf
from runflow_nb.emulator import Emulator, serve
from runflow_nb.errors import RunMayExistError

KEY = "rf_test_not_visible_yet"
PROMPT = "character1 canters through tall grass"
RUN = 0.42  # 3 s at 720p
LAG = 10.0  # longer than the client's look-up grace (about 7 s)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Any]:
    emu = Emulator(latency=0.1, **getattr(request, "param", {}))
    try:
        with serve(emulator=emu) as srv:
            yield srv
    finally:
        emu.close()


def _experiment(url: str, tmp_path: Path, *, budget_usd: float | None = None) -> rf.Experiment:
    client = rf.Client(api_key=KEY, base_url=url, poll_interval=0.05)
    return rf.Experiment("lag", store=str(tmp_path / "store.sqlite"), artifacts=tmp_path / "artifacts",
                         client=client, budget_usd=budget_usd)


def _plan(images: list[Path], seeds: Any) -> rf.Plan:
    return rf.grid(prompt=PROMPT, images=[images[:1]], seed=list(seeds), duration=3, resolution="720p")


def _stored_cost(exp: rf.Experiment) -> float:
    from runflow_nb.sweep.status import charged_usd

    return round(sum(charged_usd(r) for r in exp.store.runs(exp.name)), 2)


def _caught_up_and_resumed(emu: Emulator, exp: rf.Experiment, plan: rf.Plan, **kw: Any) -> Any:
    """The list catches up (the lag is over); the same plan run again collects every run."""
    emu.configure(list_lag_s=0.0, get_lag_s=0.0)
    df = exp.run(plan, progress=None, **kw)
    settle(emu)
    return df


# -- 1. created, answered 5xx, the list lags ------------------------------------------------------


@pytest.mark.parametrize("server", [{"list_lag_s": LAG, "faults": "create500=1x"}], indirect=True)
def test_a_create_answered_500_whose_run_the_list_does_not_show_yet_is_never_sent_again(
        server: Any, ref_images: list[Path], tmp_path: Path) -> None:
    emu: Emulator = server.emulator
    exp = _experiment(server.url, tmp_path)
    plan = _plan(ref_images, range(3))
    df = exp.run(plan, concurrency=1, progress=None)
    settle(emu)
    assert made_twice(emu) == {}, "a client_ref was made twice"
    assert billed(emu)[0] == 3, f"{billed(emu)[0]} runs billed for 3 planned"
    assert Counter(df.status) == Counter({"succeeded": 2, "unknown": 1})
    assert exp.last_summary is not None and exp.last_summary.counts.get("unknown") == 1
    df = _caught_up_and_resumed(emu, exp, plan)
    assert Counter(df.status) == Counter({"succeeded": 3})
    assert billed(emu) == (3, round(3 * RUN, 2)) and _stored_cost(exp) == round(3 * RUN, 2)


@pytest.mark.parametrize("server", [{"list_lag_s": LAG, "faults": "create500=1x"}], indirect=True)
def test_a_batch_answered_500_whose_runs_the_list_does_not_show_yet_is_never_posted_twice(
        server: Any, ref_images: list[Path], tmp_path: Path) -> None:
    emu: Emulator = server.emulator
    exp = _experiment(server.url, tmp_path)
    plan = _plan(ref_images, range(6))
    df = exp.run(plan, concurrency=6, batch="auto", progress=None)
    settle(emu)
    batch_posts = [c for c in emu.state.creates() if c["route"] == "batches"]
    assert len(batch_posts) == 1, f"the batch was POSTed {len(batch_posts)} times"
    assert made_twice(emu) == {} and billed(emu)[0] == 6
    assert Counter(df.status) == Counter({"unknown": 6})
    df = _caught_up_and_resumed(emu, exp, plan, batch="auto")
    assert Counter(df.status) == Counter({"succeeded": 6})
    assert billed(emu) == (6, round(6 * RUN, 2)) and _stored_cost(exp) == round(6 * RUN, 2)


@pytest.mark.parametrize("server", [{"list_lag_s": LAG, "faults": "create500=1x"}], indirect=True)
def test_generate_after_a_500_whose_run_is_not_listed_yet_says_it_may_exist_and_pays_once(
        server: Any, ref_images: list[Path], tmp_path: Path) -> None:
    emu: Emulator = server.emulator
    client = rf.Client(api_key=KEY, base_url=server.url, poll_interval=0.05)
    with pytest.raises(RunMayExistError) as caught:
        client.generate(prompt=PROMPT, images=[ref_images[0]], duration=3, resolution="720p", seed=4,
                        client_ref="gen-1", out_dir=tmp_path)
    settle(emu)
    assert caught.value.client_ref == "gen-1" and "may have been created" in str(caught.value)
    assert made_per_ref(emu) == {"gen-1": 1} and billed(emu)[0] == 1
    emu.configure(list_lag_s=0.0)
    found = client.find("gen-1")  # the sighting the error points to
    assert found is not None and found.id == emu.simulator.ledger()[0]["run_id"]
    client.close()


# -- 2. keys honoured everywhere but on the single-run create -----------------------------------


@pytest.mark.parametrize("server", [{"list_lag_s": LAG, "key_replay": "all_but_single_create",
                                     "faults": "drop=1x"}], indirect=True)
def test_key_support_on_the_upload_route_is_never_relied_on_for_the_run_route(
        server: Any, ref_images: list[Path], tmp_path: Path) -> None:
    emu: Emulator = server.emulator
    exp = _experiment(server.url, tmp_path)
    plan = _plan(ref_images, range(3))
    df = exp.run(plan, concurrency=1, progress=None)
    settle(emu)
    assert made_twice(emu) == {} and billed(emu)[0] == 3, made_per_ref(emu)
    assert Counter(df.status) == Counter({"succeeded": 2, "unknown": 1})
    df = _caught_up_and_resumed(emu, exp, plan)
    assert Counter(df.status) == Counter({"succeeded": 3}) and billed(emu)[0] == 3


# -- 3. no key replay, a lost answer, a list slower than the look-ups ------------------------------


@pytest.mark.parametrize("batch", [False, "auto"])
@pytest.mark.parametrize("server", [{"list_lag_s": 4 * LAG, "key_replay": "none", "faults": "drop=1x"}],
                         indirect=True)
def test_a_lost_answer_without_key_replay_and_a_slow_list_stays_unknown_with_its_money(
        server: Any, batch: Any, ref_images: list[Path], tmp_path: Path) -> None:
    emu: Emulator = server.emulator
    exp = _experiment(server.url, tmp_path)
    plan = _plan(ref_images, range(3))
    df = exp.run(plan, concurrency=1 if not batch else 3, batch=batch, budget_usd=3 * RUN, progress=None)
    settle(emu)
    assert made_twice(emu) == {} and billed(emu)[0] == 3, made_per_ref(emu)
    assert "unknown" in set(df.status)
    # a resume before the list catches up sends nothing again: the unknown runs keep their money
    again = exp.run(plan, batch=batch, budget_usd=3 * RUN, progress=None)
    settle(emu)
    assert made_twice(emu) == {} and billed(emu)[0] == 3
    assert Counter(again.status) == Counter(df.status)
    df = _caught_up_and_resumed(emu, exp, plan, batch=batch)
    assert Counter(df.status) == Counter({"succeeded": 3}) and billed(emu)[0] == 3
    assert _stored_cost(exp) == billed(emu)[1]


# -- 4. a new run answers 404 for its first seconds ---------------------------------------------


@pytest.mark.parametrize("batch", [False, "auto"])
@pytest.mark.parametrize("server", [{"get_lag_s": 2.0}], indirect=True)
def test_a_404_on_a_run_we_hold_from_a_201_is_lag_never_an_ending(
        server: Any, batch: Any, ref_images: list[Path], tmp_path: Path) -> None:
    emu: Emulator = server.emulator
    exp = _experiment(server.url, tmp_path, budget_usd=2 * RUN)  # the experiment's cap
    plan = _plan(ref_images, range(4))
    df = exp.run(plan, concurrency=2, batch=batch, progress=None)
    settle(emu)
    assert billed(emu)[1] <= 2 * RUN + 1e-9, f"billed ${billed(emu)[1]:.2f} on a ${2 * RUN:.2f} budget"
    assert "failed" not in set(df.status), df[["status", "error_message"]]
    assert Counter(df.status) == Counter({"succeeded": 2, "skipped_budget": 2})
    again = exp.run(plan, batch=batch, progress=None)  # the same plan again
    settle(emu)
    assert made_twice(emu) == {} and billed(emu)[0] == 2
    assert Counter(again.status)["succeeded"] == 2


# -- 5. a lost batch is re-sent on resume only within the budget ---------------------------------


@pytest.mark.parametrize("server", [{"faults": "500=1x"}], indirect=True)
def test_a_lost_batch_is_never_re_sent_on_a_resume_the_budget_does_not_cover(
        server: Any, ref_images: list[Path], tmp_path: Path) -> None:
    emu: Emulator = server.emulator
    exp = _experiment(server.url, tmp_path)
    plan = _plan(ref_images, range(4))
    df = exp.run(plan, concurrency=4, batch="auto", progress=None)  # the batch create answers 500
    assert Counter(df.status) == Counter({"unknown": 4}) and billed(emu)[0] == 0
    # resumed long after: the list has had time to show the runs, and shows none
    for row in exp.store.runs(exp.name):
        exp.store.update_run(row["run_id"], submitted_at=row["submitted_at"] - timedelta(hours=1))
    df = exp.run(plan, batch="auto", budget_usd=0, progress=None)
    settle(emu)
    assert billed(emu) == (0, 0.0), f"a resume with budget_usd=0 billed ${billed(emu)[1]:.2f}"
    assert Counter(df.status) == Counter({"unknown": 4})
    df = exp.run(plan, batch="auto", budget_usd=4 * RUN, progress=None)  # room for it: re-sent whole, once
    settle(emu)
    assert Counter(df.status) == Counter({"succeeded": 4})
    assert made_twice(emu) == {} and billed(emu) == (4, round(4 * RUN, 2))
    assert len([c for c in emu.state.creates() if c["route"] == "batches"]) == 1


# -- 7. a run the table lacks is found afterwards ----------------------------------------------


def test_a_billed_run_the_table_lacks_is_reconciled_and_counted_by_the_table_and_the_budget(
        server: Any, ref_images: list[Path], tmp_path: Path) -> None:
    emu: Emulator = server.emulator
    exp = _experiment(server.url, tmp_path, budget_usd=3 * RUN)
    plan = _plan(ref_images, range(2))
    exp.run(plan, progress=None)
    assert exp.last_summary is not None and any("reconciled with the server: 2 run(s)" in m
                                                for m in exp.last_summary.messages)
    row = next(r for r in exp.store.runs(exp.name) if r["seed"] == 0)
    # an earlier copy of row's create that made a run no one recorded (a crashed process, an older toolkit)
    other = rf.Client(api_key=KEY, base_url=server.url)
    other.submit(prompt=PROMPT, images=[ref_images[0]], duration=3, resolution="720p", seed=0,
                 client_ref=row["client_ref"], idempotency_key="an-earlier-copy",
                 metadata={"experiment": "lag", "run_id": row["run_id"]})
    other.close()
    settle(emu)
    exp.run(plan, progress=None)  # nothing to send; its closing reconcile finds the extra run
    assert exp.last_summary is not None
    line = exp.last_summary.messages[-1]
    assert "1 run(s) the table lacked were made and billed" in line and "duplicate" in line, line
    table = exp.table()
    assert Counter(table.status) == Counter({"succeeded": 2, "duplicate": 1})
    assert _stored_cost(exp) == billed(emu)[1] == round(3 * RUN, 2)
    # the experiment's cap counts it: nothing more is sent
    df = exp.run(_plan(ref_images, range(3)), progress=None)
    settle(emu)
    assert Counter(df.status)["skipped_budget"] == 1 and billed(emu) == (3, round(3 * RUN, 2))
    assert exp.reconcile().extra_runs == 0  # recorded once
