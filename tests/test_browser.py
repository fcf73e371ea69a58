"""The live-Lab test bed: real JupyterLab on loopback, Playwright driving Debian's chromium.

Each bundled notebook (quickstart, seed_sweep, compare_models, compare) is opened and Run All; then
EVERY ``<video>`` on the page must fetch from the page as ``video/*`` and reach readyState >= 2 and
advance when played, every still (poster, output image) must fetch as ``image/*``, and nothing may be
typeset by MathJax. The same with notebooks in a sub-folder of the Lab root, with the store and
artifacts outside the Lab root (``RUNFLOW_STORE``/``RUNFLOW_ARTIFACTS``), and with artifacts on S3
(moto's server on loopback, presigned URLs). The form, the compare view, the gallery's rating and the
report are driven as a researcher would. One JupyterLab serves the whole session; screenshots of
every cell with clips go to ``test-artifacts/browser/``. Skips cleanly without chromium.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from _lab import (
    KERNEL_IDLE as _KERNEL_IDLE,
)
from _lab import (
    ROOT,
    SCREENSHOTS,
    Lab,
    assert_media,
    assert_no_math,
    check_media,
    jupyterlab,
    kernel_eval,
    offline_env,
    open_notebook,
    run_all,
    run_code,
    screenshot_cells,
    why_skip,
    write_notebook,
)
from _lab import (
    RUN_CODE as _RUN_CODE,
)

pytestmark = pytest.mark.browser
KEEP_ORDER = True  # the quickstart page is walked through form, reopen, compare and gallery, in file order

DURATION = 4  # requested through the form's slider; the quickstart pre-fills 3
XSS = "<script>alert(1)</script>"
DIALOGS: list[str] = []
NOTEBOOKS = ROOT / "notebooks"
SUB = "sub/study"  # notebooks in a sub-folder of the Lab root
AWAY = "away"  # notebooks whose store and artifacts are outside the Lab root


@pytest.fixture(scope="session")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder outside the Lab root for a store and its artifacts."""
    return tmp_path_factory.mktemp("outside-lab-root")


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory, outside: Path) -> Iterator[Lab]:
    reason = why_skip()
    if reason:
        pytest.skip(reason)
    from PIL import Image

    root = tmp_path_factory.mktemp("lab")
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "runflow_data", "artifacts")
    shutil.copytree(NOTEBOOKS, root, dirs_exist_ok=True, ignore=ignore)
    shutil.copytree(NOTEBOOKS, root / SUB, dirs_exist_ok=True, ignore=ignore)
    env_cell = ("import os\n"
                f"os.environ['RUNFLOW_STORE'] = {str(outside / 'runs.sqlite')!r}\n"
                f"os.environ['RUNFLOW_ARTIFACTS'] = {str(outside / 'clips')!r}")
    for name in ("seed_sweep.ipynb", "compare.ipynb"):
        write_notebook(root / AWAY / name, env_cell, before=NOTEBOOKS / name)
    Image.new("RGB", (800, 600), (40, 120, 200)).save(root / "browser-ref.png")
    Image.new("RGB", (200, 200), (200, 40, 40)).save(root / "small.png")
    with jupyterlab(root, tmp_path_factory.mktemp("jupyter-home")) as server:
        yield server


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[Any]:
    """One chromium per test file: Playwright's sync API keeps an event loop set on this thread while
    it runs, so it must stop before the worker's next file (whose asyncio.run() would refuse to start)."""
    from _lab import CHROMIUM, LAUNCH_ARGS
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _new_page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1300, "height": 2000})
    page = context.new_page()
    page.on("dialog", lambda d: (DIALOGS.append(d.message), d.dismiss()))
    return page


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    """The quickstart's page, shared by the form, reopen, compare and gallery tests (in that order)."""
    DIALOGS.clear()
    page = _new_page(browser)
    try:
        yield page
    finally:
        page.context.close()


@pytest.fixture
def fresh_page(browser: Any) -> Iterator[Any]:
    page = _new_page(browser)
    try:
        yield page
    finally:
        page.context.close()


def _kernel_eval(page: Any, code: str, marker: str, timeout_ms: int = 20000) -> str:
    return kernel_eval(page, code, marker, timeout_ms=timeout_ms)


def _count_runs(page: Any) -> int:
    code = ("from runflow_nb.client import simulator_emulator as _se\n"
            "print('RUNS=' + str(_se().simulator.counts()['runs']))")
    return int(_kernel_eval(page, code, "RUNS="))


def _set_slider(page: Any, css: str, value: int) -> None:
    readout = page.locator(f"{css} .widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(str(value))
    page.keyboard.press("Enter")
    page.wait_for_function("([css, v]) => document.querySelector(css + ' .widget-readout').textContent.trim() == v",
                           arg=[css, str(value)])


def test_form_generates_a_playable_clip_and_refuses_a_small_image(lab: Lab, page: Any) -> None:
    """quickstart.ipynb, Run All: every clip on the page plays (rf.show's), then the form is filled and
    generates a clip that plays with sound at the requested duration."""
    open_notebook(page, lab, "quickstart.ipynb")
    run_all(page)
    media = check_media(page)
    assert_media(media, videos=1)  # rf.show(result)
    assert_no_math(page)
    screenshot_cells(page, "quickstart")
    t0 = time.monotonic()
    form = page.locator(".rf-generate-form").first
    form.wait_for(timeout=30000)

    form.locator(".rf-input-prompt textarea").fill(f"character1 trots across the sand {XSS}")
    form.locator(".rf-input-resolution button", has_text="720p").click()
    _set_slider(page, ".rf-generate-form .rf-input-duration", DURATION)
    form.locator(".rf-image-path input").fill("browser-ref.png")
    form.locator(".rf-image-add").click()
    form.locator(".rf-thumbnail", has_text="browser-ref.png").wait_for()
    generate = form.locator("button.rf-generate")
    page.wait_for_function("() => !document.querySelector('.rf-generate-form button.rf-generate').disabled")
    page.wait_for_function(_KERNEL_IDLE, timeout=60000)  # the notebook's own cells are done
    runs_before = _count_runs(page)

    generate.click()
    form.locator(".rf-status", has_text="…").wait_for(timeout=10000)  # queued/running with elapsed time
    page.wait_for_function("""() => { const f = document.querySelector('.rf-generate-form');
        return f.querySelector('.rf-result video') || /failed/.test(f.querySelector('.rf-status').innerText); }""",
                           timeout=60000)
    status = form.locator(".rf-status").inner_text()
    if "failed" in status:
        form.screenshot(path=str(SCREENSHOTS / "generate_form_failed.png"))
        pytest.fail(f"the run failed in the kernel: {status}")
    page.wait_for_function(
        """(d) => { const v = document.querySelector('.rf-generate-form .rf-result video');
                   return v && v.readyState >= 1 && Math.abs(v.duration - d) <= 0.1; }""", arg=DURATION, timeout=30000)
    # the user presses play: it reaches readyState >= 2 and time advances, with sound
    state = page.evaluate("""async () => {
        const v = document.querySelector('.rf-generate-form .rf-result video');
        v.muted = false; await v.play();
        await new Promise(r => setTimeout(r, 600));
        v.pause();
        return {ready: v.readyState, duration: v.duration, t: v.currentTime, src: v.currentSrc,
                autoplay: v.autoplay, controls: v.controls, muted: v.muted,
                audio: v.webkitAudioDecodedByteCount, caption: v.parentElement.innerText};
    }""")
    assert state["ready"] >= 2 and abs(state["duration"] - DURATION) <= 0.1, state
    assert state["t"] > 0 and state["controls"] and not state["autoplay"] and not state["muted"], state
    assert state["audio"] > 0, state  # the AAC track decoded
    assert "/files/" in state["src"] and not state["src"].startswith("data:"), state  # served by Jupyter, by reference
    assert XSS in state["caption"] and "SIMULATED" in state["caption"]  # the prompt renders as text
    assert DIALOGS == []  # no alert(): the prompt was not run as script
    assert _count_runs(page) == runs_before + 1
    assert_media(check_media(page, ".rf-generate-form"), videos=1)  # the form's own clip, checked like every other
    form.locator(".rf-result video").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "generate_form_result.png"))

    # an invalid reference, uploaded: explained beside the images, Generate disabled, nothing sent
    with page.expect_file_chooser() as chooser:
        form.locator(".rf-image-upload").click()
    chooser.value.set_files(str(lab.root / "small.png"))
    error = form.locator(".rf-error-image_urls")
    error.filter(has_text="200×200").wait_for(timeout=10000)
    assert "400 px" in error.inner_text()
    page.wait_for_function("() => document.querySelector('.rf-generate-form button.rf-generate').disabled")
    generate.click(force=True)  # a disabled button: the click goes nowhere
    page.wait_for_timeout(300)
    assert _count_runs(page) == runs_before + 1
    page.screenshot(path=str(SCREENSHOTS / "generate_form_invalid.png"))
    assert time.monotonic() - t0 < 120


_POSTERS_LOADED = """async (root) => {
    const scope = document.querySelectorAll(root);
    const host = scope[scope.length - 1];
    const vids = [...host.querySelectorAll('video')];
    const out = [];
    for (const v of vids) {
        const img = new Image();
        img.src = v.poster;  // what the browser fetches for the still
        let ok = true;
        try { await img.decode(); } catch (e) { ok = false; }
        out.push({poster: v.poster.slice(0, 30), ok, w: img.naturalWidth, h: img.naturalHeight});
    }
    return out;
}"""


_PAIR_VISIBLE = r"""() => {
    const cell = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')].find(
        c => /GenerateForm\(/.test(c.querySelector('.jp-InputArea').innerText));
    if (!cell) return null;
    const shown = el => !!el && el.getClientRects().length > 0;
    const text = cell.querySelector('.jp-OutputArea').innerText;
    return {saved: shown(cell.querySelector('.rf-saved')), form: shown(cell.querySelector('.rf-generate-form')),
            notFound: /model not found/.test(text), loading: /Loading widget/.test(text),
            videos: cell.querySelectorAll('.rf-saved video').length};
}"""


def test_form_reopened_after_a_kernel_restart_shows_its_saved_view(lab: Lab, page: Any) -> None:
    """Saved, kernel restarted, page reloaded (JupyterLab saved no widget state): where the form was,
    its saved view (settings and last clip, with a poster that loads) — never "model not found"."""
    live = page.evaluate(_PAIR_VISIBLE)
    assert live is not None and live["form"] and not live["saved"], live  # the live form alone
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=10000)
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.restartKernel()")
    page.wait_for_timeout(1000)
    page.wait_for_function(_KERNEL_IDLE, timeout=30000)
    page.reload()
    page.wait_for_function(_KERNEL_IDLE, timeout=30000)
    page.wait_for_function(f"() => {{ const p = ({_PAIR_VISIBLE})(); return p && (p.notFound || p.saved); }}",
                           timeout=20000)
    page.wait_for_timeout(2500)  # the widget manager has given up on the old models by now
    after = page.evaluate(_PAIR_VISIBLE)
    assert after is not None and not after["notFound"] and not after["loading"], after
    assert after["saved"] and not after["form"] and after["videos"] == 1, after  # settings and the last clip
    saved = page.locator(".rf-saved").first
    assert XSS in saved.inner_text() and "SIMULATED" in saved.inner_text()  # the prompt, as text
    posters = page.evaluate(_POSTERS_LOADED, ".rf-saved")
    assert len(posters) == 1 and posters[0]["ok"] and posters[0]["w"] > 0, posters
    assert_media(check_media(page), videos=2)  # the saved form's clip and rf.show's, after the restart
    assert DIALOGS == []
    saved.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "generate_form_reopened.png"))


def test_compare_plays_both_videos_in_step_and_saves_a_rating(lab: Lab, page: Any) -> None:
    code = (
        "import glob as _g, runflow_nb as _rf\n"
        "_video = sorted(_g.glob('**/*.mp4', recursive=True))[0]\n"
        "_cmp = _rf.Experiment('browser-compare', store='compare.sqlite', artifacts='artifacts')\n"
        "_ids = [_cmp.store.insert_run({'experiment': 'browser-compare', 'run_key': k, 'status': 'succeeded',\n"
        "        'prompt': 'character1 <b>bold?</b>', 'seed': i, 'video_path': _video, 'backend': 'simulator'})['run_id']\n"
        "        for i, k in enumerate('ab')]\n"
        "_cmp.compare(*_ids)"
    )
    index = page.evaluate(_RUN_CODE, code)
    view = page.locator(".rf-compare").last
    view.locator("video").nth(1).wait_for(timeout=20000)
    synced = page.evaluate("""async () => {
        const vs = document.querySelectorAll('.rf-compare video');
        const [a, b] = [vs[vs.length - 2], vs[vs.length - 1]];
        await a.play();
        await new Promise(r => setTimeout(r, 500));
        const bothPlaying = !a.paused && !b.paused;
        a.pause();
        await new Promise(r => setTimeout(r, 200));
        return {bothPlaying, bothPaused: a.paused && b.paused, bTime: b.currentTime};
    }""")
    assert synced["bothPlaying"] and synced["bothPaused"] and synced["bTime"] > 0, synced
    view.locator(".rf-compare-rating-a button", has_text="4").click()
    view.locator(".rf-compare-choice button", has_text="A better").click()
    view.get_by_text("saved: A better").wait_for(timeout=10000)
    got = _kernel_eval(page, "print('RATED=' + str(_cmp.store.get_run(_ids[0])['rating']) + ','"
                             " + '|'.join(_cmp.store.get_run(_ids[0])['tags']))", "RATED=")
    assert got.startswith("4,preferred_over:"), got
    assert_media(check_media(page, index), videos=2, stills=False)  # runs written by hand: no poster_path
    view.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "compare_pair.png"))





def test_sweep_gallery_view_and_compare_show_stills_and_money_without_mathjax(lab: Lab, page: Any) -> None:
    if "/lab/tree/" not in page.url:
        open_notebook(page, lab, "quickstart.ipynb")
    code = (
        "import runflow_nb as _rf\n"
        "from runflow_nb.samples import sample_images as _si\n"
        "_sw = _rf.Experiment('browser-sweep', store='sweep.sqlite', artifacts='artifacts')\n"
        "_plan = _rf.grid(prompt=['character1 trots', 'character1 rears up'], images=[str(p) for p in _si(1)],\n"
        "                 seed=[1, 2, 3], duration=3, resolution='720p', aspect_ratio=['16:9', '9:16'])\n"
        "display(_plan.estimate())\n"
        "_sw.run(_plan, concurrency=4, budget_usd=4.0, progress=None)\n"
        "_sw.gallery(rows='prompt', cols='seed')"
    )
    index = page.evaluate(_RUN_CODE, code)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.locator(".rf-gallery.rf-live").first.wait_for(timeout=120000)
    page.wait_for_function(_KERNEL_IDLE, timeout=60000)
    posters = page.evaluate(_POSTERS_LOADED, ".rf-gallery.rf-live")
    assert posters, "no clips in the gallery"
    live = check_media(page, ".rf-gallery.rf-live")
    assert_media(live, videos=len(posters))  # every live tile plays, not just one
    assert all(v["attr"].startswith("/files/") for v in live["videos"]), live  # the server's own route
    assert all(p["ok"] and p["w"] > 0 for p in posters), posters  # every still decodes in the page
    text = cell.inner_text()
    assert "$0.42" in text and "$" in text  # the estimate and the captions show dollars as text
    assert "skipped: over the budget" in text  # a $5.04 plan against a $4 budget: the cut is explained
    maths = cell.locator("mjx-container, .MathJax, .MathJax_Preview, .mjx-chtml").count()
    assert maths == 0, f"{maths} MathJax element(s) in the sweep's output"
    heights = page.evaluate("""() => [...document.querySelectorAll('.rf-gallery.rf-live video')].map(
        v => v.getBoundingClientRect().height)""")
    assert max(heights) <= 370, heights  # 9:16 clips stay a sensible height
    fit = page.evaluate("""() => [...document.querySelectorAll('.rf-gallery.rf-live .rf-grid')].map(
        g => [g.scrollWidth, g.clientWidth])""")
    assert fit and all(sw <= cw + 1 for sw, cw in fit), fit  # the grid fits the panel: no sideways scrolling
    cell.locator(".rf-gallery.rf-live").first.scroll_into_view_if_needed()
    SHOTS = SCREENSHOTS
    cell.screenshot(path=str(SHOTS / "gallery.png"))

    # rating and favourite from the gallery land in the store
    first = cell.locator(".rf-live .rf-cell").filter(has=page.locator("video")).first
    first.locator(".rf-rating button", has_text="5").click()
    status = cell.locator(".rf-live .rf-gallery-status")
    status.get_by_text("rated 5: saved").wait_for(timeout=10000)
    first.locator(".rf-favourite").click()
    status.get_by_text("favourite: saved").wait_for(timeout=10000)
    got = _kernel_eval(page, "_b = _sw.ranking().iloc[0]\nprint('BEST=' + str(_b['rating']) + ',' + str(_b['favourite']))",
                       "BEST=")
    assert got == "5,True", got

    index = page.evaluate(_RUN_CODE, "_sw.view()")
    view = page.locator(".jp-Notebook .jp-Cell").nth(index)
    view.locator("table").first.wait_for(timeout=30000)
    page.wait_for_timeout(1500)  # DataTables draws
    imgs = page.evaluate("""(i) => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[i];
        return [...c.querySelectorAll('img[alt=still]')].map(im => im.complete && im.naturalWidth > 0); }""", index)
    assert imgs and all(imgs), imgs
    assert view.locator("mjx-container, .MathJax").count() == 0 and "$0.42" in view.inner_text()
    view.screenshot(path=str(SHOTS / "table.png"))

    index = page.evaluate(_RUN_CODE, "_sw.compare()")
    cmp_cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cmp_cell.locator(".rf-compare video").nth(1).wait_for(timeout=20000)
    sound = page.evaluate("""async (i) => {
        const vs = document.querySelectorAll('.jp-Notebook .jp-Cell')[i].querySelectorAll('.rf-compare video');
        const [a, b] = vs;
        await a.play();
        await new Promise(r => setTimeout(r, 500));
        const r = {aPlaying: !a.paused, bPlaying: !b.paused, aMuted: a.muted, bMuted: b.muted};
        a.pause();
        return r;
    }""", index)
    assert sound == {"aPlaying": True, "bPlaying": True, "aMuted": False, "bMuted": True}, sound
    cmp_cell.screenshot(path=str(SHOTS / "sweep_compare.png"))


# (notebook, fewest clips it shows): each bundled notebook at the Lab root, some in a sub-folder, and
# with the store and artifacts outside the Lab root. Live widgets and their saved views both count.
NOTEBOOK_RUNS = [
    pytest.param("seed_sweep.ipynb", 2, id="root-seed_sweep"),
    pytest.param("compare_models.ipynb", 7, id="root-compare_models"),
    pytest.param("compare.ipynb", 2, id="root-compare"),
    pytest.param(f"{SUB}/quickstart.ipynb", 1, id="subfolder-quickstart"),
    pytest.param(f"{SUB}/seed_sweep.ipynb", 2, id="subfolder-seed_sweep"),
    pytest.param(f"{SUB}/compare_models.ipynb", 7, id="subfolder-compare_models"),
    pytest.param(f"{AWAY}/seed_sweep.ipynb", 2, id="outside-seed_sweep"),
    pytest.param(f"{AWAY}/compare.ipynb", 2, id="outside-compare"),
]


@pytest.mark.parametrize(("notebook", "clips"), NOTEBOOK_RUNS)
def test_every_clip_and_still_loads_in_a_bundled_notebook_run_in_jupyterlab(
        lab: Lab, fresh_page: Any, outside: Path, notebook: str, clips: int) -> None:
    page = fresh_page
    open_notebook(page, lab, notebook)
    run_all(page)
    media = check_media(page)
    assert_media(media, videos=clips)
    assert_no_math(page)
    srcs = [v["attr"] for v in media["videos"]]  # as the kernel wrote them
    if notebook.startswith(AWAY):
        # the Lab server cannot serve these files: the kernel sent them, and they were really made outside
        assert all(src.startswith("data:video/mp4") for src in srcs), srcs
        assert list((outside / "clips").rglob("*.mp4")), "the clips were not written outside the Lab root"
        _assert_each_clip_saved_once_per_output(page, lab.root / notebook, sorted((outside / "clips").rglob("*.mp4")))
    else:
        # the server's own route to the file, by reference (a sub-folder's notebook may use a store above it)
        assert all(src.startswith("/files/") for src in srcs), srcs
        assert all((lab.root / unquote(src.removeprefix("/files/"))).is_file() for src in srcs), srcs
    name = notebook.replace("/", "_").removesuffix(".ipynb")
    shots = screenshot_cells(page, name)
    assert shots


def _assert_each_clip_saved_once_per_output(page: Any, notebook: Path, clips: list[Path]) -> None:
    """Saved from JupyterLab, the notebook carries a clip sent as its bytes at most once in any one
    output (the saved view of a widget, the table, rf.show), and no output outweighs its clips."""
    import base64
    import json
    import re

    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30000)
    saved = json.loads(notebook.read_text(encoding="utf-8"))
    encoded = {clip.name: base64.b64encode(clip.read_bytes()).decode("ascii") for clip in clips}
    middles = {name: text[len(text) // 2:len(text) // 2 + 400] for name, text in encoded.items()}  # headers look alike
    seen = 0
    for i, cell in enumerate(saved["cells"]):
        for output in cell.get("outputs", []):
            text = json.dumps(output)
            counts = {name: text.count(middle) for name, middle in middles.items()}
            assert max(counts.values(), default=0) <= 1, f"cell {i}: a clip's bytes more than once: {counts}"
            carried = sum(len(encoded[name]) for name, n in counts.items() if n)
            seen += carried > 0
            if carried:  # the clips' bytes, then small things (stills, markup) beside the tables library
                rest = re.sub(r"<!--rf-itables-bundle-->.*?<!--/rf-itables-bundle-->", "", text, flags=re.S)
                assert len(rest) < carried * 1.25 + 100_000, (i, len(rest), carried)
    assert seen, "no output carried a clip's bytes"


def test_the_view_reads_text_left_numbers_right_and_a_model_by_its_family_name(lab: Lab, fresh_page: Any) -> None:
    """exp.view()'s table in JupyterLab (whose style right-aligns every output table cell): text columns
    read left, numbers right, and a model id shows by its family name on one line, whole on hover."""
    code = ("import pandas as pd\n"
            "from runflow_nb.views.tableview import TableView\n"
            "models = ['alibaba/happy-horse/reference-to-video', 'alibaba/happy-horse/image-to-video',\n"
            "          'alibaba/happy-horse/text-to-video']\n"
            "df = pd.DataFrame({'run_id': ['r%07d' % i for i in range(3)], 'model': models,\n"
            "                   'prompt': ['character1 trots', 'character1 rears up', 'character1 waves'],\n"
            "                   'seed': [1, 22, 333], 'status': ['succeeded', 'failed', 'succeeded'],\n"
            "                   'cost_usd': [0.42, 1.4, 12.6], 'wall_s': [7.9, 19.1, 15.5], 'backend': 'simulator'})\n"
            "TableView(df)")
    write_notebook(lab.root / "view_layout.ipynb", code)
    open_notebook(fresh_page, lab, "view_layout.ipynb")
    run_all(fresh_page)
    fresh_page.wait_for_selector(".jp-OutputArea table.dataTable tbody tr", timeout=60000)
    got = fresh_page.evaluate("""() => {
        const t = document.querySelector('.jp-OutputArea table.dataTable');
        const heads = [...t.querySelectorAll('thead th')];
        const row = t.querySelector('tbody tr');
        const out = {};
        heads.forEach((th, i) => { const td = row.children[i]; const span = td.querySelector('span[title]');
            out[th.textContent.trim()] = {head: getComputedStyle(th).textAlign, cell: getComputedStyle(td).textAlign,
                text: td.innerText.trim(), title: span ? span.title : null,
                lines: span ? span.getClientRects().length : null}; });
        const area = t.closest('.jp-OutputArea-output');
        return {cols: out, fits: area.scrollWidth <= area.clientWidth + 1};
    }""")
    cols = got["cols"]
    sides = {name: (c["head"], c["cell"]) for name, c in cols.items()}
    for name in ("model", "prompt", "status", "run"):
        assert sides[name] == ("left", "left"), sides
    for name in ("seed", "cost_usd", "wall_s"):
        assert sides[name] == ("right", "right"), sides
    model = cols["model"]
    assert model["text"] == "reference-to-video" and model["title"] == "alibaba/happy-horse/reference-to-video", model
    assert model["lines"] == 1, model  # never broken mid-word
    assert got["fits"], got
    fresh_page.locator(".jp-OutputArea table.dataTable").first.screenshot(path=str(SCREENSHOTS / "view_layout.png"))


def test_the_report_of_a_sweep_run_in_jupyterlab_plays_every_video(lab: Lab, fresh_page: Any, tmp_path: Path) -> None:
    """seed_sweep.ipynb was run in JupyterLab (above); its report, built from the repository root,
    reuses those clips and every one of them plays in the report's HTML, served over http."""
    if not (lab.root / "runflow_data").is_dir():
        open_notebook(fresh_page, lab, "seed_sweep.ipynb")
        run_all(fresh_page)
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "runflow_nb.cli", "report", str(lab.root / "seed_sweep.ipynb"),
                           "-p", "seeds", "[1, 2]", "--out", str(out)], cwd=ROOT, env=offline_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # The report uses the store the notebook used in JupyterLab (found from the notebook's folder, where
    # its kernel ran): the clips made there are reused and shown, nothing is submitted or paid again.
    assert "reused 2, submitted 0" in done.stderr, done.stderr[-2000:]
    assert "expired" not in done.stderr and "do not exist" not in done.stderr, done.stderr[-2000:]
    assert "without encryption" not in done.stderr  # the report's kernel talks over local sockets
    html_file = next(out.glob("*.html"))
    top = Path(os.path.commonpath([html_file.parent, lab.root]))
    with _serve(top) as base:
        fresh_page.goto(f"{base}/{html_file.relative_to(top).as_posix()}")
        fresh_page.wait_for_load_state("load")
        media = check_media(fresh_page)
    assert_media(media, videos=2)
    assert all(not v["attr"].startswith(("data:", "/", "http")) for v in media["videos"]), media  # by relative path
    fresh_page.screenshot(path=str(SCREENSHOTS / "report.png"), full_page=True)


@contextlib.contextmanager
def _serve(folder: Path) -> Iterator[str]:
    """``folder`` over http on loopback (a report's relative paths, as a web server would serve them)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_static_gallery_fits_the_page_and_scrolls_only_past_its_smallest_cells(page: Any, tmp_path: Path) -> None:
    """The report's gallery: six seeds fit a 1000 px page; twelve keep cells of at least 140 px and scroll."""
    import runflow_nb as rf
    from runflow_nb.samples import sample_images
    from runflow_nb.widgets.gallery import MIN_CELL_PX, gallery_html

    exp = rf.Experiment("fit", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a",
                        client=rf.Client(backend="simulator"))
    plan = rf.grid(prompt=["character1 trots", "character1 rears up"], images=[str(p) for p in sample_images(1)],
                   seed=range(12), duration=3, resolution="720p")
    exp.run(plan, budget_usd=0, progress=None)  # every cell explains its skip: no clips needed for the layout
    df = exp.table()
    report = page.context.new_page()  # the browser the lab tests drive
    try:
        report.set_viewport_size({"width": 1000, "height": 800})
        got = {}
        for seeds in (6, 12):
            report.set_content(f"<body style='margin:0'>{gallery_html(df[df['seed'] < seeds])}</body>")
            got[seeds] = report.evaluate("""() => { const g = document.querySelector('.rf-gallery');
                return {scroll: g.scrollWidth, client: g.clientWidth,
                        cells: [...g.querySelectorAll('thead th')].slice(1).map(t => t.getBoundingClientRect().width)}; }""")
    finally:
        report.close()
    assert got[6]["scroll"] <= got[6]["client"] + 1, got[6]
    assert got[12]["scroll"] > got[12]["client"], got[12]  # too many to fit: it scrolls, cells stay usable
    assert len(got[12]["cells"]) == 12 and min(got[12]["cells"]) >= MIN_CELL_PX - 1, got[12]


def test_an_s3_study_plays_every_clip_by_presigned_url_in_jupyterlab(lab: Lab, fresh_page: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Artifacts on S3 (moto's server on loopback): the gallery (live and saved), compare and rf.show
    play every clip from its presigned URL, fetched from the Lab page as video/*."""
    missing = [m for m in ("moto", "s3fs", "boto3") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"needs moto[server], s3fs and boto3 (missing: {', '.join(missing)})")
    import boto3
    from moto.server import ThreadedMotoServer

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)  # dummies: nothing may reach real AWS
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="lab-clips")
        setup = ("import os\n"
                 "os.environ.update(AWS_ACCESS_KEY_ID='testing', AWS_SECRET_ACCESS_KEY='testing',"
                 " AWS_DEFAULT_REGION='us-east-1')\n"
                 "import runflow_nb as rf\n"
                 "from runflow_nb.samples import sample_images\n"
                 "exp = rf.Experiment('s3-lab', store='s3_study.sqlite', artifacts='s3://lab-clips/study/',\n"
                 "    storage_options={'key': 'testing', 'secret': 'testing',\n"
                 f"                     'client_kwargs': {{'endpoint_url': {endpoint!r}, 'region_name': 'us-east-1'}}}})\n"
                 "df = exp.run(rf.grid(prompt='character1 waves', images=[str(p) for p in sample_images(1)],\n"
                 "                     seed=[1, 2], duration=3, resolution='720p'), progress=None)")
        write_notebook(lab.root / "s3_study.ipynb", setup, "exp.gallery(rows='prompt', cols='seed')",
                       "exp.compare(*df['run_id'])", "rf.show(exp.table().iloc[0].to_dict())")
        open_notebook(fresh_page, lab, "s3_study.ipynb")
        run_all(fresh_page)
        media = check_media(fresh_page)
        assert_media(media, videos=2 + 2 + 2 + 1)  # gallery (saved + live), compare (saved + live), rf.show
        assert all(v["attr"].startswith(f"{endpoint}/lab-clips/study/") and "X-Amz-Signature=" in v["attr"]
                   for v in media["videos"]), media
        assert_no_math(fresh_page)
        assert screenshot_cells(fresh_page, "s3_study")
    finally:
        server.stop()


@pytest.mark.timeout(600)  # 36 renders on a loaded machine
def test_a_three_model_study_from_a_sub_folder_plays_all_36_clips(lab: Lab, fresh_page: Any) -> None:
    """The issue's study, from a notebook two folders down: 2 prompts × 6 seeds × 3 models, shown as
    a gallery of models by seed; every one of the clips plays (live widget and saved view)."""
    code = ("import runflow_nb as rf\n"
            "from runflow_nb.samples import sample_images\n"
            "exp = rf.Experiment('three-models', store='study_runs/runs.sqlite')\n"
            "plan = rf.grid(model=['t2v', 'i2v', 'r2v'], prompt=['character1 trots', 'character1 rears up'],\n"
            "               references=[str(p) for p in sample_images()], seed=range(1, 7), duration=3,\n"
            "               resolution='720p')\n"
            "df = exp.run(plan, concurrency=4, progress=None)\n"
            "print('SUCCEEDED', int((df['status'] == 'succeeded').sum()))")
    write_notebook(lab.root / "deep" / "er" / "three_models.ipynb", code,
                   "exp.gallery(rows='model', cols='seed', run_key=plan.keys())")
    open_notebook(fresh_page, lab, "deep/er/three_models.ipynb")
    run_all(fresh_page, timeout_s=270)
    assert "SUCCEEDED 36" in fresh_page.locator(".jp-OutputArea").first.inner_text()
    media = check_media(fresh_page)
    assert_media(media, videos=72)  # 36 in the live widget, 36 in its saved view
    assert all(v["attr"].startswith("/files/deep/er/study_runs/") for v in media["videos"]), media["videos"][:2]
    assert_no_math(fresh_page)
    assert screenshot_cells(fresh_page, "three_models_subfolder")


_LIVE_TILES = """(i) => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[i];
    const live = c && c.querySelector('.rf-gallery.rf-live');
    return live ? {tiles: live.querySelectorAll('.rf-cell').length, videos: live.querySelectorAll('video').length}
                : null; }"""

_FETCH_ALL = """async (i) => {
    const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[i];
    const out = [];
    for (const v of c.querySelectorAll('.rf-gallery.rf-live video')) {
        const r = await fetch(v.currentSrc || v.src);
        out.push({src: v.getAttribute('src'), ok: r.ok, type: r.headers.get('content-type') || '',
                  poster: (v.poster || '').startsWith('data:image/jpeg')});
        if (r.body) { try { await r.body.cancel(); } catch (e) {} }
    }
    return out;
}"""


@pytest.mark.timeout(900)  # 150 tiles drawn on a loaded machine
def test_a_150_clip_live_gallery_draws_every_tile_without_a_widget_error(lab: Lab, fresh_page: Any) -> None:
    """A large study's live gallery (3 prompts × 50 seeds): every tile drawn, every clip's source
    fetches as video/*, no "model not found" anywhere, the live grid shown (not its saved view)."""
    page = fresh_page
    write_notebook(lab.root / "big" / "big_gallery.ipynb", "import time; print('READY')")
    open_notebook(page, lab, "big/big_gallery.ipynb")
    run_all(page)
    setup = (
        "import shutil\n"
        "from pathlib import Path\n"
        "import runflow_nb as rf\n"
        "big = rf.Experiment('big-gallery', store='runs.sqlite', artifacts='artifacts')\n"
        "first = big.run(rf.grid(model='t2v', prompt='character1 trots', seed=[0], duration=3,\n"
        "                        resolution='720p'), progress=None).iloc[0]\n"
        "prompts = ['character1 trots', 'character1 rears up', 'character1 grazes']\n"
        "clips = Path('clips'); clips.mkdir(exist_ok=True)\n"
        "for i in range(1, 150):\n"
        "    video, poster = clips / f'{i}.mp4', clips / f'{i}.jpg'\n"
        "    shutil.copyfile(first['video_path'], video); shutil.copyfile(first['poster_path'], poster)\n"
        "    big.store.insert_run({'experiment': 'big-gallery', 'run_key': f'big{i}', 'status': 'succeeded',\n"
        "        'model': first['model'], 'prompt': prompts[i % 3], 'seed': i // 3, 'duration': 3,\n"
        "        'resolution': '720p', 'backend': 'simulator', 'cost_usd': 0.42,\n"
        "        'video_path': str(video.resolve()), 'poster_path': str(poster.resolve())})\n"
        "print('RUNS=' + str(len(big.table())))")
    assert kernel_eval(page, setup, "RUNS=", timeout_ms=300000) == "150"
    t0 = time.monotonic()
    index = run_code(page, "big.gallery(rows='prompt', cols='seed')")
    page.wait_for_function(f"() => {{ const n = ({_LIVE_TILES})({index}); return n && n.videos >= 150; }}",
                           timeout=600000, polling=500)
    page.wait_for_function(_KERNEL_IDLE, timeout=120000)
    drawn_s = time.monotonic() - t0
    got = page.evaluate(_LIVE_TILES, index)
    assert got == {"tiles": 150, "videos": 150}, got  # 3 prompts × 50 seeds, every cell a clip
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    text = cell.locator(".jp-OutputArea").inner_text()
    for error in ("model not found", "can not be instantiated", "Error displaying widget", "IOPub"):
        assert error not in text, f"{error!r} in the gallery's output: {text[:500]}"
    saved_shown = page.evaluate("""(i) => [...document.querySelectorAll('.jp-Notebook .jp-Cell')[i]
        .querySelectorAll('.rf-saved')].some(e => e.getClientRects().length > 0)""", index)
    assert not saved_shown  # the live grid drew, so its saved view stays hidden
    rows = page.evaluate("""(i) => [...document.querySelectorAll('.jp-Notebook .jp-Cell')[i]
        .querySelectorAll('.rf-gallery.rf-live .rf-rating-row')].map(r => [r.getBoundingClientRect().height,
                                                                        r.scrollWidth - r.clientWidth])""", index)
    assert len(rows) == 150 and max(h for h, _ in rows) <= 30, rows[:3]  # 1–5, ☆ and ⋯ on one line ...
    assert max(cut for _, cut in rows) <= 0, rows[:3]  # ... none cut off in the narrowest tiles
    fetched = page.evaluate(_FETCH_ALL, index)
    bad = [f for f in fetched if not (f["ok"] and f["type"].startswith("video/") and f["poster"])]
    assert len(fetched) == 150 and not bad, bad[:3]
    assert len({f["src"] for f in fetched}) == 150  # each tile its own clip
    # the first and the last clip play where they show
    ends = page.evaluate("""async (i) => { const vs = [...document.querySelectorAll('.jp-Notebook .jp-Cell')[i]
        .querySelectorAll('.rf-gallery.rf-live video')];
        const out = [];
        for (const v of [vs[0], vs[vs.length - 1]]) {
            v.scrollIntoView({block: 'center'}); v.muted = true; await v.play();
            const end = Date.now() + 30000;
            while (Date.now() < end && (v.readyState < 2 || v.currentTime <= 0.1)) await new Promise(r => setTimeout(r, 100));
            v.pause(); out.push({ready: v.readyState, t: v.currentTime});
        }
        return out; }""", index)
    assert all(e["ready"] >= 2 and e["t"] > 0 for e in ends), ends
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "big_gallery.txt").write_text(f"150 clips drawn in {drawn_s:.1f} s\n")
    cell.screenshot(path=str(SCREENSHOTS / "big_gallery.png"))
