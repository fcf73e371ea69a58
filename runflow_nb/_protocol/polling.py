"""Waiting for a run to end: polls that ease off on long jobs, survive passing failures, and end
at the wait's wall-clock timeout (the run keeps going; nothing is lost)."""

from __future__ import annotations

from collections.abc import Generator

from ..errors import NetworkError, NotFoundError, RateLimitError, RunTimeoutError, ServerError
from ..runs import Run, RunEvent
from .actions import Action, Emit, Outcome, Sleep
from .calls import Calls

__all__ = ["Polling"]


class Polling(Calls):
    """:meth:`wait`: poll a run until it ends, emitting its status changes; :meth:`look`: read a run
    known to exist, past passing 404s."""

    def look(self, run_id: str, *, deadline: float | None = None) -> Generator[Action, Outcome, Run]:
        """The run as it is now, read the way a wait reads it: a passing 404 (a lagging read of a run
        just created, or re-attached after a restart) is read again ``poll_interval`` later; only
        :attr:`not_found_polls` 404s in a row make the run count as gone (NotFoundError). Money
        decisions rest on "gone", so one stale answer must not make a billed run look unbilled."""
        for _ in range(self.not_found_polls - 1):
            try:
                return (yield from self.get(run_id, deadline=deadline))
            except NotFoundError:
                yield Sleep(self.poll_interval)
        return (yield from self.get(run_id, deadline=deadline))  # the last read: its 404 means gone

    def wait(self, run_id: str, *, timeout: float | None = None, first: Run | None = None
             ) -> Generator[Action, Outcome, Run]:
        """Poll until the run ends, emitting a :class:`RunEvent` at every status change.

        ``timeout`` is wall-clock for the whole wait, polls included. A poll that fails (after its
        own retries) does not end the wait: only :attr:`max_bad_polls` failures in a row do, and
        only :attr:`not_found_polls` 404s in a row make the run count as gone (NotFoundError).
        """
        timeout = self.wait_timeout if timeout is None else timeout
        start = self.clock()
        deadline = start + timeout
        last_status: str | None = None
        run = first
        interval = self.poll_interval
        bad = not_found = 0
        latest = first
        while True:
            if run is None or not run.done:
                try:
                    run = latest = yield from self.get(run_id, deadline=deadline)
                    bad = not_found = 0
                except NotFoundError:
                    not_found += 1
                    if not_found >= self.not_found_polls:
                        raise
                    run = None
                except (ServerError, RateLimitError, NetworkError):
                    bad += 1
                    if bad >= self.max_bad_polls:
                        raise
                    run = None
            if run is not None and run.status != last_status:
                last_status = run.status
                yield Emit(RunEvent(run.status, run, self.clock() - start))
            if run is not None and run.done:
                return run
            elapsed = self.clock() - start
            if elapsed >= timeout:
                state = latest.status if latest is not None else "in an unknown state"
                raise RunTimeoutError(
                    f"run {run_id} is still {state} after {elapsed:.0f} s (wait timeout {timeout:.0f} s); "
                    "it may still finish — wait on it again, nothing is lost", run=latest)
            yield Sleep(min(interval, max(0.0, timeout - elapsed)))
            if elapsed > self.backoff_after_s:  # poll briskly at first, then ease off on long jobs
                interval = min(self.poll_max, interval * 1.25)
            run = None
