"""Reading a study: column order, aligned grids, ranking from ratings and A/B choices, the table
view, and artifact paths that resolve from any folder."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from runflow_nb import Experiment, study
from runflow_nb.store.runstore import Store
from runflow_nb.views.tableview import TableView
from runflow_nb.widgets.compare import record_choice
from runflow_nb.widgets.gallery import best_html, gallery_html

XSS = '<script>alert("$1")</script>'


def _runs(exp: Experiment, grid: list[dict[str, Any]], *, root: Path) -> list[dict[str, Any]]:
    folder = root / "artifacts" / exp.name
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, params in enumerate(grid):
        run_id = f"r{i:03d}"
        status = params.pop("status", "succeeded")
        video, poster = folder / f"{run_id}.mp4", folder / f"{run_id}.jpg"
        if status == "succeeded":
            video.write_bytes(b"stand-in")
            Image.new("RGB", (720, 1280) if params.get("aspect_ratio") == "9:16" else (640, 360),
                      (i * 9 % 255, 90, 140)).save(poster)
        rows.append(exp.store.insert_run({
            "run_id": run_id, "experiment": exp.name, "run_key": f"k{i}", "status": status, "backend": "simulator",
            "cost_usd": 0.42 if status == "succeeded" else None, "resolution": "720p",
            "video_path": str(video) if status == "succeeded" else None,
            "poster_path": str(poster) if status == "succeeded" else None, **params}))
    return rows


@pytest.fixture
def exp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Experiment:
    monkeypatch.chdir(tmp_path)
    return Experiment("s", store=str(tmp_path / "runflow.sqlite"), artifacts=tmp_path / "artifacts")


def test_table_puts_what_varied_first_and_ids_last(exp: Experiment, tmp_path: Path) -> None:
    _runs(exp, [{"prompt": p, "seed": s, "duration": 3} for p in ("a", "b") for s in (1, 2)], root=tmp_path)
    cols = list(exp.table().columns)
    assert cols[:2] == ["prompt", "seed"] and cols.index("status") < cols.index("wall_s") < cols.index("cost_usd")
    assert cols.index("cost_usd") < cols.index("run_id") and cols[-1] in study.IDS
    assert set(cols) == {*exp.store.table("s").columns, "changes"}  # what each run changed from its parent
    assert cols.index("changes") == cols.index("parent_run_id") + 1


def test_gallery_aligns_facets_and_says_why_cells_are_empty(exp: Experiment, tmp_path: Path) -> None:
    grid = [{"prompt": p, "seed": s, "duration": d, "aspect_ratio": "16:9"}
            for p in ("a", XSS) for s in (1, 2) for d in (3, 5)]
    grid[1]["status"] = "skipped_budget"  # prompt a, seed 1, 5 s
    grid[2].update(status="failed", error_message="the model could not generate this clip")  # a, seed 2, 3 s
    grid.pop()  # XSS prompt, seed 2, 5 s: never run
    _runs(exp, grid, root=tmp_path)
    g = study.grid(exp.table(), rows="prompt", cols="seed")
    assert g.facets == ["duration"] and g.facet_keys == [(3,), (5,)]
    assert g.row_keys == ["a", XSS] and g.col_keys == [1, 2]  # the same rows and columns in every facet
    markup = gallery_html(exp.table(), rows="prompt", cols="seed")
    assert XSS not in markup and "&lt;script&gt;" in markup and "$" not in markup
    assert markup.count('class="rf-facet"') == 2
    assert "skipped: over the budget" in markup and "the model could not generate this clip" in markup
    assert markup.count("<i>not run</i>") == 1
    from runflow_nb.views.display import reason_html
    skipped = reason_html({"status": "skipped_budget",
                           "error_message": "skipped: the next run would take spending past the budget of $4.00"})
    assert skipped.count("skipped:") == 1 and "the next run would take spending past the budget of &#36;4.00" in skipped
    assert markup.count("<video ") == 5 and markup.count('poster="data:image/jpeg;base64,') == 5


def test_portrait_clips_stay_a_sensible_height(exp: Experiment, tmp_path: Path) -> None:
    _runs(exp, [{"prompt": "p", "seed": 1, "aspect_ratio": "9:16", "width": 720, "height": 1280}], root=tmp_path)
    markup = gallery_html(exp.table(), rows="prompt", cols="seed")
    style = re.search(r'<video [^>]*style="([^"]+)"', markup)
    assert style is not None and "min(100%,202px)" in style.group(1) and "aspect-ratio:0.5625" in style.group(1)


def test_ab_choices_ratings_and_favourites_rank_runs(exp: Experiment, tmp_path: Path) -> None:
    rows = _runs(exp, [{"prompt": p, "seed": s} for p in ("a", "b") for s in (1, 2, 3)], root=tmp_path)
    a1, a2, a3, b1, b2, b3 = (r["run_id"] for r in rows)
    pair = exp.next_pair()
    assert pair is not None and len({exp.store.get_run(r)["prompt"] for r in pair}) == 1
    record_choice(exp, a3, a1, "A better")
    record_choice(exp, a3, a2, "A better")
    record_choice(exp, a1, a2, "tie")
    ranked = exp.ranking()
    assert ranked[ranked["prompt"] == "a"]["run_id"].iloc[0] == a3
    assert ranked.set_index("run_id").loc[a3, "wins"] == 2 and ranked.set_index("run_id").loc[a1, "losses"] == 1
    exp.rate(b2, 5)
    exp.tag(b1, study.FAVOURITE)
    best = study.best_per(exp.table())
    assert dict(zip(best["prompt"], best["run_id"], strict=True)) == {"a": a3, "b": b1}  # favourite beats rated
    assert "★ favourite" in best_html(exp.table()) and "A/B 2–0" in best_html(exp.table())
    # every pair of prompt a is judged: the next pair is from prompt b, never a pair seen before
    seen = {frozenset(p) for p in ((a3, a1), (a3, a2), (a1, a2))}
    for _ in range(3):
        nxt = exp.next_pair()
        assert nxt is not None and frozenset(nxt) not in seen and set(nxt) <= {b1, b2, b3}
        seen.add(frozenset(nxt))
        record_choice(exp, *nxt, "tie")
    assert exp.next_pair() is None
    with pytest.raises(ValueError, match="has been compared"):
        exp.compare()


def test_view_shows_a_still_per_run_and_only_what_varied(exp: Experiment, tmp_path: Path) -> None:
    _runs(exp, [{"prompt": XSS, "seed": s, "duration": 3} for s in (1, 2, 3)] + [{"prompt": "x", "status": "failed",
                                                                              "seed": 4, "duration": 3}],
          root=tmp_path)
    view = exp.view()
    assert isinstance(view, TableView) and len(view) == 4
    assert list(view.frame.columns) == ["clip", "prompt", "seed", "status", "cost_usd", "wall_s", "run"]  # no rating yet
    for markup in (view._repr_html_(), view.static_html()):
        assert XSS not in markup and "&lt;script&gt;" in markup
        assert markup.count('src="data:image/jpeg;base64,') == 3 and "est. &#36;0.42" in markup
        assert "mathjax_ignore" in markup
    assert "DataTable" in view._repr_html_() or "ITable" in view._repr_html_()  # itables drives sort and search


def test_paths_resolve_from_any_folder_and_travel_with_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    study_dir = tmp_path / "study"
    (study_dir / "notebooks").mkdir(parents=True)
    monkeypatch.chdir(study_dir / "notebooks")  # a kernel in the notebook's folder, relative defaults
    exp = Experiment("p", store="runflow.sqlite", artifacts="artifacts")
    (run,) = _runs(exp, [{"prompt": "p", "seed": 1}], root=Path("."))
    raw = exp.store.engine.connect().exec_driver_sql("SELECT video_path, poster_path FROM runs").one()
    assert tuple(raw) == ("artifacts/p/r000.mp4", "artifacts/p/r000.jpg")  # relative to the store's folder
    exp.store.close()

    monkeypatch.chdir(tmp_path)  # the CLI or a report kernel somewhere else
    row = Store(study_dir / "notebooks" / "runflow.sqlite").get_run(run["run_id"])
    assert row is not None and Path(row["video_path"]).is_file() and Path(row["video_path"]).is_absolute()

    moved = tmp_path / "elsewhere"
    shutil.move(study_dir / "notebooks", moved)  # the study copied to another folder or machine
    table = Store(moved / "runflow.sqlite").table("p")
    assert Path(table["video_path"][0]) == moved / "artifacts" / "p" / "r000.mp4"
    assert os.path.isfile(table["poster_path"][0])


def test_absolute_paths_fall_back_to_artifacts_beside_the_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "a" / "runflow.sqlite")
    row = store.insert_run({"experiment": "e", "run_key": "k", "video_path": "/gone/e/clip.mp4"})
    assert store.get_run(row["run_id"])["video_path"] == "/gone/e/clip.mp4"  # missing and nowhere else
    (tmp_path / "a" / "artifacts" / "e").mkdir(parents=True)
    (tmp_path / "a" / "artifacts" / "e" / "clip.mp4").write_bytes(b"x")
    assert store.get_run(row["run_id"])["video_path"] == str(tmp_path / "a" / "artifacts" / "e" / "clip.mp4")


def test_widgets_depend_on_the_library_and_not_the_other_way_round() -> None:
    """No module-level import of widgets from the library, and widgets never import experiment at
    run time (type hints only): the arrows point down."""
    import ast

    root = Path(__file__).resolve().parents[1] / "runflow_nb"

    def imports(path: Path, *, top_level_only: bool) -> set[str]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        body = tree.body if top_level_only else list(ast.walk(tree))
        found: set[str] = set()
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.ImportFrom) and node.module is not None:
                found.add("." * node.level + node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        return found

    for path in root.glob("*.py"):
        assert not {m for m in imports(path, top_level_only=True) if "widgets" in m}, path.name
    for path in (root / "widgets").glob("*.py"):
        runtime = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for n in ast.walk(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and id(node) not in guarded and node.module:
                runtime.add(node.module)
        assert "experiment" not in runtime and "runflow_nb.experiment" not in runtime, path.name


def test_the_tables_library_rides_with_one_output_and_again_when_that_cell_reruns(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from runflow_nb.views import tableview

    monkeypatch.setattr(tableview, "_itables_ready", False)
    monkeypatch.setattr(tableview, "_bundle_cell", None)
    cell = {"id": "a"}
    monkeypatch.setattr(tableview, "_cell_id", lambda: cell["id"])
    first = tableview._itables_init()
    assert first.startswith(tableview.BUNDLE_START) and len(first) > 500_000
    cell["id"] = "b"
    assert tableview._itables_init() == ""  # another cell's table waits for the copy in the page
    cell["id"] = "a"
    assert tableview._itables_init() == first  # cell a re-run: its new output carries it again
    assert 'import("https://' in tableview.connected_loader()
