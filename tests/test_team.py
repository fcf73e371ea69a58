"""Team scale: several processes sweep into one store at once (PostgreSQL, and SQLite in WAL).

Every sweeping process is a real OS process (multiprocessing ``spawn``) with its own client, and the
emulator runs in a process of its own on loopback (``python -m runflow_nb.emulator``), so the
processes share nothing but the store and the HTTP API, as on several machines. The emulator's
ledger (``GET /_emulator/ledger``) is the bill: it must show each run paid for once.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _pg import pg_schema_url

from runflow_nb.store.runstore import Store

PG_URL = os.environ.get("RUNFLOW_TEST_PG_URL")
NO_PG = ("set RUNFLOW_TEST_PG_URL=postgresql://... to run the team tests against PostgreSQL "
         "(scripts/start_postgres.sh starts one)")
PROMPT = "character1 trots along the beach at dawn"
RUNS_PER_PROCESS = 50
pytestmark = pytest.mark.slow


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def emulator_url(tmp_path: Path) -> Iterator[str]:
    """The emulator in its own process on a free loopback port (latency 0.05 s, no faults)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "runflow_nb.emulator", "--port", "0", "--latency", "0.05",
         "--workdir", str(tmp_path / "emulator")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()  # the emulator prints its base URL first
        assert url.startswith("http://127.0.0.1:"), f"the emulator did not start (printed {url!r})"
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg_schema_url("rf_team") as url:
        yield url


# --- one sweeping process -------------------------------------------------------------------------


def _sweep_worker(store_url: str, base_url: str, experiment: str, seeds: list[int], images: list[str],
                  artifacts: str, barrier: Any, out: Any) -> None:
    """Sweep ``seeds`` into the store, then report the sweep's summary (or the traceback)."""
    try:
        from runflow_nb import Client, Experiment, grid

        client = Client(api_key="rf_test_x", base_url=base_url, poll_interval=0.05)
        exp = Experiment(experiment, store=store_url, artifacts=artifacts, client=client)
        # One run a prompt variant rather than a seed: each seed is a picture of its own for the
        # simulator to encode, and pictures are not what these tests are about.
        plan = grid(prompt=[f"{PROMPT} (take {s})" for s in seeds], images=images, seed=1, duration=3,
                    resolution="720p")
        barrier.wait(timeout=900)  # every process starts sweeping at the same moment (a hang guard only)
        exp.run(plan, concurrency=8, progress=None)
        summary = exp.last_summary
        assert summary is not None
        out.put({"ok": True, "pid": os.getpid(), "counts": summary.counts, "submitted": summary.submitted,
                 "reused": summary.reused, "reattached": summary.reattached, "messages": summary.messages})
        exp.store.close()
    except BaseException:
        out.put({"ok": False, "pid": os.getpid(), "error": traceback.format_exc()})
        raise


def _sweep_in_processes(store_url: str, base_url: str, experiment: str, seed_lists: list[list[int]],
                        images: list[str], artifacts: Path, *, timeout: float = 1200) -> list[dict[str, Any]]:
    """Run one sweeping process per seed list. ``timeout`` only guards against a hang: on a loaded
    2-core machine four processes of 50 runs each take minutes, and no assertion here is about time."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(seed_lists))
    out = ctx.Queue()
    procs = [ctx.Process(target=_sweep_worker, args=(store_url, base_url, experiment, seeds, images,
                                                     str(artifacts), barrier, out))
             for seeds in seed_lists]
    for p in procs:
        p.start()
    results: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout
        while len(results) < len(procs):
            results.append(out.get(timeout=max(1.0, deadline - time.monotonic())))
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()
    failures = [r["error"] for r in results if not r["ok"]]
    assert not failures, "a sweeping process failed:\n" + "\n".join(failures)
    assert [p.exitcode for p in procs] == [0] * len(procs)
    return results


def _ledger(base_url: str) -> list[dict[str, Any]]:
    reply = httpx.get(f"{base_url}/_emulator/ledger", timeout=10)
    reply.raise_for_status()
    return list(reply.json()["billed"])


def _check_sweep(store_url: str, base_url: str, experiment: str, *, runs: int) -> None:
    """``runs`` rows, each a distinct key, all succeeded with a file, each billed exactly once."""
    with Store(store_url) as store:
        frame = store.table(experiment)
        assert store.integrity_check() == []
    assert len(frame) == runs and frame["run_key"].nunique() == runs and frame["run_id"].nunique() == runs
    bad = frame[frame["status"] != "succeeded"]
    assert bad.empty, bad[["run_id", "status", "error_code", "error_message"]].to_string()
    assert frame["video_path"].map(lambda p: Path(p).is_file()).all()
    assert frame["remote_id"].nunique() == runs
    billed = _ledger(base_url)
    billed_ids = [entry["run_id"] for entry in billed]
    assert len(billed_ids) == len(set(billed_ids)) == runs, f"{len(billed_ids)} billed for {runs} runs"
    assert set(billed_ids) == set(frame["remote_id"])


# --- the tests ------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_four_processes_sweep_200_runs_into_one_postgres_store(
    pg_url: str, emulator_url: str, ref_images: list[Path], tmp_path: Path
) -> None:
    Store(pg_url).close()  # created up front; opening it concurrently is covered in test_store
    seed_lists = [list(range(1000 * w, 1000 * w + RUNS_PER_PROCESS)) for w in range(4)]
    results = _sweep_in_processes(pg_url, emulator_url, "team", seed_lists, [str(ref_images[0])],
                                  tmp_path / "artifacts")
    assert sum(r["submitted"] for r in results) == 4 * RUNS_PER_PROCESS
    _check_sweep(pg_url, emulator_url, "team", runs=4 * RUNS_PER_PROCESS)


@pytest.mark.postgres
def test_four_processes_sweeping_the_same_plan_pay_for_each_run_once(
    pg_url: str, emulator_url: str, ref_images: list[Path], tmp_path: Path
) -> None:
    Store(pg_url).close()
    seeds = list(range(RUNS_PER_PROCESS))
    results = _sweep_in_processes(pg_url, emulator_url, "same", [seeds] * 4, [str(ref_images[0])],
                                  tmp_path / "artifacts")
    # The run key's unique constraint gives one row a key; the runner's compare-and-set claim
    # (Store.transition, planned -> submitting) lets exactly one process submit it.
    _check_sweep(pg_url, emulator_url, "same", runs=RUNS_PER_PROCESS)
    assert sum(r["submitted"] for r in results) == RUNS_PER_PROCESS
    left = [m for r in results for m in r["messages"] if "left to it" in m]
    assert len(left) == 3 * RUNS_PER_PROCESS - sum(r["reused"] for r in results)  # every run once


def test_two_processes_sweep_into_one_sqlite_store_in_wal(
    emulator_url: str, ref_images: list[Path], tmp_path: Path
) -> None:
    url = str(tmp_path / "team.sqlite")
    seed_lists = [list(range(1000 * w, 1000 * w + RUNS_PER_PROCESS)) for w in range(2)]
    results = _sweep_in_processes(url, emulator_url, "wal", seed_lists, [str(ref_images[0])],
                                  tmp_path / "artifacts")
    assert not any("locked" in m for r in results for m in r["messages"])
    _check_sweep(url, emulator_url, "wal", runs=2 * RUNS_PER_PROCESS)


def test_two_background_sweeps_of_one_plan_in_one_kernel_submit_each_run_once(
    emulator_server: Any, ref_images: list[Path], tmp_path: Path
) -> None:
    """Same process, same owner: only the compare-and-set claim can keep the second sweep out."""
    from runflow_nb import Client, Experiment, grid

    url = str(tmp_path / "kernel.sqlite")
    plan = grid(prompt=PROMPT, images=[str(ref_images[0])], seed=range(12), duration=3, resolution="720p")
    exps = [Experiment("twice", store=url, artifacts=tmp_path / "artifacts",
                       client=Client(api_key="rf_test_x", base_url=emulator_server.url, poll_interval=0.05))
            for _ in range(2)]
    handles = [exp.run(plan, concurrency=6, background=True, progress=None) for exp in exps]
    for handle in handles:
        handle.wait(timeout=60)
    assert sum(h.summary.submitted for h in handles) == 12
    _check_sweep(url, emulator_server.url, "twice", runs=12)
