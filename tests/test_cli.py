"""The `runflow-nb` command: help everywhere, generate, errors, and the emulator as a real process."""

from __future__ import annotations

import io
import os
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path

import av
import httpx
import pytest
from test_emulator import MODEL_PAGE_SNIPPET as MODEL_PAGE_EXAMPLE  # the model page's snippet, verbatim

from runflow_nb.cli import build_parser, main

COMMANDS = ["generate", "sweep", "table", "report", "demo", "emulator", "migrate"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    out = subprocess.run([sys.executable, "-m", "runflow_nb.cli", command, "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout.lower() and len(out.stdout) > 200


def test_top_level_help_lists_every_command() -> None:
    text = build_parser().format_help()
    for command in COMMANDS:
        assert command in text


def test_generate_prints_path_seed_timing_and_cost(ref_images: list[Path], tmp_path: Path) -> None:
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(["generate", "--prompt", "character1 spins", "--image", str(ref_images[0]), "--duration", "3",
                   "--resolution", "720p", "--seed", "11", "--out", str(tmp_path)])
    text = buf.getvalue()
    assert rc == 0
    video = re.search(r"video:\s+(\S+)", text)
    assert video and Path(video.group(1)).exists()
    assert re.search(r"seed:\s+11\b", text) and "timing:" in text
    assert "simulator; the model would charge $0.42" in text


def test_generate_refuses_bad_input_with_the_fields_named(ref_images: list[Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["generate", "--prompt", "character4 hides", "--image", str(ref_images[0]), "--duration", "30",
               "--resolution", "4k", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    for field in ("prompt", "duration", "resolution"):
        assert f"{field}:" in err
    assert "Traceback" not in err and not list(tmp_path.iterdir())


@pytest.fixture
def emulator_cli() -> Iterator[str]:
    """``runflow-nb emulator`` in its own process on a port the OS picks; its first line on stdout is
    the URL it serves (read as soon as it is there: no port to race for, no fixed wait)."""
    proc = subprocess.Popen([sys.executable, "-m", "runflow_nb.cli", "emulator", "--host", "127.0.0.1",
                             "--port", "0", "--latency", "0.2"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 300)  # a hang guard, not an expectation
        url = proc.stdout.readline().strip() if ready else ""
        assert url.startswith("http://127.0.0.1:"), f"the emulator did not start (exit {proc.poll()})"
        yield url
    finally:
        proc.terminate()
        proc.wait(60)




def test_the_model_page_example_runs_against_runflow_nb_emulator(emulator_cli: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(MODEL_PAGE_EXAMPLE.replace("https://api.runflow.io", emulator_cli))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    url = out.stdout.strip().splitlines()[-1]
    assert url.startswith(emulator_cli)
    video = tmp_path / "clip.mp4"
    video.write_bytes(httpx.get(url, timeout=60).content)
    with av.open(str(video)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.width, v.codec_context.height) == (1920, 1080)
        assert abs(float(v.duration * v.time_base) - 5) <= 0.1
        assert abs(float(a.duration * a.time_base) - 5) <= 0.1


def test_generate_against_the_emulator_process_over_http(emulator_cli: str, ref_images: list[Path],
                                                         tmp_path: Path) -> None:
    env = {**os.environ, "RUNFLOW_API_KEY": "rf_test_cli_key", "RUNFLOW_BASE_URL": emulator_cli}
    out = subprocess.run([sys.executable, "-m", "runflow_nb.cli", "generate", "--prompt", "character1",
                          "--image", str(ref_images[0]), "--duration", "3", "--resolution", "720p",
                          "--out", str(tmp_path), "--json"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    import json

    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["backend"] == "runflow" and info["cost_usd"] == 0.42 and Path(info["video"]).exists()
    assert "rf_test_cli_key" not in out.stdout + out.stderr
