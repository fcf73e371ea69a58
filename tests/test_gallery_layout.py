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

    root = Gallery(df, rows="prompt", cols="seed", experiment=exp).widget()
    cells = [c for grid in root.children if hasattr(grid, "children") for c in grid.children
             if "rf-cell" in getattr(c, "_dom_classes", ())]
    (cell,) = [c for c in cells if any("parent01.mp4" in getattr(p, "value", "") for p in c.children)]
    order = [name for p in cell.children for name in ("parent01", "edit0001", "edit0002")
             if f"{name}.mp4" in getattr(p, "value", "")]
    assert order == ["parent01", "edit0001", "edit0002"]
    rows = [p for p in cell.children if "rf-rating-row" in getattr(p, "_dom_classes", ())]
    assert len(rows) == 3 and all(r.layout.flex_flow == "row nowrap" for r in rows)  # one line each


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
