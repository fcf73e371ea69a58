"""Sweeps: every planned run once, the budget guard, resume without paying twice, Jupyter-safe blocking."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import runflow_nb as rf
from runflow_nb.emulator import serve
from runflow_nb.errors import ValidationError

KEY = "rf_test_sweep_key"


def make_exp(tmp_path: Path, url: str, name: str = "sweep", **client_kw: Any) -> rf.Experiment:
    client = rf.Client(api_key=KEY, base_url=url, poll_interval=0.05, **client_kw)
    return rf.Experiment(name, store=str(tmp_path / "store.sqlite"), artifacts=tmp_path / "artifacts", client=client)


def ledger(url: str) -> list[dict[str, Any]]:
    return httpx.get(f"{url}/_emulator/ledger").json()["billed"]  # type: ignore[no-any-return]


def test_grid_is_validated_and_priced_before_anything_runs(ref_images: list[Path]) -> None:
    plan = rf.grid(prompt=["character1 walks", "character1 runs"], images=[ref_images[:1]], seed=range(3),
                   duration=[3, 5], resolution="720p")
    est = plan.estimate()
    assert (est.runs, est.video_seconds) == (12, 2 * 3 * (3 + 5))
    assert est.usd == pytest.approx(0.14 * 48)
    with pytest.raises(ValidationError) as exc:
        rf.grid(prompt="character2 hides", images=[ref_images[:1]], seed=[1, 2], duration=[3, 40])
    fields = exc.value.fields
    assert "plan[0].prompt" in fields and "plan[1].duration" in fields
    # no seed: each run still gets a concrete, recorded seed
    assert all(r.seed is not None for r in rf.grid(prompt="character1", images=ref_images[:1]))


def test_sweep_logs_every_run_with_parameters_timing_and_cost(emulator_server: Any, ref_images: list[Path],
                                                            tmp_path: Path) -> None:
    exp = make_exp(tmp_path, emulator_server.url)
    plan = rf.grid(prompt="character1 and character2", images=[ref_images], seed=range(4), duration=3,
                   resolution="720p", aspect_ratio=["16:9", "1:1"])
    df = exp.run(plan, concurrency=4, progress=None)
    assert len(df) == 8 and set(df.status) == {"succeeded"}
    assert sorted(df.seed.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert str(df.submitted_at.dtype).startswith("datetime64") and df.submitted_at.dt.tz is not None
    assert (df.wall_s > 0).all() and (df.cost_usd == 0.42).all() and df.has_audio.all()
    assert set(zip(df.aspect_ratio, df.width, df.height, strict=True)) == {("16:9", 1280, 720), ("1:1", 720, 720)}
    for path in df.video_path:
        assert Path(path).exists() and Path(path).with_suffix(".jpg").exists()
    assert len(ledger(emulator_server.url)) == 8
    exp.rate(df.run_id[0], 5)
    exp.tag(df.run_id[0], "keeper")
    assert exp.table(tags=["keeper"]).rating.tolist() == [5]
    exp.to_parquet(tmp_path / "t.parquet")
    exp.to_csv(tmp_path / "t.csv")
    import pandas as pd

    table = exp.table().sort_values("run_id").reset_index(drop=True)
    for back in (pd.read_parquet(tmp_path / "t.parquet"), pd.read_csv(tmp_path / "t.csv")):
        back = back.sort_values("run_id").reset_index(drop=True)
        assert list(back.run_id) == list(table.run_id) and list(back.seed) == list(table.seed)
        assert list(back.status) == ["succeeded"] * 8 and list(back.cost_usd) == list(table.cost_usd)
        assert list(back.prompt) == list(table.prompt) and list(back.video_path) == list(table.video_path)
        assert back.loc[back.run_id == df.run_id[0], "rating"].tolist() == [5]


def test_rerunning_a_plan_reuses_finished_runs_and_submits_nothing(emulator_server: Any, ref_images: list[Path],
                                                                   tmp_path: Path) -> None:
    exp = make_exp(tmp_path, emulator_server.url)
    plan = rf.grid(prompt="character1", images=[ref_images[:1]], seed=range(3), duration=3, resolution="720p")
    exp.run(plan, progress=None)
    first = exp.last_summary
    assert first is not None and first.submitted == 3
    exp.run(plan, progress=None)
    again = exp.last_summary
    assert again is not None and (again.submitted, again.reused) == (0, 3)
    assert len(ledger(emulator_server.url)) == 3
    # a deleted video is fetched again from its (still valid) URL, without a new run
    victim = Path(exp.table().video_path[0])
    victim.unlink()
    exp.run(plan, progress=None)
    assert victim.exists() and len(ledger(emulator_server.url)) == 3


def test_budget_guard_spends_at_most_the_budget(ref_images: list[Path], tmp_path: Path) -> None:
    with serve(port=0, latency=0.1) as server:
        exp = make_exp(tmp_path, server.url)
        # 1080p 5 s = $1.40 a run; 15 runs = $21 estimated
        plan = rf.grid(prompt="character1", images=[ref_images[:1]], seed=range(15), duration=5, resolution="1080p")
        assert plan.estimate().usd == pytest.approx(21.0)
        df = exp.run(plan, concurrency=4, budget_usd=5, progress=None)
        spent = sum(b["cost_usd"] for b in ledger(server.url))
    assert spent <= 5.0
    assert (df.status == "succeeded").sum() == 3  # 3 × $1.40 = $4.20; a 4th would make $5.60
    skipped = df[df.status == "skipped_budget"]
    assert len(skipped) == 12 and skipped.error_message.str.contains("budget of \\$5.00").all()
    assert exp.last_summary is not None and any("budget guard" in m for m in exp.last_summary.messages)


def test_failed_runs_free_their_budget_share(ref_images: list[Path], tmp_path: Path) -> None:
    with serve(port=0, latency=0.1, faults="fail=2x") as server:
        exp = make_exp(tmp_path, server.url)
        plan = rf.grid(prompt="character1", images=[ref_images[:1]], seed=range(5), duration=3, resolution="720p")
        df = exp.run(plan, concurrency=5, budget_usd=0.42 * 3, progress=None)
    # two runs failed (not billed), so three others fit in the budget
    assert (df.status == "failed").sum() == 2 and (df.status == "succeeded").sum() == 3
    assert df[df.status == "failed"].cost_usd.eq(0).all()


def test_blocking_run_works_inside_a_running_event_loop(ref_images: list[Path], tmp_path: Path) -> None:
    """Jupyter runs cells inside an event loop; exp.run must block without nest_asyncio."""
    exp = rf.Experiment("loop", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a",
                        client=rf.Client(backend="simulator"))
    plan = rf.grid(prompt="character1", images=[ref_images[:1]], seed=[1, 2], duration=3, resolution="720p")

    async def cell() -> Any:
        assert asyncio.get_running_loop()
        return exp.run(plan, progress=None)

    df = asyncio.run(cell())
    assert list(df.status) == ["succeeded", "succeeded"]


def test_background_sweep_reports_progress_and_can_be_cancelled(ref_images: list[Path], tmp_path: Path) -> None:
    with serve(port=0, latency=0.5) as server:
        exp = make_exp(tmp_path, server.url)
        plan = rf.grid(prompt="character1", images=[ref_images[:1]], seed=range(12), duration=3, resolution="720p")
        seen: list[int] = []
        handle = exp.run(plan, concurrency=2, background=True, progress=lambda p: seen.append(p.done))
        assert not handle.done  # returned at once
        time.sleep(0.8)
        handle.cancel()
        df = handle.wait(timeout=60)
        created = server.emulator.simulator.counts()["runs"]
        time.sleep(1.0)
        assert server.emulator.simulator.counts()["runs"] == created  # nothing submitted after the stop
        assert handle.done and seen and handle.summary is not None and handle.summary.stopped
        # stopped: runs already sent stay recorded with their remote ids, the rest stay planned; a
        # download the stop cut short is download_failed (billed; the next run fetches it)
        # and a submit the stop caught in flight is unknown (the server may have the run; looked up next time)
        assert set(df.status) <= {"succeeded", "planned", "queued", "running", "dispatching", "download_failed",
                                  "unknown"}
        assert set(df[df.status.isin(["download_failed", "unknown"])].error_code) <= {"STOPPED"}
        known = int(df.remote_id.notna().sum())
        assert known <= created <= known + int((df.status == "unknown").sum()) and created < 12
        assert any(m.startswith("stopped:") for m in handle.summary.messages)
        # and the next run collects them without paying twice
        df = exp.run(plan, concurrency=4, progress=None)
        billed = ledger(server.url)
    assert set(df.status) == {"succeeded"} and len(billed) == 12 == len({b["run_id"] for b in billed})


def _server_runs(server: Any) -> list[dict[str, Any]]:
    """Every run the emulator holds, as ``GET /v1/runs/{id}`` shows it, oldest first."""
    runs = server.emulator.simulator.list_runs(limit=500)[0]
    return sorted(runs, key=lambda r: r["created_at"])


def _at(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_rate_limits_back_off_without_stalling_the_pool(ref_images: list[Path], tmp_path: Path,
                                                        fast_clip: Path) -> None:
    """Three of six submits get a 429 with Retry-After; the other three finish meanwhile.

    Ordering, not wall-clock bounds: each run that was not rate-limited was downloaded and recorded
    before the server accepted the first re-sent one, and those were re-sent only after Retry-After.
    The simulated clips are copies of one rendered MP4, so the runs' own work (no encoding) is far
    shorter than the Retry-After pause even on a loaded machine: only a stalled pool loses the race."""
    import shutil

    from runflow_nb.emulator import Emulator
    from runflow_nb.simulator.engine import Simulator

    def copy_clip(images: Any, *, dest: Any, **kw: Any) -> Path:
        shutil.copyfile(fast_clip, dest)
        return Path(dest)

    retry_after = 5
    emulator = Emulator(simulator=Simulator(latency=0.3, renderer=copy_clip),
                        faults=f"429ra=3x,retry_after={retry_after}")
    try:
        with serve(port=0, emulator=emulator) as server:
            exp = make_exp(tmp_path, server.url)
            plan = rf.grid(prompt="character1", images=[ref_images[:1]], seed=range(6), duration=3, resolution="720p")
            started = time.time()
            df = exp.run(plan, concurrency=6, progress=None)
            faults = server.emulator.stats()["faults"]["429ra"]
            runs = _server_runs(server)
        assert set(df.status) == {"succeeded"} and faults == 3 and len(runs) == 6
        created = [_at(r["created_at"]) for r in runs]
        first, resent = created[:3], created[3:]
        assert min(resent) >= started + retry_after - 0.05, "a rate-limited submit was re-sent before Retry-After"
        by_remote = df.set_index("remote_id")
        for run in runs[:3]:
            row = by_remote.loc[run["id"]]
            finished = row["submitted_at"].timestamp() + row["wall_s"]
            assert finished < min(resent), f"{run['id']} waited behind the rate-limited runs"
        assert max(first) < min(resent)
    finally:
        emulator.close()


@pytest.mark.parametrize("concurrency", [1, 3])
def test_runs_in_flight_at_the_server_never_exceed_the_concurrency(ref_images: list[Path], tmp_path: Path,
                                                                   concurrency: int) -> None:
    """Counted at the server: a run is in flight from its creation to its end, whatever the client thinks."""
    with serve(port=0, latency=0.6) as server:
        exp = make_exp(tmp_path, server.url)
        plan = rf.grid(prompt="character1", images=[ref_images[:1]], seed=range(7), duration=3, resolution="720p")
        df = exp.run(plan, concurrency=concurrency, progress=None)
        runs = _server_runs(server)
    assert set(df.status) == {"succeeded"} and len(runs) == 7
    events = sorted([(_at(r["completed_at"]), -1) for r in runs] + [(_at(r["created_at"]), +1) for r in runs])
    level = peak = 0
    for _t, step in events:  # at equal times an end is counted before a start
        level += step
        peak = max(peak, level)
    assert peak <= concurrency, f"{peak} runs in flight at once with concurrency={concurrency}"
    assert peak == concurrency, f"only {peak} in flight with concurrency={concurrency}: the pool was not used"


def test_a_resumed_sweep_counts_reattached_runs_against_the_budget(ref_images: list[Path], tmp_path: Path) -> None:
    """Two runs of a crashed sweep are still running on the server; the resumed sweep must count them
    as money in flight, so with a budget of three runs it submits only one more."""
    with serve(port=0, latency=2.0) as server:
        exp = make_exp(tmp_path, server.url)
        plan = rf.grid(prompt="character1", images=[ref_images[:1]], seed=range(6), duration=3, resolution="720p")
        price = plan[0].estimate_usd()  # $0.42
        dead = subprocess.Popen(["true"])
        dead.wait()  # the crashed sweep: a process on this host that no longer exists
        remote_ids = []
        for req in list(plan)[:2]:
            run = rf.Client(api_key=KEY, base_url=server.url).submit(req, client_ref=f"rfnb-crashed-{req.seed}")
            remote_ids.append(run.id)
            exp.store.claim_run({"run_key": req.run_key(), "client_ref": f"rfnb-crashed-{req.seed}",
                                 "experiment": exp.name, "model": req.model, "status": "running",
                                 "remote_id": run.id, "prompt": req.prompt, "images": req.image_displays(),
                                 **req.params(), "owner": f"{socket.gethostname()}:{dead.pid}"})
        df = exp.run(plan, concurrency=6, budget_usd=3 * price, progress=None)
        billed = ledger(server.url)
    spent = sum(b["cost_usd"] for b in billed)
    assert spent <= 3 * price + 1e-9, f"billed ${spent:.2f} with a budget of ${3 * price:.2f}"
    assert len(billed) == 3 and {b["run_id"] for b in billed} >= set(remote_ids)
    assert exp.last_summary is not None and exp.last_summary.reattached == 2 and exp.last_summary.submitted == 1
    assert (df.status == "succeeded").sum() == 3 and (df.status == "skipped_budget").sum() == 3


def test_a_submit_with_a_lost_answer_is_reattached_on_resume(ref_images: list[Path], tmp_path: Path) -> None:
    """A row left 'submitting' (the process died before the answer) is found by client_ref, not paid twice."""
    with serve(port=0, latency=0.1) as server:
        exp = make_exp(tmp_path, server.url)
        plan = rf.grid(prompt="character1", images=[ref_images[:1]], seed=[7], duration=3, resolution="720p")
        req = plan[0]
        dead = subprocess.Popen(["true"])
        dead.wait()  # the crashed sweep: a process on this host that no longer exists
        row, _ = exp.store.claim_run({"run_key": req.run_key(), "client_ref": "rfnb-crashed-before-answer",
                                      "experiment": exp.name, "model": req.model, "status": "submitting",
                                      "prompt": req.prompt, "images": req.image_displays(), **req.params(),
                                      "owner": f"{socket.gethostname()}:{dead.pid}"})
        client = rf.Client(api_key=KEY, base_url=server.url)
        # the request that did reach the server, with the metadata a sweep's create carries
        client.submit(req, client_ref="rfnb-crashed-before-answer",
                      metadata={"experiment": exp.name, "run_id": row["run_id"]})
        df = exp.run(plan, progress=None)
        billed = ledger(server.url)
    assert list(df.status) == ["succeeded"] and exp.last_summary is not None
    assert exp.last_summary.reattached == 1 and exp.last_summary.submitted == 0
    assert len(billed) == 1


def test_sweep_cli_dry_run_and_table(ref_images: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    from runflow_nb.cli import main

    store = str(tmp_path / "cli.sqlite")
    args = ["sweep", "--experiment", "cli", "--prompt", "character1 jumps", "--image", str(ref_images[0]),
            "--seeds", "1-3", "--duration", "3", "--resolution", "720p", "--store", store,
            "--artifacts", str(tmp_path / "a")]
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3 runs" in out and "nothing submitted" in out
    assert main(args) == 0
    capsys.readouterr()
    assert main(["table", "cli", "--store", store]) == 0
    table = capsys.readouterr().out
    assert table.count("| succeeded |") == 3
    assert main(["table", "cli", "--store", store, "--format", "parquet"]) == 2
