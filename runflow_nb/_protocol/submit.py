"""Creating a run without ever paying twice.

The rule, applied to every create that may have reached the server: **"not visible yet" is never
"not made"**. A create answered 201 made its run. A create answered 400/401/402/403/409/422/429
made nothing (the docs say so), so its money is free and a 429 may be sent again. Anything else —
a lost answer, a 5xx, a 2xx that is not a run — may have made the run, and only these settle it:

* a positive sighting: the run listed under its ``client_ref`` (looked up over a grace period,
  since a list may lag behind its creates);
* a replay proven on *that* route: the server was seen replaying a create by its
  ``Idempotency-Key`` on the run route itself (an answer marked ``Idempotent-Replayed``); key
  support on the free upload route proves nothing about the run route.

Without either, the create is never sent again: :class:`~runflow_nb.errors.RunMayExistError` says
the run may exist, and a sweep records it ``unknown`` with its budget reservation kept until a
later look-up sees it — or, once :attr:`list_lag_s` has passed since the send, a look-up read back
past the send finds nothing. Every create carries an ``Idempotency-Key`` derived from its
``client_ref`` (the same in every retry and process), so a server that does replay keys answers
even that late re-send with the first run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator
from datetime import datetime, timezone
from typing import Any

import httpx

from ..errors import APIError, NetworkError, RateLimitError, RunMayExistError
from ..runs import Run
from .actions import Action, Outcome, Send, Sleep
from .answers import BadAnswer, _create_failure, _error, _run_from
from .lookup import SKEW, LookUp

__all__ = ["Submits", "idempotency_key_for"]


def idempotency_key_for(client_ref: str) -> str:
    """The ``Idempotency-Key`` of the run created under ``client_ref``: the same in every retry,
    restart and process (the run record stores the client_ref), different for another attempt.

    >>> idempotency_key_for("rfnb-1") == idempotency_key_for("rfnb-1") != idempotency_key_for("rfnb-2")
    True
    """
    return "rfnb-" + hashlib.sha256(f"runflow_nb idempotency\n{client_ref}".encode()).hexdigest()[:40]


class Submits(LookUp):
    """Creates of single runs (:meth:`submit`)."""

    def submit(self, model: str, body: dict[str, Any], *, idempotency_key: str | None = None
               ) -> Generator[Action, Outcome, Run]:
        """Create a run (under ``Idempotency-Key``, by default the one derived from its ``client_ref``).

        A create that may have made the run (lost answer, 5xx, a 2xx that is not a run) is looked up
        by ``client_ref`` over the grace period; unseen, it is sent again only where this route was
        seen replaying keys, else :class:`RunMayExistError` is raised (see the module docstring).
        """
        client_ref = body["client_ref"]
        key = idempotency_key or idempotency_key_for(client_ref)
        since = datetime.now(timezone.utc) - SKEW  # a look-up reads back to this, not only a few pages
        path = f"/v1/models/{model}/runs"
        last: Exception | None = None
        may_exist = False  # some attempt may have made the run
        for attempt in range(self.retry.attempts):
            out = yield Send("POST", self.url(path), json=body, headers={"Idempotency-Key": key},
                             deadline=self._deadline(None))
            retry_after: float | None = None
            maybe_made = False
            failure = _create_failure(out, "submitting the run")
            if failure is not None:
                last, maybe_made, retry_after = failure
            elif isinstance(out, httpx.Response) and out.status_code == 409:
                # The key was seen with another body (an earlier copy of this run, e.g. before a
                # reference was re-uploaded under a new URL) or is still being served: the run may exist.
                found = yield from self._find_after_lost_answer(client_ref, f"{_error(out)}", grace=True,
                                                                metadata=body.get("metadata"), since=since)
                if found is not None:
                    return found
                raise RunMayExistError(
                    f"the server holds an earlier submit of this run (409 for its Idempotency-Key) but no run with "
                    f"client_ref {client_ref} is listed yet: it may have been created — it is not sent again until "
                    "a look-up sees it", client_ref=client_ref)
            elif isinstance(out, httpx.Response) and out.status_code >= 400:
                raise _error(out)  # refused: nothing was created
            else:
                assert isinstance(out, httpx.Response)
                try:
                    run = _run_from(out, "submitting the run")
                except BadAnswer as exc:  # 2xx but not a run: it may have been created
                    last, maybe_made = exc, True
                else:
                    self.note_replay("runs", out)
                    return run
            if maybe_made:
                may_exist = True
                found = yield from self._find_after_lost_answer(client_ref, str(last), grace=True,
                                                                metadata=body.get("metadata"), since=since)
                if found is not None:
                    return found
                if not self.replays.get("runs"):
                    raise RunMayExistError(
                        f"{last} — the run may have been created: no run with client_ref {client_ref} is listed yet, "
                        "and this server was never seen replaying a run create by its Idempotency-Key, so it is "
                        "not sent again until a look-up sees it (or the list has had time to show it)",
                        client_ref=client_ref)
            if attempt < self.retry.attempts - 1:
                yield Sleep(self.retry.delay(attempt, retry_after))
        assert last is not None
        if may_exist:
            raise RunMayExistError(f"{last} — the run may have been created (every answer was lost); sending it "
                                   f"again under client_ref {client_ref} replays it by its Idempotency-Key",
                                   client_ref=client_ref)
        if isinstance(last, NetworkError):
            _explain(last, "the server could not be reached, so the run was never sent")
        elif isinstance(last, RateLimitError):
            _explain(last, "the server refused the run each time, so it was not created")
        raise last

    def note_replay(self, route: str, resp: httpx.Response) -> None:
        """Remember that ``route`` replays creates by key when an answer says it replayed one."""
        if resp.headers.get("idempotent-replayed", "").lower() == "true":
            self.replays[route] = True


def _explain(error: Exception, note: str) -> None:
    """Add what the failure means for the run (created or not) to the error's text."""
    if isinstance(error, APIError):  # its text is built from .message
        error.message = f"{error.message} — {note}"
    error.args = (f"{error.args[0] if error.args else error} — {note}",)
