"""Warnings the server attaches to a finished run, brought to the researcher.

A run can succeed and still not be what was asked for: the offline simulator (and the loopback
emulator) replace a reference image URL they cannot fetch with a generated placeholder, so the clip
does not show the reference. The server says so in the run's ``logs``; the client reads it there
(:attr:`runflow_nb.runs.Run.notices`) and the toolkit makes it visible: a :class:`RunNotice`
Python warning, the row's ``note`` in :meth:`Experiment.table`, and a ⚠ line under the clip.

>>> import warnings
>>> with warnings.catch_warnings(record=True) as seen:
...     warnings.simplefilter("always")
...     warn("01ab", ["image_urls[0]: https://example.invalid/horse.png could not be fetched"])
>>> str(seen[0].message)
'run 01ab: image_urls[0]: https://example.invalid/horse.png could not be fetched'
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Iterable
from typing import Any

_shown: set[str] = set()
_shown_lock = threading.Lock()

__all__ = ["RunNotice", "note_text", "show_once", "warn"]


class RunNotice(UserWarning):
    """A run finished, but the server warned about it (e.g. a reference replaced by a placeholder).

    >>> import warnings
    >>> warnings.simplefilter("error", RunNotice)   # make such runs stop a script  # doctest: +SKIP
    """


def note_text(messages: Iterable[str]) -> str:
    """The messages as one note (what the row's ``note`` column holds)."""
    return " · ".join(m.strip() for m in messages if m and m.strip())


def warn(run_id: str, messages: Iterable[str], *, stacklevel: int = 2) -> None:
    """One :class:`RunNotice` naming the run and what the server said."""
    text = note_text(messages)
    if text:
        warnings.warn(RunNotice(f"run {run_id}: {text}"), stacklevel=stacklevel + 1)


def show_once(key: str, text: str, *, stream: Any = None) -> bool:
    """Show ``text`` to the researcher once per process — once per kernel in Jupyter, once per CLI
    invocation — on stderr (``stream``); False when ``key`` was shown already. The one path for the
    toolkit's notices about itself (e.g. that runs use the offline simulator)."""
    with _shown_lock:
        if key in _shown:
            return False
        _shown.add(key)
    print(text, file=stream or sys.stderr, flush=True)
    return True
