"""Running a report's notebook: papermill in a kernel with the report's environment, talking over
local sockets, and a failing cell mapped back to its place in the source notebook."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import RunflowError
from .scrub import redact

__all__ = ["ReportError", "execute"]

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # runflow_nb/
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


def _ensure_event_loop() -> None:
    """Older jupyter_core (papermill's ``run_sync``) asks for this thread's current event loop; after an
    ``asyncio.run()`` earlier in the process there is none ("There is no current event loop"), so one
    is set. A thread that already has a loop keeps it."""
    import asyncio
    import warnings

    try:
        asyncio.get_running_loop()
        return
    except RuntimeError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = asyncio.get_event_loop_policy().get_event_loop()
            if not loop.is_closed():
                return
        except RuntimeError:
            pass
    asyncio.set_event_loop(asyncio.new_event_loop())


def execute(source: Path, out_nb: Path, params: dict[str, Any], *, cwd: Path, kernel_name: str | None,
             env: Mapping[str, str | None], quiet: bool) -> None:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    stream = None if quiet else sys.stderr
    _ensure_event_loop()
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
    return ReportError(redact(message), cell_index=index, execution_count=count, ename=ename,
                       evalue=redact(str(evalue)), notebook=out_nb)
