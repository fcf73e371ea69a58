"""How a sweep reports its progress to the researcher: a widget in a live front end, plain lines
on standard error under papermill, nbval, the CLI and scripts, a callable of the caller's, or nothing.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..sweep.status import SweepProgress

__all__ = ["TextProgress", "make_reporter"]


def _frontend_kernel() -> bool:
    from .frontend import interactive_frontend

    return interactive_frontend()



def make_reporter(progress: Any, estimate: Any, budget_usd: float | None, *,
                   on_stop: Callable[[], None] | None = None, scope: str = "") -> Callable[[Any], None] | None:
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress
    from .. import settings

    mode = settings.progress(progress if isinstance(progress, str) else "auto")
    if mode == "none":
        return None
    if mode == "auto":
        mode = "widget" if _frontend_kernel() else "text"
    if mode == "widget":
        try:
            from ..widgets.progress import ProgressWidget

            return ProgressWidget(estimate=estimate, budget_usd=budget_usd, on_stop=on_stop).update
        except ImportError:
            mode = "text"
    budget = f", budget ${budget_usd:.2f} {scope}".rstrip() if budget_usd is not None else ""
    print(f"runflow_nb: sweep of {estimate}{budget} (Ctrl-C stops submitting)", file=sys.stderr, flush=True)
    return TextProgress().update


class TextProgress:
    """Plain lines for papermill, nbval and scripts: at most one every few seconds, plus the last.

    They go to standard error (``stream`` unset), as tqdm's do, so a script's own output on standard
    output (a table, a path) stays clean to pipe."""

    def __init__(self, *, every_s: float = 5.0, stream: Any = None) -> None:
        self.every_s = every_s
        self.stream = stream
        self._last = 0.0
        self._lock = threading.Lock()
        self._printed_messages = 0
        self._last_line = ""

    def update(self, progress: SweepProgress) -> None:
        with self._lock:
            now = time.monotonic()
            out = self.stream or sys.stderr
            for msg in progress.messages[self._printed_messages:]:
                print(f"runflow_nb: {msg}", file=out, flush=True)
            self._printed_messages = len(progress.messages)
            line = progress.line()
            if line == self._last_line:  # e.g. a sweep of reused runs starts at its end: said once
                return
            if progress.finished or now - self._last >= self.every_s:
                self._last, self._last_line = now, line
                print(f"runflow_nb: {line}", file=out, flush=True)
