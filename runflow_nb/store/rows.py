"""A run row's values in and out of the store: coercion to column types, and the DataFrame of runs."""

from __future__ import annotations

import contextlib
import gc
import json
import math
import numbers
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from runflow_nb.errors import UsageError
from runflow_nb.store.schema import _LIBRARY_VERSION, _RUN_SPECS, _SPEC, RUN_COLUMNS, _dumps, _now, _utc

if TYPE_CHECKING:
    import pandas as pd


def _coerce(name: str, value: Any) -> Any:
    """Validate and normalize one run field for storage; raise UsageError naming the field."""
    if value is None:
        return None
    kind = _SPEC[name].kind
    try:
        if kind in ("str", "text"):
            value = os.fspath(value) if isinstance(value, os.PathLike) else value
            if not isinstance(value, str):
                raise UsageError(f"expected a string, got {type(value).__name__}")
            return value
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise UsageError(f"expected an integer, got {value!r}")
            if not -(2**63) <= int(value) < 2**63:  # what both databases can hold
                raise UsageError(f"{value!r} is too large")
            return int(value)
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise UsageError(f"expected a number, got {value!r}")
            return None if math.isnan(value) else float(value)  # NaN means missing, on both backends
        if kind == "bool":
            if not (isinstance(value, bool) or type(value).__name__ == "bool_"):
                raise UsageError(f"expected a bool, got {value!r}")
            return bool(value)
        if kind == "time":
            return _utc(value)
        if kind == "list":
            return _coerce_list(name, value)
        if not isinstance(value, Mapping):
            raise UsageError(f"expected a mapping, got {type(value).__name__}")
        return json.loads(_dumps(dict(value)))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"run field {name!r}: {exc}") from None


def _coerce_list(name: str, value: Any) -> list[str]:
    if isinstance(value, (str, bytes, os.PathLike)) or not isinstance(value, Iterable):
        raise UsageError(f"expected a list of strings, got {type(value).__name__}")
    items = [os.fspath(v) if isinstance(v, os.PathLike) else v for v in value]
    for item in items:
        if isinstance(item, (bytes, bytearray, memoryview)):
            raise UsageError("image data cannot be stored; store a reference (path, URL or display name)")
        if not isinstance(item, str):
            raise UsageError(f"expected strings, got {type(item).__name__}")
        if name == "images" and item.startswith("data:"):
            raise UsageError("data: URIs cannot be stored; store a reference (path, URL or display name)")
    return items


def _check_names(fields: Iterable[str]) -> None:
    unknown = sorted(set(fields) - set(RUN_COLUMNS))
    if unknown:
        raise UsageError(
            f"unknown run column(s) {', '.join(map(repr, unknown))}; see runflow_nb.store.runstore.RUN_COLUMNS"
        )


def _new_row(record: Mapping[str, Any]) -> dict[str, Any]:
    _check_names(record)
    row = {name: _coerce(name, value) for name, value in record.items()}
    for name in ("experiment", "run_key"):
        if not row.get(name):
            raise UsageError(f"a run needs a non-empty {name!r}")
    now = _now()
    defaults = {
        "run_id": uuid.uuid4().hex,
        "status": "planned",
        "created_at": now,
        "updated_at": now,
        "attempts": 0,
        "images": [],
        "image_sha256": [],
        "tags": [],
        "params": {},
        "library_version": _LIBRARY_VERSION,
    }
    for name, value in defaults.items():
        if row.get(name) is None:
            row[name] = value
    return row


def _update_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validated column values for an UPDATE, with ``updated_at`` (now, unless given)."""
    _check_names(fields)
    if "run_id" in fields:
        raise UsageError("run_id cannot be changed")
    values = {name: _coerce(name, value) for name, value in fields.items()}
    for name in ("experiment", "run_key", "status", "created_at", "attempts"):
        if name in values and values[name] is None:
            raise UsageError(f"{name!r} cannot be None")
    values.setdefault("updated_at", _now())
    return values


def _as_dict(row: sa.Row[Any]) -> dict[str, Any]:
    return {name: row._mapping.get(name) for name in RUN_COLUMNS}


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: millions of fresh row values would set off repeated full collections
    (measured: 2x slower on 100k runs) although none of them can form a cycle."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _frame(rows: Sequence[Sequence[Any]], *, tags: Sequence[str]) -> pd.DataFrame:
    """Build the table column-wise from raw driver values: Arrow arrays, then pandas dtypes."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    columns = dict(
        zip(RUN_COLUMNS, zip(*rows, strict=True) if rows else [()] * len(RUN_COLUMNS), strict=True)
    )
    arrays = {c.name: _arrow(c.kind, columns[c.name]) for c in _RUN_SPECS if c.kind != "list"}
    mapper = {
        pa.string(): pd.StringDtype("pyarrow"),
        pa.int64(): pd.Int64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    frame = pa.table(arrays).to_pandas(types_mapper=mapper.get)
    for spec in _RUN_SPECS:
        if spec.kind == "list":
            frame[spec.name] = pd.Series(_decode_lists(columns[spec.name]), index=frame.index, dtype=object)
    frame = frame[list(RUN_COLUMNS)]
    if tags:
        wanted = set(tags)
        frame = frame[np.array([wanted.issubset(t or ()) for t in frame["tags"]], dtype=bool)]
    created = frame["created_at"].to_numpy(dtype="datetime64[us]")
    if len(created) > 1 and not (np.diff(created) > np.timedelta64(0, "us")).all():
        frame = frame.sort_values(["created_at", "run_id"], kind="stable")
    return frame.reset_index(drop=True)


def _arrow(kind: str, values: Sequence[Any]) -> Any:
    """One column of raw driver values as an Arrow array (lists stay as JSON text here)."""
    import pyarrow as pa

    sample = next((v for v in values if v is not None), None)
    if kind == "time":
        if isinstance(sample, str):  # SQLite: naive UTC text
            return pa.array(values, pa.string()).cast(pa.timestamp("us")).cast(pa.timestamp("us", "UTC"))
        return pa.array(values, pa.timestamp("us", "UTC"))
    if kind == "bool" and isinstance(sample, int) and not isinstance(sample, bool):  # SQLite: 0/1
        return pa.array(values, pa.int8()).cast(pa.bool_())
    types = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
    return pa.array(values, types.get(kind, pa.string()))


def _decode_lists(values: Sequence[str | None]) -> list[list[Any] | None]:
    """Decode each distinct JSON text once; every row still gets its own list object."""
    decoded = {text: json.loads(text) for text in dict.fromkeys(values) if text is not None}
    return [None if text is None else list(decoded[text]) for text in values]
