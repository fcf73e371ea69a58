"""``exp.view()`` in a real browser: numbers sort as numbers, and a click on a header's name sorts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runflow_nb import Experiment
from runflow_nb.views import tableview

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
WALLS = [7.9, 19.1, 15.5, 102.0, None, 9.25]


@pytest.fixture
def exp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Experiment:
    monkeypatch.chdir(tmp_path)
    exp = Experiment("v", store=str(tmp_path / "rf.sqlite"), artifacts=tmp_path / "artifacts")
    for i, wall in enumerate(WALLS):
        exp.store.insert_run({"run_id": f"run{i:05d}", "experiment": "v", "run_key": f"k{i}", "prompt": "p",
                              "seed": [3, 12, 100, 1, 25, 2][i], "status": "failed" if wall is None else "succeeded",
                              "wall_s": wall, "cost_usd": [0.42, 1.4, 0.7, 12.6, None, 2.1][i], "backend": "simulator"})
    return exp


def test_numeric_columns_carry_their_number_for_sorting(exp: Experiment) -> None:
    view = exp.view()
    assert set(view.numeric) >= {"seed", "wall_s", "cost_usd"} and "prompt" not in view.numeric
    cells = list(view.frame["wall_s"])
    assert cells[1] == '<span data-order="19.1">19.1 s</span>' and cells[4] == ""
    tableview._itables_ready = False
    markup = view._repr_html_()
    assert '"type": "num"' in markup and "data-order" in markup
    assert "text_in_header_can_be_selected" not in markup  # (itables drops the option when off)


def _column(page: Any, name: str) -> list[str]:
    return page.evaluate(
        """(name) => { const t = document.querySelector('table.dataTable');
            const i = [...t.querySelectorAll('thead th')].findIndex(th => th.textContent.trim().startsWith(name));
            return [...t.querySelectorAll('tbody tr')].map(tr => tr.children[i].textContent.trim()); }""", name)


@pytest.mark.browser
def test_a_click_on_a_header_name_sorts_numbers_as_numbers(exp: Experiment, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (never `playwright install`)")
    sync_api = pytest.importorskip("playwright.sync_api")
    tableview._itables_ready = False  # this page carries its own copy of the tables library
    page_file = tmp_path / "view.html"
    page_file.write_text(f"<!doctype html><html><body>{exp.view()._repr_html_()}</body></html>", encoding="utf-8")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri())
            page.wait_for_selector("table.dataTable tbody tr", timeout=60_000)
            for name, ascending in (("wall_s", ["", "7.9 s", "9.2 s", "15.5 s", "19.1 s", "102.0 s"]),
                                    ("seed", ["1", "2", "3", "12", "25", "100"]),
                                    ("cost_usd", ["", "est. $0.42", "est. $0.70", "est. $1.40", "est. $2.10",
                                                  "est. $12.60"])):
                # the header's name itself (not the small arrow beside it)
                title = page.locator("table.dataTable thead th .dt-column-title", has_text=name)
                title.click()
                page.wait_for_function("(n) => document.querySelector('table.dataTable thead th.dt-ordering-asc')"
                                       " && document.querySelector('table.dataTable thead th.dt-ordering-asc')"
                                       ".textContent.trim().startsWith(n)", arg=name, timeout=30_000)
                assert _column(page, name) == ascending
                title.click()
                page.wait_for_selector("table.dataTable thead th.dt-ordering-desc", timeout=30_000)
                assert _column(page, name) == ascending[::-1]
        finally:
            browser.close()


def test_reference_files_show_by_name_with_the_full_path_on_hover() -> None:
    import pandas as pd

    refs = ["/home/me/.cache/samples/v1/character1-horse.png", "/home/me/.cache/samples/v1/character2-robot.png"]
    df = pd.DataFrame({"run_id": ["a1", "b2"], "prompt": ["p", "p"], "images": [refs, refs[:1]], "seed": [1, 2],
                       "status": ["succeeded", "succeeded"]})
    frame = tableview.view_frame(df, ["images", "seed"])
    both, one = frame["images"]
    assert ">character1-horse.png, character2-robot.png<" in both and ">character1-horse.png<" in one
    assert both.count("/home/me/.cache") == 2 and 'title="' in both  # the full paths on hover only
    assert "/home/me" not in both.split(">", 1)[1]
