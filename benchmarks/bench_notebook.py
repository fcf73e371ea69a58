"""Executed-notebook size per clip: papermill runs of ``notebooks/seed_sweep.ipynb`` with two seed
counts on the offline simulator; the slope of the ``.ipynb`` (and HTML report) size per extra clip.

Videos are shown by reference with a poster frame, so a clip should cost a few KB, not megabytes.
The notebook's table view (itables) needs the DataTables library (~0.9 MB): the report's HTML
should carry it once and the executed notebook beside it not at all (it loads it from the CDN);
the baseline is the size of one embedded copy, measured in this run.

    python benchmarks/bench_notebook.py [--clips 4 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run(*, clips: tuple[int, int] = (4, 8)) -> dict[str, Any]:
    from runflow_nb.report.build import run_report

    sizes = {}
    copies: dict[int, tuple[int, int]] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for n in clips:
            work = Path(tmp) / f"n{n}"
            out = run_report(ROOT / "notebooks" / "seed_sweep.ipynb", out_dir=work / "report", quiet=True,
                             parameters={"experiment": f"size-{n}", "seeds": list(range(1, n + 1)), "durations": [3],
                                         "store": str(work / "runflow.sqlite"), "artifacts_dir": str(work / "art")},
                             env={"RUNFLOW_API_KEY": None, "RUNFLOW_BASE_URL": None, "RUNFLOW_BACKEND": "simulator",
                                  "RUNFLOW_SIMULATOR_LATENCY": "0.05"})
            assert out.summary is not None and out.summary["counts"].get("succeeded") == n, out.summary
            sizes[n] = (out.notebook.stat().st_size, out.html.stat().st_size)
            copies[n] = (_copies(out.notebook), _copies(out.html))
    (a, b) = clips
    return {"clips": clips, "ipynb_bytes": {n: s[0] for n, s in sizes.items()},
            "html_bytes": {n: s[1] for n, s in sizes.items()},
            "ipynb_per_clip": (sizes[b][0] - sizes[a][0]) / (b - a),
            "html_per_clip": (sizes[b][1] - sizes[a][1]) / (b - a), "seconds": time.perf_counter() - t0,
            "bundle_bytes": len(_bundle()), "ipynb_bundles": copies[b][0], "html_bundles": copies[b][1]}


def _bundle() -> str:
    from itables.javascript import generate_init_offline_itables_html
    from itables.options import dt_bundle

    return str(generate_init_offline_itables_html(dt_bundle))


def _copies(path: Path) -> int:
    """How many copies of the embedded DataTables library ``path`` holds (by a slice of its base64)."""
    bundle = _bundle()
    probe = bundle[len(bundle) // 2: len(bundle) // 2 + 400]
    return path.read_text(encoding="utf-8").count(probe)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, nargs=2, default=(4, 8))
    r = run(clips=tuple(ap.parse_args().clips))
    for n in r["clips"]:
        print(f"{n} clips: executed notebook {r['ipynb_bytes'][n] / 1024:.0f} KB, HTML {r['html_bytes'][n] / 1024:.0f} KB")
    print(f"per clip: notebook {r['ipynb_per_clip'] / 1024:.1f} KB, HTML {r['html_per_clip'] / 1024:.1f} KB")
    print(f"DataTables library ({r['bundle_bytes'] / 1024:.0f} KB) embedded: {r['ipynb_bundles']}x in the notebook, "
          f"{r['html_bundles']}x in the HTML")


if __name__ == "__main__":
    main()
