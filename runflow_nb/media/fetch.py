"""The video of a billed run: fetched, checked, described and committed to the artifacts store.

Used by the sweep (:mod:`runflow_nb.sweep.runner`): :meth:`VideoFetcher.check_writable` runs before
anything is paid, :meth:`VideoFetcher.download` stores the video of a run that succeeded, and
:meth:`VideoFetcher.ensure` fetches again a reused run's video whose file went missing.
Partial downloads left by a killed process are removed before a new download of the same file.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..client import AsyncClient, safe_name
from ..errors import DownloadError, ExpiredURLError, NetworkError
from ..runs import Output, Run
from .artifacts import Artifacts

__all__ = ["VideoFetcher"]


class VideoFetcher:
    """Downloads for one experiment's runs; ``update(run_id, **fields)`` writes the store row and
    ``note(text)`` tells the sweep's caller."""

    def __init__(self, *, client: AsyncClient, artifacts: Artifacts, experiment: str,
                 update: Callable[..., Awaitable[Any]], note: Callable[[str], None], started_wall: float) -> None:
        self.client = client
        self.artifacts = artifacts
        self.experiment = experiment
        self.update = update
        self.note = note
        self.started_wall = started_wall

    def check_writable(self) -> None:
        """A folder the videos cannot be written to (or a bad clip QA threshold (``RUNFLOW_QA_FROZEN_MIN_S``, ...)) is found
        now, not after the runs were paid."""
        from ..settings import qa_thresholds

        qa_thresholds()
        self.artifacts.check_writable(safe_name(self.experiment))

    async def download(self, row: dict[str, Any], run: Run, final: str = "succeeded") -> str | None:
        """Fetch ``run``'s video, probe it, check it (clip QA, :mod:`runflow_nb.qa`), make its poster
        and record all of it in the run's row; returns the clip's ``qa`` text."""
        rel = f"{safe_name(self.experiment)}/{safe_name(row['run_id'])}.mp4"
        dest = self.artifacts.local_tmp(rel)  # local target: the final path; shared storage: a temp file
        _remove_stale_parts(dest, older_than=self.started_wall)
        sha, _size = await self.client.download(run, dest)
        try:
            info = await asyncio.to_thread(_probe_and_poster, dest)
            nsfw = run.output.nsfw_detected if run.output is not None else None
            info.update(await asyncio.to_thread(_clip_qa, dest, row, nsfw))
            info["poster_path"] = await asyncio.to_thread(self.artifacts.commit, info["poster_path"], rel[:-4] + ".jpg")
            video_uri = await asyncio.to_thread(self.artifacts.commit, dest, rel)  # a path, or s3://...
        except OSError as exc:
            raise DownloadError(f"could not store the video: {exc}") from exc
        submitted = row.get("submitted_at")
        wall = (datetime.now(timezone.utc) - submitted).total_seconds() if isinstance(submitted, datetime) else None
        await self.update(row["run_id"], status=final, video_path=video_uri, video_sha256=sha,
                          wall_s=wall, error_code=None, error_message=None, **info)
        return info.get("qa")

    async def ensure(self, row: dict[str, Any]) -> None:
        """A succeeded run whose file went missing is fetched again while its URL still works."""
        path = row.get("video_path")
        try:
            if path and await asyncio.to_thread(self.artifacts.exists, path):
                return
        except Exception as exc:  # shared storage unreachable: leave the run as it is
            self.note(f"{row['run_id']}: cannot check its video {path}: {exc}")
            return
        if not row.get("output_url"):
            return
        run = Run(id=row.get("remote_id") or row["run_id"], status="succeeded",
                  output=Output(video_url=row["output_url"]))
        try:
            await self.download(row, run, row.get("status") or "succeeded")
        except ExpiredURLError as exc:
            self.note(f"{row['run_id']}: video file missing and {exc}")
            await self.update(row["run_id"], error_code="ARTIFACT_MISSING", error_message=str(exc))
        except (DownloadError, NetworkError) as exc:
            self.note(f"{row['run_id']}: video file missing; re-download failed: {exc}")


def _remove_stale_parts(dest: Path, *, older_than: float) -> None:
    """Partial downloads of this file left by a killed process (older than this sweep) are removed."""
    for part in dest.parent.glob(f".{dest.name}.*.part"):
        with contextlib.suppress(OSError):
            if part.stat().st_mtime < older_than:
                part.unlink()


def _clip_qa(path: Path, row: dict[str, Any], nsfw: bool | None) -> dict[str, Any]:
    """The clip QA columns of a downloaded clip (a QA that cannot run never loses the clip)."""
    from ..qa.check import run_qa

    try:
        return run_qa(path, row, nsfw_detected=nsfw)
    except Exception as exc:  # a bad threshold setting or a PyAV surprise: the clip stays, unchecked
        return {"qa": f"not checked ({type(exc).__name__}: {str(exc)[:200]})"}


def _probe_and_poster(path: Path) -> dict[str, Any]:
    from .probe import describe

    info, poster = describe(path)
    return {"width": info.width, "height": info.height, "video_duration": info.duration,
            "has_audio": info.has_audio, "poster_path": str(poster)}
