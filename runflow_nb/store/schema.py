"""The store's schema: run statuses, errors, column types, tables and the ordered migrations.

See :mod:`runflow_nb.store.runstore` for how a column is added.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateColumn

from runflow_nb import __version__
from runflow_nb.errors import RunflowError

UTC = timezone.utc


STATUSES = (
    "planned", "submitting", "queued", "running", "succeeded", "failed", "canceled", "skipped_budget",
    "unknown",
)  # fmt: skip


class StoreError(RunflowError):
    """The experiment store could not be opened, read or written."""


class DuplicateRunKey(StoreError):
    """A run with this (experiment, run_key) is already stored."""

    def __init__(self, experiment: str, run_key: str) -> None:
        self.experiment, self.run_key = experiment, run_key
        super().__init__(f"experiment {experiment!r} already has a run with key {run_key!r}")


class UnknownRunError(StoreError, LookupError):
    """No run with this run_id is stored."""


class MissingStoreError(StoreError, FileNotFoundError):
    """A store opened for reading (``create=False``) does not exist; nothing was created."""


class SchemaVersionError(StoreError):
    """The store was written by a newer runflow_nb (or is not a runflow store)."""


class _UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores naive UTC text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = _utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _JSONText(sa.TypeDecorator[Any]):
    """JSON kept as text, so both backends hand back the same raw value."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> str | None:
        return None if value is None else _dumps(value)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        return None if value is None else json.loads(value)


_SA_TYPES: dict[str, Callable[[], Any]] = {
    "str": sa.String,
    "text": sa.Text,
    "int": sa.BigInteger,
    "float": sa.Double,
    "bool": lambda: sa.Boolean(create_constraint=False),
    "time": _UTCDateTime,
    "list": _JSONText,
    "dict": _JSONText,
}


@dataclass(frozen=True)
class _Col:
    name: str
    kind: str  # a key of _SA_TYPES
    since: int = 1  # the schema version that added it
    required: bool = False


# Human-first order: this is also the column order of Store.table().
_RUN_SPECS: tuple[_Col, ...] = (
    _Col("run_id", "str", required=True),
    _Col("experiment", "str", required=True),
    _Col("status", "str", required=True),
    _Col("prompt", "text"),
    _Col("seed", "int"),
    _Col("duration", "int"),
    _Col("resolution", "str"),
    _Col("aspect_ratio", "str"),
    _Col("cost_usd", "float"),
    _Col("wall_s", "float"),
    _Col("video_path", "str"),
    _Col("poster_path", "str", since=2),
    _Col("rating", "int"),
    _Col("tags", "list"),
    _Col("note", "text", since=2),
    _Col("images", "list"),
    _Col("model", "str"),
    _Col("parent_run_id", "str", since=4),  # the run whose clip this run edits (video-edit lineage)
    _Col("audio_setting", "str", since=4),
    _Col("source_video", "text", since=4),  # video-edit's input clip: a path or URL, as given
    _Col("source_video_sha256", "str", since=4),
    _Col("seed_returned", "int"),
    _Col("enable_safety_checker", "bool"),
    _Col("nsfw_detected", "bool"),
    _Col("width", "int"),
    _Col("height", "int"),
    _Col("video_duration", "float"),
    _Col("has_audio", "bool"),
    _Col("qa", "text", since=6),  # clip QA: "ok" or the findings (runflow_nb.qa), None until checked
    _Col("qa_black_s", "float", since=6),
    _Col("qa_frozen_s", "float", since=6),
    _Col("qa_silent_s", "float", since=6),
    _Col("qa_rms_db", "float", since=6),
    _Col("qa_peak_db", "float", since=6),
    _Col("qa_clipped", "float", since=6),  # share of audio samples at full scale
    _Col("qa_duration_s", "float", since=6),  # decoded length
    _Col("qa_fps", "float", since=6),
    _Col("qa_frames", "int", since=6),
    _Col("qa_decode_errors", "int", since=6),
    _Col("queue_s", "float"),
    _Col("inference_ms", "float"),
    _Col("cost_estimate_usd", "float"),
    _Col("cost_simulated", "bool"),
    _Col("created_at", "time", required=True),
    _Col("submitted_at", "time"),
    _Col("started_at", "time"),
    _Col("completed_at", "time"),
    _Col("updated_at", "time", required=True),
    _Col("error_code", "str"),
    _Col("error_message", "text"),
    _Col("attempts", "int", required=True),
    _Col("backend", "str"),
    _Col("owner", "str", since=3),  # "host:pid:token" of the process driving the run (runflow_nb.sweep.leases)
    _Col("lease_expires_at", "time", since=4),  # until when the owner's claim holds unless renewed
    _Col("remote_id", "str"),
    _Col("client_ref", "str"),
    _Col("batch_key", "str", since=5),  # the Idempotency-Key of the batch its create went out in
    _Col("run_key", "str", required=True),
    _Col("output_url", "text"),
    _Col("video_sha256", "str"),
    _Col("image_sha256", "list"),
    _Col("params", "dict"),
    _Col("library_version", "str"),
)


_SPEC = {c.name: c for c in _RUN_SPECS}


RUN_COLUMNS: tuple[str, ...] = tuple(c.name for c in _RUN_SPECS)
"""Every column of the ``runs`` table, in the order :meth:`Store.table` shows them."""


def _define_tables(metadata: sa.MetaData, *, version: int) -> dict[str, sa.Table]:
    """The tables as they are at schema ``version`` (migrations build old ones, too)."""
    runs = sa.Table(
        "runs",
        metadata,
        *(
            sa.Column(c.name, _SA_TYPES[c.kind](), primary_key=c.name == "run_id", nullable=not c.required)
            for c in _RUN_SPECS
            if c.since <= version
        ),
        sa.UniqueConstraint("experiment", "run_key", name="uq_runs_experiment_run_key"),
        sa.UniqueConstraint("client_ref", name="uq_runs_client_ref"),
        sa.Index("ix_runs_experiment_created", "experiment", "created_at"),
        sa.Index("ix_runs_remote_id", "remote_id"),
    )
    experiments = sa.Table(
        "experiments",
        metadata,
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("created_at", _UTCDateTime, nullable=False),
        sa.Column("metadata", _JSONText),
    )
    reports = sa.Table(
        "reports",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("experiment", sa.String, nullable=False, index=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("params", _JSONText),
        sa.Column("created_at", _UTCDateTime, nullable=False),
    )
    return {"runs": runs, "experiments": experiments, "reports": reports}


_SCHEMA_VERSION = sa.Table(
    "schema_version",
    sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.Text),
    sa.Column("applied_at", _UTCDateTime, nullable=False),
    sa.Column("library_version", sa.String),
)


@dataclass(frozen=True)
class Migration:
    """One schema step; ``apply`` runs inside the migration transaction."""

    version: int
    description: str
    apply: Callable[[Connection, int], None]


def _create_v1(conn: Connection, version: int) -> None:
    metadata = sa.MetaData()
    _define_tables(metadata, version=version)
    metadata.create_all(conn)


def _add_columns(conn: Connection, version: int) -> None:
    """Add every run column declared with ``since=version`` (nullable, so old rows stay valid)."""
    for spec in _RUN_SPECS:
        if spec.since == version:
            ddl = CreateColumn(_TABLES["runs"].c[spec.name]).compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE runs ADD COLUMN {ddl}"))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create runs, experiments and reports", _create_v1),
    Migration(2, "add runs.poster_path and runs.note", _add_columns),
    Migration(3, "add runs.owner", _add_columns),
    Migration(4, "add runs.parent_run_id, audio_setting, source_video, source_video_sha256, lease_expires_at",
              _add_columns),
    Migration(5, "add runs.batch_key", _add_columns),
    Migration(6, "add runs.qa and the clip QA measurements (qa_black_s ... qa_decode_errors)", _add_columns),
)


LATEST_VERSION = MIGRATIONS[-1].version


_TABLES = _define_tables(sa.MetaData(), version=LATEST_VERSION)


_RUNS = _TABLES["runs"]


_PG_MIGRATION_LOCK = 0x72756E666C6F77  # "runflow": pg_advisory_xact_lock key


_SQLITE_BUSY_S = 30.0  # how long a SQLite writer waits for another one before giving up


def _read_version(conn: Connection) -> int:
    """0 for an empty database; refuses databases that hold tables but are not runflow stores."""
    names = set(sa.inspect(conn).get_table_names())
    if "schema_version" not in names:
        if "runs" in names:
            raise SchemaVersionError(
                "the database has a 'runs' table but no schema_version: not a runflow store"
            )
        return 0
    return int(conn.execute(sa.select(sa.func.max(_SCHEMA_VERSION.c.version))).scalar() or 0)


_LIBRARY_VERSION = __version__


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"naive datetime {value!r}: pass a timezone-aware value, e.g. datetime.now(timezone.utc)"
        )
    if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        value = value.to_pydatetime()
    return value.astimezone(UTC)


def _json_default(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, datetime):
        return _utc(value).isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise ValueError("binary data cannot be stored in the run record; store a reference (path or URL)")
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise ValueError(f"{type(value).__name__} is not JSON-serializable")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)
