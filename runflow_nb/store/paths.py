"""Artifact paths in the run store that resolve from any working directory.

A run's ``video_path``/``poster_path`` must be found by any notebook, the CLI and a report kernel,
whichever folder each runs in. A SQLite store keeps a local file under its own folder as a path
relative to that folder (POSIX form), so the store and its artifacts can move together; a file
elsewhere is kept absolute. Reading turns a relative path back into an absolute one under the
store's folder; an absolute path whose file is gone falls back to the same ``<folder>/<file>``
under ``artifacts/`` beside the store (the default layout, e.g. after copying a study to another
machine). Shared-storage URIs (``s3://...``) and URLs are kept as they are; a store without a
folder (in memory, PostgreSQL) keeps absolute paths.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, MutableMapping
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["PATH_COLUMNS", "from_stored", "to_stored"]

PATH_COLUMNS = ("video_path", "poster_path")


def _is_local(text: str) -> bool:
    return "://" not in text and not text.startswith(("data:", "http:", "https:"))


def to_stored(value: Any, folder: Path | None) -> Any:
    """How ``value`` (a path the caller holds) is written to a store living in ``folder``."""
    if value is None or not isinstance(value, (str, os.PathLike)):
        return value
    text = os.fspath(value)
    if not text or not _is_local(text):
        return text
    path = Path(text).expanduser()
    absolute = path if path.is_absolute() else Path.cwd() / path
    absolute = Path(os.path.normpath(absolute))
    if folder is not None:
        try:
            return PurePosixPath(absolute.relative_to(folder).as_posix()).as_posix()
        except ValueError:  # not under the store's folder
            pass
    return str(absolute)


def from_stored(value: Any, folder: Path | None) -> Any:
    """The path a stored ``value`` means to a reader, wherever it runs."""
    if not isinstance(value, str) or not value or not _is_local(value):
        return value
    path = Path(value)
    if not path.is_absolute():
        return str(folder / path) if folder is not None else value
    if folder is not None and not path.exists():
        moved = folder / "artifacts" / path.parent.name / path.name
        if moved.exists():
            return str(moved)
    return value


def row_from_stored(row: MutableMapping[str, Any], folder: Path | None) -> MutableMapping[str, Any]:
    for name in PATH_COLUMNS:
        if name in row:
            row[name] = from_stored(row[name], folder)
    return row


def values_to_stored(values: MutableMapping[str, Any], folder: Path | None) -> MutableMapping[str, Any]:
    for name in PATH_COLUMNS:
        if name in values:
            values[name] = to_stored(values[name], folder)
    return values


def column_from_stored(values: Iterable[Any], folder: Path | None) -> list[Any]:
    """A table column of stored paths, made absolute under the store's folder.

    Cheap on large tables: string joins only, no file-system calls (the fallback for a moved
    absolute path is :func:`from_stored`, used for single runs)."""
    values = list(values)
    if folder is None:
        return values
    base = str(folder)
    join, isabs = os.path.join, os.path.isabs
    return [join(base, v) if isinstance(v, str) and v and not isabs(v) and _is_local(v) else v for v in values]
