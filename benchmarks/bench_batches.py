"""Requests per run: the same sweep as single runs and as batches, against the emulator in its own
process (1 s latency), counted by the emulator (``/_emulator/stats``), with wall time.

    python benchmarks/bench_batches.py [--runs 40] [--concurrency 40] [--latency 1.0]

Both sweeps use the same concurrency (runs in flight) and poll interval; the batched one sends
runs that are ready together (``exp.run(..., batch="auto")``) and polls each batch with one request.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _emulator_proc import emulator_process

KEY = "rf_bench_key"


def _stats(url: str) -> dict[str, Any]:
    import httpx

    return httpx.get(f"{url}/_emulator/stats", timeout=30).json()  # type: ignore[no-any-return]


def _sweep(url: str, image: Path, seeds: list[int], concurrency: int, work: Path, batch: bool | str,
           poll: float) -> dict[str, Any]:
    import runflow_nb as rf

    client = rf.Client(api_key=KEY, base_url=url, poll_interval=poll)
    exp = rf.Experiment("bench", store=str(work / "bench.sqlite"), artifacts=work / "artifacts", client=client)
    plan = rf.grid(prompt="character1 gallops", images=[[image]], seed=seeds, duration=3, resolution="720p")
    before = _stats(url)["requests"]
    t0 = time.perf_counter()
    df = exp.run(plan, concurrency=concurrency, progress=None, batch=batch)
    wall = time.perf_counter() - t0
    requests = _stats(url)["requests"] - before - 1  # the stats read itself
    ok = int((df["status"] == "succeeded").sum())
    exp.close()
    return {"wall_s": wall, "requests": requests, "succeeded": ok, "requests_per_run": requests / len(seeds)}


def run(*, runs: int = 40, concurrency: int = 40, latency: float = 1.0, poll: float = 0.2) -> dict[str, Any]:
    from runflow_nb.samples import sample_images

    with tempfile.TemporaryDirectory() as tmp, emulator_process(latency=latency) as url:
        work = Path(tmp)
        image = sample_images(1, folder=work)[0]
        _sweep(url, image, [10_000], 1, work / "warm", False, poll)  # warm the render cache
        single = _sweep(url, image, list(range(runs)), concurrency, work / "single", False, poll)
        batched = _sweep(url, image, list(range(runs, 2 * runs)), concurrency, work / "batched", "auto", poll)
    return {"runs": runs, "concurrency": concurrency, "latency_s": latency, "poll_s": poll,
            "single": single, "batched": batched,
            "requests_ratio": batched["requests"] / max(1, single["requests"]),
            "wall_ratio": batched["wall_s"] / single["wall_s"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--concurrency", type=int, default=40)
    ap.add_argument("--latency", type=float, default=1.0)
    a = ap.parse_args()
    print(json.dumps(run(runs=a.runs, concurrency=a.concurrency, latency=a.latency), indent=2))


if __name__ == "__main__":
    main()
