"""After a stop (an interrupt, the Stop button) the progress says "stopped", never "done in"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _fast_sweep import plan

pytest.importorskip("ipywidgets")


def test_a_stopped_sweep_says_stopped_and_a_finished_one_done(sweeper: Any, service: Any,
                                                              ref_images: list[Path]) -> None:
    from runflow_nb.widgets.progress import ProgressWidget

    stopped = ProgressWidget(estimate=None, budget_usd=None, display=False)
    service.freeze()  # runs stay on the server until the stop

    def stop_once_submitted(p: Any) -> None:
        stopped.update(p)
        if p.counts.get("queued", 0) + p.counts.get("running", 0) >= 1:
            sweeper.cancel.set()

    summary = sweeper.run(plan(ref_images, [1, 2, 3, 4]), on_progress=stop_once_submitted)
    assert summary.stopped
    line = stopped.line.value  # the last update (the sweep's end) is drawn at once
    assert "stopped after" in line and "done in" not in line
    assert stopped.bar.bar_style == "warning"
    stop = stopped.stop_button  # live (orange) while it ran; disabled and plain once the sweep has ended
    assert (stop.disabled, stop.button_style, stop.description) == (True, "", "Stop")

    service.thaw()
    sweeper.cancel.clear()
    done = ProgressWidget(estimate=None, budget_usd=None, display=False)
    sweeper.run(plan(ref_images, [1, 2, 3, 4]), on_progress=done.update)
    assert "done in" in done.line.value and "stopped" not in done.line.value
    assert (done.stop_button.disabled, done.stop_button.button_style) == (True, "")
