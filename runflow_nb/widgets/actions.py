"""The follow-up buttons under a clip (gallery, compare, detail): re-run with another seed, upscale,
edit, open in the form, copy as code. Each only calls the library (``exp.rerun``, ``exp.upscale``,
``exp.edit``, :meth:`GenerateForm.from_run <runflow_nb.widgets.form.GenerateForm.from_run>`,
``exp.code``), which has tests of its own; the widget shows what came back.

>>> row = ActionRow(exp, run_id)              # doctest: +SKIP
>>> row.seed.value = 12; row.rerun_button.click(); row.wait()   # doctest: +SKIP
>>> row.result["parent_run_id"] == run_id     # doctest: +SKIP
True

A click runs the call on a worker thread (the kernel stays responsive while a clip is made); the
status line follows the sweep's progress and ends with the new run or the error.
"""

from __future__ import annotations

import html
import random
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import RunflowError
from ..views import html as _html

if TYPE_CHECKING:
    from ..experiment import Experiment

__all__ = ["ActionRow", "DetailView", "action_row", "detail"]

_SMALL = {"width": "auto", "padding": "0 6px"}


class ActionRow:
    """Buttons for one stored run; ``result`` holds the last new row, ``form`` the last opened form."""

    def __init__(self, exp: Experiment, run: Any) -> None:
        import ipywidgets as w

        self.exp = exp
        row = _row(exp, run)
        self.run_id = str(row["run_id"])
        self.seed = w.BoundedIntText(value=next_seed(exp, row),
                                     min=0, max=2**31 - 1, layout=w.Layout(width="110px"),
                                     tooltip="the seed of the re-run")
        self.seed.add_class("rf-action-seed")

        def button(label: str, icon: str, tip: str, name: str, action: Callable[[], Any]) -> Any:
            b = w.Button(description=label, icon=icon, tooltip=tip, layout=w.Layout(**_SMALL))
            b.add_class(f"rf-action-{name}")
            b.on_click(lambda _b: action())
            return b

        self.rerun_button = button("seed", "random", "re-run with the seed on the left", "rerun",
                                   lambda: self._start("re-run", lambda: self.exp.rerun(self.run_id,
                                                                                        seed=int(self.seed.value),
                                                                                        progress=self._progress)))
        self.upscale_button = button("1080p", "arrow-up", "the same seed and inputs at the highest resolution",
                                     "upscale", lambda: self._start("upscale", lambda: self.exp.upscale(
                                         self.run_id, progress=self._progress)))
        self.edit_button = button("edit", "pencil", "send this clip to video-edit with a prompt", "edit",
                                  self._toggle_edit)
        self.form_button = button("form", "list-alt", "open this request in the form", "form", self.open_form)
        self.code_button = button("code", "code", "the Python that rebuilds this request", "code", self.copy_code)
        self.edit_prompt = w.Text(placeholder="edit prompt, e.g. make it night, @Image1 in the sky",
                                  layout=w.Layout(width="260px"))
        self.edit_prompt.add_class("rf-action-edit-prompt")
        self.edit_send = button("send", "play", "send the edit", "edit-send",
                                lambda: self._start("edit", lambda: self.exp.edit(
                                    self.run_id, prompt=self.edit_prompt.value, progress=self._progress)))
        self.edit_box = w.HBox([self.edit_prompt, self.edit_send], layout=w.Layout(display="none"))
        self.code = w.HTML()
        self.code.add_class("rf-action-snippet")
        self.status = w.HTML()
        self.status.add_class("rf-action-status")
        self.output = w.Output()
        self.result: dict[str, Any] | Any = None
        self.error: BaseException | None = None
        self.form: Any = None
        self._worker: threading.Thread | None = None
        buttons = [self.seed, self.rerun_button, self.upscale_button, self.edit_button, self.form_button,
                   self.code_button]
        if row.get("status") != "succeeded":
            for b in (self.upscale_button, self.edit_button):
                b.disabled = True  # nothing to upscale or edit yet; a re-run and the code still work
        self.widget = w.VBox([w.HBox(buttons, layout=w.Layout(flex_flow="row wrap", align_items="center")),
                              self.edit_box, self.status, self.code, self.output])
        self.widget.add_class("rf-actions")

    # -- the calls -------------------------------------------------------------------------------------

    def _progress(self, p: Any) -> None:
        self.status.value = _line(_html.text(p.line()))

    def _start(self, what: str, call: Callable[[], Any]) -> None:
        if self.busy:
            self.status.value = _line("busy: wait for the running call to end")
            return
        self.error = None
        self.status.value = _line(f"{html.escape(what)}: starting")

        def work() -> None:
            try:
                got = call()
            except RunflowError as exc:
                self.error = exc
                self.status.value = _line(f"{html.escape(what)} failed: {_html.text(exc)}", colour="#b91c1c")
                return
            self.result = got
            self.status.value = _line(f"{html.escape(what)}: {_summary(got)}", colour="#15803d")
            with self.output:
                from IPython.display import HTML, display

                from ..views.display import row_html

                if isinstance(got, dict):
                    display(HTML(_html.block(row_html(got, max_height=240))))

        self._worker = threading.Thread(target=work, name=f"runflow-{what}", daemon=True)
        self._worker.start()

    @property
    def busy(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the running call (for scripts and tests)."""
        if self._worker is not None:
            self._worker.join(timeout)

    def _toggle_edit(self) -> None:
        self.edit_box.layout.display = "none" if self.edit_box.layout.display != "none" else "flex"

    def open_form(self) -> Any:
        """A :class:`~runflow_nb.widgets.form.GenerateForm` pre-filled with this run's request."""
        # Through the package's public name, as a user types it: the form may open an experiment of
        # its own and the experiment draws this row, so a direct import would close an import circle.
        import runflow_nb as rf

        try:
            self.form = rf.GenerateForm.from_run(self.run_id, experiment=self.exp)
        except RunflowError as exc:
            self.error = exc
            self.status.value = _line(f"form: {_html.text(exc)}", colour="#b91c1c")
            return None
        self.output.clear_output()
        with self.output:
            from IPython.display import display

            display(self.form.widget)
        return self.form

    def copy_code(self) -> str | None:
        """Show the snippet that rebuilds this run's request, with a copy button; returns it."""
        try:
            code = self.exp.code(self.run_id)
        except RunflowError as exc:
            self.error = exc
            self.status.value = _line(f"code: {_html.text(exc)}", colour="#b91c1c")
            return None
        self.code.value = (
            "<button class='rf-copy' onclick=\"navigator.clipboard.writeText(this.nextElementSibling.textContent);"
            "this.textContent='copied'\">copy</button>"
            f"<pre style='background:#f6f8fa;padding:6px;font-size:12px'>{html.escape(code)}</pre>")
        return code


def next_seed(exp: Experiment, row: dict[str, Any]) -> int:
    """The seed box's default: the first seed after the run's own that the experiment has not run
    for the same request (held runs: succeeded, or in flight with their money held), so the
    button never offers a clip the experiment already has; random when the run had no seed. The box
    keeps its value after a click, so a second click is the same re-run and pays nothing."""
    from ..followups.reuse import free_seed, taken_seeds

    seed = row.get("seed") if _known(row.get("seed")) else row.get("seed_returned")
    if not _known(seed):
        return random.SystemRandom().randrange(2**31)
    rows = (exp.store.runs(exp.name, where={"model": row.get("model"), "prompt": row.get("prompt")})
            if row.get("experiment") == exp.name else [])  # narrowed in the query: a gallery draws many
    start = int(str(seed))
    return free_seed(taken_seeds(row, rows) | {start}, after=start)


def _known(value: Any) -> bool:
    return value is not None and str(value) not in ("<NA>", "nan", "")


def _line(markup: str, *, colour: str = "#374151") -> str:
    return f"<span class='{_html.NO_MATH}' style='font-size:12px;color:{colour}'>{markup}</span>"


def _summary(got: Any) -> str:
    if isinstance(got, dict):
        notice = getattr(got, "notice", None)
        return (f"run {_html.text(str(got.get('run_id'))[:8])} {_html.text(got.get('status'))}"
                f" ({_html.text(got.get('resolution'))}, seed {_html.text(got.get('seed'))})"
                + (f": {_html.text(notice)}" if notice else ""))
    return _html.text(f"{len(got)} runs") if hasattr(got, "__len__") else _html.text(got)


def action_row(exp: Experiment, run: Any) -> Any:
    """The button row of ``run`` as a widget (what the gallery and compare put under a clip)."""
    return ActionRow(exp, run).widget


def detail(exp: Experiment, run: Any) -> Any:
    """:meth:`Experiment.detail`: a :class:`DetailView` in a live front end, else the run's HTML."""
    from ..views.frontend import interactive_frontend

    if interactive_frontend():
        try:
            return DetailView(exp, run)
        except ImportError:  # no ipywidgets: the HTML alone
            pass
    from IPython.display import HTML

    from ..followups.steps import detail_of

    return HTML(detail_of(exp, run))


class DetailView:
    """:meth:`Experiment.detail <runflow_nb.experiment.Experiment.detail>` in JupyterLab: the run in
    full with its button row; the same HTML without buttons where there is no live kernel."""

    def __init__(self, exp: Experiment, run: Any) -> None:
        import ipywidgets as w

        from ..followups.steps import detail_of

        self.markup = detail_of(exp, run)
        self.actions = ActionRow(exp, run)
        self.widget = w.VBox([w.HTML(self.markup), self.actions.widget])
        self.widget.add_class("rf-detail-view")

    def _ipython_display_(self) -> None:
        from .saved import SavedView

        SavedView(self.widget, self.markup, label="run detail").show()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            data.setdefault("text/html", self.markup)
        return bundle

    def _repr_html_(self) -> str:
        return self.markup


def _row(exp: Experiment, run: Any) -> dict[str, Any]:
    """The stored record of ``run`` (a run id, a table row as a dict or Series, or a Result)."""
    from ..followups.lineage import parent_row

    if hasattr(run, "to_dict") and not isinstance(run, dict):
        run = run.to_dict()
    return parent_row(run, exp.store)
