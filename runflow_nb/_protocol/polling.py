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
        own retries) does not end the wait: only :attr:`max_bad_polls` failures in a row do. A 404
        never ends it: the id came from a 201 (or a listed run), so the run exists and a 404 is a
        read that lags behind the create; it is polled again until the timeout
        (:class:`RunTimeoutError`: its fate is then unknown, never "not made").
        """
        timeout = self.wait_timeout if timeout is None else timeout
        start = self.clock()
        deadline = start + timeout
        last_status: str | None = None
        run = first
        interval = self.poll_interval
        bad = not_found = 0
        latest = first
        lag = ""
        while True:
            if run is None or not run.done:
                try:
                    run = latest = yield from self.get(run_id, deadline=deadline)
                    bad = not_found = 0
                except NotFoundError:  # lag: the run exists (we hold its id from the server)
                    not_found += 1
                    lag = f" (the server answered 404 to its last {not_found} poll(s): a read lagging behind the create)"
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
                    f"run {run_id} is still {state} after {elapsed:.0f} s (wait timeout {timeout:.0f} s){lag if not_found else ''}; "
                    "it may still finish — wait on it again, nothing is lost", run=latest)
            yield Sleep(min(interval, max(0.0, timeout - elapsed)))
            if elapsed > self.backoff_after_s:  # poll briskly at first, then ease off on long jobs
                interval = min(self.poll_max, interval * 1.25)
            run = None
