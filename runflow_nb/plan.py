"""Sweep plans: a grid or an explicit list of requests, validated and priced before anything runs.

>>> import runflow_nb as rf
>>> plan = rf.grid(prompt="character1 gallops", images=[["horse.png"]], seed=range(8),
...                duration=[5, 8], resolution="720p")             # doctest: +SKIP
>>> plan.estimate()                                                # doctest: +SKIP
Estimate(runs=16, video_seconds=104, usd=14.56)
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import Issue, ValidationError
from .request import Reference, VideoRequest, _is_sequence, load_reference
from .specs import REFERENCE_TO_VIDEO, ModelSpec

__all__ = ["Estimate", "Plan", "grid"]


@dataclass(frozen=True)
class Estimate:
    """What a plan will cost before it runs (published price table)."""

    runs: int
    video_seconds: int
    usd: float
    by_resolution: dict[str, float]

    def __repr__(self) -> str:
        return f"Estimate(runs={self.runs}, video_seconds={self.video_seconds}, usd={self.usd:.2f})"

    def __str__(self) -> str:
        parts = ", ".join(f"{k}: ${v:.2f}" for k, v in sorted(self.by_resolution.items()))
        return (f"{self.runs} runs, {self.video_seconds} s of video, estimated ${self.usd:.2f}"
                + (f" ({parts})" if parts else ""))

    def _repr_html_(self) -> str:
        import html

        return f"<p><b>Plan estimate:</b> {html.escape(str(self))}</p>"


class Plan(Sequence[VideoRequest]):
    """An ordered list of validated requests, every one with a concrete seed."""

    def __init__(self, requests: Iterable[VideoRequest | Mapping[str, Any]], *,
                 spec: ModelSpec = REFERENCE_TO_VIDEO, seed_rng: random.Random | None = None) -> None:
        rng = seed_rng or random.SystemRandom()
        built: list[VideoRequest] = []
        issues: list[Issue] = []
        ref_cache: dict[int, list[Reference]] = {}
        for i, item in enumerate(requests):
            try:
                req = item if isinstance(item, VideoRequest) else _build(item, spec, ref_cache)
            except ValidationError as exc:
                issues += [Issue(f"plan[{i}].{x.field}", x.message, x.fix) for x in exc.issues]
                continue
            built.append(req if req.seed is not None else req.with_seed(rng.randrange(0, 2**31)))
        if issues:
            raise ValidationError(issues)
        self._requests = built

    def __len__(self) -> int:
        return len(self._requests)

    def __getitem__(self, i: Any) -> Any:
        return self._requests[i]

    def __iter__(self) -> Iterator[VideoRequest]:
        return iter(self._requests)

    def estimate(self) -> Estimate:
        by_res: dict[str, float] = {}
        for r in self._requests:
            by_res[r.resolution] = round(by_res.get(r.resolution, 0.0) + r.estimate_usd(), 2)
        return Estimate(runs=len(self), video_seconds=sum(r.duration for r in self._requests),
                        usd=round(sum(by_res.values()), 2), by_resolution=by_res)

    def keys(self) -> list[str]:
        return [r.run_key() for r in self._requests]

    def table(self) -> Any:
        """The plan as a DataFrame (one row a run), to look at before paying."""
        import pandas as pd

        return pd.DataFrame([{"prompt": r.prompt, "images": r.image_displays(), **r.params(),
                              "estimate_usd": r.estimate_usd(), "run_key": r.run_key()[:16]} for r in self])

    def __repr__(self) -> str:
        return f"<Plan {self.estimate()}>"


def _build(item: Mapping[str, Any], spec: ModelSpec, cache: dict[int, list[Reference]]) -> VideoRequest:
    values = dict(item)
    images = values.pop("images", values.pop("image_urls", None))
    # Load each distinct image list once: a 24-run sweep over the same references reads them once.
    if images is not None and _is_sequence(images):
        key = id(images)
        if key not in cache:
            loaded: list[Any] = []
            for j, obj in enumerate(images):
                got = load_reference(obj, index=j, spec=spec)
                loaded.append(obj if isinstance(got, list) else got)  # bad ones re-fail with their message
            cache[key] = loaded
        images = cache[key]
    return VideoRequest.build(images=images, spec=spec, **values)


def grid(*, prompt: str | Sequence[str], images: Any, seed: int | Iterable[int] | None = None,
         duration: int | Iterable[int] | None = None, resolution: str | Iterable[str] | None = None,
         aspect_ratio: str | Iterable[str] | None = None,
         enable_safety_checker: bool | Iterable[bool] | None = None,
         spec: ModelSpec = REFERENCE_TO_VIDEO) -> Plan:
    """Every combination of the given values (a single value counts as a list of one).

    ``images`` is one list of references, or a list of such lists to sweep over image sets.
    With no ``seed``, each run gets a random seed drawn now and recorded.
    """
    image_sets = _image_sets(images)
    axes: dict[str, list[Any]] = {
        "prompt": _axis(prompt),
        "images": image_sets,
        "seed": _axis(seed),
        "duration": _axis(duration),
        "resolution": _axis(resolution),
        "aspect_ratio": _axis(aspect_ratio),
        "enable_safety_checker": _axis(enable_safety_checker),
    }
    names = list(axes)
    combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*axes.values())]
    return Plan(combos, spec=spec)


def _axis(value: Any) -> list[Any]:
    if value is None:
        return [None]
    if isinstance(value, (str, bytes, bool, int)) or not isinstance(value, Iterable):
        return [value]
    values = list(value)
    return values


def _image_sets(images: Any) -> list[Any]:
    if not _is_sequence(images):
        return [[images]]
    items = list(images)
    if items and all(_is_sequence(x) for x in items):
        return items
    return [items]
