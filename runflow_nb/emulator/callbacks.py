"""Run-end callbacks: a create with ``callback_url`` gets a POST there when its run ends.

The documented envelope ``{event, run_id, status, output, duration_ms, created_at, completed_at,
metadata}`` with ``event`` one of ``run.completed``, ``run.failed``, ``run.cancelled`` (two l) and
``run.partial_succeeded``; ``Runflow-Signature`` is the hex HMAC-SHA256 of the raw body under
:attr:`CallbackSender.secret` (the service's comes from ``POST /v1/callback-secrets``). A failed
delivery is retried a few times. Only a served emulator (``runflow-nb emulator``, :func:`serve`)
delivers: the in-process one behind the offline simulator never reaches the network.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import EmulatorBase

__all__ = ["EVENTS", "CallbackSender"]

EVENTS = {"succeeded": "run.completed", "failed": "run.failed", "canceled": "run.cancelled",
          "cancelled": "run.cancelled", "partial_succeeded": "run.partial_succeeded"}


class CallbackSender:
    """Watches runs created with a ``callback_url`` and POSTs each one's end there, once."""

    poll_s = 0.2
    attempts = 3

    def __init__(self, emulator: EmulatorBase, *, secret: str = "emulator-callback-secret") -> None:
        self.emulator = emulator
        self.secret = secret
        self.enabled = False  # set by a served emulator
        self.sent: list[dict[str, Any]] = []  # {"url", "status_code" | "error", "body"} per delivery
        self._pending: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, run_id: str, url: str | None) -> None:
        if not url or not self.enabled:
            return
        with self._lock:
            self._pending[run_id] = url
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="runflow-emulator-callbacks", daemon=True)
                self._thread.start()

    def close(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            with self._lock:
                pending = dict(self._pending)
            for run_id, url in pending.items():
                try:
                    run = self.emulator.present(self.emulator.simulator.get(run_id, base_url=self.emulator.base_url))
                except Exception:  # a run the simulator no longer holds: nothing to report
                    self._forget(run_id)
                    continue
                event = EVENTS.get(str(run.get("status_code")))
                if event is None:
                    continue
                self._forget(run_id)
                self._post(url, {"event": event, "run_id": run_id, "status": run.get("status_code"),
                                 "output": run.get("output"), "duration_ms": run.get("duration_ms"),
                                 "created_at": run.get("created_at"), "completed_at": run.get("completed_at"),
                                 "metadata": run.get("metadata")})

    def _forget(self, run_id: str) -> None:
        with self._lock:
            self._pending.pop(run_id, None)

    def _post(self, url: str, envelope: dict[str, Any]) -> None:
        import httpx

        body = json.dumps(envelope, separators=(",", ":")).encode()
        signature = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "Runflow-Signature": signature}
        for _ in range(self.attempts):
            try:
                r = httpx.post(url, content=body, headers=headers, timeout=5.0)
            except httpx.HTTPError as exc:
                outcome: dict[str, Any] = {"error": type(exc).__name__}
            else:
                outcome = {"status_code": r.status_code}
                if r.status_code < 500:
                    break
            if self._stop.wait(0.5):
                break
        with self._lock:
            self.sent.append({"url": url, **outcome, "body": envelope})
