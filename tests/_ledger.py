"""What a loopback emulator made and billed, read from its own ledger, for the money tests:
runs made per client_ref, the billed count and total, and a wait until no run is still going.
"""

from __future__ import annotations

import time

from runflow_nb.emulator import Emulator


def made_per_ref(emu: Emulator) -> dict[str, int]:
    """client_ref -> runs the server made under it (runs made without a client_ref count under "")."""
    book = emu.ledger_view()
    made = {ref: entry["made"] for ref, entry in book["by_client_ref"].items() if entry["made"]}
    refless = book["runs_made"] - sum(made.values())
    if refless:
        made[""] = refless
    return made


def made_twice(emu: Emulator) -> dict[str, int]:
    """The client_refs the server made more than one run under, with how many."""
    return {ref: n for ref, n in made_per_ref(emu).items() if n > 1}


def billed(emu: Emulator) -> tuple[int, float]:
    """Runs the server billed and their total in USD (rounded to the cent)."""
    book = emu.ledger_view()
    return book["count"], book["total_usd"]


def settle(emu: Emulator, timeout: float = 60.0) -> None:
    """Wait until no run on the server is queued, dispatching or running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        going = emu.stats()["runs_by_status"]
        if not any(going.get(s, 0) for s in ("queued", "dispatching", "running")):
            return
        time.sleep(0.05)
    raise AssertionError(f"runs still going on the server after {timeout} s")
