"""Re-runs of a stored run: the same request with some inputs changed, a sweep around one clip,
and the upscale (the same seed and inputs at the model's highest resolution).

Every new request names the run it came from as its ``parent_run_id``, which is part of its run
key: re-running the same run the same way again is the same run (the sweep reuses it, nothing is
paid twice), and the table's ``parent_run_id``/``changes`` columns read the lineage back. A change
that changes nothing (the run's own seed, its own resolution) is the run itself: no new run.

>>> from runflow_nb import VideoRequest
>>> base = VideoRequest.build(model="t2v", prompt="a horse", duration=3, resolution="720p", seed=1)
>>> [r and r.seed for r in rerun_requests(base, "run1", {"seed": range(3)})]
[0, None, 2]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import Issue, ValidationError
from ..specs import get_spec

if TYPE_CHECKING:
    from ..request import VideoRequest

__all__ = ["CHANGEABLE", "highest_resolution", "rerun_requests"]

CHANGEABLE = ("seed", "duration", "prompt", "aspect_ratio", "resolution", "references", "model",
              "audio_setting", "enable_safety_checker")
"""The inputs :meth:`Experiment.rerun <runflow_nb.experiment.Experiment.rerun>` can change."""

_ALIASES = {"images": "references", "image": "references", "seeds": "seed"}


def rerun_requests(base: VideoRequest, run_id: str, changes: Mapping[str, Any]) -> list[VideoRequest | None]:
    """One request per seed of ``changes`` (one, unless ``seed`` is a range or a list): ``base``
    with ``changes`` applied and ``parent_run_id=run_id``; None where nothing changed (the run itself).

    Changing ``model`` carries over the inputs the new model takes (the first reference for
    image-to-video, none for text-to-video; the clip stays with video-edit)."""
    named = {_ALIASES.get(k, k): v for k, v in changes.items()}
    unknown = [k for k in named if k not in CHANGEABLE]
    if unknown:
        raise ValidationError([Issue(k, "cannot be changed in a re-run", f"change one of {', '.join(CHANGEABLE)}")
                               for k in unknown])
    seeds = named.pop("seed", base.seed)
    many = isinstance(seeds, Iterable) and not isinstance(seeds, (str, bytes, Mapping))
    seed_list = list(seeds) if many else [seeds]
    if many and not seed_list:
        raise ValidationError([Issue("seed", "is empty", "give at least one seed, e.g. seed=range(8)")])
    template = _changed(base, named, parent=run_id)
    out: list[VideoRequest | None] = []
    for seed in seed_list:
        req = template if seed is None else template.with_seed(seed)
        out.append(None if _same(req, base) else req)
    return out


def _changed(base: VideoRequest, named: Mapping[str, Any], *, parent: str) -> VideoRequest:
    from ..request import VideoRequest

    spec = get_spec(named["model"]) if named.get("model") is not None else base.spec
    images: Any = list(named["references"]) if _is_list(named.get("references")) else named.get("references")
    if images is None and "references" not in named:
        images = list(base.images) or None
    if spec.has_images and spec.images.single and isinstance(images, list):
        images = images[:1]
    inputs: dict[str, Any] = {"prompt": named.get("prompt", base.prompt)}
    for name in ("aspect_ratio", "duration", "resolution", "audio_setting", "enable_safety_checker"):
        value = named.get(name, getattr(base, name))
        if spec.takes(name) and value is not None:
            inputs[name] = value
        elif name in named and value is not None:
            inputs[name] = value  # asked for explicitly: build() refuses it by name, with the fix
    if not spec.has_images and "references" not in named:
        images = None
    video = base.video if spec.video is not None else None
    return VideoRequest.build(model=spec, images=images, video=video, seed=None, parent_run_id=parent, **inputs)


def _same(req: VideoRequest, base: VideoRequest) -> bool:
    """True when ``req`` asks for exactly what ``base`` asked for (lineage aside)."""
    return replace(req, parent_run_id=base.parent_run_id).run_key() == base.run_key()


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def highest_resolution(model: str) -> str:
    """The model's highest resolution (the last of its documented choices: ``"1080p"``)."""
    field = get_spec(model).field("resolution")
    assert field.choices is not None
    return str(max(field.choices, key=lambda r: int(str(r).rstrip("p"))))
