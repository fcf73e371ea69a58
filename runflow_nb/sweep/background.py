"""Sweeps off the caller's thread: :func:`run_blocking` (a coroutine run to the end from sync code,
inside Jupyter's running loop too, with Ctrl-C / Kernel ▸ Interrupt turned into a stop) and
:class:`SweepHandle` (a sweep started with ``exp.run(..., background=True)``)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import RunTimeoutError, UsageError
from .status import SIMULATED_NOTE

if TYPE_CHECKING:
    import pandas as pd

    from ..experiment import Experiment
    from .runner import SweepProgress, SweepSummary

__all__ = ["SweepHandle", "live_handles", "on_sweep_end", "run_blocking"]

T = TypeVar("T")

_LIVE: weakref.WeakSet[SweepHandle] = weakref.WeakSet()
_END_LISTENERS: list[Callable[[SweepHandle], None]] = []
_LISTENERS_LOCK = threading.Lock()


def live_handles() -> list[SweepHandle]:
    """The background sweeps of this process that have not ended yet (oldest first)."""
    return sorted((h for h in list(_LIVE) if not h.done), key=lambda h: h.started_at)


def on_sweep_end(listener: Callable[[SweepHandle], None]) -> None:
    """Call ``listener(handle)`` (on the sweep's thread) whenever a background sweep of this process
    ends, however it ends; adding the same listener twice keeps one."""
    with _LISTENERS_LOCK:
        if listener not in _END_LISTENERS:
            _END_LISTENERS.append(listener)


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
                 cancel: threading.Event | None = None, *, run_keys: Iterable[str] = ()) -> None:
        self.experiment = experiment
        self._cancel = cancel or threading.Event()
        self._result: SweepSummary | None = None
        self._error: BaseException | None = None
        self.progress: SweepProgress | None = None
        self.run_keys = frozenset(run_keys)  # the plan's runs: which stored rows this sweep drives
        self.started_at = time.time()
        self.ended = threading.Event()  # set before the end listeners are called
        self._done_callbacks: list[Callable[[SweepHandle], None]] = []

        def target() -> None:
            try:
                self._result = start(self._cancel)
            except BaseException as exc:
                self._error = exc
            finally:
                with _LISTENERS_LOCK:
                    self.ended.set()
                    listeners = [*self._done_callbacks, *_END_LISTENERS]
                    self._done_callbacks.clear()
                for listener in listeners:
                    with contextlib.suppress(Exception):  # a listener's fault never hides the sweep's outcome
                        listener(self)

        self._thread = threading.Thread(target=target, name="runflow_nb-background-sweep", daemon=True)
        _LIVE.add(self)
        self._thread.start()

    @property
    def done(self) -> bool:
        return self.ended.is_set() or not self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        """True once :meth:`cancel` was called (submitting stops; runs in flight still end)."""
        return self._cancel.is_set()

    @property
    def error(self) -> BaseException | None:
        """What ended the sweep with an error (None while it runs or when it ended normally)."""
        return self._error

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

    def add_done_callback(self, fn: Callable[[SweepHandle], None]) -> None:
        """Call ``fn(handle)`` once the sweep has ended (on the sweep's thread; at once, here, when it
        has ended already)."""
        with _LISTENERS_LOCK:
            if not self.ended.is_set():
                self._done_callbacks.append(fn)
                return
        fn(self)

    def state(self) -> str:
        """How the sweep stands, in words: ``running …`` with its progress line, or how it ended
        (``finished``, ``stopped``, ``budget cut`` or ``ended with an error``) with its counts and spend."""
        if not self.ended.is_set():
            if not self._thread.is_alive():  # pragma: no cover - the thread sets ``ended`` before it exits
                return "ended"
            line = self.progress.line() if self.progress else ""
            return ("stopping " if self.stopping else "running ") + line
        if self._error is not None:
            return f"ended with an error: {type(self._error).__name__}: {self._error}"
        summary = self._result
        if summary is None:  # pragma: no cover - a sweep that ends always has a summary or an error
            return "ended"
        how = "stopped" if summary.stopped else "budget cut" if summary.skipped_budget else "finished"
        counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items()) if v)
        money = (f"simulated spend ${summary.spent_usd:.2f} ({SIMULATED_NOTE})" if summary.simulated
                 else f"spent ${summary.spent_usd:.2f}")
        return f"{how}: {counts}; {money} in {summary.wall_s:.0f} s"

    def __repr__(self) -> str:
        return f"<SweepHandle {self.experiment.name!r} {self.state().strip()}>"

    def _ipython_display_(self) -> None:
        """In a notebook the handle's line is live: shown now, redrawn with the ending once the sweep
        ends (however it ends), so the cell never keeps claiming a sweep that is over still runs."""
        import uuid

        from IPython.display import display, update_display

        display_id = f"rf-sweep-handle-{uuid.uuid4().hex}"
        display({"text/plain": repr(self)}, raw=True, display_id=display_id)
        self.add_done_callback(lambda h: update_display({"text/plain": repr(h)}, raw=True, display_id=display_id))
