"""The two ways :class:`~runflow_nb.widgets.form.GenerateForm` runs a request: with its client
(submit, follow the events, download) or as a sweep of one in its experiment (logged like any run).
Both report their phase to the form's status line and honour its Cancel button."""

from __future__ import annotations

import contextlib
import html
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RunflowError
from ..views import display
from .form_items import row_result_html

if TYPE_CHECKING:
    from ..client import Result
    from ..request import VideoRequest
    from .form import GenerateForm

__all__ = ["Canceled", "eta_text", "remember_wall", "run_in_experiment", "run_with_client", "typical_wall_s", "work"]


class Canceled(Exception):
    """The user pressed Cancel (the message says what happened to the run)."""


def run_with_client(self: GenerateForm, req: VideoRequest) -> Result:
    """submit → events (status changes) → download: the generate flow, observable."""
    from ..client import Result, safe_name
    from ..errors import RunFailedError
    from ..media import probe as media

    client = self.client
    submitted = datetime.now(timezone.utc)
    if self._cancel.is_set():
        raise Canceled("canceled before anything was sent")
    run = client.submit(req)
    self._set_phase(run.status)
    for event in client.events(run.id):
        run = event.run
        self._set_phase(event.status)
        if self._cancel.is_set():
            raise Canceled(f"canceled: stopped waiting for Runflow run {run.id}, which was already submitted "
                            "and keeps running on the server (it is billed if it succeeds)")
    if not run.succeeded:
        reason = run.failure_message or run.failure_code or run.status
        raise RunFailedError(f"run {run.id} {run.status}: {reason} (failed runs are not billed)", run=run)
    self._set_phase("downloading")
    folder = Path(client.artifacts_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{safe_name(run.id)}.mp4"
    sha, size = client.download(run, path)
    try:
        poster: Path | None = media.poster_frame(path, path.with_suffix(".jpg"))
    except RunflowError:
        poster = None
    out = run.output
    assert out is not None
    return Result(run=run, request=req, video_path=path, video_sha256=sha, size_bytes=size,
                  seed=out.seed if out.seed is not None else req.seed, submitted_at=submitted,
                  completed_at=datetime.now(timezone.utc), wall_s=time.monotonic() - self._t0,
                  queue_s=run.queue_s, inference_ms=out.inference_ms,
                  cost_usd=run.cost_usd if run.cost_usd is not None else req.estimate_usd(),
                  cost_estimate_usd=req.estimate_usd(), backend=client.backend,
                  nsfw_detected=out.nsfw_detected, poster_path=poster)

def run_in_experiment(self: GenerateForm, req: VideoRequest) -> dict[str, Any]:
    """A sweep of one, so the run is logged like any other; progress drives the status line."""
    from ..errors import RunFailedError
    from ..plan import Plan

    assert self.experiment is not None
    exp = self.experiment
    order = ("planned", "submitting", "queued", "dispatching", "running")

    def on_progress(progress: Any) -> None:
        live = [s for s, n in progress.counts.items() if n > 0]
        active = [s for s in order if s in live]
        if active:
            self._set_phase(active[-1])

    plan = Plan([req])
    before = exp.store.find_run(experiment=exp.name, run_key=plan[0].run_key())
    if before is None:  # the same request made another way (e.g. a re-run, whose key names its parent)
        plan, before = _held_instead(exp, plan)
        if before is not None and before.get("status") == "succeeded" and display.has_video(before):
            self.reused = True
            return before
    self.reused = bool(before and before.get("status") == "succeeded" and display.has_video(before))
    handle = exp.run(plan, concurrency=1, progress=on_progress, background=True)
    while not handle.done:
        if self._cancel.wait(0.1):
            handle.cancel()  # nothing more is submitted; a run in flight is still recorded
            seen = exp.store.find_run(experiment=exp.name, run_key=plan[0].run_key()) or {}
            if seen.get("remote_id"):
                raise Canceled(f"canceled: run_id {seen.get('run_id')} was already submitted; it keeps running "
                                "and is recorded in the experiment when it ends (Generate again re-attaches)")
            raise Canceled("canceled before anything was sent")
    handle.wait()
    row = exp.store.find_run(experiment=exp.name, run_key=plan[0].run_key())
    if row is None:  # pragma: no cover - the sweep always writes its row first
        raise RunFailedError("the run was not recorded")
    if row.get("status") != "succeeded":
        reason = row.get("error_message") or row.get("error_code") or row.get("status")
        raise RunFailedError(f"run {row['run_id']} {row.get('status')}: {reason}")
    return row


def _held_instead(exp: Any, plan: Any) -> tuple[Any, dict[str, Any] | None]:
    """The plan of the held run that asks for what ``plan``'s one request asks for, with that run
    (see :mod:`runflow_nb.followups.reuse`); ``plan`` and None when the experiment has none."""
    from ..followups.rebuild import request_for
    from ..followups.reuse import content_key, held_by_content
    from ..plan import Plan

    key = content_key(plan[0])
    match = held_by_content(exp.store, exp.name).get(key) if key is not None else None
    if match is None:
        return plan, None
    if match.get("status") == "succeeded":
        return plan, match
    try:  # in flight or unknown: resumed under its own key, as any sweep resumes it
        return Plan([request_for(match, store=exp.store, artifacts_root=exp.artifacts)]), match
    except RunflowError:
        return plan, None


def _html_output(markup: str, text: str) -> dict[str, Any]:
    """An Output widget entry; rendered by JupyterLab's rendermime, which resolves relative URLs."""
    return {"output_type": "display_data", "data": {"text/html": markup, "text/plain": text}, "metadata": {}}


def work(self: GenerateForm, req: VideoRequest) -> None:
    """Run ``req`` for the form (on its worker thread) and show the outcome: the clip, or why not."""
    stop = threading.Event()
    ticker = threading.Thread(target=self._tick, args=(stop,), name="runflow_nb-form-timer", daemon=True)
    ticker.start()
    try:
        if self.experiment is not None:
            row = run_in_experiment(self, req)
            self.result = row
            markup = row_result_html(row)
            src = str(row.get("video_path") or "")
        else:
            result = run_with_client(self, req)
            self.result = result
            markup = display.result_html(result)
            src = str(result.video_path or "")
        self.output.outputs = (_html_output(markup, f"video {src}"),)
        self.saved.update(self._saved_body())
        if self.reused and isinstance(self.result, dict):
            final = (f"reused the stored clip (run_id {self.result.get('run_id')}): the inputs are identical "
                     "to a finished run, so nothing was sent or paid")
        else:
            final = f"succeeded in {time.monotonic() - self._t0:.1f} s"
        notice = (self.result.get("note") if isinstance(self.result, dict)
                  else " · ".join(self.result.run.notices))
        if notice:  # e.g. a reference the server could not fetch, replaced by a placeholder
            final += f" — ⚠ {notice}"
        style = "color:#b45309" if notice else "color:#15803d"
    except Canceled as exc:
        self.error = None
        final = str(exc)
        style = "color:#b45309"
    except Exception as exc:  # shown beside the button; the kernel stays usable
        self.error = exc
        final = f"failed: {exc}"
        style = "color:#b91c1c"
    finally:
        stop.set()
    with self._status_lock:
        self._phase = final
        self.status.value = f'<span style="{style}">{html.escape(final).replace("$", "&#36;")}</span>'
    self._busy = False
    self.cancel_button.layout.display = "none"
    self.generate_button.disabled = self.request is None


# -- how long a run takes: the form's ETA -------------------------------------------------------------

def _kind(model: Any, duration: Any, resolution: Any) -> tuple[Any, ...]:
    return (str(model), None if duration is None or duration != duration else int(duration), str(resolution))


def remember_wall(walls: dict[tuple[Any, ...], list[float]], result: Any) -> None:
    """Keep a finished run's wall time (a Result or a stored row) in ``walls``, by model, duration
    and resolution, for the next run's ETA."""
    if result is None:
        return
    get = result.get if isinstance(result, dict) else (lambda k: getattr(result, k, None))
    req = getattr(result, "request", None)
    wall = get("wall_s")
    if not isinstance(wall, (int, float)) or wall != wall or wall <= 0:
        return
    model = get("model") or getattr(getattr(req, "spec", None), "model", None)
    kind = _kind(model, get("duration") or getattr(req, "duration", None),
                 get("resolution") or getattr(req, "resolution", None))
    walls.setdefault(kind, []).append(float(wall))


def typical_wall_s(walls: dict[tuple[Any, ...], list[float]], experiment: Any, req: Any) -> float | None:
    """The median wall time of earlier runs like ``req`` (same model, duration and resolution): the
    form's own (``walls``) and the experiment's stored ones. None before the first."""
    import statistics

    kind = _kind(req.spec.model, req.duration, req.resolution)
    seen = list(walls.get(kind, []))
    if experiment is not None:
        with contextlib.suppress(Exception):  # an ETA is a nicety: no store trouble stops a run here
            df = experiment.store.table(experiment.name, status="succeeded")
            for rec in df.to_dict("records"):
                wall = rec.get("wall_s")
                if isinstance(wall, (int, float)) and wall == wall and wall > 0 and _kind(
                        rec.get("model"), rec.get("duration"), rec.get("resolution")) == kind:
                    seen.append(float(wall))
    return statistics.median(seen) if seen else None


def eta_text(elapsed: float, expected: float | None) -> str:
    """What the status line says about the time left."""
    if expected is None:
        return "ETA after the first run"
    if elapsed < expected:
        return f"ETA ~{expected - elapsed:.0f} s (runs like this took ~{expected:.0f} s)"
    return f"longer than usual (~{expected:.0f} s)"
