"""The client over real HTTP (emulator on loopback) and in-process (simulator): results, events, faults."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from PIL import Image

from runflow_nb import errors
from runflow_nb.client import AsyncClient, Client, Result
from runflow_nb.emulator import Emulator, serve
from runflow_nb.request import VideoRequest
from runflow_nb.simulator.engine import Simulator

TEST_KEY = "rf_test_0000000000000000"


def assert_playable(result: Result, duration: int) -> None:
    assert result.video_path is not None and result.video_path.exists()
    with av.open(str(result.video_path)) as c:
        v = c.streams.video[0]
        a = c.streams.audio
        assert v.codec_context.name == "h264" and a and a[0].codec_context.name == "aac"
        assert abs(float(v.duration * v.time_base) - duration) <= 0.1
    assert result.seed is not None and result.wall_s > 0
    assert result.cost_usd is not None and result.cost_usd == pytest.approx(result.cost_estimate_usd)


def test_generate_over_real_http_against_the_emulator(emulator_server: Any, ref_images: list[Path],
                                                      tmp_path: Path) -> None:
    with Client(api_key=TEST_KEY, base_url=emulator_server.url, poll_interval=0.05) as client:
        result = client.generate(prompt="character1 meets character2", images=ref_images, duration=3,
                                 resolution="720p", aspect_ratio="9:16", seed=42, out_dir=tmp_path)
    assert client.backend == "runflow" and not result.simulated
    assert result.seed == 42 and result.cost_usd == 0.42
    assert_playable(result, 3)
    assert (result.run.output.width, result.run.output.height) == (720, 1280)  # type: ignore[union-attr]
    assert result.video_path.parent == tmp_path  # type: ignore[union-attr]
    assert result.probe.has_audio and abs(result.probe.duration - 3) <= 0.1
    assert result.poster_path is not None and result.poster_path.exists()
    ledger = httpx.get(f"{emulator_server.url}/_emulator/ledger").json()
    assert len(ledger["billed"]) == 1


def test_generate_on_the_in_process_simulator_says_so(ref_images: list[Path], tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    import runflow_nb._client_base as client_base

    client_base._announced = False
    with caplog.at_level(logging.WARNING, logger="runflow_nb"):
        client = Client(artifacts_dir=tmp_path)
        result = client.generate(prompt="character1 rests", images=ref_images[:1], duration=3,
                                 resolution="720p")
        client.generate(prompt="character1 rests", images=ref_images[:1], duration=3, resolution="720p")
    assert client.backend == "simulator" and result.simulated
    announcements = [r for r in caplog.records if "OFFLINE SIMULATOR" in r.getMessage()]
    assert len(announcements) == 1  # said once, plainly
    assert "SIMULATED" in repr(result)
    assert_playable(result, 3)


def test_each_simulator_client_keeps_its_own_latency(ref_images: list[Path]) -> None:
    """The offline simulator is one per process, but a client's ``simulator_latency`` is its own: a
    slow client made after a fast one does not slow the fast one's runs, nor the other way round."""
    fast = Client(backend="simulator", simulator_latency=0, poll_interval=0.02)
    slow = Client(backend="simulator", simulator_latency=3600, poll_interval=0.02)
    inputs = {"prompt": "character1 rests", "images": ref_images[:1], "duration": 3, "resolution": "720p"}
    first = fast.submit(**inputs, seed=1)  # each client's transport is built by its first request
    held = slow.submit(**inputs, seed=2)
    second = fast.submit(**inputs, seed=3)  # made after the slow client spoke
    for run_id in (first.id, second.id):  # a run held for an hour would end this wait with a timeout error
        assert fast.wait(run_id, timeout=120).status == "succeeded"
    assert slow.get(held.id).status in ("queued", "running")  # its hour's floor holds, whatever fast did
    fast.close()
    slow.close()


def test_a_latency_set_in_a_cell_counts_for_a_client_built_before_it(ref_images: list[Path],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A client with no latency of its own reads RUNFLOW_SIMULATOR_LATENCY when it makes a run, as the
    README promises of every setting: a value set in a notebook cell after the client was built counts."""
    client = Client(backend="simulator", poll_interval=0.02)
    inputs = {"prompt": "character1 rests", "images": ref_images[:1], "duration": 3, "resolution": "720p"}
    monkeypatch.setenv("RUNFLOW_SIMULATOR_LATENCY", "3600")
    held = client.submit(**inputs, seed=11)  # the first request builds the client's transport
    monkeypatch.setenv("RUNFLOW_SIMULATOR_LATENCY", "0")  # "a cell" later, same client
    quick = client.submit(**inputs, seed=12)
    assert client.wait(quick.id, timeout=60).status == "succeeded"  # an hour's latency would time out here
    assert client.get(held.id).status in ("queued", "running")  # a run keeps the latency it was made with
    client.close()


def test_an_unset_seed_is_drawn_and_reported(ref_images: list[Path], tmp_path: Path) -> None:
    result = Client(backend="simulator", artifacts_dir=tmp_path).generate(
        prompt="character1", images=ref_images[:1], duration=3, resolution="720p")
    assert isinstance(result.seed, int) and result.request.seed == result.seed


def test_events_go_queued_running_succeeded(emulator_server: Any, ref_images: list[Path]) -> None:
    client = Client(api_key=TEST_KEY, base_url=emulator_server.url, poll_interval=0.02)
    run = client.submit(prompt="character1", images=ref_images[:1], duration=3, resolution="720p", seed=1)
    assert run.status == "queued" and run.client_ref
    statuses = [e.status for e in client.events(run.id)]
    assert statuses[-1] == "succeeded"
    assert statuses.index("running") < statuses.index("succeeded")
    assert client.find(run.client_ref).id == run.id  # type: ignore[arg-type,union-attr]


def test_async_client_generates_concurrently(emulator_server: Any, ref_images: list[Path], tmp_path: Path) -> None:
    async def main() -> list[Result]:
        async with AsyncClient(api_key=TEST_KEY, base_url=emulator_server.url, poll_interval=0.05) as client:
            return await asyncio.gather(*(client.generate(prompt="character1", images=ref_images[:1], duration=3,
                                                          resolution="720p", seed=s, out_dir=tmp_path)
                                          for s in range(4)))

    results = asyncio.run(main())
    assert sorted(r.seed for r in results) == [0, 1, 2, 3]  # type: ignore[type-var]
    assert len({r.video_path for r in results}) == 4


def test_large_references_go_through_the_upload_flow(emulator_server: Any, tmp_path: Path) -> None:
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 255, (1100, 1500, 3), dtype=np.uint8))
    req = VideoRequest.build(prompt="character1", images=[noise], duration=3, resolution="720p", seed=3)
    assert req.needs_upload(req.images[0])
    client = Client(api_key=TEST_KEY, base_url=emulator_server.url, poll_interval=0.05)
    result = client.generate(req, out_dir=tmp_path)
    assert result.video_path and result.video_path.exists()
    assets = emulator_server.emulator._assets
    assert [a["status"] for a in assets.values()] == ["confirmed"]  # sent by upload, not inline


@pytest.mark.slow
def test_fifty_generations_under_faults_bill_each_made_run_exactly_once(ref_images: list[Path], tmp_path: Path) -> None:
    faults = "429=0.08,429ra=0.04,500=0.04,503=0.04,drop=0.1,truncate=0.05,seed=7,retry_after=1"
    with serve(port=0, latency=0.05, faults=faults) as server:
        async def main() -> list[Result]:
            sem = asyncio.Semaphore(10)
            async with AsyncClient(api_key=TEST_KEY, base_url=server.url, poll_interval=0.05,
                                   max_retries=4) as client:
                async def one(seed: int) -> Result:
                    async with sem:
                        return await client.generate(prompt="character1 under load", images=ref_images[:1],
                                                     duration=3, resolution="720p", seed=seed,
                                                     out_dir=tmp_path)
                return await asyncio.gather(*(one(s) for s in range(50)), return_exceptions=True)

        outcomes = asyncio.run(main())
        ledger = httpx.get(f"{server.url}/_emulator/ledger").json()
        stats = server.emulator.stats()
    results = [r for r in outcomes if isinstance(r, Result)]
    # A create answered 5xx may have made its run: unseen in the list, it is never sent again and
    # generate() says so (here the 500/503 came before anything was made, so nothing is billed for it).
    maybe = [r for r in outcomes if not isinstance(r, Result)]
    assert all(isinstance(e, errors.RunMayExistError) and e.client_ref for e in maybe), maybe
    assert len(results) + len(maybe) == 50 and all(r.video_path and r.video_path.exists() for r in results)
    assert len(results) >= 40
    billed_refs = [b["client_ref"] for b in ledger["billed"]]
    assert len(billed_refs) == len(results) and len(set(billed_refs)) == len(billed_refs)  # each paid once
    assert not {e.client_ref for e in maybe} & set(billed_refs)
    injected = {k: v for k, v in stats["faults"].items() if v}
    print(f"50 generations, faults injected: {injected}")
    assert sum(injected.values()) > 10


def test_a_lost_submit_answer_is_found_by_client_ref_not_resubmitted(ref_images: list[Path]) -> None:
    emu = Emulator(latency=0.05, faults="drop=1x")
    assert emu.stats()["faults"]["drop"] == 0
    client = Client(api_key=TEST_KEY, base_url="http://emu.test", transport=httpx.MockTransport(emu.handle),
                    poll_interval=0.02)
    run = client.submit(prompt="character1", images=ref_images[:1], duration=3, resolution="720p", seed=9)
    client.wait(run.id)
    assert emu.stats()["faults"]["drop"] == 1
    assert len(emu.simulator.ledger()) == 1
    runs, _next, _prev = emu.simulator.list_runs()
    assert len(runs) == 1  # one run created: the retry found it instead of submitting again


def test_api_errors_map_to_one_tree_without_the_key(emulator_server: Any, ref_images: list[Path]) -> None:
    secret = "rf_live_SENTINELsentinel123456"
    bad = Client(api_key=secret, base_url=emulator_server.url)
    emulator_server.emulator.api_key = "rf_live_other"
    try:
        with pytest.raises(errors.AuthenticationError) as exc:
            bad.submit(prompt="character1", images=ref_images[:1], duration=3, resolution="720p")
    finally:
        emulator_server.emulator.api_key = None
    assert exc.value.status_code == 401 and exc.value.request_id
    assert secret not in str(exc.value) and secret not in repr(exc.value)
    assert secret not in repr(bad) and "api_key=set" in repr(bad)
    # a server-side refusal (an upload id that was never confirmed) is InvalidRequestError with the field
    req = VideoRequest.build(prompt="character1", images=[f"{emulator_server.url}/assets/nope/x.png"],
                             duration=3, resolution="720p", seed=1)
    with pytest.raises(errors.InvalidRequestError) as exc2:
        Client(api_key=TEST_KEY, base_url=emulator_server.url).submit(req)
    assert exc2.value.status_code == 422 and "image_urls[0]" in str(exc2.value)


def test_no_raw_httpx_error_escapes(ref_images: list[Path]) -> None:
    with serve(port=0) as server:
        url = server.url
    client = Client(api_key=TEST_KEY, base_url=url, max_retries=1)
    with pytest.raises(errors.NetworkError) as exc:
        client.submit(prompt="character1", images=ref_images[:1], duration=3, resolution="720p")
    assert not isinstance(exc.value, httpx.HTTPError)
    with pytest.raises(errors.NetworkError):
        client.get("run_x")


def test_total_wait_timeout_leaves_the_run_resumable(ref_images: list[Path]) -> None:
    clock = _Clock()  # the run's time passes on the simulator's clock: it outlasts the wait however slow the machine
    emu = Emulator(simulator=Simulator(latency=1000, clock=clock), latency=1000)
    client = Client(api_key=TEST_KEY, base_url="http://emu.test", transport=httpx.MockTransport(emu.handle),
                    poll_interval=0.05)
    run = client.submit(prompt="character1", images=ref_images[:1], duration=3, resolution="720p", seed=2)
    with pytest.raises(errors.RunTimeoutError) as exc:
        client.wait(run.id, timeout=0.3)
    assert "wait on it again" in str(exc.value) and exc.value.run.id == run.id
    clock.offset += 2000  # the run ends on the server
    assert client.wait(run.id, timeout=300).status == "succeeded"
    emu.close()


class _Clock:
    """Epoch seconds that a test can move ahead."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def test_failed_runs_raise_and_expired_urls_are_reported(ref_images: list[Path], tmp_path: Path) -> None:
    emu = Emulator(latency=0.02, faults="fail=1x")
    client = Client(api_key=TEST_KEY, base_url="http://emu.test", transport=httpx.MockTransport(emu.handle),
                    poll_interval=0.02)
    with pytest.raises(errors.RunFailedError, match="not billed"):
        client.generate(prompt="character1", images=ref_images[:1], duration=3, resolution="720p", out_dir=tmp_path)
    emu.faults = "expire=1.0"
    with pytest.raises(errors.ExpiredURLError):
        client.generate(prompt="character1", images=ref_images[:1], duration=3, resolution="720p", out_dir=tmp_path)
    assert not list(tmp_path.glob("*.mp4"))  # nothing half-written left behind


def test_non_http_output_urls_are_refused(tmp_path: Path) -> None:
    from runflow_nb.runs import Output, Run

    client = Client(api_key=TEST_KEY, base_url="http://emu.test",
                    transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    run = Run(id="r1", status="succeeded", output=Output(video_url="file:///etc/passwd"))
    with pytest.raises(errors.DownloadError, match="non-http"):
        client.download(run, tmp_path / "x.mp4")


def test_retry_after_is_honoured(ref_images: list[Path]) -> None:
    import time

    emu = Emulator(latency=0.02, faults="429ra=1x,retry_after=1")
    client = Client(api_key=TEST_KEY, base_url="http://emu.test", transport=httpx.MockTransport(emu.handle))
    t0 = time.monotonic()
    client.health()
    client.balance()
    assert time.monotonic() - t0 >= 0.9


def test_tolerant_output_parsing() -> None:
    from runflow_nb.runs import Output, Run

    assert Output.parse({"video": {"url": "https://x/v.mp4"}}).video_url == "https://x/v.mp4"  # type: ignore[union-attr]
    assert Output.parse({"output_url": "https://x/a.mp4"}).video_url == "https://x/a.mp4"  # type: ignore[union-attr]
    assert Output.parse("https://x/b.mp4").video_url == "https://x/b.mp4"  # type: ignore[union-attr]
    run = Run.parse({"id": "r", "status_code": "cancelled", "cost": "1.40", "output": {
        "outputs": [{"url": "https://x/c.mp4", "type": "video", "width": 1920}], "seed": 5,
        "timing": {"inference_ms": 1234}, "nsfw_detected": None}})
    assert run.status == "canceled" and run.cost_usd == 1.4 and run.output.seed == 5  # type: ignore[union-attr]
    assert run.output.inference_ms == 1234  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        Run.parse({"no": "id"})

