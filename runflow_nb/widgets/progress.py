"""One compact live widget for a sweep: a bar plus a line of counts, money and ETA.

The sweep calls :meth:`ProgressWidget.update` from its own thread, as often as runs change state.
The widget redraws at most :attr:`ProgressWidget.max_rate` times a second (the latest state always
wins, and the final state is drawn at once), so a 500-run sweep sends a handful of messages a
second, not thousands. Papermill, nbval and scripts get plain text lines instead (see
:class:`runflow_nb.views.sweep_progress.TextProgress`).
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

from ..sweep.status import SIMULATED_NOTE

__all__ = ["ProgressWidget", "progress_html"]

_COLORS = {"succeeded": "#15803d", "failed": "#b91c1c", "error": "#b91c1c", "download_failed": "#b91c1c",
           "unknown": "#b45309", "skipped_budget": "#b45309", "canceled": "#6b7280", "running": "#1d4ed8",
           "queued": "#6b7280", "submitting": "#6b7280", "dispatching": "#6b7280"}
_FAILED = ("failed", "error", "download_failed", "unknown")


def progress_html(progress: Any, *, estimate: Any = None) -> str:
    """The status line for a :class:`~runflow_nb.sweep.runner.SweepProgress` (counts, money, ETA), escaped."""
    chips = []
    for status, n in sorted(progress.counts.items()):
        if n > 0 and status != "planned":
            color = _COLORS.get(status, "#374151")
            chips.append(f'<span style="color:{color}">{html.escape(status)} <b>{n}</b></span>')
    # &#36; and the ignore class: MathJax leaves it
    money = (f"simulated spend <b>&#36;{progress.spent_usd:.2f}</b> ({SIMULATED_NOTE})"
             if getattr(progress, "simulated", False) else f"spent <b>&#36;{progress.spent_usd:.2f}</b>")
    if progress.budget_usd is not None:
        money += f" of &#36;{progress.budget_usd:.2f}"
    if progress.in_flight_usd > 0:
        money += f" (+&#36;{progress.in_flight_usd:.2f} in flight)"
    if estimate is not None and getattr(estimate, "usd", None) is not None:
        money += f" · plan &#36;{estimate.usd:.2f}"
    eta = progress.eta_s()
    if progress.finished and progress.stopped:  # an interrupt, a Stop button or a fatal answer ended it
        tail = f"stopped after {time.monotonic() - progress.started:.0f} s: {html.escape(str(progress.stopped))}"
    elif progress.finished:
        tail = f"done in {time.monotonic() - progress.started:.0f} s"
    elif eta is not None:
        tail = f"ETA {_duration(eta)}"
    else:
        tail = f"{time.monotonic() - progress.started:.0f} s"
    flagged = getattr(progress, "flagged", 0)
    if flagged:
        chips.append(f'<span style="color:#b45309" title="exp.table(qa=\'flagged\')">⚠ flagged by QA <b>{flagged}</b></span>')
    parts = [f"<b>{progress.done}/{progress.total}</b>", " · ".join(chips) or "starting", money, tail]
    line = " | ".join(parts)
    notes = "".join(f'<div style="color:#b45309">{html.escape(m).replace("$", "&#36;")}</div>'
                    for m in progress.messages[-3:])
    return (f'<div class="tex2jax_ignore mathjax_ignore" '
            f'style="font-size:12px;font-family:var(--jp-code-font-family,monospace)">{line}{notes}</div>')


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class ProgressWidget:
    """A live sweep display: ``IntProgress`` bar + one HTML line, shown once, updated ≤ 4×/s.

    >>> widget = ProgressWidget(estimate=plan.estimate(), budget_usd=10)   # doctest: +SKIP
    >>> exp.run(plan, progress=widget.update)                               # doctest: +SKIP
    """

    max_rate = 4.0  # redraws per second

    def __init__(self, *, estimate: Any, budget_usd: float | None, display: bool = True,
                 on_stop: Any = None) -> None:
        import ipywidgets as w

        self.estimate = estimate
        self.budget_usd = budget_usd
        total = int(getattr(estimate, "runs", 0) or 0)
        self.bar = w.IntProgress(value=0, min=0, max=max(total, 1), bar_style="info",
                                 layout=w.Layout(width="260px", flex="0 0 auto"))
        self.line = w.HTML(value=html.escape(f"sweep of {estimate}"), layout=w.Layout(flex="1 1 auto", min_width="0"))
        # A Stop button only where a click can arrive: a background sweep (a blocking cell keeps the
        # kernel busy, so there Kernel ▸ Interrupt is the stop).
        self.stop_button = w.Button(description="Stop", button_style="warning", icon="stop",
                                    tooltip="stop submitting; runs already sent stay recorded",
                                    # its own width, never squeezed by a long line beside it ("■ …")
                                    layout=w.Layout(width="auto", min_width="80px", flex="0 0 auto"))
        self.stop_button.add_class("rf-progress-stop")
        self.stop_button.on_click(lambda _b: self._stop(on_stop))
        parts = [self.bar, self.stop_button, self.line] if on_stop is not None else [self.bar, self.line]
        self.widget = w.HBox(parts, layout=w.Layout(align_items="center"))
        self.widget.add_class("rf-progress")
        self.renders = 0
        self._lock = threading.Lock()
        self._latest: Any = None
        self._last_draw = 0.0
        self._timer: threading.Timer | None = None
        from .saved import SavedView

        self.saved = SavedView(self.widget, self.line.value, label="sweep progress")
        if display:
            self.saved.show()

    def _stop(self, on_stop: Any) -> None:
        self.stop_button.disabled = True
        self.stop_button.description = "Stopping"
        on_stop()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def update(self, progress: Any) -> None:
        """Take the newest state (any thread); draw now, or once the throttle window ends."""
        with self._lock:
            self._latest = progress
            now = time.monotonic()
            wait = self._last_draw + 1.0 / self.max_rate - now
            if progress.finished or wait <= 0:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                self._draw_locked()
            elif self._timer is None:  # a trailing draw, so the last state before a pause shows
                self._timer = threading.Timer(wait, self._flush)
                self._timer.daemon = True
                self._timer.start()

    def _flush(self) -> None:
        with self._lock:
            self._timer = None
            if self._latest is not None:
                self._draw_locked()

    def _draw_locked(self) -> None:
        p = self._latest
        self._last_draw = time.monotonic()
        self.renders += 1
        self.bar.max = max(p.total, 1)
        self.bar.value = min(p.done, p.total)
        failed = sum(p.counts.get(s, 0) for s in _FAILED)
        if p.finished:
            self.bar.bar_style = "danger" if failed else (
                "warning" if p.counts.get("skipped_budget") or p.stopped else "success")
        elif failed:
            self.bar.bar_style = "warning"
        self.line.value = progress_html(p, estimate=self.estimate)
        if p.finished:  # Stop goes back to disabled and plain, however the sweep ended
            self.stop_button.disabled, self.stop_button.button_style = True, ""
            self.stop_button.description = "Stop"
            self.saved.update(self.line.value)  # the final counts stay readable without the kernel
