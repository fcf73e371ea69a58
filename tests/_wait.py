"""Waiting on state in tests: poll until a check holds, with room for a loaded machine."""

from __future__ import annotations

import time
from typing import Any


def until(check: Any, *, deadline_s: float = 120.0, what: str = "state") -> Any:
    """Poll ``check()`` until it returns something truthy (state, never timing, decides)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"{what} never came within {deadline_s} s")
