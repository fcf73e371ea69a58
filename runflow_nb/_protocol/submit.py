"""Creating a run without ever paying twice.

Submits are never retried blind. Every create carries an ``Idempotency-Key`` (stable for the run:
derived from its ``client_ref``), so when a submit's answer is lost (network error) a server that
honours keys replays the first answer to the re-sent create instead of creating a second run.
Whether this server honours keys is checked once, on a free route (two identical upload-session
creates under one key must name the same asset), before the first re-send relies on it. Without
that guarantee, after a 5xx (a create that failed half-way leaves nothing to replay), and whenever
the server answers 409 ``CONFLICT`` for the key (an earlier copy of the run reached it with another
body, e.g. a re-uploaded reference's new URL) the run is looked up by its ``client_ref`` first,
because the server may already have created — and will bill — it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Generator
from datetime import datetime, timezone
from typing import Any

import httpx

from ..errors import APIError, NetworkError, RateLimitError, ServerError
from ..runs import Run
from .actions import Action, Outcome, Send, Sleep
from .answers import BadAnswer, _create_failure, _error, _json, _run_from
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
    """Creates of single runs (:meth:`submit`) and the once-per-server check of key support."""

    def submit(self, model: str, body: dict[str, Any], *, idempotency_key: str | None = None
               ) -> Generator[Action, Outcome, Run]:
        """Create a run (under ``Idempotency-Key``, by default the one derived from its ``client_ref``).

        A lost answer is resolved by re-sending under the same key when the server honours keys
        (it replays the first answer), else — and on a 409 for the key — by looking the run up by
        ``client_ref``; a run that may exist is never reported as refused.
        """
        client_ref = body["client_ref"]
        key = idempotency_key or idempotency_key_for(client_ref)
        since = datetime.now(timezone.utc) - SKEW  # a look-up reads back to this, not only a few pages
        path = f"/v1/models/{model}/runs"
        last: Exception | None = None
        looked_up = False  # whether any look-up by client_ref actually ran
        replayable = False  # whether a lost answer was re-sent under the key (server honours keys)
        for attempt in range(self.retry.max_retries + 1):
            out = yield Send("POST", self.url(path), json=body, headers={"Idempotency-Key": key},
                             deadline=self._deadline(None))
            retry_after: float | None = None
            failure = _create_failure(out, "submitting the run")
            if failure is not None:
                last, ambiguous, retry_after = failure
            elif isinstance(out, httpx.Response) and out.status_code == 409:
                # The key was seen with another body (an earlier copy of this run, e.g. before a
                # reference was re-uploaded under a new URL) or is still being served: the run exists.
                found = yield from self._find_after_lost_answer(client_ref, f"{_error(out)}", grace=True,
                                                                metadata=body.get("metadata"), since=since)
                if found is not None:
                    return found
                raise NetworkError(f"the server holds an earlier submit of this run (409 for its Idempotency-Key) "
                                   f"but no run with client_ref {client_ref} is listed yet: it may have been "
                                   "created — look it up again before submitting anew")
            elif isinstance(out, httpx.Response) and out.status_code >= 400:
                raise _error(out)
            else:
                assert isinstance(out, httpx.Response)
                try:
                    return _run_from(out, "submitting the run")
                except BadAnswer as exc:  # 2xx but not a run: it may have been created
                    last, ambiguous = exc, True
            if ambiguous:
                # A lost answer: the server finished (and its middleware keeps the 201 for a replay) or
                # never got the request, so a re-send under the same key is safe where keys are
                # honoured. A 5xx is different: the server failed, maybe after creating the run, and a
                # failed create leaves nothing to replay — look the run up first. Without key support,
                # look over a grace period after a lost answer: the server may still be creating it.
                lost = isinstance(out, Exception)
                honoured = (yield from self.keys_honoured()) if lost else False
                if honoured:
                    replayable = True
                else:
                    looked_up = True
                    found = yield from self._find_after_lost_answer(client_ref, str(last), grace=lost,
                                                                    metadata=body.get("metadata"), since=since)
                    if found is not None:
                        return found
            if attempt < self.retry.max_retries:
                yield Sleep(self.retry.delay(attempt, retry_after))
        assert last is not None
        if replayable and not looked_up:
            # Re-sent under its key each time without an answer: unverified, so never "not created".
            raise NetworkError(f"{last} — the run may have been created (its answers were lost); sending it again "
                               "under the same client_ref replays it by its Idempotency-Key and pays nothing twice")
        if looked_up and isinstance(last, (RateLimitError, ServerError, NetworkError)):
            _explain(last, f"the run was not created (checked by client_ref {client_ref})")
        elif isinstance(last, NetworkError):
            _explain(last, "the server could not be reached, so the run was never sent")
        elif isinstance(last, RateLimitError):
            _explain(last, "the server refused the run each time, so it was not created")
        raise last

    def keys_honoured(self) -> Generator[Action, Outcome, bool]:
        """Whether the server replays a create sent twice under one ``Idempotency-Key``, checked once
        on a free route: two identical upload-session creates under one key (no bytes are sent)."""
        if self.honours_keys is not None:
            return self.honours_keys
        key = f"rfnb-probe-{uuid.uuid4().hex}"
        body = {"filename": "runflow-nb-idempotency-check.png", "mime_type": "image/png", "size_bytes": 1}
        ids = []
        try:
            for _ in range(2):
                resp = yield from self.call("POST", "/v1/asset-uploads", json=body, headers={"Idempotency-Key": key})
                data = _json(resp)
                ids.append(data.get("asset_id") or data.get("id") if isinstance(data, dict) else None)
        except (APIError, NetworkError):
            return False  # unknown for now: rely on the look-up, ask again next time
        self.honours_keys = ids[0] is not None and ids[0] == ids[1]
        return self.honours_keys


def _explain(error: Exception, note: str) -> None:
    """Add what the failure means for the run (created or not) to the error's text."""
    if isinstance(error, APIError):  # its text is built from .message
        error.message = f"{error.message} — {note}"
    error.args = (f"{error.args[0] if error.args else error} — {note}",)
