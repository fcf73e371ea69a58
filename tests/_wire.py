"""A scripted Runflow service behind ``httpx.MockTransport`` and a driver for the protocol flows.

For the fast tests of the money decisions (tests/test_protocol_flows.py, tests/test_client_flows.py):
no threads, no sockets, no real sleeping. :class:`Service` speaks the documented contract
(``../shared/docs/runflow-api.md``: field names, ``Idempotency-Key`` replays, 409 ``CONFLICT``, the
three-step upload) and lets a test script what each create does (``create_faults``) and how the
list answers (filters honoured or ignored, order). :func:`drive` carries a flow's actions out over
an ``httpx.Client`` on that transport, recording each :class:`Sleep` on a fake clock instead of
sleeping.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from runflow_nb._protocol import Emit, Protocol, RetryPolicy, Send, Sleep

BASE = "https://api.runflow.test"
MODEL = "alibaba/happy-horse/reference-to-video"
RUNS = f"/v1/models/{MODEL}/runs"
BATCHES = f"/v1/models/{MODEL}/batches"


class Clock:
    """A monotonic clock that moves only when a flow sleeps (or a test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def protocol(*, clock: Clock | None = None, max_retries: int = 4, **overrides: Any) -> Protocol:
    proto = Protocol(base_url=BASE, retry=RetryPolicy(max_retries=max_retries), poll_interval=2.0, poll_max=10.0,
                     wait_timeout=600.0, clock=clock or Clock())
    for name, value in overrides.items():
        setattr(proto, name, value)
    return proto


@dataclass
class Driven:
    result: Any = None
    sleeps: list[float] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    sends: list[Send] = field(default_factory=list)


def drive(flow: Any, handler: Callable[[httpx.Request], httpx.Response], *, clock: Clock | None = None,
          out: Driven | None = None) -> Any:
    """Run ``flow`` to its end against ``handler``; a :class:`Sleep` advances ``clock`` (no real wait).
    An exception the handler raises (``httpx.ConnectError``...) reaches the flow as its outcome,
    as the real drivers hand it on. ``out`` collects the sleeps, events and sends."""
    out = out if out is not None else Driven()
    value: Any = None
    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        while True:
            try:
                action = flow.send(value)
            except StopIteration as stop:
                out.result = stop.value
                return stop.value
            value = None
            if isinstance(action, Sleep):
                out.sleeps.append(action.seconds)
                if clock is not None:
                    clock.now += action.seconds
            elif isinstance(action, Emit):
                out.events.append(action.event)
            else:
                out.sends.append(action)
                try:
                    value = http.request(action.method, action.url, json=action.json, params=action.params,
                                         content=action.content, headers=action.headers)
                except httpx.HTTPError as exc:
                    value = exc


def run_object(run_id: str, client_ref: str, *, status: str = "queued", metadata: Any = None,
               created_at: str = "2026-11-29T10:00:00.000+00:00") -> dict[str, Any]:
    """A run object with the documented field names (``run_queued_201.json``)."""
    return {"id": run_id, "status_code": status, "client_ref": client_ref, "metadata": metadata,
            "input": {"prompt": "character1"}, "output": None, "cost": None, "created_at": created_at,
            "failure_code": None, "failure_message": None, "batch_id": None}


def body(client_ref: str = "rfnb-ours", metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"input": {"prompt": "character1 walks", "image_urls": ["https://img.test/a.png"], "duration": 5},
            "client_ref": client_ref, "metadata": metadata if metadata is not None else {"library": "runflow_nb/x"}}


class Service:
    """The documented API in memory, with scripted faults.

    ``create_faults``: one entry per create (``POST .../runs`` or ``.../batches``), in order, then 201s:
    ``"ok"``; ``"created-500"`` (the run is made and billed, the answer is a 500); ``"500"`` (refused
    with a 500, nothing made); ``"created-drop"`` (made, then the connection drops: ReadTimeout;
    the key middleware keeps the 201 for a replay); ``"connect"`` (ConnectError: never arrived);
    ``"429"`` / ``"429:<seconds>"`` (refused, with ``Retry-After`` when given); ``"html"`` (made,
    answered 200 with an HTML page); ``"422"``.
    ``honours_keys``: replay a create (and an upload session) sent again under its key.
    ``list_filters``: honour ``q=client_ref:...`` (False: list everything); ``list_order``:
    ``"desc"`` (newest first) or ``"asc"``; ``page_size`` items per page with ``next_pq`` cursors.
    ``hidden_lists``: this many look-ups answer before a new run is listed.
    """

    def __init__(self, *, create_faults: tuple[str, ...] = (), honours_keys: bool = True, list_filters: bool = True,
                 list_order: str = "desc", page_size: int = 100, hidden_lists: int = 0,
                 others: list[dict[str, Any]] | None = None) -> None:
        self.create_faults = list(create_faults)
        self.honours_keys = honours_keys
        self.list_filters = list_filters
        self.list_order = list_order
        self.page_size = page_size
        self.hidden_lists = hidden_lists
        self.runs: list[dict[str, Any]] = list(others or [])  # oldest first
        self.created: list[dict[str, Any]] = []  # runs this service made (and bills)
        self.keys: dict[str, tuple[str, httpx.Response]] = {}
        self.requests: list[httpx.Request] = []
        self.assets: dict[str, dict[str, Any]] = {}
        self.put_faults: list[int] = []  # status codes answered to PUTs, in order, then 200
        self.lists = 0

    # -- what the tests read -------------------------------------------------------------

    def routes(self) -> list[str]:
        """``METHOD path`` of every request, in order (uploads' PUTs by host)."""
        return [f"{r.method} {r.url.path}" for r in self.requests]

    def count(self, route: str) -> int:
        return self.routes().count(route)

    # -- the transport -------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.method == "POST" and path == RUNS:
            return self._create(request, self._make_run)
        if request.method == "POST" and path == BATCHES:
            return self._create(request, self._make_batch)
        if request.method == "GET" and path == "/v1/runs":
            return self._list(request)
        if request.method == "GET" and path.startswith("/v1/runs/"):
            run = next((r for r in self.runs if r["id"] == path.rsplit("/", 1)[1]), None)
            return httpx.Response(200, json=run) if run else httpx.Response(404, json={"code": "RUN_NOT_FOUND"})
        if request.method == "POST" and path == "/v1/asset-uploads":
            return self._keyed(request, lambda: self._upload_session(request))
        if request.method == "PUT" and request.url.host == "storage.test":
            status = self.put_faults.pop(0) if self.put_faults else 200
            if status == 200:
                self.assets[path.rsplit("/", 1)[1]]["bytes"] = request.content
            return httpx.Response(status)
        if request.method == "POST" and path.startswith("/v1/asset-uploads/") and path.endswith("/confirmations"):
            asset = self.assets[path.split("/")[3]]
            return httpx.Response(201, json={"id": asset["id"], "url": f"https://cdn.test/{asset['id']}.png?sig=1",
                                             "mime_type": asset["mime_type"], "size_bytes": asset["size_bytes"],
                                             "name": asset["filename"]})
        return httpx.Response(404, json={"code": "NOT_FOUND", "message": path})

    def _keyed(self, request: httpx.Request, make: Callable[[], httpx.Response]) -> httpx.Response:
        key = request.headers.get("idempotency-key")
        if key and self.honours_keys and key in self.keys:
            sent, answer = self.keys[key]
            if sent != request.content.decode():
                return httpx.Response(409, json={"code": "CONFLICT", "message": "same Idempotency-Key with a "
                                                 "different body", "errors": None})
            return httpx.Response(answer.status_code, content=answer.content,
                                  headers={**answer.headers, "Idempotent-Replayed": "true"})
        answer = make()
        if key and answer.status_code < 300:
            self.keys[key] = (request.content.decode(), answer)
        return answer

    def _upload_session(self, request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        asset_id = str(uuid.uuid4())
        self.assets[asset_id] = {"id": asset_id, **sent}
        return httpx.Response(201, json={"asset_id": asset_id, "upload_url": f"https://storage.test/put/{asset_id}"})

    def _create(self, request: httpx.Request, make: Callable[[httpx.Request], httpx.Response]) -> httpx.Response:
        fault = self.create_faults.pop(0) if self.create_faults else "ok"
        if fault == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if fault.startswith("429"):
            headers = {"Retry-After": fault.split(":", 1)[1]} if ":" in fault else {}
            return httpx.Response(429, headers=headers, json={"code": "RATE_LIMITED", "message": "slow down"})
        if fault == "500":
            return httpx.Response(500, json={"code": "INTERNAL", "message": "try again"})
        if fault == "422":
            return httpx.Response(422, json={"code": "VALIDATION", "message": "bad", "errors": ["input.duration"]})
        answer = self._keyed(request, lambda: make(request))
        if fault == "created-500":
            self.keys.pop(request.headers.get("idempotency-key", ""), None)  # a failed create leaves no replay
            return httpx.Response(500, json={"code": "INTERNAL", "message": "the create failed half-way"})
        if fault == "created-drop":
            raise httpx.ReadTimeout("the answer was lost", request=request)
        if fault == "html":
            return httpx.Response(200, headers={"content-type": "text/html"}, content=b"<html>portal</html>")
        return answer

    def _make_run(self, request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        stamp = f"2026-11-29T10:{len(self.runs):02d}:00.000+00:00"
        run = run_object(f"0193-run-{len(self.runs) + 1}", sent["client_ref"], metadata=sent.get("metadata"),
                         created_at=stamp)
        self.runs.append(run)
        self.created.append(run)
        return httpx.Response(201, json=run)

    def _make_batch(self, request: httpx.Request) -> httpx.Response:
        """The documented batch answer (``batch_201.json``): one run per item, with its client_ref."""
        sent = json.loads(request.content)
        batch_id = f"0193-batch-{len(self.runs) + 1}"
        items = []
        for i, item in enumerate(sent["input"]):
            run = run_object(f"0193-run-{len(self.runs) + 1}", item.get("client_ref"), metadata=sent.get("metadata"),
                             created_at=f"2026-11-29T10:{len(self.runs):02d}:00.000+00:00")
            run["batch_id"] = batch_id
            self.runs.append(run)
            self.created.append(run)
            items.append({"id": f"item-{i}", "sequence_index": i, "run_id": run["id"], "status_code": "queued",
                          "client_ref": item.get("client_ref")})
        return httpx.Response(201, json={"id": batch_id, "status_code": "queued", "items_total": len(items),
                                         "items": items, "cost": None})

    def _list(self, request: httpx.Request) -> httpx.Response:
        self.lists += 1
        query = parse_qs(urlsplit(str(request.url)).query)
        items = list(self.runs)
        if self.lists <= self.hidden_lists:  # a fresh run is not listed yet
            items = [r for r in items if r not in self.created]
        if self.list_filters and "q" in query:
            wanted = query["q"][0].removeprefix("client_ref:").strip('"')
            items = [r for r in items if r["client_ref"] == wanted]
        if self.list_order == "desc":
            items.reverse()
        start = int(query.get("pq", ["0"])[0])
        page = items[start:start + self.page_size]
        more = start + self.page_size < len(items)
        return httpx.Response(200, json={"items": page, "next_pq": str(start + self.page_size) if more else None,
                                         "prev_pq": None})
