"""Sweeps through batches: fewer requests, the same guarantees (resume, budget, never pay twice),
and single runs where the model takes no batches. Loopback HTTP against the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from _documented import KEY
from conftest import configure

import runflow_nb as rf
from runflow_nb.emulator import EmulatorServer


def exp_for(tmp_path: Path, server: EmulatorServer, name: str = "batched") -> rf.Experiment:
    client = rf.Client(api_key=KEY, base_url=server.url, poll_interval=0.05)
    return rf.Experiment(name, store=str(tmp_path / "store.sqlite"), artifacts=tmp_path / "artifacts", client=client)


def plan(images: list[Path], n: int) -> Any:
    return rf.grid(prompt="character1 canters", images=[images[:1]], seed=range(n), duration=3, resolution="720p")


def hooks(server: EmulatorServer) -> tuple[dict[str, Any], dict[str, Any]]:
    return (httpx.get(f"{server.url}/_emulator/ledger", timeout=30).json(),
            httpx.get(f"{server.url}/_emulator/stats", timeout=30).json())


def creates(ledger: dict[str, Any], route: str) -> list[dict[str, Any]]:
    return [e for e in ledger["creates"] if e["route"] == route]


def test_a_sweep_goes_out_in_batches_and_bills_each_run_once(live: EmulatorServer, ref_images: list[Path],
                                                             tmp_path: Path) -> None:
    exp = exp_for(tmp_path, live)
    df = exp.run(plan(ref_images, 12), concurrency=12, progress=None, batch="auto")
    assert len(df) == 12 and set(df.status) == {"succeeded"}
    ledger, _ = hooks(live)
    batches = creates(ledger, "batches")
    assert batches and not creates(ledger, "runs"), "every run went out in a batch"
    assert sum(len(b["ids"]) for b in batches if b["via"] == "created") == 12
    assert len(ledger["billed"]) == 12 and len({e["client_ref"] for e in ledger["billed"]}) == 12
    stored = {row["client_ref"] for row in exp.store.runs(experiment="batched")}
    assert stored == {e["client_ref"] for e in ledger["billed"]}  # per-item client_ref = the stored one
    again = exp.run(plan(ref_images, 12), concurrency=12, progress=None, batch="auto")
    assert set(again.status) == {"succeeded"} and exp.last_summary.submitted == 0  # type: ignore[union-attr]
    assert len(hooks(live)[0]["billed"]) == 12  # resume pays nothing twice


def test_a_model_without_batches_falls_back_to_single_runs(live: EmulatorServer, ref_images: list[Path],
                                                           tmp_path: Path) -> None:
    configure(live, batches=False)
    exp = exp_for(tmp_path, live)
    df = exp.run(plan(ref_images, 6), concurrency=6, progress=None, batch="auto")
    assert set(df.status) == {"succeeded"}
    ledger, _ = hooks(live)
    assert not [b for b in creates(ledger, "batches") if b["via"] == "created"]
    assert len([c for c in creates(ledger, "runs") if c["via"] == "created"]) == 6
    assert len(ledger["billed"]) == 6
    assert any("takes no batches" in m for m in exp.last_summary.messages)  # type: ignore[union-attr]


def test_the_budget_holds_with_batches(live: EmulatorServer, ref_images: list[Path], tmp_path: Path) -> None:
    exp = exp_for(tmp_path, live)
    df = exp.run(plan(ref_images, 10), concurrency=10, progress=None, batch="auto", budget_usd=0.42 * 4 + 0.01)
    ledger, _ = hooks(live)
    assert (df.status == "succeeded").sum() == 4 and (df.status == "skipped_budget").sum() == 6
    assert sum(e["cost_usd"] for e in ledger["billed"]) == pytest.approx(0.42 * 4)


@pytest.mark.parametrize("keys", [True, False])
def test_a_lost_batch_answer_pays_once(live: EmulatorServer, ref_images: list[Path], tmp_path: Path,
                                       keys: bool) -> None:
    configure(live, faults="drop=1x", idempotency=keys)
    exp = exp_for(tmp_path, live)
    df = exp.run(plan(ref_images, 8), concurrency=8, progress=None, batch="auto")
    assert set(df.status) == {"succeeded"}
    ledger, stats = hooks(live)
    assert len(ledger["billed"]) == 8 and len({e["client_ref"] for e in ledger["billed"]}) == 8
    vias = [b["via"] for b in creates(ledger, "batches")]
    # with or without key support, the lost answer is settled by a look-up (a positive sighting);
    # the batch is never POSTed again on a route no replay was seen on
    assert vias == ["created"] and stats["client_ref_lookups"] >= 1
    assert sum(len(b["ids"]) for b in creates(ledger, "batches") if b["via"] == "created") == 8


@pytest.mark.parametrize("keys", [True, False])
def test_a_batch_created_then_answered_500_pays_once(live: EmulatorServer, ref_images: list[Path], tmp_path: Path,
                                                     keys: bool) -> None:
    """The batch and its runs exist, the answer is a 500: a failed create leaves no replay, so the
    items are looked up by client_ref before anything is sent again (with key support or without)."""
    configure(live, faults="create500=1x", idempotency=keys)
    exp = exp_for(tmp_path, live)
    df = exp.run(plan(ref_images, 6), concurrency=6, progress=None, batch="auto")
    assert set(df.status) == {"succeeded"}
    ledger, stats = hooks(live)
    assert stats["faults"]["create500"] == 1
    assert len(ledger["billed"]) == 6 and len({e["client_ref"] for e in ledger["billed"]}) == 6
    made = [b for b in creates(ledger, "batches") + creates(ledger, "runs") if b["via"] == "created"]
    assert sum(len(b["ids"]) for b in made) == 6  # no item created twice
    assert stats["client_ref_lookups"] >= 1
    assert set(df.remote_id) == {e["run_id"] for e in ledger["billed"]}


def test_a_batch_draws_its_create_fault_once_however_many_items(ref_images: list[Path]) -> None:
    from runflow_nb.emulator import Emulator

    emu = Emulator(latency=0.05, faults="create500")  # every create's answer breaks
    try:
        http = httpx.Client(transport=httpx.MockTransport(emu.handle), base_url="http://emulator.test",
                            headers={"Authorization": f"Bearer {KEY}"})
        item = {"prompt": "character1", "image_urls": [_data_uri(ref_images[0])], "duration": 3, "resolution": "720p"}
        answer = http.post("/v1/models/alibaba/happy-horse/reference-to-video/batches",
                           json={"input": [{**item, "seed": s, "client_ref": f"rfnb-b{s}"} for s in range(3)]})
        assert answer.status_code == 500
        stats = emu.stats()
        assert stats["faults_total"] == 1
        assert stats["faults"]["create500"] == 1  # one draw for the create, not one per item
        assert emu.simulator.counts()["runs"] == 3  # the batch's runs exist (and will be billed)
    finally:
        emu.close()


def _data_uri(path: Path) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
