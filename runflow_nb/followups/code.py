"""The Python that rebuilds a request in a fresh kernel: what goes in a paper's appendix.

>>> import runflow_nb as rf
>>> print(request_code(rf.VideoRequest.build(model="t2v", prompt="a horse", duration=3,
...                                          resolution="720p", seed=7)))
import runflow_nb as rf
<BLANKLINE>
request = rf.VideoRequest.build(
    model='t2v',
    prompt='a horse',
    aspect_ratio='16:9',
    duration=3,
    resolution='720p',
    seed=7,
)
<BLANKLINE>

Local files are named by path, relative to the working folder (the notebook's folder) when they
are within reach of it; no key and no setting is ever written. Building the snippet's request
gives the same ``run_key()`` as the request it was made from.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import Issue, ValidationError
from .rebuild import local_display

if TYPE_CHECKING:
    from ..request import Reference, VideoRequest

__all__ = ["request_code"]


def request_code(request: VideoRequest, *, here: Path | None = None) -> str:
    """A runnable snippet binding ``request`` to a request equal to ``request``."""
    spec = request.spec
    lines = ["import runflow_nb as rf", "", "request = rf.VideoRequest.build(", f"    model={spec.alias!r},"]
    if request.prompt is not None:
        lines.append(f"    prompt={request.prompt!r},")
    if spec.has_images and request.images:
        names = [_name(ref, here) for ref in request.images]
        if spec.images.single:
            lines.append(f"    image={names[0]!r},")
        else:
            lines.append(f"    images=[{', '.join(repr(n) for n in names)}],")
    extra: list[str] = []
    video = request.video
    if video is not None:
        if video.kind == "path" and video.path is not None:
            lines.append(f"    video={local_display(video.path, here=here)!r},")
        else:
            lines.append(f"    video={video.display!r},")
            if video.duration_s is not None:
                lines.append(f"    video_duration_s={video.duration_s!r},")
            import hashlib

            if video.sha256 != hashlib.sha256(video.display.encode()).hexdigest():
                # the URL stands in for a stored clip: the run key names the clip's own bytes
                extra = [f"request = dataclasses.replace(request, video=dataclasses.replace("
                         f"request.video, sha256={video.sha256!r}))"]
    lines += [f"    {name}={value!r}," for name, value in request.params().items()]
    if request.parent_run_id is not None:
        lines.append(f"    parent_run_id={request.parent_run_id!r},")
    lines.append(")")
    head = ["import dataclasses"] if extra else []
    return "\n".join([*head, *lines, *extra]) + "\n"


def _name(ref: Reference, here: Path | None) -> str:
    if ref.kind == "url":
        return ref.display
    if ref.kind == "path":
        return local_display(ref.display, here=here)
    raise ValidationError([Issue("images", f"reference {ref.display} is an image in memory, not a file",
                                 "save it to a file and build the request from that path")])
