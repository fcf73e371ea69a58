"""The queue and history panel: one live widget per kernel over :mod:`runflow_nb.studio.queue`.

>>> rf.queue()          # every experiment of the default store       # doctest: +SKIP
>>> exp.queue()         # one experiment                              # doctest: +SKIP

Rows come from the store on every refresh (a daemon thread, every ``interval`` seconds), so runs
of other cells, background sweeps, other processes and earlier kernels show, and the kernel stays
free. The thread stops on :meth:`QueuePanel.stop`, when the widget is closed, and at interpreter
exit (kernel shutdown). Per run: **Stop its sweep** where a background sweep of this kernel sends
or drives it (Runflow has no public cancel: a run already sent still finishes there and is billed
if it succeeds), **Detail** (``exp.detail`` where the experiment has it, else the stored clip) and
**Re-run** (where the experiment offers ``exp.rerun``).
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..studio.queue import NO_CANCEL, QueueRow, queue_rows, stop_sweep_of
from ..views import display
from ..views import html as _html

if TYPE_CHECKING:
    from ..experiment import Experiment
    from ..store.runstore import Store

__all__ = ["QueuePanel", "queue", "row_html"]

_COLORS = {"succeeded": "#15803d", "failed": "#b91c1c", "error": "#b91c1c", "download_failed": "#b91c1c",
           "unknown": "#b45309", "skipped_budget": "#b45309", "running": "#1d4ed8", "queued": "#6b7280"}


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = round(seconds)
    return f"{s // 60}:{s % 60:02d}" if s < 3600 else f"{s // 3600}h{s % 3600 // 60:02d}"


_CELL = "overflow:hidden;text-overflow:ellipsis;white-space:nowrap"


def row_html(q: QueueRow) -> str:
    """One run's line: status, id, seed, experiment, where it waits, times, cost, then the prompt (all
    text escaped). The status, id and seed never shrink, so they always show; the other columns give
    way first, and the prompt takes what width is left (at least ~140 px), cut with an ellipsis, its
    full text (and any error) on hover."""
    color = _COLORS.get(q.status, "#374151")
    where = f"waiting #{q.position}" if q.position else q.driver
    times = f"{_clock(q.elapsed_s)} of ~{_clock(q.expected_s)}" if not q.ended and q.expected_s else _clock(q.elapsed_s)
    cost = _html.money(q.cost_usd) + (f" {q.cost_kind}" if q.cost_kind else "") if q.cost_usd > 0 else "—"
    seed = "—" if q.seed is None else str(q.seed)
    err = f' <span style="color:#b91c1c">{_html.text(q.error[:80])}</span>' if q.error and q.ended else ""
    hover = q.prompt + (f"\n{q.error}" if q.error and q.ended else "")

    def cell(flex: str, body: str, *, style: str = "", cls: str = "", title: str = "") -> str:
        c = f' class="{cls}"' if cls else ""
        t = f' title="{_html.attr(title)}"' if title else ""
        return f'<span{c} style="{_CELL};flex:{flex};{style}"{t}>{body}</span>'

    return _html.block(
        cell("0 0 84px", _html.text(q.status), style=f"color:{color};font-weight:bold")
        + cell("0 0 auto", _html.text(q.run_id[:8]), style="color:#6b7280;min-width:64px", cls="rf-queue-id",
               title=f"run_id {q.run_id}")
        + cell("0 0 auto", f"seed {_html.text(seed)}", style="min-width:96px", cls="rf-queue-seed",
               title=f"seed {seed}")
        + cell("0 1 88px", _html.text(q.experiment), style="min-width:32px", title=q.experiment)
        + cell("0 1 130px", _html.text(where), style="min-width:0", title=where)
        + cell("0 1 76px", _html.text(times), style="min-width:36px")
        + cell("0 1 116px", cost, style="min-width:48px")
        + cell("1 1 0%", f"{_html.text(q.prompt)}{err}", style="min-width:140px;color:#374151", cls="rf-queue-prompt",
               title=hover),
        # contain: the line's own width never pushes the panel wider (the columns give way instead)
        style="font-size:12px;display:flex;align-items:baseline;gap:6px;white-space:nowrap;overflow:hidden;"
              "contain:inline-size")


class _RowView:
    """The widgets of one run's line (kept across refreshes, so a click always lands)."""

    def __init__(self, panel: QueuePanel, run_id: str) -> None:
        import ipywidgets as w

        self.run_id = run_id
        self.info = w.HTML(layout=w.Layout(flex="1 1 0%", min_width="0", overflow="hidden"))
        def small() -> Any:  # one Layout each: showing or hiding one button must not touch the others
            return w.Layout(width="auto", height="24px", flex="0 0 auto")

        self.stop_button = w.Button(description="Stop its sweep", button_style="warning", layout=small(),
                                    tooltip="stop the background sweep of this kernel that sends this run: not sent "
                                            "yet, it is never sent; already sent, " + NO_CANCEL)
        self.stop_button.add_class("rf-queue-stop")
        self.stop_button.on_click(lambda _b: panel.stop_run(run_id))
        self.detail_button = w.Button(description="Detail", layout=small(), tooltip="open this run's detail view")
        self.detail_button.add_class("rf-queue-detail")
        self.detail_button.on_click(lambda _b: panel.show_detail(run_id))
        self.rerun_button = w.Button(description="Re-run", layout=small(), tooltip="run it again (exp.rerun)")
        self.rerun_button.add_class("rf-queue-rerun")
        self.rerun_button.on_click(lambda _b: panel.rerun(run_id))
        self.box = w.HBox([self.info, self.stop_button, self.detail_button, self.rerun_button],
                          layout=w.Layout(align_items="center", width="100%", flex="0 0 auto"))
        self.box.add_class("rf-queue-row")

    def update(self, q: QueueRow, *, can_rerun: bool) -> None:
        markup = row_html(q)
        if self.info.value != markup:
            self.info.value = markup
        self.stop_button.layout.display = None if q.stoppable else "none"
        self.rerun_button.layout.display = None if q.ended and can_rerun else "none"


class QueuePanel:
    """Runs in flight and recently ended in ``store`` (one ``experiment`` or all), refreshed live.

    >>> panel = QueuePanel(exp.store, interval=2)          # doctest: +SKIP
    >>> panel.refresh(); [r.status for r in panel.rows]   # doctest: +SKIP
    >>> panel.stop()                                      # doctest: +SKIP
    """

    def __init__(self, store: Store, *, experiment: str | None = None, recent_s: float = 3600.0,
                 interval: float = 2.0, start: bool = True, limit: int = 200, shown_ended: int = 20,
                 experiment_type: Callable[..., Experiment] | None = None) -> None:
        import ipywidgets as w

        self.store, self.experiment, self.recent_s, self.limit = store, experiment, recent_s, limit
        # Runs in flight or waiting always show (first); of the ended ones, the latest ``shown_ended``,
        # then a line saying how many more ended (exp.table() holds them all).
        self.shown_ended = shown_ended
        # How a row's experiment is opened for Detail and Re-run (the Experiment class; None: the stored clip only)
        self.experiment_type = experiment_type
        self.interval = max(0.2, float(interval))
        self.rows: list[QueueRow] = []
        self.views: dict[str, _RowView] = {}
        self.refreshes = 0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved: Any = None  # the saved view, once displayed (runflow_nb.widgets.saved)
        self.header = w.HTML()
        self.header.add_class("rf-queue-header")
        # a scrolling area of a sensible height, never a page-long panel
        self.table = w.VBox(layout=w.Layout(max_height="420px", overflow="hidden auto", flex="0 0 auto"))
        self.table.add_class("rf-queue-rows")
        self.more = w.HTML()
        self.more.add_class("rf-queue-more")
        self.message = w.HTML()
        self.message.add_class("rf-queue-message")
        self.detail = w.Output()
        self.detail.add_class("rf-queue-detail-view")
        self.refresh_button = w.Button(description="Refresh", icon="refresh", layout=w.Layout(width="100px"))
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.widget = w.VBox([w.HBox([self.header, self.refresh_button], layout=w.Layout(align_items="center")),
                              self.table, self.more, self.message, self.detail])
        self.widget.add_class("rf-queue")
        self.refresh()
        ref = weakref.ref(self)
        atexit.register(_stop_ref, ref)
        if start:
            self.start()

    # -- the live refresh ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Refresh every ``interval`` seconds on a daemon thread (the kernel stays free)."""
        with self._lock:
            if self.running:
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=_loop, args=(weakref.ref(self), self._stop, self.interval),
                                             name="runflow_nb-queue", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop refreshing (the panel keeps its last rows); :meth:`start` resumes."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if self._saved is not None:
            self._saved.update(self._saved_body())

    def close(self) -> None:
        """Stop refreshing and close the widget."""
        self.stop()
        self.widget.close()

    def refresh(self) -> list[QueueRow]:
        """Read the store now and redraw; returns the rows."""
        rows = queue_rows(self.store, experiment=self.experiment, recent_s=self.recent_s, limit=self.limit)
        with self._lock:
            self.rows = rows
            can_rerun = self._can_rerun()
            views = []
            for q in self.shown_rows():
                view = self.views.get(q.run_id)
                if view is None:
                    view = self.views[q.run_id] = _RowView(self, q.run_id)
                view.update(q, can_rerun=can_rerun)
                views.append(view)
            for gone in set(self.views) - {q.run_id for q in self.shown_rows()}:
                self.views.pop(gone).box.close()
            boxes = tuple(v.box for v in views)
            if tuple(self.table.children) != boxes:
                self.table.children = boxes
            live = sum(not q.ended for q in rows)
            hidden = len(rows) - len(views)
            more = (_html.block(f"{hidden} more ended in the last {_clock(self.recent_s)} (exp.table() or "
                                "runflow-nb table lists every run)", style="font-size:12px;color:#6b7280")
                    if hidden > 0 else "")
            if self.more.value != more:
                self.more.value = more
            scope = f"experiment {self.experiment!r}" if self.experiment else "every experiment"
            self.header.value = _html.block(
                f"<b>queue</b> · {live} in flight or waiting, {len(rows) - live} ended in the last "
                f"{_clock(self.recent_s)} · {_html.text(scope)} · updated {time.strftime('%H:%M:%S')}",
                style="font-size:12px")
            self.refreshes += 1
        return rows

    def shown_rows(self) -> list[QueueRow]:
        """The rows the panel draws: every open one, then the latest ``shown_ended`` ended ones."""
        opened = [q for q in self.rows if not q.ended]
        return opened + [q for q in self.rows if q.ended][:max(0, int(self.shown_ended))]

    # -- actions --------------------------------------------------------------------------------------

    def _experiment(self, name: str) -> Experiment | None:
        return None if self.experiment_type is None else self.experiment_type(name, store=self.store)

    def _can_rerun(self) -> bool:
        return callable(getattr(self.experiment_type, "rerun", None))

    def stop_run(self, run_id: str) -> str:
        """Stop the background sweep that sends ``run_id`` (see :func:`runflow_nb.studio.queue.stop_sweep_of`)."""
        from ..errors import RunflowError

        try:
            text = stop_sweep_of(self.store, run_id)
        except RunflowError as exc:
            text = str(exc)
        self.message.value = _html.block(_html.text(text), style="font-size:12px;color:#b45309")
        self.refresh()
        return text

    def show_detail(self, run_id: str) -> None:
        """The run's detail view (``exp.detail(run)`` where it exists, else its stored clip and fields)."""
        row = self.store.get_run(run_id)
        if row is None:
            self.detail.outputs = ()
            return
        exp = self._experiment(str(row["experiment"]))
        detail = getattr(exp, "detail", None) if exp is not None else None
        if callable(detail):
            from IPython.core.formatters import format_display_data

            data, metadata = format_display_data(detail(run_id))
        else:
            data, metadata = {"text/html": display_row(row), "text/plain": f"run {run_id}"}, {}
        self.detail.outputs = ({"output_type": "display_data", "data": data, "metadata": metadata},)

    def rerun(self, run_id: str) -> threading.Thread | None:
        """``exp.rerun(run_id)`` on a worker thread (the kernel stays free), where it exists."""
        row = self.store.get_run(run_id)
        if row is None or not self._can_rerun():
            return None
        exp = self._experiment(str(row["experiment"]))
        if exp is None:
            return None

        def work() -> None:
            try:
                exp.rerun(run_id)
                text = f"re-ran {run_id[:8]}"
            except Exception as exc:  # shown in the panel; the kernel stays usable
                text = f"re-run of {run_id[:8]} failed: {exc}"
            self.message.value = _html.block(_html.text(text), style="font-size:12px")

        t = threading.Thread(target=work, name="runflow_nb-queue-rerun", daemon=True)
        t.start()
        return t

    # -- display ----------------------------------------------------------------------------------------

    def _saved_body(self) -> str:
        lines = "".join(f"<div>{row_html(q)}</div>" for q in self.shown_rows())
        return (f"<div>{self.header.value}</div><div style=\"max-height:420px;overflow-y:auto\">{lines}</div>"
                f"{self.more.value}")

    def _ipython_display_(self) -> None:
        """A saved view (the rows as they are now; the final rows once stopped), then the live panel."""
        from .saved import SavedView

        self._saved = SavedView(self.widget, self._saved_body(), label="queue panel")
        self._saved.show()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        live = sum(not q.ended for q in self.rows)
        return f"<QueuePanel {self.experiment or 'all experiments'}: {live} open, {len(self.rows) - live} ended>"


def display_row(row: dict[str, Any]) -> str:
    return display.row_html(row, max_height=360)


def _loop(ref: weakref.ref[QueuePanel], stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        panel = ref()
        if panel is None:
            return
        try:
            panel.refresh()
        except Exception as exc:  # a store hiccup (locked, network): say so, try again next tick
            panel.header.value = _html.block(f"queue: could not read the store ({_html.text(exc)}); retrying",
                                             style="font-size:12px;color:#b45309")
        del panel


def _stop_ref(ref: weakref.ref[QueuePanel]) -> None:
    panel = ref()
    if panel is not None:
        panel.stop(timeout=2.0)


_panel: QueuePanel | None = None
_panel_lock = threading.Lock()


def queue(store: Store | None = None, *, experiment: str | None = None, **options: Any) -> QueuePanel:
    """The kernel's queue panel (one per kernel: asking again points it at ``store``/``experiment``
    and returns the same panel, refreshing). ``rf.queue()`` and ``exp.queue()`` call this."""
    global _panel
    from ..store.runstore import Store as _Store

    if store is None:  # the store an experiment of this kernel opened last, else RUNFLOW_STORE's
        from .. import settings
        from ..store.runstore import last_opened

        store = last_opened() or _Store(settings.store_url(None))
    with _panel_lock:
        if _panel is not None and _panel.widget.comm is not None:
            _panel.stop()
            _panel.store, _panel.experiment = store, experiment
            for name, value in options.items():
                setattr(_panel, name, value)
            _panel.refresh()
            _panel.start()
            return _panel
        _panel = QueuePanel(store, experiment=experiment, **options)
        return _panel
