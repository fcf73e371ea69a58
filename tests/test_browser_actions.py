"""The follow-up buttons in a real browser: JupyterLab on loopback, Playwright driving Debian's chromium.

A one-clip sweep in a live kernel, its gallery, and the buttons under the clip clicked for real:
re-run with another seed (a new run naming its parent, once), copy as code (the snippet shows),
open in the form (a pre-filled GenerateForm draws), upscale (1080p), and the detail view with its
own button row. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

from typing import Any

import _lab
import pytest
import test_browser as tb

pytestmark = pytest.mark.browser

outside, lab, browser, fresh_page = tb.outside, tb.lab, tb.browser, tb.fresh_page  # the browser tests' fixtures


def test_the_gallery_buttons_rerun_copy_open_and_upscale_through_the_library(lab: _lab.Lab, fresh_page: Any) -> None:
    page = fresh_page
    _lab.open_notebook(page, lab, "quickstart.ipynb")
    code = (
        "import runflow_nb as _rf\n"
        "_ax = _rf.Experiment('browser-actions', store='actions.sqlite', artifacts='artifacts')\n"
        "_ax.run(_rf.grid(model='t2v', prompt='a horse on a beach', seed=[3], duration=3, resolution='720p'),\n"
        "        progress=None)\n"
        "_ax.gallery(rows='prompt', cols='seed')"
    )
    index = _lab.run_code(page, code)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    more = cell.locator(".rf-gallery.rf-live .rf-more").first
    more.wait_for(timeout=120000)
    page.wait_for_function(_lab.KERNEL_IDLE, timeout=60000)
    more.click()  # the clip's ⋯: its button row is built on first use
    actions = cell.locator(".rf-gallery.rf-live .rf-actions").first
    actions.wait_for(timeout=30000)
    fit = page.evaluate("""() => [...document.querySelectorAll('.rf-gallery.rf-live .rf-grid')].map(
        g => [g.scrollWidth, g.clientWidth])""")
    assert fit and all(sw <= cw + 1 for sw, cw in fit), fit  # the buttons wrap inside the cell

    seed = actions.locator(".rf-action-seed input")
    seed.fill("41")
    seed.press("Enter")
    actions.locator(".rf-action-rerun").click()
    actions.locator(".rf-action-status", has_text="succeeded").wait_for(timeout=120000)
    got = _lab.kernel_eval(page, "_k = [r for r in _ax.runs() if r['parent_run_id']]\n"
                                "print('KIDS=' + ','.join(f\"{r['seed']}:{r['resolution']}\" for r in _k))", "KIDS=")
    assert got == "41:720p", got

    actions.locator(".rf-action-code").click()
    actions.locator(".rf-action-snippet pre", has_text="rf.VideoRequest.build(").wait_for(timeout=20000)

    actions.locator(".rf-action-form").click()
    actions.locator(".rf-generate-form").wait_for(timeout=30000)
    prompt = actions.locator(".rf-generate-form textarea").first.input_value()
    assert prompt == "a horse on a beach", prompt

    actions.locator(".rf-action-upscale").click()
    actions.locator(".rf-action-status", has_text="1080p").wait_for(timeout=120000)
    actions.scroll_into_view_if_needed()
    _lab.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    cell.screenshot(path=str(_lab.SCREENSHOTS / "actions.png"))

    index = _lab.run_code(page, "_ax.detail(_ax.runs()[0]['run_id'])")
    detail = page.locator(".jp-Notebook .jp-Cell").nth(index)
    detail.locator(".rf-detail-view .rf-actions").wait_for(timeout=30000)
    text = detail.inner_text()
    assert "request as sent" in text and "rf.VideoRequest.build(" in text and "resolution 720p→1080p" in text
    assert detail.locator("mjx-container, .MathJax").count() == 0
    detail.screenshot(path=str(_lab.SCREENSHOTS / "detail.png"))
    page.close()
