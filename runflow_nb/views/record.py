"""A stored run as ``exp.generate``, ``exp.edit``, ``exp.rerun`` and ``exp.upscale`` return it.

:class:`RunRecord` is the run's stored row (a ``dict``: every column by key, as before, and by
attribute) that reads as a clip in a notebook: the video with its still and one summary line
(``_repr_html_``), and a one-line ``repr`` instead of some sixty fields with absolute paths.

>>> rec = RunRecord({"run_id": "0190abcd-ef", "status": "succeeded", "model": "happyhorse/text-to-video",
...                  "resolution": "720p", "seed": 2, "cost_usd": 0.42})
>>> rec
<run 0190abcd succeeded text-to-video 720p seed 2 $0.42>
>>> rec.seed, rec["seed"], isinstance(rec, dict)
(2, 2, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import html as _html

__all__ = ["RunRecord", "summary_line"]


def _present(value: Any) -> bool:
    return value is not None and str(value) not in ("<NA>", "nan", "NaN", "")


def _what(row: Mapping[str, Any]) -> list[str]:
    """What was asked for, as a run's one-line forms name it: model family, resolution, seed."""
    parts = []
    if _present(row.get("model")):
        parts.append(str(row.get("model")).rsplit("/", 1)[-1])
    if _present(row.get("resolution")):
        parts.append(str(row.get("resolution")))
    if _present(row.get("seed")):
        parts.append(f"seed {row.get('seed')}")
    return parts


def summary_line(row: Mapping[str, Any], *, notice: str | None = None) -> str:
    """One run on one line: id, status, model, resolution, seed, cost, parent (plain text)."""
    from .display import money

    parts = [f"run {str(row.get('run_id') or '')[:8]}", str(row.get("status") or ""), *_what(row)]
    cost = money(row.get("cost_usd"))
    if cost is not None:
        parts.append(cost + (" (simulated)" if row.get("backend") == "simulator" else ""))
    if _present(row.get("parent_run_id")):
        parts.append(f"parent {str(row.get('parent_run_id'))[:8]}")
    if notice:
        parts.append(notice)
    return " · ".join(parts)


class RunRecord(dict[str, Any]):
    """One stored run: a ``dict`` of its columns (also readable as attributes, ``rec.video_path``)
    that shows as its clip in a notebook. ``notice`` says when the run was reused, not made."""

    notice: str | None = None

    def __init__(self, row: Mapping[str, Any], *, notice: str | None = None) -> None:
        super().__init__(row)
        if notice is not None:
            self.notice = notice

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"the run has no field {name!r}; its fields: {', '.join(self)}") from None

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | {k for k in self if isinstance(k, str) and k.isidentifier()})

    def __repr__(self) -> str:
        from .display import money

        parts = [str(self.get("run_id") or "")[:8], str(self.get("status") or ""), *_what(self)]
        cost = money(self.get("cost_usd"))
        if cost is not None:
            parts.append(cost)
        return f"<run {' '.join(parts)}>"

    def _repr_html_(self) -> str:
        from .display import row_html

        line = (f"<div class='{_html.NO_MATH}' style='font-size:12px;color:#374151;margin:2px 0'>"
                f"{_html.text(summary_line(self, notice=self.notice))}</div>")
        return _html.block(row_html(self, width=640) + line)
