"""The gallery: runs as rows × columns of any parameters, further parameters as aligned facets.

Every cell shows its clip with the poster still (a small JPEG ``data:`` URI, so JupyterLab, VS
Code, Colab and static HTML all show it) and the video by reference, or the reason there is none
(skipped over the budget, failed with the message, not run). Portrait clips keep a sensible height.
In a live JupyterLab kernel each clip also carries a 1–5 rating and a ☆ favourite written to the
store, and ⋯ for its follow-up buttons (:class:`LiveGallery`: the grid is one HTML widget, so a
study of hundreds of clips draws as fast as its HTML); a report (papermill, nbconvert) gets the
same grid as plain HTML.

>>> exp.gallery(rows="prompt", cols="seed")                          # doctest: +SKIP
>>> exp.gallery(rows="prompt", cols="seed", facets="duration")       # doctest: +SKIP
>>> exp.best()                                                       # doctest: +SKIP

The layout (which runs go where, the ranking behind "best") is :mod:`runflow_nb.study`; this
module only renders it.
"""

from __future__ import annotations

import json
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
    """``name: value`` for each facet: never an empty value ("none"), files by their names."""
    return " · ".join(f"{_html.text(name)}: {_value(value)}{_notes(g, name, value, inline=True)}"
                      for name, value in zip(g.facets, facet, strict=True))


def _value(value: Any) -> str:
    """A parameter's value as text, short (files by name, "none" when empty), in full on hover."""
    full = _label(tuple(value) if isinstance(value, list) else value) if value not in (None, [], ()) else "none"
    short = _note_value(value)
    short = short if len(short) <= 160 else short[:159] + "…"
    return f'<span title="{_html.attr(full)}">{_html.text(short)}</span>'


def _constants(g: study.Grid) -> str:
    """What every clip of the grid shares (e.g. the prompt a gallery is filtered to), said once."""
    if not g.constants:
        return ""
    items = " · ".join(f"<b>{_html.text(name)}</b> {_value(value)}" for name, value in g.constants.items())
    return f'<div class="rf-constants {_html.NO_MATH}" style="font-size:12px;margin:2px 0 6px">every clip: {items}</div>'


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
         # the rating row stays on one line in the narrowest tile
         ".rf-gallery .rf-rating-row{display:flex;flex-wrap:nowrap;align-items:center;gap:1px;margin:3px 0;"
         "overflow:hidden}"
         ".rf-gallery .rf-rating{display:flex;flex-wrap:nowrap;gap:1px;flex:0 0 auto}"
         ".rf-gallery .rf-rating-row button{box-sizing:border-box;min-width:0;width:17px;height:22px;padding:0;"
         "margin:0;font-size:12px;line-height:20px;"
         "border:1px solid #d1d5db;background:#f9fafb;border-radius:3px;cursor:pointer;flex:0 0 auto}"
         ".rf-gallery .rf-rating-row button.rf-on{background:#2563eb;color:#fff;border-color:#2563eb}"
         ".rf-gallery .rf-rating-row .rf-favourite{margin-left:2px}"
         # the player's own controls stay off the still until the clip is hovered or played
         ".rf-gallery video::-webkit-media-controls-panel{background-image:none}"
         ".rf-gallery video:not(:hover)::-webkit-media-controls-enclosure{opacity:0}"
         ".rf-gallery .rf-edit{border-left:3px solid #7c3aed;padding-left:6px;margin-top:4px}"
         "</style>")
"""The gallery's own CSS (every rule under ``.rf-gallery``)."""


def _lineage_line(r: dict[str, Any], parent: str) -> str:
    return (f'<div class="rf-lineage" style="font-size:11px;color:#7c3aed">↳ {display.lineage_label(r)} run '
            f"{_html.text(parent[:8])}</div>")


def _clip_html(g: study.Grid | None, r: dict[str, Any], shown: dict[str, Any]) -> str:
    """A run's clip and caption; the caption leaves out what the headers say (a parameter with the
    header's value); a run whose parent is shown names it."""
    hide = [k for k, v in shown.items() if study._hashable(r.get(k)) == study._hashable(v)]
    parent = g.parents.get(str(r.get("run_id"))) if g is not None else None
    return (_lineage_line(r, parent) if parent else "") + display.row_html(r, width="100%", hide=hide)


def _run_html(g: study.Grid | None, r: dict[str, Any], shown: dict[str, Any], *, controls: bool = False) -> str:
    """One run of a cell; an edit or a re-run sits in a purple-edged box naming its parent (its
    controls, with ``controls``, inside that box)."""
    clip = _clip_html(g, r, shown) + (_controls_html(r) if controls and r.get("status") == "succeeded" else "")
    parent = g.parents.get(str(r.get("run_id"))) if g is not None else None
    if parent:
        return (f'<div class="rf-cell-run rf-edit" data-parent="{_html.attr(parent)}" style="margin-bottom:6px">'
                f"{clip}</div>")
    return f'<div class="rf-cell-run" style="margin-bottom:6px">{clip}</div>'


def _cell_html(runs: list[dict[str, Any]], g: study.Grid | None = None,
               where: tuple[tuple[Any, ...], Any, Any] | None = None, *, controls: bool = False) -> str:
    if not runs:
        return display.reason_html(None)
    shown = g.shown(*where) if g is not None and where is not None else {}
    return "".join(_run_html(g, r, shown, controls=controls) for r in runs)


# A control's click, in the page: the command goes to the live gallery's one hidden text box (its
# change reaches the kernel like any typed text); the pressed control shows the choice at once.
_SEND_JS = ("(function(b,a,r){var g=b.closest('.rf-live'),i=g&&g.querySelector('.rf-bus input');"
            "if(!i){b.title='needs the live gallery: run the cell again';return;}"
            "var row=b.closest('.rf-rating-row'),v='';"
            "if(a==='rate'){v=b.textContent;row.querySelectorAll('.rf-rate').forEach(function(x){"
            "x.classList.toggle('rf-on',x===b);});}"
            "if(a==='fav'){v=b.textContent==='☆'?'1':'0';b.textContent=v==='1'?'★':'☆';}"
            "var n=(+i.dataset.n||0)+1;i.dataset.n=n;i.value=n+'|'+a+'|'+r+'|'+v;"
            "i.dispatchEvent(new Event('input',{bubbles:true}));})")


def _controls_html(run: dict[str, Any]) -> str:
    """A clip's 1–5 rating, ☆ favourite and ⋯ (its follow-up buttons) as plain buttons: no widget
    model each; a click is sent to the kernel by the live gallery (see :class:`LiveGallery`)."""
    run_id = str(run["run_id"])
    rating = run.get("rating")
    fav = study.FAVOURITE in (run.get("tags") or ())

    def click(action: str) -> str:
        return _html.attr(f"{_SEND_JS}(this,{json.dumps(action)},{json.dumps(run_id)})")

    stars = "".join(f'<button class="rf-rate{" rf-on" if rating == n else ""}" title="rate {n}" '
                    f'onclick="{click("rate")}">{n}</button>' for n in range(1, 6))
    return (f'<div class="rf-rating-row" data-run="{_html.attr(run_id)}"><span class="rf-rating">{stars}</span>'
            f'<button class="rf-favourite" title="favourite" onclick="{click("fav")}">{"★" if fav else "☆"}</button>'
            f'<button class="rf-more" title="re-run with another seed, upscale, edit, open in the form, copy as code" '
            f'onclick="{click("more")}">⋯</button></div>')


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
                 facets: str | Sequence[str] | None = None, controls: bool = False) -> str:
    """The grid as one escaped HTML block (every text escaped, money MathJax-safe); ``controls``
    adds each clip's rating, favourite and ⋯ buttons (what the live gallery sends to its kernel)."""
    g = study.grid(df, rows=rows, cols=cols, facets=facets)
    if df.empty:
        return _html.block("<p><i>No runs to show.</i></p>", classes="rf-gallery")
    parts = [_summary(df), _constants(g)]
    corner = f"{_html.text(rows)} ↓ &nbsp; {_html.text(cols)} →"
    for facet in g.facet_keys:
        if g.facets:
            parts.append(f'<div class="rf-facet" style="font-size:13px;font-weight:bold;margin:10px 0 4px">'
                         f"{_facet_title(g, facet)}</div>")
        col_keys = g.cols_in(facet)
        head = "".join(f'<th style="{_TH}">{_axis_header(g, cols, c)}</th>' for c in col_keys)
        fit = _fit(len(col_keys))
        body = []
        for rk in g.rows_in(facet):
            tds = "".join(f'<td class="rf-cell" style="{_TD}">{_cell_html(g.runs(facet, rk, ck), g, (facet, rk, ck), controls=controls)}</td>'
                          for ck in col_keys)
            body.append(f'<tr><th style="{_TH};overflow-wrap:anywhere">{_axis_header(g, rows, rk)}</th>{tds}</tr>')
        parts.append(f'<table style="border-collapse:collapse;table-layout:fixed;{fit}">'
                     f'<thead><tr><th style="{_TH};width:{HEAD_PX}px;box-sizing:border-box">{corner}</th>{head}</tr></thead>'
                     f'<tbody>{"".join(body)}</tbody></table>')
    return _html.block(STYLE + "".join(parts), classes="rf-gallery rf-grid", style="overflow-x:auto")


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
        """The grid as a live widget: every clip with a 1–5 rating and a ☆ favourite saved to the
        store, and ⋯ for its follow-up buttons (see :class:`LiveGallery`)."""
        return self.live().widget

    def live(self) -> LiveGallery:
        """The :class:`LiveGallery` of this grid (a new one on every call)."""
        if self.experiment is None:
            raise ConfigurationError("an interactive gallery needs the experiment: use exp.gallery()")
        return LiveGallery(self.experiment, self.frame, rows=self.rows, cols=self.cols, facets=self.facets)

    def to_html(self) -> str:
        return self.markup

    def __str__(self) -> str:
        return self.markup

    def __len__(self) -> int:
        return self.clips

    def __repr__(self) -> str:
        return f"<Gallery {self.clips} clip(s), rows={self.rows!r}, cols={self.cols!r}>"


class LiveGallery:
    """The gallery in a live kernel: the whole grid is ONE HTML widget, each clip's rating, ☆ and ⋯ plain
    buttons in it; a click writes a command into one hidden text box whose change reaches the kernel,
    which saves it to the store and says so in the status line. ⋯ opens the clip's follow-up buttons
    (:class:`~runflow_nb.widgets.actions.ActionRow`) in the panel above the grid.

    A handful of widget models whatever the size: a widget per tile (and its layout and style) made a
    150-clip gallery thousands of models, which the page took minutes to draw or lost on the way
    ("widget model not found").

    >>> live = exp.gallery().live()          # doctest: +SKIP
    >>> live.command("rate", run_id, "4")    # what a click on a clip's "4" sends   # doctest: +SKIP
    """

    def __init__(self, exp: Experiment, df: pd.DataFrame, *, rows: str, cols: str,
                 facets: str | Sequence[str] | None = None) -> None:
        import ipywidgets as w

        self.exp = exp
        self.run_ids = {str(r) for r in df["run_id"]} if "run_id" in df.columns else set()
        self.grid = w.HTML(gallery_html(df, rows=rows, cols=cols, facets=facets, controls=True))
        self.bus = w.Text(layout=w.Layout(display="none"), _dom_classes=("rf-bus",))
        self.status = w.HTML(_dom_classes=("rf-gallery-status",))
        self.panel = w.VBox(_dom_classes=("rf-panel",))
        self.actions: dict[str, Any] = {}
        self.bus.observe(self._on_bus, names="value")
        self.widget = w.VBox([self.bus, self.status, self.panel, self.grid], _dom_classes=("rf-gallery",))

    def _on_bus(self, change: dict[str, Any]) -> None:
        parts = str(change["new"]).split("|")
        if len(parts) == 4:
            self.command(parts[1], parts[2], parts[3])

    def _say(self, markup: str, *, colour: str = "#15803d") -> None:
        self.status.value = f'<span class="{_html.NO_MATH}" style="font-size:12px;color:{colour}">{markup}</span>'

    def command(self, action: str, run_id: str, value: str = "") -> None:
        """Carry out a control's click: ``rate`` (value 1–5), ``fav`` (value "1" or "0") or ``more``."""
        from ..errors import RunflowError

        if run_id not in self.run_ids:  # only this grid's clips
            return
        short = _html.text(run_id[:8])
        try:
            if action == "rate":
                self.exp.rate(run_id, int(value))
                self._say(f"run {short} rated {_html.text(value)}: saved")
            elif action == "fav":
                if value == "1":
                    self.exp.tag(run_id, study.FAVOURITE)
                else:
                    self.exp.untag(run_id, study.FAVOURITE)
                self._say(f"run {short} {'★ favourite' if value == '1' else 'no longer a favourite'}: saved")
            elif action == "more":
                self.open(run_id)
        except (RunflowError, ValueError) as exc:
            self._say(f"run {short}: {_html.text(exc)}", colour="#b91c1c")

    def open(self, run_id: str) -> Any:
        """Show ``run_id``'s follow-up buttons in the panel (built on first use, one run at a time)."""
        import ipywidgets as w

        from .actions import ActionRow

        row = self.actions.get(run_id)
        if row is None:
            row = self.actions[run_id] = ActionRow(self.exp, run_id)
        head = w.HTML(f'<div style="font-size:12px;font-weight:bold">⋯ run {_html.text(run_id[:8])}</div>')
        self.panel.children = (head, row.widget)
        return row


def gallery(exp: Experiment, *, rows: str = "prompt", cols: str = "seed", facets: str | Sequence[str] | None = None,
            status: str | Iterable[str] | None = None, tags: Iterable[str] | None = None, **filters: Any) -> Gallery:
    """The experiment's runs (``status``, ``tags`` and column ``filters`` as in :meth:`Experiment.table`;
    by default every run, so empty cells say why)."""
    df = exp.table(status=status, tags=tags, where=filters or None)
    if filters and "parent_run_id" in df.columns:
        df = _with_edits(df, exp.table(status=status, tags=tags))
    return Gallery(df, rows=rows, cols=cols, facets=facets, experiment=exp)


def _with_edits(shown: pd.DataFrame, every: pd.DataFrame) -> pd.DataFrame:
    """``shown`` and the edits (video-edit runs, edits of edits too) of its runs from ``every``: an
    edit's own prompt does not take it away from under the clip it came from."""
    import pandas as pd

    ids = set(shown["run_id"])
    edits = every[every["model"].astype("string").str.endswith("video-edit").fillna(False)
                  & ~every["run_id"].isin(list(ids))]
    added: list[int] = []
    grew = True
    while grew:  # an edit of an edit joins once its parent has
        grew = False
        for i, (run_id, parent) in enumerate(zip(edits["run_id"], edits["parent_run_id"], strict=True)):
            if i not in added and parent in ids:
                ids.add(run_id)
                added.append(i)
                grew = True
    if not added:
        return shown
    return pd.concat([shown, edits.iloc[sorted(added)]], ignore_index=True)


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
