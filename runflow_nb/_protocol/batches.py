"""Creating and polling batches (``POST /v1/models/{model}/batches``): up to 100 runs in one create,
under one ``Idempotency-Key``, resolved like single runs when the answer is lost."""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import httpx

from ..errors import APIError, RunMayExistError
from ..runs import Run
from .actions import Action, Outcome, Send, Sleep
from .answers import BadAnswer, _create_failure, _error, _json
from .lookup import SKEW
from .submit import Submits

__all__ = ["BatchRefused", "Batches"]


class BatchRefused(APIError):
    """The batch route answered 422: the model takes no batches (or not these items)."""

    def __init__(self, error: APIError) -> None:
        super().__init__(error.message, status_code=error.status_code, code=error.code, errors=error.errors,
                         request_id=error.request_id)

    @property
    def unsupported(self) -> bool:
        """True unless the problems name items (``input[3].duration``): then only this batch was refused."""
        return not any("input[" in str(e) for e in (self.errors or []))


class Batches(Submits):
    """Batch creates (:meth:`submit_batch`) and their items (:meth:`batch_items`)."""

    def submit_batch(self, model: str, body: dict[str, Any], *, idempotency_key: str
                     ) -> Generator[Action, Outcome, tuple[str | None, dict[str, Run | None]]]:
        """Create a batch (items carry their ``client_ref``): ``(batch id, client_ref → Run)``.

        A 422 raises :class:`BatchRefused` (a model without batches, or items it would not take:
        send them as single runs). A create that may have made the batch (lost answer, 5xx, a 2xx
        that is not a batch) follows the rule of :mod:`.submit`: its items are looked up by
        ``client_ref`` over the grace period; if any is listed the batch was made (the others map to
        ``None``: made, not listed yet); if none is, the batch is sent again only where the batch
        route was seen replaying keys, else :class:`RunMayExistError` (never POSTed twice).
        """
        refs = [str(item["client_ref"]) for item in body["input"]]
        since = datetime.now(timezone.utc) - SKEW
        path = f"/v1/models/{model}/batches"
        last: Exception | None = None
        may_exist = False
        for attempt in range(self.retry.attempts):
            out = yield Send("POST", self.url(path), json=body, headers={"Idempotency-Key": idempotency_key},
                             deadline=self._deadline(None))
            retry_after: float | None = None
            maybe_made = False
            failure = _create_failure(out, "submitting the batch")
            if failure is not None:
                last, maybe_made, retry_after = failure
            elif isinstance(out, httpx.Response) and out.status_code == 422:
                raise BatchRefused(_error(out))
            elif isinstance(out, httpx.Response) and out.status_code == 409:
                found = yield from self._find_items(refs, str(_error(out)), grace=True, metadata=body.get("metadata"),
                                                    since=since)
                return None, found
            elif isinstance(out, httpx.Response) and out.status_code >= 400:
                raise _error(out)
            else:
                assert isinstance(out, httpx.Response)
                try:
                    made = _batch_runs(out, refs)
                except BadAnswer as exc:  # 2xx but not a batch: it may have been created
                    last, maybe_made = exc, True
                else:
                    self.note_replay("batches", out)
                    return made
            if maybe_made:
                may_exist = True
                found = yield from self._find_items(refs, str(last), grace=True, metadata=body.get("metadata"),
                                                    since=since)
                if any(run is not None for run in found.values()):
                    return None, found  # the batch was made: the rest are not listed yet
                if not self.replays.get("batches"):
                    raise RunMayExistError(
                        f"{last} — the batch may have been created: none of its {len(refs)} runs is listed yet, and "
                        "this server was never seen replaying a batch create by its Idempotency-Key, so it is not "
                        "sent again until a look-up sees its runs (or the list has had time to show them)")
            if attempt < self.retry.attempts - 1:
                yield Sleep(self.retry.delay(attempt, retry_after))
        assert last is not None
        if may_exist:
            raise RunMayExistError(f"{last} — the batch may have been created (every answer was lost)")
        raise last

    def batch_items(self, batch_id: str) -> Generator[Action, Outcome, list[Run]]:
        """The runs of a batch (``GET /v1/batches/{id}/items``, each item with its full run)."""
        resp = yield from self.call("GET", f"/v1/batches/{quote(batch_id, safe='')}/items", what="polling the batch")
        data = _json(resp)
        items = data.get("items") if isinstance(data, dict) else data
        runs = []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            if isinstance(item.get("run"), dict) and item["run"].get("id"):
                runs.append(Run.parse(item["run"]))
            elif item.get("run_id"):
                runs.append(Run.parse({"id": item["run_id"], "status_code": item.get("status_code"),
                                       "client_ref": item.get("client_ref"), "batch_id": batch_id}))
        return runs


def _batch_runs(resp: httpx.Response, refs: list[str]) -> tuple[str | None, dict[str, Run | None]]:
    """``(batch id, client_ref → Run)`` from a 2xx batch answer, or :class:`BadAnswer`."""
    found: dict[str, Run | None] = dict.fromkeys(refs)
    data = _json(resp)
    if not isinstance(data, dict):
        kind = resp.headers.get("content-type", "no content type").split(";")[0]
        raise BadAnswer(f"submitting the batch: the server answered HTTP {resp.status_code} with {kind}, not a "
                        "batch object", status_code=resp.status_code, request_id=resp.headers.get("x-request-id"))
    batch_id = str(data["id"]) if data.get("id") else None
    for item in data.get("items") or []:
        if isinstance(item, dict) and item.get("run_id") and item.get("client_ref") in found:
            found[item["client_ref"]] = Run.parse({"id": item["run_id"], "status_code": item.get("status_code"),
                                                   "client_ref": item["client_ref"], "batch_id": batch_id})
    return batch_id, found
