"""Sweeps under injected faults, against the emulator as a real server in its own process.

About a fifth of all requests fail: 429 with and without Retry-After, 500/503, connections dropped
or a 500 answered after a submit was carried out, polls slower than the client's per-request timeout, failed runs, NSFW
flags, truncated and expired downloads. Every kind is forced at least once (``KIND=1x``) on top of
its seeded rate, so a run of this suite always exercises all of them.

What must hold afterwards (checked against the emulator's billing ledger, not the client's word):
every planned run ends in a definite, explained state; every billed run is in the store (with an
intact, playable video, or re-attachable by its remote id); no planned run is billed twice; no
truncated body is ever stored as a video. Re-running the plan without faults redoes only what did
not succeed, and the ledger grows only by those.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from _sweep_child import PROMPT, EmulatorProcess, emulator_process, record

import runflow_nb as rf
from runflow_nb.emulator import Emulator, serve
from runflow_nb.media.probe import probe, sha256_file
from runflow_nb.store.runstore import Store

KEY = "rf_test_fault_suite"
RUNS = 24
# Seeded rates (~20% of all requests) plus every kind forced once, so each run exercises all of them.
# The kinds a healthy sweep must absorb; the server faults with outputs missing have their own tests.
HARNESS_KINDS = ("429", "429ra", "500", "503", "drop", "create500", "slow", "fail", "nsfw", "truncate", "expire")
FAULTS = ("429=0.03,429ra=0.02,500=0.02,503=0.02,drop=0.05,create500=0.03,slow=0.03,fail=0.06,nsfw=0.08,"
          "truncate=0.12,expire=0.04,seed=7,slow_s=1.0,retry_after=1," + ",".join(f"{k}=1x" for k in HARNESS_KINDS))
FINAL = {"succeeded", "failed", "canceled", "download_failed", "error", "unknown", "skipped_budget"}
SUBMIT_PATH = "/v1/models/alibaba/happy-horse/reference-to-video/runs"


class Sweep:
    """One experiment swept against one emulator process; the state the tests inspect."""

    def __init__(self, emu: EmulatorProcess, work: Path, image: Path) -> None:
        self.emu, self.work = emu, work
        self.store = Store(work / "faults.sqlite")
        self.artifacts = work / "artifacts"
        # A per-request timeout below the emulator's slow polls (slow_s=1.0): those time out and retry.
        self.client = rf.Client(api_key=KEY, base_url=emu.url, poll_interval=0.05, max_retries=4, timeout=0.5)
        self.exp = rf.Experiment("faults", store=self.store, artifacts=self.artifacts, client=self.client)
        self.plan = rf.grid(prompt=PROMPT, images=[[image]], seed=range(RUNS), duration=3, resolution="720p")

    def run(self) -> Any:
        self.exp.run(self.plan, concurrency=4, progress=None)
        return self.exp.last_summary

    def rows(self) -> dict[str, dict[str, Any]]:
        return {r["run_id"]: r for r in self.store.runs("faults")}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory, ref_images: list[Path]) -> Iterator[dict[str, Any]]:
    """The plan swept once under faults; yields the sweep and what it saw."""
    work = tmp_path_factory.mktemp("faults")
    with emulator_process(latency=0.2, faults=FAULTS, workdir=work / "emulator") as emu:
        sweep = Sweep(emu, work, ref_images[0])
        summary = sweep.run()
        yield {"sweep": sweep, "summary": summary, "stats": emu.stats(), "ledger": emu.ledger(),
               "rows": sweep.rows()}
        sweep.store.close()


def _billed_by_local_run(emu: EmulatorProcess, ledger: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Ledger entries grouped by the local run_id the toolkit sent in the run's metadata."""
    by_run: dict[str, list[dict[str, Any]]] = {}
    for entry in ledger["billed"]:
        remote = emu.run(entry["run_id"])
        by_run.setdefault(remote["metadata"]["run_id"], []).append(remote)
    return by_run


def _check_video(row: dict[str, Any], remote: dict[str, Any], artifacts: Path) -> None:
    out = remote["output"]["outputs"][0]
    path = Path(row["video_path"])
    assert path.resolve().is_relative_to(artifacts.resolve()), path
    assert row["remote_id"] == remote["id"]
    assert path.stat().st_size == out["size"], f"{row['run_id']}: stored {path.stat().st_size} of {out['size']} bytes"
    assert sha256_file(path) == out["sha256"] == row["video_sha256"], f"{row['run_id']}: sha256 mismatch"
    info = probe(path)  # decodes: a truncated file raises DownloadError here
    assert info.has_audio and abs(info.duration - 3.0) < 0.2
    assert row["nsfw_detected"] == remote["output"]["nsfw_detected"]


def _check_sweep(sweep: Sweep, rows: dict[str, dict[str, Any]], ledger: dict[str, Any],
                 stats: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    emu = sweep.emu
    assert len(rows) == RUNS
    assert {r["run_key"] for r in rows.values()} == set(sweep.plan.keys())
    # every planned run ends in a definite, explained state
    for r in rows.values():
        assert r["status"] in FINAL, f"{r['run_id']} left in {r['status']!r}"
        if r["status"] != "succeeded":
            assert r["error_code"] and r["error_message"], f"{r['run_id']} is {r['status']} without a reason"
    # nothing billed twice: one ledger entry per remote run and per client_ref, none for failed runs
    billed = ledger["billed"]
    assert len({e["run_id"] for e in billed}) == len(billed)
    assert len({e["client_ref"] for e in billed}) == len(billed)
    by_status = stats["runs_by_status"]  # partial_succeeded runs are billed too (with their outputs)
    assert ledger["count"] == stats["billed_runs"] == by_status.get("succeeded", 0) + by_status.get("partial_succeeded", 0)
    by_run = _billed_by_local_run(emu, ledger)
    assert set(by_run) <= set(rows)
    doubles = {k: [x["id"] for x in v] for k, v in by_run.items() if len(v) > 1}
    assert not doubles, f"planned runs billed more than once: {doubles}"
    # nothing succeeded is lost: a billed run is a stored video, or re-attachable by its remote id
    for run_id, (remote,) in by_run.items():
        row = rows[run_id]
        if row["status"] == "succeeded":
            _check_video(row, remote, sweep.artifacts)
        else:
            assert row["status"] in ("download_failed", "unknown"), row
            assert row["remote_id"] == remote["id"] or row["client_ref"] == remote["client_ref"]
    for row in rows.values():
        if row["status"] == "succeeded":
            assert row["run_id"] in by_run, f"{row['run_id']} says succeeded but nothing was billed"
        elif row["status"] == "failed":
            assert row["cost_usd"] == 0.0 and emu.run(row["remote_id"])["status_code"] == "failed"
    # a truncated body is never stored as good: the only videos are the verified ones, no leftovers
    files = sorted(p for p in sweep.artifacts.rglob("*") if p.is_file())
    videos = {Path(r["video_path"]).resolve() for r in rows.values() if r["status"] == "succeeded"}
    assert {p.resolve() for p in files if p.suffix == ".mp4"} == videos
    assert not [p for p in files if p.name.endswith(".part")]
    return by_run


def test_sweep_under_mixed_faults_ends_explained_and_never_pays_twice(faulty: dict[str, Any]) -> None:
    sweep, stats, ledger, rows = faulty["sweep"], faulty["stats"], faulty["ledger"], faulty["rows"]
    faults = stats["faults"]
    assert all(faults[k] >= 1 for k in HARNESS_KINDS), f"a fault kind never fired: {faults}"
    share = stats["faults_total"] / stats["requests"]
    assert 0.1 <= share <= 0.35, f"{stats['faults_total']} faults in {stats['requests']} requests"
    _check_sweep(sweep, rows, ledger, stats)
    statuses = Counter(r["status"] for r in rows.values())
    nsfw = sum(1 for r in rows.values() if r["nsfw_detected"])
    assert nsfw >= 1 and statuses["failed"] >= 1
    record(f"faults: {RUNS} runs under {stats['faults_total']} injected faults in {stats['requests']} requests "
           f"({share:.0%}; {json.dumps(faults, separators=(',', ':'))}); outcome {dict(statuses)}, "
           f"{nsfw} NSFW-flagged; billed {ledger['count']} (no double billing); restarts 0")


def test_rerun_without_faults_redoes_only_what_did_not_succeed(faulty: dict[str, Any]) -> None:
    sweep, before, ledger_before = faulty["sweep"], faulty["rows"], faulty["ledger"]
    sweep.emu.configure(faults="none")
    todo = {k for k, r in before.items() if r["status"] != "succeeded"}
    stamps = {k: Path(r["video_path"]).stat().st_mtime_ns for k, r in before.items() if k not in todo}
    # Re-run long after: a create that may have made its run (a 5xx, a lost answer) and that no look-up
    # saw stays unknown until the list has had time to show it; an hour later, "not listed" is "not made".
    for k, r in before.items():
        if r["status"] == "unknown" and not r["remote_id"] and r["submitted_at"] is not None:
            sweep.store.update_run(k, submitted_at=r["submitted_at"] - timedelta(hours=1))

    summary = sweep.run()
    rows, ledger, stats = sweep.rows(), sweep.emu.ledger(), sweep.emu.stats()

    assert all(r["status"] == "succeeded" for r in rows.values()), Counter(r["status"] for r in rows.values())
    by_run = _check_sweep(sweep, rows, ledger, stats)
    assert len(by_run) == RUNS
    # the succeeded runs were reused untouched: same remote run, same file, not downloaded again
    for k, stamp in stamps.items():
        for col in ("remote_id", "video_sha256", "video_path", "client_ref"):
            assert rows[k][col] == before[k][col], (k, col)
        assert Path(rows[k]["video_path"]).stat().st_mtime_ns == stamp
    # the ledger grew only by runs of the not-succeeded rows, one each
    old = {e["run_id"] for e in ledger_before["billed"]}
    new = [e for e in ledger["billed"] if e["run_id"] not in old]
    new_owners = {sweep.emu.run(e["run_id"])["metadata"]["run_id"] for e in new}
    assert len(new_owners) == len(new) and new_owners <= todo
    assert summary.reused == RUNS - len(todo)
    assert summary.submitted == len(new)
    assert summary.submitted + summary.reattached == len(todo)
    record(f"faults re-run: {len(todo)} of {RUNS} runs redone ({summary.submitted} submitted, "
           f"{summary.reattached} re-attached, {summary.reused} reused); ledger {ledger_before['count']} -> "
           f"{ledger['count']}; restarts 1")


# --- targeted: a lost submit whose look-up fails too ------------------------------------------------


class _FlakyEmulator:
    """The in-process emulator behind a switchboard: submits can be accepted-then-dropped, and the
    client_ref look-up (``GET /v1/runs``) can answer 503 or fail to connect."""

    def __init__(self) -> None:
        self.emu = Emulator(latency=0.05, base_url="http://emulator.invalid")
        self.drop_submits = True
        self.lookup = "503"  # or "connect", or "ok"
        self.submits = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == SUBMIT_PATH:
            self.submits += 1
            response = self.emu.handle(request)
            if self.drop_submits and response.status_code == 201:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
            return response
        if request.method == "GET" and path == "/v1/runs" and self.lookup != "ok":
            if self.lookup == "connect":
                raise httpx.ConnectError("connection refused", request=request)
            return httpx.Response(503, json={"code": "MODEL_UNAVAILABLE", "message": "down for maintenance"})
        return self.emu.handle(request)


def test_a_lost_submit_whose_lookup_fails_stays_unknown_and_is_never_paid_twice(
        ref_images: list[Path], tmp_path: Path) -> None:
    server = _FlakyEmulator()
    client = rf.Client(api_key=KEY, base_url="http://emulator.invalid", transport=httpx.MockTransport(server.handle),
                       poll_interval=0.02, max_retries=1)
    exp = rf.Experiment("lost", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a", client=client)
    plan = rf.grid(prompt=PROMPT, images=[[ref_images[0]]], seed=[1], duration=3, resolution="720p")
    try:
        # 1: the run is created, its answer lost, and the look-up by client_ref answers 503
        row = exp.run(plan, progress=None).iloc[0]
        assert row["status"] == "unknown", (row["status"], row["error_message"])
        ref = row["client_ref"]
        # 2: re-run while the look-up cannot even connect: still unknown, same client_ref
        server.lookup = "connect"
        row = exp.run(plan, progress=None).iloc[0]
        assert (row["status"], row["client_ref"]) == ("unknown", ref), (row["status"], row["error_message"])
        # 3: the service is back: the run is found by client_ref, downloaded, billed once
        server.drop_submits, server.lookup = False, "ok"
        row = exp.run(plan, progress=None).iloc[0]
        assert row["status"] == "succeeded"
        ledger = server.emu.simulator.ledger()
        created = [e["via"] for e in server.emu.state.creates() if e["route"] == "runs"]
        assert created.count("created") == 1, created  # re-sent creates were replays of the first (same key)
        assert len(ledger) == 1 and ledger[0]["client_ref"] == ref
        record(f"faults (lost submit + failing look-up): 1 run, 3 sweeps, {server.submits} submit, "
               f"billed {len(ledger)}; restarts 2")
    finally:
        exp.store.close()
        server.emu.close()


class _SlowFirstSubmit(Emulator):
    """Takes longer to create the first run than the client waits for an answer."""

    create_delay_s = 0.8

    def _ep_submit(self, request: httpx.Request, request_id: str, **kw: Any) -> httpx.Response:
        delay, self.create_delay_s = self.create_delay_s, 0.0
        time.sleep(delay)
        return super()._ep_submit(request, request_id, **kw)


def test_a_submit_that_times_out_while_the_server_creates_the_run_is_billed_once(ref_images: list[Path],
                                                                                 tmp_path: Path) -> None:
    emu = _SlowFirstSubmit(latency=0.1)
    try:
        with serve(emulator=emu) as server:
            client = rf.Client(api_key=KEY, base_url=server.url, timeout=0.5, poll_interval=0.05)
            result = client.generate(prompt=PROMPT, images=[ref_images[0]], duration=3, resolution="720p", seed=1,
                                     out_dir=tmp_path, client_ref="rfnb-one-planned-run")
            time.sleep(1.0)  # had a second run been created after the first, it would have finished by now
            ledger = emu.simulator.ledger()
            client.close()
        # exactly one: the run the slow create made, found (not paid again) and downloaded
        assert len(ledger) == 1, f"one generate, {len(ledger)} billed runs: {[e['run_id'] for e in ledger]}"
        assert ledger[0]["run_id"] == result.run.id and result.video_path is not None and result.video_path.is_file()
    finally:
        emu.close()
