"""Routes for runs: create, the model page's blocking run, get, logs and the list."""

from __future__ import annotations

from typing import Any

import httpx

from ..errors import Issue, RunTimeoutError, ValidationError
from ..simulator import MAX_PAGE_SIZE
from ..specs import ModelSpec
from .base import EmulatorBase
from .faults import hollow_view
from .validation import check_envelope, check_input
from .wire import HTTPError, invalid, json_body, json_response, spec_for

__all__ = ["RunRoutes"]


class RunRoutes(EmulatorBase):
    """``POST /v1/models/{model}/runs``, ``POST /v1/run/{model}``, ``GET /v1/runs[/{id}[/logs]]``."""

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
        return json_response(201, run, {"Location": f"/v1/runs/{run['id']}"})

    def _ep_run_blocking(self, request: httpx.Request, request_id: str, *, model: str) -> httpx.Response:
        spec = spec_for(model)
        run = self._create_run(spec, json_body(request), request, request_id, [])
        try:
            done = self.simulator.wait(run["id"], timeout=self.blocking_timeout_s, base_url=self.base_url)
        except RunTimeoutError:
            raise HTTPError(504, "TIMEOUT", "the run did not finish in time; poll it", id=run["id"]) from None
        if done["status_code"] != "succeeded":
            raise HTTPError(500, done["failure_code"] or "RUN_FAILED", done["failure_message"] or "the run failed",
                            id=done["id"], status_code=done["status_code"], cost=done["cost"])
        out = done["output"]
        video = {k: v for k, v in out["outputs"][0].items() if k != "type"}
        return json_response(200, {"video": video, "seed": out["seed"], "timing": out["timing"],
                                   "nsfw_detected": out["nsfw_detected"], "id": done["id"], "cost": done["cost"],
                                   "status_code": done["status_code"], "duration_ms": done["duration_ms"]})

    def _create_run(self, spec: ModelSpec, inp: dict[str, Any], request: httpx.Request, request_id: str,
                    issues: list[Issue], **extra: Any) -> dict[str, Any]:
        images, more, notes, video = check_input(self, spec, inp, request)
        issues = [*issues, *more]
        if issues:
            raise ValidationError(issues)
        fail = self.fault("fail")
        nsfw = not fail and self.fault("nsfw")  # a failed run has nothing to flag
        hollow = None if fail else "succeeded" if self.fault("nooutput") else (
            "partial_succeeded" if self.fault("partialnooutput") else None)
        broken = self.create_fault()
        run = self.simulator.submit(inp, images=images, model=spec.model, request_id=request_id,
                                    force_failure=fail, force_nsfw=nsfw, notes=notes, video=video, **extra)
        if hollow is not None:
            with self.state.lock:
                self.state.hollow[run["id"]] = hollow
        if extra.get("client_ref") and self.fault("dupref"):
            self._other_callers_run(spec, inp, images, video, extra["client_ref"])
        broken.apply(request)
        return run  # as it was created (queued), however long the create took

    def _other_callers_run(self, spec: ModelSpec, inp: dict[str, Any], images: Any, video: Any,
                           client_ref: str) -> None:
        """Another caller's run under the same client_ref (client_ref is not unique): other seed."""
        seed = inp.get("seed")
        other = {**inp, "seed": (seed + 1 if isinstance(seed, int) and seed < 2**31 - 1 else 0)}
        self.simulator.submit(other, images=images, model=spec.model, client_ref=client_ref, video=video,
                              metadata={"caller": "another process"})

    def _run_view(self, run_id: str) -> dict[str, Any]:
        with self.state.lock:
            hollow = self.state.hollow.get(run_id)
        return hollow_view(self.simulator.get(run_id, base_url=self.base_url), hollow)

    def _ep_get_run(self, request: httpx.Request, request_id: str, *, run_id: str) -> httpx.Response:
        return json_response(200, self._run_view(run_id))

    def _ep_run_logs(self, request: httpx.Request, request_id: str, *, run_id: str) -> httpx.Response:
        return json_response(200, {"run_id": run_id, "data": self.simulator.logs(run_id)})

    def _ep_list_runs(self, request: httpx.Request, request_id: str) -> httpx.Response:
        params = request.url.params
        limit_text = params.get("limit", "100")
        try:
            limit: Any = int(limit_text)
        except ValueError:
            limit = limit_text
        client_ref = params.get("client_ref") or None
        if self.fault("listall"):  # a server that ignores the query: every run, oldest first, one page
            data, cursor = [], None
            while True:
                page, cursor = self.simulator.list_runs(limit=MAX_PAGE_SIZE, cursor=cursor, base_url=self.base_url)
                data += page
                if not cursor:
                    break
            data, next_cursor = [self._run_view(r["id"]) for r in reversed(data)], None
        else:
            data, next_cursor = self.simulator.list_runs(client_ref=client_ref, limit=limit,
                                                         cursor=params.get("cursor") or None, base_url=self.base_url)
            data = [self._run_view(r["id"]) for r in data]
        return json_response(200, {"data": data, "next_cursor": next_cursor, "has_more": next_cursor is not None,
                                   "limit": limit, "max_limit": MAX_PAGE_SIZE})
