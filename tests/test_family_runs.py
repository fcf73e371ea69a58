"""The family end to end on the offline simulator: real clips per model, a study across models,
and video-edit as a follow-up step whose row names its parent (checked by decoding the MP4s)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _family_doc import MODELS, PRICES
from PIL import Image

import runflow_nb as rf
from runflow_nb.client import simulator_emulator
from runflow_nb.media.probe import probe

KEEP_ORDER = True  # its tests walk one study: an edit, then a parent's file removed, in file order


def frame_at(path: str | Path, index: int = 36) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == index:
                return f.to_ndarray(format="rgb24").astype(np.int16)
    raise AssertionError("too few frames")


def audio_of(path: str | Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        chunks = [f.to_ndarray() for f in c.decode(audio=0)]
    return np.concatenate(chunks, axis=1)[0]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    a, b = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("study")
    refs = []
    for i, colour in enumerate([(200, 90, 40), (40, 160, 90)]):
        p = folder / f"ref{i}.png"
        Image.new("RGB", (900, 600), colour).save(p)
        refs.append(str(p))
    exp = rf.Experiment("family", store=folder / "runs.sqlite", artifacts=folder / "artifacts")
    plan = rf.grid(model=["t2v", "i2v", "r2v"], prompt="character1 trots along the shore at dusk", references=refs,
                   seed=[1, 2], duration=3, resolution="720p")
    table = exp.run(plan, progress=None)
    return {"exp": exp, "plan": plan, "table": table, "refs": refs, "summary": exp.last_summary}


def test_a_study_across_models_makes_a_clip_per_model_and_seed(study: dict[str, Any]) -> None:
    df = study["table"]
    assert len(df) == 6 and set(df.status) == {"succeeded"}
    assert sorted(set(df.model)) == sorted(MODELS[k] for k in ("t2v", "i2v", "r2v"))
    assert len(set(df.run_key)) == 6  # the model is in every run key
    for row in df.itertuples():
        info = probe(row.video_path)
        assert info.has_audio and abs(info.duration - 3) < 0.1
        assert row.cost_usd == pytest.approx(3 * PRICES["t2v"][0])
        if row.model == MODELS["i2v"]:
            assert (info.width, info.height) == (1080, 720)  # the image's 3:2 at 720p
            assert pd_missing(row.aspect_ratio) and pd_missing(row.enable_safety_checker)
        else:
            assert (info.width, info.height) == (1280, 720)


def pd_missing(value: Any) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


def test_text_to_video_draws_a_scene_that_follows_the_seed(study: dict[str, Any]) -> None:
    df = study["table"]
    t2v = df[df.model == MODELS["t2v"]].sort_values("seed")
    a, b = (frame_at(p) for p in t2v.video_path)
    assert np.abs(a - b).mean() > 10  # different seeds, different pictures
    r2v = df[df.model == MODELS["r2v"]].sort_values("seed")
    assert np.abs(a - frame_at(r2v.video_path.iloc[0])).mean() > 10  # not the references' pan


def test_image_to_video_animates_the_first_reference(study: dict[str, Any]) -> None:
    df = study["table"]
    clip = df[df.model == MODELS["i2v"]].video_path.iloc[0]
    frame = frame_at(clip, 12)
    centre = frame[300:420, 400:680].reshape(-1, 3).mean(axis=0)
    first, second = np.array([200, 90, 40]), np.array([40, 160, 90])
    # the first reference's picture (even under a seed's colour grade), never the second's
    assert np.abs(centre - first).sum() < np.abs(centre - second).sum()


def test_edit_sends_the_stored_clip_and_records_its_parent(study: dict[str, Any]) -> None:
    exp = study["exp"]
    df = study["table"]
    parent = df[(df.model == MODELS["r2v"]) & (df.seed == 1)].iloc[0]
    emu = simulator_emulator()
    assets_before = len(emu.state.assets)
    row = exp.edit(parent.run_id, prompt="make it night, @Image1 watches", references=study["refs"][1:],
                   audio_setting="origin")
    assert row["status"] == "succeeded" and row["model"] == MODELS["edit"]
    assert row["parent_run_id"] == parent.run_id and row["audio_setting"] == "origin"
    assert row["seed"] == 1 and row["resolution"] == "720p"  # follows the parent
    assert row["cost_usd"] == pytest.approx(3 * PRICES["edit"][0])
    assert row["source_video_sha256"] == parent.video_sha256
    new_assets = list(emu.state.assets.values())[assets_before:]
    assert any(a.get("content_type", a.get("mime_type")) == "video/mp4" for a in new_assets)  # the upload flow
    # visibly transformed, and with the input's own sound
    assert np.abs(frame_at(row["video_path"]) - frame_at(parent.video_path)).mean() > 20
    assert correlation(audio_of(row["video_path"]), audio_of(parent.video_path)) > 0.9
    table = exp.table()
    assert table.set_index("run_id").loc[row["run_id"], "parent_run_id"] == parent.run_id
    # the same edit again is the same run: nothing submitted
    again = exp.edit(parent.run_id, prompt="make it night, @Image1 watches", references=study["refs"][1:],
                     audio_setting="origin")
    assert again["run_id"] == row["run_id"] and exp.last_summary.submitted == 0
    # `runflow-nb table` names each row's model and the edit's parent as well
    from runflow_nb.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["table", "family", "--store", str(exp.store.url).removeprefix("sqlite:///")]) == 0
    lines = out.getvalue().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[:4] == ["run_id", "status", "model", "parent_run_id"], header
    edited = next(line for line in lines if line.startswith(f"| {row['run_id'][:8]} |"))  # short ids, as views show
    assert f"| {MODELS['edit']} | {parent.run_id[:8]} |" in edited
    assert sum(f"| {MODELS['t2v']} |" in line for line in lines) == 2


def test_auto_audio_replaces_the_clips_sound(study: dict[str, Any]) -> None:
    exp = study["exp"]
    df = study["table"]
    parent = df[(df.model == MODELS["t2v"]) & (df.seed == 2)].iloc[0]
    row = exp.edit(parent.run_id, prompt="snow falls", audio_setting="auto", seed=9)
    assert row["status"] == "succeeded" and row["audio_setting"] == "auto"
    assert abs(correlation(audio_of(row["video_path"]), audio_of(parent.video_path))) < 0.5


def test_an_edit_falls_back_to_the_output_url_when_the_file_is_gone(study: dict[str, Any], tmp_path: Path) -> None:
    exp = study["exp"]
    df = study["table"]
    parent = df[(df.model == MODELS["i2v"]) & (df.seed == 2)].iloc[0]
    Path(parent.video_path).unlink()
    row = exp.edit(parent.run_id, prompt="make it rain", audio_setting="origin")
    assert row["status"] == "succeeded" and row["parent_run_id"] == parent.run_id
    assert str(row["source_video"]).startswith("http") and row["source_video_sha256"] == parent.video_sha256
    assert probe(row["video_path"]).duration == pytest.approx(3, abs=0.1)


def test_rerunning_the_study_submits_nothing(study: dict[str, Any]) -> None:
    exp = study["exp"]
    exp.run(study["plan"], progress=None)
    s = exp.last_summary
    assert s.submitted == 0 and s.reused + s.reattached == 6


def test_the_gallery_takes_the_model_as_rows(study: dict[str, Any]) -> None:
    g = study["exp"].gallery(rows="model", cols="seed", run_key=study["plan"].keys())
    html = g.to_html()
    for model in ("t2v", "i2v", "r2v"):
        assert MODELS[model].rsplit("/", 1)[-1] in html
    table = study["exp"].table()
    edits = table[table.parent_run_id.notna() & table.model.str.endswith("video-edit")
                  & (table.status == "succeeded")]
    assert len(edits) >= 1  # the edits made earlier in this module, each shown under its parent
    assert html.count("<video") == 6 + len(edits)


def test_compare_plays_two_models_side_by_side_and_names_them(study: dict[str, Any]) -> None:
    pytest.importorskip("ipywidgets")
    exp = study["exp"]
    df = study["table"]
    t2v = df[(df.model == MODELS["t2v"]) & (df.seed == 1)].iloc[0]
    i2v = df[(df.model == MODELS["i2v"]) & (df.seed == 1)].iloc[0]
    view = exp.compare(t2v.run_id, i2v.run_id)
    markup = view._static_html
    assert markup.count("<video") == 2
    assert "text-to-video" in markup and "image-to-video" in markup
    assert "&lt;NA&gt;" not in markup and "<NA>" not in markup  # i2v has no aspect ratio of its own
    edits = exp.table(where={"model": MODELS["edit"]})
    if not edits.empty:  # an edited clip's caption names its parent
        from runflow_nb.views.display import row_html

        row = edits.iloc[0].to_dict()
        assert str(row["parent_run_id"])[:8] in row_html(row)


def test_a_cross_model_sweep_sends_each_model_only_its_documented_inputs(tmp_path: Path) -> None:
    """On the wire: every create body carries only inputs its model documents, and none is refused."""
    import json

    import httpx
    from _family_doc import EDIT_INPUTS, I2V_INPUTS, T2V_INPUTS

    from runflow_nb.emulator import Emulator
    from runflow_nb.simulator.engine import Simulator

    documented = {MODELS["t2v"]: set(T2V_INPUTS), MODELS["i2v"]: set(I2V_INPUTS),
                  MODELS["r2v"]: {"prompt", "image_urls", "aspect_ratio", "duration", "resolution", "seed",
                                  "enable_safety_checker"},
                  MODELS["edit"]: {*EDIT_INPUTS, "resolution", "seed"}}  # resolution: the price is per resolution
    ref = tmp_path / "ref.png"
    Image.new("RGB", (900, 600), (200, 90, 40)).save(ref)
    creates: list[tuple[str, dict[str, Any], int]] = []
    with Simulator(latency=0.05) as sim:
        emu = Emulator(simulator=sim, base_url="http://emu.test")

        def recording(request: httpx.Request) -> httpx.Response:
            response = emu.handle(request)
            path = request.url.path
            if request.method == "POST" and path.startswith("/v1/models/") and path.endswith("/runs"):
                model = path[len("/v1/models/"):-len("/runs")]
                creates.append((model, json.loads(request.content)["input"], response.status_code))
            return response

        client = rf.Client(api_key="rf_test_wire", base_url="http://emu.test", transport=httpx.MockTransport(recording),
                           poll_interval=0.02)
        exp = rf.Experiment("wire", store=tmp_path / "s.sqlite", artifacts=tmp_path / "art", client=client)
        plan = rf.grid(model=["t2v", "i2v", "r2v"], prompt="character1 trots", references=[ref, ref],
                       seed=[1, 2], duration=3, resolution="720p", aspect_ratio="1:1")
        df = exp.run(plan, progress=None)
        parent = df[df.model == MODELS["t2v"]].iloc[0]
        exp.edit(parent.run_id, prompt="@Image1 at night", references=[ref], audio_setting="origin")
    assert sorted(m for m, _, _ in creates) == sorted([MODELS["t2v"]] * 2 + [MODELS["i2v"]] * 2
                                                      + [MODELS["r2v"]] * 2 + [MODELS["edit"]])
    for model, body, status in creates:
        assert status == 201, (model, body)
        assert set(body) <= documented[model], (model, sorted(set(body) - documented[model]))
    by = {m: b for m, b, _ in creates}
    assert isinstance(by[MODELS["i2v"]]["image_url"], str) and len(by[MODELS["r2v"]]["image_urls"]) == 2
    assert by[MODELS["t2v"]]["aspect_ratio"] == "1:1" and "aspect_ratio" not in by[MODELS["i2v"]]
    assert by[MODELS["edit"]]["video_url"].startswith("http://emu.test/")  # the uploaded asset
