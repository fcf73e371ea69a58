"""Simulator render time per model of the family, against reference-to-video's render in the same run.

Each model renders fresh 3 s 720p clips (new seeds, so no cached video stream is reused): text-to-video
draws a scene, image-to-video pans one image, video-edit decodes, re-grades and re-encodes a clip
(with ``audio_setting`` origin and auto). The goal: no model costs more than 2.5× a reference-to-video
render, so a study across models stays inside the demo's time budget.

Also timed (``--notebook``): the ``compare_models`` report with its defaults (3 models × 2 seeds,
3 s 720p, plus one video-edit) against a ``seed_sweep`` report of the same six clips, in the same
run; the demo budget is under a minute.

    python benchmarks/bench_family.py [--repeat 3] [--notebook]
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
GOAL_NOTEBOOK_S = 60.0
ROOT = Path(__file__).resolve().parents[1]


def _render_once(sim: Any, model: str, inp: dict[str, Any], **kw: Any) -> float:
    t0 = time.perf_counter()
    run = sim.submit(inp, model=model, **kw)
    done = sim.wait(run["id"], timeout=300)
    assert done["status_code"] == "succeeded", done
    return time.perf_counter() - t0


def measure(*, repeat: int = 3) -> dict[str, Any]:
    from PIL import Image

    from runflow_nb.simulator.engine import Simulator

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


def notebook() -> dict[str, Any]:
    """Wall time of the compare_models report (defaults) and of a seed_sweep report of six clips."""
    from runflow_nb.report.build import run_report

    env = {"RUNFLOW_API_KEY": None, "RUNFLOW_BASE_URL": None, "RUNFLOW_BACKEND": "simulator"}
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, params in (("seed_sweep", {"seeds": list(range(1, 7)), "durations": [3]}), ("compare_models", {})):
            work = Path(tmp) / name
            t0 = time.perf_counter()
            rep = run_report(ROOT / "notebooks" / f"{name}.ipynb", out_dir=work / "report", quiet=True,
                             parameters={**params, "store": str(work / "runflow.sqlite"),
                                         "artifacts_dir": str(work / "art")}, env=env)
            out[name] = time.perf_counter() - t0
            assert rep.summary is not None and rep.summary["submitted"] >= 6, rep.summary
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--notebook", action="store_true", help="also time the compare_models report")
    a = p.parse_args(argv)
    r = measure(repeat=a.repeat)
    ok = True
    for name, s in r["seconds"].items():
        ratio = r["ratios"][name]
        good = ratio <= GOAL_RATIO
        ok &= good
        print(f"{name:<12} {s:6.2f} s per 3 s 720p clip   {ratio:4.2f}x r2v   "
              f"{'ok' if good else 'MISSED'} (goal <= {GOAL_RATIO}x)")
    if a.notebook:
        t = notebook()
        good = t["compare_models"] < GOAL_NOTEBOOK_S
        ok &= good
        print(f"compare_models report {t['compare_models']:.1f} s (6 clips + 1 edit)   seed_sweep report of 6 clips "
              f"{t['seed_sweep']:.1f} s   {t['compare_models'] / t['seed_sweep']:.2f}x   "
              f"{'ok' if good else 'MISSED'} (goal < {GOAL_NOTEBOOK_S:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
