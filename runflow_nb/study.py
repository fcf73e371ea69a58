"""Reading a study: which parameters varied, the table's column order, grids of runs, a ranking.

Plain data over the experiment table (pandas), no HTML: the gallery, the table view and compare
render what these functions decide, and scripts can use them directly.

>>> import pandas as pd
>>> df = pd.DataFrame({"prompt": ["a", "a", "b"], "seed": [1, 2, 1], "duration": [5, 5, 5]})
>>> varying(df)
['prompt', 'seed']
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import Issue, ValidationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FAVOURITE", "PARAMETERS", "Grid", "best_per", "column_order", "follows", "grid", "next_pair", "ranking",
           "varying"]

PARAMETERS = ("model", "prompt", "images", "seed", "duration", "resolution", "aspect_ratio",
              "enable_safety_checker")
"""Request parameters, in the order a study is read (what a researcher varies)."""
OUTCOME = ("status", "qa", "rating", "tags", "note", "video_path", "poster_path", "error_code", "error_message",
           "nsfw_detected", "seed_returned", "width", "height", "video_duration", "has_audio", "qa_duration_s",
           "qa_fps", "qa_frames", "qa_black_s", "qa_frozen_s", "qa_silent_s", "qa_rms_db", "qa_peak_db", "qa_clipped",
           "qa_decode_errors")
TIMING = ("wall_s", "queue_s", "inference_ms", "created_at", "submitted_at", "started_at", "completed_at",
          "updated_at", "attempts")
COST = ("cost_usd", "cost_estimate_usd", "cost_simulated", "backend")
IDS = ("run_id", "remote_id", "client_ref", "batch_key", "run_key", "experiment", "owner", "output_url", "video_sha256",
       "image_sha256", "params", "library_version")
MODEL_INPUTS = ("images", "aspect_ratio")
"""Parameters each model takes its own way (t2v takes no images, i2v the first, r2v all; i2v keeps its
image's shape): with ``model`` as an axis they are never a facet of their own."""
FAVOURITE = "favourite"
"""The tag a favourite clip carries (set by the gallery's ☆ button or ``exp.tag(run_id, "favourite")``)."""
PREFERRED = "preferred_over:"
TIE = "tie_with:"


def _hashable(value: Any) -> Any:
    if isinstance(value, (str, int)) and not isinstance(value, bool):  # the common case, first
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if value is None:
        return None
    try:
        if isinstance(value, float) and math.isnan(value):
            return None
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except (ImportError, TypeError):
        pass
    return value


def varying(df: pd.DataFrame, candidates: Iterable[str] = PARAMETERS) -> list[str]:
    """The parameters (in :data:`PARAMETERS` order) that take more than one value in ``df``
    (missing values do not count: a run refused before its parameters were known varies nothing)."""
    out = []
    for c in candidates:
        if c not in df.columns:
            continue
        column = df[c]
        # lists (images) and mixed values: stop at the first value that differs
        varies = _two_values(column) if column.dtype == object else int(column.nunique(dropna=True)) > 1
        if varies:
            out.append(c)
    return out


def _two_values(values: Iterable[Any]) -> bool:
    """True as soon as two different present values are seen (lists compare by content)."""
    first: Any = None
    for value in values:
        if value is None or (not isinstance(value, (list, tuple, str, int)) and _hashable(value) is None):
            continue  # missing (None, NaN, NA) varies nothing
        if first is None:
            first = value
        elif value != first:
            return _hashable(value) != _hashable(first)
    return False


def column_order(df: pd.DataFrame) -> list[str]:
    """The table's columns: the parameters that varied, the other parameters, then outcome,
    timing and cost; ids and bookkeeping last. Unknown columns go before the ids."""
    moved = varying(df)
    order = moved + [c for c in PARAMETERS if c not in moved]
    for group in (OUTCOME, TIMING, COST):
        order += list(group)
    known = [c for c in order if c in df.columns]
    extra = [c for c in df.columns if c not in known and c not in IDS]
    return known + extra + [c for c in IDS if c in df.columns]


def _ordered(keys: Iterable[Any]) -> list[Any]:
    """Distinct keys: numbers ascending, anything else in order of first appearance; missing last."""
    distinct = list(dict.fromkeys(keys))
    present = [k for k in distinct if k is not None]
    if present and all(isinstance(k, numbers.Real) and not isinstance(k, bool) for k in present):
        present.sort()
    return present + ([None] if None in distinct else [])


@dataclass
class Grid:
    """Runs laid out as facets of ``rows`` × ``cols``: the same row and column keys in every facet,
    so clips line up across them; ``cells[(facet, row, col)]`` holds the runs there (often one).

    ``explained`` names the parameters that varied but follow from an axis (``images`` and
    ``aspect_ratio`` from ``model``: each model takes its own), each with that axis; they are not
    axes of their own, and :meth:`notes` gives their value beside the axis key. With ``model`` as an
    axis, :data:`MODEL_INPUTS` are never facets (where they differ within a model, captions say so).
    Each facet shows only the rows and columns with a run in it (:meth:`rows_in`, :meth:`cols_in`).
    ``constants`` holds the parameters with one value over the whole grid (said once, above it).
    An edited clip (a video-edit run) sits in its parent's cell, right after it; a re-run sits where
    its own parameters put it. ``parents`` maps every run whose parent is shown to that parent.
    """

    rows: str
    cols: str
    facets: list[str]
    row_keys: list[Any]
    col_keys: list[Any]
    facet_keys: list[tuple[Any, ...]]
    cells: dict[tuple[tuple[Any, ...], Any, Any], list[dict[str, Any]]] = field(default_factory=dict)
    explained: dict[str, str] = field(default_factory=dict)
    parents: dict[str, str] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    _notes: dict[tuple[str, Any], dict[str, Any]] = field(default_factory=dict, repr=False)
    _used: dict[tuple[Any, ...], tuple[set[Any], set[Any]]] = field(default_factory=dict, repr=False)

    def runs(self, facet: tuple[Any, ...], row: Any, col: Any) -> list[dict[str, Any]]:
        return self.cells.get((facet, row, col), [])

    def rows_in(self, facet: tuple[Any, ...]) -> list[Any]:
        """The row keys with a run in ``facet`` (whatever its status), in :attr:`row_keys` order."""
        used = self._used.get(facet)
        return [k for k in self.row_keys if used is None or k in used[0]]

    def cols_in(self, facet: tuple[Any, ...]) -> list[Any]:
        """The column keys with a run in ``facet``, in :attr:`col_keys` order."""
        used = self._used.get(facet)
        return [k for k in self.col_keys if used is None or k in used[1]]

    def notes(self, axis: str, key: Any) -> dict[str, Any]:
        """The explained parameters' values where ``axis`` is ``key`` (e.g. the images a model took)."""
        return self._notes.get((axis, key), {})

    def shown(self, facet: tuple[Any, ...], row: Any, col: Any) -> dict[str, Any]:
        """What the headers already say for a cell: its axes' values and what follows from them."""
        out: dict[str, Any] = {**self.constants, self.rows: row, self.cols: col,
                               **dict(zip(self.facets, facet, strict=True))}
        for axis, key in list(out.items()):
            out.update(self.notes(axis, key))
        return out


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The table's rows as dicts with missing values as None (lists kept)."""
    out = []
    for rec in df.to_dict("records"):
        out.append({k: (v if isinstance(v, (list, tuple)) else (None if _hashable(v) is None else v))
                    for k, v in rec.items()})
    return out


def follows(recs: Sequence[Mapping[str, Any]], param: str, axis: str) -> bool:
    """True when ``param`` takes one value for each value of ``axis`` (it follows from the axis).

    >>> follows([{"model": "t2v", "images": None}, {"model": "i2v", "images": ["a.png"]},
    ...          {"model": "i2v", "images": ["a.png"]}], "images", "model")
    True
    """
    seen: dict[Any, Any] = {}
    for r in recs:
        key, value = _hashable(r.get(axis)), _hashable(r.get(param))
        if seen.setdefault(key, value) != value:
            return False
    return len(seen) > 1  # one axis value explains nothing that varies


def _is_edit(rec: Mapping[str, Any]) -> bool:
    return str(rec.get("model") or "").endswith("video-edit")


def _lineage(recs: list[dict[str, Any]]) -> dict[str, str]:
    """Each edit (a video-edit run whose ``parent_run_id`` is among ``recs``) → the first run of its
    line (edits of edits too). A re-run or an upscale is not here: its own parameters place it."""
    ids = {r.get("run_id") for r in recs}
    parent = {str(r["run_id"]): str(r["parent_run_id"]) for r in recs
              if _is_edit(r) and r.get("parent_run_id") and r.get("parent_run_id") in ids}
    out: dict[str, str] = {}
    for child in parent:
        root, hops = parent[child], 0
        while root in parent and hops < len(parent):  # a loop in hand-edited rows ends the walk
            root, hops = parent[root], hops + 1
        if root not in parent:  # (a loop has no first run: its rows stay where their parameters put them)
            out[child] = root
    return out


def _constant(recs: Sequence[Mapping[str, Any]], name: str) -> Any:
    """The one value ``name`` takes in every run of ``recs`` (None when it differs or is missing)."""
    values = {_hashable(r.get(name)) for r in recs}
    if len(values) != 1:
        return None
    (value,) = values
    return None if value in ((), "") else value


def grid(df: pd.DataFrame, *, rows: str = "prompt", cols: str = "seed",
         facets: str | Sequence[str] | None = None) -> Grid:
    """Lay ``df`` out by ``rows`` × ``cols``; ``facets`` (default: every other parameter that
    varied and does not follow from an axis) split it into aligned sub-grids. Within a cell runs
    are ordered by creation, each edit right after the clip it was made from."""
    for axis in (rows, cols, *([facets] if isinstance(facets, str) else facets or [])):
        if axis not in df.columns:
            known = ", ".join(map(str, df.columns))
            raise ValidationError([Issue("gallery", f"no column {axis!r} to lay the gallery out by",
                                         f"pick one of: {known}")])
    recs = records(df)
    roots = _lineage(recs) if "parent_run_id" in df.columns else {}
    placed = [r for r in recs if r.get("run_id") not in roots]  # edits follow their parent, not the axes
    explained: dict[str, str] = {}
    if facets is None:
        axes, facet_cols = [rows, cols], []
        laid = df[~df["run_id"].isin(list(roots))] if roots else df
        for c in varying(laid):
            if c in (rows, cols):
                continue
            by = next((a for a in axes if follows(placed, c, a)), None)
            if by is not None:
                explained[c] = by
            elif not ("model" in (rows, cols) and c in MODEL_INPUTS):  # a model's own inputs are never axes
                facet_cols.append(c)
                axes.append(c)
    else:
        facet_cols = [facets] if isinstance(facets, str) else list(facets)
    row_keys = _ordered(_hashable(r[rows]) for r in placed)
    col_keys = _ordered(_hashable(r[cols]) for r in placed)
    facet_values = [_ordered(_hashable(r[f]) for r in placed) for f in facet_cols]
    seen = {tuple(_hashable(r[f]) for f in facet_cols) for r in placed}
    import itertools

    facet_keys = [k for k in itertools.product(*facet_values) if k in seen] if facet_cols else [()]
    axes_named = {rows, cols, *facet_cols, *explained}
    constants = {c: v for c in PARAMETERS if c in df.columns and c not in axes_named
                 and (v := _constant(placed, c)) is not None} if len(placed) > 1 else {}
    ids = {r.get("run_id") for r in recs}
    g = Grid(rows=rows, cols=cols, facets=facet_cols, row_keys=row_keys, col_keys=col_keys, facet_keys=facet_keys,
             explained=explained, constants=constants,
             parents={str(r["run_id"]): str(r["parent_run_id"]) for r in recs
                      if r.get("parent_run_id") and r.get("parent_run_id") in ids})
    for param, axis in explained.items():
        for r in placed:
            g._notes.setdefault((axis, _hashable(r[axis])), {})[param] = r.get(param)
    where: dict[str, tuple[tuple[Any, ...], Any, Any]] = {}
    for r in placed:
        key = (tuple(_hashable(r[f]) for f in facet_cols), _hashable(r[rows]), _hashable(r[cols]))
        g.cells.setdefault(key, []).append(r)
        where[str(r.get("run_id"))] = key
        used = g._used.setdefault(key[0], (set(), set()))
        used[0].add(key[1])
        used[1].add(key[2])
    for r in recs:  # edits in creation order, after everything in their parent's cell
        root = roots.get(str(r.get("run_id")))
        if root is not None and root in where:
            g.cells[where[root]].append(r)
    return g


def _judgements(df: pd.DataFrame) -> tuple[dict[str, int], dict[str, int], dict[str, int], set[frozenset[str]]]:
    wins: dict[str, int] = {}
    losses: dict[str, int] = {}
    ties: dict[str, int] = {}
    judged: set[frozenset[str]] = set()
    for run_id, tags in zip(df["run_id"], df["tags"], strict=True):
        for tag in tags or ():
            if not isinstance(tag, str):
                continue
            if tag.startswith(PREFERRED):
                other = tag[len(PREFERRED):]
                wins[run_id] = wins.get(run_id, 0) + 1
                losses[other] = losses.get(other, 0) + 1
                judged.add(frozenset((run_id, other)))
            elif tag.startswith(TIE):
                ties[run_id] = ties.get(run_id, 0) + 1
                judged.add(frozenset((run_id, tag[len(TIE):])))
    return wins, losses, ties, judged


def ranking(df: pd.DataFrame, *, flagged: bool = False) -> pd.DataFrame:
    """Succeeded runs best first, with what the judgement rests on. Clips flagged by clip QA (a
    ``qa`` other than ``ok``) are left out unless ``flagged=True``.

    Adds ``favourite`` (the :data:`FAVOURITE` tag), ``wins``/``losses``/``ties`` (A/B choices from
    compare) and ``preference`` = (wins + ties/2) / comparisons (NaN when never compared). Order:
    favourites first, then rating (unrated last), then preference, then more comparisons won.
    """
    import numpy as np

    done = df[df["status"] == "succeeded"].copy()
    if not flagged and "qa" in done:
        from .qa.check import flagged_mask

        done = done[~flagged_mask(done["qa"])]
    wins, losses, ties, _ = _judgements(df)
    done["favourite"] = [FAVOURITE in (t or ()) for t in done["tags"]]
    done["wins"] = [wins.get(r, 0) for r in done["run_id"]]
    done["losses"] = [losses.get(r, 0) for r in done["run_id"]]
    done["ties"] = [ties.get(r, 0) for r in done["run_id"]]
    compared = done["wins"] + done["losses"] + done["ties"]
    done["preference"] = np.where(compared > 0, (done["wins"] + done["ties"] / 2) / compared.clip(lower=1), np.nan)
    rating = done["rating"].astype("Float64").fillna(-1.0) if "rating" in done else 0.0
    done = done.assign(_r=rating, _p=done["preference"].fillna(-1.0))
    done = done.sort_values(["favourite", "_r", "_p", "wins"], ascending=False, kind="stable")
    return done.drop(columns=["_r", "_p"]).reset_index(drop=True)


def best_per(df: pd.DataFrame, by: str | Sequence[str] = "prompt", *, flagged: bool = False) -> pd.DataFrame:
    """The top run of :func:`ranking` for each value of ``by`` (default: each prompt); clips flagged
    by clip QA only with ``flagged=True``."""
    ranked = ranking(df, flagged=flagged)
    keys = [by] if isinstance(by, str) else list(by)
    hashed = ranked[keys].map(_hashable) if keys else ranked[keys]
    return ranked[~hashed.duplicated()].reset_index(drop=True)


def next_pair(df: pd.DataFrame, *, by: str | Sequence[str] = "prompt",
              exclude: Iterable[frozenset[str]] = ()) -> tuple[str, str] | None:
    """Two succeeded runs with the same ``by`` values that have not been compared yet: the best
    ranked run against its nearest unjudged rival, so choices refine the top of the ranking."""
    _, _, _, judged = _judgements(df)
    judged |= set(exclude)
    ranked = ranking(df)
    keys = [by] if isinstance(by, str) else list(by)
    groups: dict[Any, list[str]] = {}
    for rec in ranked.to_dict("records"):
        groups.setdefault(tuple(_hashable(rec[k]) for k in keys), []).append(rec["run_id"])
    for ids in groups.values():
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                if frozenset((a, b)) not in judged:
                    return a, b
    return None


def reason(row: Mapping[str, Any] | None) -> str:
    """Why there is no clip: the status (and message) of ``row``, "not run" without a row."""
    if row is None:
        return "not run"
    status = str(row.get("status") or "")
    message = row.get("error_message")
    return f"{status}: {message}" if message else status
