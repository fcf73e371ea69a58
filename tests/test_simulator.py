"""The offline job engine: lifecycle by the clock, real MP4s, strict input rules, a ledger that bills once."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from pathlib import Path
from typing import Any

import av
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from runflow_nb.errors import (
    AuthenticationError,
    ExpiredURLError,
    InsufficientCreditError,
    NotFoundError,
    RunTimeoutError,
    ValidationError,
)
from runflow_nb.simulator.engine import Simulator, validate_input
from runflow_nb.specs import REFERENCE_TO_VIDEO

IMG = Image.new("RGB", (800, 600), (30, 120, 200))
BASE = {"prompt": "character1 trots along a beach", "duration": 3, "resolution": "720p"}


class FakeClock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def fake_renderer(images: Any, *, dest: Any, seed: int, **kw: Any) -> Path:
    """Writes a few bytes instead of a video: for tests about bookkeeping, not pixels."""
    Path(dest).write_bytes(f"fake video seed={seed} {kw['duration']}s".encode())
    return Path(dest)


def probe(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frame = next(c.decode(video=0))
        return {"codec": v.codec_context.name, "width": frame.width, "height": frame.height,
                "duration": float(v.duration * v.time_base), "audio": [a.codec_context.name for a in c.streams.audio]}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sim")  # shared, so the render cache is reused across tests


def test_run_goes_queued_then_running_then_succeeded_and_latency_is_a_floor(workdir: Path) -> None:
    with Simulator(latency=0.3, workdir=workdir) as sim:
        t0 = time.monotonic()
        run = sim.submit({**BASE, "image_urls": [IMG]}, client_ref="ref-1", metadata={"k": "v"})
        assert run["status_code"] == "queued"
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", run["id"])
        assert run["created_at"].endswith("Z") and run["output"] is None and run["cost"] is None
        time.sleep(0.1)
        assert sim.get(run["id"])["status_code"] == "running"
        done = sim.wait(run["id"], timeout=30)
        assert time.monotonic() - t0 >= 0.3
        assert done["status_code"] == "succeeded" and done["duration_ms"] >= 300
        assert done["cost"] == "0.42" and done["client_ref"] == "ref-1" and done["metadata"] == {"k": "v"}
        assert done["started_at"] and done["completed_at"].endswith("Z")
        out = done["output"]
        video = out["outputs"][0]
        assert video["type"] == "video" and video["content_type"] == "video/mp4"
        assert (video["width"], video["height"], video["duration"]) == (1280, 720, 3.0)
        path = sim.video_path(run["id"])
        assert path is not None and video["url"] == path.as_uri()
        data = path.read_bytes()
        assert video["size"] == len(data) and video["sha256"] == hashlib.sha256(data).hexdigest()
        assert out["timing"]["inference_ms"] > 0 and out["nsfw_detected"] is False
        info = probe(path)
        assert info["codec"] == "h264" and info["audio"] == ["aac"]
        assert (info["width"], info["height"]) == (1280, 720) and abs(info["duration"] - 3) <= 0.1


def test_an_unset_seed_is_drawn_per_run_and_returned(workdir: Path) -> None:
    with Simulator(latency=0, workdir=workdir, renderer=fake_renderer) as sim:
        a = sim.wait(sim.submit({**BASE, "image_urls": [IMG]})["id"])
        b = sim.wait(sim.submit({**BASE, "image_urls": [IMG], "seed": 1234})["id"])
        assert isinstance(a["output"]["seed"], int) and 0 <= a["output"]["seed"] <= 2147483647
        assert b["output"]["seed"] == 1234
        assert sim.get(a["id"])["output"]["seed"] == a["output"]["seed"]  # stable across reads


def test_a_failed_run_is_not_billed(workdir: Path) -> None:
    with Simulator(latency=0.05, workdir=workdir, renderer=fake_renderer) as sim:
        run = sim.wait(sim.submit({**BASE, "image_urls": [IMG]}, force_failure=True)["id"])
        assert run["status_code"] == "failed" and run["output"] is None and run["cost"] == "0.00"
        assert run["failure_code"] == "GENERATION_FAILED" and run["failure_stage_code"] == "inference"
        assert run["failure_message"]
        assert sim.ledger() == [] and sim.billed_total() == 0


def test_a_broken_render_fails_the_run_without_billing(workdir: Path) -> None:
    def broken(*a: Any, **kw: Any) -> Path:
        raise RuntimeError("encoder exploded")

    with Simulator(latency=0, workdir=workdir, renderer=broken) as sim:
        run = sim.wait(sim.submit({**BASE, "image_urls": [IMG]})["id"], timeout=10)
        assert run["status_code"] == "failed" and run["failure_code"] == "INTERNAL_ERROR"
        assert "encoder exploded" in run["failure_message"] and sim.ledger() == []


def test_nsfw_runs_succeed_flagged_and_are_billed(workdir: Path) -> None:
    with Simulator(latency=0, workdir=workdir, renderer=fake_renderer) as sim:
        run = sim.wait(sim.submit({**BASE, "image_urls": [IMG]}, force_nsfw=True)["id"])
        assert run["status_code"] == "succeeded" and run["output"]["nsfw_detected"] is True
        unchecked = sim.wait(sim.submit({**BASE, "image_urls": [IMG], "enable_safety_checker": False},
                                        force_nsfw=True)["id"])
        assert unchecked["output"]["nsfw_detected"] is None  # the checker was off: nothing was checked
        assert len(sim.ledger()) == 2


def test_the_ledger_has_one_entry_per_succeeded_run_however_often_it_is_read(workdir: Path) -> None:
    with Simulator(latency=0.02, workdir=workdir, renderer=fake_renderer) as sim:
        ids = [sim.submit({**BASE, "image_urls": [IMG], "resolution": r}, client_ref=f"c{i}")["id"]
               for i, r in enumerate(["720p", "1080p", "720p"])]
        ids.append(sim.submit({**BASE, "image_urls": [IMG]}, force_failure=True)["id"])
        for _ in range(3):
            for rid in ids:
                sim.wait(rid)
                sim.get(rid)
        ledger = sim.ledger()
        assert sorted(e["run_id"] for e in ledger) == sorted(ids[:3])
        assert sim.billed_total() == 0.42 + 0.84 + 0.42
        assert sim.balance() == round(10_000 - sim.billed_total(), 2)


def test_submits_from_many_threads_get_unique_runs_and_bill_once_each(workdir: Path) -> None:
    with Simulator(latency=0.01, workdir=workdir, renderer=fake_renderer, max_workers=4) as sim:
        ids: list[str] = []
        lock = threading.Lock()

        def work(i: int) -> None:
            rid = sim.submit({**BASE, "image_urls": [IMG], "seed": i})["id"]
            sim.wait(rid, timeout=30)
            with lock:
                ids.append(rid)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(ids)) == 24 and len(sim.ledger()) == 24


def test_list_runs_filters_by_client_ref_and_pages_with_a_stable_cursor(workdir: Path) -> None:
    with Simulator(latency=0, workdir=workdir, renderer=fake_renderer) as sim:
        mine = [sim.submit({**BASE, "image_urls": [IMG]}, client_ref="mine")["id"] for _ in range(5)]
        sim.submit({**BASE, "image_urls": [IMG]}, client_ref="other")
        page1, cursor, prev = sim.list_runs(client_ref="mine", limit=2)
        assert [r["id"] for r in page1] == mine[::-1][:2] and cursor and prev is None
        sim.submit({**BASE, "image_urls": [IMG]}, client_ref="mine")  # a newer run must not shift pages
        page2, cursor, prev = sim.list_runs(client_ref="mine", limit=2, cursor=cursor)
        page3, end, _ = sim.list_runs(client_ref="mine", limit=2, cursor=cursor)
        assert [r["id"] for r in page2 + page3] == mine[::-1][2:] and end is None
        assert prev and [r["id"] for r in sim.list_runs(client_ref="mine", limit=2, cursor=prev)[0]] == \
            [r["id"] for r in page1]  # the previous page, as first seen
        assert len(sim.list_runs(limit=500)[0]) == 7
        oldest = sim.list_runs(filters={"client_ref": ["mine"]}, ascending=True, limit=1)[0]
        assert [r["id"] for r in oldest] == mine[:1]
        with pytest.raises(ValidationError) as info:
            sim.list_runs(limit=501, cursor="garbage!")
        assert info.value.fields == ["limit", "pq"]


def test_output_urls_are_signed_and_expire_by_the_clock(workdir: Path) -> None:
    clock = FakeClock()
    with Simulator(latency=0, workdir=workdir, renderer=fake_renderer, url_ttl_s=60, clock=clock) as sim:
        run = sim.wait(sim.submit({**BASE, "image_urls": [IMG]})["id"], base_url="http://emu")
        url = run["output"]["outputs"][0]["url"]
        assert url.startswith("http://emu/files/")
        token, name = url.split("/")[-2:]
        assert sim.resolve_file(token, name) == sim.video_path(run["id"])
        with pytest.raises(AuthenticationError):
            sim.resolve_file(token[:-1] + ("0" if token[-1] != "0" else "1"), name)
        with pytest.raises(NotFoundError):
            sim.resolve_file(token, "run_nope.mp4")
        clock.t += 61
        with pytest.raises(ExpiredURLError):
            sim.resolve_file(token, name)


def test_a_fake_clock_holds_runs_in_queue_until_time_passes(workdir: Path) -> None:
    clock = FakeClock()
    with Simulator(latency=100, workdir=workdir, renderer=fake_renderer, clock=clock) as sim:
        rid = sim.submit({**BASE, "image_urls": [IMG]})["id"]
        assert sim.get(rid)["status_code"] == "queued"
        clock.t += 30
        assert sim.get(rid)["status_code"] == "running"
        with pytest.raises(RunTimeoutError):  # the clock is frozen: waiting cannot end
            sim.wait(rid, timeout=0.2)
        clock.t += 70
        deadline = time.monotonic() + 300  # waits on state; a hang guard
        while sim.get(rid)["status_code"] != "succeeded" and time.monotonic() < deadline:
            time.sleep(0.01)  # the render itself runs in real time
        run = sim.get(rid)
        assert run["status_code"] == "succeeded" and run["duration_ms"] == 100_000
        assert sim.logs(rid)[0]["message"].startswith("queued")


def test_a_run_the_balance_cannot_pay_is_refused(workdir: Path) -> None:
    with Simulator(latency=0, workdir=workdir, renderer=fake_renderer, balance_usd=0.5) as sim:
        sim.wait(sim.submit({**BASE, "image_urls": [IMG]})["id"])
        with pytest.raises(InsufficientCreditError) as info:
            sim.submit({**BASE, "image_urls": [IMG]})
        assert info.value.status_code == 402 and info.value.code == "INSUFFICIENT_CREDIT"


def test_submit_lists_every_problem_at_once(workdir: Path) -> None:
    with Simulator(latency=0, workdir=workdir, renderer=fake_renderer) as sim, \
            pytest.raises(ValidationError) as info:
        sim.submit({"prompt": "character4 " + "x" * 2500, "duration": 2, "resolution": "4k",
                    "aspect_ratio": "2:1", "seed": 2**31, "enable_safety_checker": 1,
                    "image_urls": [IMG, Image.new("RGB", (300, 300))]})
    assert set(info.value.fields) == {"prompt", "duration", "resolution", "aspect_ratio", "seed",
                                      "enable_safety_checker", "image_urls[1]"}


@pytest.mark.parametrize(("value", "ok"), [(5, True), (3, True), (15, True), (2, False), (16, False),
                                           (5.0, False), (5.5, False), (True, False), ("5", False),
                                           (None, True)])
def test_duration_is_a_strict_json_integer(value: Any, ok: bool) -> None:
    clean, issues = validate_input({"prompt": "a", "duration": value}, n_images=1)
    assert (not issues) is ok
    if ok:
        assert clean["duration"] == (5 if value is None else value)


def test_unknown_input_keys_are_ignored_and_defaults_filled() -> None:
    clean, issues = validate_input({"prompt": "a horse", "colour": "red", "aspect_ratio": None}, n_images=1)
    assert not issues
    assert clean == {"prompt": "a horse", **REFERENCE_TO_VIDEO.defaults}


# --- the emulator's rules agree with the client's (runflow_nb.request) ------------------------------

_SMALL_OK = Image.new("RGB", (400, 400), "white")
_values = st.one_of(st.none(), st.booleans(), st.integers(-5, 2**31 + 5), st.floats(allow_nan=False, width=32),
                    st.sampled_from(["16:9", "9:16", "1:1", "4:3", "3:4", "720p", "1080p", "720P", "2:1", ""]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt=st.one_of(st.none(), st.integers(), st.text(max_size=40),
                        st.builds(lambda n, pad: f"character{n} waves" + "x" * pad,
                                  st.integers(0, 12), st.sampled_from([0, 2480, 2500]))),
       n_images=st.integers(1, 9), aspect_ratio=_values, duration=_values, resolution=_values, seed=_values,
       safety=_values)
def test_server_and_client_validation_agree_field_by_field(prompt: Any, n_images: int, aspect_ratio: Any,
                                                           duration: Any, resolution: Any, seed: Any,
                                                           safety: Any) -> None:
    from runflow_nb.request import VideoRequest

    inputs = {"prompt": prompt, "aspect_ratio": aspect_ratio, "duration": duration, "resolution": resolution,
              "seed": seed, "enable_safety_checker": safety}
    try:
        VideoRequest.build(images=[_SMALL_OK] * n_images, **inputs)
        client_fields: set[str] = set()
    except ValidationError as exc:
        client_fields = set(exc.fields)
    _, issues = validate_input(inputs, n_images=n_images)
    assert {i.field for i in issues} == client_fields
