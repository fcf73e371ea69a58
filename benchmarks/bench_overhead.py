"""Per-run overhead of the toolkit over loopback, against the hand-written `requests` loop.

The emulator runs at latency 0 in its own process, so each run costs only its (cached) render on
the server. N sequential runs are timed three ways, and the differences are the toolkit's cost:

* ``requests`` loop: the model page's blocking POST, GET of the video, write the file;
* ``generate+store``: ``VideoRequest.build`` (Pillow decode, sha256), ``Client.generate`` (submit,
  poll, streamed download with size and sha256 checks, atomic rename) and the store writes a sweep
  makes (insert before submit, three updates);
* ``sweep c=1``: ``Experiment.run`` at concurrency 1 (the above plus probe and poster frame).

    python benchmarks/bench_overhead.py [--runs 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _emulator_proc import emulator_process
from bench_sweep import KEY, sequential_requests_loop

PROMPT = "character1 gallops"
POLL_S = 0.02


def generate_and_store(url: str, image: Path, seeds: list[int], work: Path) -> float:
    import runflow_nb as rf
    from runflow_nb.request import VideoRequest
    from runflow_nb.store.runstore import Store

    client = rf.Client(api_key=KEY, base_url=url, poll_interval=POLL_S)
    store = Store(work / "overhead.sqlite")
    t0 = time.perf_counter()
    for seed in seeds:
        req = VideoRequest.build(prompt=PROMPT, images=[image], duration=3, resolution="720p", seed=seed)
        now = datetime.now(timezone.utc)
        row = store.insert_run({"experiment": "overhead", "run_key": req.run_key(), "status": "planned",
                                "prompt": req.prompt, **req.params(), "created_at": now, "attempts": 0,
                                "client_ref": f"bench-{uuid.uuid4().hex}"})
        store.update_run(row["run_id"], status="submitting", submitted_at=now, attempts=1)
        res = client.generate(req, out_dir=work / "artifacts", client_ref=row["client_ref"])
        store.update_run(row["run_id"], status="running", remote_id=res.run.id)
        store.update_run(row["run_id"], status="succeeded", video_path=str(res.video_path),
                         video_sha256=res.video_sha256, cost_usd=res.cost_usd, wall_s=res.wall_s)
    elapsed = time.perf_counter() - t0
    client.close()
    store.close()
    return elapsed


def sweep_c1(url: str, image: Path, seeds: list[int], work: Path) -> float:
    import runflow_nb as rf

    client = rf.Client(api_key=KEY, base_url=url, poll_interval=POLL_S)
    exp = rf.Experiment("overhead-sweep", store=str(work / "sweep.sqlite"), artifacts=work / "sweep", client=client)
    plan = rf.grid(prompt=PROMPT, images=[[image]], seed=seeds, duration=3, resolution="720p")
    t0 = time.perf_counter()
    exp.run(plan, concurrency=1, progress=None)
    elapsed = time.perf_counter() - t0
    exp.store.close()
    return elapsed


def components(image: Path, video: Path, work: Path, runs: int) -> dict[str, float]:
    """Milliseconds per run of the parts that are not network: validation, store writes, probe+poster."""
    from runflow_nb.media.probe import poster_frame, probe
    from runflow_nb.request import VideoRequest
    from runflow_nb.store.runstore import Store

    def per_run(fn: Any) -> float:
        t0 = time.perf_counter()
        for i in range(runs):
            fn(i)
        return (time.perf_counter() - t0) * 1000 / runs

    store = Store(work / "components.sqlite")

    def writes(i: int) -> None:
        now = datetime.now(timezone.utc)
        row = store.insert_run({"experiment": "c", "run_key": f"k{i}", "status": "planned", "created_at": now,
                                "attempts": 0, "client_ref": f"c-{uuid.uuid4().hex}"})
        for status in ("submitting", "running", "succeeded"):
            store.update_run(row["run_id"], status=status)

    out = {"validation_ms": per_run(lambda i: VideoRequest.build(prompt=PROMPT, images=[image], duration=3,
                                                                 resolution="720p", seed=i)),
           "store_ms": per_run(writes),
           "probe_poster_ms": per_run(lambda i: (probe(video), poster_frame(video, work / "poster.jpg")))}
    store.close()
    return out


def run(*, runs: int = 20) -> dict[str, Any]:
    from runflow_nb.samples import sample_images

    with tempfile.TemporaryDirectory() as tmp, emulator_process(latency=0.0) as url:
        work = Path(tmp)
        image = sample_images(1, folder=work)[0]
        sequential_requests_loop(url, image, [0], work)  # warm the render cache and both code paths
        generate_and_store(url, image, [1], work / "warm")
        base = 1000
        loop_s = sequential_requests_loop(url, image, [base + s for s in range(runs)], work)
        toolkit_s = generate_and_store(url, image, [2 * base + s for s in range(runs)], work)
        sweep_s = sweep_c1(url, image, [3 * base + s for s in range(runs)], work)
        parts = components(image, next((work / "artifacts").glob("*.mp4")), work, runs)
    ms = 1000 / runs
    return {"runs": runs, "poll_s": POLL_S, "loop_ms": loop_s * ms, "toolkit_ms": toolkit_s * ms,
            "sweep_ms": sweep_s * ms, "overhead_ms": (toolkit_s - loop_s) * ms,
            "sweep_overhead_ms": (sweep_s - loop_s) * ms, **parts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    r = run(runs=ap.parse_args().runs)
    print(f"{r['runs']} sequential runs at emulator latency 0 (toolkit polls every {r['poll_s']} s)")
    print(f"  requests loop        {r['loop_ms']:7.1f} ms/run")
    print(f"  generate + store     {r['toolkit_ms']:7.1f} ms/run   overhead {r['overhead_ms']:+.1f} ms/run")
    print(f"  Experiment.run c=1   {r['sweep_ms']:7.1f} ms/run   overhead {r['sweep_overhead_ms']:+.1f} ms/run")
    print(f"  of which: validation {r['validation_ms']:.1f}, store writes {r['store_ms']:.1f}, probe + poster "
          f"{r['probe_poster_ms']:.1f} ms/run; the rest is submit + polling (async API) vs one blocking POST")


if __name__ == "__main__":
    main()
