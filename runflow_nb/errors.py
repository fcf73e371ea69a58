"""One exception tree for everything the toolkit raises.

No httpx, PyAV or SQLAlchemy exception escapes the public API: each is mapped at the boundary
to one of these. Messages never contain the API key.

    RunflowError
    ├── ValidationError          request refused before any network call (lists every issue)
    ├── ConfigurationError       missing or unusable settings (e.g. a bad base URL)
    ├── UsageError               an argument the call cannot use (an unknown column, a wrong
    │                            type, a run of another experiment); nothing was changed
    ├── APIError                 the server answered with an error envelope
    │   ├── InvalidRequestError      400 / 422
    │   ├── AuthenticationError      401 / 403
    │   ├── InsufficientCreditError  402 INSUFFICIENT_CREDIT
    │   ├── NotFoundError            404 RUN_NOT_FOUND
    │   ├── ConflictError            409
    │   ├── RateLimitError           429 RATE_LIMITED (after retries)
    │   └── ServerError              5xx, MODEL_UNAVAILABLE (after retries)
    ├── NetworkError             no answer (connect, read, protocol) after retries
    │   └── RunMayExistError         a create may have made the run; no look-up sees it yet
    ├── RunFailedError           the run ended failed / canceled (not billed)
    ├── RunTimeoutError          waited longer than the total timeout; the run may still finish
    ├── DownloadError            artifact truncated, hash mismatch, or refused URL
    │   ├── ExpiredURLError          the provider's presigned URL no longer works
    │   └── NoOutputError            "succeeded" without a video URL: a billed server fault
    ├── BudgetExceededError      the next run would exceed the sweep budget
    └── UnexpectedError          anything else that went wrong inside (a bug, an unforeseen OS
                                 failure); the original exception is chained as ``__cause__``

    KeyboardInterrupt
    └── SweepInterrupted         Ctrl-C / Kernel ▸ Interrupt stopped a sweep: nothing more was
                                 submitted; says what still runs on the server and may cost
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "APIError",
    "AuthenticationError",
    "BudgetExceededError",
    "ConfigurationError",
    "ConflictError",
    "DownloadError",
    "ExpiredURLError",
    "InsufficientCreditError",
    "InvalidRequestError",
    "Issue",
    "NetworkError",
    "NoOutputError",
    "NotFoundError",
    "RateLimitError",
    "RunFailedError",
    "RunMayExistError",
    "RunTimeoutError",
    "RunflowError",
    "ServerError",
    "SweepInterrupted",
    "UnexpectedError",
    "UsageError",
    "ValidationError",
    "library_error",
]


class RunflowError(Exception):
    """Base of every error raised by runflow_nb.

    In IPython and Jupyter a library error reads in one screen: what was wrong and the fix (the
    message), and the line of your code that called the library; ``%tb`` then shows the full chain.
    Plain Python, papermill and nbconvert show the usual traceback.
    """

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for this error: the message first; the full traceback on ``%tb``
        (IPython asks a second time for the same error)."""
        if getattr(self, "_rf_shown", False):
            return _full_traceback(self)
        self._rf_shown = True
        return _short_traceback(self)


@dataclass(frozen=True)
class Issue:
    """One problem with a request: the field, what is wrong, and how to fix it."""

    field: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" + (f" — {self.fix}" if self.fix else "")


class ValidationError(RunflowError, ValueError):
    """The request breaks one or more documented limits; nothing was sent.

    ``issues`` holds every problem found, not only the first.
    """

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = list(issues)
        n = len(self.issues)
        head = f"{n} problem{'s' if n != 1 else ''} with the request (nothing was sent):"
        super().__init__("\n".join([head, *(f"  - {i}" for i in self.issues)]))

    @property
    def fields(self) -> list[str]:
        return [i.field for i in self.issues]


class ConfigurationError(RunflowError):
    """A setting is missing or unusable."""


class UsageError(RunflowError, ValueError):
    """An argument the call cannot use: an unknown column, a value of the wrong type, a run that is
    not the experiment's. Nothing was changed and nothing was sent; the message names the argument."""


class APIError(RunflowError):
    """The API answered with an error. Carries its code, message, HTTP status and request id."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        errors: list[Any] | None = None,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.errors = errors or []
        super().__init__(message)

    def __str__(self) -> str:
        parts = [f"HTTP {self.status_code}" if self.status_code else None, self.code, self.message]
        text = ": ".join(p for p in parts[:2] if p)
        text = f"{text}: {self.message}" if text else self.message
        for e in self.errors[:10]:
            text += f"\n  - {e}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class InvalidRequestError(APIError):
    """400 / 422: the server refused the input."""


class AuthenticationError(APIError):
    """401 / 403: the key is missing, wrong, or lacks access."""


class InsufficientCreditError(APIError):
    """402: the account has no credit left for this run."""


class NotFoundError(APIError):
    """404: no such run (or model)."""


class ConflictError(APIError):
    """409: the request conflicts with the current state."""


class RateLimitError(APIError):
    """429 after every retry was used."""


class ServerError(APIError):
    """5xx (including 503 MODEL_UNAVAILABLE) after every retry was used."""


class NetworkError(RunflowError):
    """The server could not be reached or the answer was lost, after retries."""


class RunMayExistError(NetworkError):
    """A create may have reached the server (a lost answer, a 5xx) and no look-up has seen the run
    yet. "Not visible yet" is never "not made": the run is never sent again until it is seen or the
    list has had time to show it (look it up again by ``client_ref`` first)."""

    def __init__(self, message: str, *, client_ref: str | None = None) -> None:
        self.client_ref = client_ref
        super().__init__(message)


class RunFailedError(RunflowError):
    """The run ended without a video (failed or canceled). Failed runs are not billed."""

    def __init__(self, message: str, *, run: Any = None) -> None:
        self.run = run
        super().__init__(message)


class RunTimeoutError(RunflowError):
    """Waited longer than the total timeout. The run may still finish: wait on it again."""

    def __init__(self, message: str, *, run: Any = None) -> None:
        self.run = run
        super().__init__(message)


class DownloadError(RunflowError):
    """An artifact could not be stored intact (truncated, hash mismatch, refused URL, disk full).

    ``final`` is True when retrying cannot help (a declared size too big for the limit or the disk).
    """

    final: bool = False


class NoOutputError(DownloadError):
    """The run reported success but the server gave no video URL: a server fault, and it is billed."""

    def __init__(self, message: str, *, run: Any = None) -> None:
        self.run = run
        super().__init__(message)


class ExpiredURLError(DownloadError):
    """The provider's output URL has expired; the video cannot be fetched again from it."""


class BudgetExceededError(RunflowError):
    """The next run would take spending past the budget."""


class UnexpectedError(RunflowError):
    """Something failed that the toolkit has no better name for; ``__cause__`` holds the original."""


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by Ctrl-C or Kernel ▸ Interrupt. ``summary`` is its :class:`SweepSummary`.

    Not a :class:`RunflowError`: an interrupt must keep unwinding like any ``KeyboardInterrupt``.
    """

    def __init__(self, message: str, *, summary: Any = None) -> None:
        self.summary = summary
        super().__init__(message)

    # In a notebook it reads like a library error: what stopped and what to do, not the wait it broke.
    _render_traceback_ = RunflowError._render_traceback_


_RED, _GREEN, _DIM, _RESET = "\x1b[0;31m", "\x1b[0;32m", "\x1b[2m", "\x1b[0m"


def _short_traceback(exc: BaseException) -> list[str]:
    """The error's name and message, where the user's code called the library, and how to see more."""
    lines = [f"{_RED}{type(exc).__name__}{_RESET}: {exc}"]
    cause = exc.__cause__ or exc.__context__
    if cause is not None and not isinstance(cause, (RunflowError, KeyboardInterrupt)):  # an interrupt says nothing more
        lines.append(f"{_DIM}(caused by {type(cause).__name__}: {str(cause)[:200]}){_RESET}")
    caller = _callers_line(exc)
    if caller:
        lines.append(f"{_GREEN}raised by{_RESET} {caller}")
    lines.append(f"{_DIM}The library's internals are hidden: run %tb for the full traceback.{_RESET}")
    return lines


def _callers_line(exc: BaseException) -> str:
    """The last frame outside runflow_nb before the first frame inside it (the notebook cell or script
    that called the library, not a standard-library helper the library called later), as text."""
    import linecache
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    found = ""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        path = os.path.abspath(code.co_filename)
        if path.startswith(here + os.sep):
            if found:  # the caller is known: later outside frames are the library's own helpers
                break
        else:
            text = linecache.getline(code.co_filename, tb.tb_lineno).strip()
            where = "a cell" if "ipykernel_" in path or code.co_filename.startswith("<") else code.co_filename
            found = f"{where}, line {tb.tb_lineno}" + (f": {text}" if text else "")
        tb = tb.tb_next
    return found


def _full_traceback(exc: BaseException) -> list[str]:
    """IPython's own traceback of ``exc`` (its chain included), else Python's."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            return list(shell.InteractiveTB.structured_traceback(type(exc), exc, exc.__traceback__))
    except Exception:  # any trouble in the pretty form: Python's plain one below
        pass
    import traceback

    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).splitlines()


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: InsufficientCreditError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidRequestError,
    429: RateLimitError,
}


def api_error_from_response(
    status_code: int, body: Any, *, request_id: str | None = None
) -> APIError:
    """Build the right :class:`APIError` from an HTTP status and a (parsed) error body.

    Accepts the documented envelope ``{code, message, errors[]}`` and FastAPI-style
    ``{detail: ...}`` bodies; anything else becomes a generic message.
    """
    code: str | None = None
    message = ""
    errors: list[Any] = []
    if isinstance(body, dict):
        code = body.get("code") if isinstance(body.get("code"), str) else None
        message = str(body.get("message") or "")
        raw_errors = body.get("errors") or []
        detail = body.get("detail")
        if isinstance(detail, list):
            raw_errors = [*raw_errors, *detail]
        elif isinstance(detail, str) and not message:
            message = detail
        errors = [_describe_error_item(e) for e in raw_errors] if isinstance(raw_errors, list) else []
        request_id = request_id or (body.get("request_id") if isinstance(body.get("request_id"), str) else None)
    elif isinstance(body, str):
        message = body[:500]
    if not message:
        message = {
            429: "rate limited",
            503: "model unavailable",
        }.get(status_code, "the server returned an error")
    cls = _BY_STATUS.get(status_code, ServerError if status_code >= 500 else APIError)
    return cls(message, status_code=status_code, code=code, request_id=request_id, errors=errors)


def _describe_error_item(item: Any) -> str:
    if isinstance(item, dict):
        loc = item.get("loc") or item.get("field") or item.get("path")
        if isinstance(loc, list):
            loc = ".".join(str(x) for x in loc)
        msg = item.get("msg") or item.get("message") or item
        return f"{loc}: {msg}" if loc else str(msg)
    return str(item)


def library_error(exc: BaseException) -> RunflowError:
    """``exc`` as a library error, for the public API's boundary (chain the original with ``from``):
    OSError → :class:`DownloadError`, an unusable URL → :class:`ConfigurationError`, httpx's
    errors → :class:`NetworkError`, anything else → :class:`UnexpectedError`."""
    if isinstance(exc, RunflowError):
        return exc
    import httpx  # already imported by whoever could raise its errors

    if isinstance(exc, OSError):
        return DownloadError(f"could not write the video: {exc.strerror or exc}")
    if isinstance(exc, httpx.InvalidURL):
        return ConfigurationError(f"an unusable URL: {str(exc)[:200]}")
    if isinstance(exc, httpx.HTTPError):
        return NetworkError(f"{type(exc).__name__}: {str(exc)[:200]}")
    return UnexpectedError(f"{type(exc).__name__}: {str(exc)[:300]}")
