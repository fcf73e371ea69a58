"""The error boundary of the public API: only library errors (:class:`~runflow_nb.errors.RunflowError`)
leave a public method; anything else is mapped to one and chained."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from .errors import RunflowError, library_error

__all__ = ["library_errors_only", "public"]

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def library_errors_only() -> Iterator[None]:
    """Let a :class:`RunflowError` through as it is; map any other exception (chained to it)."""
    try:
        yield
    except RunflowError:
        raise
    except Exception as exc:
        raise library_error(exc) from exc


def public(fn: F) -> F:
    """Wrap a public method (plain, coroutine, generator or async generator) in :func:`library_errors_only`."""
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def coroutine(*args: Any, **kwargs: Any) -> Any:
            with library_errors_only():
                return await fn(*args, **kwargs)

        return coroutine  # type: ignore[return-value]
    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def async_generator(*args: Any, **kwargs: Any) -> Any:
            with library_errors_only():
                async for item in fn(*args, **kwargs):
                    yield item

        return async_generator  # type: ignore[return-value]
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Any:
            with library_errors_only():
                return (yield from fn(*args, **kwargs))

        return generator  # type: ignore[return-value]

    @functools.wraps(fn)
    def plain(*args: Any, **kwargs: Any) -> Any:
        with library_errors_only():
            return fn(*args, **kwargs)

    return plain  # type: ignore[return-value]
