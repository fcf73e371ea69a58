"""How fast does ``Store.table()`` load a large experiment?

Builds SQLite stores with 10k and 100k realistic runs (bulk insert, not timed), then times
``Store.table()`` and ``Experiment.table()`` (what a notebook calls: the store's frame plus
store-relative paths resolved and the documented column order) (best of 3) against a baseline
measured in the same run: a plain ``pd.read_sql("select * from runs", engine)`` that does no
dtype work at all.

    python benchmarks/bench_table.py            # 10k and 100k rows
    python benchmarks/bench_table.py 1000 5000  # other sizes
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from runflow_nb.experiment import Experiment
from runflow_nb.store.runstore import Store

EXPERIMENT = "bench"


def _records(n: int, *, seed: int = 0) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    prompts = [f"a horse galloping on a beach at sunset, take {i}, cinematic, 35mm" for i in range(50)]
    for i in range(n):
        created = start + timedelta(seconds=i)
        status = rng.choice(["succeeded"] * 8 + ["failed", "skipped_budget"])
        done = status == "succeeded"
        duration = rng.choice([5, 8])
        params = {"prompt": prompts[i % 50], "seed": i, "duration": duration, "resolution": "720p"}
        yield {
            "run_id": f"run{i:08d}",
            "experiment": EXPERIMENT,
            "run_key": f"key{i:08d}",
            "client_ref": f"ref{i:08d}",
            "remote_id": f"remote-{i:08d}" if status != "skipped_budget" else None,
            "model": "happyhorse/reference-to-video",
            "status": status,
            "prompt": prompts[i % 50],
            "images": [f"refs/horse_{i % 7}.png", "refs/beach.jpg"],
            "image_sha256": [f"{i % 7:064x}", f"{99:064x}"],
            "aspect_ratio": rng.choice(["16:9", "9:16", "1:1"]),
            "duration": duration,
            "resolution": "720p",
            "seed": i,
            "seed_returned": i if done else None,
            "enable_safety_checker": True,
            "nsfw_detected": False if done else None,
            "params": params,
            "created_at": created,
            "submitted_at": created + timedelta(seconds=0.2),
            "started_at": created + timedelta(seconds=2) if done else None,
            "completed_at": created + timedelta(seconds=40) if done else None,
            "queue_s": rng.uniform(0, 5) if done else None,
            "inference_ms": rng.uniform(20_000, 60_000) if done else None,
            "wall_s": rng.uniform(25, 70) if done else None,
            "cost_estimate_usd": 0.05 * duration,
            "cost_usd": 0.05 * duration if done else None,
            "cost_simulated": True,
            "output_url": f"https://cdn.example/out/{i}.mp4" if done else None,
            "video_path": f"artifacts/{EXPERIMENT}/run{i:08d}.mp4" if done else None,
            "video_sha256": f"{i:064x}" if done else None,
            "poster_path": f"artifacts/{EXPERIMENT}/run{i:08d}.jpg" if done else None,
            "width": 1280 if done else None,
            "height": 720 if done else None,
            "video_duration": float(duration) if done else None,
            "has_audio": True if done else None,
            "error_code": "MODEL_ERROR" if status == "failed" else None,
            "error_message": "the model failed" if status == "failed" else None,
            "attempts": 1,
            "backend": "simulator",
            "tags": ["keep"] if i % 10 == 0 else [],
            "rating": rng.randint(1, 5) if i % 20 == 0 else None,
        }


def _best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(rows: Sequence[int] = (10_000, 100_000), *, repeat: int = 3) -> list[dict[str, Any]]:
    """Time ``Store.table()`` for each size; one dict per size with seconds and ratio to baseline."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in rows:
            store = Store(Path(tmp) / f"bench_{n}.sqlite")
            batch: list[dict[str, Any]] = []
            for record in _records(n):
                batch.append(record)
                if len(batch) == 10_000:
                    store.insert_runs(batch)
                    batch.clear()
            store.insert_runs(batch)
            table_s = _best_of(partial(store.table, EXPERIMENT), repeat)
            exp = Experiment(EXPERIMENT, store=store, artifacts=Path(tmp) / "artifacts")
            exp_table_s = _best_of(exp.table, repeat)
            baseline_s = _best_of(partial(pd.read_sql, "select * from runs", store.engine), repeat)
            assert len(store.table(EXPERIMENT)) == n == len(exp.table())
            store.close()
            results.append(
                {"rows": n, "table_s": table_s, "baseline_s": baseline_s, "ratio": table_s / baseline_s,
                 "exp_table_s": exp_table_s, "exp_ratio": exp_table_s / baseline_s}
            )
    return results


def main(argv: Sequence[str] = ()) -> None:
    sizes = tuple(int(a) for a in argv) or (10_000, 100_000)
    results = run(sizes)
    print(f"{'rows':>8}  {'Store s':>8}  {'exp s':>8}  {'read_sql s':>10}  {'ratios':>11}")
    for r in results:
        print(f"{r['rows']:>8}  {r['table_s']:>8.3f}  {r['exp_table_s']:>8.3f}  {r['baseline_s']:>10.3f}  "
              f"{r['ratio']:>5.2f} {r['exp_ratio']:>5.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
