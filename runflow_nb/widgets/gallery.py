"""A grid of clips as plain HTML: rows and columns are run parameters, each cell a video by reference.

Not a widget on purpose: the HTML is saved in the notebook and rendered by nbconvert, so a report
of 24 clips stays a few kilobytes (videos and poster frames are ``src`` references to files Jupyter
serves, never base64). Every value that reaches the page is escaped; prompts are untrusted.

>>> exp.gallery(rows="prompt", cols="seed", resolution="720p")      # doctest: +SKIP
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import display

if TYPE_CHECKING:
    import pandas as pd

    from ..experiment import Experiment

__all__ = ["Gallery", "gallery", "gallery_html", "table_html"]

CELL_WIDTH_PX = 280
_TH = ("text-align:left;vertical-align:top;padding:4px 8px;font-size:12px;background:#f3f4f6;"
       "border:1px solid #e5e7eb")
_TD = f"text-align:left;vertical-align:top;padding:4px;border:1px solid #e5e7eb;width:{CELL_WIDTH_PX}px"


class Gallery:
    """The gallery's HTML, displayed by ``_repr_html_`` (also ``str(g)`` / :meth:`to_html`)."""

    def __init__(self, markup: str, *, clips: int, rows: str, cols: str) -> None:
        self.markup = markup
        self.clips = clips
        self.rows = rows
        self.cols = cols

    def _repr_html_(self) -> str:
        return self.markup

    def to_html(self) -> str:
        return self.markup

    def __str__(self) -> str:
        return self.markup

    def __len__(self) -> int:
        return self.clips

    def __repr__(self) -> str:
        return f"<Gallery {self.clips} clip(s), rows={self.rows!r}, cols={self.cols!r}>"


def gallery(exp: Experiment, *, rows: str = "prompt", cols: str = "seed", status: str | None = "succeeded",
            tags: Iterable[str] | None = None, **filters: Any) -> Gallery:
    """The experiment's runs (``status``, ``tags`` and column ``filters`` as in :meth:`Experiment.table`)."""
    df = exp.table(status=status, tags=tags, where=filters or None)
    return Gallery(gallery_html(df, rows=rows, cols=cols), clips=len(df), rows=rows, cols=cols)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        import pandas as pd

        return value is pd.NA or value is pd.NaT
    except ImportError:  # pragma: no cover
        return False


def _key(value: Any) -> Any:
    if _missing(value):
        return None
    if isinstance(value, (list, tuple)):
        return tuple(_key(v) for v in value)
    return value


def _label(key: Any) -> str:
    if key is None:
        return "—"
    if isinstance(key, tuple):
        return ", ".join(_label(k) for k in key)
    return str(key)


def _ordered(keys: Sequence[Any]) -> list[Any]:
    """Distinct keys: numbers ascending, anything else in order of first appearance; missing last."""
    distinct = list(dict.fromkeys(keys))
    present = [k for k in distinct if k is not None]
    if present and all(isinstance(k, numbers.Real) and not isinstance(k, bool) for k in present):
        present.sort()
    return present + ([None] if None in distinct else [])


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if not isinstance(v, (list, tuple)) and _missing(v) else v) for k, v in rec.items()}
            for rec in df.to_dict("records")]


def _header(key: Any, *, limit: int = 160) -> str:
    text = _label(key)
    short = text if len(text) <= limit else text[: limit - 1] + "…"
    return f'<span title="{html.escape(text, quote=True)}">{html.escape(short)}</span>'


def gallery_html(df: pd.DataFrame, *, rows: str = "prompt", cols: str = "seed") -> str:
    """A rows × cols table of runs (several runs in a cell are stacked), every text escaped."""
    for axis in (rows, cols):
        if axis not in df.columns:
            known = ", ".join(map(str, df.columns))
            raise KeyError(f"no column {axis!r} to lay the gallery out by; columns: {known}")
    records = _records(df)
    if not records:
        return '<div class="rf-gallery"><p><i>No runs to show.</i></p></div>'
    row_keys = _ordered([_key(r[rows]) for r in records])
    col_keys = _ordered([_key(r[cols]) for r in records])
    cells: dict[tuple[Any, Any], list[Mapping[str, Any]]] = {}
    for rec in records:
        cells.setdefault((_key(rec[rows]), _key(rec[cols])), []).append(rec)

    corner = f"{html.escape(rows)} ↓ &nbsp; {html.escape(cols)} →"
    head = "".join(f'<th style="{_TH}">{_header(c)}</th>' for c in col_keys)
    body = []
    for rk in row_keys:
        tds = []
        for ck in col_keys:
            runs = cells.get((rk, ck), [])
            inner = "".join(f'<div style="margin-bottom:6px">{display.row_html(r, width="100%")}</div>'
                            for r in runs)
            tds.append(f'<td style="{_TD}">{inner}</td>')
        body.append(f'<tr><th style="{_TH};max-width:220px">{_header(rk)}</th>{"".join(tds)}</tr>')
    costs = [float(r["cost_usd"]) for r in records if isinstance(r.get("cost_usd"), numbers.Real)]
    simulated = any(r.get("backend") == "simulator" for r in records)
    total = f" · {'est. ' if simulated else ''}${sum(costs):.2f}" if costs else ""
    summary = f'<div style="font-size:12px;margin:4px 0">{len(records)} clip(s){total}</div>'
    return (f'<div class="rf-gallery" style="overflow-x:auto">{summary}'
            f'<table style="border-collapse:collapse;table-layout:fixed">'
            f'<thead><tr><th style="{_TH}">{corner}</th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def table_html(df: pd.DataFrame, *, columns: Sequence[str] | None = None, max_rows: int | None = 200) -> str:
    """A DataFrame as escaped HTML (lists shown as text); prompts with markup render as text."""
    frame = df if columns is None else df[list(columns)]
    frame = frame.copy()
    for name in frame.columns:
        if frame[name].dtype == object:
            frame[name] = frame[name].map(lambda v: ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v)
    return str(frame.to_html(escape=True, index=False, na_rep="", max_rows=max_rows, border=0,
                             classes="rf-table"))
