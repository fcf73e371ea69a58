"""Faults the real service can produce, each paid for exactly once (counted on the emulator's ledger).

* "created, then 500" and "created, then the connection dropped", on every create path: the run,
  the upload session and its confirmation. A 5xx after a create is not "not created": taking it
  for a refusal and sending again is the classic double charge.
* A run list that ignores its filters, so the look-up by client_ref sees every run.
* Another caller's run under the same client_ref (client_ref is not unique).
* ``succeeded`` and ``partial_succeeded`` without outputs: billed by the server, no video; a re-run
  must not pay again.

Every test reads what the server billed, not what the client says it did.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

import runflow_nb as rf
from runflow_nb.emulator import Emulator, serve
from runflow_nb.emulator.faults import CreateFault

KEY = "rf_test_pay_once"
PROMPT = "character1 trots along the beach"


def _client(url: str) -> rf.Client:
    return rf.Client(api_key=KEY, base_url=url, poll_interval=0.02, max_retries=4)


def _experiment(url: str, tmp_path: Path, name: str = "once") -> rf.Experiment:
    return rf.Experiment(name, store=str(tmp_path / "store.sqlite"), artifacts=tmp_path / "artifacts",
                         client=_client(url))


def _plan(image: Any, seeds: Any = (1,)) -> Any:
    return rf.grid(prompt=PROMPT, images=[[image]], seed=list(seeds), duration=3, resolution="720p")


def _billed(emulator: Emulator) -> list[dict[str, Any]]:
    return emulator.simulator.ledger()


def _server_runs(emulator: Emulator) -> list[dict[str, Any]]:
    runs = emulator.simulator.list_runs(limit=500)[0]
    return runs


def _mine(emulator: Emulator, experiment: str) -> list[dict[str, Any]]:
    """Billed runs the sweep's own requests created (its metadata), not other callers' runs."""
    out = []
    for entry in _billed(emulator):
        run = emulator.simulator.get(entry["run_id"])
        if (run.get("metadata") or {}).get("experiment") == experiment:
            out.append(run)
    return out


@pytest.fixture
def big_reference(tmp_path: Path) -> Path:
    """A reference too large to send inline: it goes through the upload flow."""
    noise = np.random.default_rng(7).integers(0, 255, (1100, 1500, 3), dtype=np.uint8)
    path = tmp_path / "big.png"
    Image.fromarray(noise).save(path)
    assert path.stat().st_size > 1024 * 1024
    return path


# -- created, then the answer is lost ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["create500", "drop"])
def test_a_run_created_then_answered_badly_is_found_and_paid_once(kind: str, ref_images: list[Path],
                                                                  tmp_path: Path) -> None:
    with serve(port=0, latency=0.1, faults=f"{kind}=1x") as server:
        exp = _experiment(server.url, tmp_path)
        row = exp.run(_plan(ref_images[0]), progress=None).iloc[0]
        emu = server.emulator
        billed, runs = _billed(emu), _server_runs(emu)
        assert emu.stats()["faults"][kind] == 1
        exp.store.close()
    assert row["status"] == "succeeded", row["error_message"]
    assert len(runs) == 1, f"{len(runs)} runs created for one planned run"
    assert len(billed) == 1 and billed[0]["run_id"] == row["remote_id"] and billed[0]["client_ref"] == row["client_ref"]
    assert exp.last_summary is not None and exp.last_summary.submitted == 1


@pytest.mark.parametrize("kind", ["create500", "drop"])
def test_generate_after_a_create_answered_badly_pays_once(kind: str, ref_images: list[Path], tmp_path: Path) -> None:
    with serve(port=0, latency=0.1, faults=f"{kind}=1x") as server:
        client = _client(server.url)
        result = client.generate(prompt=PROMPT, images=[ref_images[0]], duration=3, resolution="720p", seed=4,
                                 out_dir=tmp_path)
        billed, runs = _billed(server.emulator), _server_runs(server.emulator)
        client.close()
    assert len(runs) == 1 and len(billed) == 1 and billed[0]["run_id"] == result.run.id
    assert result.video_path is not None and result.video_path.is_file()


class _BreakOneCreate(Emulator):
    """Breaks the answer of the first create whose path ends with ``target`` (and only that one)."""

    def __init__(self, *, target: str, kind: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.target, self.kind, self.broken = target, kind, 0
        self._path = ""

    def handle(self, request: httpx.Request) -> httpx.Response:
        self._path = request.url.path
        return super().handle(request)

    def create_fault(self) -> CreateFault:
        if not self.broken and self._path.endswith(self.target):
            self.broken += 1
            return CreateFault(self.kind)
        return CreateFault(None)


@pytest.mark.parametrize("kind", ["create500", "drop"])
@pytest.mark.parametrize("target", ["/asset-uploads", "/confirmations", "/runs"])
def test_every_create_path_answered_badly_still_pays_once(kind: str, target: str, big_reference: Path,
                                                         tmp_path: Path) -> None:
    emu = _BreakOneCreate(target=target, kind=kind, latency=0.1)
    try:
        with serve(emulator=emu) as server:
            exp = _experiment(server.url, tmp_path)
            row = exp.run(_plan(big_reference), progress=None).iloc[0]
            exp.store.close()
            assert emu.broken == 1, f"no create on {target} was broken"
            billed, runs = _billed(emu), _server_runs(emu)
            assert row["status"] == "succeeded", row["error_message"]
            assert len(runs) == 1 and len(billed) == 1 and billed[0]["run_id"] == row["remote_id"]
            # the reference reached the run intact, through a confirmed upload
            (url,) = emu.simulator.get(row["remote_id"])["input"]["image_urls"]
            assert url.startswith(server.url) and "asset" in url
            assert httpx.get(url).content == big_reference.read_bytes()
    finally:
        emu.close()


# -- the look-up sees other runs -----------------------------------------------------------------


def test_a_list_that_ignores_filters_does_not_attach_another_run(ref_images: list[Path], tmp_path: Path) -> None:
    """The answer of our create is lost; the list answers every run, others' first."""
    with serve(port=0, latency=0.1) as server:
        other = _client(server.url)
        others = [other.submit(prompt=PROMPT, images=[ref_images[1]], duration=3, resolution="720p", seed=s,
                               client_ref=f"someone-else-{s}").id for s in (11, 12, 13)]
        # created then 500: the client looks the run up (a lost answer would be re-sent under its key)
        server.emulator.faults = "create500=1x,listall"
        exp = _experiment(server.url, tmp_path)
        row = exp.run(_plan(ref_images[0], seeds=[5]), progress=None).iloc[0]
        emu = server.emulator
        assert emu.stats()["faults"]["listall"] >= 1
        mine = _mine(emu, "once")
        other.close()
        exp.store.close()
    assert row["status"] == "succeeded", row["error_message"]
    assert row["remote_id"] not in others
    assert len(mine) == 1 and mine[0]["id"] == row["remote_id"] and mine[0]["client_ref"] == row["client_ref"]
    assert mine[0]["input"]["seed"] == 5 and row["seed_returned"] == 5


def test_another_callers_run_with_the_same_client_ref_is_not_taken_for_ours(ref_images: list[Path],
                                                                            tmp_path: Path) -> None:
    # created then 500, so the run is looked up (a lost answer would be re-sent and replayed by its key)
    with serve(port=0, latency=0.1, faults="create500=1x,dupref=1x") as server:
        exp = _experiment(server.url, tmp_path)
        row = exp.run(_plan(ref_images[0], seeds=[5]), progress=None).iloc[0]
        emu = server.emulator
        runs = _server_runs(emu)
        mine = _mine(emu, "once")
        exp.store.close()
    assert len(runs) == 2 and len({r["client_ref"] for r in runs}) == 1  # ours and the other caller's
    assert row["status"] == "succeeded", row["error_message"]
    assert len(mine) == 1 and mine[0]["id"] == row["remote_id"], "attached another caller's run"
    assert row["seed_returned"] == 5


# -- billed without outputs -------------------------------------------------------------------------


@pytest.fixture
def hollow_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    with serve(port=0, latency=0.1, faults=f"{request.param}=1x") as server:
        yield server


@pytest.mark.parametrize("hollow_server", ["nooutput", "partialnooutput"], indirect=True)
def test_a_run_billed_without_outputs_is_never_paid_again(hollow_server: Any, ref_images: list[Path],
                                                          tmp_path: Path) -> None:
    exp = _experiment(hollow_server.url, tmp_path)
    plan = _plan(ref_images[0])
    first = exp.run(plan, progress=None).iloc[0]
    again = exp.run(plan, progress=None).iloc[0]
    emu = hollow_server.emulator
    billed = _billed(emu)
    exp.store.close()
    assert len(billed) == 1 and len(_server_runs(emu)) == 1, f"paid {len(billed)} times for one planned run"
    assert first["remote_id"] == again["remote_id"] == billed[0]["run_id"]


@pytest.mark.parametrize("hollow_server", ["nooutput", "partialnooutput"], indirect=True)
def test_a_run_billed_without_outputs_is_recorded_as_such_and_counted(hollow_server: Any, ref_images: list[Path],
                                                                      tmp_path: Path) -> None:
    exp = _experiment(hollow_server.url, tmp_path)
    row = exp.run(_plan(ref_images[0]), progress=None).iloc[0]
    (billed,) = _billed(hollow_server.emulator)
    summary = exp.last_summary
    exp.store.close()
    assert row["status"] != "succeeded" or (row["video_path"] and Path(row["video_path"]).is_file())
    assert row["error_message"] and re.search(r"no (video|output)", row["error_message"])
    assert row["cost_usd"] == pytest.approx(billed["cost_usd"])
    assert summary is not None and summary.spent_usd == pytest.approx(billed["cost_usd"])
