"""The gallery as researchers read a study: models side by side (what follows from the model is not an
axis of its own), edits under the clip they came from, captions that do not repeat the headers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import runflow_nb as rf
from runflow_nb import Experiment, study
from runflow_nb.widgets.gallery import gallery_html

MODELS = ["t2v", "i2v", "r2v"]


@pytest.fixture
def models_table(sweeper: Any, ref_images: list[Path]) -> Any:
    """A real sweep: one prompt, two seeds, three models (t2v takes no images, i2v the first, r2v all)."""
    plan = rf.grid(model=MODELS, prompt="character1 walks", images=ref_images, seed=[1, 2], duration=3,
                   resolution="720p")
    sweeper.run(plan, concurrency=2)
    df = sweeper.store.table(sweeper.experiment)
    assert len(df) == 6 and set(df["status"]) == {"succeeded"}
    return df


def test_models_sit_side_by_side_in_one_grid(models_table: Any) -> None:
    df = models_table
    assert "images" in study.varying(df)  # each model took different images ...
    g = study.grid(df, rows="model", cols="seed")
    assert g.facets == [] and g.facet_keys == [()]  # ... yet they are no facet of their own
    assert len(g.row_keys) == 3 and g.col_keys == [1, 2]
    assert all(len(g.runs((), m, s)) == 1 for m in g.row_keys for s in (1, 2))  # every cell filled
    assert g.explained["images"] == "model"
    t2v = next(m for m in g.row_keys if m.endswith("text-to-video"))
    r2v = next(m for m in g.row_keys if m.endswith("reference-to-video"))
    assert not g.notes("model", t2v)["images"] and len(g.notes("model", r2v)["images"]) == 2
    markup = gallery_html(df, rows="model", cols="seed")
    assert 'class="rf-facet"' not in markup and markup.count("<table") == 1
    assert markup.count("<video ") == 6 and markup.count('class="rf-reason') == 0  # no "not run" cells
    assert "images: none" in markup  # the row header says what the model took


def test_a_parameter_that_varies_within_a_model_is_still_a_facet(models_table: Any) -> None:
    df = models_table.copy()
    models = sorted(set(df["model"]))
    # varies within each model's row and within each seed's column: explained by neither
    df["duration"] = [3 + 2 * ((models.index(m) + s) % 2) for m, s in zip(df["model"], df["seed"], strict=True)]
    g = study.grid(df, rows="model", cols="seed")
    assert "duration" in g.facets and "images" not in g.facets


def test_explained_parameters_follow_the_axis_they_come_from() -> None:
    recs = [{"model": "t2v", "images": None, "seed": 1}, {"model": "i2v", "images": ["a"], "seed": 1},
            {"model": "i2v", "images": ["a"], "seed": 2}]
    assert study.follows(recs, "images", "model")
    assert not study.follows(recs, "images", "seed")  # seed 1 saw two different image lists
    assert not study.follows([{"model": "m", "images": ["a"]}], "images", "model")  # one value explains nothing


def _insert(exp: Experiment, root: Path, rows: list[dict[str, Any]]) -> None:
    folder = root / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    for i, params in enumerate(rows):
        run_id = params.pop("run_id")
        video, poster = folder / f"{run_id}.mp4", folder / f"{run_id}.jpg"
        video.write_bytes(b"stand-in")
        Image.new("RGB", (640, 360), (i * 40 % 255, 90, 140)).save(poster)
        exp.store.insert_run({"run_id": run_id, "experiment": exp.name, "run_key": f"k{run_id}",
                              "status": "succeeded", "backend": "simulator", "cost_usd": 0.42,
                              "resolution": "720p", "duration": 3, "video_path": str(video),
                              "poster_path": str(poster), **params})


def test_an_edit_sits_under_the_clip_it_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exp = Experiment("edits", store=str(tmp_path / "rf.sqlite"), artifacts=tmp_path / "artifacts")
    r2v, edit = "happyhorse/reference-to-video", "happyhorse/video-edit"
    _insert(exp, tmp_path, [
        {"run_id": "parent01", "model": r2v, "prompt": "a horse", "seed": 1},
        {"run_id": "parent02", "model": r2v, "prompt": "a horse", "seed": 2},
        {"run_id": "edit0001", "model": edit, "prompt": "make it night", "seed": 7, "parent_run_id": "parent01"},
        {"run_id": "edit0002", "model": edit, "prompt": "add rain", "seed": 8, "parent_run_id": "edit0001"},
    ])
    df = exp.table()
    g = study.grid(df, rows="prompt", cols="seed")
    assert g.facets == [] and g.row_keys == ["a horse"] and g.col_keys == [1, 2]  # edits add no axis value
    assert [r["run_id"] for r in g.runs((), "a horse", 1)] == ["parent01", "edit0001", "edit0002"]
    assert [r["run_id"] for r in g.runs((), "a horse", 2)] == ["parent02"]
    assert g.parents == {"edit0001": "parent01", "edit0002": "edit0001"}
    markup = gallery_html(df, rows="prompt", cols="seed")
    assert markup.count('class="rf-cell-run rf-edit"') == 2 and "↳ edit of run parent01" in markup
    cell = markup[markup.index("parent01.mp4"):]
    assert cell.index("edit0001.mp4") < cell.index("parent02.mp4")  # under its parent, in the same column
    # with rows="model" the edit still sits with its parent, not in a row of its own
    assert study.grid(df, rows="model", cols="seed").row_keys == [r2v]
    # the live grid (JupyterLab): the same cell holds the parent then its edits, each with its own rating
    pytest.importorskip("ipywidgets")
    from runflow_nb.widgets.gallery import Gallery

    live = Gallery(df, rows="prompt", cols="seed", experiment=exp).live()
    grid = live.grid.value
    rows = re.findall(r'<div class="rf-rating-row" data-run="([^"]+)"', grid)
    assert rows == ["parent01", "edit0001", "edit0002", "parent02"]  # each clip rated on its own
    # each edit's rating sits inside its own purple-edged box, with its clip
    for edit in ("edit0001", "edit0002"):
        box = grid[grid.index(f'data-parent="{"parent01" if edit == "edit0001" else "edit0001"}"'):]
        box = re.split(r'<div class="rf-cell-run|</td>', box[1:])[0]  # up to the next run of the cell
        assert f"{edit}.mp4" in box and f'data-run="{edit}"' in box and box.count(".mp4") == 2  # src and link


def _walk(widget: Any) -> Any:
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def test_captions_leave_out_what_the_headers_say(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exp = Experiment("captions", store=str(tmp_path / "rf.sqlite"), artifacts=tmp_path / "artifacts")
    prompt = "a grey horse trots along a long beach at sunset"
    _insert(exp, tmp_path, [{"run_id": f"run{s:05d}", "prompt": prompt, "seed": s, "model": "happyhorse/t2v"}
                            for s in (1, 2)] + [{"run_id": "run00009", "prompt": "another", "seed": 1,
                                                 "model": "happyhorse/t2v"}])
    markup = gallery_html(exp.table(), rows="prompt", cols="seed")
    captions = re.findall(r"<figcaption[^>]*>(.*?)</figcaption>", markup, flags=re.S)
    assert len(captions) == 3
    assert not any(prompt in c for c in captions) and markup.count(prompt) == 2  # the header (text and title)
    assert not any("<b>seed</b>" in c for c in captions)  # the column header says the seed
    assert all("cost" in c for c in captions)  # what no header says stays


T2V, I2V, R2V = ("alibaba/happy-horse/text-to-video", "alibaba/happy-horse/image-to-video",
                 "alibaba/happy-horse/reference-to-video")


def _two_plans(exp: Experiment, root: Path) -> None:
    """Two plans (the second with one reference, without t2v) and one portrait r2v clip."""
    refs = [str(root / "refs" / "character1-horse.png"), str(root / "refs" / "character2-robot.png")]
    rows: list[dict[str, Any]] = []
    for seed in (1, 2):
        rows += [{"model": T2V, "images": None, "aspect_ratio": "16:9", "seed": seed},
                 {"model": I2V, "images": refs[:1], "aspect_ratio": None, "seed": seed},
                 {"model": R2V, "images": refs, "aspect_ratio": "16:9", "seed": seed}]
    for seed in (10, 11):
        rows += [{"model": I2V, "images": refs[:1], "aspect_ratio": None, "seed": seed},
                 {"model": R2V, "images": refs[:1], "aspect_ratio": "16:9", "seed": seed}]
    rows.append({"model": R2V, "images": refs[:1], "aspect_ratio": "9:16", "seed": 5})
    _insert(exp, root, [{"run_id": f"run{i:05d}", "prompt": "character1 trots", **r} for i, r in enumerate(rows)])


def test_models_stay_one_row_each_across_two_plans_and_a_portrait_clip(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exp = Experiment("plans", store=str(tmp_path / "rf.sqlite"), artifacts=tmp_path / "artifacts")
    _two_plans(exp, tmp_path)
    df = exp.table()
    assert {"images", "aspect_ratio"} <= set(study.varying(df))  # both differ within r2v's runs ...
    g = study.grid(df, rows="model", cols="seed")
    assert g.facets == [] and g.facet_keys == [()]  # ... yet neither becomes an axis
    assert g.row_keys == [T2V, I2V, R2V] and g.col_keys == [1, 2, 5, 10, 11]
    markup = exp.gallery(rows="model", cols="seed").markup
    assert markup.count("<table") == 1 and 'class="rf-facet"' not in markup
    assert markup.count("<video ") == 11
    assert " = ·" not in markup and "= —" not in markup  # no facet label with an empty value
    # what differs within a model is in that clip's caption, by file name (the path only on hover)
    captions = re.findall(r"<figcaption[^>]*>(.*?)</figcaption>", markup, flags=re.S)
    assert sum("<b>ar</b> 9:16" in c for c in captions) == 1
    assert str(tmp_path / "refs") not in re.sub(r'title="[^"]*"', "", markup)


def test_a_facet_shows_only_its_own_rows_and_columns_and_names_empty_values(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exp = Experiment("facets", store=str(tmp_path / "rf.sqlite"), artifacts=tmp_path / "artifacts")
    ref = str(tmp_path / "refs" / "owl.png")
    _insert(exp, tmp_path, [
        {"run_id": "a1", "model": T2V, "prompt": "a", "seed": 1, "images": None},
        {"run_id": "a2", "model": T2V, "prompt": "a", "seed": 2, "images": None},
        {"run_id": "b7", "model": R2V, "prompt": "b", "seed": 7, "images": [ref]},
        {"run_id": "b8", "model": R2V, "prompt": "b", "seed": 8, "images": [ref]},
        {"run_id": "c7", "model": R2V, "prompt": "c", "seed": 7, "images": [ref]},
    ])
    exp.store.update_run("b8", status="skipped_budget", video_path=None)
    df = exp.table()
    g = study.grid(df, rows="prompt", cols="seed", facets="images")
    assert g.facet_keys == [((),), ((ref,),)]  # t2v's runs took no images
    assert g.rows_in(((),)) == ["a"] and g.cols_in(((),)) == [1, 2]  # not the other facet's seeds
    assert g.rows_in(((ref,),)) == ["b", "c"] and g.cols_in(((ref,),)) == [7, 8]
    markup = gallery_html(df, rows="prompt", cols="seed", facets="images")
    titles = re.findall(r'class="rf-facet"[^>]*>(.*?)</div>', markup, flags=re.S)
    assert [re.sub(r"<[^>]+>", "", t) for t in titles] == ["images: none", "images: owl.png"]
    assert markup.count("<i>not run</i>") == 1  # c at seed 8: a run of that facet's grid that was not made
    assert "skipped: over the budget" in markup


def test_a_rerun_sits_in_its_own_seed_column_and_names_its_parent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exp = Experiment("reruns", store=str(tmp_path / "rf.sqlite"), artifacts=tmp_path / "artifacts")
    _insert(exp, tmp_path, [
        {"run_id": "parent01", "model": R2V, "prompt": "a horse", "seed": 1},
        {"run_id": "parent02", "model": R2V, "prompt": "a horse", "seed": 2},
        {"run_id": "rerun099", "model": R2V, "prompt": "a horse", "seed": 99, "parent_run_id": "parent01"},
    ])
    df = exp.table()
    g = study.grid(df, rows="model", cols="seed")
    assert g.col_keys == [1, 2, 99]
    assert [r["run_id"] for r in g.runs((), R2V, 1)] == ["parent01"]
    assert [r["run_id"] for r in g.runs((), R2V, 99)] == ["rerun099"]
    markup = gallery_html(df, rows="model", cols="seed")
    assert "↳ re-run of run parent01" in markup
    cell = markup[markup.index("rerun099.mp4") - 2000:markup.index("rerun099.mp4")]
    assert "rf-edit" in cell and "parent02.mp4" in markup[:markup.index("rerun099.mp4")]  # after seed 2


def test_a_value_the_filter_fixes_is_said_once_and_an_edit_stays_under_its_parent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exp = Experiment("filtered", store=str(tmp_path / "rf.sqlite"), artifacts=tmp_path / "artifacts")
    prompt = "character1 trots along the shore"
    _insert(exp, tmp_path, [
        {"run_id": "shore001", "model": T2V, "prompt": prompt, "seed": 1},
        {"run_id": "shore002", "model": T2V, "prompt": prompt, "seed": 2},
        {"run_id": "snow0001", "model": T2V, "prompt": "character1 rears up in the snow", "seed": 1},
        {"run_id": "edit0001", "model": "alibaba/happy-horse/video-edit", "prompt": "make it night", "seed": 1,
         "parent_run_id": "shore001"},
    ])
    markup = exp.gallery(rows="model", cols="seed", prompt=prompt).markup
    captions = re.findall(r"<figcaption[^>]*>(.*?)</figcaption>", markup, flags=re.S)
    assert len(captions) == 3 and "snow0001" not in markup
    assert markup.count(prompt) == 2  # once above the grid (its text and its title), in no caption
    assert 'class="rf-constants' in markup and not any(prompt in c for c in captions)
    assert not any("<b>dur</b>" in c for c in captions)  # the same for every clip: said once
    assert "↳ edit of run shore001" in markup and any("make it night" in c for c in captions)


def test_a_tile_without_a_clip_carries_no_clip_badge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exp = Experiment("badges", store=str(tmp_path / "rf.sqlite"), artifacts=tmp_path / "artifacts")
    _insert(exp, tmp_path, [{"run_id": f"run{s:05d}", "model": T2V, "prompt": "p", "seed": s} for s in (1, 2)])
    exp.store.update_run("run00002", status="skipped_budget", video_path=None,
                         error_message="skipped: the next run would take spending past the budget")
    markup = gallery_html(exp.table(), rows="prompt", cols="seed")
    skipped = markup[markup.index("rf-reason-skipped_budget"):]
    skipped = skipped[:skipped.index("</td>")]
    assert "SIMULATED" not in skipped and "over the budget" in skipped
    assert markup.count("SIMULATED") == 1  # the clip's own badge


@pytest.mark.parametrize("clips", [48, 150])
def test_a_live_gallery_is_a_handful_of_widget_models_whatever_its_size(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clips: int) -> None:
    """Every widget model is a message to the page when the grid is drawn: the whole grid is one
    HTML widget, its controls plain buttons, never a widget (and a layout and style) per tile."""
    pytest.importorskip("ipywidgets")
    from ipywidgets.widgets.widget import _instances  # every live widget model, by id

    from runflow_nb.widgets.gallery import Gallery

    monkeypatch.chdir(tmp_path)
    exp = Experiment("big", store=str(tmp_path / "rf.sqlite"), artifacts=tmp_path / "artifacts")
    prompts = ["a", "b", "c", "d", "e"]
    _insert(exp, tmp_path, [{"run_id": f"run{i:05d}", "model": T2V, "prompt": prompts[i % 5], "seed": i // 5}
                            for i in range(clips)])
    df = exp.table()
    before = set(_instances)
    live = Gallery(df, rows="prompt", cols="seed", experiment=exp).live()
    made = set(_instances) - before
    grid = live.grid.value
    assert grid.count('<td class="rf-cell"') == 5 * -(-clips // 5)  # every cell of 5 prompts × the seeds
    assert grid.count("<video ") == clips and grid.count('class="rf-rating-row"') == clips
    assert len(made) <= 20, f"{len(made)} widget models for {clips} clips"
    # a click's command, as the page sends it: saved to the store, said in the status line
    live.bus.value = "1|rate|run00003|4"
    live.bus.value = "2|fav|run00003|1"
    row = exp.store.get_run("run00003")
    assert row["rating"] == 4 and study.FAVOURITE in row["tags"] and "saved" in live.status.value
    live.bus.value = "3|rate|not-in-this-grid|5"  # another grid's clip: ignored
    # ⋯ opens the clip's follow-up buttons in the panel, built on first use
    assert not live.panel.children
    live.bus.value = "4|more|run00003|"
    assert [c for c in _walk(live.widget) if "rf-actions" in getattr(c, "_dom_classes", ())]
