"""Synced compare of 2–6 clips: the view of :mod:`runflow_nb.studio.synced` plus a 1–5 rating per
clip and, for two clips, the A/B choice, written to the store through :meth:`Experiment.rate` and
:func:`runflow_nb.widgets.compare.record_choice` (so they feed :meth:`Experiment.ranking`).

>>> exp.compare_many([r1, r2, r3, r4])       # run ids or rows of exp.table()   # doctest: +SKIP
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import Issue, UsageError, ValidationError
from ..studio.synced import MAX_CLIPS, MIN_CLIPS, synced_html
from .compare import CHOICES, _run_id, current_choice, record_choice

if TYPE_CHECKING:
    from ..experiment import Experiment

__all__ = ["SyncedCompare", "synced_compare"]


class SyncedCompare:
    """The synced view of ``run_ids`` (2–6 runs of ``exp``) with ratings (and the A/B choice for two)."""

    def __init__(self, exp: Experiment, run_ids: list[str]) -> None:
        import ipywidgets as w

        self.exp, self.run_ids = exp, run_ids
        self.token = uuid.uuid4().hex[:12]
        rows = [exp.store.get_run(r) or {} for r in run_ids]
        self.rows = rows
        markup = synced_html(rows, token=self.token)
        self.html = markup
        self.videos = w.Output()
        self.videos.add_class("rf-sync-videos")
        self.videos.outputs = ({"output_type": "display_data", "metadata": {},
                                "data": {"text/html": markup, "text/plain": f"synced compare of {len(rows)} runs"}},)
        self.ratings: list[Any] = []
        boxes = []
        for i, row in enumerate(rows):
            rating = row.get("rating")
            toggle = w.ToggleButtons(options=[1, 2, 3, 4, 5], value=rating if rating in range(1, 6) else None,
                                     tooltip=f"rate {'ABCDEF'[i]} from 1 (poor) to 5 (great)",
                                     style={"button_width": "30px"})
            toggle.add_class(f"rf-sync-rating-{self.token}-{i}")
            toggle.add_class("rf-sync-rating")
            toggle.observe(lambda ch, run_id=row["run_id"]: self._on_rating(run_id, ch["new"]), names="value")
            self.ratings.append(toggle)
            boxes.append(w.HBox([w.HTML(f"<b>{'ABCDEF'[i]}</b>", layout=w.Layout(width="24px")), toggle],
                                layout=w.Layout(margin="0 16px 0 0")))
        self.choice: Any = None
        parts: list[Any] = [self.videos, w.HBox(boxes, layout=w.Layout(flex_flow="row wrap"))]
        if len(rows) == 2:
            self.choice = w.ToggleButtons(options=list(CHOICES), value=current_choice(rows[0], rows[1]),
                                          tooltip="which clip is better? (stored as tags)")
            self.choice.add_class("rf-sync-choice")
            self.choice.observe(self._on_choice, names="value")
            parts.append(self.choice)
        self.saved = w.HTML()
        self.saved.add_class("rf-sync-saved")
        parts.append(self.saved)
        self.widget = w.VBox(parts)
        self.widget.add_class("rf-synced-compare")

    def _on_rating(self, run_id: str, value: int | None) -> None:
        self.exp.rate(run_id, value)
        self.saved.value = (f'<span style="font-size:12px;color:#15803d">saved: {html.escape(run_id[:8])} rated '
                            f"{html.escape(str(value))}</span>")

    def _on_choice(self, change: Mapping[str, Any]) -> None:
        record_choice(self.exp, self.run_ids[0], self.run_ids[1], change["new"])
        self.saved.value = f'<span style="font-size:12px;color:#15803d">saved: {html.escape(str(change["new"]))}</span>'

    def _ipython_display_(self) -> None:
        """A saved view (the clips, each with its own controls once the script is gone), then the live
        widget: a notebook reopened without its kernel shows the clips, never "model not found"."""
        from .saved import SavedView

        saved = synced_html(self.rows, token=uuid.uuid4().hex[:12])  # its own element ids
        SavedView(self.widget, saved, label="synced compare").show()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):  # a static renderer shows the clips (each with its own controls)
            data.setdefault("text/html", self.html)
        return bundle

    def __repr__(self) -> str:
        return f"<SyncedCompare {', '.join(r[:8] for r in self.run_ids)}>"


def synced_compare(exp: Experiment, runs: Iterable[str | Mapping[str, Any]]) -> SyncedCompare:
    """2–6 runs of ``exp`` (run ids or table rows) in one synced view."""
    if isinstance(runs, (str, Mapping)) or not isinstance(runs, Iterable):
        raise UsageError(f"runs is {runs!r}: pass a list of {MIN_CLIPS}–{MAX_CLIPS} run ids or table rows")
    ids = [exp._own_run(_run_id(r)) for r in runs]
    if len(set(ids)) != len(ids):
        raise UsageError("the same run is listed twice: pass different runs")
    if not MIN_CLIPS <= len(ids) <= MAX_CLIPS:
        raise ValidationError([Issue("runs", f"are {len(ids)}", f"pass {MIN_CLIPS} to {MAX_CLIPS} runs")])
    return SyncedCompare(exp, ids)
