"""What changed from a parent run to its child, read from the two stored records.

The table's ``changes`` column: for every run with a ``parent_run_id`` (a re-run, an upscale, an
edit), the inputs that differ from the parent's, e.g. ``"seed 3→5"`` or ``"resolution 720p→1080p"``.
It is computed from the records whenever the table is read, so it can never disagree with them.

>>> describe({"seed": 3, "resolution": "720p"}, {"seed": 5, "resolution": "720p"})
'seed 3→5'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from ..store.runstore import Store

__all__ = ["COMPARED", "describe", "with_changes"]

COMPARED = ("model", "prompt", "images", "image_sha256", "source_video_sha256", "seed", "duration",
            "resolution", "aspect_ratio", "audio_setting", "enable_safety_checker")
"""The stored inputs compared, in the order the changes are listed."""


def _value(row: Mapping[str, Any], name: str) -> Any:
    value = row.get(name)
    if isinstance(value, (list, tuple)):
        return tuple(value)
    try:
        import pandas as pd

        if value is pd.NA or (isinstance(value, float) and value != value):
            return None
    except (ImportError, TypeError, ValueError):
        pass
    if value is not None and hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def _short(name: str, value: Any) -> str:
    if name == "model" and isinstance(value, str):
        return value.rsplit("/", 1)[-1]
    text = "—" if value is None else str(value)
    return text if len(text) <= 40 else text[:37] + "…"


def describe(parent: Mapping[str, Any], child: Mapping[str, Any]) -> str:
    """The inputs of ``child`` that differ from ``parent``'s, as one short line."""
    parts: list[str] = []
    for name in COMPARED:
        before, after = _value(parent, name), _value(child, name)
        if before == after:
            continue
        if name == "images":
            continue  # reported by content (image_sha256): a copy of the same file is no change
        if name == "image_sha256":
            parts.append(f"references {len(before or ())}→{len(after or ())} images"
                         if len(before or ()) != len(after or ()) else "references")
        elif name == "source_video_sha256":
            parts.append("clip" if before else "clip of the parent")
        elif name == "prompt":
            parts.append(f"prompt {_short(name, after)!r}")
        else:
            parts.append(f"{name} {_short(name, before)}→{_short(name, after)}")
    return "; ".join(parts) or "nothing"


def with_changes(df: pd.DataFrame, store: Store) -> pd.DataFrame:
    """``df`` (an experiment's table, changed in place and returned) with a ``changes`` column right
    after ``parent_run_id``: empty for runs without a parent; a parent in another experiment is read
    from the store."""
    if "parent_run_id" not in df.columns or "changes" in df.columns:
        return df
    parents = df["parent_run_id"]
    has = parents.notna().to_numpy(dtype=bool)
    texts: list[Any] = [None] * len(df)
    if has.any():
        by_id = {str(r["run_id"]): r for r in df.loc[df["run_id"].isin(parents[has])].to_dict("records")}
        for pos, child in zip(has.nonzero()[0], df.loc[has].to_dict("records"), strict=True):
            parent_id = str(child["parent_run_id"])
            if parent_id not in by_id:
                by_id[parent_id] = store.get_run(parent_id)
            parent = by_id[parent_id]
            texts[int(pos)] = describe(parent, child) if parent is not None else "parent not stored"
    df.insert(list(df.columns).index("parent_run_id") + 1, "changes", texts)
    return df
