"""Experiment, Plan and SweepSummary show as HTML in a notebook: user text escaped, money written so
JupyterLab's MathJax leaves it alone (``&#36;``, inside an element MathJax skips)."""

from __future__ import annotations

import re
from pathlib import Path

import runflow_nb as rf
from runflow_nb.sweep.status import SweepSummary
from runflow_nb.views.html import NO_MATH

HOSTILE = "<script>alert('$5')</script> & character1"


def _safe(markup: str) -> None:
    assert markup.startswith(f'<div class="{NO_MATH}"'), markup[:80]
    assert "<script>" not in markup and "$" not in markup  # every dollar is &#36;


def test_a_plan_shows_its_estimate_and_runs_escaped(ref_images: list[Path]) -> None:
    plan = rf.grid(prompt=[HOSTILE], images=[[ref_images[0]]], seed=range(25), duration=3, resolution="720p")
    markup = plan._repr_html_()
    _safe(markup)
    assert "25 runs, 75 s of video, estimated &#36;10.50" in markup
    assert markup.count("<tr>") == 1 + 20 and "… and 5 more" in markup  # a header and the first 20 runs
    assert "&lt;script&gt;alert(&#x27;&#36;5&#x27;)&lt;/script&gt; &amp; character1" in markup
    assert re.search(r"<td>3</td><td>720p</td>.*?<td>&#36;0\.42</td>", markup)


def test_a_sweep_summary_shows_counts_spend_and_messages_escaped() -> None:
    summary = SweepSummary(total=4, counts={"succeeded": 3, "skipped_budget": 1}, spent_usd=1.26, reused=0,
                           reattached=0, submitted=3, skipped_budget=1, wall_s=2.5, messages=[HOSTILE],
                           stopped="Ctrl-C <now>", still_running=2, may_cost_usd=0.84)
    markup = summary._repr_html_()
    _safe(markup)
    assert "<td>&#36;1.26</td>" in markup and "may cost up to &#36;0.84" in markup
    assert "skipped_budget: 1, succeeded: 3" in markup and "Ctrl-C &lt;now&gt;" in markup
    assert "<li>&lt;script&gt;" in markup
    simulated = SweepSummary(total=1, counts={"succeeded": 1}, spent_usd=0.42, reused=0, reattached=0, submitted=1,
                             skipped_budget=0, wall_s=1.0, messages=[], simulated=True)._repr_html_()
    assert "simulated spend (nothing charged)" in simulated and "est. &#36;0.42" in simulated


def test_an_experiment_shows_where_it_lives_and_its_last_sweep(ref_images: list[Path], tmp_path: Path) -> None:
    folder = tmp_path / "<b>study</b>"
    exp = rf.Experiment("horses", store=folder / "runs.sqlite", artifacts=folder / "artifacts", budget_usd=5)
    markup = exp._repr_html_()
    _safe(markup)
    assert "&lt;b&gt;study&lt;/b&gt;" in markup and "<b>study</b>" not in markup
    assert "<td>&#36;5.00</td>" in markup and "No sweep in this session yet" in markup
    exp.run(rf.grid(prompt="character1 trots", images=[[ref_images[0]]], seed=[1], duration=3,
                    resolution="720p"), progress=None)
    markup = exp._repr_html_()
    _safe(markup)
    assert "Last sweep:" in markup and "est. &#36;0.42" in markup
