"""The form in a real browser: JupyterLab on loopback, Playwright driving Debian's chromium.

Opens ``notebooks/quickstart.ipynb`` (a minimal form notebook if it has no GenerateForm cell yet),
runs it, fills the form, generates against the in-kernel simulator and checks that the ``<video>``
plays with the requested duration; then shows that an invalid image is explained beside the field
and sends nothing, and that the compare view keeps its two videos in step. Screenshots go to
``test-artifacts/browser/``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "test-artifacts" / "browser"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
DURATION = 4  # requested through the form's slider; the quickstart pre-fills 3
XSS = "<script>alert(1)</script>"
DIALOGS: list[str] = []


def _why_skip() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing: apt-get install -y chromium (never `playwright install`)"
    for module, package in (("jupyterlab", "jupyterlab"), ("playwright", "playwright")):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed: pip install {package}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fallback_notebook() -> dict[str, Any]:
    source = ("import runflow_nb as rf\n"
              "form = rf.GenerateForm()\n"
              "form")
    return {"cells": [{"cell_type": "code", "execution_count": None, "id": "form", "metadata": {},
                       "outputs": [], "source": source}],
            "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                        "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def _pick_notebook(root: Path) -> str:
    """quickstart.ipynb when it has a GenerateForm cell, else a minimal notebook written here."""
    quickstart = root / "quickstart.ipynb"
    if quickstart.exists():
        nb = json.loads(quickstart.read_text())
        if any(c["cell_type"] == "code" and "GenerateForm" in "".join(c["source"]) for c in nb["cells"]):
            return quickstart.name
    (root / "form_check.ipynb").write_text(json.dumps(_fallback_notebook()))
    return "form_check.ipynb"


@dataclass
class Lab:
    url: str
    root: Path
    notebook: str
    log: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    reason = _why_skip()
    if reason:
        pytest.skip(reason)
    from PIL import Image

    root = tmp_path_factory.mktemp("lab")
    if (ROOT / "notebooks").is_dir():
        shutil.copytree(ROOT / "notebooks", root, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "runflow_data", "artifacts"))
    Image.new("RGB", (800, 600), (40, 120, 200)).save(root / "browser-ref.png")
    Image.new("RGB", (200, 200), (200, 40, 40)).save(root / "small.png")
    notebook = _pick_notebook(root)
    port = _free_port()
    home = tmp_path_factory.mktemp("jupyter-home")
    env = {k: v for k, v in os.environ.items() if k not in ("RUNFLOW_API_KEY", "RUNFLOW_BASE_URL")}
    env.update(RUNFLOW_SIMULATOR_LATENCY="0.2", JUPYTER_CONFIG_DIR=str(home / "config"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_PLATFORM_DIRS="1", PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    env["JUPYTER_PATH"] = os.pathsep.join([str(Path(sys.prefix) / "share" / "jupyter"), env.get("JUPYTER_PATH", "")])
    # No "would you like news?" toast over the form in screenshots.
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    env["JUPYTERLAB_SETTINGS_DIR"] = str(home / "settings")
    log = home / "lab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--allow-root", "--no-browser", "--ip", "127.0.0.1",
           f"--port={port}", "--IdentityProvider.token=", "--ServerApp.password=",
           "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={root}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           f"--LabApp.workspaces_dir={home / 'workspaces'}"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/status", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Lab(url=url, root=root, notebook=notebook, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def page(lab: Lab) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        context = browser.new_context(viewport={"width": 1300, "height": 2000})
        page = context.new_page()
        DIALOGS.clear()
        page.on("dialog", lambda d: (DIALOGS.append(d.message), d.dismiss()))
        try:
            yield page
        finally:
            context.close()
            browser.close()


# -- helpers running in the page --------------------------------------------------------------------

_KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const s = w && w.sessionContext;
  return !!(s && s.session && s.session.kernel && s.kernelDisplayStatus === 'idle');
}"""

_RUN_CODE = """async (code) => {
  const app = window.jupyterapp;
  const nb = app.shell.currentWidget.content;
  const n = nb.model.cells.length;
  nb.model.sharedModel.insertCell(n, {cell_type: 'code', source: code});
  nb.activeCellIndex = n;
  await app.commands.execute('notebook:run-cell');
  return n;
}"""


def _kernel_eval(page: Any, code: str, marker: str, timeout_ms: int = 20000) -> str:
    """Run ``code`` in a new cell at the end; return the text after ``marker`` in its output."""
    index = page.evaluate(_RUN_CODE, code)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    out = cell.locator(".jp-OutputArea-output", has_text=marker).first
    out.wait_for(timeout=timeout_ms)
    text = out.inner_text()
    return text.split(marker, 1)[1].split()[0]


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
    t0 = time.monotonic()
    page.goto(f"{lab.url}/lab/tree/{lab.notebook}")
    page.wait_for_function(_KERNEL_IDLE, timeout=30000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
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
    assert time.monotonic() - t0 < 60


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
    page.evaluate(_RUN_CODE, code)
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
    view.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "compare.png"))





def test_sweep_gallery_view_and_compare_show_stills_and_money_without_mathjax(lab: Lab, page: Any) -> None:
    if "/lab/tree/" not in page.url:
        page.goto(f"{lab.url}/lab/tree/{lab.notebook}")
        page.wait_for_function(_KERNEL_IDLE, timeout=30000)
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
    assert all(p["ok"] and p["w"] > 0 for p in posters), posters  # every still decodes in the page
    text = cell.inner_text()
    assert "$0.42" in text and "$" in text  # the estimate and the captions show dollars as text
    assert "skipped: over the budget" in text  # a $5.04 plan against a $4 budget: the cut is explained
    maths = cell.locator("mjx-container, .MathJax, .MathJax_Preview, .mjx-chtml").count()
    assert maths == 0, f"{maths} MathJax element(s) in the sweep's output"
    heights = page.evaluate("""() => [...document.querySelectorAll('.rf-gallery.rf-live video')].map(
        v => v.getBoundingClientRect().height)""")
    assert max(heights) <= 370, heights  # 9:16 clips stay a sensible height
    fit = page.evaluate("""() => [...document.querySelectorAll('.rf-gallery.rf-live .widget-gridbox')].map(
        g => [g.scrollWidth, g.clientWidth])""")
    assert fit and all(sw <= cw + 1 for sw, cw in fit), fit  # the grid fits the panel: no sideways scrolling
    cell.locator(".rf-gallery.rf-live").first.scroll_into_view_if_needed()
    SHOTS = ROOT / "test-artifacts"
    cell.screenshot(path=str(SHOTS / "gallery.png"))

    # rating and favourite from the gallery land in the store
    first = cell.locator(".rf-live .rf-cell").filter(has=page.locator("video")).first
    first.locator(".rf-rating button", has_text="5").click()
    first.locator(".rf-favourite").click()
    first.get_by_text("saved").wait_for(timeout=10000)
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
    cmp_cell.screenshot(path=str(SHOTS / "compare.png"))


def test_seed_sweep_in_jupyterlab_then_report_from_the_repository_root_plays_every_video(
        lab: Lab, page: Any, tmp_path: Path) -> None:
    page = page.context.new_page()  # a fresh tab: the other notebook's page may ask before it unloads
    page.goto(f"{lab.url}/lab/tree/seed_sweep.ipynb")
    page.wait_for_function(_KERNEL_IDLE, timeout=30000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.locator(".rf-gallery.rf-live").first.wait_for(timeout=120000)
    page.wait_for_function(_KERNEL_IDLE, timeout=120000)
    out = tmp_path / "report"
    env = {k: v for k, v in os.environ.items() if k not in ("RUNFLOW_API_KEY", "RUNFLOW_BASE_URL")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-m", "runflow_nb.cli", "report", str(lab.root / "seed_sweep.ipynb"),
                           "-p", "seeds", "[1, 2]", "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # The report uses the store the notebook used in JupyterLab (found from the notebook's folder, where
    # its kernel ran): the clips made there are reused and shown, nothing is submitted or paid again.
    assert "reused 2, submitted 0" in done.stderr, done.stderr[-2000:]
    assert "expired" not in done.stderr and "do not exist" not in done.stderr, done.stderr[-2000:]
    assert "without encryption" not in done.stderr  # the report's kernel talks over local sockets
    html_file = next(out.glob("*.html"))
    page.goto(html_file.as_uri())
    page.wait_for_load_state("load")
    states = page.evaluate("""async () => {
        const vids = [...document.querySelectorAll('video')];
        for (const v of vids) { v.preload = 'auto'; v.load(); }
        const deadline = Date.now() + 20000;
        while (Date.now() < deadline && vids.some(v => v.readyState < 2)) await new Promise(r => setTimeout(r, 200));
        return vids.map(v => ({src: v.currentSrc.slice(-40), ready: v.readyState}));
    }""")
    assert states and all(s["ready"] >= 2 for s in states), states
    page.screenshot(path=str(ROOT / "test-artifacts" / "report.png"), full_page=False)
    page.close()


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
