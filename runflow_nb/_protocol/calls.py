"""One request with its retries, under a deadline: the layer every other flow is built on."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any
from urllib.parse import quote

import httpx

from ..runs import Run
from .actions import Action, Outcome, Send, Sleep
from .answers import (
    RetryPolicy,
    _definitely_unsent,
    _error,
    _json,
    _network_error,
    _run_from,
    retry_after_seconds,
)

__all__ = ["Calls"]


class Calls:
    """The settings of a protocol (base URL, retries, timeouts, polling) and its one-request flows.

    >>> calls = Calls(base_url="https://api.runflow.io", retry=RetryPolicy(), poll_interval=2.0,
    ...               poll_max=10.0, wait_timeout=1800.0)
    >>> calls.url("/v1/health")
    'https://api.runflow.io/v1/health'
    """

    def __init__(self, *, base_url: str, retry: RetryPolicy, poll_interval: float, poll_max: float,
                 wait_timeout: float, clock: Callable[[], float] = time.monotonic,
                 request_timeout_s: float = 60.0, download_timeout_s: float = 900.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.request_timeout_s = request_timeout_s  # one API request, answer body included
        self.download_timeout_s = download_timeout_s  # one video download, every attempt included
        self.max_bad_polls = 10  # consecutive polls that fail (after their retries) before a wait gives up
        self.not_found_polls = 3  # consecutive 404s before a run counts as gone
        self.retry = retry
        self.poll_interval = poll_interval
        self.poll_max = poll_max
        self.wait_timeout = wait_timeout
        self.clock = clock
        self.backoff_after_s = 30.0
        # Pauses between look-ups by client_ref after a submit's answer was lost (about 7 s in all).
        self.submit_grace_s: tuple[float, ...] = (1.0, 2.0, 4.0)
        #: How long a run the server made may stay missing from its run list (search indexes and
        #: replicas lag). A create whose run is not listed stays "may exist" this long after it was
        #: sent; only after that does a look-up that finds nothing (read back past the send) say the
        #: create made nothing, and only then may the run be sent again.
        self.list_lag_s = 600.0
        #: Create routes ("runs", "batches") seen replaying a create by its key (an answer marked
        #: ``Idempotent-Replayed``): only such a route may be sent a create again after a lost answer.
        self.replays: dict[str, bool] = {}
        # Uploaded references by sha256: (signed url, asset id, monotonic time), reused for a while so a
        # sweep uploads each reference once and a re-sent create carries the same body.
        self.uploads: dict[str, tuple[str, str, float]] = {}
        self.upload_reuse_s = 30 * 60.0

    def url(self, path: str) -> str:
        return self.base_url + path

    def _deadline(self, outer: float | None) -> float:
        own = self.clock() + self.request_timeout_s
        return own if outer is None else min(own, outer)

    def _pause(self, seconds: float, deadline: float | None) -> bool:
        """False when a pause of ``seconds`` would end past ``deadline`` (so do not retry)."""
        return deadline is None or self.clock() + seconds < deadline

    def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
             idempotent: bool = True, what: str = "", headers: dict[str, str] | None = None,
             deadline: float | None = None, auth: bool = True
             ) -> Generator[Action, Outcome, httpx.Response]:
        """Send with retries. 429 is always safe to retry (the request was refused); network errors and
        5xx only for idempotent calls. Nothing (request, retries, pauses) outlasts ``deadline``."""
        what = what or f"{method} {path}"
        last: Exception | None = None
        for attempt in range(self.retry.attempts):
            out = yield Send(method, self.url(path), json=json, params=params, headers=dict(headers or {}),
                             deadline=self._deadline(deadline), auth=auth)
            if isinstance(out, Exception):
                last = _network_error(out, what)
                if not (idempotent or _definitely_unsent(out)):
                    raise last
            elif out is not None and (out.status_code == 429 or out.status_code >= 500):
                last = _error(out)
                if out.status_code != 429 and not idempotent:
                    raise last
                pause = self.retry.delay(attempt, retry_after_seconds(out))
                if attempt < self.retry.attempts - 1 and self._pause(pause, deadline):
                    yield Sleep(pause)
                    continue
                raise last
            elif out is not None and out.status_code >= 400:
                raise _error(out)
            elif out is not None:
                return out
            pause = self.retry.delay(attempt)
            if attempt < self.retry.attempts - 1 and self._pause(pause, deadline):
                yield Sleep(pause)
            else:
                break
        assert last is not None
        raise last

    def read(self, path: str, *, auth: bool = True) -> Generator[Action, Outcome, Any]:
        """``GET path`` → its JSON (account and catalogue endpoints)."""
        resp = yield from self.call("GET", path, auth=auth, what=f"reading {path}")
        return _json(resp)

    def get(self, run_id: str, *, deadline: float | None = None) -> Generator[Action, Outcome, Run]:
        resp = yield from self.call("GET", f"/v1/runs/{quote(run_id, safe='')}", what="polling the run",
                                    deadline=deadline)
        return _run_from(resp, "polling the run")

