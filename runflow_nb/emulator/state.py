"""What the emulator remembers beside the simulator's runs: counters, assets, the Idempotency-Key
cache, batches and a journal of every create request (how each one was answered).

The runs themselves (statuses, outputs, the billing ledger) live in the
:class:`~runflow_nb.simulator.engine.Simulator`; this is the server's own bookkeeping, thread-safe.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EmulatorState", "IdempotencyRecord"]


@dataclass
class IdempotencyRecord:
    """The first answer to a request carrying an ``Idempotency-Key`` (None while it is being served)."""

    fingerprint: str
    route: str
    created: float
    status: int | None = None
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)


class EmulatorState:
    """Counters, assets, idempotency records, batches and the create journal, under one lock.

    >>> state = EmulatorState()
    >>> state.count("requests"); state.counts()["requests"]
    1
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self.assets: dict[str, dict[str, Any]] = {}
        self.hollow: dict[str, str] = {}  # run id -> the status it ends with, without outputs (faults)
        self.idempotency: dict[tuple[str, str], IdempotencyRecord] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.journal: list[dict[str, Any]] = []
        self.born: dict[str, float] = {}  # run or batch id -> when it was created (simulator clock)
        self.made: dict[str, str | None] = {}  # every run this server made, in order -> its client_ref
        self.others: set[str] = set()  # runs another caller made (the dupref fault), not the client under test
        self.secret = secrets.token_bytes(16)

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self._counts[key] = self._counts.get(key, 0) + n

    def counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self._counts)

    def note_run(self, run_id: str, client_ref: str | None, born: float, *, other_caller: bool = False) -> None:
        """Remember a run this server made (for the ledger's per-client_ref counts and the lags);
        ``other_caller``: made for another caller, not by a request of the client under test."""
        with self.lock:
            self.made[run_id] = client_ref
            self.born[run_id] = born
            if other_caller:
                self.others.add(run_id)

    def note_born(self, ident: str, born: float) -> None:
        with self.lock:
            self.born[ident] = born

    def born_at(self, ident: str) -> float | None:
        with self.lock:
            return self.born.get(ident)

    def made_runs(self) -> tuple[dict[str, str | None], set[str]]:
        """Every run made → its client_ref, and the ids of those made for another caller."""
        with self.lock:
            return dict(self.made), set(self.others)

    def note_create(self, *, route: str, via: str, ids: list[str], idempotency_key: str | None,
                    client_refs: list[str | None], answer: str = "201") -> None:
        """Journal one create request: ``via`` is ``created``, ``replayed`` (by Idempotency-Key) or
        ``conflict`` (same key, other body: 409); ``answer`` is what the caller was shown: ``201``,
        ``409``, or the create fault that broke it (``drop``, ``create500``, ``create500kept``)."""
        with self.lock:
            self.journal.append({"at": time.time(), "route": route, "via": via, "ids": list(ids),
                                 "idempotency_key": idempotency_key, "client_refs": list(client_refs),
                                 "answer": answer})
            self._counts[f"creates:{via}"] = self._counts.get(f"creates:{via}", 0) + 1

    def creates(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.journal]
