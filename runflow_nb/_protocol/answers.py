"""Reading what came back: retry timing (backoff, ``Retry-After``), error answers, run answers, and
which failures prove a request never reached the server."""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from ..errors import APIError, NetworkError, ServerError, api_error_from_response
from ..runs import Run

__all__ = ["CREATES_NOTHING", "MAX_ATTEMPTS", "BadAnswer", "RetryPolicy", "retry_after_seconds"]

#: The documented limit: at most this many attempts per request (the first one included).
MAX_ATTEMPTS = 5
#: Answers to a create that the docs say create nothing: the run was refused, so its money is free
#: and (for 409/429) a later send is safe. Any other failure (5xx, a lost answer, a 2xx that is not
#: a run) may have made the run.
CREATES_NOTHING = frozenset({400, 401, 402, 403, 409, 422, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, honouring ``Retry-After`` (capped).

    ``max_retries`` counts the attempts after the first; the docs allow at most
    :data:`MAX_ATTEMPTS` in all, so :attr:`attempts` never exceeds it.

    >>> policy = RetryPolicy(max_retries=4, base_s=0.5, cap_s=30.0)
    >>> policy.attempts
    5
    >>> 0.0 <= policy.delay(3) <= 4.0        # full jitter below base * 2**attempt
    True
    >>> policy.delay(0, retry_after=7.0)     # the server's Retry-After wins when present
    7.0
    """

    max_retries: int = MAX_ATTEMPTS - 1
    base_s: float = 0.5
    cap_s: float = 30.0
    max_retry_after_s: float = 120.0

    @property
    def attempts(self) -> int:
        """How many times one request may be sent: the first attempt and its retries, at most 5."""
        return max(1, min(self.max_retries + 1, MAX_ATTEMPTS))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        backoff = random.uniform(0, min(self.cap_s, self.base_s * 2**attempt))
        if retry_after is not None:
            return min(self.max_retry_after_s, max(retry_after, backoff * 0.1))
        return backoff


def retry_after_seconds(resp: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text


def _error(resp: httpx.Response) -> APIError:
    return api_error_from_response(resp.status_code, _json(resp), request_id=resp.headers.get("x-request-id"))


class BadAnswer(ServerError):
    """A 2xx answer that is not what the API sends (an HTML page, a captive portal, garbage)."""


def _run_from(resp: httpx.Response, what: str) -> Run:
    """The run in a 2xx answer, or :class:`BadAnswer` (never a bare ValueError)."""
    try:
        return Run.parse(resp.json())
    except ValueError:
        kind = resp.headers.get("content-type", "no content type").split(";")[0]
        raise BadAnswer(f"{what}: the server answered HTTP {resp.status_code} with {kind}, not a run object "
                        f"(a proxy or captive portal in the way?): {resp.text[:120]!r}",
                        status_code=resp.status_code, request_id=resp.headers.get("x-request-id")) from None


def _definitely_unsent(exc: Exception) -> bool:
    """True when the request never reached the server (so a submit cannot have been created)."""
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def _network_error(exc: Exception, what: str) -> NetworkError:
    # The message names the failure kind, never headers (the key lives in a header).
    return NetworkError(f"{what}: {type(exc).__name__}: {str(exc)[:200] or 'no answer'}")


def _create_failure(out: httpx.Response | Exception | None, what: str
                    ) -> tuple[Exception, bool, float | None] | None:
    """For the outcome of a create: ``(error, maybe created, Retry-After seconds)`` when it is a failure
    worth retrying (network error, 429, 5xx), else None. A 429 was refused, so nothing was created; a
    5xx or a lost answer may have created the run (a connection never made cannot have)."""
    if isinstance(out, Exception):
        return _network_error(out, what), not _definitely_unsent(out), None
    if out is not None and out.status_code == 429:
        return _error(out), False, retry_after_seconds(out)
    if out is not None and out.status_code >= 500:
        return _error(out), True, retry_after_seconds(out)
    return None
