"""Simulator render time per model of the family, against reference-to-video's render in the same run.

Each model renders fresh 3 s 720p clips (new seeds, so no cached video stream is reused): text-to-video
draws a scene, image-to-video pans one image, video-edit decodes, re-grades and re-encodes a clip
(with ``audio_setting`` origin and auto). The goal: no model costs more than 2.5× a reference-to-video
render, so a study across models stays inside the demo's time budget.

    python benchmarks/bench_family.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL_RATIO = 2.5


def _render_once(sim: Any, model: str, inp: dict[str, Any], **kw: Any) -> float:
    t0 = time.perf_counter()
    run = sim.submit(inp, model=model, **kw)
    done = sim.wait(run["id"], timeout=300)
    assert done["status_code"] == "succeeded", done
    return time.perf_counter() - t0


def measure(*, repeat: int = 3) -> dict[str, Any]:
    from PIL import Image

    from runflow_nb.simulator import Simulator

    img = Image.new("RGB", (900, 600), (200, 90, 40))
    base = {"duration": 3, "resolution": "720p"}
    out: dict[str, list[float]] = {k: [] for k in ("r2v", "t2v", "i2v", "edit origin", "edit auto")}
    with tempfile.TemporaryDirectory() as tmp, Simulator(latency=0.0, workdir=Path(tmp), max_workers=1) as sim:
        seed = 1000
        first = sim.submit({"prompt": "character1 trots", "image_urls": [img], "seed": 1, **base})
        sim.wait(first["id"], timeout=300)
        clip = sim.video_path(first["id"])
        for k in range(repeat):
            seed += 1
            img = Image.new("RGB", (900, 600), (200, 90, 40 + k))  # new pixels: no cached stream is reused
            out["r2v"].append(_render_once(sim, "r2v", {"prompt": "character1 trots", "image_urls": [img],
                                                        "seed": seed, **base}))
            out["t2v"].append(_render_once(sim, "t2v", {"prompt": "a horse at dusk", "seed": seed, **base}))
            out["i2v"].append(_render_once(sim, "i2v", {"image_url": img, "seed": seed, **base}))
            for audio in ("origin", "auto"):
                out[f"edit {audio}"].append(_render_once(
                    sim, "edit", {"prompt": "@Image1 at night", "reference_image_urls": [img], "seed": seed,
                                  "resolution": "720p", "audio_setting": audio}, images=[img], video=clip))
    med = {k: statistics.median(v) for k, v in out.items()}
    return {"seconds": med, "ratios": {k: v / med["r2v"] for k, v in med.items()}, "repeat": repeat}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    r = measure(repeat=a.repeat)
    ok = True
    for name, s in r["seconds"].items():
        ratio = r["ratios"][name]
        good = ratio <= GOAL_RATIO
        ok &= good
        print(f"{name:<12} {s:6.2f} s per 3 s 720p clip   {ratio:4.2f}x r2v   "
              f"{'ok' if good else 'MISSED'} (goal <= {GOAL_RATIO}x)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
