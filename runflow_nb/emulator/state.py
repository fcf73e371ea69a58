"""What the emulator remembers beside the simulator's runs: request counters and uploaded assets.

The runs themselves (statuses, outputs, the billing ledger) live in the
:class:`~runflow_nb.simulator.Simulator`; this is the server's own bookkeeping, thread-safe.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

__all__ = ["EmulatorState"]


class EmulatorState:
    """Counters (requests, faults by kind, placeholders) and the asset table, under one lock.

    >>> state = EmulatorState()
    >>> state.count("requests"); state.counts()["requests"]
    1
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self.assets: dict[str, dict[str, Any]] = {}
        self.hollow: dict[str, str] = {}  # run id -> the status it ends with, without outputs (faults)
        self.secret = secrets.token_bytes(16)

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self._counts[key] = self._counts.get(key, 0) + n

    def counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self._counts)
