"""`runflow-nb`: generate, sweep, tables, re-runs and one run in full, reports, the emulator and store migrations.

Every command has ``--help``. Errors print one readable message (no traceback) and exit 2 for bad
input, 1 for anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .report.params import BUNDLED_NOTEBOOKS

__all__ = ["main"]


MAX_CLI_RUNS = 10_000
"""The most runs one `runflow-nb sweep` plans (its seeds times every other list): the library's own
limit, :data:`runflow_nb.plan.MAX_PLAN_RUNS` (kept here as a number so the CLI starts without
loading the planner), checked before anything is built."""
SEED_MAX = 2_147_483_647


def _parse_seeds(text: str) -> list[int]:
    """``0-7``, ``1,2,5`` or ``0-3,10``: checked (count and 0-2147483647 bounds) before any list is built."""
    ranges: list[tuple[int, int]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a, b = (int(lo), int(hi)) if sep else (int(part), int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{part!r} is not a seed or a range of seeds: use whole numbers like 0-7, 1,5,9 or 0-3,10"
            ) from None
        if b < a:
            raise argparse.ArgumentTypeError(f"seed range {part!r} runs backwards")
        if a < 0 or b > SEED_MAX:
            raise argparse.ArgumentTypeError(f"seed {b if b > SEED_MAX else a} in {part!r} is out of range: "
                                             f"seeds are 0-{SEED_MAX}")
        ranges.append((a, b))
    if not ranges:
        raise argparse.ArgumentTypeError("no seeds given: use e.g. 0-7 or 1,5,9")
    count = sum(b - a + 1 for a, b in ranges)
    if count > MAX_CLI_RUNS:
        raise argparse.ArgumentTypeError(f"{count:,} seeds is more than the {MAX_CLI_RUNS:,} runs one sweep "
                                         "may plan: sweep fewer seeds (or split the sweep)")
    return [seed for a, b in ranges for seed in range(a, b + 1)]


def _ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of whole numbers: use e.g. 5 or 3,5,8") from None
    if not values:
        raise argparse.ArgumentTypeError("no values given: use e.g. 5 or 3,5,8")
    return values


def _strs(text: str) -> list[str]:
    values = [x.strip() for x in text.split(",") if x.strip()]
    if not values:
        raise argparse.ArgumentTypeError("no values given: list one or more, comma-separated")
    return values


def _add_request_args(p: argparse.ArgumentParser, *, sweep: bool) -> None:
    p.add_argument("--model", type=_strs if sweep else str, default=None,
                   help="r2v (reference-to-video, the default), t2v, i2v or edit (video-edit), or a full model id"
                        + ("; comma-separated to compare models (each gets only the inputs it takes)" if sweep
                           else ""))
    p.add_argument("--prompt", required=True, action="append" if sweep else "store",
                   help="what happens in the clip; name references as character1..character9 (@Image1.. for edit)"
                        + (" (repeat to sweep prompts)" if sweep else ""))
    p.add_argument("--image", action="append", dest="images", metavar="PATH_OR_URL",
                   help="a reference image (local path or http(s) URL); repeat for up to 9 (i2v takes the first)")
    p.add_argument("--video", default=None, metavar="PATH_OR_URL",
                   help="video-edit's input clip (MP4/MOV, 3-60 s; local files up to 50 MiB, else a URL)")
    if sweep:
        p.add_argument("--seeds", type=_parse_seeds, default=None, help="seeds to sweep, e.g. 0-7 or 1,5,9")
        p.add_argument("--duration", type=_ints, default=None, help="seconds (3-15), comma-separated to sweep")
        p.add_argument("--resolution", type=_strs, default=None, help="720p or 1080p, comma-separated to sweep")
        p.add_argument("--aspect-ratio", type=_strs, default=None,
                       help="16:9, 9:16, 1:1, 4:3 or 3:4, comma-separated to sweep")
    else:
        p.add_argument("--seed", type=int, default=None, help="0-2147483647 (random when omitted, and printed)")
        p.add_argument("--duration", type=int, default=None, help="seconds, 3-15 (default 5)")
        p.add_argument("--resolution", default=None, help="720p or 1080p (default 1080p)")
        p.add_argument("--aspect-ratio", default=None, help="16:9, 9:16, 1:1, 4:3 or 3:4 (default 16:9)")
    p.add_argument("--no-safety-checker", action="store_true", help="turn the provider's safety checker off")


_STORE_HELP = "store URL or SQLite path (default: RUNFLOW_STORE, else runflow_data/runflow.sqlite)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runflow-nb",
        description="Drive Runflow's Happy Horse models (reference-to-video, text-to-video, image-to-video, "
                    "video-edit). Without RUNFLOW_API_KEY "
                    "every command runs on the offline simulator (synthetic clips, no cost).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    g = sub.add_parser("generate", help="make one clip and print where it is, its seed, timing and cost",
                       description="Validate, submit, wait and download one clip.")
    _add_request_args(g, sweep=False)
    g.add_argument("--out", default=None, help="folder for the MP4 (default: RUNFLOW_ARTIFACTS, else runflow_data/artifacts)")
    g.add_argument("--json", action="store_true", help="print the result as JSON")

    s = sub.add_parser("sweep", help="run a seed/parameter sweep into an experiment (resumable)",
                       description="Sweep seeds and parameters into an experiment. Re-running the same command "
                                   "reuses finished runs and pays for nothing twice.")
    s.add_argument("--experiment", required=True, help="experiment name")
    _add_request_args(s, sweep=True)
    s.add_argument("--concurrency", type=int, default=4, help="runs in flight at once (default 4)")
    s.add_argument("--budget-usd", type=float, default=None, help="stop submitting before this much is spent")
    s.add_argument("--batch", choices=("off", "auto"), default="off",
                   help="auto: send ready runs together as batches of up to 100 (single runs where the model "
                        "takes none); default off")
    s.add_argument("--dry-run", action="store_true", help="print the plan and its cost estimate; submit nothing")
    s.add_argument("--store", default=None, help=_STORE_HELP)
    s.add_argument("--artifacts", default=None,
                   help="artifacts folder or s3:// URL (default: RUNFLOW_ARTIFACTS, else artifacts/ beside the store)")

    t = sub.add_parser("table", help="print an experiment's runs (without a name: the experiments)",
                       description="Print or export an experiment's table; without a name, list the experiments "
                                   "in the store with their runs and cost. Printed tables show short run ids, "
                                   "rounded times and costs, and blanks where a value is missing; csv and "
                                   "parquet keep every value as stored.")
    t.add_argument("experiment", nargs="?", default=None, help="experiment name (leave out to list them)")
    t.add_argument("--format", choices=["markdown", "csv", "parquet"], default="markdown")
    t.add_argument("--out", default=None, help="file to write (required for parquet)")
    t.add_argument("--store", default=None, help=_STORE_HELP + "; must exist")

    r = sub.add_parser("report", help="run a notebook with papermill and write an HTML report",
                       description="Execute NOTEBOOK with papermill (parameters from -p/-f), write the executed "
                                   ".ipynb and a self-contained HTML report, and record them in the store.")
    r.add_argument("notebook", help="a path to an .ipynb, or the name of a bundled notebook ("
                   + ", ".join(BUNDLED_NOTEBOOKS) + ")")
    r.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a parameter (VALUE parsed as YAML, so '[1, 2]' is a list)")
    r.add_argument("-f", "--parameters-file", default=None, help="YAML file of parameters")
    r.add_argument("--out", default=None, help="output folder (default runflow_reports/<notebook>-<time>)")
    r.add_argument("-k", "--kernel", default=None, help="Jupyter kernel name (default: the notebook's, python3)")

    d = sub.add_parser("demo", help="offline demo: a small seed sweep on the simulator, ending in an HTML report",
                       description="Run a small seed sweep over the shipped sample images on the offline "
                                   "simulator and print the path of the HTML report.")
    d.add_argument("--out", default="runflow_reports/demo", help="report folder (default runflow_reports/demo)")
    d.add_argument("--seeds", type=_parse_seeds, default=[1, 2, 3, 4], help="seeds (default 1-4)")
    d.add_argument("--notebook", default=None, metavar="PATH",
                   help="your own copy of seed_sweep.ipynb to run (default: the bundled one, never a copy in the "
                        "working directory)")

    e = sub.add_parser("emulator", help="serve the Runflow HTTP API on loopback, backed by the simulator",
                       description="Serve Runflow's documented HTTP contract on loopback for tests and demos.",
                       add_help=False)
    e.add_argument("args", nargs=argparse.REMAINDER, help="see `runflow-nb emulator --help`")

    dr = sub.add_parser("doctor", help="check key, balance, service health and the model's live inputs before spending",
                        description="Check the API key (auth/me), the balance, the service's health and the "
                                    "model's live input schema against the built-in spec; print one report with "
                                    "what to do. Offline (no key) it says so. Exit 1 when a check fails.")
    dr.add_argument("--model", default="alibaba/happy-horse/reference-to-video", help="model id or alias")
    dr.add_argument("--json", action="store_true", help="print the report as JSON")

    sub.add_parser("config", help="print the settings in force (RUNFLOW_* variables) and where each came from",
                   description="Print every RUNFLOW_* setting runflow_nb reads, its value in force and "
                               "whether it came from the environment or the default. The API key is "
                               "shown only as set or unset.")

    rr = sub.add_parser("rerun", help="run a stored run again with some inputs changed (lineage kept; paid once)",
                        description="Run a stored run's request again with the given inputs changed, recorded with "
                                    "the run as its parent. The same re-run again reuses it. Several seeds "
                                    "(--seed 0-7) are a sweep around the clip; --resolution 1080p upscales. A request "
                                    "the experiment already holds (same inputs and seed) is reused, nothing "
                                    "charged, unless --force.")
    rr.add_argument("run_id", help="a run id from `runflow-nb table` (or Runflow's run id)")
    rr.add_argument("--seed", type=_parse_seeds, default=None, help="the new seed, or seeds to sweep (0-7, 1,5,9)")
    rr.add_argument("--resolution", default=None, help="720p or 1080p (1080p: the upscale)")
    rr.add_argument("--duration", type=int, default=None, help="seconds, 3-15")
    rr.add_argument("--aspect-ratio", default=None, help="16:9, 9:16, 1:1, 4:3 or 3:4")
    rr.add_argument("--prompt", default=None, help="a new prompt")
    rr.add_argument("--model", default=None, help="another model of the family (its inputs carry over)")
    rr.add_argument("--image", action="append", dest="images", metavar="PATH_OR_URL", help="new references (repeat)")
    rr.add_argument("--budget-usd", type=float, default=None, help="stop submitting before this much is spent")
    rr.add_argument("--force", action="store_true",
                    help="pay again for a fresh sample when the experiment already holds this exact request")
    rr.add_argument("--store", default=None, help=_STORE_HELP + "; must exist")
    sh = sub.add_parser("show", help="print one run: request as sent, timing, cost, seeds, lineage and its code",
                        description="Print one stored run in full, with the Python that rebuilds its request.")
    sh.add_argument("run_id", help="a run id from `runflow-nb table` (or Runflow's run id)")
    sh.add_argument("--code", action="store_true", help="print only the code that rebuilds the request")
    sh.add_argument("--store", default=None, help=_STORE_HELP + "; must exist")

    m = sub.add_parser("migrate", help="upgrade a store's schema in place",
                       description="Upgrade the store at STORE_URL to this version's schema (never drops data).")
    m.add_argument("store_url", help="SQLite path or database URL")
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def _cmd_generate(a: argparse.Namespace) -> int:
    from .client import Client

    client = Client()
    media: dict[str, Any] = {"images": a.images} if a.images else {}
    if a.video is not None:
        media["video"] = a.video
    res = client.generate(model=a.model, prompt=a.prompt, seed=a.seed, duration=a.duration,
                          resolution=a.resolution, aspect_ratio=a.aspect_ratio,
                          enable_safety_checker=False if a.no_safety_checker else None, out_dir=a.out, **media)
    # The provider's id of the run: the store calls it remote_id (its run_id is the store's own).
    info = {"video": str(res.video_path), "seed": res.seed, "remote_id": res.run.id, "backend": res.backend,
            "wall_s": round(res.wall_s, 2), "queue_s": res.queue_s, "inference_ms": res.inference_ms,
            ("estimated_cost_usd" if res.simulated else "cost_usd"): res.cost_usd}
    if a.json:
        print(json.dumps(info))
    else:
        print(f"video:   {info['video']}")
        print(f"seed:    {res.seed}")
        print(f"Runflow run id (remote_id): {res.run.id}")
        print(f"timing:  {res.wall_s:.1f} s wall" + (f", {res.inference_ms / 1000:.1f} s inference"
                                                      if res.inference_ms else ""))
        if res.simulated:
            print(f"cost:    $0.00 (simulator; the model would charge ${res.cost_usd:.2f})")
        else:
            print(f"cost:    ${res.cost_usd:.2f}")
    return 0


def _cmd_sweep(a: argparse.Namespace) -> int:
    from .plan import grid

    runs = 1
    for values in (a.model, a.prompt, a.seeds, a.duration, a.resolution, a.aspect_ratio):
        runs *= len(values) if values else 1
    if runs > MAX_CLI_RUNS:
        print(f"runflow-nb sweep: the grid is up to {runs:,} runs (prompts x models x seeds x durations x resolutions x "
              f"aspect ratios), more than the {MAX_CLI_RUNS:,} one sweep may plan: sweep fewer values",
              file=sys.stderr)
        return 2
    plan = grid(model=a.model, prompt=a.prompt, images=[a.images] if a.images else None, video=a.video,
                seed=a.seeds, duration=a.duration, resolution=a.resolution, aspect_ratio=a.aspect_ratio,
                enable_safety_checker=False if a.no_safety_checker else None)
    print(f"plan: {plan.estimate()}")
    if a.dry_run:
        print(plan.table().to_string(index=False))
        print("dry run: nothing submitted")
        return 0
    from .experiment import Experiment

    with Experiment(a.experiment, store=a.store, artifacts=a.artifacts) as exp:  # its store closed on every exit
        exp.run(plan, concurrency=a.concurrency, budget_usd=a.budget_usd, progress="text",
                batch="auto" if a.batch == "auto" else False)
    if exp.last_summary is not None:
        print(exp.last_summary)
        for msg in exp.last_summary.messages:
            print(msg)
    failed = (exp.last_summary.counts if exp.last_summary else {})
    bad = sum(v for k, v in failed.items() if k not in ("succeeded", "skipped_budget"))
    return 1 if bad else 0


def _cmd_table(a: argparse.Namespace) -> int:
    from .store.runstore import MissingStoreError, Store

    try:
        store = Store(a.store, create=False)  # reading never creates a store (a mistyped --store is an error)
    except MissingStoreError as exc:
        print(f"runflow-nb: {exc}", file=sys.stderr)
        return 2
    with store:
        if a.experiment is None:
            print(_experiments_markdown(store))
            return 0
        if a.experiment not in store.experiments():
            known = ", ".join(map(repr, store.experiments())) or "none"
            print(f"runflow-nb: no experiment {a.experiment!r} in {store.url} (experiments there: {known})",
                  file=sys.stderr)
            return 2
        from .followups.changes import with_changes

        df = with_changes(store.table(a.experiment), store)  # lineage: what each run changed from its parent
    if a.format == "parquet":
        if not a.out:
            print("runflow-nb: --out FILE is required for parquet", file=sys.stderr)
            return 2
        problem = _write_out(a.out, "parquet", lambda path: df.to_parquet(path, index=False))
    elif a.format == "csv":
        if not a.out:
            df.to_csv(sys.stdout, index=False)
            return 0
        problem = _write_out(a.out, "csv", lambda path: df.to_csv(path, index=False))
    else:
        # The model when the experiment spans several, and the clip an edit came from when there are edits.
        extra = [c for c in ("model", "parent_run_id", "changes") if c in df.columns
                 and (df[c].nunique() > 1 if c == "model" else df[c].notna().any())]
        cols = [c for c in ("run_id", "status", *extra, "prompt", "seed", "duration", "resolution", "aspect_ratio",
                            "cost_usd", "wall_s", "video_path") if c in df.columns]
        text = _markdown(_readable(df[cols]))
        if not a.out:
            print(text)
            return 0
        problem = _write_out(a.out, "md", lambda path: path.write_text(text, encoding="utf-8"))
    if problem:
        print(f"runflow-nb table: {problem}", file=sys.stderr)
        return 2
    print(a.out)
    return 0


def _write_out(out: str, ext: str, write: Callable[[Path], Any]) -> str | None:
    """Write ``--out`` whole or not at all (a temporary file beside it, renamed into place); what is
    wrong with it, or None when it was written."""
    path = Path(out).expanduser()
    if path.is_dir():
        return f"--out {out!r} is a folder: give a file path, e.g. {os.path.join(out, 'table.' + ext)}"
    if not path.parent.is_dir():
        return (f"--out {out!r}: there is no folder {str(path.parent)!r} to write it in; "
                "create the folder first or give another path")
    from ._files import write_whole

    try:
        write_whole(path, write)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        return f"--out {out!r} cannot be written ({reason}): give a file path you can write to"
    return None


def _readable(df: Any) -> Any:
    """The table as people read it: ids cut to 8 characters (as every view shows them), seconds to one
    decimal, dollars to cents; missing values stay missing (printed blank)."""
    out = df.copy()
    for c in ("run_id", "parent_run_id"):
        if c in out.columns:
            out[c] = out[c].map(lambda v: str(v)[:8] if isinstance(v, str) else v)
    for c, places in (("wall_s", 1), ("cost_usd", 2)):
        if c in out.columns:
            out[c] = out[c].astype("Float64").round(places)
    return out


def _experiments_markdown(store: Any) -> str:
    """One line per experiment in the store: its runs, how many succeeded, and what they cost."""
    import pandas as pd

    rows = []
    for name in store.experiments():
        df = store.table(name)
        done = int((df["status"] == "succeeded").sum()) if "status" in df.columns else 0
        cost = float(pd.to_numeric(df["cost_usd"], errors="coerce").sum()) if "cost_usd" in df.columns else 0.0
        rows.append({"experiment": name, "runs": len(df), "succeeded": done, "cost_usd": round(cost, 2)})
    if not rows:
        return f"no experiments in {store.url} yet"
    return _markdown(pd.DataFrame(rows)) + "\n\nshow one: runflow-nb table EXPERIMENT"


def _cell_text(value: Any) -> str:
    """A value for a markdown cell: blank when missing (None, NaN, NA), else its text."""
    import pandas as pd

    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:g}" if abs(value) >= 1e-4 or value == 0 else repr(value)
    return str(value)


def _markdown(df: Any) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        cells = [_cell_text(v).replace("|", "\\|").replace("\n", " ") for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cmd_report(a: argparse.Namespace) -> int:
    from .report.build import out_folder_problem, parse_parameters, run_report

    problem = out_folder_problem(a.out) if a.out is not None else None
    if problem:
        print(f"runflow-nb report: --out {a.out!r} {problem}", file=sys.stderr)
        return 2
    params = parse_parameters(a.parameter, a.parameters_file)
    out = run_report(a.notebook, parameters=params, out_dir=a.out, kernel_name=a.kernel)
    print(out.html)
    if not out.complete:
        print(f"runflow-nb report: {len(out.missing_media)} video/poster file(s) the report shows cannot be found, "
              f"e.g. {out.missing_media[0]}", file=sys.stderr)
        return 1
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    from .report.build import out_folder_problem, run_demo

    problem = out_folder_problem(a.out)
    if problem:
        print(f"runflow-nb demo: --out {a.out!r} {problem}", file=sys.stderr)
        return 2
    out = run_demo(out_dir=a.out, seeds=a.seeds, notebook=a.notebook)
    print(f"report: {out.html}")
    return 0 if out.complete else 1


def _cmd_doctor(a: argparse.Namespace) -> int:
    from .diagnose import doctor

    report = doctor(model=a.model)
    if a.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report)
    return 0 if report.ok else 1


def _cmd_config(a: argparse.Namespace) -> int:
    from .settings import describe

    print(describe())
    return 0


def _run_experiment(a: argparse.Namespace) -> Any:
    """The experiment of ``a.run_id`` in an existing store, and the run's stored record."""
    from .experiment import Experiment
    from .followups.lineage import parent_row
    from .store.runstore import Store

    store = Store(a.store, create=False)  # MissingStoreError (a StoreError): a mistyped --store creates nothing
    row = parent_row(a.run_id, store)
    return Experiment(str(row["experiment"]), store=store), row


def _cmd_rerun(a: argparse.Namespace) -> int:
    from .followups.shell import changes_from_args, run_line

    exp, row = _run_experiment(a)
    with exp, exp.store:
        changes = changes_from_args(a)
        if not changes:
            print("runflow-nb rerun: nothing to change: give --seed, --resolution, --duration, --prompt, ...",
                  file=sys.stderr)
            return 2
        got = exp.rerun(row["run_id"], budget_usd=a.budget_usd, progress="text", force=a.force, **changes)
        rows = [got] if isinstance(got, dict) else got.to_dict("records")
        for r in rows:
            print(run_line(r))
    return 0 if all(r.get("status") == "succeeded" for r in rows) else 1


def _cmd_show(a: argparse.Namespace) -> int:
    from .errors import RunflowError
    from .followups.shell import show_text

    exp, row = _run_experiment(a)
    with exp, exp.store:
        code, error = None, None
        try:
            code = exp.code(row["run_id"])
        except RunflowError as exc:
            error = str(exc)
        if a.code:
            print(code or error, end="" if code else "\n")
            return 0 if code else 1
        parent = exp.store.get_run(str(row["parent_run_id"])) if row.get("parent_run_id") else None
        print(show_text(row, code=code, code_error=error, parent=parent,
                        children=exp.store.runs(where={"parent_run_id": str(row["run_id"])})))
    return 0


def _cmd_migrate(a: argparse.Namespace) -> int:
    from .store.runstore import MissingStoreError, migrate

    try:
        before, after = migrate(a.store_url, create=False)
    except MissingStoreError as exc:
        print(f"runflow-nb: {exc}", file=sys.stderr)
        return 2
    print(f"schema version {before} -> {after}" if before != after else f"schema version {after}: up to date")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["emulator"]:
        from .emulator import emulator_main

        return emulator_main(args_list[1:])
    parser = build_parser()
    a = parser.parse_args(args_list)
    from .errors import RunflowError, ValidationError

    handlers = {"generate": _cmd_generate, "sweep": _cmd_sweep, "table": _cmd_table, "report": _cmd_report,
                "demo": _cmd_demo, "doctor": _cmd_doctor, "config": _cmd_config, "migrate": _cmd_migrate,
                "rerun": _cmd_rerun, "show": _cmd_show}
    try:
        return handlers[a.command](a)
    except ValidationError as exc:
        print(f"runflow-nb: {exc}", file=sys.stderr)
        return 2
    except RunflowError as exc:
        print(f"runflow-nb: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        from .errors import SweepInterrupted

        text = str(exc) if isinstance(exc, SweepInterrupted) else "interrupted; finished runs are in the store"
        print(f"runflow-nb: {text}; re-run to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
