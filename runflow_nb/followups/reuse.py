"""A follow-up never pays for a clip the experiment already holds.

A re-run's run key names its parent (the lineage), so ``exp.rerun(r1, seed=2)`` and the sweep's
own seed-2 run have different keys although they ask the server for the same thing. Here a request
is matched by its content instead (model, prompt, every input, the references and the clip by
sha256, the seed; the parent aside) against the runs the experiment holds: succeeded, or still in
flight or ``unknown`` with their money held. A match is reused (or resumed, as any sweep resumes
it) and nothing is charged; its own parent stays what it was. Only ``force=True`` pays again.

>>> from runflow_nb import VideoRequest
>>> a = VideoRequest.build(model="t2v", prompt="a horse", duration=3, resolution="720p", seed=2)
>>> from dataclasses import replace
>>> content_key(a) == content_key(replace(a, parent_run_id="run1"))
True
>>> free_seed({1, 2, 3}, after=1)
4
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..request import canonical_digest

if TYPE_CHECKING:
    from ..request import VideoRequest
    from ..store.runstore import Store

__all__ = ["HELD", "content_key", "free_seed", "held_by_content", "reused_line", "row_content_key", "taken_seeds"]

HELD = ("succeeded", "planned", "submitting", "queued", "running", "unknown")
"""The statuses of a run that has its clip, or may still get it with its money held."""

_SEED_MAX = 2**31 - 1


def content_key(req: VideoRequest) -> str | None:
    """The run key of ``req`` with its lineage left out; None for a request without a seed (each
    such run is a fresh random sample, never the same as another)."""
    if req.seed is None:
        return None
    return replace(req, parent_run_id=None).run_key()


def _canonical(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """:meth:`VideoRequest.canonical` of the request a stored run was made with, its lineage aside,
    read from its record alone."""
    params = row.get("params")
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            return None
    if not isinstance(params, Mapping) or not row.get("model"):
        return None
    out: dict[str, Any] = {"model": row.get("model"), "prompt": row.get("prompt"), **params,
                           "image_sha256": [str(s) for s in (row.get("image_sha256") or [])]}
    video = row.get("source_video_sha256")
    if video is not None and str(video) not in ("<NA>", "nan", ""):
        out["video_sha256"] = str(video)
    return out


def _seedless(canonical: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in canonical.items() if k != "seed"}


def row_content_key(row: Mapping[str, Any]) -> str | None:
    """:func:`content_key` of the request a stored run was made with, read from its record alone."""
    canonical = _canonical(row)
    if canonical is None or canonical.get("seed") is None:
        return None
    return canonical_digest(canonical)


def held_by_content(store: Store, experiment: str) -> dict[str, dict[str, Any]]:
    """The experiment's held runs by :func:`row_content_key` (the oldest where several match)."""
    out: dict[str, dict[str, Any]] = {}
    for row in store.runs(experiment, status=HELD):
        key = row_content_key(row)
        if key is not None:
            out.setdefault(key, row)
    return out


def taken_seeds(row: Mapping[str, Any], rows: Iterable[Mapping[str, Any]]) -> set[int]:
    """The seeds of the held runs in ``rows`` that ask for what ``row`` asked for, the seed aside."""
    mine = _canonical(row)
    if mine is None:
        return set()
    want = canonical_digest(_seedless(mine))
    seeds: set[int] = set()
    for other in rows:
        if other.get("status") not in HELD:
            continue
        theirs = _canonical(other)
        if theirs is not None and theirs.get("seed") is not None and canonical_digest(_seedless(theirs)) == want:
            seeds.add(int(theirs["seed"]))
    return seeds


def free_seed(taken: set[int], *, after: int) -> int:
    """The first seed after ``after`` (wrapping at the largest seed) not in ``taken``."""
    seed = (int(after) + 1) % (_SEED_MAX + 1)
    while seed in taken:
        seed = (seed + 1) % (_SEED_MAX + 1)
    return seed


def reused_line(row: Mapping[str, Any]) -> str:
    """What a researcher is told when a follow-up reuses a run the experiment holds."""
    state = "" if row.get("status") == "succeeded" else f" ({row.get('status')}, its money held)"
    return f"already in the experiment: run {str(row.get('run_id'))[:8]}{state}, nothing charged"
