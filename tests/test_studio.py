"""The studio's library logic: the queue read from the store (another process's runs included),
stopping a background sweep from the queue, seeds from the form as one small sweep, the
``callback_url`` sent on creates, and the word a background sweep's end leaves in the notebook."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from _sweep_child import PROMPT, emulator_process
from _wait import until

import runflow_nb as rf
from runflow_nb.errors import UsageError, ValidationError
from runflow_nb.experiment import Experiment
from runflow_nb.store.runstore import Store
from runflow_nb.studio import notify
from runflow_nb.studio.queue import OPEN, queue_rows, stop_sweep_of
from runflow_nb.studio.seeds import MAX_SEEDS, SeedsPlan, seeds_for

CHILD = Path(__file__).resolve().parent / "_sweep_child.py"


def _request(ref_images: list[Path], **kw: Any) -> rf.VideoRequest:
    return rf.VideoRequest.build(prompt=PROMPT, images=[ref_images[0]], duration=3, resolution="720p", **kw)


# -- the queue -------------------------------------------------------------------------------------


def test_queue_shows_runs_another_process_is_driving(tmp_path: Path, ref_images: list[Path]) -> None:
    store_path = tmp_path / "shared.sqlite"
    with emulator_process(latency=120) as emu:  # the runs stay on the server while we look
        cmd = [sys.executable, str(CHILD), "--url", emu.url, "--store", str(store_path), "--artifacts",
               str(tmp_path / "a"), "--experiment", "other", "--seeds", "0-1", "--image", str(ref_images[0])]
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            store = Store(str(store_path))  # a store of our own, as a kernel started later would open

            def on_server() -> list[Any] | None:
                rows = [q for q in queue_rows(store) if q.status in ("queued", "running") and q.driver]
                return rows if len(rows) == 2 else None

            rows = until(on_server, what="the other process's two runs on the server")
            assert len(rows) == 2
            for q in rows:
                assert q.experiment == "other" and not q.ended and q.remote_id
                assert q.driver == f"another process ({socket.gethostname()}:{child.pid})"
                assert q.cost_usd == pytest.approx(0.42) and q.cost_kind == "reserved"  # 3 s at 720p, not billed yet
                assert q.elapsed_s is not None and q.elapsed_s >= 0 and not q.stoppable
            with pytest.raises(UsageError, match="no public cancel"):  # another process's run: left alone
                stop_sweep_of(store, rows[0].run_id)
        finally:
            child.kill()
            child.communicate()


def test_queue_keeps_open_runs_of_any_age_and_recent_endings_only(store_url: str) -> None:
    store = Store(store_url)
    store.ensure_experiment("e")
    for i, (status, wall) in enumerate([("planned", None), ("planned", None), ("succeeded", 10.0),
                                        ("succeeded", 30.0), ("failed", None), ("unknown", None)]):
        store.insert_run({"run_id": f"r{i}", "experiment": "e", "run_key": f"k{i}", "status": status,
                          "prompt": "p", "seed": i, "model": "m", "backend": "simulator", "wall_s": wall,
                          "cost_estimate_usd": 0.42, "cost_usd": 0.42 if status == "succeeded" else None,
                          "cost_simulated": True, "error_message": "boom" if status == "failed" else None})
    rows = queue_rows(store)
    assert [q.run_id for q in rows[:3]] == ["r5", "r0", "r1"]  # in flight, then waiting to be sent in order
    assert [q.position for q in rows[:3]] == [None, 1, 2]
    assert {q.run_id for q in rows if q.ended} == {"r2", "r3", "r4"}
    assert all(q.expected_s == pytest.approx(20.0) for q in rows)  # the median of the finished runs' wall time
    assert next(q for q in rows if q.run_id == "r4").error == "boom"
    assert next(q for q in rows if q.run_id == "r2").cost_kind == "simulated"
    later = datetime.now(timezone.utc) + timedelta(hours=2)  # two hours on: the endings have aged out
    assert {q.status for q in queue_rows(store, now=later)} <= set(OPEN)
    assert len(queue_rows(store, now=later)) == 3
    assert queue_rows(store, experiment="nobody") == []
    with pytest.raises(UsageError, match="recent_s"):
        queue_rows(store, recent_s=-1)


def test_stopping_a_run_from_the_queue_stops_its_background_sweep_only(tmp_path: Path, service: Any,
                                                                       ref_images: list[Path]) -> None:
    service.freeze()  # runs stay on the server until thawed
    notify.install(min_s=0)
    notify.take_pending()
    exp = Experiment("bg", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a", client=service.client())
    plan = rf.Plan([_request(ref_images, seed=s) for s in range(3)])
    handle = exp.run(plan, concurrency=1, background=True, progress=None)
    try:
        on_server = until(lambda: [q for q in queue_rows(exp.store) if q.status in ("queued", "running")],
                           what="the first run on the server")
        rows = queue_rows(exp.store)
        waiting = [q for q in rows if q.status == "planned"]
        assert len(waiting) == 2 and [q.position for q in waiting] == [1, 2]
        assert all(q.stoppable for q in rows if not q.ended)
        assert on_server[0].driver == "this kernel"
        text = stop_sweep_of(exp.store, waiting[0].run_id)
        assert "never" in text and "stays planned" in text
        handle.wait(timeout=120)
    finally:
        handle.cancel()
    statuses = sorted(r["status"] for r in exp.runs())
    assert statuses.count("planned") == 2  # the stopped sweep sent nothing more
    assert service.created() == 1
    assert not any(q.stoppable for q in queue_rows(exp.store))  # the sweep has ended: nothing left to stop
    with pytest.raises(UsageError, match="not driven"):
        stop_sweep_of(exp.store, waiting[1].run_id)
    ended = [line for line in notify.take_pending() if "background sweep of 'bg' ended" in line]
    assert len(ended) == 1 and "stopped" in ended[0] and "1 run(s) still on the server" in ended[0]
    notify.install(min_s=10)


# -- seeds from the form -----------------------------------------------------------------------------


def test_seeds_plan_counts_from_the_start_seed_or_draws_distinct_random_ones(ref_images: list[Path]) -> None:
    req = _request(ref_images)
    seeds = SeedsPlan.build(req, n=4, start=100)
    assert seeds.seeds == [100, 101, 102, 103] and [r.seed for r in seeds.plan] == seeds.seeds
    assert seeds.estimate.runs == 4 and seeds.estimate.usd == pytest.approx(4 * 0.42)
    assert {r.prompt for r in seeds.plan} == {PROMPT}
    drawn = seeds_for(6, rng=random.Random(7))
    assert len(set(drawn)) == 6 and drawn == seeds_for(6, rng=random.Random(7))
    assert seeds.check_budget(1.68) == pytest.approx(1.68) and seeds.fits(1.68) == 4
    assert seeds.fits(1.0) == 2 and seeds.fits(0.41) == 0  # below the estimate: what fits, in order (as exp.run)
    with pytest.raises(ValidationError, match="budget"):
        seeds.check_budget(-1)
    for bad in (0, MAX_SEEDS + 1, True, "3"):
        with pytest.raises(ValidationError, match="seeds"):
            SeedsPlan.build(req, n=bad, start=1)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="start seed"):
        SeedsPlan.build(req, n=4, start=2147483646)


def test_seeds_run_as_one_sweep_within_the_budget(tmp_path: Path, service: Any, ref_images: list[Path]) -> None:
    exp = Experiment("seeds", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a", client=service.client())
    seeds = SeedsPlan.build(_request(ref_images), n=3, start=5)
    exp.run(seeds.plan, budget_usd=seeds.check_budget(1.26), progress=None)
    rows = seeds.rows(exp.store, exp.name)
    assert [r["seed"] for r in rows if r] == [5, 6, 7] and {r["status"] for r in rows if r} == {"succeeded"}
    assert service.created() == 3 and service.billed() <= 1.26


# -- callback_url on creates ---------------------------------------------------------------------------


class _Hooks:
    """A webhook receiver on loopback: every POST's headers and JSON body."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        got: list[tuple[dict[str, str], bytes]] = []
        self.got = got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/runflow?study=horses"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_callback_url_is_sent_on_every_create_once_set(tmp_path: Path, emulator_server: Any,
                                                       ref_images: list[Path]) -> None:
    hooks = _Hooks()
    url = hooks.url
    client = rf.Client(api_key="rf_test_local", base_url=emulator_server.url, poll_interval=0.05)
    store = str(tmp_path / "s.sqlite")
    exp = Experiment("hooked", store=store, artifacts=tmp_path / "a", client=client)
    with pytest.raises(ValidationError, match="callback_url"):
        exp.set_callback_url("ftp://hooks.example.org/x")
    exp.run([_request(ref_images, seed=1)], progress=None)  # before: no callback_url
    exp.set_callback_url(url)
    again = Experiment("hooked", store=store, artifacts=tmp_path / "a", client=client)  # a later kernel
    again.run([_request(ref_images, seed=s) for s in (2, 3)], progress=None)
    again.run([_request(ref_images, seed=s) for s in (4, 5)], progress=None, batch="auto", concurrency=2)
    sent = {}
    for row in again.runs():
        run = httpx.get(f"{emulator_server.url}/v1/runs/{row['remote_id']}",
                        headers={"Authorization": "Bearer rf_test_local"}, timeout=30).json()
        sent[row["seed"]] = run["callback_url"]
    assert sent == {1: None, 2: url, 3: url, 4: url, 5: url}
    exp.set_callback_url(None)
    exp.run([_request(ref_images, seed=6)], progress=None)
    remote = exp.store.runs("hooked", where={"seed": 6})[0]["remote_id"]
    assert httpx.get(f"{emulator_server.url}/v1/runs/{remote}", headers={"Authorization": "Bearer rf_test_local"},
                     timeout=30).json()["callback_url"] is None

    # the service (here the served emulator) POSTs each hooked run's end to the URL, signed
    try:
        until(lambda: len(hooks.got) >= 4, what="four callbacks")
        time.sleep(0.5)  # nothing more arrives: one callback a run, none for runs sent without the URL
        secret = emulator_server.emulator.callbacks.secret.encode()
        events = {}
        for headers, body in hooks.got:
            assert headers["Runflow-Signature"] == hmac.new(secret, body, hashlib.sha256).hexdigest()
            envelope = json.loads(body)
            events[envelope["run_id"]] = (envelope["event"], envelope["status"], envelope["metadata"]["experiment"])
        hooked = {r["remote_id"] for r in again.runs() if r["seed"] in (2, 3, 4, 5)}
        assert set(events) == hooked and len(hooks.got) == 4
        assert set(events.values()) == {("run.completed", "succeeded", "hooked")}
    finally:
        hooks.close()


# -- word when a background sweep ends ---------------------------------------------------------------


def test_a_background_sweep_end_prints_in_the_next_cell(tmp_path: Path, service: Any, ref_images: list[Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        assert notify.install(shell, min_s=10)
        notify.take_pending()
        exp = Experiment("lunch", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a", client=service.client())
        quick = exp.run([_request(ref_images, seed=0)], background=True, progress=None)
        quick.wait(timeout=120)
        assert quick.ended.is_set() and notify.pending() == []  # a sweep of seconds ends in front of the user
        notify.install(min_s=0)
        handle = exp.run([_request(ref_images, seed=s) for s in (1, 2)], background=True, progress=None)
        handle.wait(timeout=120)
        until(lambda: notify.pending(), what="the end notice")
        capsys.readouterr()
        shell.run_cell("x = 1")
        out = capsys.readouterr().out
        assert "runflow_nb: background sweep of 'lunch' ended: succeeded 2" in out
        shell.run_cell("x = 2")
        assert "background sweep" not in capsys.readouterr().out  # said once
        text, level = notify.end_notice(handle)
        assert text.startswith("background sweep of 'lunch' ended: succeeded 2")
        assert level == "success"
        markup = notify.notice_html("a <b> & 'q' $1", "warning")
        assert "<b>" not in markup.split("<script>")[0] and "apputils:notify" in markup and "&#36;1" in markup
    finally:
        notify.install(min_s=10)
        InteractiveShell.clear_instance()
