"""The studio in a real browser: JupyterLab on loopback, Playwright driving Debian's chromium.

One notebook, four views: a 4-clip synced compare (play, scrub, step, focus and a rating key that
lands in the store), the queue with two background sweeps and a stop from a queue row (checked on
the store), N seeds from the form (a strip of clips, checked on the store), and a sweep-end notice
in the page. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from _lab import CHROMIUM, LAUNCH_ARGS, SCREENSHOTS, jupyterlab, why_skip
from _lab import KERNEL_IDLE as _KERNEL_IDLE
from _lab import RUN_CODE as _RUN_CODE

pytestmark = pytest.mark.browser

NOTEBOOK = "studio.ipynb"
SETUP = """import runflow_nb as rf
exp = rf.Experiment('studio', store='studio.sqlite', artifacts='artifacts')
plan = rf.grid(prompt='character1 trots', images=[['ref.png']], seed=range(4), duration=3, resolution='720p')
exp.run(plan, progress=None)
ids = list(exp.table().run_id)
print('READY', len(ids))"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """JupyterLab serving a folder with one notebook (its first cell makes four clips offline)."""
    reason = why_skip()
    if reason:
        pytest.skip(reason)
    from PIL import Image

    root = tmp_path_factory.mktemp("studio-lab")
    Image.new("RGB", (800, 600), (40, 120, 200)).save(root / "ref.png")
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "setup", "metadata": {}, "outputs": [],
                     "source": SETUP}],
          "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    (root / NOTEBOOK).write_text(json.dumps(nb))
    with jupyterlab(root, tmp_path_factory.mktemp("studio-home")) as server:
        yield server.url


@pytest.fixture(scope="module")
def page(lab: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        context = browser.new_context(viewport={"width": 1300, "height": 1800})
        page = context.new_page()
        page.goto(f"{lab}/lab/tree/{NOTEBOOK}")
        page.wait_for_function(_KERNEL_IDLE, timeout=60000)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.locator(".jp-OutputArea-output", has_text="READY 4").wait_for(timeout=120000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def _run(page: Any, code: str) -> Any:
    """Run ``code`` in a new last cell; returns that cell's locator."""
    index = page.evaluate(_RUN_CODE, code)
    return page.locator(".jp-Notebook .jp-Cell").nth(index)


def _kernel(page: Any, code: str, marker: str, timeout_ms: int = 30000) -> str:
    """The text after ``marker`` that ``code`` prints."""
    out = _run(page, code).locator(".jp-OutputArea-output", has_text=marker).first
    out.wait_for(timeout=timeout_ms)
    return str(out.inner_text().split(marker, 1)[1].split()[0])


_SYNC_STATE = """() => {
  const root = [...document.querySelectorAll('.rf-live .rf-sync')].pop();
  const vids = [...root.querySelectorAll('video.rf-sync-video')];
  return {times: vids.map(v => v.currentTime), paused: vids.map(v => v.paused), ready: vids.map(v => v.readyState),
          muted: vids.map(v => v.muted), src: vids.map(v => v.currentSrc), controls: vids.map(v => v.controls),
          duration: vids.map(v => v.duration), focus: root.dataset.rfFocus, state: root.dataset.rfState};
}"""


def test_synced_compare_of_four_plays_scrubs_steps_and_rates_from_the_keyboard(page: Any) -> None:
    cell = _run(page, "view = exp.compare_many(ids)\nview")
    root = cell.locator(".rf-live .rf-sync").first
    root.wait_for(timeout=30000)
    page.wait_for_function(f"() => ({_SYNC_STATE})().ready.every(r => r >= 1)", timeout=30000)
    s = page.evaluate(_SYNC_STATE)
    assert len(s["times"]) == 4 and all("/files/" in src for src in s["src"]), s  # served by Jupyter, by reference
    assert not any(s["controls"]) and s["muted"].count(False) == 1, s  # one transport, one sound
    assert all(abs(d - 3.0) <= 0.1 for d in s["duration"]), s

    root.locator(".rf-sync-play").click()
    page.wait_for_function(f"() => {{ const s = ({_SYNC_STATE})(); return s.times.every(t => t > 0.5); }}",
                           timeout=30000)
    s = page.evaluate(_SYNC_STATE)
    assert not any(s["paused"]) and max(s["times"]) - min(s["times"]) < 0.3, s  # all four, in step
    root.locator(".rf-sync-play").click()
    page.wait_for_function(f"() => ({_SYNC_STATE})().paused.every(p => p)", timeout=10000)

    page.evaluate("""() => { const r = [...document.querySelectorAll('.rf-live .rf-sync')].pop();
        const s = r.querySelector('.rf-sync-scrub'); s.value = 500; s.dispatchEvent(new Event('input')); }""")
    page.wait_for_function(f"() => ({_SYNC_STATE})().times.every(t => Math.abs(t - 1.5) < 0.05)", timeout=10000)
    root.focus()
    page.keyboard.press("ArrowRight")  # a frame on
    page.wait_for_function(f"() => ({_SYNC_STATE})().times.every(t => Math.abs(t - 1.5 - 1 / 24) < 0.02)",
                           timeout=10000)
    page.keyboard.press("ArrowDown")  # focus (and sound) to clip B
    page.keyboard.press("ArrowDown")  # ... and C
    s = page.evaluate(_SYNC_STATE)
    assert s["focus"] == "2" and s["muted"] == [True, True, False, True], s
    page.keyboard.press("4")
    cell.get_by_text("rated 4").wait_for(timeout=10000)
    got = _kernel(page, "print('RATED=' + str([exp.store.get_run(i)['rating'] for i in view.run_ids]).replace(' ', ''))",
                  "RATED=")
    assert got == "[None,None,4,None]", got
    root.scroll_into_view_if_needed()
    cell.screenshot(path=str(SCREENSHOTS / "studio_synced_compare.png"))


def test_queue_stops_one_of_two_background_sweeps_from_a_row(page: Any) -> None:
    cell = _run(page, (
        "slow = rf.Client(simulator_latency=30)\n"
        "q1 = rf.Experiment('q1', store=exp.store, client=slow)\n"
        "q2 = rf.Experiment('q2', store=exp.store, client=slow)\n"
        "g = lambda s: rf.grid(prompt='character1 waits', images=[['ref.png']], seed=s, duration=3, resolution='720p')\n"
        "h1 = q1.run(g(range(20, 23)), concurrency=1, background=True, progress=None)\n"
        "h2 = q2.run(g(range(30, 32)), concurrency=1, background=True, progress=None)\n"
        "panel = rf.queue(exp.store, interval=0.5)\n"
        "panel"))
    queue = cell.locator(".rf-live.rf-queue").first
    queue.wait_for(timeout=30000)
    row = queue.locator(".rf-queue-row", has_text="q1").filter(has_text="waiting #").first
    row.wait_for(timeout=60000)
    queue.locator(".rf-queue-row", has_text="q2").nth(1).wait_for(timeout=60000)  # both sweeps in one panel
    row.locator(".rf-queue-stop").click()
    queue.locator(".rf-queue-message", has_text="stopped the background sweep of 'q1'").wait_for(timeout=10000)
    got = _kernel(page, ("h1.wait(120)\n"
                         "print('Q1=' + ','.join(sorted(r['status'] for r in q1.runs())) + ';' + str(h2.done) + ';'\n"
                         "      + str(sum(slow.find(r['client_ref']) is not None for r in q1.runs())))"), "Q1=")
    statuses, h2_done, on_server = got.split(";")
    assert statuses.split(",").count("planned") == 2 and h2_done == "False", got  # q2 goes on
    assert on_server == "1", got  # the service holds q1's first run only: the stopped sweep sent nothing more
    queue.scroll_into_view_if_needed()
    cell.screenshot(path=str(SCREENSHOTS / "studio_queue.png"))
    _kernel(page, "h2.cancel(); h2.wait(120); panel.stop(); print('STOPPED=' + str(panel.running))", "STOPPED=")


_QUEUE_GEOMETRY = """() => {
  const panel = [...document.querySelectorAll('.rf-live.rf-queue')].pop();
  const area = panel.querySelector('.rf-queue-rows');
  const rows = [...area.querySelectorAll('.rf-queue-row')].map(r => {
    const info = r.querySelector('.widget-html').getBoundingClientRect();
    const seed = r.querySelector('.rf-queue-seed'), id = r.querySelector('.rf-queue-id');
    const prompt = r.querySelector('.rf-queue-prompt');
    const inside = (el) => { const b = el.getBoundingClientRect(); return b.width > 0 && b.right <= info.right + 0.5; };
    return {seed: seed.textContent, seedShown: inside(seed) && seed.scrollWidth <= seed.clientWidth,
            idShown: inside(id), promptShown: inside(prompt), cut: prompt.scrollWidth > prompt.clientWidth, title: prompt.getAttribute('title'),
            widths: [prompt.scrollWidth, prompt.clientWidth, Math.round(info.width)],
            ellipsis: getComputedStyle(prompt).textOverflow};
  });
  return {height: area.getBoundingClientRect().height, scrolls: area.scrollHeight > area.clientHeight + 1,
          more: (panel.querySelector('.rf-queue-more') || {innerText: ''}).innerText, rows};
}"""

HISTORY = ("long = 'character1 leaps over a fallen log at dusk while the camera tracks left, the sun low and warm "
           "behind the trees, dust in the air'\n"
           "for i in range(40):\n"
           "    exp.store.insert_run({'run_id': f'hist{i:03d}', 'experiment': 'hist', 'run_key': f'h{i}',\n"
           "                          'status': 'succeeded', 'prompt': long, 'seed': 1000000 + i, 'cost_usd': 0.42,\n"
           "                          'backend': 'simulator', 'wall_s': 4.0})\n"
           "hist = rf.queue(exp.store, experiment='hist', interval=60)\n"
           "hist")


def test_queue_panel_of_a_long_history_is_a_bounded_scroll_with_each_seed_and_id_visible(page: Any) -> None:
    cell = _run(page, HISTORY)
    cell.locator(".rf-live.rf-queue .rf-queue-row").first.wait_for(timeout=30000)
    page.wait_for_function("() => [...document.querySelectorAll('.rf-live.rf-queue')].pop()"
                           ".querySelectorAll('.rf-queue-row').length === 20", timeout=30000)
    g = page.evaluate(_QUEUE_GEOMETRY)
    cell.screenshot(path=str(SCREENSHOTS / "studio_queue_history.png"))
    assert g["height"] <= 421 and g["scrolls"], g  # a scrolling area, not a page-long panel
    assert "20 more ended" in g["more"], g
    assert all(r["seedShown"] and r["idShown"] and r["promptShown"] for r in g["rows"]), g["rows"]  # the seed and the id never clipped
    seeds = {r["seed"] for r in g["rows"]}
    assert len(seeds) == 20 and seeds <= {f"seed {1000000 + i}" for i in range(40)}, g["rows"]
    assert all(r["cut"] and r["ellipsis"] == "ellipsis" and r["title"].startswith("character1 leaps")
               and r["title"].endswith("dust in the air") for r in g["rows"]), g["rows"]  # the full text on hover
    cell.screenshot(path=str(SCREENSHOTS / "studio_queue_history.png"))
    _kernel(page, "hist.stop(); print('HSTOP=' + str(hist.running))", "HSTOP=")


_STOP_STATE = """() => {
  const b = [...document.querySelectorAll('.rf-seeds-stop')].pop();
  return {disabled: b.disabled, warning: b.classList.contains('mod-warning')};
}"""

# Each seed caption of the last strip: its line boxes, rendered height and one line's height.
_CAPTIONS = """() => {
  const strip = [...document.querySelectorAll('.rf-seed-strip')].pop();
  return [...strip.querySelectorAll('.rf-seed-cell')].map(cell => {
    const el = cell.firstElementChild, st = getComputedStyle(el), range = document.createRange();
    range.selectNodeContents(el);
    const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
    const line = parseFloat(st.lineHeight) || 1.2 * parseFloat(st.fontSize);
    return {lines: tops.size, height: el.getBoundingClientRect().height, line, width: el.clientWidth,
            full: el.scrollWidth, text: el.textContent, title: el.getAttribute('title')};
  });
}"""


def test_form_sends_n_seeds_and_shows_the_strip(page: Any) -> None:
    cell = _run(page, "form = rf.GenerateForm(experiment=exp)\nform")
    form = cell.locator(".rf-generate-form").first
    form.wait_for(timeout=30000)
    form.locator(".rf-input-prompt textarea").fill("character1 jumps a fence")
    form.locator(".rf-input-resolution button", has_text="720p").click()
    form.locator(".rf-image-path input").fill("ref.png")
    form.locator(".rf-image-add").click()
    form.locator(".rf-thumbnail", has_text="ref.png").wait_for(timeout=10000)
    seeds = form.locator(".rf-seeds")
    seeds.locator(".rf-seeds-n input").fill("3")
    seeds.locator(".rf-seeds-n input").press("Enter")
    seeds.locator(".rf-seeds-start input").fill("2147483640")  # ten-digit seeds: captions that wrapped in a 220 px cell
    seeds.locator(".rf-seeds-start input").press("Enter")
    seeds.locator(".rf-seeds-estimate", has_text="seeds 2147483640…2147483642").wait_for(timeout=10000)
    assert page.evaluate(_STOP_STATE) == {"disabled": True, "warning": False}  # nothing to stop yet
    seeds.locator(".rf-seeds-run").click()
    page.wait_for_function("() => document.querySelectorAll('.rf-seeds-strip video').length === 3", timeout=120000)
    got = _kernel(page, "print('SEEDS=' + ','.join(str(r['seed']) + r['status'] for r in exp.runs() "
                        "if r['prompt'] == 'character1 jumps a fence'))", "SEEDS=")
    assert sorted(got.split(",")) == ["2147483640succeeded", "2147483641succeeded", "2147483642succeeded"], got
    page.wait_for_function(f"() => {{ const s = ({_STOP_STATE})(); return s.disabled && !s.warning; }}",
                           timeout=30000)  # the sweep ended: Stop is disabled and plain, not orange
    captions = page.evaluate(_CAPTIONS)
    assert len(captions) == 3 and all(c["lines"] == 1 and c["height"] < 1.5 * c["line"] for c in captions), captions
    assert all(c["full"] > c["width"] for c in captions), captions  # cut with an ellipsis, not wrapped
    assert [c["title"] for c in captions] == [c["text"] for c in captions], captions  # the full text on hover
    seeds.scroll_into_view_if_needed()
    cell.screenshot(path=str(SCREENSHOTS / "studio_seeds.png"))


_STOP_FITS = """() => {
  const b = [...document.querySelectorAll('.rf-progress .rf-progress-stop')].pop();
  return {client: b.clientWidth, scroll: b.scrollWidth, text: b.innerText.trim(), disabled: b.disabled};
}"""


def test_a_background_sweep_cell_keeps_its_stop_label_whole_and_shows_how_the_sweep_ended(page: Any) -> None:
    cell = _run(page, (
        "bg = rf.Experiment('bg', store=exp.store, client=rf.Client(simulator_latency=2))\n"
        "cut = rf.grid(prompt='character1 bows', images=[['ref.png']], seed=range(40, 44), duration=3,\n"
        "              resolution='720p')\n"
        "h = bg.run(cut, concurrency=2, background=True, budget_usd=0.9); h"))
    cell.locator(".rf-progress .rf-progress-stop").first.wait_for(timeout=30000)
    running = cell.locator(".jp-OutputArea-output", has_text="<SweepHandle 'bg' running").first
    running.wait_for(timeout=30000)
    # the budget guard's long line beside the bar must not squeeze the button to "■ …"
    cell.locator(".rf-progress", has_text="budget guard").first.wait_for(timeout=60000)
    fits = page.evaluate(_STOP_FITS)
    assert fits["scroll"] <= fits["client"] and fits["text"] == "Stop", fits
    ended = cell.locator(".jp-OutputArea-output", has_text="<SweepHandle 'bg' budget cut: ").first
    ended.wait_for(timeout=120000)  # the handle's line follows the sweep to its end
    text = ended.inner_text()
    assert "skipped_budget 2" in text and "succeeded 2" in text and "simulated spend $0.84 (nothing charged)" in text, text
    assert cell.locator(".jp-OutputArea-output", has_text="<SweepHandle 'bg' running").count() == 0
    fits = page.evaluate(_STOP_FITS)
    assert fits["disabled"] and fits["scroll"] <= fits["client"] and fits["text"] == "Stop", fits
    cell.screenshot(path=str(SCREENSHOTS / "studio_background_cell.png"))


def test_a_background_sweep_end_shows_a_notice_in_the_page(page: Any) -> None:
    _run(page, "from runflow_nb.studio import notify\nnotify.install(min_s=0)\n"
               "h = exp.run(rf.grid(prompt='character1 naps', images=[['ref.png']], seed=[90], duration=3,\n"
               "                    resolution='720p'), background=True, progress=None)")
    page.locator(".jp-OutputArea-output .rf-sweep-end", has_text="background sweep of 'studio' ended").wait_for(
        timeout=120000)
    toast = page.locator(".Toastify__toast", has_text="background sweep of 'studio' ended")
    toast.first.wait_for(timeout=10000)  # JupyterLab's own notification (the app is exposed here)
    page.screenshot(path=str(SCREENSHOTS / "studio_sweep_end.png"))
    assert page.locator(".rf-sweep-end[data-rf-notice='shown']").count() == 1
    cell = _run(page, "1 + 1")  # the next cell says it, too
    cell.locator(".jp-OutputArea-output", has_text="runflow_nb: background sweep of 'studio' ended").wait_for(
        timeout=30000)

    # Saved and reloaded (as a reopened notebook is): the saved output runs its script again, and the
    # notice must not pop up a second time; the line stays in the output.
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30000)
    page.reload()
    page.wait_for_function(_KERNEL_IDLE, timeout=120000)
    page.locator(".rf-sweep-end[data-rf-notice='skipped']", has_text="background sweep of 'studio' ended").wait_for(
        timeout=60000)
    assert page.locator(".Toastify__toast", has_text="background sweep of").count() == 0
    page.screenshot(path=str(SCREENSHOTS / "studio_sweep_end_after_reload.png"))


def test_the_notice_pins_a_toast_where_jupyterlab_is_not_exposed(page: Any) -> None:
    from runflow_nb.studio.notify import notice_html

    other = page.context.new_page()
    try:
        other.set_content(f"<html><body>{notice_html('sweep of <b>x</b> ended', 'warning')}</body></html>")
        toast = other.locator("#rf-sweep-toasts .rf-sweep-toast-warning")
        toast.wait_for(timeout=5000)
        assert "sweep of <b>x</b> ended" in toast.inner_text()  # as text, not markup
        toast.locator("button").click()
        assert other.locator(".rf-sweep-toast").count() == 0
    finally:
        other.close()
