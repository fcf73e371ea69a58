"""A :class:`~runflow_nb.widgets.form.GenerateForm` filled in from a request, for
:meth:`GenerateForm.from_run <runflow_nb.widgets.form.GenerateForm.from_run>` (the "open in the form"
button): the model, the prompt, every input, the references by path in character order and
video-edit's clip. The form then validates and prices it like any other; nothing is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..request import VideoRequest

__all__ = ["fill", "from_run"]


def from_run(cls: Any, run: Any, *, experiment: Any = None, client: Any = None) -> Any:
    """``cls`` (the GenerateForm class) pre-filled with the request that made ``run``: a run id or
    table row of ``experiment``, or a Result (its own request)."""
    from ..errors import UsageError

    if experiment is None and not hasattr(run, "request"):
        raise UsageError("from_run needs the experiment of a run id or table row: from_run(run, experiment=exp)")
    req = run.request if experiment is None else experiment.request(run)
    return fill(cls(client, experiment, model=req.model), req)


def fill(form: Any, request: VideoRequest) -> Any:
    """Put ``request`` into ``form`` (a GenerateForm of the request's model) and return the form."""
    form.set_model(request.model)
    for name, ctl in form.controls.items():
        value = request.prompt if name == "prompt" else getattr(request, name, None)
        if value is not None or name == "seed":
            ctl.value = value
    for ref in request.images:
        form.add_image(ref.display)
    if request.video is not None:
        form.video_box.value = str(request.video.path or request.video.display)
    form.validate()
    return form
