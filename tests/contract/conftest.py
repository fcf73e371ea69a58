"""Fixtures for the contract tests: a live emulator on loopback and recording clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _documented import KEY, Recorder

from runflow_nb.client import Client
from runflow_nb.emulator import EmulatorServer, serve


@pytest.fixture
def live() -> Iterator[EmulatorServer]:
    """A fresh emulator on a free loopback port (latency 0.2 s, no faults)."""
    with serve(port=0, latency=0.2) as server:
        yield server


@pytest.fixture
def raw(live: EmulatorServer) -> Iterator[httpx.Client]:
    """A plain HTTP client with a key, for answer-shape checks."""
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as client:
        yield client


@pytest.fixture
def recorded(live: EmulatorServer) -> Iterator[tuple[Client, Recorder]]:
    """The library's client over real HTTP, keeping every request it sent."""
    rec = Recorder()
    client = Client(api_key=KEY, base_url=live.url, transport=rec, poll_interval=0.05)
    yield client, rec
    client.close()


def configure(server: EmulatorServer, **settings: Any) -> dict[str, Any]:
    return httpx.post(f"{server.url}/_emulator/config", json=settings, timeout=30).json()  # type: ignore[no-any-return]
