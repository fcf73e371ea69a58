"""Sweep plans: a grid or an explicit list of requests, validated and priced before anything runs.

>>> import runflow_nb as rf
>>> plan = rf.grid(prompt="character1 gallops", images=[["horse.png"]], seed=range(8),
...                duration=[5, 8], resolution="720p")             # doctest: +SKIP
>>> plan.estimate()                                                # doctest: +SKIP
Estimate(runs=16, video_seconds=104, usd=14.56)

Across the family, ``model`` is one more axis, and each parameter goes only to the models that
take it: the references to reference-to-video, the first reference to image-to-video (as its
``image_url``), nothing to text-to-video; ``aspect_ratio`` to r2v and t2v (i2v keeps the image's
shape), ``duration`` to all three, ``video``/``audio_setting`` to video-edit:

>>> plan = rf.grid(model=["t2v", "i2v", "r2v"], prompt="a horse trots", images=["horse.png"],
...                seed=[1, 2], duration=3, resolution="720p")         # doctest: +SKIP
>>> plan.estimate().by_model                                        # doctest: +SKIP
{'text-to-video': 0.84, 'image-to-video': 0.84, 'reference-to-video': 0.84}
"""

from __future__ import annotations

import itertools
import math
import random
import reprlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._boundary import public
from .errors import Issue, ValidationError
from .request import Reference, VideoRequest, _is_sequence, load_reference
from .specs import REFERENCE_TO_VIDEO, ModelSpec, get_spec

__all__ = ["Estimate", "Plan", "balanced_order", "grid"]


@dataclass(frozen=True)
class Estimate:
    """What a plan will cost before it runs (published price table)."""

    runs: int
    video_seconds: int
    usd: float
    by_resolution: dict[str, float]
    by_model: dict[str, float] = field(default_factory=dict)  # variant (e.g. "text-to-video") → USD
    duplicates: int = 0  # repeated requests dropped from the plan (each runs and is priced once)

    def __repr__(self) -> str:
        return f"Estimate(runs={self.runs}, video_seconds={self.video_seconds}, usd={self.usd:.2f})"

    def __str__(self) -> str:
        groups = self.by_model if len(self.by_model) > 1 else self.by_resolution
        parts = ", ".join(f"{k}: ${v:.2f}" for k, v in sorted(groups.items()))
        dup = (f"; {self.duplicates} repeated request{'s' if self.duplicates != 1 else ''} counted once"
               if self.duplicates else "")
        return (f"{self.runs} runs, {self.video_seconds} s of video, estimated ${self.usd:.2f}"
                + (f" ({parts})" if parts else "") + dup)

    def _repr_html_(self) -> str:
        from .views import html as _html

        return _html.block(f"<b>Plan estimate:</b> {_html.text(self)}", tag="p")


_HTML_ROWS = 20  # runs a plan's HTML view lists before "… and N more"

#: The most runs one plan may hold (a mistyped range such as ``seed=range(10**9)`` is refused, not built).
MAX_PLAN_RUNS = 10_000


class Plan(Sequence[VideoRequest]):
    """An ordered list of validated requests, every one with a concrete seed."""

    @public
    def __init__(self, requests: Iterable[VideoRequest | Mapping[str, Any]], *,
                 spec: ModelSpec = REFERENCE_TO_VIDEO, seed_rng: random.Random | None = None) -> None:
        if isinstance(requests, (str, bytes, Mapping)) or not isinstance(requests, Iterable):
            one = " (for one request, wrap it in a list: [{...}])" if isinstance(requests, Mapping) else ""
            raise ValidationError([Issue("plan", f"is {reprlib.repr(requests)}, not a list of requests{one}",
                                         "use rf.grid(...), or a list of dicts such as "
                                         "[{'prompt': ..., 'images': [...]}]")])
        if not isinstance(spec, ModelSpec):
            raise ValidationError([Issue("spec", f"is {spec!r}, not a model spec",
                                         "name the model in each request with model=")])
        if seed_rng is not None and not isinstance(seed_rng, random.Random):
            raise ValidationError([Issue("seed_rng", f"is {type(seed_rng).__name__}", "use random.Random(n), or None")])
        rng = seed_rng or random.SystemRandom()
        built: list[VideoRequest] = []
        issues: list[Issue] = []
        ref_cache: dict[tuple[Any, ...], Reference] = {}
        seen: set[str] = set()
        self.duplicates = 0  # requests given more than once (same inputs and seed): run and priced once
        for i, item in enumerate(requests):
            if i >= MAX_PLAN_RUNS:
                raise ValidationError([Issue("plan", f"holds more than {MAX_PLAN_RUNS:,} requests",
                                             "split the study into several plans")])
            if not isinstance(item, (VideoRequest, Mapping)):
                issues.append(Issue(f"plan[{i}]", f"is {reprlib.repr(item)}, not a request",
                                    "give each request as a dict of inputs, or a VideoRequest"))
                continue
            try:
                req = item if isinstance(item, VideoRequest) else _build(item, spec, ref_cache)
            except ValidationError as exc:
                issues += [Issue(f"plan[{i}].{x.field}", x.message, x.fix) for x in exc.issues]
                continue
            req = req if req.seed is not None else req.with_seed(rng.randrange(0, 2**31))
            key = req.run_key()
            if key in seen:
                self.duplicates += 1
                continue
            seen.add(key)
            built.append(req)
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
        """The plan's price from the published tables: each run at its own model's rate."""
        by_res: dict[str, float] = {}
        by_model: dict[str, float] = {}
        for r in self._requests:
            res = r.resolution or "?"
            by_res[res] = round(by_res.get(res, 0.0) + r.estimate_usd(), 2)
            variant = r.spec.variant
            by_model[variant] = round(by_model.get(variant, 0.0) + r.estimate_usd(), 2)
        return Estimate(runs=len(self), video_seconds=sum(r.billed_seconds for r in self._requests),
                        usd=round(sum(by_res.values()), 2), by_resolution=by_res, by_model=by_model,
                        duplicates=self.duplicates)

    def keys(self) -> list[str]:
        return [r.run_key() for r in self._requests]

    def table(self) -> Any:
        """The plan as a DataFrame (one row a run), to look at before paying."""
        import pandas as pd

        return pd.DataFrame([{"model": r.spec.variant, "prompt": r.prompt, "images": r.image_displays(),
                              **r.params(), "estimate_usd": r.estimate_usd(), "run_key": r.run_key()[:16]}
                             for r in self])

    def __repr__(self) -> str:
        return f"<Plan {self.estimate()}>"

    def _repr_html_(self) -> str:
        """The estimate and the first runs as a table (user text escaped, money safe from MathJax)."""
        from .views import html as _html

        shown = self._requests[:_HTML_ROWS]
        params: list[str] = []
        for r in shown:
            params += [k for k in r.params() if k not in params]
        head = "".join(f"<th>{_html.text(c)}</th>" for c in ("model", "prompt", *params, "estimate"))
        rows = []
        for r in shown:
            values = r.params()
            prompt = r.prompt or ""
            prompt = prompt if len(prompt) <= 80 else prompt[:79] + "…"
            cells = [_html.text(r.spec.variant), _html.text(prompt),
                     *(_html.text("" if values.get(k) is None else values[k]) for k in params),
                     _html.money(r.estimate_usd())]
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        more = len(self) - len(shown)
        tail = f"<p>… and {more} more (plan.table() lists them all)</p>" if more > 0 else ""
        return _html.block(f"<p><b>Plan:</b> {_html.text(self.estimate())}</p>"
                           f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{tail}")


def _content_key(obj: Any) -> tuple[Any, ...] | None:
    """What identifies a reference by its *content* (never by object identity: generator rows,
    iterators, ``map`` and NumPy rows reuse ids). None: not cacheable, load it every time."""
    import hashlib
    import os

    if isinstance(obj, (bytes, bytearray, memoryview)):
        return ("bytes", hashlib.sha256(bytes(obj)).hexdigest())
    if isinstance(obj, (str, os.PathLike)):
        text = os.fspath(obj)
        if not isinstance(text, str):
            return None
        try:  # a file edited between two rows of one plan is a different reference
            st = os.stat(text)
            return ("path", text, st.st_size, st.st_mtime_ns, st.st_ino)
        except (OSError, ValueError):
            return ("text", text)
    if type(obj).__module__.startswith("PIL.") and hasattr(obj, "tobytes"):
        try:  # hashing the pixels is far cheaper than encoding them again for every row
            return ("pil", obj.mode, tuple(obj.size), hashlib.sha256(obj.tobytes()).hexdigest())
        except Exception:  # a lazily-loaded image that cannot decode: load_reference says why
            return None
    return None


def _build(item: Mapping[str, Any], spec: ModelSpec, cache: dict[tuple[Any, ...], Reference]) -> VideoRequest:
    values = dict(item)
    if values.get("model") is not None:
        try:
            spec = get_spec(values.pop("model"))
        except KeyError as exc:
            raise ValidationError([Issue("model", str(exc.args[0]), "pick one of the known models")]) from None
    values.pop("model", None)
    images = values.pop("images", values.pop("image_urls", None))
    # Load each distinct reference once (a 24-run sweep over the same files reads them once), keyed
    # by what the reference *is*: a path (with its size and mtime), a URL or the bytes' hash.
    if images is not None and _is_sequence(images):
        loaded: list[Any] = []
        for j, obj in enumerate(list(images)):
            key = _content_key(obj)
            key = None if key is None else (spec.model, *key)  # each model checks images by its own rules
            hit = cache.get(key) if key is not None else None
            if hit is None:
                got = load_reference(obj, index=j, spec=spec)
                if isinstance(got, list):
                    loaded.append(obj)  # re-fails with its message (and the right index) below
                    continue
                hit = got
                if key is not None:
                    cache[key] = got
            loaded.append(hit)
        images = loaded
    return VideoRequest.build(images=images, spec=spec, **values)


def balanced_order(requests: Sequence[VideoRequest]) -> list[int]:
    """An order of ``requests`` whose every prefix is a balanced sample of the study.

    Requests that differ only by seed are one *condition*. Round k takes the k-th seed of every
    condition (so conditions are compared on the same seeds), and within a round conditions come in
    an order chosen greedily so that each prefix spreads evenly over every parameter that varies
    (prompt, images, duration, resolution, ...). A budget that runs out after any run therefore
    leaves every prompt represented, instead of the grid's first prompt only.
    """
    canon = [r.canonical() for r in requests]
    # Models of the family take different inputs: one column per input any request has (absent: None).
    names = sorted({k for c in canon for k in c} - {"seed"})

    def condition(c: dict[str, Any]) -> tuple[Any, ...]:
        return tuple((k, json_key(c.get(k))) for k in names)

    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, c in enumerate(canon):
        groups.setdefault(condition(c), []).append(i)
    conds = list(groups)
    varied = [k for k in range(len(conds[0])) if len({c[k] for c in conds}) > 1] if conds else []
    counts: dict[tuple[int, Any], int] = {}
    order_c: list[tuple[Any, ...]] = []
    left = list(conds)
    if len(left) > 300:  # greedy is quadratic: huge explicit lists keep their order within a round
        order_c, left = left, []
    while left:  # greedy: the condition whose values have been used least so far (ties: plan order)
        best = min(range(len(left)), key=lambda j: (sum(counts.get((k, left[j][k]), 0) for k in varied), j))
        chosen = left.pop(best)
        order_c.append(chosen)
        for k in varied:
            counts[(k, chosen[k])] = counts.get((k, chosen[k]), 0) + 1
    out: list[int] = []
    for rnd in range(max((len(g) for g in groups.values()), default=0)):
        out += [groups[c][rnd] for c in order_c if rnd < len(groups[c])]
    return out


def json_key(value: Any) -> Any:
    """A hashable stand-in for a canonical input value (lists and objects as sorted JSON)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    import json

    return json.dumps(value, sort_keys=True, default=str)


@public
def grid(*, prompt: str | Sequence[str] | None = None, images: Any = None, seed: int | Iterable[int] | None = None,
         duration: int | Iterable[int] | None = None, resolution: str | Iterable[str] | None = None,
         aspect_ratio: str | Iterable[str] | None = None,
         enable_safety_checker: bool | Iterable[bool] | None = None,
         model: str | ModelSpec | Iterable[str | ModelSpec] | None = None, references: Any = None,
         video: Any = None, audio_setting: str | Iterable[str] | None = None,
         spec: ModelSpec = REFERENCE_TO_VIDEO) -> Plan:
    """Every combination of the given values (a single value counts as a list of one).

    ``images`` (or its alias ``references``) is one list of references, or a list of such lists
    to sweep over image sets. ``model`` is a model or a list of them (id, variant or alias:
    ``"r2v"``, ``"t2v"``, ``"i2v"``, ``"edit"``); each parameter applies only to the models that
    take it (see the module docstring), so no model is sent an input it does not have. A
    parameter that no listed model takes is refused. With no ``seed``, each run gets a random
    seed drawn now and recorded.
    """
    if references is not None:
        if images is not None:
            raise ValidationError([Issue("references", "pass either images= or references=, not both",
                                         "keep one of them")])
        images = references
    if not isinstance(spec, ModelSpec):
        raise ValidationError([Issue("spec", f"is {spec!r}, not a model spec", "name the model with model=")])
    specs = _models(model, spec)
    given: dict[str, Any] = {"prompt": prompt, "seed": seed, "duration": duration, "resolution": resolution,
                             "aspect_ratio": aspect_ratio, "enable_safety_checker": enable_safety_checker,
                             "audio_setting": audio_setting}
    issues = [Issue(name, f"no model in this plan takes {name} ({', '.join(s.variant for s in specs)})",
                    "leave it out or add a model that takes it")
              for name, value in [*given.items(), ("images", images), ("video", video)]
              if value is not None and name != "seed" and not any(s.takes(name) for s in specs)]
    if issues:
        raise ValidationError(issues)
    image_sets = _image_sets(images) if images is not None else [None]
    combos: list[dict[str, Any]] = []
    for s in specs:
        axes: dict[str, list[Any]] = {"model": [s.model]}
        for name, value in given.items():
            if s.takes(name) or name == "seed":
                axes[name] = _axis(value, name)
        if s.has_images:
            axes["images"] = _unique([_for_model(s, refs) for refs in image_sets])
        if s.video is not None:
            axes["video"] = [video]
        names = list(axes)
        size = len(combos) + math.prod(len(v) for v in axes.values())
        if size > MAX_PLAN_RUNS:
            raise ValidationError([Issue("plan", f"would hold {size:,} runs, more than {MAX_PLAN_RUNS:,}",
                                         "sweep fewer values, or split the study into several plans")])
        combos += [dict(zip(names, values, strict=True)) for values in itertools.product(*axes.values())]
    return Plan(combos, spec=spec)


def _models(model: Any, default: ModelSpec) -> list[ModelSpec]:
    if model is None:
        return [default]
    if not isinstance(model, (str, ModelSpec, Iterable)) or isinstance(model, (bytes, Mapping)):
        raise ValidationError([Issue("model", f"is {model!r}", "name a model or a list of models, "
                                     "e.g. model=['text-to-video', 'reference-to-video']")])
    items = [model] if isinstance(model, (str, ModelSpec)) else list(model)
    specs: list[ModelSpec] = []
    issues = []
    for item in items:
        try:
            got = get_spec(item)
        except KeyError as exc:
            issues.append(Issue("model", str(exc.args[0]), "pick one of the known models"))
            continue
        if got not in specs:
            specs.append(got)
    if issues or not specs:
        raise ValidationError(issues or [Issue("model", "is empty", "name at least one model")])
    return specs


def _for_model(spec: ModelSpec, refs: Any) -> Any:
    """The references as this model takes them: all of them, or the first (image-to-video)."""
    if refs is None:
        return None
    if spec.has_images and spec.images.single:
        return refs[:1]
    return refs


def _unique(values: list[Any]) -> list[Any]:
    """Drop repeated image sets (two sets may start with the same picture, which is all image-to-video
    takes), compared by content: what cannot be keyed by content (a NumPy array, say) is never dropped."""
    seen: set[Any] = set()
    out = []
    for v in values:
        keys = None if v is None else tuple(_content_key(x) for x in v)
        if keys is not None and None in keys:
            out.append(v)
            continue
        if keys not in seen:
            seen.add(keys)
            out.append(v)
    return out


def _axis(value: Any, name: str = "value") -> list[Any]:
    if value is None:
        return [None]
    if isinstance(value, (str, bytes, bool, int, Mapping)) or not isinstance(value, Iterable):
        return [value]  # a dict is one (invalid) value, refused by validation, not a list of its keys
    values = list(itertools.islice(value, MAX_PLAN_RUNS + 1))  # a range(10**9) is never built whole
    if len(values) > MAX_PLAN_RUNS:
        raise ValidationError([Issue(name, f"has more than {MAX_PLAN_RUNS:,} values",
                                     "sweep fewer values, or split the study into several plans")])
    return values


def _image_sets(images: Any) -> list[Any]:
    if not _is_sequence(images):
        return [[images]]
    items = list(images)
    if items and all(_is_sequence(x) for x in items):
        return items
    return [items]
