"""Clip QA of one file, of a stored run's clip, and of an experiment's stored clips again.

>>> v = check_clip("clip.mp4", expect=Expectation(duration_s=5, width=1280, height=720))  # doctest: +SKIP
>>> v.text, v.flagged                                                                       # doctest: +SKIP
('frozen 1.2–4.0 s', True)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..settings import QAThresholds, qa_thresholds
from .measure import measure
from .verdict import OK, Expectation, Verdict, expectation_for, verdict

if TYPE_CHECKING:
    from ..media.artifacts import Artifacts
    from ..store.runstore import Store

__all__ = ["QA_COLUMNS", "QA_FILTERS", "check_clip", "check_stored", "filter_qa", "flagged_mask", "qa_summary", "run_qa"]

#: The run columns clip QA writes (schema 6).
QA_COLUMNS = ("qa", "qa_black_s", "qa_frozen_s", "qa_silent_s", "qa_rms_db", "qa_peak_db", "qa_clipped",
              "qa_duration_s", "qa_fps", "qa_frames", "qa_decode_errors")


def check_clip(path: str | os.PathLike[str], *, expect: Expectation | None = None,
               limits: QAThresholds | None = None, nsfw_detected: bool | None = None) -> Verdict:
    """Measure the clip at ``path`` in one streaming pass and judge it against ``expect``.

    ``limits`` defaults to :func:`runflow_nb.settings.qa_thresholds` (the clip QA variables of :data:`runflow_nb.settings.VARIABLES`).
    """
    limits = limits if limits is not None else qa_thresholds()
    return verdict(measure(path, limits=limits), expect or Expectation(), limits=limits, nsfw_detected=nsfw_detected)


def run_qa(path: str | os.PathLike[str], row: Mapping[str, Any], *, nsfw_detected: bool | None = None,
           limits: QAThresholds | None = None) -> dict[str, Any]:
    """The QA columns for a run's downloaded clip at ``path`` (what the run asked for is read from ``row``)."""
    nsfw = nsfw_detected if nsfw_detected is not None else row.get("nsfw_detected")
    return check_clip(path, expect=expectation_for(row), limits=limits, nsfw_detected=bool(nsfw)).columns


def check_stored(store: Store, experiment: str, *, artifacts: Artifacts | None = None,
                 run_ids: Iterable[str] | None = None, limits: QAThresholds | None = None) -> list[dict[str, Any]]:
    """Check again the stored clips of ``experiment``'s finished runs (all, or ``run_ids``) and
    store the new verdicts; returns ``{"run_id", "qa", "was"}`` for each run checked. A run whose
    file cannot be found gets ``qa`` = ``missing file``."""
    limits = limits if limits is not None else qa_thresholds()
    wanted = set(run_ids) if run_ids is not None else None
    done: list[dict[str, Any]] = []
    for row in store.runs(experiment, status=("succeeded", "partial_succeeded")):
        if wanted is not None and row["run_id"] not in wanted:
            continue
        path = row.get("video_path")
        if not path:
            continue
        with _local_copy(str(path), artifacts) as local:
            columns = (run_qa(local, row, limits=limits) if local is not None
                       else {"qa": "missing file"})
        store.update_run(row["run_id"], **columns)
        done.append({"run_id": row["run_id"], "qa": columns["qa"], "was": row.get("qa")})
    return done


def qa_summary(done: Iterable[Mapping[str, Any]]) -> str:
    """One line on a re-check (:func:`check_stored`'s rows): how many clips were checked, how many
    are flagged (anything but ``ok``) and how many verdicts changed since the last check.

    >>> qa_summary([{"qa": "ok", "was": "ok"}, {"qa": "frozen 1.0–3.0 s", "was": "ok"}, {"qa": "ok", "was": None}])
    'clip QA: 3 clips checked, 1 flagged, 1 changed since last time, 1 checked for the first time'
    """
    rows = list(done)
    flagged = sum(1 for r in rows if r.get("qa") != OK)
    first = sum(1 for r in rows if r.get("was") is None)
    changed = sum(1 for r in rows if r.get("was") is not None and r.get("was") != r.get("qa"))
    line = (f"clip QA: {len(rows)} clip{'' if len(rows) == 1 else 's'} checked, {flagged} flagged, "
            f"{changed} changed since last time")
    return line + (f", {first} checked for the first time" if first else "")


@contextlib.contextmanager
def _local_copy(path: str, artifacts: Artifacts | None) -> Any:
    """The clip as a local file: the path itself, or a temporary copy of a remote one (None if gone)."""
    if "://" not in path:
        yield path if os.path.isfile(path) else None
        return
    from ..media.artifacts import resolve

    store = artifacts if artifacts is not None else resolve(path)
    fd, tmp = tempfile.mkstemp(prefix="runflow-qa-", suffix=".mp4")
    try:
        try:
            with store.open(path) as src, os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except OSError:
            yield None
            return
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def flagged_mask(values: Any) -> Any:
    """For a ``qa`` column (a pandas Series): True where a clip was checked and flagged."""
    return values.notna() & (values.astype("string") != OK)


QA_FILTERS = ("flagged", "ok", "unchecked")


def filter_qa(df: Any, qa: str) -> Any:
    """The rows of an experiment table whose clip QA is ``flagged`` (anything but ``ok``), ``ok``, or
    ``unchecked`` (no verdict yet: no clip, or stored before clip QA; ``exp.qa()`` checks them)."""
    from ..errors import UsageError

    if qa not in QA_FILTERS:
        raise UsageError(f"qa is {qa!r}: use 'flagged', 'ok' or 'unchecked' (or leave it out for every run)")
    if "qa" not in df.columns:
        return df.iloc[0:0] if qa != "unchecked" else df
    column = df["qa"]
    mask = (flagged_mask(column) if qa == "flagged" else column.astype("string") == OK if qa == "ok"
            else column.isna())
    return df[mask.fillna(False).astype(bool)]
