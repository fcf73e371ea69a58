"""Helpers for the fault, crash and secrets suites, and the sweep a crash test SIGKILLs.

As a module: :func:`emulator_process` (``runflow-nb emulator`` in its own process, on a port it
picks itself), small readers of the emulator's test hooks, and :func:`record` (one line per suite
in ``test-artifacts/harness-summary.txt`` so CI logs can ``cat`` it).

As a script it runs one sweep against an emulator and can SIGKILL *itself* at a precise point::

    python tests/_sweep_child.py --url URL --store S --artifacts A --seeds 0-5 --kill-at after_submit:2

Kill points (``NAME:N`` = at the N-th time the point is reached, default 1):

* ``before_submit``  the row says ``submitting`` (committed) but the POST was never sent
* ``after_submit``   the server created the run and answered; the answer is never processed
* ``mid_download``   the first chunk of a video is on disk (in the ``.part`` file), the rest is not
* ``mid_store_write`` an ``UPDATE runs`` ran inside its transaction, before ``COMMIT``

Without ``--kill-at`` the sweep runs to the end (a crash test's restart, or a victim of a kill
from outside at a random time). ``ready`` is printed once the imports are done.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = ROOT / "test-artifacts" / "harness-summary.txt"
PROMPT = "character1 gallops along the shore"
KILL_POINTS = ("before_submit", "after_submit", "mid_download", "mid_store_write")


# --- the emulator in its own process ------------------------------------------------------------


class EmulatorProcess:
    """A running ``python -m runflow_nb.emulator``; ``url`` is the address it printed."""

    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc, self.url = proc, url

    def get(self, path: str) -> Any:
        import httpx

        return httpx.get(self.url + path, timeout=30).json()

    def ledger(self) -> dict[str, Any]:
        return self.get("/_emulator/ledger")  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        return self.get("/_emulator/stats")  # type: ignore[no-any-return]

    def run(self, remote_id: str) -> dict[str, Any]:
        """``GET /v1/runs/{id}``, retried through whatever faults the emulator is injecting."""
        import httpx

        for _ in range(50):
            try:
                r = httpx.get(f"{self.url}/v1/runs/{remote_id}", headers={"Authorization": "Bearer harness"},
                              timeout=30)
            except httpx.TransportError:
                continue
            if r.status_code < 400:
                return r.json()  # type: ignore[no-any-return]
            if r.status_code != 429 and r.status_code < 500:
                r.raise_for_status()
        raise RuntimeError(f"could not read run {remote_id} from the emulator")

    def find(self, client_ref: str) -> list[dict[str, Any]]:
        """Runs the server holds under ``client_ref`` (no faults are configured when this is used)."""
        import httpx

        r = httpx.get(f"{self.url}/v1/runs", params={"q": f"client_ref:{client_ref}"},
                      headers={"Authorization": "Bearer harness"}, timeout=30)
        r.raise_for_status()
        return [i for i in r.json()["items"] if i.get("client_ref") == client_ref]

    def configure(self, **settings: Any) -> dict[str, Any]:
        import httpx

        return httpx.post(f"{self.url}/_emulator/config", json=settings, timeout=30).json()  # type: ignore[no-any-return]


@contextlib.contextmanager
def emulator_process(*, latency: float, faults: str | None = None, workdir: str | os.PathLike[str] | None = None,
                     api_key: str | None = None) -> Iterator[EmulatorProcess]:
    """``runflow-nb emulator --port 0`` in a child process (its work never shares our GIL)."""
    from runflow_nb.emulator import spawn

    with spawn(latency=latency, faults=faults, workdir=workdir, api_key=api_key) as (url, proc):
        yield EmulatorProcess(proc, url)


# --- reporting ------------------------------------------------------------------------------------


def record(line: str) -> None:
    """Print ``line`` and append it to ``test-artifacts/harness-summary.txt`` (CI ``cat``s it)."""
    print(line, flush=True)
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    with SUMMARY.open("a", encoding="utf-8") as fh:
        fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")


def parse_seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


# --- the child sweep ----------------------------------------------------------------------------------


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _install_kill_point(spec: str, store: Any) -> None:
    """Arrange for this process to SIGKILL itself at the ``spec`` point (see the module docstring)."""
    from runflow_nb.client import AsyncClient
    from runflow_nb.media.probe import HashingWriter

    name, _, nth = spec.partition(":")
    if name not in KILL_POINTS:
        raise SystemExit(f"unknown kill point {name!r}; known: {', '.join(KILL_POINTS)}")
    left = [int(nth or 1)]

    def reached() -> bool:
        left[0] -= 1
        return left[0] == 0

    if name == "before_submit":
        real_submit = AsyncClient.submit

        async def submit(self: Any, *args: Any, **kwargs: Any) -> Any:
            if reached():
                _die()
            return await real_submit(self, *args, **kwargs)

        AsyncClient.submit = submit  # type: ignore[method-assign]
    elif name == "after_submit":
        real_do = AsyncClient._do

        async def do(self: Any, action: Any) -> Any:
            out = await real_do(self, action)
            if (action.method == "POST" and action.url.endswith("/runs") and getattr(out, "status_code", 0) == 201
                    and reached()):
                _die()
            return out

        AsyncClient._do = do  # type: ignore[method-assign]
    elif name == "mid_download":
        real_write = HashingWriter.write

        def write(self: Any, chunk: Any) -> None:
            real_write(self, chunk)
            if self.size == len(chunk) and reached():  # the first chunk of a body
                self._file.flush()
                _die()

        HashingWriter.write = write  # type: ignore[method-assign]
    else:
        import sqlalchemy as sa

        @sa.event.listens_for(store.engine, "after_cursor_execute")
        def after(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
            if statement.lstrip().upper().startswith("UPDATE RUNS") and reached():
                _die()  # the UPDATE ran; its transaction never commits


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="one resumable sweep against an emulator (a crash-test victim)")
    ap.add_argument("--url", required=True)
    ap.add_argument("--key", default="rf_test_crash_harness")
    ap.add_argument("--store", required=True)
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--experiment", default="crash")
    ap.add_argument("--seeds", default="0-5")
    ap.add_argument("--duration", type=int, default=3)
    ap.add_argument("--resolution", default="720p")
    ap.add_argument("--concurrency", type=int, default=3)
    ap.add_argument("--image", required=True)
    ap.add_argument("--kill-at", default=None)
    a = ap.parse_args(argv)

    import runflow_nb as rf
    from runflow_nb.store.runstore import Store

    store = Store(a.store)
    if a.kill_at:
        _install_kill_point(a.kill_at, store)
    client = rf.Client(api_key=a.key, base_url=a.url, poll_interval=0.05, max_retries=4)
    exp = rf.Experiment(a.experiment, store=store, artifacts=a.artifacts, client=client)
    plan = rf.grid(prompt=PROMPT, images=[[a.image]], seed=parse_seeds(a.seeds), duration=a.duration,
                   resolution=a.resolution)
    print("ready", flush=True)
    exp.run(plan, concurrency=a.concurrency, progress=None)
    summary = exp.last_summary
    assert summary is not None
    print(json.dumps({"counts": summary.counts, "submitted": summary.submitted, "reattached": summary.reattached,
                      "reused": summary.reused}), flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
