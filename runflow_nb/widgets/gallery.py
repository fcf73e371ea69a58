"""The gallery: runs as rows × columns of any parameters, further parameters as aligned facets.

Every cell shows its clip with the poster still (a small JPEG ``data:`` URI, so JupyterLab, VS
Code, Colab and static HTML all show it) and the video by reference, or the reason there is none
(skipped over the budget, failed with the message, not run). Portrait clips keep a sensible height.
In a live JupyterLab kernel each cell also carries a 1–5 rating and a ☆ favourite written to the
store; a report (papermill, nbconvert) gets the same grid as plain HTML.

>>> exp.gallery(rows="prompt", cols="seed")                          # doctest: +SKIP
>>> exp.gallery(rows="prompt", cols="seed", facets="duration")       # doctest: +SKIP
>>> exp.best()                                                       # doctest: +SKIP

The layout (which runs go where, the ranking behind "best") is :mod:`runflow_nb.study`; this
module only renders it.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .. import study
from ..errors import ConfigurationError
from ..views import display
from ..views import html as _html

if TYPE_CHECKING:
    import pandas as pd

    from ..experiment import Experiment

__all__ = ["Gallery", "best_html", "gallery", "gallery_html", "table_html"]

CELL_WIDTH_PX = 280  # a cell's width where the panel has room
MIN_CELL_PX = 140  # cells shrink to this in a narrow panel before the grid scrolls sideways
HEAD_PX = 140  # the row headers' column
_TH = ("text-align:left;vertical-align:top;padding:4px 8px;font-size:12px;background:#f3f4f6;"
       "border:1px solid #e5e7eb")
_TD = "text-align:left;vertical-align:top;padding:4px;border:1px solid #e5e7eb"


def _fit(columns: int) -> str:
    """A grid of ``columns`` clips as wide as the panel: each cell between MIN_CELL_PX and
    CELL_WIDTH_PX wide, scrolling sideways only when even the smallest cells do not fit."""
    return (f"width:max(100%, {HEAD_PX + columns * MIN_CELL_PX}px);"
            f"max-width:{HEAD_PX + columns * CELL_WIDTH_PX}px")


def _label(key: Any) -> str:
    if key is None:
        return "—"
    if isinstance(key, tuple):
        return ", ".join(_label(k) for k in key)
    return str(key)


def _header(key: Any, *, limit: int = 160) -> str:
    text = _label(key)
    short = text if len(text) <= limit else text[: limit - 1] + "…"
    return f'<span title="{_html.attr(text)}">{_html.text(short)}</span>'


def _facet_title(g: study.Grid, facet: tuple[Any, ...]) -> str:
    return " · ".join(f"{_html.text(name)} = {_header(value)}{_notes(g, name, value, inline=True)}"
                      for name, value in zip(g.facets, facet, strict=True))


def _notes(g: study.Grid, axis: str, key: Any, *, inline: bool = False) -> str:
    """What follows from an axis value (e.g. the images a model takes), under its header."""
    notes = g.notes(axis, key)
    if not notes:
        return ""
    text = " · ".join(f"{name}: {_note_value(value)}" for name, value in notes.items())
    full = " · ".join(f"{name}: {_label(tuple(v) if isinstance(v, list) else v)}" for name, v in notes.items())
    short = text if len(text) <= 120 else text[:119] + "…"
    tag = "span" if inline else "div"
    return (f' <{tag} class="rf-axis-note" title="{_html.attr(full)}" style="font-size:11px;font-weight:normal;'
            f'color:#6b7280">{"(" if inline else ""}{_html.text(short)}{")" if inline else ""}</{tag}>')


def _note_value(value: Any) -> str:
    """A value under a header: "none" when empty, files by their names (the full paths on hover)."""
    if value in (None, [], ()):
        return "none"
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    return ", ".join(str(v).replace("\\", "/").rsplit("/", 1)[-1] if isinstance(v, str) else str(v) for v in items)


def _axis_header(g: study.Grid, axis: str, key: Any) -> str:
    return _header(key) + _notes(g, axis, key)


STYLE = ("<style>"
         # rating buttons stay on one line in the narrowest tile
         ".rf-gallery .rf-rating-row{flex-wrap:nowrap!important;gap:2px}"
         ".rf-gallery .rf-rating .widget-toggle-button{width:20px!important;min-width:0;padding:0;margin:0 1px 0 0}"
         ".rf-gallery .rf-rating .widget-toggle-buttons{flex-wrap:nowrap}"
         ".rf-gallery .rf-favourite{width:24px!important;min-width:0;padding:0}"
         # the player's own controls stay off the still until the clip is hovered or played
         ".rf-gallery video::-webkit-media-controls-panel{background-image:none}"
         ".rf-gallery video:not(:hover)::-webkit-media-controls-enclosure{opacity:0}"
         ".rf-gallery .rf-edit{border-left:3px solid #7c3aed;padding-left:6px;margin-top:4px}"
         "</style>")
"""The gallery's own CSS (every rule under ``.rf-gallery``)."""


def _run_html(g: study.Grid | None, r: dict[str, Any], shown: dict[str, Any]) -> str:
    """One run of a cell: its caption leaves out what the headers say (a parameter with the header's
    value); an edit says so, under its parent."""
    hide = [k for k, v in shown.items() if study._hashable(r.get(k)) == study._hashable(v)]
    clip = display.row_html(r, width="100%", hide=hide)
    parent = g.parents.get(str(r.get("run_id"))) if g is not None else None
    if parent:
        return (f'<div class="rf-cell-run rf-edit" data-parent="{_html.attr(parent)}" style="margin-bottom:6px">'
                f'<div style="font-size:11px;color:#7c3aed">↳ {display.lineage_label(r)} run {_html.text(parent[:8])}</div>'
                f'{clip}</div>')
    return f'<div class="rf-cell-run" style="margin-bottom:6px">{clip}</div>'


def _cell_html(runs: list[dict[str, Any]], g: study.Grid | None = None,
               where: tuple[tuple[Any, ...], Any, Any] | None = None) -> str:
    if not runs:
        return display.reason_html(None)
    shown = g.shown(*where) if g is not None and where is not None else {}
    return "".join(_run_html(g, r, shown) for r in runs)


def _summary(df: pd.DataFrame) -> str:
    recs = study.records(df)
    costs = [float(r["cost_usd"]) for r in recs if isinstance(r.get("cost_usd"), (int, float))]
    simulated = any(r.get("backend") == "simulator" for r in recs)
    shown = sum(1 for r in recs if display.has_video(r))
    other = len(recs) - shown
    total = f" · {_html.money(sum(costs), simulated=simulated)}" if costs else ""
    rest = f" · {other} without a clip" if other else ""
    return f'<div style="font-size:12px;margin:4px 0">{shown} clip(s){rest}{total}</div>'


def gallery_html(df: pd.DataFrame, *, rows: str = "prompt", cols: str = "seed",
                 facets: str | Sequence[str] | None = None) -> str:
    """The grid as one escaped HTML block (every text escaped, money MathJax-safe)."""
    g = study.grid(df, rows=rows, cols=cols, facets=facets)
    if df.empty:
        return _html.block("<p><i>No runs to show.</i></p>", classes="rf-gallery")
    parts = [_summary(df)]
    corner = f"{_html.text(rows)} ↓ &nbsp; {_html.text(cols)} →"
    head = "".join(f'<th style="{_TH}">{_axis_header(g, cols, c)}</th>' for c in g.col_keys)
    fit = _fit(len(g.col_keys))
    for facet in g.facet_keys:
        if g.facets:
            parts.append(f'<div class="rf-facet" style="font-size:13px;font-weight:bold;margin:10px 0 4px">'
                         f"{_facet_title(g, facet)}</div>")
        body = []
        for rk in g.row_keys:
            tds = "".join(f'<td class="rf-cell" style="{_TD}">{_cell_html(g.runs(facet, rk, ck), g, (facet, rk, ck))}</td>'
                          for ck in g.col_keys)
            body.append(f'<tr><th style="{_TH};overflow-wrap:anywhere">{_axis_header(g, rows, rk)}</th>{tds}</tr>')
        parts.append(f'<table style="border-collapse:collapse;table-layout:fixed;{fit}">'
                     f'<thead><tr><th style="{_TH};width:{HEAD_PX}px;box-sizing:border-box">{corner}</th>{head}</tr></thead>'
                     f'<tbody>{"".join(body)}</tbody></table>')
    return _html.block(STYLE + "".join(parts), classes="rf-gallery", style="overflow-x:auto")


class Gallery:
    """A gallery of an experiment's runs: plain HTML in reports, with rating controls in JupyterLab.

    ``str(g)`` / :meth:`to_html` is the static HTML; :meth:`widget` the interactive grid.
    """

    def __init__(self, df: pd.DataFrame, *, rows: str, cols: str, facets: str | Sequence[str] | None = None,
                 experiment: Experiment | None = None) -> None:
        self.frame = df
        self.rows, self.cols, self.facets = rows, cols, facets
        self.experiment = experiment
        self.markup = gallery_html(df, rows=rows, cols=cols, facets=facets)
        self.clips = sum(1 for r in study.records(df) if display.has_video(r))

    def _repr_html_(self) -> str:
        return self.markup

    def _ipython_display_(self) -> None:
        """Live in JupyterLab: the static grid as the saved view, then the rating grid (see
        :mod:`.saved`); elsewhere (papermill, nbval, reports) the static grid alone."""
        from IPython.display import display as show

        from ..views.frontend import interactive_frontend

        if self.experiment is not None and interactive_frontend():
            try:
                live = self.widget()
            except ImportError:  # no ipywidgets: the static grid
                pass
            else:
                from .saved import SavedView

                SavedView(live, self.markup, label="gallery").show()
                return
        show({"text/html": self.markup, "text/plain": repr(self)}, raw=True)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        from ..views.frontend import interactive_frontend

        if self.experiment is None or not interactive_frontend():
            return {"text/html": self.markup, "text/plain": repr(self)}
        try:
            bundle = self.widget()._repr_mimebundle_(**kwargs)
        except ImportError:  # no ipywidgets: the static grid
            return {"text/html": self.markup, "text/plain": repr(self)}
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            data.setdefault("text/html", self.markup)
        return bundle

    def widget(self) -> Any:
        """The grid as ipywidgets, every clip with a 1–5 rating and a ☆ favourite saved to the store."""
        import ipywidgets as w

        from .actions import action_row

        exp = self.experiment
        if exp is None:
            raise ConfigurationError("an interactive gallery needs the experiment: use exp.gallery()")
        g = study.grid(self.frame, rows=self.rows, cols=self.cols, facets=self.facets)
        def html_box(markup: str) -> Any:  # every HTML widget outside MathJax's reach (money, prompts)
            return w.HTML(_html.block(markup))

        children: list[Any] = [html_box(STYLE + _summary(self.frame))]
        template = f"{HEAD_PX}px repeat({len(g.col_keys)}, minmax({MIN_CELL_PX}px, {CELL_WIDTH_PX}px))"
        for facet in g.facet_keys:
            if g.facets:
                children.append(html_box(f'<div style="font-size:13px;font-weight:bold;margin-top:8px">'
                                         f"{_facet_title(g, facet)}</div>"))
            cells: list[Any] = [html_box(f'<div style="{_TH}">{_html.text(self.rows)} ↓ {_html.text(self.cols)} →</div>')]
            cells += [html_box(f'<div style="{_TH}">{_axis_header(g, self.cols, c)}</div>') for c in g.col_keys]
            for rk in g.row_keys:
                cells.append(html_box(f'<div style="{_TH}">{_axis_header(g, self.rows, rk)}</div>'))
                for ck in g.col_keys:
                    runs = g.runs(facet, rk, ck)
                    shown = g.shown(facet, rk, ck)
                    parts: list[Any] = [] if runs else [html_box(_cell_html(runs))]
                    for run in runs:  # each clip with its own rating, an edit under its parent's
                        parts.append(html_box(_run_html(g, run, shown)))
                        if run.get("status") == "succeeded":
                            parts.append(_rating_controls(exp, run))
                            parts.append(action_row(exp, run))  # re-run, upscale, edit, form, code
                    box = w.VBox(parts, layout=w.Layout(border="1px solid #e5e7eb", padding="4px"))
                    box.add_class("rf-cell")
                    cells.append(box)
            children.append(w.GridBox(cells, layout=w.Layout(grid_template_columns=template, grid_gap="2px",
                                                             overflow="auto")))
        root = w.VBox(children)
        root.add_class("rf-gallery")
        return root

    def to_html(self) -> str:
        return self.markup

    def __str__(self) -> str:
        return self.markup

    def __len__(self) -> int:
        return self.clips

    def __repr__(self) -> str:
        return f"<Gallery {self.clips} clip(s), rows={self.rows!r}, cols={self.cols!r}>"


def _rating_controls(exp: Experiment, run: dict[str, Any]) -> Any:
    import ipywidgets as w

    run_id = str(run["run_id"])
    rating: Any = run.get("rating")
    stars = w.ToggleButtons(options=[1, 2, 3, 4, 5], value=int(rating) if rating in range(1, 6) else None,
                            tooltips=[f"rate {n}" for n in range(1, 6)], style={"button_width": "20px"},
                            layout=w.Layout(width="auto"))
    stars.add_class("rf-rating")
    fav = w.ToggleButton(value=study.FAVOURITE in (run.get("tags") or ()), description="☆", tooltip="favourite",
                         layout=w.Layout(width="24px"))
    fav.add_class("rf-favourite")
    saved = w.HTML()

    def on_rating(change: dict[str, Any]) -> None:
        exp.rate(run_id, change["new"])
        saved.value = f'<span style="font-size:11px;color:#15803d">rated {html.escape(str(change["new"]))}</span>'

    def on_fav(change: dict[str, Any]) -> None:
        if change["new"]:
            exp.tag(run_id, study.FAVOURITE)
        else:
            exp.untag(run_id, study.FAVOURITE)
        fav.description = "★" if change["new"] else "☆"
        saved.value = '<span style="font-size:11px;color:#15803d">saved</span>'

    if fav.value:
        fav.description = "★"
    stars.observe(on_rating, names="value")
    fav.observe(on_fav, names="value")
    row = w.HBox([stars, fav, saved], layout=w.Layout(align_items="center", flex_flow="row nowrap",
                                                      overflow="hidden"))
    row.add_class("rf-rating-row")
    return row


def gallery(exp: Experiment, *, rows: str = "prompt", cols: str = "seed", facets: str | Sequence[str] | None = None,
            status: str | Iterable[str] | None = None, tags: Iterable[str] | None = None, **filters: Any) -> Gallery:
    """The experiment's runs (``status``, ``tags`` and column ``filters`` as in :meth:`Experiment.table`;
    by default every run, so empty cells say why)."""
    df = exp.table(status=status, tags=tags, where=filters or None)
    return Gallery(df, rows=rows, cols=cols, facets=facets, experiment=exp)


def best_html(df: pd.DataFrame, *, by: str | Sequence[str] = "prompt", flagged: bool = False) -> str:
    """One compact row per ``by`` value: its best clip (favourite, rating, A/B wins) and why
    (clips flagged by clip QA only with ``flagged=True``)."""
    best = study.best_per(df, by=by, flagged=flagged)
    keys = [by] if isinstance(by, str) else list(by)
    if best.empty:
        return _html.block("<p><i>No finished runs yet.</i></p>", classes="rf-best")
    head = "".join(f'<th style="{_TH}">{_html.text(k)}</th>' for k in keys)
    head += f'<th style="{_TH}">best clip</th><th style="{_TH}">why</th>'
    body = []
    for rec in study.records(best):
        why = []
        if rec.get("favourite"):
            why.append("★ favourite")
        if rec.get("rating") is not None:
            why.append(f"rated {rec['rating']}")
        if rec.get("wins") or rec.get("losses") or rec.get("ties"):
            why.append(f"A/B {rec['wins']}–{rec['losses']}" + (f" ({rec['ties']} tie)" if rec.get("ties") else ""))
        if not why:
            why.append("not judged yet: the first run")
        tds = "".join(f'<td style="{_TD};width:auto;max-width:320px">{_header(rec.get(k))}</td>' for k in keys)
        clip = display.row_html(rec, width=220, max_height=200, caption=False)
        fields = {k: v for k, v in display.row_fields(rec).items() if k != "rating"}
        cap = display.caption_html(fields, simulated=rec.get("backend") == "simulator")
        body.append(f'<tr>{tds}<td style="{_TD};width:230px">{clip}</td>'
                    f'<td style="{_TD};width:auto;font-size:12px">{_html.text(", ".join(why))}<br>{cap}</td></tr>')
    return _html.block(f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead>'
                       f'<tbody>{"".join(body)}</tbody></table>', classes="rf-best")


def table_html(df: pd.DataFrame, *, columns: Sequence[str] | None = None, max_rows: int | None = 200) -> str:
    """A DataFrame as escaped HTML (lists shown as text); prompts with markup render as text."""
    frame = df if columns is None else df[list(columns)]
    frame = frame.copy()
    for name in frame.columns:
        if frame[name].dtype == object:
            frame[name] = frame[name].map(lambda v: ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v)
    markup = str(frame.to_html(escape=True, index=False, na_rep="", max_rows=max_rows, border=0, classes="rf-table"))
    return _html.block(markup.replace("$", "&#36;"))
