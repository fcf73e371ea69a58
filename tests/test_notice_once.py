"""The offline-simulator notice shows once per process (a kernel, a CLI invocation), through the
toolkit's notices and never through logging's last-resort handler."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import logging, sys
class Count(logging.Handler):
    seen = 0
    def emit(self, record):
        Count.seen += 1
logging.lastResort = Count()
import runflow_nb as rf
for cell in range(3):  # three cells, each with its own client, as a notebook would
    print(f"--cell {cell}", file=sys.stderr, flush=True)
    client = rf.Client(artifacts_dir=sys.argv[1])
    client.generate(prompt="character1 rests", images=[sys.argv[2]], duration=3, resolution="720p")
print(f"lastResort records: {Count.seen}")
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNFLOW_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env["RUNFLOW_SIMULATOR_LATENCY"] = "0.05"
    env["RUNFLOW_CACHE_DIR"] = env.get("RUNFLOW_CACHE_DIR", "")
    return {k: v for k, v in env.items() if v != ""}


def test_the_simulator_notice_shows_once_per_process_and_never_via_last_resort(tmp_path: Path,
                                                                                ref_images: list[Path]) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), str(ref_images[0])], capture_output=True,
                         text=True, env=_env(), timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr.count("OFFLINE SIMULATOR") == 1, out.stderr
    assert out.stderr.index("OFFLINE SIMULATOR") < out.stderr.index("--cell 1")  # in the first cell only
    assert "lastResort records: 0" in out.stdout


def test_the_package_logger_has_a_null_handler() -> None:
    import logging

    import runflow_nb  # noqa: F401

    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("runflow_nb").handlers)


def test_one_cli_invocation_shows_the_notice_once(tmp_path: Path, ref_images: list[Path]) -> None:
    cmd = [sys.executable, "-m", "runflow_nb", "sweep", "--experiment", "n", "--prompt", "character1 rests",
           "--image", str(ref_images[0]), "--seeds", "1,2", "--duration", "3", "--resolution", "720p",
           "--store", str(tmp_path / "rf.sqlite")]
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (out.stdout + out.stderr).count("OFFLINE SIMULATOR") == 1
