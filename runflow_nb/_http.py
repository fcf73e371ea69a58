"""The sending layer: carry out one :class:`~runflow_nb._protocol.Send` over httpx, under its deadline.

Both clients use it; everything the flows decide (retries, look-ups) happens before and after. A
failed attempt comes back as the ``httpx`` exception (the flow decides what it means), an answer
as a buffered ``httpx.Response`` or, for a download, streamed into the action's sink.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import httpx

from ._protocol import Outcome, Send
from .errors import DownloadError

__all__ = ["DEFAULT_TIMEOUT", "refuse_non_http", "refuse_non_http_async", "send_async", "send_sync"]

# Per-request limits; the total wait is separate (a clip takes 90–240 s, queues can add more).
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=15.0, pool=60.0)
_FAILED = (httpx.HTTPError, httpx.InvalidURL, DownloadError)  # a failed attempt, handed to the flow


def send_sync(http: httpx.Client, action: Send, *, headers: dict[str, str], timeout: httpx.Timeout) -> Outcome:
    """One exchange. Every read is bounded by what is left of ``action.deadline`` and the body is
    read chunk by chunk, so a server trickling bytes cannot hold the request past it."""
    deadline = action.deadline
    try:
        req = http.build_request(action.method, action.url, json=action.json, params=action.params,
                                 content=action.content, headers=headers, timeout=_timeouts(timeout, deadline))
        resp = http.send(req, stream=True)
        try:
            sink = _open_sink(action, resp)
            body = bytearray()
            for chunk in resp.iter_bytes():
                if _past(deadline):
                    return _deadline_error(req)
                if sink is not None:
                    sink.write(chunk)
                else:
                    body += chunk
        finally:
            resp.close()
        return resp if sink is not None else _buffered(resp, bytes(body))
    except _FAILED as exc:
        return exc


async def send_async(http: httpx.AsyncClient, action: Send, *, headers: dict[str, str]) -> Outcome:
    """One exchange, cut off at ``action.deadline`` however slowly the server answers."""
    if action.deadline is None:
        return await _exchange(http, action, headers)
    left = max(0.001, action.deadline - time.monotonic())
    try:
        if sys.version_info >= (3, 11):  # asyncio.timeout never swallows an outside cancellation
            async with asyncio.timeout(left):
                return await _exchange(http, action, headers)
        return await asyncio.wait_for(_exchange(http, action, headers), left)
    except asyncio.TimeoutError:
        return httpx.ReadTimeout("the request's overall deadline passed before the answer was complete")


async def _exchange(http: httpx.AsyncClient, action: Send, headers: dict[str, str]) -> Outcome:
    try:
        req = http.build_request(action.method, action.url, json=action.json, params=action.params,
                                 content=action.content, headers=headers)
        resp = await http.send(req, stream=True)
        try:
            sink = _open_sink(action, resp)
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                if sink is not None:
                    sink.write(chunk)
                else:
                    body += chunk
        finally:
            await resp.aclose()
        return resp if sink is not None else _buffered(resp, bytes(body))
    except _FAILED as exc:
        return exc


def _open_sink(action: Send, resp: httpx.Response) -> Any:
    """The action's sink for a 2xx answer, told the declared size; None (buffer the body) otherwise."""
    sink = action.sink if resp.status_code < 300 else None
    if sink is not None:
        declared = resp.headers.get("content-length")
        sink.expect(int(declared) if declared and declared.isdigit() else None)
    return sink


def refuse_non_http(request: httpx.Request) -> None:
    """Every request, redirects included, must stay on http(s): a 302 to file:// is never followed."""
    if request.url.scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(f"refusing a {request.url.scheme}:// URL", request=request)


async def refuse_non_http_async(request: httpx.Request) -> None:
    refuse_non_http(request)


def _timeouts(configured: httpx.Timeout, deadline: float | None) -> httpx.Timeout:
    """Per-operation timeouts, none longer than what is left before ``deadline``."""
    if deadline is None:
        return configured
    left = max(0.001, deadline - time.monotonic())

    def cap(value: float | None) -> float:
        return left if value is None else min(value, left)

    return httpx.Timeout(connect=cap(configured.connect), read=cap(configured.read), write=cap(configured.write),
                         pool=cap(configured.pool))


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _deadline_error(request: httpx.Request) -> httpx.ReadTimeout:
    return httpx.ReadTimeout("the request's overall deadline passed before the answer was complete",
                             request=request)


def _buffered(resp: httpx.Response, body: bytes) -> httpx.Response:
    """A plain response holding the (already decoded) body read under a deadline."""
    headers = [(k, v) for k, v in resp.headers.multi_items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
    return httpx.Response(resp.status_code, headers=headers, content=body, request=resp.request)

