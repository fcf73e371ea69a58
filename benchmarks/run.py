"""Every benchmark in one run, printed as one table of measurements against their baselines.

    python benchmarks/run.py            # the full set, under 3 minutes on 2 cores
    python benchmarks/run.py --quick    # smaller sizes, about a minute
    python benchmarks/run.py --json results.json

Each ratio is measured in this run, against a baseline measured in this run (never a number
remembered from elsewhere): the sweep against ideal ceil(n/c)×latency and against the sequential
``requests`` loop of the model page; per-run overhead against that loop at latency 0;
``exp.table()`` against a bare ``pd.read_sql``; the 100 MB download against ``requests.get().content``;
``import runflow_nb`` against ``python -c pass``; requests per run of a batched sweep against the
same sweep as single runs; clip QA of a 5 s 1080p clip against a bare PyAV decode of it. Exit status
1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_batches
import bench_download_memory
import bench_gallery
import bench_import
import bench_notebook
import bench_overhead
import bench_qa
import bench_render
import bench_sweep
import bench_table

Row = tuple[str, str, str, str, str, str]  # metric, measured, baseline, ratio, goal, verdict


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("ok" if ok else "MISSED")


def sweep_rows(r: dict[str, Any], *, judge: bool = True, note: str = "(judged in the full run)") -> list[Row]:
    eff = r["efficiency"]
    name = f"sweep {r['runs']} runs, c={r['concurrency']}, latency {r['latency_s']:g} s"
    verdict = _verdict(eff >= 0.9 and r["succeeded"] == r["runs"]) if judge else note
    rows = [(name, f"{r['sweep_s']:.2f} s", f"ideal {r['ideal_s']:.2f} s", f"efficiency {eff:.2f}", ">= 0.90",
             verdict)]
    if r["sequential_s"] == r["sequential_s"]:  # not NaN
        rows.append(("  same sweep vs sequential requests loop", f"{r['sweep_s']:.2f} s",
                     f"loop {r['sequential_s']:.2f} s", f"{r['speedup_vs_sequential']:.1f}x faster", "", ""))
    return rows


def overhead_rows(r: dict[str, Any]) -> list[Row]:
    return [
        (f"per-run overhead, generate+store ({r['runs']} runs, latency 0)", f"{r['toolkit_ms']:.0f} ms/run",
         f"loop {r['loop_ms']:.0f} ms/run", f"+{r['overhead_ms']:.0f} ms/run", "", ""),
        ("  Experiment.run c=1 (+ probe, poster)", f"{r['sweep_ms']:.0f} ms/run", f"loop {r['loop_ms']:.0f} ms/run",
         f"+{r['sweep_overhead_ms']:.0f} ms/run", "", ""),
        ("  of which validation / store writes / probe+poster",
         f"{r['validation_ms']:.1f} / {r['store_ms']:.1f} / {r['probe_poster_ms']:.1f} ms", "", "", "", ""),
    ]


def batch_rows(r: dict[str, Any]) -> list[Row]:
    single, batched = r["single"], r["batched"]
    ok = batched["succeeded"] == single["succeeded"] == r["runs"] and r["requests_ratio"] < 1.0
    return [(f"requests per run, {r['runs']} runs c={r['concurrency']}, batch='auto'",
             f"{batched['requests_per_run']:.2f} req/run", f"single runs {single['requests_per_run']:.2f} req/run",
             f"{r['requests_ratio']:.2f}x", "< 1.00x", _verdict(ok)),
            ("  same sweeps, wall time", f"{batched['wall_s']:.2f} s", f"single runs {single['wall_s']:.2f} s",
             f"{r['wall_ratio']:.2f}x", "", "")]


def table_rows(results: list[dict[str, Any]]) -> list[Row]:
    rows = []
    for r in results:
        goal, ok = ("< 2 s", r["table_s"] < 2.0) if r["rows"] >= 100_000 else ("", None)
        rows.append((f"Store.table() at {r['rows']:,} rows", f"{r['table_s']:.2f} s",
                     f"read_sql {r['baseline_s']:.2f} s", f"{r['ratio']:.2f}x", goal, _verdict(ok)))
        rows.append((f"  exp.table() (paths resolved, column order) at {r['rows']:,} rows", f"{r['exp_table_s']:.2f} s",
                     f"read_sql {r['baseline_s']:.2f} s", f"{r['exp_ratio']:.2f}x", "< 1.50x",
                     _verdict(r["exp_ratio"] < 1.5)))
    return rows


def memory_rows(r: dict[str, Any]) -> list[Row]:
    tk, naive = r["toolkit"]["peak_extra_mb"], r["naive"]["peak_extra_mb"]
    return [(f"peak extra memory, {r['mb']} MB download", f"{tk:.1f} MB", f"requests .content {naive:.0f} MB",
             f"{tk / naive:.3f}x", "< 50 MB", _verdict(tk < 50))]


def import_rows(r: dict[str, Any]) -> list[Row]:
    heavy = ", ".join(f"{n} {s * 1000:.0f} ms" for n, s in r["heaviest"])
    return [(f"import runflow_nb (fresh interpreter, best of {r['repeat']})", f"+{r['import_s']:.3f} s",
             f"python -c pass {r['python_s']:.3f} s", "", "< 0.3 s", _verdict(r["import_s"] < 0.3)),
            ("  import + first rf.Client", f"+{r['client_s']:.3f} s", heavy, "", "", "")]


def notebook_rows(r: dict[str, Any]) -> list[Row]:
    a, b = r["clips"]
    return [(f"executed notebook size per clip ({a} vs {b} clips)", f"{r['ipynb_per_clip'] / 1024:.1f} KB/clip",
             f"{a} clips: {r['ipynb_bytes'][a] / 1024:.0f} KB", f"HTML {r['html_per_clip'] / 1024:.1f} KB/clip",
             "", ""),
            (f"  tables' library in a report ({b} clips)", f"notebook {r['ipynb_bytes'][b] / 1024:.0f} KB, "
             f"HTML {r['html_bytes'][b] / 1024:.0f} KB", f"one copy {r['bundle_bytes'] / 1024:.0f} KB",
             f"copies: notebook {r['ipynb_bundles']}, HTML {r['html_bundles']}", "0 and 1",
             _verdict(r["ipynb_bundles"] == 0 and r["html_bundles"] == 1))]


def gallery_rows(results: list[dict[str, Any]]) -> list[Row]:
    rows = []
    for r in results:
        ok = r["models"] <= 20
        rows.append((f"live gallery of {r['clips']} clips: widget models (messages)", f"{r['models']} ({r['messages']})",
                     "", f"{r['models_per_clip']:.1f} a clip", "<= 20", _verdict(ok)))
        rows.append((f"  Gallery.widget() at {r['clips']} clips", f"{r['widget_s']:.2f} s",
                     f"gallery_html {r['html_s']:.2f} s", f"{r['ratio']:.2f}x", "", ""))
    return rows


def render_rows(r: dict[str, Any]) -> list[Row]:
    name = f"simulator render, {r['duration_s']} s {r['resolution']}, {r['references']} reference(s)"
    return [(f"{name}, new seed", f"{r['new_seed_s']:.2f} s/clip", f"x264 still frames {r['still_encode_s']:.2f} s",
             f"{r['ratio_vs_still']:.2f}x", "", ""),
            ("  same seed again (cached picture)", f"{r['same_seed_s']:.2f} s/clip", "", "", "", "")]


def qa_rows(r: dict[str, Any]) -> list[Row]:
    rows = []
    for name, c in r["clips"].items():
        rows.append((f"clip QA, 5 s 1080p {name} ({c['size_mb']:.1f} MB)", f"{c['qa_s']:.3f} s",
                     f"bare decode {c['decode_s']:.3f} s", f"{c['qa_vs_decode']:.2f}x", "< 1.50x",
                     _verdict(c["qa_vs_decode"] < 1.5)))
        rows.append(("  FFmpeg detect filters via PyAV graphs", f"{c['filters_s']:.3f} s",
                     f"bare decode {c['decode_s']:.3f} s", f"{c['filters_vs_decode']:.2f}x", "", ""))
    return rows


def _run(name: str, fn: Callable[[], Any], to_rows: Callable[[Any], list[Row]],
         results: dict[str, Any]) -> list[Row]:
    t0 = time.perf_counter()
    print(f"running {name} ...", file=sys.stderr, flush=True)
    try:
        value = fn()
    except Exception as exc:  # one broken benchmark must not hide the others
        traceback.print_exc()
        return [(name, f"error: {type(exc).__name__}: {exc}"[:80], "", "", "", "MISSED")]
    results[name] = value
    print(f"  {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return to_rows(value)


def print_table(rows: list[Row]) -> None:
    header: Row = ("metric", "measured", "baseline", "ratio", "goal", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(6)]
    line = "  ".join("-" * w for w in widths)
    print(line)
    for r in [header, None, *rows]:
        print(line if r is None else "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print(line)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    ap.add_argument("--json", default=None, metavar="PATH", help="also write every measurement as JSON")
    a = ap.parse_args(argv)
    q = a.quick
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    rows: list[Row] = []
    rows += _run("sweep", lambda: bench_sweep.run(runs=8 if q else 24, concurrency=4 if q else 8,
                                                  latency=0.5 if q else 1.0),
                 lambda r: sweep_rows(r, judge=not q), results)
    if not q:  # the same sweep with longer jobs: fixed per-run costs shrink towards real 90-240 s clips
        rows += _run("sweep_3s", lambda: bench_sweep.run(runs=24, concurrency=8, latency=3.0, sequential=False),
                     lambda r: sweep_rows(r, judge=False, note="(for context)"), results)
    rows += _run("batches", lambda: bench_batches.run(runs=16 if q else 40, concurrency=16 if q else 40,
                                                      latency=0.5 if q else 1.0), batch_rows, results)
    rows += _run("overhead", lambda: bench_overhead.run(runs=8 if q else 20), overhead_rows, results)
    rows += _run("gallery", lambda: bench_gallery.run((48, 150), repeat=1 if q else 3), gallery_rows, results)
    rows += _run("render", lambda: bench_render.run(clips=2 if q else 4), render_rows, results)
    rows += _run("qa", lambda: bench_qa.run(repeat=3 if q else 7), qa_rows, results)
    rows += _run("table", lambda: bench_table.run((10_000, 30_000) if q else (10_000, 100_000), repeat=1 if q else 3),
                 table_rows, results)
    rows += _run("memory", lambda: bench_download_memory.run(mb=100), memory_rows, results)
    rows += _run("import", lambda: bench_import.run(repeat=3 if q else 5), import_rows, results)
    rows += _run("notebook", lambda: bench_notebook.run(clips=(2, 4) if q else (4, 8)), notebook_rows, results)
    print()
    print(f"runflow_nb benchmarks ({'quick' if q else 'full'}; {time.perf_counter() - t0:.0f} s)")
    print_table(rows)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2, default=str))
    return 1 if any(r[5] == "MISSED" for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
