"""A follow-up never pays for a clip the experiment already has, over real HTTP on the emulator.

The study is a researcher's sweep: t2v and r2v × seeds 1–3 at 720p (plus a 1080p seed-3 t2v run).
A re-run, an upscale, the gallery's seed button, the form opened from a run and ``runflow-nb rerun``
that ask for a request the experiment holds (same inputs and seed, the references by content) reuse
that run: no create on the emulator's ledger, the same clip, its own parent untouched, and one line
saying so. Only ``force=True`` / ``--force`` pays again.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

import runflow_nb as rf

KEEP_ORDER = True  # its tests walk one study and count creates on one ledger, in file order

KEY = "rf_test_rerun_reuse_00000000"
PROMPT = "character1 trots along the shore"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from runflow_nb.emulator import serve

    folder = tmp_path_factory.mktemp("reuse")
    old = Path.cwd()
    os.chdir(folder)
    try:
        (folder / "refs").mkdir()
        Image.new("RGB", (900, 600), (200, 90, 40)).save(folder / "refs" / "horse.png")
        with serve(port=0, latency=0.05) as server:
            client = rf.Client(api_key=KEY, base_url=server.url, poll_interval=0.05)
            exp = rf.Experiment("sweep", store=folder / "runflow_data" / "runflow.sqlite", client=client)
            plan = rf.grid(model=["t2v", "r2v"], prompt=PROMPT, references=["refs/horse.png"], seed=[1, 2, 3],
                           duration=3, resolution="720p")
            df = exp.run(plan, progress=None)
            exp.run(rf.grid(model="t2v", prompt=PROMPT, seed=[3], duration=3, resolution="1080p"), progress=None)
            runs = {(rf.specs.get_spec(m).alias, int(s)): rid for m, s, rid in zip(df.model, df.seed, df.run_id,
                                                                                   strict=True)}
            yield {"exp": exp, "runs": runs, "url": server.url, "folder": folder}
            exp.close()
    finally:
        os.chdir(old)


def creates(url: str) -> int:
    events = httpx.get(f"{url}/_emulator/ledger", timeout=30).json()["creates"]
    return sum(1 for e in events if e["via"] == "created")


def test_a_stored_runs_content_key_is_its_requests_with_the_lineage_left_out(study: dict[str, Any]) -> None:
    from runflow_nb.followups.reuse import content_key, row_content_key

    exp = study["exp"]
    for row in exp.runs():
        assert row_content_key(row) == content_key(exp.request(row["run_id"])) is not None


def test_a_rerun_onto_a_seed_the_sweep_already_ran_reuses_that_run_and_pays_nothing(
        study: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    exp, runs, url = study["exp"], study["runs"], study["url"]
    before = creates(url)
    got = exp.rerun(runs["t2v", 1], seed=2)
    assert creates(url) == before
    existing = exp.store.get_run(runs["t2v", 2])
    assert got["run_id"] == runs["t2v", 2] and got["video_sha256"] == existing["video_sha256"]
    assert existing["parent_run_id"] is None  # lineage stays honest: the sweep's run keeps no parent
    line = f"already in the experiment: run {runs['t2v', 2][:8]}, nothing charged"
    assert got.notice == line and line in capsys.readouterr().err
    assert exp.rerun(runs["t2v", 1], seed=3)["run_id"] == runs["t2v", 3] and creates(url) == before
    assert len(exp.table()) == 7  # no row was added


def test_a_reference_copied_elsewhere_is_the_same_request_by_content(study: dict[str, Any]) -> None:
    exp, runs, url, folder = study["exp"], study["runs"], study["url"], study["folder"]
    shutil.copy(folder / "refs" / "horse.png", folder / "copy.png")
    before = creates(url)
    got = exp.rerun(runs["r2v", 1], seed=3, references=["copy.png"])
    assert got["run_id"] == runs["r2v", 3] and creates(url) == before


def test_force_pays_once_for_a_fresh_sample_with_its_parent(study: dict[str, Any]) -> None:
    exp, runs, url = study["exp"], study["runs"], study["url"]
    before = creates(url)
    got = exp.rerun(runs["t2v", 1], seed=2, force=True)
    assert creates(url) == before + 1 and got.notice is None
    assert got["run_id"] != runs["t2v", 2] and got["parent_run_id"] == runs["t2v", 1] and got["seed"] == 2
    assert exp.rerun(runs["t2v", 1], seed=2, force=True)["run_id"] == got["run_id"] and creates(url) == before + 1
    with pytest.raises(rf.errors.UsageError, match="force"):
        exp.rerun(runs["t2v", 1], seed=2, force="yes")


def test_a_seed_sweep_around_a_clip_pays_only_for_seeds_not_yet_run(study: dict[str, Any]) -> None:
    exp, runs, url = study["exp"], study["runs"], study["url"]
    before = creates(url)
    df = exp.rerun(runs["r2v", 1], seed=range(1, 6))  # 1 is the clip, 2 and 3 the sweep's, 4 and 5 new
    assert creates(url) == before + 2 and list(df.seed) == [1, 2, 3, 4, 5]
    assert list(df.run_id[:3]) == [runs["r2v", 1], runs["r2v", 2], runs["r2v", 3]]
    assert list(df.parent_run_id.fillna("-")) == ["-", "-", "-", runs["r2v", 1], runs["r2v", 1]]


def test_an_upscale_the_experiment_already_holds_pays_nothing(study: dict[str, Any]) -> None:
    exp, runs, url = study["exp"], study["runs"], study["url"]
    held = exp.store.runs("sweep", where={"resolution": "1080p", "seed": 3, "parent_run_id": None})
    assert len(held) == 1
    before = creates(url)
    got = exp.upscale(runs["t2v", 3])
    assert got["run_id"] == held[0]["run_id"] and creates(url) == before
    assert got["resolution"] == "1080p" and got.notice is not None and got.notice.startswith("already in the")
    fresh = exp.upscale(runs["t2v", 3], force=True)
    assert creates(url) == before + 1 and fresh["parent_run_id"] == runs["t2v", 3]


def test_a_run_still_unknown_with_its_money_held_is_resolved_not_paid_again(study: dict[str, Any]) -> None:
    exp, runs, url = study["exp"], study["runs"], study["url"]
    target = runs["r2v", 2]
    exp.store.update_run(target, status="unknown")  # as a lost answer leaves it: made, not seen yet
    before = creates(url)
    got = exp.rerun(runs["r2v", 3], seed=2)
    assert creates(url) == before and got["run_id"] == target and got["status"] == "succeeded"


def test_the_seed_button_offers_the_next_seed_not_yet_run_and_pays_for_it_once(study: dict[str, Any]) -> None:
    from runflow_nb.widgets.actions import ActionRow

    exp, runs, url = study["exp"], study["runs"], study["url"]
    actions = ActionRow(exp, runs["t2v", 1])
    assert actions.seed.value == 4  # 2 and 3 exist
    before = creates(url)
    actions.rerun_button.click()
    actions.wait(300)
    assert actions.error is None and actions.result["seed"] == 4 and creates(url) == before + 1
    actions.rerun_button.click()  # a second click is the same re-run: nothing paid again
    actions.wait(300)
    assert creates(url) == before + 1 and ActionRow(exp, runs["t2v", 1]).seed.value == 5  # 4 is taken now
    actions.seed.value = 3
    actions.rerun_button.click()
    actions.wait(300)
    assert creates(url) == before + 1 and actions.result["run_id"] == runs["t2v", 3]
    assert "already in the experiment" in actions.status.value


def test_the_form_opened_from_a_rerun_generates_nothing_new(study: dict[str, Any]) -> None:
    exp, runs, url = study["exp"], study["runs"], study["url"]
    child = exp.rerun(runs["t2v", 1], seed=4)  # made by the button above: a child of the seed-1 run
    form = rf.GenerateForm.from_run(child["run_id"], experiment=exp)
    before = creates(url)
    form.generate_button.click()
    form.wait(300)
    assert creates(url) == before and form.reused and form.result["run_id"] == child["run_id"]
    assert exp.store.get_run(child["run_id"])["parent_run_id"] == runs["t2v", 1]


def test_cli_rerun_reuses_a_held_run_and_force_pays_once(
        study: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from runflow_nb.cli import main

    exp, runs, url = study["exp"], study["runs"], study["url"]
    monkeypatch.setenv("RUNFLOW_API_KEY", KEY)
    monkeypatch.setenv("RUNFLOW_BASE_URL", url)
    store = str(exp.store.folder / "runflow.sqlite")
    capsys.readouterr()
    before = creates(url)
    assert main(["rerun", runs["r2v", 3], "--seed", "1", "--store", store]) == 0
    out = capsys.readouterr()
    assert creates(url) == before and out.out.split()[0] == runs["r2v", 1]
    assert f"already in the experiment: run {runs['r2v', 1][:8]}, nothing charged" in out.err
    assert main(["rerun", runs["r2v", 3], "--seed", "1", "--force", "--store", store]) == 0
    assert creates(url) == before + 1


def test_a_rerun_that_once_ended_unpaid_reuses_the_same_request_made_since(study: dict[str, Any]) -> None:
    exp, runs, url = study["exp"], study["runs"], study["url"]
    skipped = exp.rerun(runs["t2v", 1], seed=9, budget_usd=0)
    assert skipped["status"] == "skipped_budget"
    before = creates(url)
    exp.run(rf.grid(model="t2v", prompt=PROMPT, seed=[9], duration=3, resolution="720p"), progress=None)
    assert creates(url) == before + 1
    made = exp.store.runs("sweep", where={"seed": 9, "parent_run_id": None})
    got = exp.rerun(runs["t2v", 1], seed=9)
    assert creates(url) == before + 1 and [got["run_id"]] == [r["run_id"] for r in made]
    assert exp.store.get_run(skipped["run_id"])["status"] == "skipped_budget"
