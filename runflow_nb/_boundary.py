"""The error boundary of the public API: only library errors (:class:`~runflow_nb.errors.RunflowError`)
leave a public method; anything else is mapped to one and chained."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from .errors import RunflowError, UsageError, library_error

__all__ = ["library_errors_only", "public"]

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def library_errors_only(call: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None = None
                        ) -> Iterator[None]:
    """Let a :class:`RunflowError` through as it is; map any other exception (chained to it).
    With ``call`` (the function and its arguments), a call the signature refuses (a misspelt keyword,
    a missing argument) becomes a :class:`~runflow_nb.errors.UsageError` that names the argument."""
    try:
        yield
    except RunflowError:
        raise
    except Exception as exc:
        misuse = bad_call(*call) if call is not None and isinstance(exc, TypeError) else None
        raise (misuse or library_error(exc)) from exc


def bad_call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> UsageError | None:
    """Why ``fn(*args, **kwargs)`` does not fit ``fn``'s signature (with the nearest argument name for
    a misspelt keyword), or None when it fits (the TypeError came from inside)."""
    try:
        sig = inspect.signature(fn)
        sig.bind(*args, **kwargs)
    except TypeError as exc:
        import difflib

        name = getattr(fn, "__qualname__", getattr(fn, "__name__", "the call"))
        params = [p for p in sig.parameters if p not in ("self", "cls")]
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
        unknown = [k for k in kwargs if k not in sig.parameters] if not takes_any else []
        for key in unknown:
            close = difflib.get_close_matches(key, params, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}=?" if close else f"it takes: {', '.join(params)}"
            return UsageError(f"{name}() has no argument {key!r}: {hint}")
        return UsageError(f"{name}(): {exc}")
    except ValueError:  # no signature to read (a builtin)
        return None
    return None


def public(fn: F) -> F:
    """Wrap a public method (plain, coroutine, generator or async generator) in :func:`library_errors_only`."""
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def coroutine(*args: Any, **kwargs: Any) -> Any:
            with library_errors_only((fn, args, kwargs)):
                return await fn(*args, **kwargs)

        return coroutine  # type: ignore[return-value]
    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def async_generator(*args: Any, **kwargs: Any) -> Any:
            with library_errors_only((fn, args, kwargs)):
                async for item in fn(*args, **kwargs):
                    yield item

        return async_generator  # type: ignore[return-value]
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Any:
            with library_errors_only((fn, args, kwargs)):
                return (yield from fn(*args, **kwargs))

        return generator  # type: ignore[return-value]

    @functools.wraps(fn)
    def plain(*args: Any, **kwargs: Any) -> Any:
        with library_errors_only((fn, args, kwargs)):
            return fn(*args, **kwargs)

    return plain  # type: ignore[return-value]
