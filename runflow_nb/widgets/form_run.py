"""The two ways :class:`~runflow_nb.widgets.form.GenerateForm` runs a request: with its client
(submit, follow the events, download) or as a sweep of one in its experiment (logged like any run).
Both report their phase to the form's status line and honour its Cancel button."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import display
from ..errors import RunflowError

if TYPE_CHECKING:
    from ..client import Result
    from ..request import VideoRequest
    from .form import GenerateForm

__all__ = ["Canceled", "run_in_experiment", "run_with_client"]


class Canceled(Exception):
    """The user pressed Cancel (the message says what happened to the run)."""


def run_with_client(self: GenerateForm, req: VideoRequest) -> Result:
    """submit → events (status changes) → download: the generate flow, observable."""
    from .. import media
    from ..client import Result, safe_name
    from ..errors import RunFailedError

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
