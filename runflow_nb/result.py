"""The result of :meth:`Client.generate <runflow_nb.client.Client.generate>`: the local video, its
seed, timing and cost, probed and with a poster frame."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .request import VideoRequest
from .runs import Run

__all__ = ["Result", "probe_result"]


@dataclass
class Result:
    """A finished generation: the local video, its seed, timing and cost.

    ``simulated`` is True for clips from the offline simulator (their cost is an estimate of what
    the real model would charge, not money spent).

    >>> result = rf.Client().generate(prompt="character1 trots", images=["horse.png"])  # doctest: +SKIP
    >>> result.video_path, result.seed, result.cost_usd, result.simulated                # doctest: +SKIP
    (PosixPath('.../0190....mp4'), 1234, 0.7, True)
    """

    run: Run
    request: VideoRequest
    video_path: Path | None
    video_sha256: str | None
    size_bytes: int | None
    seed: int | None
    submitted_at: datetime
    completed_at: datetime
    wall_s: float
    queue_s: float | None
    inference_ms: float | None
    cost_usd: float | None
    cost_estimate_usd: float
    backend: str
    nsfw_detected: bool | None = None
    poster_path: Path | None = None
    probe: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    qa: str | None = None  # clip QA: "ok" or the findings (runflow_nb.qa); None before the video is checked

    @property
    def simulated(self) -> bool:
        return self.backend == "simulator"

    def __repr__(self) -> str:
        sim = " SIMULATED" if self.simulated else ""
        cost = f"${self.cost_usd:.2f}" if self.cost_usd is not None else "n/a"
        return (f"<Result{sim} {self.run.id} seed={self.seed} wall={self.wall_s:.1f}s cost={cost} "
                f"video={str(self.video_path)!r}>")

    def _repr_html_(self) -> str:
        from .views.display import result_html

        return result_html(self)


def probe_result(result: Result) -> Result:
    """Probe the downloaded video (a bad file raises DownloadError), write its poster frame and
    check it (``result.qa``)."""
    if result.video_path is not None:
        from .media.probe import describe

        result.probe, result.poster_path = describe(result.video_path)
        from .qa.check import run_qa

        req = result.request
        asked = {"model": req.model, "duration": req.duration, "resolution": req.resolution,
                 "aspect_ratio": req.aspect_ratio}
        result.qa = run_qa(result.video_path, asked, nsfw_detected=result.nsfw_detected)["qa"]
    return result
