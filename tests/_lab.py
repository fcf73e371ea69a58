"""Shared helpers for the live-Lab tests: a real JupyterLab on loopback, Playwright driving Debian's
chromium, and in-page checks that every clip and still on a page really loads.

One JupyterLab server serves a whole test session (see ``lab`` in tests/test_browser.py); each
check waits on state (kernel idle, every cell executed, readyState), never on a fixed delay.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "test-artifacts" / "browser"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
LAB_START_S = 120  # a loaded CI machine takes its time to start JupyterLab


def why_skip() -> str | None:
    """Why the live-Lab tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing: apt-get install -y chromium (never `playwright install`)"
    for module, package in (("jupyterlab", "jupyterlab"), ("playwright", "playwright")):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed: pip install {package}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def offline_env(**extra: str) -> dict[str, str]:
    """This environment without Runflow credentials or the developer's stores, loading this checkout."""
    drop = ("RUNFLOW_API_KEY", "RUNFLOW_BASE_URL", "RUNFLOW_BACKEND", "RUNFLOW_STORE", "RUNFLOW_ARTIFACTS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


@dataclass
class Lab:
    url: str
    root: Path
    log: Path
    proc: subprocess.Popen[bytes] = field(repr=False)


@contextlib.contextmanager
def jupyterlab(root: Path, home: Path, *, env: Mapping[str, str] | None = None) -> Iterator[Lab]:
    """A JupyterLab server with ``root`` as its root, no token, the app exposed to page scripts."""
    port = free_port()
    full = offline_env(RUNFLOW_SIMULATOR_LATENCY="0.2", JUPYTER_CONFIG_DIR=str(home / "config"),
                       JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_DATA_DIR=str(home / "data"),
                       JUPYTER_PLATFORM_DIRS="1", JUPYTERLAB_SETTINGS_DIR=str(home / "settings"))
    full["JUPYTER_PATH"] = os.pathsep.join([str(Path(sys.prefix) / "share" / "jupyter"), os.environ.get("JUPYTER_PATH", "")])
    full.update(env or {})
    # No "would you like news?" toast over the outputs in screenshots.
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    # Every cell in the page (no windowing): the checks look at every output, not only those in view.
    notebook_settings = home / "settings" / "@jupyterlab" / "notebook-extension"
    notebook_settings.mkdir(parents=True, exist_ok=True)
    (notebook_settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    log = home / "lab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--allow-root", "--no-browser", "--ip", "127.0.0.1",
           f"--port={port}", "--IdentityProvider.token=", "--ServerApp.password=",
           "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={root}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           f"--LabApp.workspaces_dir={home / 'workspaces'}"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=full, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + LAB_START_S
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/status", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start in {LAB_START_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield Lab(url=url, root=root, log=log, proc=proc)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def write_notebook(path: Path, *cells: str, before: Path | None = None) -> Path:
    """A notebook of code ``cells``; with ``before``, those cells go in front of that notebook's cells."""
    nb: dict[str, Any]
    if before is not None:
        nb = json.loads(before.read_text())
    else:
        nb = {"cells": [], "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                                       "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    new = [{"cell_type": "code", "execution_count": None, "id": f"lab-test-{i}", "metadata": {}, "outputs": [],
            "source": src} for i, src in enumerate(cells)]
    nb["cells"] = new + nb["cells"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))
    return path


# -- in the page -----------------------------------------------------------------------------------

KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const s = w && w.sessionContext;
  return !!(s && s.session && s.session.kernel && s.kernelDisplayStatus === 'idle');
}"""

RUN_CODE = """async (code) => {
  const app = window.jupyterapp;
  const nb = app.shell.currentWidget.content;
  const n = nb.model.cells.length;
  nb.model.sharedModel.insertCell(n, {cell_type: 'code', source: code});
  nb.activeCellIndex = n;
  await app.commands.execute('notebook:run-cell');
  return n;
}"""

# Every code cell has run (an execution count, no "[*]"), the kernel is idle; errors are reported.
_ALL_RAN = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  if (!w || !w.content || !w.sessionContext) return null;
  const cells = w.content.widgets.filter(c => c.model.type === 'code');
  const errors = [];
  cells.forEach((c, i) => { for (const o of c.model.outputs.toJSON())
      if (o.output_type === 'error') errors.push(`cell ${i}: ${o.ename}: ${o.evalue}`); });
  if (errors.length) return {errors};
  const ran = cells.every(c => c.model.executionCount !== null && c.model.executionState !== 'running'
      && !(c.node.querySelector('.jp-InputPrompt') || {innerText: ''}).innerText.includes('*'));
  return ran && w.sessionContext.kernelDisplayStatus === 'idle' ? {errors: []} : null;
}"""


def open_notebook(page: Any, lab: Lab, path: str) -> None:
    """Open ``path`` (relative to the Lab root) alone (``?reset``: no other tabs restored) and wait
    for its kernel."""
    page.goto(f"{lab.url}/lab/tree/{path}?reset")
    page.wait_for_function("""(path) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
        return !!(w && w.context && w.context.path === path); }""", arg=path, timeout=LAB_START_S * 1000)
    page.wait_for_function(KERNEL_IDLE, timeout=LAB_START_S * 1000)


_WHERE = """() => { const w = window.jupyterapp.shell.currentWidget;
  if (!w || !w.content || !w.sessionContext) return {widget: w ? w.constructor.name : null};
  return {path: w.context.path, kernel: w.sessionContext.kernelDisplayStatus,
          dialogs: [...document.querySelectorAll('.jp-Dialog')].map(d => d.innerText.slice(0, 200)),
          cells: w.content.widgets.filter(c => c.model.type === 'code').map(
              c => [c.model.executionCount, c.model.executionState])}; }"""


def run_all(page: Any, *, timeout_s: float = 240) -> None:
    """Run every cell and wait until each has run; a cell that raised fails the test with its error."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    started = """() => window.jupyterapp.shell.currentWidget.content.widgets.some(c => c.model.type === 'code'
        && (c.model.executionCount !== null || c.model.executionState === 'running'
            || (c.node.querySelector('.jp-InputPrompt') || {innerText: ''}).innerText.includes('*')))"""
    for _ in range(5):  # a notebook opened a moment ago may not take the command yet: ask again
        page.evaluate("""async () => { const app = window.jupyterapp; const w = app.shell.currentWidget;
            app.shell.activateById(w.id); await w.context.ready; await w.sessionContext.ready;
            await app.commands.execute('notebook:run-all-cells'); }""")
        with contextlib.suppress(PlaywrightTimeout):
            page.wait_for_function(started, timeout=15000, polling=250)
            break
    try:
        got = page.wait_for_function(_ALL_RAN, timeout=timeout_s * 1000, polling=250).json_value()
    except PlaywrightTimeout:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "run_all_timeout.png"))
        raise AssertionError(f"Run All did not finish in {timeout_s} s: {page.evaluate(_WHERE)}") from None
    if got["errors"]:
        raise AssertionError("a cell raised: " + "; ".join(got["errors"]))


def run_code(page: Any, code: str) -> int:
    """Append a cell with ``code``, run it, return its index (the caller waits for its output)."""
    return int(page.evaluate(RUN_CODE, code))


def kernel_eval(page: Any, code: str, marker: str, timeout_ms: int = 60000) -> str:
    """Run ``code`` in a new cell at the end; return the text after ``marker`` in its output."""
    index = run_code(page, code)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    out = cell.locator(".jp-OutputArea-output", has_text=marker).first
    out.wait_for(timeout=timeout_ms)
    text = out.inner_text()
    return str(text.split(marker, 1)[1].split()[0])


# For every <video> in scope: its source fetched from the page (content type), then a muted play()
# until readyState >= 2 and time advances; its poster fetched too. Every <img> in an output as well.
_MEDIA = """async ([scope, waitMs]) => {
  const panel = window.jupyterapp ? window.jupyterapp.shell.currentWidget.node : document;
  const cells = panel.querySelectorAll('.jp-Notebook .jp-Cell');
  const root = typeof scope === 'number' ? cells[scope] : scope ? [...panel.querySelectorAll(scope)].pop() : panel;
  const head = async (url) => {
    try {
      const r = await fetch(url);
      const type = r.headers.get('content-type') || '';
      const ok = r.ok;
      if (r.body) { try { await r.body.cancel(); } catch (e) {} }
      return {ok, status: r.status, type};
    } catch (e) { return {ok: false, status: 0, type: '', error: String(e)}; }
  };
  const short = (u) => u.startsWith('data:') ? u.slice(0, 30) + '…(' + u.length + ' chars)' : u;
  const videos = [];
  for (const v of root.querySelectorAll('video')) {
    const src = v.currentSrc || v.src || '';
    const rec = {el: v, src: short(src), attr: short(v.getAttribute('src') || ''), hidden: v.getClientRects().length === 0,
                 cell: [...cells].indexOf(v.closest('.jp-Cell'))};
    rec.fetch = src ? await head(src) : {ok: false, status: 0, type: ''};
    rec.poster = v.poster ? short(v.poster) : null;
    rec.posterFetch = v.poster ? await head(v.poster) : null;
    if (!rec.hidden) v.scrollIntoView({block: 'center'});
    v.muted = true;
    try { await v.play(); rec.played = true; } catch (e) { rec.played = false; rec.playError = String(e); }
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline && (v.readyState < 2 || v.currentTime <= 0.15)) await new Promise(r => setTimeout(r, 100));
    v.pause();
    rec.ready = v.readyState; rec.t = v.currentTime; rec.error = v.error ? v.error.code : null;
    rec.width = v.videoWidth;
    v.muted = false;
    videos.push(rec);
  }
  const images = [];
  for (const im of root.querySelectorAll('.jp-OutputArea img, .jp-OutputArea-output img, figure img, td img')) {
    if (!im.src) continue;
    const f = await head(im.src);
    images.push({src: short(im.src), fetch: f, alt: im.alt, loaded: im.complete && im.naturalWidth > 0});
  }
  return {videos: videos.map(({el, ...r}) => r), images};
}"""


def check_media(page: Any, scope: str | int | None = None, *, wait_ms: int = 30000) -> dict[str, Any]:
    """Every ``<video>`` in ``scope`` (the current notebook by default; a CSS selector, whose last match
    counts, or a cell index) fetched, played and measured; every output image fetched. Returns the
    records; :func:`assert_media` judges them."""
    page.mouse.move(1, 1)  # off the clips: a hover preview would stop a clip the check plays
    return dict(page.evaluate(_MEDIA, [scope, wait_ms]))


def assert_media(media: Mapping[str, Any], *, videos: int, stills: bool = True) -> None:
    """At least ``videos`` clips, and EVERY one fetched as video/*, reached readyState >= 2 and
    advanced when played; every poster and output image fetched as image/*."""
    found = media["videos"]
    assert len(found) >= videos, f"expected at least {videos} <video> elements, found {len(found)}: {found}"
    bad = [v for v in found if not (v["fetch"]["ok"] and v["fetch"]["type"].startswith("video/")
                                    and v["ready"] >= 2 and v["t"] > 0 and v["error"] is None)]
    assert not bad, f"{len(bad)} of {len(found)} clips do not play: {bad}"
    if stills:
        no_poster = [v for v in found if v["poster"] is None]
        assert not no_poster, f"clips without a still: {no_poster}"
    bad_posters = [v for v in found if v["posterFetch"] is not None
                   and not (v["posterFetch"]["ok"] and v["posterFetch"]["type"].startswith("image/"))]
    assert not bad_posters, f"stills that are not images: {bad_posters}"
    bad_images = [i for i in media["images"] if not (i["fetch"]["ok"] and i["fetch"]["type"].startswith("image/")
                                                     and i["loaded"])]
    assert not bad_images, f"output images that do not load: {bad_images}"


MATH = "mjx-container, .MathJax, .MathJax_Preview, .mjx-chtml, .MathJax_SVG"


def assert_no_math(page: Any) -> None:
    """Nothing in the notebook's outputs was typeset as math (money like $0.42 stays text)."""
    found = page.evaluate(f"""() => [...window.jupyterapp.shell.currentWidget.node.querySelectorAll('.jp-OutputArea')].flatMap(
        o => [...o.querySelectorAll({json.dumps(MATH)})].map(m => m.closest('.jp-OutputArea').innerText.slice(0, 120)))""")
    assert not found, f"MathJax typeset outputs: {found}"


def screenshot_cells(page: Any, name: str, *, selector: str = "video, .jp-OutputArea img") -> list[Path]:
    """A screenshot of every cell whose outputs hold ``selector``: test-artifacts/browser/NAME-cellN.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob(f"{name}-cell*.png"):  # an earlier run's cells
        old.unlink()
    indexes = page.evaluate(f"""() => [...window.jupyterapp.shell.currentWidget.node.querySelectorAll(
        '.jp-Notebook .jp-Cell')].map((c, i) =>
        c.querySelector('.jp-OutputArea') && [...c.querySelectorAll({json.dumps(selector)})].some(
            e => e.getClientRects().length > 0) ? i : -1).filter(i => i >= 0)""")
    # the checks scrolled grids sideways to reach their clips: back to where a reader starts
    page.evaluate("""() => window.jupyterapp.shell.currentWidget.node.querySelectorAll('.jp-OutputArea *').forEach(
        e => { if (e.scrollLeft) e.scrollLeft = 0; })""")
    shots = []
    for i in indexes:
        cell = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell").nth(i)
        path = SCREENSHOTS / f"{name}-cell{i}.png"
        cell.locator(".jp-OutputArea").first.screenshot(path=str(path))
        shots.append(path)
    return shots
