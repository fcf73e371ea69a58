"""`GenerateForm`: one clip from a form generated from the model spec, validated as you type.

>>> import runflow_nb as rf
>>> form = rf.GenerateForm()              # doctest: +SKIP
>>> form                                  # fill it in, then press Generate  # doctest: +SKIP
>>> form.request, form.issues             # the validated VideoRequest (or None) and what is wrong  # doctest: +SKIP
>>> print(form.to_code())                 # the same request as code        # doctest: +SKIP

Nothing is sent until Generate is pressed, and Generate is disabled while the request is invalid.
Every change re-runs :meth:`VideoRequest.build` (cheap: each reference image is decoded once, when
it is added) and puts each problem beside its own field. The result is shown by reference (a path
Jupyter serves, never base64) inside an ``Output`` so JupyterLab resolves its relative URL.

This module builds the form and runs Generate; its other parts live beside it: the reference images
(:mod:`.form_images`), the live checks (:mod:`.form_checks`), the two ways a request is run
(:mod:`.form_run`), the "N seeds" row (:mod:`.form_seeds`) and the pieces that are not widgets
(:mod:`.form_items`).
"""

from __future__ import annotations

import contextlib
import functools
import html
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import Issue, RunflowError, RunTimeoutError, UsageError, ValidationError
from ..request import VideoRequest
from ..specs import FAMILY, REFERENCE_TO_VIDEO, ModelSpec, get_spec
from ..views import display
from ..views import html as _html
from .fields import make_control
from .form_checks import FormChecks
from .form_images import FormImages
from .form_items import ImageItem, row_result_html, short_repr
from .form_run import eta_text, remember_wall, typical_wall_s, work
from .prefill import from_run as _from_run
from .saved import SavedView

if TYPE_CHECKING:
    from ..client import Client, Result
    from ..experiment import Experiment

__all__ = ["GenerateForm", "ImageItem", "form", "row_result_html"]


def _spec(model: Any) -> ModelSpec:
    """The spec of ``model``; an unknown one is a ValidationError worded like :func:`runflow_nb.grid`'s."""
    try:
        return get_spec(model)
    except KeyError as exc:
        raise ValidationError([Issue("model", str(exc.args[0]), "pick one of the known models")]) from None


def _is_client(client: Any) -> bool:
    """A Client, or an object that does what the form asks of one."""
    from ..client import Client

    return isinstance(client, Client) or all(callable(getattr(type(client), name, None))
                                             for name in ("submit", "events", "download"))


class GenerateForm(FormImages, FormChecks):
    """A form for one clip of any model of the family, generated from the model's spec.

    The model picker at the top re-shapes the form: text-to-video has no images, image-to-video
    takes one, video-edit a clip (path or URL) and up to five references named ``@Image1``….

    >>> form = GenerateForm()                                         # doctest: +SKIP
    >>> form.controls["prompt"].value = "character1 trots on a beach"  # doctest: +SKIP
    >>> form.add_image("horse.png")                                   # doctest: +SKIP
    >>> form.request                                                  # doctest: +SKIP
    VideoRequest(prompt='character1 trots on a beach', images=1, ...)

    With ``experiment``, runs go through :meth:`Experiment.run` (its client) and land in its table.
    """

    def __init__(self, client: Client | None = None, experiment: Experiment | None = None, *,
                 spec: ModelSpec = REFERENCE_TO_VIDEO, model: str | ModelSpec | None = None) -> None:
        import ipywidgets as w

        from ..client import Client

        self.spec = _spec(model) if model is not None else spec
        if client is not None and not _is_client(client):
            raise UsageError(f"client must be a runflow_nb.Client (e.g. rf.Client()), got {short_repr(client)}")
        if experiment is not None and not all(hasattr(experiment, a) for a in ("run", "store", "artifacts", "name")):
            raise UsageError(f"experiment must be a runflow_nb.Experiment (e.g. rf.Experiment('demo')), "
                             f"got {short_repr(experiment)}")
        self.client = client if client is not None else Client()
        self.experiment = experiment
        self.images: list[ImageItem] = []
        self.request: VideoRequest | None = None
        self.issues: list[Issue] = []
        self.result: Result | dict[str, Any] | None = None
        self.error: BaseException | None = None
        self._touched: set[str] = set()
        self._busy = False
        self._worker: threading.Thread | None = None
        self._phase = ""
        self._t0 = 0.0
        self._expected_s: float | None = None  # how long a run like this one took before (the ETA)
        self._walls: dict[tuple[Any, ...], list[float]] = {}  # this form's own finished runs, by kind
        self._status_lock = threading.Lock()

        # -- the model picker: the fields below are re-generated from the chosen model's spec
        self.model_picker = w.Dropdown(options=[(f"{s.variant} — {s.title.split(': ', 1)[-1]}", s.model)
                                                for s in FAMILY], value=self.spec.model, description="model",
                                       layout=w.Layout(width="620px"), style={"description_width": "130px"})
        self.model_picker.add_class("rf-model-picker")
        self.model_picker.observe(lambda change: self.set_model(change["new"]), names="value")

        # -- prompt extras: live count and image-tag hints
        self.count = w.HTML()
        self.count.add_class("rf-prompt-count")
        self.hints = w.HTML()
        self.hints.add_class("rf-prompt-hints")

        # -- reference images: upload, path/URL + Add, thumbnails
        self.upload = w.FileUpload(accept="image/png,image/jpeg,image/webp,image/bmp", multiple=True,
                                   description="Upload", tooltip="add images from your computer")
        self.upload.add_class("rf-image-upload")
        self.upload.observe(self._on_upload, names="value")
        self.path_box = w.Text(placeholder="path or http(s) URL of an image", layout=w.Layout(width="320px"))
        self.path_box.add_class("rf-image-path")
        self.path_error = w.HTML()  # why the image named in the box was not added
        self.path_error.add_class("rf-image-path-error")
        self.add_button = w.Button(description="Add", tooltip="add the image named in the box",
                                   layout=w.Layout(width="70px"))
        self.add_button.add_class("rf-image-add")
        self.add_button.on_click(lambda _b: self._add_from_box())
        self.thumbnails = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self.thumbnails.add_class("rf-thumbnails")
        self.images_label = w.HTML(layout=w.Layout(width="130px", min_width="130px"))

        # -- video-edit's input clip: a path or URL
        self.video_box = w.Text(placeholder="path or http(s) URL of an MP4/MOV clip (3–60 s)",
                                layout=w.Layout(width="420px"))
        self.video_box.add_class("rf-video-path")
        self.video_box.observe(lambda _c: self._changed("video_url"), names="value")

        # -- cost, Generate, status, result
        self.cost = w.HTML()
        self.cost.add_class("rf-cost")
        self.generate_button = w.Button(description="Generate", button_style="primary", icon="play",
                                        tooltip="submit this request (nothing is sent before)")
        self.generate_button.add_class("rf-generate")
        self.generate_button.on_click(lambda _b: self.generate())
        self.cancel_button = w.Button(description="Cancel", icon="stop", tooltip="stop: nothing more is submitted",
                                      layout=w.Layout(display="none"))
        self.cancel_button.add_class("rf-cancel")
        self.cancel_button.on_click(lambda _b: self.cancel())
        self._cancel = threading.Event()
        self.reused = False  # the last Generate found the clip already in the experiment's store
        self.status = w.HTML()
        self.status.add_class("rf-status")
        self.output = w.Output()
        self.output.add_class("rf-result")
        self.title = w.HTML()
        self.widget = w.VBox()
        self.widget.add_class("rf-generate-form")
        self.saved = SavedView(self.widget, "", label="GenerateForm")
        self.seeds: Any = None  # the "N seeds" row (runflow_nb.widgets.form_seeds), made with the fields
        self._build_fields()

    @classmethod
    def from_run(cls, run: Any, *, experiment: Experiment | None = None, client: Client | None = None) -> GenerateForm:
        """A form pre-filled with the request that made ``run`` (a run id or row of ``experiment``, or a Result)."""
        return _from_run(cls, run, experiment=experiment, client=client)

    def set_model(self, model: str | ModelSpec) -> None:
        """Switch to another model of the family: its fields replace the old ones (values of the
        fields both share are kept; images are checked again against the new model's rules).
        An unknown model raises :class:`ValidationError` and leaves the form as it was."""
        spec = _spec(model)
        if spec is self.spec:
            return
        keep = {name: ctl.value for name, ctl in self.controls.items()}
        self.spec = spec
        if self.model_picker.value != spec.model:
            self.model_picker.value = spec.model
        self.images = [ImageItem.load(item.source, spec=spec, label=item.label) for item in self.images]
        self._build_fields(keep)

    def _build_fields(self, keep: Mapping[str, Any] | None = None) -> None:
        """(Re)generate the controls and the layout from ``self.spec``."""
        import ipywidgets as w

        spec = self.spec
        self.controls = {f.name: make_control(f) for f in spec.fields}
        for name, ctl in self.controls.items():
            if keep and name in keep and keep[name] is not None:
                with contextlib.suppress(Exception):  # a value the new field cannot hold keeps its default
                    ctl.value = keep[name]
            ctl.observe(functools.partial(self._changed, name))
        self.errors: dict[str, Any] = {name: ctl.error for name, ctl in self.controls.items()}
        img_field = spec.images.field or "images"
        self.errors[img_field] = w.HTML()
        self.errors[img_field].add_class(f"rf-error-{img_field}")
        self.errors["video_url"] = w.HTML()
        self.errors["video_url"].add_class("rf-error-video_url")
        self.errors["general"] = w.HTML()
        self.errors["general"].add_class("rf-error-general")
        rules = spec.images
        what = "image" if rules.single else "reference images"
        tags = f"; name them in the prompt as {spec.tags.name(spec.tags.first)}, …" if spec.tags else ""
        self.images_label.value = f"<b>{what}</b>"
        self.images_label.tooltip = (f"one image{tags}" if rules.single
                                     else f"{rules.min_count}–{rules.max_count} images{tags}")
        image_rows = [
            w.HBox([self.images_label, self.upload, self.path_box, self.add_button],
                   layout=w.Layout(align_items="center")),
            w.HBox([w.HTML(layout=w.Layout(width="130px", min_width="130px")),
                    w.VBox([self.path_error, self.thumbnails, self.errors[img_field]])]),
        ] if spec.has_images else []
        video_rows = [w.HBox([w.HTML("<b>video</b>", layout=w.Layout(width="130px", min_width="130px")),
                              self.video_box, self.errors["video_url"]], layout=w.Layout(align_items="center"))
                      ] if spec.video is not None else []
        self.title.value = self._title_html()
        rows: list[Any] = [self.title, self.model_picker, *video_rows]
        for name, ctl in self.controls.items():
            rows.append(ctl.box)
            if name == "prompt":
                rows.append(w.HBox([w.HTML(layout=w.Layout(width="130px", min_width="130px")),
                                    self.count, self.hints], layout=w.Layout(align_items="baseline")))
                rows += image_rows
        if "prompt" not in self.controls:
            rows += image_rows
        rows += [self.errors["general"], self.cost,
                 w.HBox([self.generate_button, self.cancel_button, self.status], layout=w.Layout(align_items="center")),
                 self.output]
        if self.seeds is None:
            from .form_seeds import SeedsPanel

            self.seeds = SeedsPanel(self)
        self.widget.children = [*rows, self.seeds.widget]
        self._render_thumbnails()
        self.validate()

    # -- display ---------------------------------------------------------------------------------

    def _ipython_display_(self) -> None:
        """The form after a saved view of it (its settings and last clip), which stands in for the
        form when the notebook is reopened without its kernel (see :mod:`.saved`)."""
        self.saved.body = self._saved_body()
        self.saved.show()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _saved_body(self) -> str:
        """What the form holds, as static HTML: model, settings, images and the last clip."""
        values = self.values()
        prompt = values.pop("prompt", None)
        settings = " · ".join(f"{_html.text(k)} {_html.text('random' if v is None else v)}" for k, v in values.items())
        parts = [f"<div>{self._title_html()}</div>"]
        if prompt:
            parts.append(f'<div style="font-size:13px">{_html.text(prompt)}</div>')
        parts.append(f'<div style="font-size:12px;color:#374151">{settings}</div>')
        if self.images:
            names = ", ".join(f"{_html.text(self._tag(i + 1))}: {_html.text(item.name)}"
                              for i, item in enumerate(self.images))
            parts.append(f'<div style="font-size:12px;color:#374151">images {names}</div>')
        if self.result is not None:
            parts.append(row_result_html(self.result) if isinstance(self.result, dict)
                         else display.result_html(self.result))
        return "".join(parts)

    def __repr__(self) -> str:
        state = "valid" if self.request is not None else f"{len(self.issues)} issue(s)"
        return f"<GenerateForm {state}, {len(self.images)} image(s)>"

    def _title_html(self) -> str:
        badge = f" {display.SIM_BADGE}" if self._backend() == "simulator" else ""
        return f"<b>{html.escape(self.spec.model)}</b>{badge}"

    def _backend(self) -> str:
        try:
            return str(self.client.backend)
        except RunflowError:
            return "runflow"


    # -- code ---------------------------------------------------------------------------------------

    def to_code(self, *, run: bool = True) -> str:
        """Python that builds this request (and, with ``run``, generates it the same way)."""
        values = self.values()
        lines = ["import runflow_nb as rf", "", "request = rf.VideoRequest.build("]
        if self.spec is not REFERENCE_TO_VIDEO:
            lines.append(f"    model={self.spec.alias!r},")
        images = [item.source for item in self.images]
        if "prompt" in values:
            lines.append(f"    prompt={values.pop('prompt')!r},")
        if self.spec.video is not None:
            lines.append(f"    video={self.video_box.value.strip()!r},")
        if self.spec.has_images:
            lines.append(f"    images={images!r},")
        lines += [f"    {name}={value!r}," for name, value in values.items()]
        lines.append(")")
        if run:
            if self.experiment is not None:
                exp = self.experiment
                lines += [f"exp = rf.Experiment({exp.name!r}, store={exp.store.url!r}, "
                          f"artifacts={str(exp.artifacts)!r})", "row = exp.generate(request)", "rf.show(row)"]
            else:
                lines += ["result = rf.Client().generate(request)", "rf.show(result)"]
        return "\n".join(lines) + "\n"

    # -- running ----------------------------------------------------------------------------------

    def generate(self) -> threading.Thread | None:
        """Start the run in the background (what the button does); None when invalid or busy."""
        if self._busy:
            return None
        self.validate()
        req = self.request
        if req is None:
            return None
        if req.seed is None:  # drawn here so the status, result and table all name the same seed
            req = req.with_seed()
        self._busy = True
        self._cancel.clear()
        self.reused = False
        self.generate_button.disabled = True
        self.cancel_button.layout.display = None
        remember_wall(self._walls, self.result)
        self.result = self.error = None
        self.output.outputs = ()
        self._expected_s = typical_wall_s(self._walls, self.experiment, req)
        self._t0 = time.monotonic()
        self._set_phase("submitting")
        self._worker = threading.Thread(target=self._work, args=(req,), name="runflow_nb-form", daemon=True)
        self._worker.start()
        return self._worker

    def cancel(self) -> None:
        """Stop the current Generate: a run not yet submitted is never sent; one already submitted
        keeps running on the server (and is billed if it succeeds) — with an experiment it is still
        recorded, so Generate again re-attaches to it instead of paying twice."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> Result | dict[str, Any] | None:
        """Block until the current run ends; returns its result (or stored row). Raises its error."""
        if self._worker is not None:
            self._worker.join(timeout)
            if self._worker.is_alive():
                raise RunTimeoutError(f"the run is still going after {timeout} s; wait() again, nothing is lost")
        if self.error is not None:
            raise self.error
        return self.result

    def _set_phase(self, phase: str) -> None:
        with self._status_lock:
            self._phase = phase
            self._render_status()

    def _render_status(self) -> None:
        elapsed = time.monotonic() - self._t0
        eta = eta_text(elapsed, self._expected_s)
        self.status.value = (f'<span style="font-family:monospace">{html.escape(self._phase)} … '
                             f"{elapsed:.0f} s · {html.escape(eta)}</span>")

    def _tick(self, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            with self._status_lock:
                self._render_status()

    def _work(self, req: VideoRequest) -> None:
        work(self, req)


form = GenerateForm
"""``rf.form(...)``: the short name of :class:`GenerateForm` (the same class, the same arguments).

>>> import runflow_nb as rf
>>> rf.form is rf.GenerateForm
True
"""
