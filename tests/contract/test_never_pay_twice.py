"""A create whose answer is lost is paid once: replayed by Idempotency-Key where the server honours
keys, found by client_ref where it does not, and a 409 for the key is never answered by paying again.
Loopback HTTP against the emulator; the emulator's ledger and create journal are the witnesses."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _documented import KEY, Recorder
from conftest import configure
from PIL import Image

from runflow_nb import AsyncClient
from runflow_nb.client import Client
from runflow_nb.emulator import Emulator, EmulatorServer, serve
from runflow_nb.emulator.faults import CreateFault


def small_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (800, 600), (30, 160, 90)).save(buf, "PNG")
    return buf.getvalue()


def big_png(tmp_path: Path) -> Path:
    """A PNG above the inline threshold (so it goes through the upload flow)."""
    img = Image.fromarray(np.random.default_rng(3).integers(0, 255, (900, 1100, 3), dtype=np.uint8))
    path = tmp_path / "reference.png"
    img.save(path)
    return path


class _DropFirstRunCreate(Emulator):
    """Drops the answer of the first run create only (uploads and confirmations pass)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.left, self._path = 1, ""

    def handle(self, request: httpx.Request) -> httpx.Response:
        self._path = request.url.path
        return super().handle(request)

    def create_fault(self) -> CreateFault:
        if self.left and self._path.endswith("/runs"):
            self.left -= 1
            return CreateFault("drop")
        return CreateFault(None)


def ledger(server: EmulatorServer) -> dict[str, Any]:
    return httpx.get(f"{server.url}/_emulator/ledger", timeout=30).json()  # type: ignore[no-any-return]


def stats(server: EmulatorServer) -> dict[str, Any]:
    return httpx.get(f"{server.url}/_emulator/stats", timeout=30).json()  # type: ignore[no-any-return]


def test_a_dropped_create_is_found_by_client_ref_and_never_re_sent_on_an_unproven_route(
        live: EmulatorServer, recorded: tuple[Client, Recorder]) -> None:
    client, rec = recorded
    configure(live, faults="drop=1x")
    run = client.submit(prompt="character1", images=[small_png()], duration=3, resolution="720p", seed=5,
                        client_ref="dropped-once")
    done = client.wait(run.id, timeout=60)
    assert done.succeeded
    creates = rec.to("POST", "/runs")
    # the server honours keys, but no replay was ever seen on the run route: the lost answer is settled by
    # a look-up (a positive sighting), never by a re-send that would bill twice where keys are not kept
    assert len(creates) == 1, "the lost create was re-sent"
    journal = [(e["route"], e["via"]) for e in ledger(live)["creates"] if e["route"] == "runs"]
    assert journal == [("runs", "created")]
    assert stats(live)["client_ref_lookups"] >= 1
    billed = ledger(live)["billed"]
    assert [e["client_ref"] for e in billed] == ["dropped-once"] and billed[0]["run_id"] == run.id


def test_without_key_support_the_client_ref_look_up_still_pays_once(live: EmulatorServer,
                                                                    recorded: tuple[Client, Recorder]) -> None:
    client, rec = recorded
    configure(live, faults="drop=1x", idempotency=False)
    run = client.submit(prompt="character1", images=[small_png()], duration=3, resolution="720p", seed=6,
                        client_ref="no-keys-here")
    assert client.wait(run.id, timeout=60).succeeded
    assert len(rec.to("POST", "/runs")) == 1, "without key support a lost create is looked up, not re-sent"
    assert stats(live)["client_ref_lookups"] >= 1
    assert [e["via"] for e in ledger(live)["creates"] if e["route"] == "runs"] == ["created"]
    assert [e["client_ref"] for e in ledger(live)["billed"]] == ["no-keys-here"]


def test_a_conflict_for_the_key_after_a_re_upload_is_resolved_by_look_up(tmp_path: Path) -> None:
    """A second process re-sends a create whose first answer was lost; its reference is uploaded
    anew (a new signed URL), so the body differs and the server answers 409 for the key."""
    image = big_png(tmp_path)
    with serve(emulator=_DropFirstRunCreate(latency=0.2)) as live:
        _conflict_then_look_up(live, image)
        live.emulator.close()


def _conflict_then_look_up(live: EmulatorServer, image: Path) -> None:
    first = Client(api_key=KEY, base_url=live.url, poll_interval=0.05, max_retries=0)
    # the answer is lost; the look-up finds the run (the process then "dies" before recording it)
    found = first.submit(prompt="character1", images=[image], duration=3, resolution="720p", seed=7,
                         client_ref="crashed-process")
    assert found.client_ref == "crashed-process"
    assert [e["via"] for e in ledger(live)["creates"] if e["route"] == "runs"] == ["created"]
    rec = Recorder()
    second = Client(api_key=KEY, base_url=live.url, transport=rec, poll_interval=0.05)
    run = second.submit(prompt="character1", images=[image], duration=3, resolution="720p", seed=7,
                        client_ref="crashed-process")
    assert second.wait(run.id, timeout=60).succeeded
    assert [e["via"] for e in ledger(live)["creates"] if e["route"] == "runs"] == ["created", "conflict"]
    assert stats(live)["client_ref_lookups"] >= 1
    assert [e["client_ref"] for e in ledger(live)["billed"]] == ["crashed-process"]
    assert len(rec.to("POST", "/runs")) == 1
    first.close()
    second.close()


def test_the_async_client_finds_lost_answers_by_client_ref_as_well(live: EmulatorServer) -> None:
    import asyncio

    configure(live, faults="drop=2x")

    async def main() -> list[str]:
        async with AsyncClient(api_key=KEY, base_url=live.url, poll_interval=0.05) as client:
            runs = await asyncio.gather(*(client.submit(prompt="character1", images=[small_png()], duration=3,
                                                        resolution="720p", seed=s, client_ref=f"async-{s}")
                                          for s in range(3)))
            done = await asyncio.gather(*(client.wait(r.id, timeout=60) for r in runs))
            return [d.status for d in done]

    assert asyncio.run(main()) == ["succeeded"] * 3
    assert sorted(e["client_ref"] for e in ledger(live)["billed"]) == ["async-0", "async-1", "async-2"]
    vias = [e["via"] for e in ledger(live)["creates"] if e["route"] == "runs"]
    assert vias == ["created"] * 3 and stats(live)["client_ref_lookups"] >= 2  # found, never re-sent
