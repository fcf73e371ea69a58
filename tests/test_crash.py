"""SIGKILL a sweep process, start it again: every planned run present once, none billed twice.

The sweep runs in a child process (``tests/_sweep_child.py``) against the emulator in another
one. The child SIGKILLs itself at an exact protocol point — before a submit is sent, after the
server created a run but before its answer is used, mid-download, inside an uncommitted store
write — or the test kills it from outside at random times (``random.Random(SEED)``, so a failing
schedule can be replayed). Then the same sweep is started again, to the end, and checked against
the emulator's billing ledger and SQLite's ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _sweep_child import PROMPT, EmulatorProcess, emulator_process, parse_seeds, record

from runflow_nb.media.probe import probe, sha256_file
from runflow_nb.store.runstore import Store

CHILD = Path(__file__).resolve().parent / "_sweep_child.py"
KEY = "rf_test_crash_harness"
SEED = 20240611
LATENCY = 0.5
SEEDS = "0-5"
EXPERIMENT = "crash"
# One sweep process lives at a time here, so short run leases are safe: a restart takes a killed
# process's runs over within seconds instead of the default minute.
CHILD_ENV = {**os.environ, "RUNFLOW_LEASE_S": "2"}


@pytest.fixture(scope="module")
def emulator_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("emulator")  # shared, so clips rendered once serve every scenario


@pytest.fixture
def emulator(emulator_workdir: Path) -> Iterator[EmulatorProcess]:
    with emulator_process(latency=LATENCY, workdir=emulator_workdir) as emu:
        yield emu


class Child:
    """Runs the child sweep; ``start`` returns the process once its imports are done."""

    def __init__(self, emu: EmulatorProcess, work: Path, image: Path, seeds: str = SEEDS) -> None:
        self.emu, self.work, self.image, self.seeds = emu, work, image, seeds
        self.store_path = work / "crash.sqlite"
        self.artifacts = work / "artifacts"
        self.starts = 0

    def start(self, kill_at: str | None = None) -> subprocess.Popen[str]:
        cmd = [sys.executable, str(CHILD), "--url", self.emu.url, "--key", KEY, "--store", str(self.store_path),
               "--artifacts", str(self.artifacts), "--experiment", EXPERIMENT, "--seeds", self.seeds,
               "--image", str(self.image), "--concurrency", "3"]
        if kill_at:
            cmd += ["--kill-at", kill_at]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CHILD_ENV)
        self.starts += 1
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            proc.kill()
            raise AssertionError(f"the child sweep did not start: {line!r} {proc.communicate()[1][-2000:]}")
        return proc

    def run(self, kill_at: str | None = None) -> tuple[int, str, str]:
        proc = self.start(kill_at)
        out, err = proc.communicate(timeout=60)
        return proc.returncode, out, err

    def long_after(self) -> None:
        """The restart comes long after the crash: a run whose create may have gone out (a row left
        ``submitting`` or ``unknown`` without a remote id) is listed by then if it was made, so "not
        listed" means "not made" and it may be sent again (a restart moments later keeps it unknown)."""
        from datetime import timedelta

        with Store(self.store_path) as store:
            for r in store.runs(EXPERIMENT):
                if r["status"] in ("submitting", "unknown") and not r["remote_id"] and r["submitted_at"]:
                    store.update_run(r["run_id"], submitted_at=r["submitted_at"] - timedelta(hours=1))

    def rows(self) -> list[dict[str, Any]]:
        with Store(self.store_path) as store:
            problems = store.integrity_check()
            assert problems == [], f"PRAGMA integrity_check: {problems}"
            return store.runs(EXPERIMENT)


def _check_final(child: Child) -> dict[str, Any]:
    """Every planned run once and succeeded; billed exactly once each; the store intact."""
    rows = child.rows()
    planned = len(parse_seeds(child.seeds))
    assert len(rows) == planned and len({r["run_key"] for r in rows}) == planned
    assert sorted(r["seed"] for r in rows) == parse_seeds(child.seeds)
    assert [r["status"] for r in rows] == ["succeeded"] * planned, [(r["status"], r["error_message"]) for r in rows]
    ledger = child.emu.ledger()
    billed = ledger["billed"]
    assert ledger["count"] == planned, f"billed {ledger['count']} runs for {planned} planned ones"
    assert len({e["client_ref"] for e in billed}) == len({e["run_id"] for e in billed}) == planned
    by_remote = {e["run_id"]: e for e in billed}
    for r in rows:
        assert r["remote_id"] in by_remote and by_remote[r["remote_id"]]["client_ref"] == r["client_ref"]
        remote = child.emu.run(r["remote_id"])
        assert remote["metadata"]["run_id"] == r["run_id"]
        out = remote["output"]["outputs"][0]
        assert sha256_file(r["video_path"]) == out["sha256"] == r["video_sha256"]
        assert probe(r["video_path"]).has_audio
    stats = child.emu.stats()
    assert stats["runs"] == planned, f"the server created {stats['runs']} runs for {planned} planned ones"
    return {"rows": rows, "ledger": ledger}


def _settled_run_count(emulator: EmulatorProcess) -> int:
    """The server's run count once a killed child's last requests (already in the socket when it
    died, served a moment later) have been handled: unchanged over a full second."""
    import time

    count, since = emulator.stats()["runs"], time.monotonic()
    while time.monotonic() - since < 1.0:
        time.sleep(0.1)
        now = emulator.stats()["runs"]
        if now != count:
            count, since = now, time.monotonic()
    return count


def _row_state(child: Child) -> tuple[list[dict[str, Any]], list[Path]]:
    return child.rows(), sorted(child.artifacts.rglob("*.part"))


KILL_POINTS = {
    "before_submit": "before_submit:2",
    "after_submit": "after_submit:2",
    "mid_download": "mid_download:2",
    "mid_store_write": f"mid_store_write:{random.Random(SEED).randint(3, 24)}",
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_at_a_protocol_point_then_restart_pays_once(point: str, emulator: EmulatorProcess,
                                                            ref_images: list[Path], tmp_path: Path) -> None:
    child = Child(emulator, tmp_path, ref_images[0])
    code, _out, err = child.run(KILL_POINTS[point])
    assert code == -signal.SIGKILL, f"the child was not killed at {point}: exit {code}\n{err[-2000:]}"

    rows, parts = _row_state(child)  # integrity_check runs in here, right after the crash
    submitting = [r for r in rows if r["status"] == "submitting"]
    if point == "before_submit":  # a row says submitting, but the server never heard of it
        assert any(not emulator.find(r["client_ref"]) for r in submitting), rows
    elif point == "after_submit":  # the server created the run; the store has no remote id yet
        assert any(emulator.find(r["client_ref"]) and not r["remote_id"] for r in submitting), rows
    elif point == "mid_download":  # half a video in a .part file, never at the final path
        assert parts, "no partial download on disk"
        assert all(not Path(r["video_path"] or "/nonexistent").name.endswith(".part") for r in rows)
    created_before = _settled_run_count(emulator)

    child.long_after()
    code, out, err = child.run()
    assert code == 0, err[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    final = _check_final(child)
    if point == "after_submit":
        assert summary["reattached"] >= 1  # found by client_ref, not submitted again
    assert summary["submitted"] == len(final["rows"]) - created_before
    stale = sorted(child.artifacts.rglob("*.part"))  # a crash's temp file is never swept up (reported)
    record(f"crash[{point}]: {len(final['rows'])} runs, kill at {KILL_POINTS[point]}, 1 SIGKILL, 1 restart; "
           f"restart submitted {summary['submitted']}, re-attached {summary['reattached']}, reused "
           f"{summary['reused']}; billed {final['ledger']['count']}; {len(parts)} partial download(s) left by the "
           f"crash, {len(stale)} still there after the restart; integrity_check ok")


def test_random_sigkills_then_cli_resume_pays_once(emulator: EmulatorProcess, ref_images: list[Path],
                                                   tmp_path: Path) -> None:
    rng = random.Random(SEED)
    child = Child(emulator, tmp_path, ref_images[0], seeds="0-11")
    kills, finished, schedule = 0, 0, []
    for _ in range(4):
        proc = child.start()
        delay = rng.uniform(0.05, 1.0)  # 12 runs at c=3 take 4 waves of LATENCY: most kills land mid-sweep
        schedule.append(round(delay, 2))
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)  # reaped: a dead owner's pid must not look alive
        finished += proc.returncode == 0
        child.rows()  # integrity_check after every crash
    # the restart that finishes is the CLI a user would type again, long after the crashes
    child.long_after()
    env = {**CHILD_ENV, "RUNFLOW_API_KEY": KEY, "RUNFLOW_BASE_URL": emulator.url}
    cli = subprocess.run(
        [sys.executable, "-m", "runflow_nb.cli", "sweep", "--experiment", EXPERIMENT, "--prompt", PROMPT,
         "--image", str(ref_images[0]), "--seeds", child.seeds, "--duration", "3", "--resolution", "720p",
         "--concurrency", "3", "--store", str(child.store_path), "--artifacts", str(child.artifacts)],
        env=env, capture_output=True, text=True, timeout=90)
    assert cli.returncode == 0, cli.stdout[-2000:] + cli.stderr[-2000:]
    final = _check_final(child)
    record(f"crash[random]: {len(final['rows'])} runs, {kills} SIGKILLs at {schedule} s after start "
           f"(random.Random({SEED})), {finished} finished before its kill, {child.starts + 1} starts incl. the CLI "
           f"restart; billed {final['ledger']['count']}; integrity_check ok after every crash")
