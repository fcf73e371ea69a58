"""Settings from the environment are honoured, and the key is read only when first needed.

``RUNFLOW_STORE``, ``RUNFLOW_ARTIFACTS`` and ``RUNFLOW_BACKEND`` each change where a default
``Experiment`` writes and which backend it uses; ``RUNFLOW_API_KEY`` set *after* ``import
runflow_nb`` (as in a notebook's second cell) is the key that reaches the server, and importing
the package reads no setting at all. Rows say whether their cost was simulated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import runflow_nb as rf
from runflow_nb.emulator import serve

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("RUNFLOW_API_KEY", "RUNFLOW_BASE_URL", "RUNFLOW_BACKEND", "RUNFLOW_STORE", "RUNFLOW_ARTIFACTS")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No RUNFLOW_* setting, and an empty working folder that must stay empty."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def _plan(image: Path) -> Any:
    return rf.grid(prompt="character1 trots", images=[[image]], seed=[1], duration=3, resolution="720p")


def _ledger(url: str) -> list[dict[str, Any]]:
    return httpx.get(f"{url}/_emulator/ledger").json()["billed"]  # type: ignore[no-any-return]


def test_store_and_artifacts_come_from_the_environment(clean_env: Path, tmp_path: Path, ref_images: list[Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store, artifacts = tmp_path / "elsewhere" / "team.sqlite", tmp_path / "shared-artifacts"
    store.parent.mkdir()
    monkeypatch.setenv("RUNFLOW_STORE", str(store))
    monkeypatch.setenv("RUNFLOW_ARTIFACTS", str(artifacts))
    monkeypatch.setenv("RUNFLOW_BACKEND", "simulator")
    exp = rf.Experiment("from-env")
    try:
        row = exp.run(_plan(ref_images[0]), progress=None).iloc[0]
    finally:
        exp.store.close()
    assert row["status"] == "succeeded" and row["backend"] == "simulator"
    video = Path(row["video_path"])
    video = video if video.is_absolute() else (store.parent / video)
    assert video.is_file() and artifacts.resolve() in video.resolve().parents
    from runflow_nb.store.runstore import Store

    with Store(store) as st:
        assert [r["run_id"] for r in st.runs("from-env")] == [row["run_id"]]
    assert not list(clean_env.iterdir()), f"the working folder got {sorted(os.listdir(clean_env))}"


def test_backend_simulator_wins_over_a_key(clean_env: Path, tmp_path: Path, ref_images: list[Path],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(port=0, latency=0.05) as server:
        monkeypatch.setenv("RUNFLOW_API_KEY", "rf_live_would_be_charged")
        monkeypatch.setenv("RUNFLOW_BASE_URL", server.url)
        monkeypatch.setenv("RUNFLOW_BACKEND", "simulator")
        exp = rf.Experiment("forced-offline", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a")
        try:
            row = exp.run(_plan(ref_images[0]), progress=None).iloc[0]
        finally:
            exp.store.close()
        assert row["status"] == "succeeded" and row["backend"] == "simulator" and bool(row["cost_simulated"])
        assert server.emulator.stats()["requests"] == 0 and not _ledger(server.url)


def test_backend_runflow_uses_the_service_and_its_costs_are_real(clean_env: Path, tmp_path: Path,
                                                                 ref_images: list[Path],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(port=0, latency=0.05, api_key="plainkeywithoutprefix42") as server:
        monkeypatch.setenv("RUNFLOW_API_KEY", "plainkeywithoutprefix42")
        monkeypatch.setenv("RUNFLOW_BASE_URL", server.url)
        monkeypatch.setenv("RUNFLOW_BACKEND", "runflow")
        exp = rf.Experiment("online", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a",
                            client=rf.Client(poll_interval=0.05))
        try:
            row = exp.run(_plan(ref_images[0]), progress=None).iloc[0]
            summary = exp.last_summary
        finally:
            exp.store.close()
        (billed,) = _ledger(server.url)
    assert row["status"] == "succeeded" and row["backend"] == "runflow" and not bool(row["cost_simulated"])
    assert row["remote_id"] == billed["run_id"] and row["cost_usd"] == pytest.approx(billed["cost_usd"])
    assert summary is not None and not summary.simulated and "simulated" not in str(summary)


def test_simulated_costs_are_marked_as_simulated(clean_env: Path, tmp_path: Path, ref_images: list[Path]) -> None:
    exp = rf.Experiment("sim", store=str(tmp_path / "s.sqlite"), artifacts=tmp_path / "a",
                        client=rf.Client(backend="simulator"))
    try:
        table = exp.run(_plan(ref_images[0]), progress=None)
        summary = exp.last_summary
    finally:
        exp.store.close()
    assert table["cost_simulated"].astype(bool).tolist() == [True]
    assert table["cost_usd"].tolist() == [pytest.approx(0.42)]
    assert summary is not None and summary.simulated and "simulated" in str(summary)


def test_a_bad_backend_setting_is_a_clear_error(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNFLOW_BACKEND", "production")
    with pytest.raises(rf.errors.ConfigurationError, match="RUNFLOW_BACKEND"):
        _ = rf.Client().backend


_SPY = r"""
import json, os, sys
reads = []
class Spy(type(os.environ)):
    def __getitem__(self, key):
        if str(key).startswith("RUNFLOW_"):
            reads.append(str(key))
        return super().__getitem__(key)
os.environ.__class__ = Spy
import runflow_nb as rf
import runflow_nb.client, runflow_nb.experiment, runflow_nb.sweep.runner, runflow_nb.report.build, runflow_nb.cli  # noqa
at_import = sorted(set(reads))
client = rf.Client(poll_interval=0.05)          # built before the key is set, as in a notebook
at_construction = sorted(set(reads))
os.environ["RUNFLOW_API_KEY"] = sys.argv[1]       # the notebook's next cell
os.environ["RUNFLOW_BASE_URL"] = sys.argv[2]
run = client.submit(prompt="character1 trots", images=[sys.argv[3]], duration=3, resolution="720p", seed=1)
print(json.dumps({"at_import": at_import, "at_construction": at_construction, "backend": client.backend,
                  "run": run.id}))
"""


def test_the_key_is_read_at_first_use_not_at_import(ref_images: list[Path], tmp_path: Path) -> None:
    key = "noprefixkey-set-after-import-0042"
    with serve(port=0, latency=0.05, api_key=key) as server:
        env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        proc = subprocess.run([sys.executable, "-c", _SPY, key, server.url, str(ref_images[0])], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
        created = server.emulator.simulator.get(seen["run"])  # the emulator accepts only this key
    assert seen["at_import"] == [], f"importing the package read {seen['at_import']}"
    early = set(seen["at_construction"]) & {"RUNFLOW_API_KEY", "RUNFLOW_BASE_URL", "RUNFLOW_BACKEND"}
    assert not early, f"Client() read {sorted(early)} before its first use"
    assert seen["backend"] == "runflow" and created["id"] == seen["run"]  # the key set after import was used
