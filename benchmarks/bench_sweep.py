"""Sweep efficiency: a 24-run sweep at concurrency 8 against the emulator (1 s latency) versus the
ideal ceil(24/8) × latency, and versus the sequential loop of the model page's `requests` snippet.

    python benchmarks/bench_sweep.py [--runs 24] [--concurrency 8] [--latency 1.0]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _emulator_proc import emulator_process

KEY = "rf_bench_key"


def _images(folder: Path) -> list[Path]:
    from runflow_nb.samples import sample_images

    return sample_images(1, folder=folder)


def sequential_requests_loop(url: str, image: Path, seeds: list[int], out: Path) -> float:
    """What a user writes by hand: the model page's blocking POST, then a download, one at a time."""
    import base64

    import requests

    data_uri = "data:image/png;base64," + base64.b64encode(image.read_bytes()).decode()
    t0 = time.perf_counter()
    for seed in seeds:
        r = requests.post(f"{url}/v1/run/happy-horse/reference-to-video",
                          headers={"Authorization": f"Bearer {KEY}"},
                          json={"prompt": "character1 gallops", "image_urls": [data_uri], "duration": 3,
                                "resolution": "720p", "seed": seed}, timeout=600)
        r.raise_for_status()
        video = requests.get(r.json()["video"]["url"], timeout=600)
        (out / f"seq_{seed}.mp4").write_bytes(video.content)
    return time.perf_counter() - t0


def toolkit_sweep(url: str, image: Path, seeds: list[int], concurrency: int, work: Path) -> tuple[float, Any]:
    import runflow_nb as rf

    client = rf.Client(api_key=KEY, base_url=url, poll_interval=0.05)
    exp = rf.Experiment("bench", store=str(work / "bench.sqlite"), artifacts=work / "artifacts", client=client)
    plan = rf.grid(prompt="character1 gallops", images=[[image]], seed=seeds, duration=3, resolution="720p")
    t0 = time.perf_counter()
    df = exp.run(plan, concurrency=concurrency, progress=None)
    return time.perf_counter() - t0, df


def run(*, runs: int = 24, concurrency: int = 8, latency: float = 1.0, sequential: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, emulator_process(latency=latency) as url:
        work = Path(tmp)
        image = _images(work)[0]
        # Warm the emulator's render cache (one picture per seed) so both contenders see the same
        # per-clip cost and the sweep measures the toolkit, not the simulator's encoder.
        seeds = list(range(runs))
        toolkit_sweep(url, image, seeds + ([s + 100_000 for s in seeds] if sequential else []), concurrency,
                      work / "warm")
        sweep_s, df = toolkit_sweep(url, image, seeds, concurrency, work / "sweep")
        ok = int((df["status"] == "succeeded").sum())
        ideal = math.ceil(runs / concurrency) * latency
        seq_s = sequential_requests_loop(url, image, [s + 100_000 for s in seeds], work) if sequential else float("nan")
    return {"runs": runs, "concurrency": concurrency, "latency_s": latency, "succeeded": ok,
            "sweep_s": sweep_s, "ideal_s": ideal, "sweep_over_ideal": sweep_s / ideal,
            "efficiency": ideal / sweep_s, "sequential_s": seq_s, "speedup_vs_sequential": seq_s / sweep_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=24)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--latency", type=float, default=1.0)
    ap.add_argument("--no-sequential", action="store_true")
    a = ap.parse_args()
    r = run(runs=a.runs, concurrency=a.concurrency, latency=a.latency, sequential=not a.no_sequential)
    print(f"sweep of {r['runs']} runs at concurrency {r['concurrency']}, emulator latency {r['latency_s']:.1f} s")
    print(f"  succeeded                   {r['succeeded']}/{r['runs']}")
    print(f"  toolkit sweep wall time     {r['sweep_s']:.2f} s")
    print(f"  ideal ceil(n/c) x latency   {r['ideal_s']:.2f} s   -> sweep/ideal {r['sweep_over_ideal']:.2f}x "
          f"(efficiency {r['efficiency']:.2f})")
    print(f"  sequential requests loop    {r['sequential_s']:.2f} s   -> speed-up {r['speedup_vs_sequential']:.1f}x")


if __name__ == "__main__":
    main()
