"""Money and interruption safety, checked against what the server billed (the emulator's ledger).

Every scenario runs the real client against the emulator over loopback HTTP; misbehaviour the
emulator's fault plan cannot produce (answers that trickle, HTML with 200, "succeeded" without a
video, refusals after N creates) comes from :mod:`_scripted`. Interrupts are real: a SIGINT (or
``_thread.interrupt_main``) delivered to the main thread while ``exp.run()`` blocks there, inside
a running event loop as in JupyterLab. The last test writes the harness's "money" line from what
these tests observed.
"""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _fast_sweep import HOLD_S, Clock
from _scripted import Scripted, answer, is_create, is_download, is_poll, json_of, trickle
from _sweep_child import record

import runflow_nb as rf
from runflow_nb import errors
from runflow_nb.emulator import serve
from runflow_nb.simulator.engine import Simulator

KEY = "rf_test_money_suite"
PROMPT = "character1 gallops along the shore"
RUN_720_3S = 0.42  # 3 s at 720p

# What the tests below observed, for the harness summary.
OBSERVED: dict[str, Any] = {"budget": [], "interrupts": [], "after_stop": 0}


@contextlib.contextmanager
def scripted(latency: float = 0.2, **kw: Any) -> Iterator[tuple[Scripted, str]]:
    emu = Scripted(latency=latency, **kw)
    try:
        with serve(emulator=emu) as server:
            yield emu, server.url
    finally:
        emu.close()


@contextlib.contextmanager
def held(latency: float = 0.2) -> Iterator[tuple[Scripted, str, Callable[[], None]]]:
    """An emulator on loopback whose runs stay queued or running until ``release()`` is called
    (their time passes on the simulator's clock, not the wall's): a sweep's wait gives up on them
    however slowly the machine runs. After ``release()`` they end at once, and new runs take
    ``latency`` seconds."""
    clock = Clock()
    sim = Simulator(latency=HOLD_S, clock=clock)

    def release() -> None:
        sim.latency = latency
        clock.offset += 2 * HOLD_S

    emu = Scripted(simulator=sim, latency=HOLD_S)
    try:
        with serve(emulator=emu) as server:
            yield emu, server.url, release
    finally:
        emu.close()
        sim.close()


def client(url: str, **kw: Any) -> rf.Client:
    kw.setdefault("poll_interval", 0.05)
    return rf.Client(api_key=KEY, base_url=url, **kw)


def experiment(tmp_path: Path, url: str, name: str = "money", *, store: Any = None, budget_usd: float | None = None,
               **client_kw: Any) -> rf.Experiment:
    return rf.Experiment(name, store=store or str(tmp_path / "store.sqlite"), artifacts=tmp_path / "artifacts",
                         client=client(url, **client_kw), budget_usd=budget_usd)


def plan(images: list[Path], seeds: Any, **kw: Any) -> rf.Plan:
    kw.setdefault("duration", 3)
    kw.setdefault("resolution", "720p")
    return rf.grid(prompt=kw.pop("prompt", PROMPT), images=[images[:1]], seed=seeds, **kw)


def budget_held(name: str, emu: Scripted, budget: float) -> float:
    """The server's final bill is within ``budget``; the scenario counts for the harness line."""
    emu.settle()
    billed = emu.billed_usd()
    assert billed <= budget + 1e-9, f"{name}: the server billed ${billed:.2f} against a budget of ${budget:.2f}"
    OBSERVED["budget"].append(name)
    return billed


def statuses(df: Any) -> Counter[str]:
    return Counter(df.status)


# --- 1. runs whose fate is unknown keep their budget reservation ----------------------------------------


def test_runs_that_end_unknown_keep_their_budget_share(ref_images: list[Path], tmp_path: Path) -> None:
    with held() as (emu, url, release):
        exp = experiment(tmp_path, url)
        df = exp.run(plan(ref_images, range(8)), concurrency=4, budget_usd=3 * RUN_720_3S, timeout=0.5, progress=None)
        counts = statuses(df)
        assert counts["unknown"] == 3 and counts["skipped_budget"] == 5, counts
        assert exp.last_summary is not None and "unknown" in str(exp.last_summary.messages) + str(counts)
        release()  # they were alive, and end billed: that is why they count
        assert budget_held("unknown runs (wait timeout)", emu, 3 * RUN_720_3S) == pytest.approx(3 * RUN_720_3S)
        # the next sweep resolves them (re-attached, not paid again) and stays within its own budget
        df = exp.run(plan(ref_images, range(8)), concurrency=4, budget_usd=2 * RUN_720_3S, progress=None)
        assert statuses(df)["succeeded"] >= 3
        budget_held("unknown runs resolved on re-run", emu, 5 * RUN_720_3S)


def test_an_experiment_cap_holds_across_repeated_calls(ref_images: list[Path], tmp_path: Path) -> None:
    with scripted(latency=0.2) as (emu, url):
        exp = experiment(tmp_path, url, budget_usd=5 * RUN_720_3S)
        exp.run(plan(ref_images, range(3)), progress=None)
        lines: list[str] = []
        df = exp.run(plan(ref_images, range(3, 9)), progress=lambda p: lines.append(p.line()))
        assert statuses(df) == Counter({"succeeded": 5, "skipped_budget": 4})
        assert "experiment budget" in lines[-1]
        df = exp.run(plan(ref_images, range(9, 12)), budget_usd=100, progress=None)  # the call's cap cannot lift it
        assert statuses(df)["succeeded"] == 5
        assert budget_held("experiment cap over three calls", emu, 5 * RUN_720_3S) == pytest.approx(5 * RUN_720_3S)


def test_failed_runs_free_their_share_and_503s_never_overspend(ref_images: list[Path], tmp_path: Path) -> None:
    with scripted(latency=0.2, faults="fail=3x,503=0.3,drop=2x,seed=11") as (emu, url):
        exp = experiment(tmp_path, url, max_retries=4)
        df = exp.run(plan(ref_images, range(10)), concurrency=3, budget_usd=4 * RUN_720_3S, progress=None)
        counts = statuses(df)
        assert counts["failed"] == 3 and counts["succeeded"] >= 1, counts
        budget_held("failures, 503s and dropped answers", emu, 4 * RUN_720_3S)


def test_a_resumed_sweep_counts_reattached_runs_against_the_budget(ref_images: list[Path], tmp_path: Path) -> None:
    with held() as (emu, url, release):
        exp = experiment(tmp_path, url)
        exp.run(plan(ref_images, range(3)), concurrency=3, timeout=0.2, progress=None)  # 3 left unknown
        release()
        # resumed with room for 4 runs: the 3 re-attached ones count, so only 1 new run is submitted
        df = exp.run(plan(ref_images, range(8)), concurrency=4, budget_usd=4 * RUN_720_3S, progress=None)
        assert statuses(df) == Counter({"succeeded": 4, "skipped_budget": 4}), statuses(df)
        assert exp.last_summary is not None and exp.last_summary.reattached == 3
        budget_held("re-attached runs on resume", emu, 4 * RUN_720_3S)


# --- 4. "succeeded" without a video, partial_succeeded ---------------------------------------------------


def _strip_output(request: httpx.Request, response: httpx.Response, *, status: str | None = None,
                  keep_output: bool = False) -> httpx.Response | None:
    if not (is_poll(request) and response.status_code == 200):
        return None
    body = json_of(response)
    if body.get("status_code") != "succeeded":
        return None
    if status is not None:
        body["status_code"] = status
    if not keep_output:
        body["output"] = None
    return answer(200, body)


def test_a_succeeded_run_without_a_video_is_charged_and_repaired_on_rerun(ref_images: list[Path],
                                                                          tmp_path: Path) -> None:
    with scripted(latency=0.2) as (emu, url):
        emu.after.append(_strip_output)
        exp = experiment(tmp_path, url)
        df = exp.run(plan(ref_images, range(4)), concurrency=4, budget_usd=2 * RUN_720_3S, progress=None)
        faulty = df[df.status == "download_failed"]
        assert len(faulty) == 2 and (faulty.error_code == "NO_OUTPUT").all() and (faulty.cost_usd == RUN_720_3S).all()
        assert statuses(df)["skipped_budget"] == 2
        budget_held("succeeded without a video URL", emu, 2 * RUN_720_3S)
        emu.after.clear()  # the server has the video now: a re-run fetches it, submits nothing new
        created = emu.runs_created()
        df = exp.run(plan(ref_images, range(4)), budget_usd=0, progress=None)
        assert statuses(df)["succeeded"] == 2 and emu.runs_created() == created
        # generate() says what happened (billed, a server fault) instead of "failed runs are not billed"
        emu.after.append(_strip_output)
        with pytest.raises(errors.NoOutputError) as info:
            client(url).generate(prompt=PROMPT, images=ref_images[:1], duration=3, resolution="720p", seed=99,
                                 out_dir=tmp_path / "g")
        assert "billed" in str(info.value) and "not billed" not in str(info.value)


def test_partial_succeeded_is_kept_with_its_video_and_never_resubmitted(ref_images: list[Path],
                                                                        tmp_path: Path) -> None:
    with scripted(latency=0.2) as (emu, url):
        emu.after.append(lambda q, r: _strip_output(q, r, status="partial_succeeded", keep_output=True))
        exp = experiment(tmp_path, url, name="partial")
        df = exp.run(plan(ref_images, range(2)), progress=None)
        assert statuses(df) == Counter({"partial_succeeded": 2})
        assert all(Path(p).exists() for p in df.video_path) and (df.cost_usd == RUN_720_3S).all()
        # without outputs: charged, recorded as a server fault, and still never submitted again
        emu.after[:] = [lambda q, r: _strip_output(q, r, status="partial_succeeded")]
        df = exp.run(plan(ref_images, range(2, 4)), progress=None)
        assert (df[df.seed >= 2].status == "download_failed").all()
        created = emu.runs_created()
        for _ in range(2):
            exp.run(plan(ref_images, range(4)), progress=None)
        assert emu.runs_created() == created == 4


# --- 8. 401 / 403 / 402 end submitting at the first one ---------------------------------------------------


def _refuse_after(n: int, status: int, code: str) -> Callable[[httpx.Request], httpx.Response | None]:
    seen = [0]

    def hook(request: httpx.Request) -> httpx.Response | None:
        if is_create(request):
            seen[0] += 1
            if seen[0] > n:
                return answer(status, {"code": code, "message": f"refused ({code})", "errors": []})
        return None

    return hook


@pytest.mark.parametrize(("status", "code", "error"), [
    (402, "INSUFFICIENT_CREDIT", errors.InsufficientCreditError),
    (401, "UNAUTHORIZED", errors.AuthenticationError),
    (403, "PERMISSION_DENIED", errors.AuthenticationError),
])
def test_a_fatal_answer_stops_submitting_and_leaves_the_rest_planned(status: int, code: str, error: type,
                                                                     ref_images: list[Path], tmp_path: Path) -> None:
    with scripted(latency=0.3) as (emu, url):
        emu.before.append(_refuse_after(3, status, code))
        exp = experiment(tmp_path, url)
        with pytest.raises(error) as info:
            exp.run(plan(ref_images, range(12)), concurrency=2, budget_usd=12 * RUN_720_3S, progress=None)
        df = exp.table()
        refused = [s for s in emu.create_answers if s >= 400]
        assert refused == [status], f"{len(refused)} refused creates: the sweep kept submitting after the first"
        assert statuses(df) == Counter({"succeeded": 3, "planned": 9}), statuses(df)
        assert "stopped submitting" in str(info.value) and "9 runs left planned" in str(info.value)
        if status == 402:
            budget_held("402 INSUFFICIENT_CREDIT mid-sweep", emu, 12 * RUN_720_3S)


def test_real_insufficient_credit_from_the_emulator_stops_the_sweep(ref_images: list[Path], tmp_path: Path) -> None:
    sim = Simulator(latency=0.2, balance_usd=2.5 * RUN_720_3S)
    emu = Scripted(simulator=sim)
    try:
        with serve(emulator=emu) as server:
            exp = experiment(tmp_path, server.url)
            with pytest.raises(errors.InsufficientCreditError):
                exp.run(plan(ref_images, range(10)), concurrency=1, progress=None)
            assert [s for s in emu.create_answers if s == 402] == [402]
            assert statuses(exp.table()) == Counter({"succeeded": 2, "planned": 8})
    finally:
        emu.close()
        sim.close()


# --- 2. stop means stop: interrupts, the Stop button, background handles ---------------------------------


def _signal_main(kind: str) -> None:
    if kind == "signal":  # what Kernel ▸ Interrupt does: a real SIGINT to the kernel's main thread
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
    else:
        _thread.interrupt_main()


def _in_jupyter_loop(fn: Callable[[], Any]) -> Any:
    """Call ``fn`` the way a JupyterLab cell does: inside a running event loop on the main thread,
    with Python's default SIGINT handler (what ipykernel installs while a cell runs)."""
    async def cell() -> Any:
        assert asyncio.get_running_loop()
        return fn()

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(cell())
    finally:
        loop.close()


def _stop_checks(name: str, emu: Scripted, exp: rf.Experiment, info: Any, t_stop: float, p: rf.Plan) -> None:
    time.sleep(1.0)  # anything the sweep's threads would still send arrives by now
    after = emu.created_after(t_stop)
    OBSERVED["after_stop"] += after
    assert after == 0, f"{name}: {after} runs submitted after the stop"
    assert emu.runs_created() == len(emu.creates)  # every create the server saw came before the stop
    msg = str(info.value)
    assert msg.startswith("stopped:") and "may cost up to $" in msg and "Run the same plan again" in msg
    df = exp.table()
    assert "error" not in set(df.status)
    # resumable: the next run finishes the plan and pays each run once
    df = exp.run(p, concurrency=4, progress=None)
    assert set(df.status) == {"succeeded"}
    emu.settle()
    ledger = emu.simulator.ledger()
    assert len(ledger) == len(p) == len({e["run_id"] for e in ledger}), f"{name}: a run was paid twice"
    OBSERVED["interrupts"].append(name)


@pytest.mark.parametrize("kind", ["signal", "interrupt_main"])
@pytest.mark.usefixtures("default_sigint")
def test_kernel_interrupt_while_runs_are_polled_stops_submitting(kind: str, ref_images: list[Path],
                                                                 tmp_path: Path) -> None:
    with scripted(latency=5.0) as (emu, url):
        exp = experiment(tmp_path, url)
        p = plan(ref_images, range(9))
        fired: list[float] = []

        def on_poll(request: httpx.Request) -> None:
            if is_poll(request) and not fired and emu.runs_created() >= 3:  # 3 slots busy, none free for 5 s
                fired.append(time.monotonic())
                _signal_main(kind)

        emu.before.append(lambda r: on_poll(r))
        with pytest.raises(errors.SweepInterrupted) as info:
            _in_jupyter_loop(lambda: exp.run(p, concurrency=3, progress=None))
        assert fired and emu.runs_created() == 3
        df = exp.table()
        assert statuses(df) == Counter({"queued": 3, "planned": 6}) or statuses(df)["planned"] == 6, statuses(df)
        assert df.remote_id.notna().sum() == 3  # in flight, recorded: the next sweep re-attaches them
        assert "3 runs still on the server" in str(info.value) and "$1.26" in str(info.value)
        _stop_checks(f"Jupyter interrupt while polling ({kind})", emu, exp, info, fired[0], p)


@pytest.mark.usefixtures("default_sigint")
def test_kernel_interrupt_during_a_submit_records_it_as_unknown(ref_images: list[Path], tmp_path: Path) -> None:
    with scripted(latency=0.3) as (emu, url):
        exp = experiment(tmp_path, url)
        p = plan(ref_images, range(5))
        fired: list[float] = []

        def slow_second_create(request: httpx.Request) -> None:
            if is_create(request) and emu.count("create") == 2:
                fired.append(time.monotonic())
                _signal_main("signal")
                time.sleep(0.8)  # the stop lands while this create is still being answered

        emu.before.append(lambda r: slow_second_create(r))
        with pytest.raises(errors.SweepInterrupted) as info:
            _in_jupyter_loop(lambda: exp.run(p, concurrency=1, progress=None))
        row = exp.table().set_index("seed").loc[1]
        assert row.status == "unknown" and row.error_code == "STOPPED"  # it may exist: looked up, never re-sent
        _stop_checks("Jupyter interrupt during a submit", emu, exp, info, fired[0], p)


@pytest.mark.usefixtures("default_sigint")
def test_ctrl_c_in_a_script_during_a_download_removes_the_partial_file(ref_images: list[Path],
                                                                       tmp_path: Path) -> None:
    # concurrency=1 and 2 s runs: while the first run's video trickles in, the second run is in flight
    # and the third is due only when the second ends, about 2 s later. The stop lands in between, so any
    # create the server sees after it is one the sweep sent after being told to stop.
    with scripted(latency=2.0) as (emu, url):
        exp = experiment(tmp_path, url)
        p = plan(ref_images, range(3))
        fired: list[float] = []
        started = threading.Event()

        def slow_download(request: httpx.Request) -> httpx.Response | None:
            if not is_download(request) or started.is_set():
                return None
            started.set()
            return trickle(b"\0" * 4000, every_s=0.05, chunk=50, content_type="video/mp4")  # 4 s

        def stop_when_the_second_run_is_in_flight() -> None:
            deadline = time.monotonic() + 300  # waits on state; a hang guard
            while not (started.is_set() and emu.runs_created() >= 2) and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.2)
            fired.append(time.monotonic())  # the stop instant is when the interrupt is raised
            _signal_main("interrupt_main")

        emu.before.append(slow_download)
        threading.Thread(target=stop_when_the_second_run_is_in_flight, daemon=True).start()
        with pytest.raises(errors.SweepInterrupted) as info:
            exp.run(p, concurrency=1, progress=None)  # no event loop: a plain script
        assert emu.runs_created() == 2
        parts = list((tmp_path / "artifacts").rglob("*.part"))
        assert parts == [], parts
        df = exp.table().set_index("seed")
        assert df.loc[0].status == "download_failed" and df.loc[2].status == "planned", df.status.to_dict()
        assert "1 run still on the server" in str(info.value) and "$0.42" in str(info.value)
        emu.before.clear()
        _stop_checks("Ctrl-C in a script during a download", emu, exp, info, fired[0], p)


def test_the_stop_button_of_a_background_sweep_stops_submitting(ref_images: list[Path], tmp_path: Path) -> None:
    pytest.importorskip("ipywidgets")
    from runflow_nb.widgets.progress import ProgressWidget

    with scripted(latency=4.0) as (emu, url):
        exp = experiment(tmp_path, url)
        p = plan(ref_images, range(8))
        box: dict[str, Any] = {}

        def make(progress: Any) -> None:  # the widget exp.run builds, with its Stop button wired to the sweep
            box.setdefault("widget", ProgressWidget(estimate=p.estimate(), budget_usd=None, display=False,
                                                    on_stop=handle.cancel))
            box["widget"].update(progress)

        handle = exp.run(p, concurrency=2, background=True, progress=make)
        deadline = time.monotonic() + 300  # waits on state; a hang guard
        while emu.runs_created() < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        t_stop = time.monotonic()
        box["widget"].stop_button.click()
        handle.wait(timeout=60)
        assert handle.summary is not None and handle.summary.stopped and handle.summary.still_running == 2
        assert box["widget"].stop_button.disabled

        class Info:
            value = next(m for m in handle.summary.messages if m.startswith("stopped:"))

        _stop_checks("Stop button of a background sweep", emu, exp, Info, t_stop, p)


@pytest.mark.usefixtures("default_sigint")
def test_ctrl_c_during_client_generate_removes_the_partial_file(ref_images: list[Path], tmp_path: Path) -> None:
    with scripted(latency=0.1) as (emu, url):
        def slow(request: httpx.Request) -> httpx.Response | None:
            if is_download(request):
                threading.Timer(0.3, _signal_main, args=("signal",)).start()
                return trickle(b"\0" * 4000, every_s=0.05, chunk=100, content_type="video/mp4")
            return None

        emu.before.append(slow)
        with pytest.raises(KeyboardInterrupt):
            client(url).generate(prompt=PROMPT, images=ref_images[:1], duration=3, resolution="720p", seed=1,
                                 out_dir=tmp_path / "out")
        assert list((tmp_path / "out").glob("*")) == []
        OBSERVED["interrupts"].append("Ctrl-C during Client.generate's download")


# --- 5. wall-clock deadlines: a trickling server cannot hold a request ----------------------------------


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_trickling_poll_cannot_outlast_the_wait_timeout(driver: str, ref_images: list[Path]) -> None:
    body = b'{"id": "x", "status_code": "running"}' + b" " * 160  # 200 bytes at 1 byte / 0.25 s = 50 s
    trickle_s = len(body) * 0.25
    with scripted(latency=30) as (emu, url):
        c = client(url)
        run = c.submit(prompt=PROMPT, images=ref_images[:1], duration=3, resolution="720p", seed=1)
        emu.before.append(lambda r: trickle(body, every_s=0.25) if is_poll(r) else None)
        t0 = time.monotonic()
        with pytest.raises(errors.RunTimeoutError):
            if driver == "sync":
                c.wait(run.id, timeout=2)
            else:
                asyncio.run(c.to_async().wait(run.id, timeout=2))
        elapsed = time.monotonic() - t0
    assert elapsed < trickle_s / 5, f"waited {elapsed:.1f} s for a 2 s wait timeout"


def test_a_trickling_download_is_cut_at_its_deadline_and_leaves_no_part(ref_images: list[Path],
                                                                        tmp_path: Path) -> None:
    total_s = 40 * 0.5
    with scripted(latency=0.1) as (emu, url):
        c = client(url, download_timeout=2.0)
        run = c.wait(c.submit(prompt=PROMPT, images=ref_images[:1], duration=3, resolution="720p", seed=1).id)
        emu.before.append(lambda r: trickle(b"\0" * 40, every_s=0.5, content_type="video/mp4")
                          if is_download(r) else None)
        t0 = time.monotonic()
        with pytest.raises(errors.DownloadError):
            c.download(run, tmp_path / "v.mp4")
        elapsed = time.monotonic() - t0
    assert elapsed < total_s / 3 and list(tmp_path.iterdir()) == []


def test_a_trickling_upload_answer_is_cut_at_its_deadline(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    big = tmp_path / "noise.png"  # incompressible: well above the inline limit, so it is uploaded
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (1100, 1100, 3), dtype=np.uint8)).save(big)
    with scripted(latency=0.1) as (emu, url):
        emu.before.append(lambda r: trickle(b"{}" + b" " * 98, every_s=0.5) if r.method == "PUT" else None)
        c = client(url, download_timeout=2.0, max_retries=1)
        t0 = time.monotonic()
        with pytest.raises(errors.RunflowError):
            c.submit(prompt=PROMPT, images=[big], duration=3, resolution="720p", seed=1)
        elapsed = time.monotonic() - t0
        assert emu.creates == []  # nothing was submitted with a half-uploaded reference
    assert elapsed < 100 * 0.5 / 3, f"the upload held the call for {elapsed:.1f} s"


def test_a_created_then_trickled_submit_answer_is_found_and_paid_once(ref_images: list[Path]) -> None:
    with scripted(latency=0.2) as (emu, url):
        def slow_answer(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
            if is_create(request) and emu.count("slow") == 1:
                return trickle(json_of(response).__repr__().encode()[:50] * 4, every_s=0.5)
            return None

        emu.after.append(slow_answer)
        c = client(url, timeout=1.0)
        run = c.submit(prompt=PROMPT, images=ref_images[:1], duration=3, resolution="720p", seed=1,
                       client_ref="rfnb-trickled-answer")
        emu.settle()
        assert run.client_ref == "rfnb-trickled-answer" and emu.runs_created() == 1


# --- 7. disk full, huge declared sizes ---------------------------------------------------------------------

_DISK_FULL_CHILD = r"""
import json, os, resource, signal, sys
import runflow_nb as rf
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # writes past the limit then fail with EFBIG, like a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
url, image, out = sys.argv[1:4]
try:
    rf.Client(api_key="rf_test_disk", base_url=url, poll_interval=0.05).generate(
        prompt="character1 runs", images=[image], duration=3, resolution="720p", seed=1, out_dir=out)
    outcome = "no error"
except BaseException as exc:
    outcome = type(exc).__name__ + ("" if isinstance(exc, rf.errors.RunflowError) else " (not a RunflowError)")
print(json.dumps({"outcome": outcome, "files": sorted(os.listdir(out))}))
"""


def test_a_full_disk_during_a_download_is_a_download_error_and_leaves_no_part(ref_images: list[Path],
                                                                              tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    out = tmp_path / "out"
    out.mkdir()
    with scripted(latency=0.1) as (_emu, url):
        proc = subprocess.run([sys.executable, "-c", _DISK_FULL_CHILD, url, str(ref_images[0]), str(out)],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {"outcome": "DownloadError", "files": []}, (got, proc.stderr[-2000:])


def test_a_declared_size_beyond_the_limit_is_refused_before_a_byte(ref_images: list[Path], tmp_path: Path) -> None:
    with scripted(latency=0.1) as (emu, url):
        c = client(url)
        run = c.wait(c.submit(prompt=PROMPT, images=ref_images[:1], duration=3, resolution="720p", seed=1).id)

        def huge(request: httpx.Request) -> httpx.Response | None:
            if is_download(request):
                emu.count("downloads")
                return httpx.Response(200, headers={"content-type": "video/mp4",
                                                    "content-length": str(50 * 1024**3)}, content=b"\0" * 1000)
            return None

        emu.before.append(huge)
        with pytest.raises(errors.DownloadError, match="more than"):
            c.download(run, tmp_path / "v.mp4")
        assert emu.hits["downloads"] == 1 and list(tmp_path.iterdir()) == []  # refused, not retried


def test_a_declared_size_beyond_the_free_disk_space_is_refused(tmp_path: Path) -> None:
    import shutil

    from runflow_nb.media.probe import HashingWriter

    free = shutil.disk_usage(tmp_path).free
    w = HashingWriter(tmp_path / "v.mp4", max_bytes=free * 10)
    with pytest.raises(errors.DownloadError, match="free") as info:
        w.expect(free + 1)
    assert info.value.final and list(tmp_path.iterdir()) == []


# --- 9. URLs in HTML --------------------------------------------------------------------------------------

HOSTILE_URLS = ["javascript:alert(document.domain)", "JaVaScRiPt:alert(1)", " javascript:alert(1)",
                "java\tscript:alert(1)", "vbscript:msgbox(1)", "data:text/html,<script>alert(1)</script>",
                "file:///etc/passwd"]


@pytest.mark.parametrize("bad", HOSTILE_URLS)
def test_a_hostile_output_url_never_reaches_the_html(bad: str, ref_images: list[Path]) -> None:
    from runflow_nb.views.display import caption_html, row_html, video_html

    def rewrite(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if is_poll(request) and response.status_code == 200:
            body = json_of(response)
            if body.get("output"):
                body["output"]["outputs"][0]["url"] = bad
                return answer(200, body)
        return None

    with scripted(latency=0.1) as (emu, url):
        emu.after.append(rewrite)
        result = client(url).generate(prompt=PROMPT, images=ref_images[:1], duration=3, resolution="720p", seed=1,
                                      download=False)
    markup = [result._repr_html_(), video_html(bad, poster=bad), caption_html({}, link=bad),
              row_html({"status": "succeeded", "video_path": bad, "poster_path": bad, "prompt": "p"})]
    for html_text in markup:
        flat = "".join(html_text.lower().split())
        for scheme in ("javascript:", "vbscript:", "data:text/html", "file:"):
            assert scheme not in flat, html_text


# --- 10. the smaller points -------------------------------------------------------------------------------


def test_an_html_page_with_200_is_a_library_error_and_one_bad_poll_does_not_end_the_wait(
        ref_images: list[Path]) -> None:
    page = "<html><body>Please log in to the Wi-Fi</body></html>"
    with scripted(latency=0.5) as (emu, url):
        c = client(url)
        run = c.submit(prompt=PROMPT, images=ref_images[:1], duration=3, resolution="720p", seed=1)
        emu.before.append(lambda r: httpx.Response(200, text=page, headers={"content-type": "text/html"})
                          if is_poll(r) and emu.count("html") <= 2 else None)
        assert c.wait(run.id, timeout=30).succeeded  # two bad polls, then the answer
        emu.before[:] = [lambda r: httpx.Response(200, text=page, headers={"content-type": "text/html"})
                         if is_poll(r) else None]
        c = client(url, max_retries=0)
        c._proto.max_bad_polls = 3
        with pytest.raises(errors.ServerError, match="text/html"):
            c.get(run.id)
        with pytest.raises(errors.RunflowError):
            c.wait(run.id, timeout=30)


@pytest.mark.parametrize("base", ["http://[::1", "http://", "https://exa mple.com", "ftp://api.runflow.io",
                                  "http://host:99999", "api.runflow.io"])
def test_a_malformed_base_url_is_a_configuration_error(base: str) -> None:
    with pytest.raises(errors.ConfigurationError):
        rf.Client(api_key=KEY, base_url=base).get("anything")


def test_a_connect_error_on_submit_does_not_claim_a_look_up(ref_images: list[Path]) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(errors.NetworkError) as info:
        rf.Client(api_key=KEY, base_url=f"http://127.0.0.1:{port}", max_retries=1).submit(
            prompt=PROMPT, images=ref_images[:1], duration=3, resolution="720p", seed=1)
    assert "never sent" in str(info.value) and "checked by client_ref" not in str(info.value)


def test_a_404_while_polling_is_lag_and_the_run_keeps_its_budget(ref_images: list[Path], tmp_path: Path) -> None:
    with scripted(latency=0.3) as (emu, url):
        gone: set[str] = set()

        def lose_first_run(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
            if is_create(request) and response.status_code == 201 and not gone:
                gone.add(json_of(response)["id"])
            if is_poll(request) and request.url.path.rsplit("/", 1)[-1] in gone:
                return answer(404, {"code": "RUN_NOT_FOUND", "message": "no such run", "errors": []})
            return None

        def transient_404(request: httpx.Request) -> httpx.Response | None:
            if is_poll(request) and emu.count("poll") == 1:
                return answer(404, {"code": "RUN_NOT_FOUND", "message": "not yet", "errors": []})
            return None

        emu.before.append(transient_404)
        emu.after.append(lose_first_run)
        exp = experiment(tmp_path, url)
        df = exp.run(plan(ref_images, range(3)), concurrency=1, budget_usd=2 * RUN_720_3S, timeout=6,
                     progress=None)
        # its id came from a 201: the server made it (and bills it); the 404s are lag, never an ending
        assert statuses(df) == Counter({"unknown": 1, "succeeded": 1, "skipped_budget": 1}), statuses(df)
        assert "404" in df[df.status == "unknown"].error_message.iloc[0]
        budget_held("a 404 while polling", emu, 2 * RUN_720_3S)


def test_a_plan_binds_references_by_content_not_identity(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    paths = []
    for i in range(6):
        p = tmp_path / f"ref{i}.png"
        Image.new("RGB", (480, 480), (40 * i, 255 - 40 * i, 90)).save(p)
        paths.append(p)
    import hashlib

    want = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    rows = {
        "generator rows": lambda: ({"prompt": "character1", "images": (x for x in [p]), "seed": 1} for p in paths),
        "iterators": lambda: [{"prompt": "character1", "images": iter([str(p)]), "seed": 1} for p in paths],
        "map": lambda: [{"prompt": "character1", "images": map(str, [p]), "seed": 1} for p in paths],
        "numpy rows": lambda: [{"prompt": "character1", "images": row, "seed": 1}
                               for row in np.array([[str(p)] for p in paths])],
        "PIL images": lambda: [{"prompt": "character1", "images": [Image.open(p)], "seed": 1} for p in paths],
    }
    for name, make in rows.items():
        got = [r.images[0].sha256 for r in rf.Plan(make())]
        assert got == want, f"{name}: requests carry another request's image"


def test_memory_store_sweeps_and_an_empty_store_file_is_refused(ref_images: list[Path], tmp_path: Path) -> None:
    with scripted(latency=0.1) as (emu, url):
        exp = rf.Experiment("mem", store=":memory:", artifacts=tmp_path / "a", client=client(url))
        df = exp.run(plan(ref_images, range(6)), concurrency=4, progress=None)
        assert statuses(df) == Counter({"succeeded": 6}) and len(emu.simulator.ledger()) == 6
    empty = tmp_path / "lost.sqlite"
    empty.write_bytes(b"")
    os.utime(empty, (time.time() - 60, time.time() - 60))
    with pytest.raises(errors.ConfigurationError, match="empty"):
        rf.Experiment("e", store=str(empty))


def test_an_unwritable_artifacts_folder_is_found_before_anything_is_paid(ref_images: list[Path],
                                                                         tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the artifacts folder should be")
    with scripted(latency=0.1) as (emu, url):
        exp = rf.Experiment("ro", store=str(tmp_path / "s.sqlite"), artifacts=blocker / "artifacts",
                            client=client(url))
        with pytest.raises(errors.ConfigurationError, match="nothing was submitted"):
            exp.run(plan(ref_images, range(2)), progress=None)
        if os.geteuid() != 0:
            ro = tmp_path / "ro"
            ro.mkdir(mode=0o555)
            exp = rf.Experiment("ro2", store=str(tmp_path / "s.sqlite"), artifacts=ro, client=client(url))
            with pytest.raises(errors.ConfigurationError):
                exp.run(plan(ref_images, range(2)), progress=None)
        assert emu.runs_created() == 0 and emu.creates == []


def test_sweeps_of_one_experiment_checking_the_folder_at_once_do_not_trip_each_other(tmp_path: Path) -> None:
    """Two sweeps of one experiment in one kernel check the artifacts folder at the same moment."""
    from runflow_nb.media.artifacts import Artifacts
    from runflow_nb.media.fetch import VideoFetcher

    async def update(*_a: Any, **_k: Any) -> None:
        return None

    fetchers = [VideoFetcher(client=None, artifacts=Artifacts(tmp_path / "artifacts"),  # type: ignore[arg-type]
                             experiment="twice", update=update, note=lambda _t: None, started_wall=0.0)
                for _ in range(8)]
    errors_seen: list[BaseException] = []
    start = threading.Barrier(len(fetchers))

    def check(fetcher: VideoFetcher) -> None:
        start.wait()
        for _ in range(200):
            try:
                fetcher.check_writable()
            except BaseException as exc:  # collected and asserted below
                errors_seen.append(exc)
                return

    threads = [threading.Thread(target=check, args=(f,)) for f in fetchers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors_seen == []
    assert [p.name for p in (tmp_path / "artifacts" / "twice").iterdir()] == []  # no probe left behind


def test_a_repeated_request_is_planned_priced_and_run_once(ref_images: list[Path], tmp_path: Path) -> None:
    p = rf.grid(prompt=PROMPT, images=[ref_images[:1]], seed=[1, 1, 2], duration=3, resolution="720p")
    est = p.estimate()
    assert (len(p), est.runs, est.duplicates, est.usd) == (2, 2, 1, pytest.approx(2 * RUN_720_3S))
    assert "counted once" in str(est)
    with scripted(latency=0.1) as (emu, url):
        df = experiment(tmp_path, url).run(p, progress=None)
        assert statuses(df) == Counter({"succeeded": 2}) and len(emu.simulator.ledger()) == 2


def test_the_image_byte_limit_is_one_exact_number_everywhere(tmp_path: Path) -> None:
    import base64
    import io

    from PIL import Image

    from runflow_nb.specs import REFERENCE_TO_VIDEO

    limit = REFERENCE_TO_VIDEO.images.max_bytes
    assert limit == 10_000_000
    buf = io.BytesIO()
    Image.new("RGB", (500, 500), (10, 200, 30)).save(buf, format="PNG")
    exact = buf.getvalue() + b"\0" * (limit - buf.tell())  # bytes after IEND: still a valid PNG
    over = exact + b"\0"
    assert isinstance(rf.request.load_reference(exact), rf.request.Reference)
    refused = rf.request.load_reference(over)
    assert isinstance(refused, list) and "10 MB (10,000,000 bytes)" in refused[0].message
    (tmp_path / "over.png").write_bytes(over)
    refused = rf.request.load_reference(tmp_path / "over.png")
    assert isinstance(refused, list) and "10 MB (10,000,000 bytes)" in refused[0].message
    with scripted(latency=0.1) as (_emu, url):  # the emulator applies the same number and says it the same way
        def post(data: bytes) -> httpx.Response:
            uri = "data:image/png;base64," + base64.b64encode(data).decode()
            return httpx.post(f"{url}/v1/models/alibaba/happy-horse/reference-to-video/runs", timeout=60,
                              headers={"Authorization": f"Bearer {KEY}"},
                              json={"input": {"prompt": "character1", "image_urls": [uri], "duration": 3,
                                              "resolution": "720p"}})
        assert post(exact).status_code == 201
        refused_answer = post(over)
        assert refused_answer.status_code == 422 and "10 MB (10,000,000 bytes)" in refused_answer.text


def test_the_pixel_cap_applied_is_image_rules_max_pixels() -> None:
    import dataclasses
    import io

    from PIL import Image

    from runflow_nb.specs import REFERENCE_TO_VIDEO

    def png(w: int, h: int) -> bytes:
        buf = io.BytesIO()
        Image.new("L", (w, h), 128).save(buf, format="PNG")
        return buf.getvalue()

    rules = REFERENCE_TO_VIDEO.images
    assert rules.max_pixels < Image.MAX_IMAGE_PIXELS  # Pillow's own bomb guard never decides first
    side = int(rules.max_pixels ** 0.5)
    assert isinstance(rf.request.load_reference(png(side, side)), rf.request.Reference)
    refused = rf.request.load_reference(png(side + 1, side))
    assert isinstance(refused, list) and f"{rules.max_pixels:,} pixels" in refused[0].message
    small = dataclasses.replace(REFERENCE_TO_VIDEO, images=dataclasses.replace(rules, max_pixels=1000 * 1000))
    assert isinstance(rf.request.load_reference(png(1000, 1000), spec=small), rf.request.Reference)
    assert isinstance(rf.request.load_reference(png(1001, 1000), spec=small), list)


@pytest.mark.parametrize(("prompt", "ok"), [
    ("character1 and character9 dance", True), ("character01 dances", False), ("character\u0661 dances", False),
    ("character\uff11 dances", False), ("character10 dances", False), ("Character1's mane", True),
])
def test_character_tags_are_ascii_1_to_9_without_leading_zeros(prompt: str, ok: bool, ref_images: list[Path]) -> None:
    images = [ref_images[0]] * 9
    if ok:
        rf.VideoRequest.build(prompt=prompt, images=images)
    else:
        with pytest.raises(errors.ValidationError) as info:
            rf.VideoRequest.build(prompt=prompt, images=images)
        assert "prompt" in info.value.fields


def test_an_explicit_api_key_is_not_readable_from_the_client(ref_images: list[Path]) -> None:
    secret = "sk-unprefixed-money-suite-7f3a9c"
    with scripted(latency=0.1, api_key=secret) as (_emu, url):
        c = rf.Client(api_key=secret, base_url=url, poll_interval=0.05)
        for obj in (c, c.to_async(), c.to_sync()):
            assert secret not in repr(vars(obj)) and secret not in repr(obj)
        assert c.submit(prompt=PROMPT, images=ref_images[:1], duration=3, resolution="720p", seed=1).id
        assert secret not in repr(vars(c))


# --- balanced order and progress ------------------------------------------------------------------------


def test_a_budget_cut_leaves_a_balanced_sample_and_progress_shows_the_skipped(ref_images: list[Path],
                                                                              tmp_path: Path) -> None:
    pytest.importorskip("ipywidgets")
    from runflow_nb.widgets.progress import ProgressWidget

    p = rf.grid(prompt=["character1 walks", "character1 jumps"], images=[ref_images[:1]], seed=range(6),
                duration=[3, 4], resolution="720p")  # 24 runs; grid order puts all of "walks" first
    seen: list[Any] = []
    with scripted(latency=0.1) as (emu, url):
        exp = experiment(tmp_path, url)
        widget = ProgressWidget(estimate=p.estimate(), budget_usd=4.0, display=False)

        def report(progress: Any) -> None:
            seen.append(progress)
            widget.update(progress)

        df = exp.run(p, concurrency=1, budget_usd=4.0, progress=report)
        budget_held("balanced cut", emu, 4.0)
    ran = df[df.status == "succeeded"]
    assert 6 <= len(ran) <= 9
    for col in ("prompt", "duration"):
        counts = ran[col].value_counts()
        assert len(counts) == 2 and counts.max() - counts.min() <= 1, (col, counts.to_dict())
    assert ran.seed.value_counts().max() - ran.seed.value_counts().min() <= 1 or ran.seed.nunique() <= 3
    last = seen[-1]
    assert last.done == len(ran) and last.skipped == 24 - len(ran) and last.done < last.total
    assert "skipped (budget)" in last.line() and "budget for this call" in last.line()
    assert widget.bar.value == len(ran) < widget.bar.max == 24


@pytest.fixture(scope="module", autouse=True)
def _money_summary() -> Iterator[None]:
    """The harness line, written once every test of this file has run (in whatever order)."""
    yield
    budget, interrupts = OBSERVED["budget"], OBSERVED["interrupts"]
    record(f"money: budget held in {len(budget)} scenarios ({'; '.join(budget)}); interrupts honoured at "
           f"{len(interrupts)} points ({'; '.join(interrupts)}); {OBSERVED['after_stop']} runs submitted after "
           "a stop (server's count)")
