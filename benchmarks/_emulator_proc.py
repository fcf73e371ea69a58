"""Start `runflow-nb emulator` in its own process (so its work never shares our GIL) and stop it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def emulator_process(*, latency: float, faults: str | None = None) -> Iterator[str]:
    from runflow_nb.emulator import spawn

    with spawn(latency=latency, faults=faults) as (url, _proc):
        yield url
