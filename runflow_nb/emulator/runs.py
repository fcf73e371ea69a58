"""Routes for runs: create, the model page's blocking run, get, logs, the list/search and statuses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from ..errors import Issue, RunTimeoutError, ValidationError
from ..simulator.engine import MAX_PAGE_SIZE, STATUSES, TERMINAL
from ..specs import ModelSpec
from .base import DROP_ANSWER, SIMULATOR_LATENCY, EmulatorBase
from .faults import CLIP_FAULTS, CreateFault, break_answer, hollow_view
from .query import parse_query
from .validation import check_envelope, check_input
from .wire import HTTPError, invalid, json_body, json_response, spec_for

__all__ = ["RunRoutes"]

_SORTS = {"created_at:desc": False, "-created_at": False, "created_at:asc": True, "created_at": True}


class RunRoutes(EmulatorBase):
    """``POST /v1/models/{model}/runs``, ``POST /v1/run/{model}``, ``GET /v1/runs[/{id}[/logs]]``,
    ``GET /v1/runs/statuses``."""

    def _ep_submit(self, request: httpx.Request, request_id: str, *, model: str) -> httpx.Response:
        spec = spec_for(model)
        body = json_body(request)
        issues = check_envelope(body)
        inp = body.get("input")
        if not isinstance(inp, dict):
            issues.append(Issue("input", "is required: an object with the model's inputs",
                                'send {"input": {"prompt": ..., "image_urls": [...]}}'))
            raise invalid(issues)
        run = self._create_run(spec, inp, request, request_id, issues, client_ref=body.get("client_ref"),
                               metadata=body.get("metadata"), callback_url=body.get("callback_url"))
        self.state.note_create(route="runs", via="created", ids=[run["id"]],
                               idempotency_key=request.headers.get("idempotency-key"),
                               client_refs=[body.get("client_ref")],
                               answer=request.extensions.get(DROP_ANSWER) or "201")
        return json_response(201, run, {"Location": f"/v1/runs/{run['id']}"})

    def _ep_run_blocking(self, request: httpx.Request, request_id: str, *, model: str) -> httpx.Response:
        spec = spec_for(model)
        run = self._create_run(spec, json_body(request), request, request_id, [])
        if request.extensions.get(DROP_ANSWER):  # the run exists; the answer is broken now
            return break_answer(request.extensions[DROP_ANSWER], request, json_response(201, run))
        try:
            done = self.simulator.wait(run["id"], timeout=self.blocking_timeout_s, base_url=self.base_url)
        except RunTimeoutError:
            raise HTTPError(504, "TIMEOUT", "the run did not finish in time; poll it", id=run["id"]) from None
        if done["status_code"] not in ("succeeded", "partial_succeeded"):
            raise HTTPError(500, done["failure_code"] or "RUN_FAILED", done["failure_message"] or "the run failed",
                            id=done["id"], status_code=self.spell(done["status_code"]), cost=done["cost"])
        out = done["output"]
        video = {k: v for k, v in out["outputs"][0].items() if k != "type"}
        return json_response(200, {"video": video, "seed": out["seed"], "timing": out["timing"],
                                   "nsfw_detected": out["nsfw_detected"], "id": done["id"], "cost": done["cost"],
                                   "status_code": done["status_code"], "duration_ms": done["duration_ms"]})

    def _create_run(self, spec: ModelSpec, inp: dict[str, Any], request: httpx.Request, request_id: str,
                    issues: list[Issue], **extra: Any) -> dict[str, Any]:
        images, more, notes, video = check_input(self, spec.model, inp, request)
        issues = [*issues, *more]
        if issues:
            raise ValidationError(issues)
        run = self._start_run(spec, inp, images, notes, request, request_id, video=video, **extra)
        return self.present(run)

    def _start_run(self, spec: ModelSpec, inp: dict[str, Any], images: list[Any], notes: list[str],
                   request: httpx.Request, request_id: str, *, video: Path | None = None, in_batch: bool = False,
                   **extra: Any) -> dict[str, Any]:
        """Hand a checked input to the simulator, drawing the outcome faults for it; a create fault
        (drop, create500, create500kept) is applied to the answer once the run exists — for a single run only: a
        batch draws its create fault once for the whole create (``in_batch``)."""
        fail = self.fault("fail")
        nsfw = not fail and self.fault("nsfw")  # a failed run has nothing to flag
        outcome = "succeeded"
        if not fail and self.fault("partial"):
            outcome = "partial_succeeded"
        elif not fail and self.fault("cancel"):
            outcome = "canceled"
        hollow = None if fail or outcome == "canceled" else "succeeded" if self.fault("nooutput") else (
            "partial_succeeded" if self.fault("partialnooutput") else None)
        flaw = None if fail or outcome == "canceled" else next((k for k in CLIP_FAULTS if self.fault(k)), None)
        broken = self.create_fault() if not in_batch else CreateFault(None)
        latency = request.extensions.get(SIMULATOR_LATENCY)  # the in-process caller's own, if it set one
        run = self.simulator.submit(inp, images=images, model=spec.model, request_id=request_id,
                                    force_failure=fail, force_nsfw=nsfw, outcome=outcome, notes=notes,
                                    video=video, flaw=flaw, latency=latency, **extra)
        self.state.note_run(run["id"], extra.get("client_ref"), self.simulator.now())
        if hollow is not None:
            with self.state.lock:
                self.state.hollow[run["id"]] = hollow
        self.callbacks.watch(run["id"], extra.get("callback_url"))
        if extra.get("client_ref") and self.fault("dupref"):
            self._other_callers_run(spec, inp, images, video, extra["client_ref"])
        broken.apply(request)
        return run  # as it was created (queued), however long the create took

    def _other_callers_run(self, spec: ModelSpec, inp: dict[str, Any], images: Any, video: Any,
                           client_ref: str) -> None:
        """Another caller's run under the same client_ref (client_ref is not unique): other seed."""
        seed = inp.get("seed")
        other = {**inp, "seed": (seed + 1 if isinstance(seed, int) and seed < 2**31 - 1 else 0)}
        run = self.simulator.submit(other, images=images, model=spec.model, client_ref=client_ref, video=video,
                                    metadata={"caller": "another process"})
        self.state.note_run(run["id"], client_ref, self.simulator.now(), other_caller=True)

    def run_view(self, run: dict[str, Any]) -> dict[str, Any]:
        """A simulator run view as this server shows it (faults, spelling)."""
        with self.state.lock:
            hollow = self.state.hollow.get(run["id"])
        return self.present(hollow_view(run, hollow))

    def _ep_get_run(self, request: httpx.Request, request_id: str, *, run_id: str) -> httpx.Response:
        self.hide_new(run_id, "run")
        return json_response(200, self.run_view(self.simulator.get(run_id, base_url=self.base_url)))

    def _ep_run_logs(self, request: httpx.Request, request_id: str, *, run_id: str) -> httpx.Response:
        self.hide_new(run_id, "run")
        lines = self.simulator.logs(run_id)
        return json_response(200, {"items": [
            {"id": f"{run_id}-{i}", "run_id": run_id, "level_code": e["level"], "message": e["message"],
             "timestamp": e["timestamp"], "meta": {}} for i, e in enumerate(lines)]})

    def _ep_run_statuses(self, request: httpx.Request, request_id: str) -> httpx.Response:
        return json_response(200, {"items": [
            {"code": self.spell(s), "name": self.spell(s).replace("_", " "), "is_terminal": s in TERMINAL}
            for s in STATUSES]})

    def _visible(self, where: Any) -> Any:
        """``where`` narrowed to the runs the list shows: those created at least ``list_lag_s`` ago."""
        lag = self.list_lag_s
        if lag <= 0:
            return where
        cutoff = self.simulator.now() - lag

        def shown(row: Any) -> bool:
            return row["created_at"] <= cutoff and (where is None or bool(where(row)))
        return shown

    def _ep_list_runs(self, request: httpx.Request, request_id: str) -> httpx.Response:
        params = request.url.params
        issues: list[Issue] = []
        limit_text = params.get("limit", "100")
        try:
            limit: Any = int(limit_text)
        except ValueError:
            limit = limit_text
        where = parse_query(params.get("q", ""))
        listall = self.fault("listall")  # ignores the query: every run, oldest first, one page
        if self.list_ignores_filters or listall:
            where = None
        sort = params.get("sort_by") or "created_at:desc"
        if sort not in _SORTS:
            issues.append(Issue("sort_by", f"cannot sort by {sort!r}", "use created_at:desc or created_at:asc"))
        if issues:
            raise ValidationError(issues)
        if re.search(r"\bclient_ref\s*[:=]", params.get("q", "")):
            self.state.count("lookups:client_ref")
        where = self._visible(where)
        if listall:
            items, cursor = [], None
            while True:
                more, cursor, _ = self.simulator.list_runs(limit=MAX_PAGE_SIZE, cursor=cursor, base_url=self.base_url,
                                                           ascending=True, where=where)
                items += more
                if not cursor:
                    break
            next_pq = prev_pq = None
        else:
            page = min(limit, self.list_page_cap) if self.list_page_cap and isinstance(limit, int) else limit
            items, next_pq, prev_pq = self.simulator.list_runs(
                limit=page, cursor=params.get("pq") or None, base_url=self.base_url, where=where,
                ascending=_SORTS[sort])
        items = [self.run_view(i) for i in items]
        fields = [f.strip() for f in params.get("fields", "").split(",") if f.strip()]
        if fields:
            items = [{k: v for k, v in i.items() if k in fields or k == "id"} for i in items]
        if self.list_cursor_style == "next":
            def link(pq: str | None) -> str | None:
                if pq is None:
                    return None
                rest = [(k, v) for k, v in params.multi_items() if k not in ("pq", "from_prev")]
                return str(httpx.URL("/v1/runs", params=[*rest, ("pq", pq)]))
            return json_response(200, {"items": items, "first": link(None) or "/v1/runs", "next": link(next_pq),
                                       "previous": link(prev_pq), "limit": limit})
        return json_response(200, {"items": items, "next_pq": next_pq, "prev_pq": prev_pq, "limit": limit,
                                   "max_limit": MAX_PAGE_SIZE})
