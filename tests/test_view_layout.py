"""``exp.view()`` laid out as researchers read it: text left, numbers right, a model by its family
name, and a clip sent as its bytes carried once per saved output, not twice."""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import runflow_nb as rf
from runflow_nb.views import display, served, tableview

MODEL = "alibaba/happy-horse/reference-to-video"


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"run_id": ["a1" * 8, "b2" * 8], "prompt": ["character1 trots", "character1 rears up"],
                         "model": [MODEL, "alibaba/happy-horse/text-to-video"], "seed": [1, 2],
                         "status": ["succeeded", "failed"], "cost_usd": [0.42, 1.4], "backend": "simulator"})


def _column_defs(markup: str) -> list[dict[str, object]]:
    found = re.search(r'"columnDefs": (\[.*?\]),\n', markup)
    assert found, markup[:2000]
    return list(json.loads(found.group(1)))


def test_text_columns_read_left_and_numbers_right_in_the_interactive_table() -> None:
    view = tableview.TableView(_frame())
    names = list(view.frame.columns)
    sides: dict[str, set[str]] = {}
    for spec in _column_defs(view._itables_html()):
        if "className" in spec:
            for i in spec["targets"]:  # type: ignore[attr-defined]
                sides.setdefault(names[i], set()).add(str(spec["className"]))
    # JupyterLab right-aligns every output table cell: each column says its side outright
    assert {n: sides.get(n) for n in names} == {
        "clip": {"dt-left"}, "prompt": {"dt-left"}, "model": {"dt-left"}, "seed": {"dt-right"},
        "status": {"dt-left"}, "cost_usd": {"dt-right"}, "run": {"dt-left"}}


def _cell_sides(markup: str) -> dict[str, str]:
    heads = re.findall(r'<th style="text-align:(\w+);[^"]*">([^<]*)</th>', markup)
    first_row = re.search(r"<tbody><tr>(.*?)</tr>", markup)
    assert heads and first_row
    cells = re.findall(r'<td style="text-align:(\w+);', first_row.group(1))
    assert [side for side, _ in heads] == cells  # each cell aligned as its header
    return {name: side for side, name in heads}


def test_the_static_table_and_the_preview_align_text_left_and_numbers_right() -> None:
    view = tableview.TableView(_frame())
    tableview._itables_ready = True  # the page has the bundle: only the table itself
    preview = view._repr_html_().split("_fallback", 1)[1]  # what shows before (or without) the script
    for markup in (view.static_html(), preview):
        assert _cell_sides(markup) == {"clip": "left", "prompt": "left", "model": "left", "seed": "right",
                                       "status": "left", "cost_usd": "right", "run": "left"}


def test_a_model_shows_by_its_family_name_unbroken_with_the_full_id_on_hover() -> None:
    cell = tableview.TableView(_frame()).frame["model"].iloc[0]
    assert cell == (f'<span title="{MODEL}" style="white-space:nowrap">reference-to-video</span>')


@pytest.fixture
def vs_code_kernel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """A live kernel with no Jupyter file server (VS Code, Colab; or a file outside the Lab root):
    clips go to the page as their bytes."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setattr("runflow_nb.views.served.interactive_frontend", lambda: True)
    served.kernel_file_server.cache_clear()
    yield
    served.kernel_file_server.cache_clear()


def _bytes_study(tmp_path: Path, seeds: list[int]) -> tuple[rf.Experiment, pd.DataFrame]:
    from runflow_nb.samples import sample_images

    exp = rf.Experiment("bytes", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "clips",
                        client=rf.Client(backend="simulator"))
    df = exp.run(rf.grid(prompt="character1 trots", images=[str(p) for p in sample_images(1)], seed=seeds,
                         duration=3, resolution="720p"), progress=None)
    return exp, df


def test_a_clip_sent_as_its_bytes_weighs_once_in_every_saved_view(vs_code_kernel: None, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from runflow_nb.widgets.compare import CompareWidget
    from runflow_nb.widgets.gallery import best_html

    monkeypatch.chdir(tmp_path)
    exp, df = _bytes_study(tmp_path, [1, 2])
    rows = [exp.store.get_run(r) for r in df.run_id]
    assert all(display.media_src(r["video_path"]).startswith("data:video/mp4;base64,") for r in rows)
    clips = [base64.b64encode(Path(r["video_path"]).read_bytes()).decode() for r in rows]
    weight = sum(len(c) for c in clips)

    tableview._itables_ready = False  # the first table of a kernel carries the tables library too
    view = exp.view()._repr_html_()
    bundle = view.split(tableview.BUNDLE_START, 1)[1].split(tableview.BUNDLE_END, 1)[0]
    compare = CompareWidget(exp, rows[0]["run_id"], rows[1]["run_id"])
    outputs = {"view": view, "ranking": exp.ranking()._repr_html_(), "view (static)": exp.view().static_html(),
               "gallery (saved view)": exp.gallery().markup, "compare (saved view)": compare._saved_html,
               "best": best_html(exp.table())}
    for name, markup in outputs.items():
        for clip in clips:  # a stretch from each clip's middle (MP4 headers look alike)
            middle = clip[len(clip) // 2: len(clip) // 2 + 400]
            assert markup.count(middle) <= 1, f"{name}: a clip's bytes {markup.count(middle)} times"
    # the table's output: the tables library, then each clip's bytes once (stills and markup are small)
    assert len(view) - len(bundle) < weight * 1.25, (len(view), len(bundle), weight)
    assert view.count("data:video/mp4") == len(clips)  # in the table's data; the preview shows the stills


CHROMIUM = "/usr/bin/chromium"


@contextlib.contextmanager
def _served(folder: Path) -> Iterator[str]:
    """``folder`` over http on loopback."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.browser
def test_a_still_whose_clip_was_sent_as_bytes_opens_it_playing_in_a_new_tab(vs_code_kernel: None, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Browsers refuse to open a data: URI in a tab: the view's still opens the clip as a blob: URL."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (never `playwright install`)")
    sync_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.chdir(tmp_path)
    exp, _ = _bytes_study(tmp_path, [1])
    tableview._itables_ready = False  # this page carries its own copy of the tables library
    view = exp.view()
    assert 'download="' in view.frame["clip"].iloc[0]  # where handlers are stripped, the link saves the clip
    markup = view._repr_html_()
    (tmp_path / "view.html").write_text(f"<!doctype html><html><body>{markup}</body></html>", encoding="utf-8")
    with _served(tmp_path) as base, sync_api.sync_playwright() as p:  # over http, as JupyterLab serves a page
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                                                    "--autoplay-policy=no-user-gesture-required"])
        try:
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"{base}/view.html")
            still = page.locator("table.dataTable tbody img[alt=still]").first
            still.wait_for(timeout=60_000)
            with context.expect_page(timeout=30_000) as opened:
                still.click()
            tab = opened.value
            tab.wait_for_load_state()
            assert tab.url.startswith(f"blob:{base}/"), tab.url
            tab.bring_to_front()
            state = tab.evaluate("""() => new Promise(done => {
                const v = document.querySelector('video'); v.muted = true;
                const end = Date.now() + 30000;
                const look = () => (v.readyState >= 2 && v.currentTime > 0.1) || Date.now() > end
                    ? done({ready: v.readyState, t: v.currentTime, width: v.videoWidth}) : setTimeout(look, 100);
                v.play().catch(() => {}); look(); })""")
            assert state["ready"] >= 2 and state["t"] > 0 and state["width"] == 1280, state
        finally:
            browser.close()


def test_view_leaves_out_outcome_columns_that_say_nothing() -> None:
    import pandas as pd

    from runflow_nb.views.tableview import view_columns

    base = {"run_id": ["a", "b"], "prompt": ["p", "p"], "seed": [1, 2], "cost_usd": [0.42, 0.42],
            "wall_s": [3.0, 4.0]}
    quiet = view_columns(pd.DataFrame({**base, "status": ["succeeded"] * 2, "rating": [None, None]}))
    assert "status" not in quiet and "rating" not in quiet and {"seed", "cost_usd", "wall_s"} <= set(quiet)
    told = view_columns(pd.DataFrame({**base, "status": ["succeeded", "failed"], "rating": [4, None]}))
    assert told.index("status") < told.index("rating") < told.index("cost_usd")
