"""The form's "N seeds" row: the form's request at N seeds (from a start seed, or random), sent as
one small sweep capped at the budget shown beside the estimate; the clips land in a strip under
the form, and Stop (live only while that sweep runs) ends its submitting. Thin over :class:`runflow_nb.studio.seeds.SeedsPlan` and :meth:`Experiment.run`.

>>> form = rf.GenerateForm(experiment=exp)       # the row sits under Generate   # doctest: +SKIP
>>> form.seeds.n.value = 4; form.seeds.run()                                    # doctest: +SKIP

Without an experiment the runs go to experiment ``"form"`` of the default store, with the form's
client, so they can be re-attached and never paid twice.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ..errors import RunflowError
from ..studio.seeds import MAX_SEEDS, SeedsPlan, form_experiment
from ..views import display
from ..views import html as _html

if TYPE_CHECKING:
    from ..experiment import Experiment
    from ..sweep.background import SweepHandle
    from .form import GenerateForm

__all__ = ["SeedsPanel", "strip_html"]


_CAPTION = "font-size:12px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis"
"""A seed's caption keeps to one line (a long seed or status ends in an ellipsis; the full text on hover)."""


def strip_html(rows: list[Any], seeds: list[int]) -> str:
    """The seeds' clips in one row (a still each, plays on click), or why a seed has none yet."""
    cells = []
    for seed, row in zip(seeds, rows, strict=True):
        body = (display.row_html(row, width="100%", max_height=200, caption=False) if row is not None
                else display.reason_html(None, missing="not stored yet"))
        cost = display.money(row.get("cost_usd")) if row is not None and row.get("cost_usd") is not None else None
        label = f"seed {seed}" + (f" · {row.get('status')}" if row is not None else "") + (f" · {cost}" if cost else "")
        caption = (f'<div class="{_html.NO_MATH} rf-seed-caption" style="{_CAPTION}" title="{_html.attr(label)}">'
                   f"{_html.text(label)}</div>")
        cells.append(f'<div class="rf-seed-cell" style="flex:0 0 220px;min-width:0">{caption}{body}</div>')
    return f'<div class="rf-seed-strip" style="display:flex;gap:8px;overflow-x:auto">{"".join(cells)}</div>'


class SeedsPanel:
    """N seeds of a :class:`~runflow_nb.widgets.form.GenerateForm`'s request as one sweep."""

    def __init__(self, form: GenerateForm) -> None:
        import ipywidgets as w

        self.form = form
        self.handle: SweepHandle | None = None
        self.last: SeedsPlan | None = None
        self.error: BaseException | None = None
        self._own: Experiment | None = None  # experiment "form" of the default store, for a form without one
        self._drawn = threading.Event()
        small = {"description_width": "initial"}
        self.n = w.BoundedIntText(value=4, min=1, max=MAX_SEEDS, description="seeds", style=small,
                                  layout=w.Layout(width="110px"))
        self.n.add_class("rf-seeds-n")
        self.start = w.Text(placeholder="random", description="from seed", style=small, layout=w.Layout(width="190px"),
                            tooltip="the first seed (then +1 each); empty for random seeds")
        self.start.add_class("rf-seeds-start")
        self.budget = w.FloatText(value=0.0, description="budget $", style=small, layout=w.Layout(width="160px"),
                                  tooltip="the sweep never commits more than this")
        self.budget.add_class("rf-seeds-budget")
        self.estimate = w.HTML()
        self.estimate.add_class("rf-seeds-estimate")
        self.button = w.Button(description="Run seeds", icon="th", tooltip="send the form's request at each seed, "
                               "as one sweep capped at the budget")
        self.button.add_class("rf-seeds-run")
        self.button.on_click(lambda _b: self.run())
        # Stop: live (orange) only while this row's sweep runs; disabled and plain again once it ends.
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True,
                                    tooltip="stop submitting: seeds not sent yet are never sent; runs already "
                                    "sent stay recorded")
        self.stop_button.add_class("rf-seeds-stop")
        self.stop_button.on_click(lambda _b: self.stop())
        self.status = w.HTML()
        self.status.add_class("rf-seeds-status")
        self.strip = w.HTML()
        self.strip.add_class("rf-seeds-strip")
        self._budget_touched = False
        self._setting_budget = False
        self.budget.observe(self._on_budget, names="value")
        for ctl in (self.n, self.start):
            ctl.observe(lambda _c: self.refresh_estimate(), names="value")
        form.cost.observe(lambda _c: self.refresh_estimate(), names="value")  # the form's inputs changed
        self.widget = w.VBox([w.HBox([self.n, self.start, self.budget, self.button, self.stop_button],
                                     layout=w.Layout(align_items="center")), self.estimate, self.status, self.strip])
        self.widget.add_class("rf-seeds")
        self.refresh_estimate()

    def _on_budget(self, change: Any) -> None:
        if not self._setting_budget:
            self._budget_touched = True

    def _start_seed(self) -> Any:
        text = self.start.value.strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            return text  # refused by seeds_for, naming the fix

    def plan(self) -> SeedsPlan:
        """The seeds plan for the form's request as it is now (ValidationError when not ready)."""
        from ..errors import Issue, ValidationError

        self.form.validate()
        req = self.form.request
        if req is None:
            raise ValidationError(self.form.issues or [Issue("form", "is not complete", "fill in the form above")])
        return SeedsPlan.build(req, n=int(self.n.value), start=self._start_seed())

    def per_run_usd(self) -> float | None:
        """One run's published price for the form as it is (None when the form cannot price it yet)."""
        if self.form.request is not None:
            return self.form.request.estimate_usd()
        values = self.form.values()
        try:
            return float(self.form.spec.price_usd(duration=int(values["duration"]),
                                                  resolution=str(values["resolution"])))
        except (KeyError, TypeError, ValueError):
            return None

    def refresh_estimate(self) -> None:
        """Redraw the estimate (N × the form's price); the budget follows it until the user sets one."""
        n, each = int(self.n.value or 1), self.per_run_usd()
        if each is None:
            self.estimate.value = ""
            return
        total = round(n * each, 2)
        if not self._budget_touched:
            self._setting_budget = True
            self.budget.value = total
            self._setting_budget = False
        start = self._start_seed()
        which = "random seeds" if start is None else f"seeds {start}…{start + n - 1}" if isinstance(start, int) \
            else "a start seed that is not a number"
        self.estimate.value = _html.block(f"{n} × {_html.money(each)} = estimated <b>{_html.money(total)}</b> "
                                          f"({_html.text(which)})", style="font-size:12px")

    def _experiment(self) -> Experiment:
        if self.form.experiment is not None:
            return self.form.experiment
        if self._own is None:  # opened once, on the first press
            self._own = form_experiment(self.form.client)
        return self._own

    def run(self) -> SweepHandle | None:
        """Send the seeds as one background sweep; None (with the reason shown) when not ready."""
        if self.running:  # the last sweep has not ended, or its strip is still being drawn
            return None
        self.error = None
        try:
            seeds = self.plan()
            budget = seeds.check_budget(self.budget.value)
            exp = self._experiment()
            handle = exp.run(seeds.plan, concurrency=min(4, len(seeds.seeds)), budget_usd=budget,
                             progress=self._progress, background=True)
        except RunflowError as exc:
            self.error = exc
            self.status.value = _html.block(_html.text(str(exc)), style="font-size:12px;color:#b91c1c")
            return None
        self.last, self.handle = seeds, handle
        self._drawn.clear()
        self.button.disabled = True
        self.stop_button.disabled, self.stop_button.button_style = False, "warning"
        fit = seeds.fits(budget)
        cut = (f": {fit} of {len(seeds.seeds)} seeds fit, {len(seeds.seeds) - fit} will be skipped for the budget"
               if fit < len(seeds.seeds) else "")
        self.status.value = _html.block(_html.text(f"sending seeds {seeds.seeds} (budget ${budget:.2f}{cut})"),
                                        style="font-size:12px")
        self._draw(exp)
        threading.Thread(target=self._watch, args=(exp, handle), name="runflow_nb-seeds", daemon=True).start()
        return handle

    def stop(self) -> None:
        """Stop the row's sweep (what Stop does): nothing more is submitted; runs already sent stay
        recorded, and the strip is drawn when the sweep has ended."""
        handle = self.handle
        if handle is None or handle.done:
            return
        self.stop_button.disabled, self.stop_button.description = True, "Stopping"
        handle.cancel()

    @property
    def running(self) -> bool:
        """True while the row's last sweep has not ended (and its strip is not drawn)."""
        return self.handle is not None and not self._drawn.is_set()

    def _progress(self, progress: Any) -> None:
        self.status.value = _html.block(_html.text(progress.line()), style="font-size:12px")

    def _draw(self, exp: Experiment) -> None:
        assert self.last is not None
        self.strip.value = strip_html(self.last.rows(exp.store, exp.name), self.last.seeds)

    def _watch(self, exp: Experiment, handle: SweepHandle) -> None:
        try:
            handle.wait()
            summary = handle.summary
            cut = summary is not None and (summary.stopped or summary.counts.get("skipped_budget"))
            skipped = summary.skipped_budget if summary is not None else 0
            said = str(summary) + (f"; {skipped} seed{'s' if skipped != 1 else ''} skipped for the budget "
                                   "(raise it and press Run seeds again to send them)" if skipped else "")
            self.status.value = _html.block(_html.text(said),
                                            style=f"font-size:12px;color:{'#b45309' if cut else '#15803d'}")
        except Exception as exc:  # shown under the form; the kernel stays usable
            self.error = exc
            self.status.value = _html.block(_html.text(f"failed: {exc}"), style="font-size:12px;color:#b91c1c")
        finally:
            try:
                self._draw(exp)
            finally:  # however the sweep ended: Run seeds again, Stop back to disabled and plain
                self.stop_button.disabled, self.stop_button.button_style = True, ""
                self.stop_button.description = "Stop"
                self.button.disabled = False
                self._drawn.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the strip is drawn after the last :meth:`run` (True), or ``timeout`` passes."""
        return self._drawn.wait(timeout)
