"""Routes for batches: ``POST /v1/models/{model}/batches`` (1–100 items, a ``client_ref`` each),
``GET /v1/batches/{id}`` and ``GET /v1/batches/{id}/items`` (each item with its full run).
A create fault (drop, create500, create500kept) is drawn once per batch create, after all its runs
were made; ``get_lag_s`` hides a new batch's GETs (404) as it hides a new run's.

Items are checked all together first (a 422 names ``input[i].<field>``); then one run per item is
created with the batch's id. With ``Emulator(batches=False)`` the create answers 422 as a model
without batch support does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from ..errors import Issue, ValidationError
from ..simulator.engine import iso_utc, uuid7
from .base import EmulatorBase
from .validation import check_envelope, check_input
from .wire import HTTPError, invalid, json_body, json_response, spec_for

__all__ = ["MAX_BATCH_ITEMS", "BatchRoutes"]

MAX_BATCH_ITEMS = 100


class BatchRoutes(EmulatorBase):
    """Batches of runs of one model."""

    def _ep_create_batch(self, request: httpx.Request, request_id: str, *, model: str) -> httpx.Response:
        spec = spec_for(model)
        if not self.batches:
            raise HTTPError(422, "BATCH_NOT_SUPPORTED",
                            f"{spec.model} does not support batches (only template-backed models do): "
                            "create single runs")
        body = json_body(request)
        issues = [i for i in check_envelope({**body, "client_ref": None})]
        items = body.get("input")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH_ITEMS:
            issues.append(Issue("input", f"must be a list of 1–{MAX_BATCH_ITEMS} model inputs",
                                "split larger sweeps into several batches"))
            raise invalid(issues)
        checked: list[tuple[dict[str, Any], list[Any], list[str], Path | None, str | None]] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                issues.append(Issue(f"input[{i}]", "must be an object", "send the model's input object"))
                continue
            ref = item.get("client_ref")
            if ref is not None and (not isinstance(ref, str) or len(ref) > 255):
                issues.append(Issue(f"input[{i}].client_ref", "must be a string of at most 255 characters",
                                    "use a shorter reference"))
            inp = {k: v for k, v in item.items() if k != "client_ref"}  # stripped before model validation
            images, more, notes, video = check_input(self, spec.model, inp, request)
            issues += [Issue(f"input[{i}].{p.field}", p.message, p.fix) for p in more]
            checked.append((inp, images, notes, video, ref))
        if issues:
            raise ValidationError(issues)
        broken = self.create_fault()  # one draw per create, however many items: the answer breaks, not the runs
        batch_id = uuid7()
        runs = [self._start_run(spec, inp, images, notes, request, request_id, video=video, client_ref=ref,
                                metadata=body.get("metadata"), callback_url=body.get("callback_url"),
                                batch_id=batch_id, in_batch=True)
                for inp, images, notes, video, ref in checked]
        batch = {"id": batch_id, "model": spec.model, "created": time.time(), "metadata": body.get("metadata"),
                 "callback_url": body.get("callback_url"), "request_id": request_id,
                 "items": [{"id": uuid7(), "sequence_index": i, "run_id": run["id"], "client_ref": ref}
                           for i, (run, (*_, ref)) in enumerate(zip(runs, checked, strict=True))]}
        with self.state.lock:
            self.state.batches[batch_id] = batch
        self.state.note_born(batch_id, self.simulator.now())
        broken.apply(request)  # the batch and its runs exist (and are billed); only the answer is lost
        self.state.note_create(route="batches", via="created", ids=[r["id"] for r in runs],
                               idempotency_key=request.headers.get("idempotency-key"),
                               client_refs=[c[-1] for c in checked], answer=broken.kind or "201")
        return json_response(201, self._batch_view(batch), {"Location": f"/v1/batches/{batch_id}"})

    def _batch(self, batch_id: str) -> dict[str, Any]:
        self.hide_new(batch_id, "batch")
        with self.state.lock:
            batch = self.state.batches.get(batch_id)
        if batch is None:
            raise HTTPError(404, "BATCH_NOT_FOUND", "does not exist or belongs to another org")
        return batch

    def _batch_runs(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        return [self.run_view(self.simulator.get(it["run_id"], base_url=self.base_url)) for it in batch["items"]]

    def _batch_view(self, batch: dict[str, Any], runs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        runs = runs if runs is not None else self._batch_runs(batch)
        statuses = [r["status_code"] for r in runs]
        ok = sum(s in ("succeeded", "partial_succeeded") for s in statuses)
        failed = statuses.count("failed")
        cancelled = sum(s in ("canceled", "cancelled") for s in statuses)
        done = ok + failed + cancelled == len(statuses)
        if not done:
            status = "running" if any(s != "queued" for s in statuses) else "queued"
        elif ok == len(statuses):
            status = "succeeded"
        elif ok == 0:
            status = "failed" if failed else self.spell("canceled")
        else:
            status = "partial_succeeded"
        billed = [float(r["cost"]) for r in runs if r.get("cost") not in (None, "")]
        return {
            "id": batch["id"], "status_code": status, "items_total": len(runs), "items_succeeded": ok,
            "items_failed": failed, "items_cancelled": cancelled,
            "items": [{"id": it["id"], "sequence_index": it["sequence_index"], "run_id": it["run_id"],
                       "status_code": r["status_code"], "client_ref": it["client_ref"]}
                      for it, r in zip(batch["items"], runs, strict=True)],
            "cost": f"{sum(billed):.2f}" if billed else None, "metadata": batch["metadata"],
            "callback_url": batch["callback_url"], "request_id": batch["request_id"],
            "created_at": iso_utc(batch["created"]),
            "completed_at": max((r["completed_at"] for r in runs if r["completed_at"]), default=None) if done else None,
        }

    def _ep_get_batch(self, request: httpx.Request, request_id: str, *, batch_id: str) -> httpx.Response:
        return json_response(200, self._batch_view(self._batch(batch_id)))

    def _ep_batch_items(self, request: httpx.Request, request_id: str, *, batch_id: str) -> httpx.Response:
        batch = self._batch(batch_id)
        runs = self._batch_runs(batch)
        return json_response(200, {"items": [
            {"id": it["id"], "sequence_index": it["sequence_index"], "run_id": it["run_id"],
             "status_code": r["status_code"], "client_ref": it["client_ref"], "run": r}
            for it, r in zip(batch["items"], runs, strict=True)]})
