"""From a row back to a request, for every model of the family (and an edit), over real HTTP on the
emulator: the rebuilt request has the stored run key, its code rebuilds it in a fresh interpreter,
and re-runs and upscales make exactly one create each (the emulator's ledger), carry their parent,
and make none when repeated."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

import runflow_nb as rf
from runflow_nb.errors import ValidationError

KEEP_ORDER = True  # its tests walk one study: re-runs and upscales are counted on one ledger, in file order

KEY = "rf_test_followups_0000000000"
MODELS = ("t2v", "i2v", "r2v", "edit")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One 720p clip per model on a live emulator, plus a video-edit of the r2v clip; the study
    folder is the working folder (as a notebook's is)."""
    from runflow_nb.emulator import serve

    folder = tmp_path_factory.mktemp("followups")
    old = Path.cwd()
    os.chdir(folder)
    try:
        refs = []
        for i, colour in enumerate([(200, 90, 40), (40, 160, 90)]):
            (folder / "refs").mkdir(exist_ok=True)
            Image.new("RGB", (900, 600), colour).save(folder / "refs" / f"ref{i}.png")
            refs.append(f"refs/ref{i}.png")
        with serve(port=0, latency=0.05) as server:
            client = rf.Client(api_key=KEY, base_url=server.url, poll_interval=0.05)
            exp = rf.Experiment("loop", store=folder / "runflow_data" / "runflow.sqlite", client=client)
            plan = rf.grid(model=["t2v", "i2v", "r2v"], prompt="character1 trots along the shore", references=refs,
                           seed=[1], duration=3, resolution="720p")
            df = exp.run(plan, progress=None)
            runs = {rf.specs.get_spec(m).alias: rid for m, rid in zip(df.model, df.run_id, strict=True)}
            edit = exp.edit(runs["r2v"], prompt="make it night, @Image1 in the sky", references=[refs[1]])
            runs["edit"] = edit["run_id"]
            yield {"exp": exp, "runs": runs, "url": server.url, "folder": folder, "refs": refs}
            exp.close()
    finally:
        os.chdir(old)


def creates(url: str) -> list[dict[str, Any]]:
    return [e for e in httpx.get(f"{url}/_emulator/ledger", timeout=30).json()["creates"] if e["via"] == "created"]


@pytest.mark.parametrize("model", MODELS)
def test_the_request_of_a_run_has_its_stored_run_key(study: dict[str, Any], model: str) -> None:
    exp, run_id = study["exp"], study["runs"][model]
    stored = exp.store.get_run(run_id)
    assert exp.request(run_id).run_key() == stored["run_key"]
    row = exp.table().set_index("run_id", drop=False).loc[run_id]
    assert exp.request(row).run_key() == stored["run_key"]  # a table row (a pandas Series)
    assert exp.request(row.to_dict()).run_key() == stored["run_key"]


@pytest.mark.parametrize("model", MODELS)
def test_the_code_of_a_run_rebuilds_the_same_request_in_a_fresh_interpreter(study: dict[str, Any], model: str) -> None:
    exp, run_id = study["exp"], study["runs"][model]
    code = exp.code(run_id)
    assert "request = rf.VideoRequest.build(" in code
    assert str(study["folder"]) not in code and KEY not in code and "api_key" not in code
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNFLOW_")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code + "\nprint(request.run_key())"], cwd=study["folder"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == exp.store.get_run(run_id)["run_key"]


@pytest.mark.parametrize("model", MODELS)
def test_a_rerun_with_another_seed_makes_one_create_carries_its_parent_and_a_repeat_makes_none(
        study: dict[str, Any], model: str) -> None:
    exp, run_id, url = study["exp"], study["runs"][model], study["url"]
    before = len(creates(url))
    row = exp.rerun(run_id, seed=77)
    assert len(creates(url)) == before + 1
    assert row["status"] == "succeeded" and row["parent_run_id"] == run_id and row["seed"] == 77
    assert Path(row["video_path"]).is_file()
    again = exp.rerun(run_id, seed=77)
    assert again["run_id"] == row["run_id"] and len(creates(url)) == before + 1
    table = exp.table().set_index("run_id")
    assert table.loc[row["run_id"], "changes"] == "seed 1→77"
    assert exp.request(row["run_id"]).run_key() == row["run_key"]  # a re-run is a run like any other


@pytest.mark.parametrize("model", MODELS)
def test_an_upscale_is_the_same_seed_at_1080p_paid_once(study: dict[str, Any], model: str) -> None:
    exp, run_id, url = study["exp"], study["runs"][model], study["url"]
    parent = exp.store.get_run(run_id)
    before = len(creates(url))
    row = exp.upscale(run_id)
    assert len(creates(url)) == before + 1
    assert (row["resolution"], row["seed"], row["parent_run_id"]) == ("1080p", parent["seed"], run_id)
    assert row["status"] == "succeeded" and 1080 in (row["height"], row["width"])
    assert exp.upscale(run_id)["run_id"] == row["run_id"] and len(creates(url)) == before + 1
    assert exp.upscale(row["run_id"])["run_id"] == row["run_id"]  # already at the highest: itself, nothing sent
    assert len(creates(url)) == before + 1


def test_a_seed_sweep_around_one_clip_runs_only_the_new_seeds(study: dict[str, Any]) -> None:
    exp, run_id, url = study["exp"], study["runs"]["t2v"], study["url"]
    before = len(creates(url))
    df = exp.rerun(run_id, seed=range(3))  # seed 1 is the clip itself
    assert list(df.seed) == [0, 1, 2] and len(creates(url)) == before + 2
    assert list(df.parent_run_id.fillna("-")) == [run_id, "-", run_id]
    exp.rerun(run_id, seed=[0, 2])
    assert len(creates(url)) == before + 2


def test_a_rerun_changes_inputs_and_model_carrying_over_what_the_new_model_takes(study: dict[str, Any]) -> None:
    exp, run_id = study["exp"], study["runs"]["r2v"]
    row = exp.rerun(run_id, model="i2v", prompt="character1 turns its head")
    req = exp.request(row["run_id"])
    assert req.spec.alias == "i2v" and len(req.images) == 1 and req.aspect_ratio is None
    assert req.images[0].sha256 == exp.store.get_run(run_id)["image_sha256"][0]
    changes = exp.table().set_index("run_id").loc[row["run_id"], "changes"]
    assert "model reference-to-video→image-to-video" in changes and "prompt" in changes
    with pytest.raises(ValidationError, match="aspect_ratio"):
        exp.rerun(run_id, model="i2v", aspect_ratio="1:1")
    with pytest.raises(ValidationError, match="cannot be changed"):
        exp.rerun(run_id, sed=3)


def test_a_reference_that_is_gone_is_found_by_content_or_named_with_the_fix(study: dict[str, Any]) -> None:
    exp, folder = study["exp"], study["folder"]
    Image.new("RGB", (800, 600), (10, 20, 30)).save(folder / "temp.png")
    pil = Image.new("RGB", (800, 600), (90, 10, 10))
    row = exp.generate(model="r2v", prompt="character1 and character2", images=["temp.png", pil], duration=3,
                       resolution="720p", seed=5)
    (folder / "temp.png").write_bytes(b"not the same file")  # edited since: the kept copy has the pixels
    assert exp.request(row["run_id"]).run_key() == row["run_key"]
    for kept in (exp.artifacts / "references").glob(f"{row['image_sha256'][0]}.*"):
        kept.unlink()
    with pytest.raises(ValidationError) as info:
        exp.request(row["run_id"])
    assert "image_urls[0]" in str(info.value) and "temp.png" in str(info.value) and "put that exact file back" in str(
        info.value)


def test_the_detail_view_shows_player_prompt_references_request_lineage_and_code(study: dict[str, Any]) -> None:
    from runflow_nb.followups.steps import detail_of

    exp, r2v, edit = study["exp"], study["runs"]["r2v"], study["runs"]["edit"]
    markup = detail_of(exp, r2v)
    assert "<video" in markup and "poster=" in markup and markup.count("class='rf-ref'") >= 2
    assert "request as sent" in markup and "rf-child" in markup and "VideoRequest.build" in markup
    assert KEY not in markup and "Bearer" not in markup
    assert "seed requested / returned" in markup and "queue / inference / wall" in markup
    child = detail_of(exp, edit)
    assert "rf-parent" in child and r2v[:12] in child


# -- the buttons (widget traits; each click goes through the library call tested above) -------------------


def _classes(widget: Any) -> list[str]:
    found = list(getattr(widget, "_dom_classes", ()))
    for child in getattr(widget, "children", ()):
        found += _classes(child)
    return found


def test_the_rerun_button_runs_the_seed_in_the_box_once(study: dict[str, Any]) -> None:
    from runflow_nb.widgets.actions import ActionRow

    exp, run_id, url = study["exp"], study["runs"]["i2v"], study["url"]
    actions = ActionRow(exp, run_id)
    actions.seed.value = 4242
    before = len(creates(url))
    actions.rerun_button.click()
    actions.wait(300)
    assert actions.error is None and actions.result["seed"] == 4242 and actions.result["parent_run_id"] == run_id
    assert len(creates(url)) == before + 1 and "succeeded" in actions.status.value
    actions.rerun_button.click()
    actions.wait(300)
    assert len(creates(url)) == before + 1  # the same re-run: nothing paid again


def test_the_upscale_edit_form_and_code_buttons_go_through_the_library(study: dict[str, Any]) -> None:
    from runflow_nb.widgets.actions import ActionRow

    exp, run_id = study["exp"], study["runs"]["t2v"]
    actions = ActionRow(exp, exp.table().set_index("run_id", drop=False).loc[run_id])  # a table row works too
    actions.upscale_button.click()
    actions.wait(300)
    assert actions.result["run_id"] == exp.upscale(run_id)["run_id"] and actions.result["resolution"] == "1080p"
    actions.edit_button.click()
    assert actions.edit_box.layout.display != "none"
    actions.edit_prompt.value = "make it rain"
    actions.edit_send.click()
    actions.wait(300)
    edit = actions.result
    assert actions.error is None and edit["parent_run_id"] == run_id and edit["model"].endswith("video-edit")
    actions.form_button.click()
    form = actions.form
    assert form is not None and form.spec.alias == "t2v"
    assert form.request is not None and form.request.run_key() == exp.store.get_run(run_id)["run_key"]
    actions.code_button.click()
    assert "rf.VideoRequest.build(" in actions.code.value and "rf-copy" in actions.code.value
    assert actions.copy_code() == exp.code(run_id)


def test_the_form_opens_an_image_run_with_its_references_in_order(study: dict[str, Any]) -> None:
    from runflow_nb.widgets.form import GenerateForm

    exp, run_id = study["exp"], study["runs"]["r2v"]
    form = GenerateForm.from_run(run_id, experiment=exp)
    assert form.request is not None and form.request.run_key() == exp.store.get_run(run_id)["run_key"]
    assert [i.loaded.sha256 for i in form.images] == exp.store.get_run(run_id)["image_sha256"]


def test_gallery_compare_and_detail_carry_the_button_rows(study: dict[str, Any]) -> None:
    from runflow_nb.widgets.actions import DetailView

    exp, runs = study["exp"], study["runs"]
    live = exp.gallery(rows="model", cols="seed").live()
    succeeded = exp.table().query("status == 'succeeded'").run_id
    assert live.grid.value.count('class="rf-more"') == len(succeeded)  # each clip's ⋯ opens its button row ...
    assert _classes(live.widget).count("rf-actions") == 0  # ... built on first use
    for run_id in succeeded:
        live.command("more", run_id)
        assert _classes(live.widget).count("rf-actions") == 1  # in the panel, one run at a time
    assert len(live.actions) == len(succeeded)
    assert _classes(exp.compare(runs["t2v"], runs["i2v"]).widget).count("rf-actions") == 2
    view = DetailView(exp, runs["edit"])
    assert _classes(view.widget).count("rf-actions") == 1 and "rf-parent" in view.markup


# -- the shell -----------------------------------------------------------------------------------------------


def test_cli_rerun_and_show_use_the_runs_experiment_and_pay_once(
        study: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from runflow_nb.cli import main

    exp, run_id, url = study["exp"], study["runs"]["r2v"], study["url"]
    monkeypatch.setenv("RUNFLOW_API_KEY", KEY)
    monkeypatch.setenv("RUNFLOW_BASE_URL", url)
    store = str(exp.store.folder / "runflow.sqlite")
    before = len(creates(url))
    assert main(["rerun", run_id, "--seed", "31", "--resolution", "1080p", "--store", store]) == 0
    out = capsys.readouterr().out
    new = [line for line in out.splitlines() if line.endswith(".mp4")][-1].split()[0]
    assert len(creates(url)) == before + 1
    row = exp.store.get_run(new)
    assert (row["parent_run_id"], row["seed"], row["resolution"]) == (run_id, 31, "1080p")
    assert main(["rerun", run_id, "--seed", "31", "--resolution", "1080p", "--store", store]) == 0
    assert len(creates(url)) == before + 1
    capsys.readouterr()
    assert main(["show", new, "--store", store]) == 0
    shown = capsys.readouterr().out
    assert "request as sent:" in shown and "seed 1→31; resolution 720p→1080p" in shown and KEY not in shown
    assert main(["show", new, "--code", "--store", store]) == 0
    assert capsys.readouterr().out == exp.code(new)
    assert main(["rerun", run_id, "--store", store]) == 2  # nothing to change


def test_a_rerun_over_the_budget_is_skipped_and_sends_nothing(study: dict[str, Any]) -> None:
    exp, run_id, url = study["exp"], study["runs"]["t2v"], study["url"]
    before = len(creates(url))
    row = exp.upscale(exp.rerun(run_id, seed=555, budget_usd=0)["run_id"], budget_usd=0)
    assert len(creates(url)) == before
    assert row["status"] == "skipped_budget"


def test_the_cli_table_shows_what_each_run_changed(study: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from runflow_nb.cli import main

    exp, run_id = study["exp"], study["runs"]["t2v"]
    exp.rerun(run_id, seed=66)
    capsys.readouterr()  # the re-run's progress lines
    assert main(["table", "loop", "--store", str(exp.store.folder / "runflow.sqlite")]) == 0
    out = capsys.readouterr().out
    assert "changes" in out.splitlines()[0] and "seed 1→66" in out


def test_the_table_view_reads_the_lineage(study: dict[str, Any]) -> None:
    from runflow_nb.views.tableview import view_columns

    exp, run_id = study["exp"], study["runs"]["i2v"]
    child = exp.rerun(run_id, seed=88)
    df = exp.table()
    assert "changes" in view_columns(df) and list(df.columns).index("changes") == list(df.columns).index(
        "parent_run_id") + 1
    assert "seed 1→88" in exp.view().frame.to_string()
    assert df.set_index("run_id").loc[child["run_id"], "parent_run_id"] == run_id


def test_a_run_that_did_not_finish_is_run_again_as_itself(study: dict[str, Any]) -> None:
    exp, run_id, url = study["exp"], study["runs"]["t2v"], study["url"]
    skipped = exp.rerun(run_id, seed=556, budget_usd=0)
    assert skipped["status"] == "skipped_budget"
    before = len(creates(url))
    again = exp.rerun(skipped["run_id"])  # nothing changed: the same run, sent now (what the queue's Re-run does)
    assert again["run_id"] == skipped["run_id"] and again["status"] == "succeeded"
    assert len(creates(url)) == before + 1
    assert exp.rerun(again["run_id"])["run_id"] == again["run_id"] and len(creates(url)) == before + 1


def test_a_result_from_client_generate_gives_its_request_and_code(study: dict[str, Any]) -> None:
    exp, refs, url = study["exp"], study["refs"], study["url"]
    client = rf.Client(api_key=KEY, base_url=url, poll_interval=0.05)
    try:
        result = client.generate(model="i2v", image=refs[0], prompt="the horse turns", duration=3,
                                 resolution="720p", seed=9, out_dir=study["folder"] / "out")
    finally:
        client.close()
    assert exp.request(result).run_key() == result.request.run_key()
    namespace: dict[str, Any] = {}
    exec(exp.code(result), namespace)  # the snippet is ours; a fresh interpreter is tested above
    assert namespace["request"].run_key() == result.request.run_key()
