"""Reproducible reports: run a parameterized notebook with papermill and keep an HTML report of it.

>>> from runflow_nb.report import run_report
>>> out = run_report("seed_sweep", parameters={"seeds": [1, 2, 3]})   # doctest: +SKIP
>>> out.html, out.summary["reused"], out.summary["submitted"]                         # doctest: +SKIP

A report is a folder (default ``runflow_reports/<notebook>-<UTC time>``) holding the executed
``.ipynb``, a self-contained ``.html`` (styles and plots inline) and, under ``media/``, the videos
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

import ast
import contextlib
import html
import json
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from . import settings
from .errors import ConfigurationError, RunflowError

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

PATH_PARAMETERS = ("store", "artifacts_dir", "images")
"""Notebook parameters holding file locations (or lists of them); made absolute before the run."""

_PACKAGE_DIR = Path(__file__).resolve().parent
_REDACTED = "[redacted]"
_KEY_PATTERN = re.compile(r"rf_(?:live|test)_[A-Za-z0-9_\-]{4,}")
_DATA_VIDEO = re.compile(r"data:video/[A-Za-z0-9.+\-]+;base64,[A-Za-z0-9+/=]*")
_MEDIA_ATTR = re.compile(r'\b(src|poster|href)="([^"]*)"')
_MISSING_VIDEO = re.compile(r'\bdata-missing-video="([^"]*)"')
_MEDIA_SUFFIXES = {".mp4", ".webm", ".mov", ".m4v", ".jpg", ".jpeg", ".png", ".webp", ".gif"}
_SECRET_NAMES = re.compile(r"(api_?key|token|secret|password)", re.IGNORECASE)
_ENV_LOCK = threading.Lock()


class ReportError(RunflowError):
    """The report's notebook could not be run: a cell raised, or the kernel could not start.

    ``cell_index`` is the failing cell's 0-based position in the source notebook (None when the
    kernel failed outside a cell); ``notebook`` and ``html`` point at the partial report.
    """

    def __init__(self, message: str, *, cell_index: int | None = None, execution_count: int | None = None,
                 ename: str | None = None, evalue: str | None = None, notebook: Path | None = None,
                 html: Path | None = None) -> None:
        self.cell_index = cell_index
        self.execution_count = execution_count
        self.ename = ename
        self.evalue = evalue
        self.notebook = notebook
        self.html = html
        super().__init__(message)


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


# -- parameters ----------------------------------------------------------------------------------

def parameter_list(value: Any) -> list[Any] | None:
    """A list-valued notebook parameter as a list (None stays None).

    papermill's own CLI passes ``-p seeds "[1, 2, 3]"`` as the text ``"[1, 2, 3]"``: text that
    starts with ``[`` is read as a YAML list; any other single value becomes a list of one.

    >>> parameter_list("[1, 2, 3]"), parameter_list(5), parameter_list("720p"), parameter_list(None)
    ([1, 2, 3], [5], ['720p'], None)
    """
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().startswith("["):
            import yaml

            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                parsed = None
            if isinstance(parsed, list):
                return parsed
        return [value]
    if isinstance(value, (bytes, Mapping)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def parse_parameters(pairs: Iterable[Sequence[str]] | None = None,
                     file: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Parameters from ``-f params.yaml`` then ``-p NAME VALUE`` pairs (a pair wins over the file).

    Values are YAML, so ``-p seeds "[1, 2, 3]"`` is a list and ``-p budget_usd 5`` a number; text that
    YAML would read as a mapping (``-p prompt "character1: runs"``) or cannot parse stays text.
    """
    import yaml

    params: dict[str, Any] = {}
    if file is not None:
        path = Path(file)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(f"cannot read the parameters file {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"the parameters file {path} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict) or not all(isinstance(k, str) for k in loaded):
            raise ConfigurationError(f"the parameters file {path} must hold a mapping of names to values")
        params.update(loaded)
    for pair in pairs or ():
        if len(pair) != 2:
            raise ConfigurationError(f"a parameter is NAME VALUE, got {list(pair)!r}")
        name, text = pair
        if not name.isidentifier():
            raise ConfigurationError(f"parameter name {name!r} is not a Python identifier")
        params[name] = _yaml_value(text)
    return params


def _yaml_value(text: str) -> Any:
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if value is None and text.strip() not in ("null", "~", "None", "none"):
        return text  # "" stays ""
    if isinstance(value, dict) and not text.lstrip().startswith("{"):
        return text
    if isinstance(value, str) and value == "None":
        return None
    return value


# -- locating notebooks ---------------------------------------------------------------------------

BUNDLED_NOTEBOOKS = ("quickstart", "seed_sweep", "compare")
"""Notebooks shipped inside the package (``runflow_nb/notebooks/``), usable by name."""


def bundled_notebook(name: str) -> Path:
    """The packaged copy of a bundled notebook (``"seed_sweep"`` or ``"seed_sweep.ipynb"``).

    >>> bundled_notebook("seed_sweep").name
    'seed_sweep.ipynb'
    """
    stem = name[:-len(".ipynb")] if name.endswith(".ipynb") else name
    path = _PACKAGE_DIR / "notebooks" / f"{stem}.ipynb"
    if "/" in stem or os.sep in stem or not path.is_file():
        raise ConfigurationError(f"no bundled notebook {name!r}: the bundled ones are "
                                 + ", ".join(BUNDLED_NOTEBOOKS))
    return path


def find_notebook(name: str | os.PathLike[str]) -> Path:
    """An existing path as given, else a bundled notebook by name (``"seed_sweep"`` or ``"seed_sweep.ipynb"``).

    Bundled notebooks ship inside the package (``runflow_nb/notebooks/``), so names work from an
    installed wheel in any folder; a file of that name in the working directory wins when the
    caller names it with its suffix or a path (``./seed_sweep.ipynb``).
    """
    path = Path(name).expanduser()
    if path.is_file():
        return path
    if path.parent == Path(".") and path.suffix in ("", ".ipynb"):
        try:
            return bundled_notebook(path.name)
        except ConfigurationError:
            pass
    raise ConfigurationError(f"no notebook {os.fspath(name)!r}: give a path to an .ipynb file, or the name "
                             "of a bundled one (" + ", ".join(BUNDLED_NOTEBOOKS) + ")")


def _notebook_defaults(nb: Any) -> tuple[bool, dict[str, Any]]:
    """(has a parameters cell, {name: default}) from the cell tagged ``parameters``."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            defaults: dict[str, Any] = {}
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:
                return True, defaults
            for node in tree.body:
                targets = node.targets if isinstance(node, ast.Assign) else (
                    [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else [])
                for target in targets:
                    if isinstance(target, ast.Name):
                        try:
                            defaults[target.id] = ast.literal_eval(node.value)
                        except ValueError:
                            defaults[target.id] = None
            return True, defaults
    return False, {}


def _absolute(value: Any, base: Path) -> Any:
    """A relative file location (or a list of them) made absolute against ``base``.

    URLs, ``data:`` URIs, ``:memory:`` and anything that is not text are returned unchanged.
    """
    if isinstance(value, (list, tuple)):
        return [_absolute(v, base) for v in value]
    if not isinstance(value, (str, os.PathLike)):
        return value
    text = os.fspath(value)
    if not text or text == ":memory:" or "://" in text or text.startswith("data:"):
        return text
    path = Path(text).expanduser()
    return os.path.normpath(path if path.is_absolute() else base / path)


def _check_no_secrets(params: Mapping[str, Any]) -> None:
    key = settings.api_key() or ""
    for name, value in params.items():
        text = json.dumps(value, default=str)
        if _SECRET_NAMES.search(name) or _KEY_PATTERN.search(text) or (len(key) >= 8 and key in text):
            raise ConfigurationError(
                f"parameter {name!r} looks like a credential: papermill writes parameters into the notebook. "
                "Set RUNFLOW_API_KEY in the environment instead; the report's kernel reads it from there.")
        if isinstance(value, str) and "://" in value and urlsplit(value).password:
            raise ConfigurationError(
                f"parameter {name!r} holds a URL with a password, which papermill would write into the "
                "notebook: leave the password out (PostgreSQL reads PGPASSWORD or ~/.pgpass)")


# -- running ----------------------------------------------------------------------------------------

def run_report(notebook: str | os.PathLike[str], *, parameters: Mapping[str, Any] | None = None,
               out_dir: str | os.PathLike[str] | None = None, kernel_name: str | None = None,
               env: Mapping[str, str | None] | None = None, quiet: bool = False) -> ReportOutput:
    """Execute ``notebook`` with papermill and write ``<stem>.ipynb`` and ``<stem>.html`` into ``out_dir``.

    ``env`` overrides the kernel's environment (None removes a variable). Unless ``quiet``, the
    notebook's printed output streams to stderr and a closing line says what was reused.
    Raises :class:`ReportError` naming the failing cell when a cell raises.
    """
    import nbformat

    t0 = time.monotonic()
    source = find_notebook(notebook).resolve()
    nb = nbformat.read(source, as_version=4)
    has_cell, defaults = _notebook_defaults(nb)
    params = dict(parameters or {})
    _check_no_secrets(params)
    if params and not has_cell:
        raise ConfigurationError(f"{source.name} has no cell tagged 'parameters', so it takes no parameters")
    unknown = sorted(set(params) - set(defaults)) if has_cell else []
    if unknown:
        known = ", ".join(defaults) or "none"
        raise ConfigurationError(f"{source.name} has no parameter {', '.join(map(repr, unknown))}; "
                                 f"its parameters are: {known}")
    # A default means what it means in Jupyter (beside the notebook); a packaged notebook's defaults
    # would point into site-packages, so those are taken relative to the caller instead.
    default_base = Path.cwd() if _PACKAGE_DIR in source.parents else source.parent
    for name in PATH_PARAMETERS:
        if name in params:
            params[name] = _absolute(params[name], Path.cwd())
        elif name in defaults and isinstance(defaults[name], (str, list)):
            params[name] = _absolute(defaults[name], default_base)
    # A store left at None means the settings default (RUNFLOW_STORE, else runflow_data/runflow.sqlite)
    # as the caller's CLI sees it, not relative to the report folder the kernel runs in.
    if defaults.get("store", "") is None and params.get("store") is None:
        params["store"] = _absolute(settings.store_url(), Path.cwd())
    if defaults.get("artifacts_dir", "") is None and params.get("artifacts_dir") is None:
        store = params.get("store")
        params["artifacts_dir"] = _absolute(settings.artifacts_location(
            store=store if isinstance(store, str) else None), Path.cwd())

    folder = _report_folder(out_dir, source.stem)
    out_nb = folder / f"{source.stem}.ipynb"
    out_html = folder / f"{source.stem}.html"
    if not quiet:
        print(f"runflow_nb: running {source} with papermill in {folder}", file=sys.stderr, flush=True)

    failure: ReportError | None = None
    try:
        _execute(source, out_nb, params, cwd=folder, kernel_name=kernel_name, env=env or {}, quiet=quiet)
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
        from .store import Store

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
    media = _localize_media(executed, folder, warnings, missing if missing is not None else [])
    _strip_video_data(executed)
    nbformat.write(executed, out_nb)
    _redact_file(out_nb)
    _export_html(executed, out_html, folder)
    _redact_file(out_html)
    return executed, media


def _report_folder(out_dir: str | os.PathLike[str] | None, stem: str) -> Path:
    if out_dir is not None:
        folder = Path(out_dir).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
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


@contextlib.contextmanager
def _kernel_environment(overrides: Mapping[str, str | None]) -> Iterator[None]:
    """The kernel inherits this process's environment at start: change it for the start, then restore."""
    changes: dict[str, str | None] = {
        "JPY_SESSION_NAME": None,  # a report kernel has no frontend: plain-text progress, no widget state
        "MPLBACKEND": None,  # e.g. Agg in CI would hide the plots; the kernel's default is inline PNG
        "PYTHONPATH": os.pathsep.join(p for p in (str(_PACKAGE_DIR.parent), os.environ.get("PYTHONPATH")) if p),
        **overrides,
    }
    with _ENV_LOCK:
        saved = {name: os.environ.get(name) for name in changes}
        try:
            for name, value in changes.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _execute(source: Path, out_nb: Path, params: dict[str, Any], *, cwd: Path, kernel_name: str | None,
             env: Mapping[str, str | None], quiet: bool) -> None:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    stream = None if quiet else sys.stderr
    try:
        with _kernel_environment(env):
            pm.execute_notebook(str(source), str(out_nb), parameters=params, cwd=str(cwd), kernel_name=kernel_name,
                                progress_bar=False, stdout_file=stream, stderr_file=stream, **_local_kernel())
    except PapermillExecutionError as exc:
        raise _cell_error(exc, source, out_nb) from None
    except Exception as exc:  # kernel missing or dead, unreadable notebook: one error type for callers
        hint = ""
        if type(exc).__name__ == "NoSuchKernel":
            hint = (" — install one with `python -m ipykernel install --user --name NAME` or pass "
                    "kernel_name= (the notebook asks for "
                    f"{kernel_name or 'its metadata.kernelspec.name'!r})")
        raise ReportError(f"papermill could not run {source.name}: {type(exc).__name__}: {exc}{hint}",
                          notebook=out_nb if out_nb.is_file() else None) from exc


def _local_kernel() -> dict[str, Any]:
    """Talk to the report's kernel over Unix sockets where there are any: local, private, and
    without the kernel's warning about plain-text TCP in every report."""
    if os.name != "posix":
        return {}
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class _IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _transport_default(self) -> str:
            return "ipc"

    return {"kernel_manager_class": _IPCKernelManager}


def _cell_error(exc: Any, source: Path, out_nb: Path) -> ReportError:
    """Map papermill's error to the failing cell's index in the *source* notebook."""
    import nbformat

    index: int | None = None
    where = "a cell"
    try:
        src_ids = [c.get("id") for c in nbformat.read(source, as_version=4).cells]
        executed = nbformat.read(out_nb, as_version=4)
        failed = next((c for c in executed.cells if c.get("metadata", {}).get("papermill", {}).get("exception")), None)
        if failed is not None and "injected-parameters" in failed.get("metadata", {}).get("tags", []):
            where = "the injected parameters cell"
        elif failed is not None and failed.get("id") in src_ids:
            index = src_ids.index(failed.get("id"))
            where = f"cell {index}"
    except Exception:  # a best effort: papermill's own index (it counts the injected cell) is the fallback
        index = getattr(exc, "cell_index", None)
        where = f"cell {index} of the executed notebook"
    count = getattr(exc, "exec_count", None)
    ename, evalue = getattr(exc, "ename", "Error"), getattr(exc, "evalue", "")
    first_line = next((ln for ln in str(getattr(exc, "source", "")).splitlines() if ln.strip()), "")
    message = (f"{where} of {source.name} (0-based; In [{count}]) raised {ename}: {evalue}"
               + (f"\n  in: {first_line.strip()[:120]}" if first_line else "")
               + f"\nexecuted notebook with the traceback: {out_nb}")
    return ReportError(_redact(message), cell_index=index, execution_count=count, ename=ename,
                       evalue=_redact(str(evalue)), notebook=out_nb)


# -- sanitizing and exporting ---------------------------------------------------------------------

def _redact(text: str) -> str:
    key = settings.api_key() or ""
    if len(key) >= 8:
        text = text.replace(key, _REDACTED)
    return _KEY_PATTERN.sub(_REDACTED, text)


def _redact_file(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    clean = _DATA_VIDEO.sub("", _redact(text))
    if clean != text:
        path.write_text(clean, encoding="utf-8")


def _html_outputs(nb: Any) -> Iterator[tuple[dict[str, Any], str]]:
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data")
            if isinstance(data, dict) and "text/html" in data:
                yield data, "text/html"


def _strip_video_data(nb: Any) -> None:
    """No base64 video in a report: video/* bundles become a note, data: video URIs are dropped."""
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data")
            if not isinstance(data, dict):
                continue
            videos = [k for k in data if k.startswith("video/")]
            for k in videos:
                del data[k]
            if videos and not data:
                data["text/plain"] = "(a video embedded as data was removed from this report; show videos by reference)"
            if "text/html" in data:
                markup = "".join(data["text/html"]) if isinstance(data["text/html"], list) else data["text/html"]
                data["text/html"] = _DATA_VIDEO.sub("", markup)


def _localize_media(nb: Any, folder: Path, warnings: list[str], missing_out: list[str]) -> int:
    """Link (or copy) every video/poster the HTML outputs point at outside ``folder`` into ``folder/media``.

    Reused runs keep their files where the first run put them; this makes every report folder whole.
    """
    root = folder.resolve()
    placed: dict[Path, str] = {}
    missing: set[str] = set()

    def rewrite(match: re.Match[str]) -> str:
        attr, value = match.group(1), html.unescape(match.group(2))
        if not value or value.startswith(("#", "/", "data:", "mailto:")) or re.match(r"^[a-z][a-z0-9+.\-]*:", value):
            return match.group(0)
        path = Path(unquote(value.split("#", 1)[0].split("?", 1)[0]))
        if path.suffix.lower() not in _MEDIA_SUFFIXES:
            return match.group(0)
        target = (root / path).resolve()
        if root in target.parents:
            if not target.is_file() and attr != "href":
                missing.add(value)
            return match.group(0)
        if not target.is_file():
            if attr != "href":
                missing.add(value)
            return match.group(0)
        if target not in placed:
            placed[target] = _place(target, root / "media")
        return f'{attr}="{html.escape(placed[target], quote=True)}"'

    for data, key in _html_outputs(nb):
        markup = "".join(data[key]) if isinstance(data[key], list) else data[key]
        data[key] = _MEDIA_ATTR.sub(rewrite, markup)
        # A succeeded run whose file was gone when the notebook ran shows a note instead of a video.
        missing.update(html.unescape(m) for m in _MISSING_VIDEO.findall(markup))
    if missing:
        warnings.append(f"{len(missing)} video/poster file(s) shown by the notebook do not exist, e.g. "
                        f"{sorted(missing)[0]}")
        missing_out.extend(sorted(missing))
    return len(placed)


def _place(target: Path, media: Path) -> str:
    """Hard-link ``target`` into ``media/<its folder>/`` (a copy across file systems); the relative src."""
    dest = media / target.parent.name / target.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and not _same(dest, target):
        for n in range(2, 10_000):
            alt = dest.with_name(f"{target.stem}-{n}{target.suffix}")
            if not alt.exists() or _same(alt, target):
                dest = alt
                break
    if not dest.exists():
        try:
            os.link(target, dest)
        except OSError:
            shutil.copy2(target, dest)
    return quote(dest.relative_to(media.parent).as_posix())


def _same(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b) or (a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes())
    except OSError:
        return False


def _export_html(nb: Any, dest: Path, folder: Path) -> None:
    from nbconvert import HTMLExporter

    # Reports are for reading results: code cells are hidden (the executed .ipynb beside it has them).
    exporter = HTMLExporter(embed_images=True, exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": dest.stem, "path": str(folder)}})
    dest.write_text(body, encoding="utf-8")


def _summary(nb: Any) -> dict[str, Any] | None:
    found = None
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data")
            if isinstance(data, dict) and isinstance(data.get(SUMMARY_MIME), dict):
                found = dict(data[SUMMARY_MIME])
    return found
