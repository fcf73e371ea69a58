"""The compare_models notebook through ``runflow-nb report``, offline: the same prompt and seeds through
text-, image- and reference-to-video plus one video-edit, a report whose clips all play in Chromium,
an edited row that names its parent, and a re-run that submits nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _family_doc import MODELS

from runflow_nb.store.runstore import Store

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
pytestmark = pytest.mark.timeout(1500)  # a hang guard: the module fixture runs two reports


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The notebook reported twice into one store (the defaults: 3 models × 2 seeds, 3 s 720p, one edit)."""
    root = tmp_path_factory.mktemp("compare_models")
    env = {k: v for k, v in os.environ.items()
           if k not in ("RUNFLOW_API_KEY", "RUNFLOW_BASE_URL", "RUNFLOW_BACKEND", "RUNFLOW_STORE", "MPLBACKEND")}
    env["RUNFLOW_CACHE_DIR"] = str(root / "cache")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "runflow_nb.cli", "report", "compare_models", "-p", "store", "data/rf.sqlite",
           "-p", "artifacts_dir", "data/artifacts"]
    runs = []
    for name in ("r1", "r2"):
        done = subprocess.run([*cmd, "--out", str(root / name)], cwd=root, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append(done)
    return {"root": root, "first": runs[0], "second": runs[1], "store": root / "data" / "rf.sqlite",
            "html": Path(runs[0].stdout.strip().splitlines()[-1])}


def test_the_report_runs_every_model_and_the_edit(reports: dict[str, Any]) -> None:
    assert "reused 0, submitted 7" in reports["first"].stderr
    with Store(reports["store"]) as st:
        rows = st.runs("compare-models")
    by_model: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r)
    assert {m: len(v) for m, v in by_model.items()} == {MODELS["t2v"]: 2, MODELS["i2v"]: 2, MODELS["r2v"]: 2,
                                                        MODELS["edit"]: 1}
    assert all(r["status"] == "succeeded" and r["cost_simulated"] for r in rows)
    (edit,) = by_model[MODELS["edit"]]
    parent = next(r for r in by_model[MODELS["r2v"]] if r["run_id"] == edit["parent_run_id"])
    assert parent["seed"] == 1 and edit["audio_setting"] == "origin"
    html = reports["html"].read_text(encoding="utf-8")
    assert edit["parent_run_id"] in html  # the edited clip's row names its parent in the report


def test_rerunning_the_report_submits_nothing(reports: dict[str, Any]) -> None:
    assert "reused 7, submitted 0" in reports["second"].stderr
    with Store(reports["store"]) as st:
        assert [r["attempts"] for r in st.runs("compare-models")] == [1] * 7


@pytest.mark.browser
def test_every_clip_of_the_report_plays_in_chromium(reports: dict[str, Any]) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (never `playwright install`)")
    sync_api = pytest.importorskip("playwright.sync_api")
    html = reports["html"]
    srcs = re.findall(r'<video[^>]*\ssrc="([^"]+)"', html.read_text(encoding="utf-8"))
    assert len(srcs) >= 8, srcs  # 6 in the side-by-side gallery, the parent and its edit
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page()
            page.goto(html.as_uri())
            states = page.evaluate("""async () => {
                const out = [];
                for (const v of document.querySelectorAll('video')) {
                    v.muted = true;
                    try { await v.play(); } catch (e) { out.push({src: v.currentSrc, error: String(e)}); continue; }
                    // until time advances (a loaded machine may take a while; 20 s is a hang guard)
                    await new Promise(r => { const t0 = Date.now();
                        const check = () => (v.currentTime > 0 || Date.now() - t0 > 20000) ? r() : setTimeout(check, 50);
                        check(); });
                    v.pause();
                    out.push({src: v.currentSrc, ready: v.readyState, t: v.currentTime, d: v.duration});
                }
                return out;
            }""")
        finally:
            browser.close()
    assert len(states) == len(srcs)
    for s in states:
        assert s.get("ready", 0) >= 2 and s["t"] > 0 and abs(s["d"] - 3) < 0.2, s
