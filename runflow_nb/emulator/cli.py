"""``runflow-nb emulator`` (serve until interrupted) and :func:`spawn` (the same in a child process)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..simulator.engine import Simulator
from .app import Emulator
from .base import lag_seconds
from .faults import FAULT_HELP, FaultPlan
from .idempotency import KEY_REPLAY_MODES
from .server import EmulatorServer

__all__ = ["emulator_main", "spawn"]


@contextlib.contextmanager
def spawn(*, latency: float = 0.3, faults: str | None = None, workdir: str | Path | None = None,
          api_key: str | None = None, list_lag_s: float = 0.0, get_lag_s: float = 0.0,
          key_replay: str = "all") -> Iterator[tuple[str, Any]]:
    """``runflow-nb emulator --port 0`` in a child process, so its encoding never shares the caller's
    GIL; yields ``(url, process)`` once it serves and stops it on exit.

    >>> with spawn(latency=1.0) as (url, _proc):                            # doctest: +SKIP
    ...     client = runflow_nb.Client(api_key="rf_test", base_url=url)
    """
    import os
    import subprocess

    cmd = [sys.executable, "-m", "runflow_nb.emulator", "--host", "127.0.0.1", "--port", "0",
           "--latency", str(latency)]
    if faults:
        cmd += ["--faults", faults]
    if workdir is not None:
        cmd += ["--workdir", os.fspath(workdir)]
    if api_key is not None:
        cmd += ["--api-key", api_key]
    cmd += ["--list-lag-s", str(list_lag_s), "--get-lag-s", str(get_lag_s), "--key-replay", key_replay]
    env = {k: v for k, v in os.environ.items() if k not in ("RUNFLOW_API_KEY", "RUNFLOW_BASE_URL")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**env, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()  # the server prints its URL first, once it listens
        if not url.startswith("http://"):
            raise RuntimeError(f"the emulator did not start (printed {url!r}, exit {proc.poll()})")
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def emulator_main(argv: list[str] | None = None) -> int:
    """``runflow-nb emulator``: serve the emulator until interrupted. Prints the base URL first."""
    parser = argparse.ArgumentParser(
        prog="runflow-nb emulator", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve Runflow's API contract on loopback, backed by the offline simulator (real MP4s). "
                    "Point RUNFLOW_BASE_URL at the printed URL.", epilog=FAULT_HELP)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port (default 8787; 0 = any free port)")
    parser.add_argument("--latency", type=float, default=None,
                        help="simulated seconds per run, a floor (default: RUNFLOW_SIMULATOR_LATENCY, else 0.2)")
    parser.add_argument("--faults", default=None, metavar="SPEC", help="faults to inject (syntax below)")
    parser.add_argument("--api-key", default=None, metavar="K", help="require exactly this bearer key")
    parser.add_argument("--workdir", default=None, metavar="DIR", help="where rendered videos go (default: temp)")
    parser.add_argument("--offline-images", choices=("placeholder", "reject"), default="placeholder",
                        help="unreachable image URLs: use a placeholder (default) or refuse with 422")
    parser.add_argument("--url-ttl", type=float, default=3 * 86400, metavar="S",
                        help="seconds an output URL stays valid (default 3 days)")
    parser.add_argument("--balance", type=float, default=10_000.0, metavar="USD", help="starting credit")
    parser.add_argument("--no-idempotency", action="store_true",
                        help="serve without the Idempotency-Key middleware (a retried create makes a new run); "
                             "the same as --key-replay none")
    parser.add_argument("--key-replay", choices=KEY_REPLAY_MODES, default=None,
                        help="which POST routes honour Idempotency-Key: all (as documented, the default), "
                             "creates (the run and batch creates only), all_but_single_create (every POST but "
                             "POST /v1/models/{model}/runs), none")
    parser.add_argument("--list-lag-s", type=float, default=0.0, metavar="S",
                        help="a new run shows in GET /v1/runs only S seconds after it was created (default 0)")
    parser.add_argument("--get-lag-s", type=float, default=0.0, metavar="S",
                        help="GET /v1/runs/{id} (and a new batch's GETs) answer 404 RUN_NOT_FOUND for S seconds "
                             "after the create (read-after-create lag; default 0)")
    parser.add_argument("--no-batches", action="store_true",
                        help="answer batch creates 422, as a model without batch support does")
    parser.add_argument("--cancel-spelling", choices=("canceled", "cancelled"), default="canceled",
                        help="how canceled runs are spelled (newer docs: canceled; older: cancelled)")
    parser.add_argument("--list-cursor", choices=("next_pq", "next"), default="next_pq",
                        help="the run list's cursor spelling: next_pq/prev_pq tokens or next/previous links")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    from .. import settings

    args.latency = settings.simulator_latency(args.latency)
    try:
        plan = FaultPlan.parse(args.faults)
        list_lag_s, get_lag_s = lag_seconds(args.list_lag_s, "--list-lag-s"), lag_seconds(args.get_lag_s, "--get-lag-s")
    except ValueError as exc:
        parser.error(str(exc))
    if args.no_idempotency and args.key_replay not in (None, "none"):
        parser.error(f"--no-idempotency and --key-replay {args.key_replay} disagree: pass --key-replay only")
    key_replay = "none" if args.no_idempotency else args.key_replay or "all"
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    sim = Simulator(latency=args.latency, workdir=args.workdir, url_ttl_s=args.url_ttl, balance_usd=args.balance)
    emu = Emulator(simulator=sim, faults=plan, api_key=args.api_key, offline_images=args.offline_images,
                   key_replay=key_replay, list_lag_s=list_lag_s, get_lag_s=get_lag_s, batches=not args.no_batches,
                   cancel_spelling=args.cancel_spelling, list_cursor_style=args.list_cursor)
    try:
        server = EmulatorServer(emu, host=args.host, port=args.port)
    except OSError as exc:
        sim.close()
        print(f"runflow-nb emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread
            signal.signal(sig, lambda *_: stop.set())
    print(server.url, flush=True)
    print(f"runflow-nb emulator: serving {server.url} (latency {args.latency:g} s, faults: {plan}, "
          f"key replay: {key_replay}, list lag {list_lag_s:g} s, get lag {get_lag_s:g} s, "
          f"videos in {sim.workdir}); Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.close()
        sim.close()
    return 0


