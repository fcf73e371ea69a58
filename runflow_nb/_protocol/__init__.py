"""The Runflow protocol as plain generators: one implementation for the sync and async clients.

Each *flow* is a generator that yields actions (:class:`Send`, :class:`Sleep`, :class:`Emit`) and
receives the outcome of each :class:`Send` (an ``httpx.Response`` or the ``httpx`` exception it
raised). The clients in :mod:`runflow_nb.client` only carry actions out; retries, backoff,
``Retry-After``, client_ref look-ups and status parsing all live here, written once.

Layers, each built on the ones before it: ``actions`` (what a flow yields), ``answers`` (retry
timing, error and run answers), ``calls`` (one request with retries under a deadline), ``lookup``
(finding a run by ``client_ref``), ``submit`` (creating a run without paying twice, see there),
``batches``, ``polling`` (waiting for a run) and ``transfers`` (uploads and downloads).
"""

from __future__ import annotations

from .actions import Action, Emit, Flow, Outcome, Send, Sleep
from .answers import BadAnswer, RetryPolicy, retry_after_seconds
from .batches import Batches, BatchRefused
from .polling import Polling
from .submit import idempotency_key_for
from .transfers import Transfers, check_output_url

__all__ = ["Action", "BadAnswer", "BatchRefused", "Emit", "Flow", "Outcome", "Protocol", "RetryPolicy", "Send",
           "Sleep", "check_output_url", "idempotency_key_for", "retry_after_seconds"]


class Protocol(Batches, Polling, Transfers):
    """Flows for one model endpoint family. Holds no connection: the drivers do I/O.

    >>> proto = Protocol(base_url="https://api.runflow.io", retry=RetryPolicy(), poll_interval=2.0,
    ...                  poll_max=10.0, wait_timeout=1800.0)
    >>> flow = proto.get("0190-run")
    >>> next(flow).url                      # the request the driver is asked to send
    'https://api.runflow.io/v1/runs/0190-run'
    """
