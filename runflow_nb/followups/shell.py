"""The shell's side of the follow-ups: ``runflow-nb show RUN_ID`` as text and ``runflow-nb rerun``'s
options as the changes :meth:`Experiment.rerun <runflow_nb.experiment.Experiment.rerun>` takes.

Plain text (no HTML, no colour), so it reads in a terminal, a log and a CI job alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .changes import describe
from .detail import sent_input

__all__ = ["changes_from_args", "run_line", "show_text"]


def changes_from_args(a: Any) -> dict[str, Any]:
    """The options given to ``runflow-nb rerun`` as rerun changes (a seed list is a sweep)."""
    changes: dict[str, Any] = {}
    if a.seed is not None:
        changes["seed"] = a.seed[0] if len(a.seed) == 1 else a.seed
    for name in ("duration", "resolution", "aspect_ratio", "prompt", "model", "audio_setting"):
        value = getattr(a, name, None)
        if value is not None:
            changes[name] = value
    if getattr(a, "images", None):
        changes["references"] = list(a.images)
    return changes


def _cell(value: Any) -> str:
    return "—" if value is None or str(value) in ("<NA>", "nan", "NaN", "") else str(value)


def run_line(row: Mapping[str, Any]) -> str:
    """One run on one line: id, status, model, resolution, seed, cost and video."""
    model = str(row.get("model") or "").rsplit("/", 1)[-1]
    cost = row.get("cost_usd")
    money = f"${float(cost):.2f}" if cost is not None and str(cost) not in ("<NA>", "nan") else "—"
    return (f"{row.get('run_id')}  {row.get('status')}  {model}  {_cell(row.get('resolution'))}  "
            f"seed {_cell(row.get('seed'))}  {money}  {_cell(row.get('video_path'))}")


def show_text(row: Mapping[str, Any], *, code: str | None, code_error: str | None = None,
              parent: Mapping[str, Any] | None = None, children: Sequence[Mapping[str, Any]] = ()) -> str:
    """``runflow-nb show``: the run, the request as sent (no key), timing, cost, lineage and code."""
    sim = " (simulated)" if row.get("backend") == "simulator" else ""
    infer = row.get("inference_ms")
    lines = [
        f"run          {row.get('run_id')} (Runflow {_cell(row.get('remote_id'))})",
        f"experiment   {row.get('experiment')}",
        f"status       {row.get('status')}" + (f": {row.get('error_message')}" if row.get("error_message") else ""),
        f"seed         requested {_cell(row.get('seed'))}, returned {_cell(row.get('seed_returned'))}",
        f"timing       queue {_cell(row.get('queue_s'))} s, inference "
        f"{_cell(float(infer) / 1000 if infer is not None and _cell(infer) != '—' else None)} s, "
        f"wall {_cell(row.get('wall_s'))} s",
        f"cost         {_cell(row.get('cost_usd'))} USD{sim} (estimate {_cell(row.get('cost_estimate_usd'))})",
        f"video        {_cell(row.get('video_path'))}",
    ]
    if "qa" in row:
        lines.append(f"qa           {_cell(row.get('qa'))}")
    if row.get("parent_run_id"):
        what = describe(parent, row) if parent is not None else "parent not stored"
        lines.append(f"parent       {row.get('parent_run_id')} ({what})")
    for child in children:
        lines.append(f"child        {child.get('run_id')} {child.get('status')} ({describe(row, child)})")
    lines += ["", "request as sent:", json.dumps(sent_input(row), indent=2, ensure_ascii=False, default=str), ""]
    lines += ["code:", code.rstrip()] if code else [f"code: {code_error}"]
    return "\n".join(lines)
