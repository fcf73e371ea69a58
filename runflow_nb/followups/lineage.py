"""Follow-up steps on a finished clip: the video-edit request for a stored run, with its lineage.

:meth:`Experiment.edit <runflow_nb.experiment.Experiment.edit>` is the public entry point; this
module turns "that run" (a run id, a table row, a stored record or a :class:`~runflow_nb.client.Result`)
into a validated video-edit :class:`~runflow_nb.request.VideoRequest`:

* the clip is the run's stored file when it is on this machine and within the 50 MiB asset-upload
  cap (uploaded by the client), else the run's output URL (the service fetches it; up to 100 MB);
* the clip's identity in the run key is the parent's stored ``video_sha256`` either way, and the
  parent's run id is part of the key, so editing the same run the same way again is the same run
  (a re-run reuses it; nothing is paid twice);
* unset ``seed`` and ``resolution`` follow the parent, so an edit is reproducible by default.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Issue, ValidationError
from ..media.video_input import VideoSource, load_video
from ..specs import VIDEO_EDIT

if TYPE_CHECKING:
    from ..request import VideoRequest
    from ..store.runstore import Store

__all__ = ["edit_request", "parent_row"]


def parent_row(run: Any, store: Store) -> dict[str, Any]:
    """The stored record of ``run``: a local run id, a remote run id, a table row or a record."""
    run_id: Any = None
    if isinstance(run, str):
        run_id = run
    elif isinstance(run, Mapping) or hasattr(run, "get"):
        run_id = run.get("run_id")
    elif hasattr(run, "run") and hasattr(run, "video_path"):  # a Result from Client.generate
        return _result_row(run)
    row = store.get_run(str(run_id)) if run_id else None
    if row is None and isinstance(run, str):
        matches = [r for r in _by_remote_id(store, run)]
        row = matches[0] if matches else None
    if row is None:
        raise ValidationError([Issue("run", f"no stored run {str(run_id or run)[:80]!r}",
                                     "pass a run_id from exp.table(), a table row, or a Result")])
    return row


def _by_remote_id(store: Store, remote_id: str) -> list[dict[str, Any]]:
    return store.runs(where={"remote_id": remote_id})


def _result_row(result: Any) -> dict[str, Any]:
    req = result.request
    return {"run_id": result.run.id, "status": "succeeded", "video_path": str(result.video_path or "") or None,
            "output_url": result.run.output.video_url if result.run.output else None,
            "video_sha256": result.video_sha256, "video_duration": result.probe.duration if result.probe else None,
            "seed": result.seed, "seed_returned": result.seed, "resolution": req.resolution}


def edit_request(parent: Mapping[str, Any], *, prompt: Any, references: Any = None, audio_setting: Any = None,
                 resolution: Any = None, seed: Any = None, base: str | os.PathLike[str] | None = None
                 ) -> VideoRequest:
    """The video-edit request that edits ``parent``'s clip (see the module docstring)."""
    from ..request import VideoRequest

    rules = VIDEO_EDIT.video
    assert rules is not None
    if parent.get("status") != "succeeded":
        raise ValidationError([Issue("run", f"run {parent.get('run_id')} is {parent.get('status')}, not succeeded",
                                     "edit a run that finished with a video")])
    source = _source(parent, base=base)
    if isinstance(source, list):
        raise ValidationError(source)
    if seed is None:
        seed = parent.get("seed_returned") if parent.get("seed_returned") is not None else parent.get("seed")
    if resolution is None and parent.get("resolution") in ("720p", "1080p"):
        resolution = parent.get("resolution")
    return VideoRequest.build(model=VIDEO_EDIT, prompt=prompt, images=references, video=source,
                              audio_setting=audio_setting, resolution=resolution, seed=seed,
                              parent_run_id=str(parent["run_id"]))


def _source(parent: Mapping[str, Any], *, base: str | os.PathLike[str] | None) -> VideoSource | list[Issue]:
    """The parent's clip: its local file when it can be uploaded, else its output URL."""
    rules = VIDEO_EDIT.video
    assert rules is not None
    sha = parent.get("video_sha256")
    duration = parent.get("video_duration")
    path = _local_file(parent.get("video_path"), base=base)
    problems: list[Issue] = []
    if path is not None:
        got = load_video(path, rules=rules)
        if isinstance(got, VideoSource):
            return VideoSource(got.kind, got.display, sha or got.sha256, got.path, got.size_bytes, got.duration_s,
                               got.format, got.width, got.height, got.has_audio)
        problems = got
    url = parent.get("output_url")
    if isinstance(url, str) and url.lower().startswith(("http://", "https://")):
        got = load_video(url, rules=rules, duration_s=float(duration) if duration is not None else None)
        if isinstance(got, list):
            return got
        return VideoSource("url", got.display, sha or hashlib.sha256(url.encode()).hexdigest(),
                           duration_s=got.duration_s)
    if problems:
        return problems
    return [Issue("run", f"run {parent.get('run_id')} has no video file here and no output URL",
                  "re-run it (its clip is missing), or pass video= to a video-edit request yourself")]


def _local_file(video_path: Any, *, base: str | os.PathLike[str] | None) -> Path | None:
    if not video_path or "://" in str(video_path):
        return None
    path = Path(str(video_path))
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path if path.is_file() else None
