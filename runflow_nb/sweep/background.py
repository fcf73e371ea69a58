"""Sweeps off the caller's thread: :func:`run_blocking` (a coroutine run to the end from sync code,
inside Jupyter's running loop too, with Ctrl-C / Kernel ▸ Interrupt turned into a stop) and
:class:`SweepHandle` (a sweep started with ``exp.run(..., background=True)``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import RunTimeoutError, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from ..experiment import Experiment
    from .runner import SweepProgress, SweepSummary

__all__ = ["SweepHandle", "run_blocking"]

T = TypeVar("T")


def run_blocking(factory: Callable[[], Coroutine[Any, Any, T]], *, cancel: threading.Event | None = None,
                 grace_s: float = 30.0) -> T:
    """Run a coroutine to completion from sync code, even inside a running loop (Jupyter).

    The coroutine always runs on a private loop thread, so a ``KeyboardInterrupt`` (Ctrl-C, Kernel ▸
    Interrupt) lands in this thread while the work goes on there. With ``cancel`` the interrupt
    sets it and waits up to ``grace_s`` for the work to wind down (a sweep records what it
    left running), then re-raises; without it, the interrupt is re-raised at once.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(factory())
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc
        finally:
            finished.set()

    # An Event, not Thread.join: an interrupt landing inside join() can leave the thread looking
    # finished while it still runs (CPython), and then the stop would not wait for the bookkeeping.
    finished = threading.Event()
    t = threading.Thread(target=target, name="runflow_nb-sweep", daemon=True)
    t.start()
    try:
        while not finished.wait(0.1):  # short waits: even a flag-only interrupt (interrupt_main) is seen at once
            pass
    except KeyboardInterrupt:
        if cancel is None:
            raise
        cancel.set()
        finished.wait(grace_s)  # a second interrupt here abandons the wait (the thread still records)
        raise
    if "error" in box:
        raise box["error"]
    return box["value"]


class SweepHandle:
    """A sweep running in the background: ``progress``, ``cancel()``, ``wait()``.

    ``cancel()`` (or the progress widget's Stop button) stops submitting at once; runs already on
    the server stay recorded (the next ``exp.run(plan)`` re-attaches them), and
    ``summary.messages`` says what still runs and what it may cost.

    >>> handle = exp.run(plan, background=True)           # doctest: +SKIP
    >>> handle.cancel(); df = handle.wait()               # doctest: +SKIP
    """

    def __init__(self, experiment: Experiment, start: Callable[[threading.Event], SweepSummary],
                 cancel: threading.Event | None = None) -> None:
        self.experiment = experiment
        self._cancel = cancel or threading.Event()
        self._result: SweepSummary | None = None
        self._error: BaseException | None = None
        self.progress: SweepProgress | None = None

        def target() -> None:
            try:
                self._result = start(self._cancel)
            except BaseException as exc:
                self._error = exc

        self._thread = threading.Thread(target=target, name="runflow_nb-background-sweep", daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def cancel(self) -> None:
        """Stop submitting now; runs in flight stay recorded and resumable (see the class docs)."""
        self._cancel.set()

    stop = cancel

    def wait(self, timeout: float | None = None) -> pd.DataFrame:
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not timeout >= 0):
            raise UsageError(f"timeout is {timeout!r}: use seconds (zero or more), or None to wait until it ends")
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RunTimeoutError(f"the sweep is still running after {timeout} s; wait() again, or cancel() to stop "
                                  "submitting (runs already sent stay recorded)")
        if self._error is not None:
            raise self._error
        return self.experiment.table()

    @property
    def summary(self) -> SweepSummary | None:
        return self._result

    def __repr__(self) -> str:
        state = "done" if self.done else "running"
        line = self.progress.line() if self.progress else ""
        return f"<SweepHandle {self.experiment.name!r} {state} {line}>"
