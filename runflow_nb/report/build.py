"""Reproducible reports: run a parameterized notebook with papermill and keep an HTML report of it.

>>> from runflow_nb.report.build import run_report
>>> out = run_report("seed_sweep", parameters={"seeds": [1, 2, 3]})   # doctest: +SKIP
>>> out.html, out.summary["reused"], out.summary["submitted"]                         # doctest: +SKIP

A report is a folder (default ``runflow_reports/<notebook>-<UTC time>``) holding the executed
``.ipynb``, a self-contained ``.html`` (styles, plots and the tables' DataTables library inline,
once; the ``.ipynb`` loads that library from itables' CDN instead of carrying a second copy) and, under ``media/``, the videos
and poster frames the notebook shows, so the HTML's relative ``<video src>`` play when the folder is
opened anywhere. The kernel runs with the report folder as its working directory.

Path parameters (``store``, ``artifacts_dir``, ``images``) are made absolute before the run, so every
report of a notebook shares one store and re-running a report reuses the runs it already paid for: a
value given by the caller is relative to the caller's working directory, a notebook default is
relative to the notebook's folder (what it means in Jupyter; for the bundled notebooks, the caller's
folder), and a ``store``/``artifacts_dir`` default of ``None`` is the settings default
(``RUNFLOW_STORE``, else ``runflow_data/runflow.sqlite``) in the caller's folder, the store
``runflow-nb sweep`` and ``runflow-nb table`` use there.

The API key is never a parameter (papermill records parameters in the notebook's metadata); the
kernel reads it from the environment, and the executed notebook and the HTML are scanned for it
and for base64 video before they are written.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import settings
from ..errors import ConfigurationError
from .html import connect_tables, export_html, localize_media
from .kernel import ReportError, execute
from .params import (
    BUNDLED_NOTEBOOKS,
    PACKAGE_DIR,
    PATH_PARAMETERS,
    absolute,
    bundled_notebook,
    find_notebook,
    notebook_defaults,
    parameter_list,
    parse_parameters,
)
from .scrub import check_no_secrets, redact_file, strip_video_data

__all__ = [
    "BUNDLED_NOTEBOOKS",
    "PATH_PARAMETERS",
    "SUMMARY_MIME",
    "ReportError",
    "ReportOutput",
    "bundled_notebook",
    "find_notebook",
    "parameter_list",
    "parse_parameters",
    "run_demo",
    "run_report",
]

SUMMARY_MIME = "application/vnd.runflow-nb.summary+json"
"""Mime type of the machine-readable sweep summary a notebook may display (seed_sweep.ipynb does)."""


@dataclass(frozen=True)
class ReportOutput:
    """Where a report went and what its sweep did."""

    folder: Path
    notebook: Path  # the executed .ipynb
    html: Path
    parameters: dict[str, Any]  # as passed to papermill (paths made absolute)
    experiment: str | None = None
    store: str | None = None
    recorded: bool = False  # the report was recorded against the experiment in the store
    summary: dict[str, Any] | None = None  # the notebook's SUMMARY_MIME output, if it shows one
    media: int = 0  # files linked or copied into folder/media
    elapsed_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    missing_media: list[str] = field(default_factory=list)  # videos/posters the HTML shows that do not exist

    @property
    def complete(self) -> bool:
        """Every video and poster the report shows exists (the CLI exits non-zero otherwise)."""
        return not self.missing_media

    @property
    def message(self) -> str:
        """One line for people: where the report is and whether anything was paid twice."""
        text = f"report {self.html} ({self.elapsed_s:.1f} s)"
        s = self.summary
        if s:
            text += f"; reused {s.get('reused', 0)}, submitted {s.get('submitted', 0)}"
            if s.get("total") and s.get("reused") == s.get("total"):
                text += " (every run was already in the store: nothing submitted again)"
        return text

    def __str__(self) -> str:
        return self.message


# -- running ----------------------------------------------------------------------------------------

def run_report(notebook: str | os.PathLike[str], *, parameters: Mapping[str, Any] | None = None,
               out_dir: str | os.PathLike[str] | None = None, kernel_name: str | None = None,
               env: Mapping[str, str | None] | None = None, quiet: bool = False) -> ReportOutput:
    """Execute ``notebook`` with papermill and write ``<stem>.ipynb`` and ``<stem>.html`` into ``out_dir``.

    ``env`` overrides the kernel's environment (None removes a variable). Unless ``quiet``, the
    notebook's printed output streams to stderr and a closing line says what was reused.
    Raises :class:`ReportError` naming the failing cell when a cell raises.
    """
    t0 = time.monotonic()
    source = find_notebook(notebook).resolve()
    has_cell, defaults = _read_notebook(source)
    params = dict(parameters or {})
    check_no_secrets(params)
    if params and not has_cell:
        raise ConfigurationError(f"{source.name} has no cell tagged 'parameters', so it takes no parameters")
    unknown = sorted(set(params) - set(defaults)) if has_cell else []
    if unknown:
        known = ", ".join(defaults) or "none"
        raise ConfigurationError(f"{source.name} has no parameter {', '.join(map(repr, unknown))}; "
                                 f"its parameters are: {known}")
    # A default means what it means in Jupyter (beside the notebook); a packaged notebook's defaults
    # would point into site-packages (or, from a checkout, into its notebooks/ that the package links
    # to), so those are taken relative to the caller instead.
    bundled = source.parent == (PACKAGE_DIR / "notebooks").resolve()
    default_base = Path.cwd() if bundled else source.parent
    for name in PATH_PARAMETERS:
        if name in params:
            params[name] = absolute(params[name], Path.cwd())
        elif name in defaults and isinstance(defaults[name], (str, list)):
            params[name] = absolute(defaults[name], default_base)
    # A store left at None means the settings default (RUNFLOW_STORE, else the runflow_data store
    # found from a folder) as the notebook sees it in Jupyter, whose kernel starts beside it: the
    # report of a notebook run in JupyterLab reuses that notebook's runs and finds its videos. Never
    # relative to the report folder the kernel runs in here.
    # RUNFLOW_STORE / RUNFLOW_ARTIFACTS given as relative paths stay relative to the caller.
    if defaults.get("store", "") is None and params.get("store") is None:
        store_default = settings.store_url(cwd=default_base)
        found = store_default == settings.find_default_store(default_base)
        params["store"] = absolute(store_default, default_base if found else Path.cwd())
    if defaults.get("artifacts_dir", "") is None and params.get("artifacts_dir") is None:
        given = params.get("store")
        params["artifacts_dir"] = absolute(settings.artifacts_location(
            store=given if isinstance(given, str) else None), Path.cwd())

    folder = _report_folder(out_dir, source.stem)
    out_nb = folder / f"{source.stem}.ipynb"
    out_html = folder / f"{source.stem}.html"
    if not quiet:
        print(f"runflow_nb: running {source} with papermill in {folder}", file=sys.stderr, flush=True)

    failure: ReportError | None = None
    try:
        execute(source, out_nb, params, cwd=folder, kernel_name=kernel_name, env=env or {}, quiet=quiet)
    except ReportError as exc:
        failure = exc
    if not out_nb.is_file():
        assert failure is not None
        raise failure

    warnings: list[str] = []
    if failure is not None:
        try:  # the partial report, traceback included; the cell's error is what the caller needs
            _finish_files(out_nb, out_html, folder, warnings)
            failure.html = out_html
            failure.args = (f"{failure.args[0]}\npartial report: {out_html}",)
        except Exception:
            pass
        raise failure
    missing: list[str] = []
    executed, media = _finish_files(out_nb, out_html, folder, warnings, missing)

    experiment = params.get("experiment", defaults.get("experiment"))
    store = params.get("store")
    recorded = False
    if isinstance(experiment, str) and experiment and isinstance(store, str) and store != ":memory:":
        from ..store.runstore import Store

        with Store(store) as st:
            st.add_report(experiment=experiment, path=out_html.resolve(),
                          params={**params, "notebook": str(source), "executed_notebook": str(out_nb.resolve())})
        recorded = True
    out = ReportOutput(folder=folder.resolve(), notebook=out_nb.resolve(), html=out_html.resolve(),
                       parameters=params, experiment=experiment if isinstance(experiment, str) else None,
                       store=store if isinstance(store, str) else None, recorded=recorded,
                       summary=_summary(executed), media=media, elapsed_s=time.monotonic() - t0,
                       warnings=warnings, missing_media=missing)
    if not quiet:
        for w in warnings:
            print(f"runflow_nb: warning: {w}", file=sys.stderr)
        print(f"runflow_nb: {out.message}", file=sys.stderr, flush=True)
    return out


def run_demo(*, out_dir: str | os.PathLike[str] = "runflow_reports/demo", seeds: Iterable[int] = (1, 2, 3, 4),
             notebook: str | os.PathLike[str] | None = None, kernel_name: str | None = None,
             quiet: bool = False) -> ReportOutput:
    """The README's main job: an offline seed sweep over the sample images, ending in an HTML report.

    Runs the packaged ``seed_sweep`` notebook, never an edited copy that happens to lie in the
    working directory; ``notebook`` names your own copy explicitly (a path).

    Always on the simulator (even with ``RUNFLOW_API_KEY`` set: the kernel runs without it), 3 s
    clips at 720p. The store and videos live in ``out_dir/runflow_data``, so the folder is whole on
    its own and running the demo again into the same folder reuses every clip.
    """
    folder = Path(out_dir)
    params = {
        "experiment": "demo",
        "images": None,
        "seeds": [int(s) for s in seeds],
        "durations": [3],
        "resolutions": ["720p"],
        "aspect_ratios": ["16:9"],
        "budget_usd": None,
        "store": str(folder / "runflow_data" / "runflow.sqlite"),
        "artifacts_dir": str(folder / "runflow_data" / "artifacts"),
    }
    offline = {"RUNFLOW_BACKEND": "simulator", "RUNFLOW_API_KEY": None, "RUNFLOW_BASE_URL": None}
    source = bundled_notebook("seed_sweep") if notebook is None else Path(notebook).expanduser()
    if notebook is not None and not source.is_file():
        raise ConfigurationError(f"no notebook at {os.fspath(notebook)!r}")
    return run_report(source, parameters=params, out_dir=folder, kernel_name=kernel_name, env=offline, quiet=quiet)


def _finish_files(out_nb: Path, out_html: Path, folder: Path, warnings: list[str],
                  missing: list[str] | None = None) -> tuple[Any, int]:
    """Make the report folder whole and clean: media linked in, no base64 video, no key; then the HTML."""
    import nbformat

    executed = nbformat.read(out_nb, as_version=4)
    media = localize_media(executed, folder, warnings, missing if missing is not None else [])
    strip_video_data(executed)
    export_html(executed, out_html, folder)  # self-contained: the tables' library embedded once
    redact_file(out_html)
    connect_tables(executed)  # the executed notebook beside it loads that library instead of carrying it
    nbformat.write(executed, out_nb)
    redact_file(out_nb)
    return executed, media


def _read_notebook(source: Path) -> tuple[bool, dict[str, Any]]:
    """The parameters of the notebook at ``source``; a file that is not a notebook is a ConfigurationError."""
    import nbformat

    try:
        nb = nbformat.read(source, as_version=4)
        has_cell, defaults = notebook_defaults(nb)
    except OSError as exc:
        raise ConfigurationError(f"cannot read the notebook {source}: {exc.strerror or exc}") from None
    except Exception as exc:  # not JSON, not UTF-8, not nbformat's shape: nbformat raises any of a dozen types
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ConfigurationError(f"{source.name} is not a Jupyter notebook (.ipynb JSON) that nbformat can "
                                 f"read: {detail}; give the path of a notebook") from None
    return has_cell, defaults


def _report_folder(out_dir: str | os.PathLike[str] | None, stem: str) -> Path:
    if out_dir is not None:
        folder = Path(out_dir).expanduser()
        problem = out_folder_problem(folder)
        if problem:
            raise ConfigurationError(f"out_dir {os.fspath(out_dir)!r} {problem}")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # pragma: no cover - out_folder_problem tried the same
            raise ConfigurationError(f"out_dir {os.fspath(out_dir)!r}: cannot create the folder "
                                     f"({exc.strerror or exc}); give a folder you can write to") from None
        return folder
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = Path("runflow_reports") / f"{stem}-{stamp}"
    for n in range(1, 1000):
        folder = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
    raise ConfigurationError(f"cannot create a report folder next to {base}")  # pragma: no cover


def out_folder_problem(folder: str | os.PathLike[str]) -> str | None:
    """What stops ``folder`` from holding a report (it is a file, a file is in its way, it cannot be
    created), as the end of a sentence that starts with its name; None when it can. Leaves nothing behind."""
    path = Path(folder).expanduser()
    if path.is_dir():
        return None
    if path.exists():
        return "is a file, not a folder: give a folder for the report (it is created if missing)"
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe.parent != probe:
        missing.append(probe)
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return f"cannot be created: {str(probe)!r} is a file; give a folder for the report"
    created: list[Path] = []
    try:  # try making it, then take back what was made: the report makes it again when it runs
        for p in reversed(missing):
            p.mkdir()
            created.append(p)
    except OSError as exc:
        return f"cannot be created ({exc.strerror or exc}): give a folder you can write to"
    finally:
        for p in reversed(created):
            with contextlib.suppress(OSError):
                p.rmdir()
    return None


def _summary(nb: Any) -> dict[str, Any] | None:
    found = None
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data")
            if isinstance(data, dict) and isinstance(data.get(SUMMARY_MIME), dict):
                found = dict(data[SUMMARY_MIME])
    return found
