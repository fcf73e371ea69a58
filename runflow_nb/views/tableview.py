"""``exp.view()``: the experiment table as researchers read it — compact, sortable, filterable.

Only the columns that say something: a thumbnail (the poster still), the parameters that varied,
status, rating, cost and timing, and a short run id. Rendered by `itables
<https://mwouts.github.io/itables/>`_ (DataTables) when it is installed, with its JavaScript
bundled offline (no CDN), so sorting and the search box work in JupyterLab and in a static report;
without itables, or where scripts do not run (an untrusted notebook), the same table is plain
escaped HTML. Every cell is escaped here (prompts are untrusted) and money is MathJax-safe. Text
reads left-aligned and numbers right-aligned (JupyterLab's own style right-aligns every table cell);
a model shows by its family name (``reference-to-video``), the full id on hover.

A clip sent as its bytes (a file no Jupyter server can serve) rides in the table once: the static
preview that stands in while scripts load shows its still without the link. Its still opens it in a
new tab as a ``blob:`` URL (browsers refuse to open ``data:`` in a tab), or downloads it where
handlers are stripped.

>>> exp.view()                           # doctest: +SKIP
>>> exp.view(columns=["prompt", "seed", "rating"])   # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import study
from . import display
from . import html as _html
from .qa_badge import qa_badge

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TableView", "numeric_columns", "view_columns", "view_frame"]

THUMB_WIDTH = 112
_OUTCOME = ("status", "rating", "cost_usd", "wall_s")
_itables_ready = False


def view_columns(df: pd.DataFrame) -> list[str]:
    """The parameters that varied (all parameters when none did), then status when some run did not
    succeed (and clip QA's ``qa`` when some clip was flagged), rating when some run was rated, cost, wall time, ``note`` when some run has one (e.g. the server
    replaced a reference with a placeholder), and ``changes`` when some run is a re-run, upscale or
    edit of another (what it changed from its parent)."""
    varied = study.varying(df) or [c for c in ("prompt", "seed") if c in df.columns]
    notes = ["note"] if "note" in df.columns and df["note"].fillna("").astype(str).str.strip().ne("").any() else []
    qa = ["qa"] if "qa" in df.columns and df["qa"].fillna("ok").astype(str).ne("ok").any() else []
    lineage = ["changes"] if "changes" in df.columns and df["changes"].notna().any() else []
    shown = [c for c in _OUTCOME if c in df.columns and _tells(df, c)]
    status = shown[:1] if shown[:1] == ["status"] else []
    return varied + status + qa + shown[len(status):] + notes + lineage


def _tells(df: pd.DataFrame, column: str) -> bool:
    """Whether an outcome column says anything: status when some run did not succeed, rating when
    some run was rated; cost and wall time always (they differ by run even in one grid cell)."""
    if column == "status":
        return bool(df["status"].astype(str).ne("succeeded").any())
    if column == "rating":
        return bool(df["rating"].notna().any())
    return True


def _cell(name: str, value: Any, rec: dict[str, Any], *, numeric: bool = False) -> str:
    if value is None:
        return ""
    if numeric:  # the number itself rides along, so the table sorts 7.9 < 15.5 < 19.1 (not as text)
        return f'<span data-order="{_html.attr(_order_key(value))}">{_cell(name, value, rec)}</span>'
    if name == "cost_usd":
        return _html.money(float(value), simulated=rec.get("backend") == "simulator")
    if name == "favourite":
        return "★" if value is True else ""
    if name == "wall_s":
        return f"{float(value):.1f} s"
    if name == "status" and value != "succeeded":
        detail = rec.get("error_message")
        return (f'<span title="{_html.attr(detail)}">{_html.text(value)}</span>' if detail else _html.text(value))
    if name == "model" and isinstance(value, str) and "/" in value:  # the family name, the full id on hover
        return (f'<span title="{_html.attr(value)}" style="white-space:nowrap">'
                f'{_html.text(value.rstrip("/").rsplit("/", 1)[-1])}</span>')
    if name in _FILE_COLUMNS and isinstance(value, (str, list, tuple)):
        items = [str(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
        names = ", ".join(_file_name(v) for v in items)
        return f'<span title="{_html.attr(", ".join(items))}">{_html.text(names)}</span>'
    if isinstance(value, (list, tuple)):
        value = ", ".join(map(str, value))
    text = str(value)
    if name == "prompt" and len(text) > 120:
        return f'<span title="{_html.attr(text)}">{_html.text(text[:117])}…</span>'
    return _html.text(text)


_FILE_COLUMNS = ("images", "video")  # references and an edit's input clip: paths or URLs


def _file_name(path_or_url: str) -> str:
    """A reference by its file name (a URL's last path segment), as the gallery's headers name it."""
    return path_or_url.split("?", 1)[0].replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or path_or_url


def _order_key(value: Any) -> str:
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return ""


def numeric_columns(df: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The columns among ``columns`` that hold numbers (seed, duration, rating, cost, wall time ...)."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return [c for c in columns if c in df.columns and is_numeric_dtype(df[c]) and not is_bool_dtype(df[c])]


# Sorting a numeric column reads the number in the cell's data-order attribute (DataTables' orthogonal
# data: display the formatted HTML, order by the number; an empty cell sorts below every number).
_ORDER_BY_NUMBER = ("function (data, type) { if (type !== 'sort' && type !== 'type') { return data; } "
                    "var m = /data-order=\"([^\"]*)\"/.exec(String(data)); "
                    "return m && m[1] !== '' ? parseFloat(m[1]) : -Infinity; }")


def _thumb(rec: dict[str, Any], *, link_bytes: bool = True) -> str:
    """The still, linked to its clip; ``link_bytes=False`` leaves out a link that would carry the clip's
    bytes (a ``data:`` URI), for a copy of the table that stands beside the one that has it."""
    if not display.has_video(rec):
        return f'<span style="font-size:11px;color:#6b7280">{_html.text(display.STATUS_REASONS.get(str(rec.get("status")), rec.get("status") or ""))}</span>'
    still = display.poster_uri(rec.get("poster_path"), width=THUMB_WIDTH * 2)
    src = display.media_src(str(rec["video_path"]))
    img = (f'<img src="{html.escape(still, quote=True)}" alt="still" '
           f'style="width:{THUMB_WIDTH}px;max-height:{THUMB_WIDTH}px;max-width:none;'  # never squeezed by the page
           'object-fit:contain;background:#000;display:block">'
           if still else "▶")
    if src.startswith("data:"):
        if not link_bytes:
            return qa_badge(rec) + img
        # Browsers refuse to open a data: URI in a tab: a click opens the bytes as a blob: URL instead
        # (the clip plays in a new tab), and where handlers are stripped (an untrusted notebook) the
        # link downloads the file.
        name = _file_name(str(rec["video_path"]))
        return (qa_badge(rec) + f'<a href="{html.escape(src, quote=True)}" download="{_html.attr(name)}" '
                f'onclick="{html.escape(_OPEN_BYTES, quote=True)}" title="open the clip">{img}</a>')
    return qa_badge(rec) + f'<a href="{html.escape(src, quote=True)}" target="_blank" title="open the clip">{img}</a>'


# (window.URL: inside an inline handler a bare URL is document.URL, a string)
_OPEN_BYTES = ("event.preventDefault();var u=this.href,d=atob(u.slice(u.indexOf(',')+1)),b=new Uint8Array(d.length);"
               "for(var i=0;i<d.length;i++){b[i]=d.charCodeAt(i);}"
               "window.open(window.URL.createObjectURL(new Blob([b],{type:u.slice(5,u.indexOf(';'))})),'_blank');")


def view_frame(df: pd.DataFrame, columns: Sequence[str] | None = None, *, link_bytes: bool = True) -> pd.DataFrame:
    """The displayed table: a ``clip`` thumbnail column, the chosen columns as escaped HTML, ``run``
    (``link_bytes``: see :func:`_thumb`)."""
    import pandas as pd

    cols = list(columns) if columns is not None else view_columns(df)
    recs = study.records(df)
    numeric = set(numeric_columns(df, cols))
    out: dict[str, list[str]] = {"clip": [_thumb(r, link_bytes=link_bytes) for r in recs]}
    for c in cols:
        out[c] = [_cell(c, r.get(c), r, numeric=c in numeric) for r in recs]
    out["run"] = [f'<span title="{_html.attr(r.get("run_id"))}">{_html.text(str(r.get("run_id"))[:8])}</span>'
                  for r in recs]
    return pd.DataFrame(out, columns=["clip", *cols, "run"])


class TableView:
    """The compact, sortable, filterable table of an experiment (``exp.view()``).

    >>> TableView(exp.table())._repr_html_()    # doctest: +SKIP
    """

    def __init__(self, df: pd.DataFrame, *, columns: Sequence[str] | None = None, page_length: int = 25) -> None:
        self.source = df
        self.frame = view_frame(df, columns)
        self.numeric = numeric_columns(df, [c for c in self.frame.columns if c not in ("clip", "run")])
        self.page_length = page_length

    def static_html(self) -> str:
        """The table as plain HTML (no scripts): text left-aligned, numbers right-aligned."""
        return _html.block(_static_table(self.frame, self.numeric), classes="rf-view-static")

    def _repr_html_(self) -> str:
        try:
            import itables  # noqa: F401
        except ImportError:
            return self.static_html()
        return _html.block(_itables_init() + self._itables_html(), classes="rf-view")

    def _itables_html(self) -> str:
        from itables import JavascriptFunction, to_html_datatable

        names = list(self.frame.columns)
        text = [i for i, c in enumerate(names) if c not in self.numeric]
        # JupyterLab right-aligns every cell of an output's table: say each column's side outright
        defs: list[dict[str, Any]] = [{"targets": [names.index("clip")], "orderable": False},
                                      {"targets": text, "className": "dt-left"}]
        if self.numeric:
            defs.append({"targets": [names.index(c) for c in self.numeric], "type": "num", "className": "dt-right",
                         "render": JavascriptFunction(_ORDER_BY_NUMBER)})
        table_id = f"rf_view_{uuid.uuid4().hex}"
        # text_in_header_can_be_selected=False: a click on a header's name sorts (not only its arrow)
        markup = str(to_html_datatable(self.frame, connected=False, allow_html=True, showIndex=False,
                                       pageLength=self.page_length, classes="display compact",
                                       style="width:auto;margin:0", maxBytes=0, layout={"topEnd": "search"},
                                       columnDefs=defs, order=[], text_in_header_can_be_selected=False,
                                       table_id=table_id))
        return self._own_preview(markup, table_id)

    def _own_preview(self, markup: str, table_id: str) -> str:
        """itables' static preview (shown until the script runs, or instead of it where scripts do not
        run) replaced by this table's own: aligned like the live one, and without a second copy of any
        clip sent as its bytes (the table's data already carries it)."""
        start = markup.find(f'<div id="{table_id}_fallback">')
        end = markup.find(f'</div><script>document.getElementById("{table_id}")', start)
        if start < 0 or end < 0:
            return markup
        head = start + len(f'<div id="{table_id}_fallback">')
        rows = self.frame.head(self.page_length).copy()
        rows["clip"] = [_thumb(r, link_bytes=False) for r in study.records(self.source.head(self.page_length))]
        return markup[:head] + _static_table(rows, self.numeric) + markup[end:]

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return f"<TableView {len(self.frame)} run(s), columns={list(self.frame.columns)}>"


def _static_table(frame: pd.DataFrame, numeric: Sequence[str]) -> str:
    """``frame`` (cells already escaped HTML) as a plain table: numbers right-aligned, the rest left."""
    pad = "padding:4px 8px;border-bottom:1px solid #e5e7eb;vertical-align:middle"
    align = {c: "right" if c in numeric else "left" for c in frame.columns}
    head = "".join(f'<th style="text-align:{align[c]};{pad}">{_html.text(c)}</th>' for c in frame.columns)
    body = "".join("<tr>" + "".join(f'<td style="text-align:{align[c]};{pad}">{v}</td>'
                                    for c, v in zip(frame.columns, row, strict=True)) + "</tr>"
                   for row in frame.itertuples(index=False, name=None))
    return (f'<table class="rf-view" style="border-collapse:collapse">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


BUNDLE_START, BUNDLE_END = "<!--rf-itables-bundle-->", "<!--/rf-itables-bundle-->"
"""Markers around the embedded DataTables bundle, so a report can swap it for a connected loader."""
_bundle_cell: str | None = None  # the notebook cell whose output carries the bundle (this kernel)


def _cell_id() -> str | None:
    """The id of the notebook cell being run (JupyterLab and nbclient send it), if any."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    parent = getattr(shell, "parent_header", None) or {}
    cell = (parent.get("metadata") or {}).get("cellId") if isinstance(parent, dict) else None
    return str(cell) if cell else None


def _itables_init() -> str:
    """itables' offline bundle (~0.9 MB), carried by one output per kernel: the first table's.

    Every later table waits for that bundle in the page instead of embedding it again, so a saved
    notebook holds one copy however many tables it shows. Re-running the cell that carries it
    carries it again (its old output, and the copy in it, are replaced).
    """
    global _itables_ready, _bundle_cell
    cell = _cell_id()
    if _itables_ready and (cell is None or cell != _bundle_cell):
        return ""
    from itables.javascript import generate_init_offline_itables_html
    from itables.options import dt_bundle

    _itables_ready, _bundle_cell = True, cell
    return BUNDLE_START + str(generate_init_offline_itables_html(dt_bundle)) + BUNDLE_END


def connected_loader() -> str:
    """What replaces the embedded bundle where size matters more than working offline (the executed
    notebook beside a report, whose HTML keeps the offline copy): DataTables from itables' CDN URL."""
    from itables.javascript import _itables_ready_event, _itables_underscore_version
    from itables.options import dt_url

    css = dt_url[:-3] + ".css"
    name, event = _itables_underscore_version(), _itables_ready_event()  # what the tables wait for
    return (f'<link href="{html.escape(css, quote=True)}" rel="stylesheet">'
            f"<script>if (!window.{name}) {{window.{name} = import({json.dumps(dt_url)});"
            f"window.{name}.then(() => window.dispatchEvent(new Event({json.dumps(event)})));}}</script>")
