"""Two runs side by side, playing in step, with a choice and a rating written to the store.

>>> exp.compare(run_a, run_b)          # doctest: +SKIP

The videos are one HTML output (by reference, never base64) inside an ``Output`` widget. Play,
pause and seek are mirrored by ``onplay``/``onpause``/``onseeked`` attributes: outputs a live
kernel produces are trusted, so JupyterLab keeps them; in a notebook reopened untrusted the
sanitizer drops them and the two videos simply play independently.

The started clip plays with sound and its mirror muted, so only one clip is heard at a time.

The choice is stored as tags, so the table can be filtered by it: "A better" tags A with
``preferred_over:<B's run_id>``, "tie" tags both with ``tie_with:<other>``. Ratings (1–5) go to
the ``rating`` column through :meth:`Experiment.rate`. Both feed :meth:`Experiment.ranking` (and
so :meth:`Experiment.best`); ``exp.compare()`` without runs picks the next pair not judged yet.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import Issue, UsageError, ValidationError
from ..study import PREFERRED, TIE
from ..views import display
from ..views import html as _html

if TYPE_CHECKING:
    from ..experiment import Experiment

__all__ = ["CHOICES", "CompareWidget", "compare", "current_choice", "record_choice", "synced_videos_html"]

CHOICES = ("A better", "B better", "tie")


def _run_id(run: str | Mapping[str, Any]) -> str:
    """A run id, or a table row's (a mapping with ``run_id``; a pandas row works too)."""
    value = run.get("run_id") if isinstance(run, Mapping) or hasattr(run, "get") else run
    if not isinstance(value, str) or not value:
        raise UsageError(f"cannot compare {run!r}: pass a run id or a row of exp.table()")
    return value


def record_choice(exp: Experiment, run_a: str, run_b: str, choice: str | None) -> None:
    """Store ``choice`` (one of :data:`CHOICES`, or None to clear) as tags on the two runs."""
    if choice is not None and choice not in CHOICES:
        raise ValidationError([Issue("choice", f"{choice!r} is not a choice",
                                     f"use one of {', '.join(map(repr, CHOICES))}, or None to clear it")])
    exp.untag(run_a, PREFERRED + run_b, TIE + run_b)
    exp.untag(run_b, PREFERRED + run_a, TIE + run_a)
    if choice == "A better":
        exp.tag(run_a, PREFERRED + run_b)
    elif choice == "B better":
        exp.tag(run_b, PREFERRED + run_a)
    elif choice == "tie":
        exp.tag(run_a, TIE + run_b)
        exp.tag(run_b, TIE + run_a)


def current_choice(row_a: Mapping[str, Any], row_b: Mapping[str, Any]) -> str | None:
    """The choice stored on two runs' tags, if any."""
    a, b = row_a["run_id"], row_b["run_id"]
    tags_a, tags_b = list(row_a.get("tags") or []), list(row_b.get("tags") or [])
    if PREFERRED + b in tags_a:
        return "A better"
    if PREFERRED + a in tags_b:
        return "B better"
    if TIE + b in tags_a or TIE + a in tags_b:
        return "tie"
    return None


def _sync_attrs(other_id: str) -> str:
    get = f"var o=document.getElementById('{other_id}');"
    handlers = {
        # A clip started by its mirror stays muted; the one the user started is heard (alone).
        "onplay": get + "if(this.dataset.rfMirror){delete this.dataset.rfMirror;}else{this.muted=false;"
                        "if(o&&o.paused){o.dataset.rfMirror='1';o.muted=true;o.currentTime=this.currentTime;"
                        "o.play().catch(function(){});}}" + display.ONE_SOUND_JS,
        "onpause": get + "if(o&&!o.paused){o.pause();}",
        "onseeked": get + "if(o&&Math.abs(o.currentTime-this.currentTime)>0.25){o.currentTime=this.currentTime;}",
    }
    return " ".join(f'{k}="{html.escape(v, quote=True)}"' for k, v in handlers.items())


def synced_videos_html(row_a: Mapping[str, Any], row_b: Mapping[str, Any], *, token: str | None = None) -> str:
    """Both runs' videos in one flex row; each mirrors the other's play, pause and seek."""
    token = token or uuid.uuid4().hex[:12]
    ids = (f"rf-cmp-{token}-a", f"rf-cmp-{token}-b")
    cells = []
    for label, row, own, other in (("A", row_a, ids[0], ids[1]), ("B", row_b, ids[1], ids[0])):
        markup = display.row_html(row, width="100%", max_height=480, hover=False)
        if "<video " in markup:
            markup = markup.replace("<video ", f'<video id="{own}" {_sync_attrs(other)} ', 1)
        cells.append(f'<div style="flex:1 1 0;min-width:0"><div style="font-weight:bold" class="{_html.NO_MATH}">'
                     f'{label} · seed {_html.text(row.get("seed"))} · <span style="font-weight:normal;color:#6b7280" '
                     f'title="run_id {_html.attr(row["run_id"])}">run {_html.text(str(row["run_id"])[:8])}</span>'
                     f'</div>{markup}</div>')
    return f'<div class="rf-compare-pair" style="display:flex;gap:12px;align-items:flex-start">{"".join(cells)}</div>'


class CompareWidget:
    """The compare view: synced videos, a choice (A better / B better / tie) and two 1–5 ratings."""

    def __init__(self, exp: Experiment, run_a: str, run_b: str) -> None:
        import ipywidgets as w

        self.exp = exp
        self.run_a, self.run_b = run_a, run_b
        rows = []
        for run_id in (run_a, run_b):
            row = exp.store.get_run(run_id)
            if row is None:
                raise ValidationError([Issue("run", f"no run {run_id!r} in {exp.store!r}",
                                             "pass run ids from exp.table()['run_id']")])
            rows.append(row)
        row_a, row_b = rows
        self.videos = w.Output()
        self.videos.add_class("rf-compare-videos")
        markup = synced_videos_html(row_a, row_b)
        self._static_html = markup
        self._saved_html = synced_videos_html(row_a, row_b)  # its own element ids: both can be in one page
        self.videos.outputs = ({"output_type": "display_data", "metadata": {},
                                "data": {"text/html": markup, "text/plain": f"compare {run_a} vs {run_b}"}},)
        self.choice = w.ToggleButtons(options=list(CHOICES), value=current_choice(row_a, row_b),
                                      tooltip="which clip is better? (stored as tags)")
        self.choice.add_class("rf-compare-choice")
        self.choice.observe(self._on_choice, names="value")
        self.ratings = {}
        boxes = []
        for label, row in (("A", row_a), ("B", row_b)):
            rating = row.get("rating")
            toggle = w.ToggleButtons(options=[1, 2, 3, 4, 5], value=rating if rating in range(1, 6) else None,
                                     tooltip=f"rate {label} from 1 (poor) to 5 (great)",
                                     style={"button_width": "32px"})
            toggle.add_class(f"rf-compare-rating-{label.lower()}")
            toggle.observe(lambda ch, run_id=row["run_id"]: self._on_rating(run_id, ch["new"]), names="value")
            self.ratings[label] = toggle
            boxes.append(w.HBox([w.HTML(f"<b>rate {label}</b>", layout=w.Layout(width="60px")), toggle],
                                layout=w.Layout(margin="0 24px 0 0")))
        self.saved = w.HTML()
        from .actions import action_row

        actions = w.HBox([action_row(exp, row) for row in (row_a, row_b)])  # re-run, upscale, edit, form, code
        self.widget = w.VBox([self.videos, self.choice, w.HBox(boxes), actions, self.saved])
        self.widget.add_class("rf-compare")

    def _ipython_display_(self) -> None:
        """The pair's saved view (both clips, static), then the live widget (see :mod:`.saved`)."""
        from .saved import SavedView

        SavedView(self.widget, self._saved_html, label="compare view").show()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            # A static renderer (nbconvert report, GitHub) has no widget manager: it shows the videos.
            data.setdefault("text/html", self._static_html)
        return bundle

    def __repr__(self) -> str:
        return f"<CompareWidget {self.run_a} vs {self.run_b}>"

    def _on_choice(self, change: Mapping[str, Any]) -> None:
        record_choice(self.exp, self.run_a, self.run_b, change["new"])
        self.saved.value = f'<span style="font-size:12px;color:#15803d">saved: {html.escape(str(change["new"]))}</span>'

    def _on_rating(self, run_id: str, value: int | None) -> None:
        self.exp.rate(run_id, value)
        self.saved.value = (f'<span style="font-size:12px;color:#15803d">saved: {html.escape(run_id)} rated '
                            f"{html.escape(str(value))}</span>")


def compare(exp: Experiment, run_a: str | Mapping[str, Any], run_b: str | Mapping[str, Any]) -> CompareWidget:
    """Two runs of ``exp`` side by side (run ids or table rows)."""
    a, b = (exp._own_run(_run_id(r)) for r in (run_a, run_b))
    if a == b:
        raise UsageError(f"cannot compare run {a!r} with itself: pass two different runs")
    return CompareWidget(exp, a, b)
