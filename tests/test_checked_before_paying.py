"""Arguments that would only fail after a run was created are refused before anything is sent.

A bad client setting, a generate() timeout or callback of the wrong kind, a folder the video cannot
be written to, a sweep timeout of zero, an artifacts target whose storage driver is missing: each
used to surface after the create (the run paid for, then an error). Each is now refused up front;
the emulator's own count shows that nothing was created.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import pytest

import runflow_nb as rf
from runflow_nb import errors

PROMPT = "character1 gallops along the shore"
KEY = "rf_test_checked"


def runs_created(server: Any) -> int:
    return int(server.emulator.simulator.counts()["runs"])


@pytest.mark.parametrize(("setting", "value"), [
    ("wait_timeout", "600"), ("wait_timeout", 0), ("wait_timeout", math.inf), ("poll_interval", -1),
    ("poll_interval", "2"), ("poll_max", math.nan), ("download_timeout", None), ("timeout", -5),
    ("timeout", True), ("max_retries", -1), ("max_retries", 2.5), ("simulator_latency", -0.1),
    ("artifacts_dir", 5),
])
@pytest.mark.parametrize("cls", [rf.Client, rf.AsyncClient])
def test_a_client_setting_that_cannot_work_is_refused_when_the_client_is_made(
        cls: type, setting: str, value: Any) -> None:
    with pytest.raises(errors.ConfigurationError, match=setting):
        cls(api_key=KEY, **{setting: value})


def test_usable_client_settings_are_taken() -> None:
    client = rf.Client(api_key=KEY, wait_timeout=600, poll_interval=0.5, poll_max=5, download_timeout=60,
                       timeout=httpx.Timeout(30.0), max_retries=0, simulator_latency=0)
    client.close()


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"timeout": "10"}, errors.ConfigurationError), ({"timeout": 0}, errors.ConfigurationError),
    ({"on_event": 5}, errors.UsageError), ({"out_dir": 5}, errors.UsageError),
    ({"out_dir": "FILE"}, errors.ConfigurationError),
])
def test_generate_refuses_its_own_arguments_before_the_run_is_created(
        emulator_server: Any, ref_images: list[Path], tmp_path: Path, kwargs: dict[str, Any],
        error: type[Exception]) -> None:
    if kwargs.get("out_dir") == "FILE":
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        kwargs = {"out_dir": blocker}
    client = rf.Client(api_key=KEY, base_url=emulator_server.url, poll_interval=0.05)
    with pytest.raises(error):
        client.generate(prompt=PROMPT, images=[str(ref_images[0])], duration=3, resolution="720p", **kwargs)
    assert runs_created(emulator_server) == 0


def test_the_async_generate_refuses_an_unwritable_folder_before_the_run_is_created(
        emulator_server: Any, ref_images: list[Path], tmp_path: Path) -> None:
    import asyncio

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    async def go() -> None:
        async with rf.AsyncClient(api_key=KEY, base_url=emulator_server.url, poll_interval=0.05) as client:
            await client.generate(prompt=PROMPT, images=[str(ref_images[0])], duration=3, resolution="720p",
                                  out_dir=blocker / "videos")

    with pytest.raises(errors.ConfigurationError, match="nothing was submitted"):
        asyncio.run(go())
    assert runs_created(emulator_server) == 0


@pytest.mark.parametrize("timeout", ["5", 0, -1, math.nan, math.inf, True])
def test_a_sweep_timeout_that_cannot_work_is_refused_before_anything_is_sent(
        emulator_server: Any, ref_images: list[Path], tmp_path: Path, timeout: Any) -> None:
    exp = rf.Experiment("t", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a",
                        client=rf.Client(api_key=KEY, base_url=emulator_server.url, poll_interval=0.05))
    plan = rf.grid(prompt=PROMPT, images=[str(ref_images[0])], seed=[1, 2], duration=3, resolution="720p")
    with pytest.raises(errors.ValidationError, match="timeout"):
        exp.run(plan, timeout=timeout, progress=None)
    assert runs_created(emulator_server) == 0 and exp.table().empty
    exp.close()


@pytest.mark.parametrize("target", ["zz://bucket/videos", "gs://bucket/videos"])
def test_an_artifacts_target_without_its_storage_driver_is_refused_before_anything_is_paid(
        emulator_server: Any, ref_images: list[Path], tmp_path: Path, target: str) -> None:
    import importlib.util

    if target.startswith("gs:") and importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here")
    exp = rf.Experiment("remote", store=str(tmp_path / "s.sqlite"), artifacts=target,
                        client=rf.Client(api_key=KEY, base_url=emulator_server.url, poll_interval=0.05))
    plan = rf.grid(prompt=PROMPT, images=[str(ref_images[0])], seed=[1, 2], duration=3, resolution="720p")
    with pytest.raises(errors.ConfigurationError, match=target.split(":")[0]):
        exp.run(plan, progress=None)
    assert runs_created(emulator_server) == 0
    exp.close()


def test_a_remote_target_that_takes_writes_passes_the_check(tmp_path: Path) -> None:
    from runflow_nb.media.artifacts import Artifacts

    target = Artifacts("memory://runflow-check/videos")
    target.check_writable("exp")
    assert not [p for p in target.fs.find("/runflow-check") if ".write-check" in p]  # the probe is gone
