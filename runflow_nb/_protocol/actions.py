"""What a flow asks its driver to do: :class:`Send` a request, :class:`Sleep`, :class:`Emit` an event.

A flow is a generator of these actions; it receives the outcome of each :class:`Send` (an
``httpx.Response`` or the ``httpx`` exception the request raised) and returns its result.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..runs import RunEvent

__all__ = ["Action", "Emit", "Flow", "Outcome", "Send", "Sleep"]


@dataclass
class Send:
    """Send one request. ``sink`` (when set) receives the body chunk by chunk instead of memory."""

    method: str
    url: str
    json: Any = None
    params: dict[str, Any] | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: bool = True
    sink: Any = None  # an object with write(bytes) and expect(declared size); the driver streams into it
    # Wall-clock deadline (``time.monotonic()``) for the whole exchange, body included: a server
    # trickling a byte a second cannot hold a request past it. The driver answers ReadTimeout then.
    deadline: float | None = None


@dataclass
class Sleep:
    seconds: float


@dataclass
class Emit:
    event: RunEvent


Action = Send | Sleep | Emit
Outcome = httpx.Response | Exception | None
Flow = Generator[Action, Outcome, Any]
