"""A scripted emulator for the money tests: the real emulator over loopback HTTP, plus hooks that
make it misbehave the way a real service (or the network in between) can and the emulator's fault
plan cannot: answers that trickle, HTML pages with 200, runs that "succeed" without a video, 404s
while polling, refusals after N creates. It also records every create's arrival time and the
answers to creates, so tests can count what the *server* saw after a stop.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from runflow_nb.emulator import Emulator

Before = Callable[[httpx.Request], "httpx.Response | None"]
After = Callable[[httpx.Request, httpx.Response], "httpx.Response | None"]


def is_create(request: httpx.Request) -> bool:
    path = request.url.path
    return request.method == "POST" and path.startswith("/v1/models/") and path.endswith("/runs")


def is_poll(request: httpx.Request) -> bool:
    path = request.url.path
    return request.method == "GET" and path.startswith("/v1/runs/") and path.count("/") == 3


def is_download(request: httpx.Request) -> bool:
    return request.method == "GET" and request.url.path.startswith("/files/")


def json_of(response: httpx.Response) -> Any:
    response.read()
    return json.loads(response.content)


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def trickle(data: bytes, *, every_s: float, chunk: int = 1, status: int = 200,
            content_type: str = "application/json") -> httpx.Response:
    """An answer whose body arrives ``chunk`` bytes every ``every_s`` seconds (Content-Length set)."""
    def gen() -> Iterator[bytes]:
        for i in range(0, len(data), chunk):
            time.sleep(every_s)
            yield data[i:i + chunk]

    return httpx.Response(status, headers={"content-type": content_type, "content-length": str(len(data))},
                          content=gen())


class Scripted(Emulator):
    """The emulator with ``before``/``after`` hooks on every request, and a record of creates."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.before: list[Before] = []
        self.after: list[After] = []
        self.creates: list[float] = []  # monotonic arrival time of every create request
        self.create_answers: list[int] = []  # HTTP status of every create answer
        self.hits: dict[str, int] = {}
        self._mu = threading.Lock()

    def count(self, key: str) -> int:
        with self._mu:
            self.hits[key] = self.hits.get(key, 0) + 1
            return self.hits[key]

    def handle(self, request: httpx.Request) -> httpx.Response:
        if is_create(request):
            with self._mu:
                self.creates.append(time.monotonic())
        response = next((got for hook in list(self.before) if (got := hook(request)) is not None), None)
        if response is None:
            response = super().handle(request)
            for after in list(self.after):
                got = after(request, response)
                if got is not None:
                    response = got
        if is_create(request):
            with self._mu:
                self.create_answers.append(response.status_code)
        return response

    # -- what the server saw -----------------------------------------------------------------------

    def created_after(self, t: float) -> int:
        with self._mu:
            return sum(1 for c in self.creates if c > t)

    def runs_created(self) -> int:
        return int(self.simulator.counts()["runs"])

    def settle(self, timeout: float = 120.0) -> None:
        """Wait until every run on the server has ended (so the ledger is final)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = self.simulator.counts()
            if not any(counts.get(s, 0) for s in ("queued", "dispatching", "running")):
                return
            time.sleep(0.05)
        raise AssertionError(f"runs still going on the server after {timeout} s: {self.simulator.counts()}")

    def billed_usd(self) -> float:
        return round(sum(e["cost_usd"] for e in self.simulator.ledger()), 2)
