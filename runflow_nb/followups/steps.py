"""The follow-up steps on an experiment's run, behind :class:`~runflow_nb.experiment.Experiment`'s
``request``, ``code``, ``rerun``, ``upscale`` and ``detail`` (which only delegate here).

``run`` is always what a researcher has at hand: a run id (local or Runflow's), a row of
``exp.table()`` (a dict or a pandas Series) or a :class:`~runflow_nb.client.Result`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .lineage import parent_row
from .rebuild import candidates, request_for
from .rerun import highest_resolution, rerun_requests

if TYPE_CHECKING:
    from ..experiment import Experiment
    from ..request import VideoRequest

__all__ = ["code_of", "detail_of", "request_of", "rerun_of", "upscale_of"]


def _row(exp: Experiment, run: Any) -> dict[str, Any]:
    if hasattr(run, "to_dict") and not isinstance(run, Mapping):  # a pandas Series (a table row)
        run = run.to_dict()
    return parent_row(run, exp.store)


def _is_result(run: Any) -> bool:
    return hasattr(run, "request") and hasattr(run, "video_path") and hasattr(run, "run")


def request_of(exp: Experiment, run: Any) -> VideoRequest:
    """The request that made ``run`` (its ``run_key()`` is the stored one)."""
    if _is_result(run):
        request: VideoRequest = run.request
        return request
    return request_for(_row(exp, run), store=exp.store, artifacts_root=exp.artifacts)


def code_of(exp: Experiment, run: Any, *, here: Path | None = None) -> str:
    """A runnable snippet binding ``request`` to the request that made ``run``."""
    from .code import request_code

    return request_code(request_of(exp, run), here=here)


def rerun_of(exp: Experiment, run: Any, changes: Mapping[str, Any], *, budget_usd: float | None = None,
             concurrency: int = 4, progress: Any = "auto", force: bool = False) -> Any:
    """Run ``run``'s request again with ``changes`` (a list or range of seeds: a sweep around it).

    Returns the new run's stored row (a :class:`~runflow_nb.views.record.RunRecord`), or the table
    of the sweep's runs in the order of the seeds. A change that changes nothing gives a finished
    run itself back (nothing is sent); a run that did not finish (failed, skipped, unknown) is run
    again as itself, resumed as any sweep resumes it. A request the experiment already holds under
    another parent (see :mod:`.reuse`) is that run: reused, or resumed if still in flight, and
    nothing is charged, unless ``force=True`` asks for a fresh sample."""
    from ..errors import RunflowError
    from ..plan import Plan
    from ..views.record import RunRecord
    from .reuse import HELD, content_key, held_by_content, reused_line

    if not isinstance(force, bool):
        from ..errors import UsageError

        raise UsageError(f"force is {force!r}: use True to pay again for a fresh sample, or False")
    row = _row(exp, run)
    base = request_of(exp, run)
    planned = rerun_requests(base, str(row["run_id"]), changes)
    if row.get("status") != "succeeded" and row.get("experiment") == exp.name:
        planned = [base if r is None else r for r in planned]
    found: dict[int, dict[str, Any]] = {}
    if not force:
        held = held_by_content(exp.store, exp.name)
        for pos, req in enumerate(planned):
            own = None if req is None else exp.store.find_run(experiment=exp.name, run_key=req.run_key())
            if req is None or (own is not None and own.get("status") in HELD):
                continue  # the run itself, or this very re-run again: the sweep reuses or resumes it
            key = content_key(req)
            if key is not None and key in held:
                found[pos] = held[key]
    to_run = [r for pos, r in enumerate(planned) if r is not None and pos not in found]
    for match in found.values():
        if match.get("status") != "succeeded":
            # still in flight or unknown: resumed under its own key, as any sweep resumes it (if its
            # references are gone it stays as it is, still holding its money)
            with contextlib.suppress(RunflowError):
                to_run.append(request_for(match, store=exp.store, artifacts_root=exp.artifacts))
    new = list({r.run_key(): r for r in to_run}.values())
    if new:
        exp.run(Plan(new), concurrency=max(1, min(concurrency, len(new))), budget_usd=budget_usd, progress=progress)
    notices: dict[int, str] = {}
    rows: list[dict[str, Any] | None] = []
    for pos, r in enumerate(planned):
        if pos in found:
            rows.append(exp.store.get_run(str(found[pos]["run_id"])) or found[pos])
            notices[pos] = reused_line(rows[-1] or {})
        else:
            rows.append(row if r is None else exp.store.find_run(experiment=exp.name, run_key=r.run_key()))
    if progress is not None and not callable(progress):
        for line in dict.fromkeys(notices.values()):
            print(f"runflow_nb: {line}", file=sys.stderr, flush=True)
    seed = changes.get("seed", changes.get("seeds"))
    many = isinstance(seed, Iterable) and not isinstance(seed, (str, bytes, Mapping))
    if not many:
        assert rows[0] is not None
        return RunRecord(rows[0], notice=notices.get(0))
    df = exp.table()
    ids = [str(r["run_id"]) for r in rows if r is not None]
    picked = df.set_index("run_id", drop=False).reindex([i for i in ids if i in set(df["run_id"])])
    return picked.reset_index(drop=True)


def upscale_of(exp: Experiment, run: Any, *, budget_usd: float | None = None, progress: Any = "auto",
               force: bool = False) -> Any:
    """``run`` again at its model's highest resolution, with the seed it was made with."""
    row = _row(exp, run)
    changes: dict[str, Any] = {"resolution": highest_resolution(str(row.get("model") or "r2v"))}
    seed = row.get("seed") if row.get("seed") is not None else row.get("seed_returned")
    if seed is not None and str(seed) != "<NA>":
        changes["seed"] = int(seed)
    return rerun_of(exp, run, changes, budget_usd=budget_usd, progress=progress, force=force)


def detail_of(exp: Experiment, run: Any) -> str:
    """The detail view's HTML (see :mod:`runflow_nb.followups.detail`)."""
    from ..errors import RunflowError
    from .detail import detail_html

    row = _row(exp, run)
    parent = exp.store.get_run(str(row["parent_run_id"])) if row.get("parent_run_id") else None
    children = exp.store.runs(where={"parent_run_id": str(row["run_id"])})
    code: str | None = None
    error: str | None = None
    try:
        code = code_of(exp, row)
    except RunflowError as exc:
        error = str(exc)
    folder = exp.store.folder
    refs = []
    for display, sha in zip(row.get("images") or [], row.get("image_sha256") or [], strict=False):
        found = candidates(str(display), str(sha), store_folder=folder, artifacts_root=exp.artifacts)
        refs.append(str(found[0]) if found else None)
    return detail_html(row, code=code, code_error=error, parent=parent, children=children, references=refs)
