"""The experiment store: one row per generation, SQLite by default, PostgreSQL for a team.

SQLAlchemy Core only, one code path for both databases. The schema is created and upgraded by an
ordered list of :data:`MIGRATIONS`; opening a store migrates it forward in one transaction that
other processes wait for (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL).

Adding a column later is a two-line change: a :class:`_Col` with ``since=N`` in ``_RUN_SPECS``
(nullable, no unique constraint) and ``Migration(N, "add runs.x", _add_columns)``.

Run ``status`` is a free string so that a newer library can add states; the values used today
are :data:`STATUSES`: ``planned`` (written before submit), ``submitting``, ``queued``,
``running``, ``succeeded``, ``failed``, ``canceled``, ``skipped_budget`` (not submitted: the
budget would have been exceeded) and ``unknown`` (submitted, result not known yet: re-attach by
``remote_id`` or ``client_ref``, never re-submit).
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import math
import numbers
import os
import sqlite3
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateColumn

from runflow_nb import __version__
from runflow_nb._paths import PATH_COLUMNS, row_from_stored, values_to_stored
from runflow_nb.errors import ConfigurationError, RunflowError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "RUN_COLUMNS",
    "STATUSES",
    "DuplicateRunKey",
    "Migration",
    "MissingStoreError",
    "SchemaVersionError",
    "Store",
    "StoreError",
    "UnknownRunError",
    "migrate",
]

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


# --- schema -----------------------------------------------------------------------------------


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
    _Col("owner", "str", since=3),  # "host:pid:token" of the process driving the run (runflow_nb.leases)
    _Col("lease_expires_at", "time", since=4),  # until when the owner's claim holds unless renewed
    _Col("remote_id", "str"),
    _Col("client_ref", "str"),
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


# --- migrations -------------------------------------------------------------------------------


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


def _migrate_engine(engine: Engine, *, target: int | None = None) -> tuple[int, int]:
    target = LATEST_VERSION if target is None else target
    with engine.connect() as conn:
        before = _read_version(conn)
        conn.rollback()
    _check_version(before, engine)
    if before > target:
        raise StoreError(f"the store is at schema version {before}; downgrading to {target} is not supported")
    if before == target:
        return before, before
    try:
        with _writing(engine) as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
            current = _read_version(conn)  # another process may have migrated while we waited
            _check_version(current, engine)
            _SCHEMA_VERSION.create(conn, checkfirst=True)
            for step in MIGRATIONS:
                if current < step.version <= target:
                    step.apply(conn, step.version)
                    version = {"version": step.version, "description": step.description}
                    version.update(applied_at=_now(), library_version=_LIBRARY_VERSION)
                    conn.execute(_SCHEMA_VERSION.insert().values(version))
    except sa.exc.IntegrityError:
        # Only reachable if the locks above were bypassed: another process recorded the step first.
        with engine.connect() as conn:
            if _read_version(conn) < target:
                raise
    return before, target


def _check_version(version: int, engine: Engine) -> None:
    if version > LATEST_VERSION:
        raise SchemaVersionError(
            f"the store {_redacted(engine.url)} has schema version {version}, newer than this runflow_nb "
            f"{_LIBRARY_VERSION} understands (up to {LATEST_VERSION}); upgrade runflow_nb to open it"
        )


def migrate(url: str | os.PathLike[str], *, target: int | None = None, create: bool = True) -> tuple[int, int]:
    """Upgrade the store at ``url`` in place to ``target`` (default: latest); returns (from, to).

    With ``create=False`` a SQLite file that does not exist is refused (``runflow-nb migrate``
    never creates a store because of a mistyped path).

    Example: ``migrate("postgresql://lab@db/runs")  # (1, 2)``
    """
    if not create:
        _require_existing(url)
    engine = _make_engine(url)
    try:
        with _mapped_errors(engine):
            return _migrate_engine(engine, target=target)
    finally:
        engine.dispose()


# --- engine -----------------------------------------------------------------------------------


_LIBRARY_VERSION = __version__


def _normalize_url(url: str | os.PathLike[str]) -> URL:
    if isinstance(url, os.PathLike) or "://" not in str(url):
        path = os.fspath(url)
        if path in ("", ":memory:"):
            return URL.create("sqlite")
        path = str(Path(path).expanduser())
        return URL.create("sqlite", database=path)
    try:
        parsed = make_url(str(url))
    except (sa.exc.ArgumentError, ValueError):
        raise ConfigurationError(
            "cannot parse the store URL: use a SQLite path or postgresql://..."
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            f"unsupported store URL {_redacted(parsed)}: use a SQLite path or postgresql://"
        )
    return parsed


def _require_existing(url: str | os.PathLike[str]) -> None:
    """Refuse, before anything touches the disk, a SQLite store whose file does not exist."""
    parsed = _normalize_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    if parsed.database in (None, "", ":memory:"):
        raise MissingStoreError("an in-memory store is always empty: give the path or URL of an existing store")
    path = Path(parsed.database)
    if not path.is_file():
        raise MissingStoreError(f"no store at {parsed.database!r} (nothing was created): check the path, "
                                "--store or RUNFLOW_STORE")
    if path.stat().st_size == 0:
        raise MissingStoreError(f"{parsed.database!r} is an empty file, which holds no runflow store yet")


def _make_engine(url: str | os.PathLike[str], *, echo: bool = False) -> Engine:
    parsed = _normalize_url(url)
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(parsed, echo=echo, pool_pre_ping=True)
    if parsed.database in (None, "", ":memory:"):
        # One shared connection (or every connection would see its own empty database), lent to one
        # thread at a time: a sweep's store threads take turns instead of nesting transactions.
        engine = sa.create_engine(
            parsed, echo=echo, poolclass=_SerialStaticPool, connect_args={"check_same_thread": False}
        )
    else:
        _refuse_empty_file(Path(parsed.database))
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed, echo=echo, connect_args={"timeout": _SQLITE_BUSY_S, "check_same_thread": False}
        )
    _install_sqlite_transactions(engine)
    return engine


class _SerialStaticPool(StaticPool):
    """StaticPool whose single connection is checked out by one thread at a time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turn = threading.RLock()

    def _do_get(self) -> Any:
        self._turn.acquire()
        try:
            return super()._do_get()
        except BaseException:
            self._turn.release()
            raise

    def _do_return_conn(self, record: Any) -> None:
        try:
            super()._do_return_conn(record)
        finally:
            self._turn.release()


def _refuse_empty_file(path: Path, *, settle_s: float = 5.0) -> None:
    """A zero-byte store file is a store that lost its contents (truncated by a full disk, a bad
    copy), not a fresh one: opening it as new would make the next sweep pay for every run again.
    A file another process created a moment ago (and is writing the schema to) is waited for."""
    try:
        st = path.stat()
    except OSError:
        return  # no file yet: a new store
    if not stat.S_ISREG(st.st_mode) or st.st_size > 0:
        return
    deadline = time.monotonic() + settle_s
    while time.time() - st.st_mtime < settle_s and time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            st = path.stat()
        except OSError:
            return
        if st.st_size > 0:
            return
    raise ConfigurationError(
        f"the store file {path} is empty (0 bytes): its runs were lost (a full disk or a bad copy?), and opening "
        "it as a new store would pay for every run again. Restore it from a backup, or delete the file to "
        "start a new store on purpose")


def _install_sqlite_transactions(engine: Engine) -> None:
    """SQLAlchemy's pysqlite recipe: we emit BEGIN ourselves, BEGIN IMMEDIATE for writes.

    A writer takes the write lock up front, so two processes never deadlock on a lock upgrade
    (which ``busy_timeout`` cannot resolve); readers keep WAL's non-blocking snapshots.
    """

    @sa.event.listens_for(engine, "connect")
    def _do_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None  # sqlite3 must not emit BEGIN/COMMIT on its own
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(_SQLITE_BUSY_S * 1000)}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _do_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("runflow_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL (persistent, so only its first opener does it).

    The switch needs an exclusive lock and SQLite may refuse it at once instead of calling the
    busy handler (seen with two processes opening a fresh file together), so retry it here.
    """
    deadline = time.monotonic() + _SQLITE_BUSY_S
    for attempt in itertools.count():
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] in ("wal", "memory"):
                return
            cursor.execute("PRAGMA journal_mode = WAL").fetchall()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(min(0.01 * 2**attempt, 0.25))


@contextlib.contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction: committed on success, rolled back on error."""
    with engine.connect() as conn:
        conn.execution_options(runflow_write=True)
        with conn.begin():
            yield conn


@contextlib.contextmanager
def _mapped_errors(engine: Engine) -> Iterator[None]:
    """No SQLAlchemy exception escapes: each becomes a StoreError naming the (redacted) store."""
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        detail = getattr(exc, "orig", None) or exc
        raise StoreError(f"store {_redacted(engine.url)}: {detail}") from exc


def _redacted(url: URL) -> str:
    return url.render_as_string(hide_password=True)


# --- values -----------------------------------------------------------------------------------


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


def _coerce(name: str, value: Any) -> Any:
    """Validate and normalize one run field for storage; raise ValueError naming the field."""
    if value is None:
        return None
    kind = _SPEC[name].kind
    try:
        if kind in ("str", "text"):
            value = os.fspath(value) if isinstance(value, os.PathLike) else value
            if not isinstance(value, str):
                raise ValueError(f"expected a string, got {type(value).__name__}")
            return value
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"expected an integer, got {value!r}")
            return int(value)
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"expected a number, got {value!r}")
            return None if math.isnan(value) else float(value)  # NaN means missing, on both backends
        if kind == "bool":
            if not (isinstance(value, bool) or type(value).__name__ == "bool_"):
                raise ValueError(f"expected a bool, got {value!r}")
            return bool(value)
        if kind == "time":
            return _utc(value)
        if kind == "list":
            return _coerce_list(name, value)
        if not isinstance(value, Mapping):
            raise ValueError(f"expected a mapping, got {type(value).__name__}")
        return json.loads(_dumps(dict(value)))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"run field {name!r}: {exc}") from None


def _coerce_list(name: str, value: Any) -> list[str]:
    if isinstance(value, (str, bytes, os.PathLike)) or not isinstance(value, Iterable):
        raise ValueError(f"expected a list of strings, got {type(value).__name__}")
    items = [os.fspath(v) if isinstance(v, os.PathLike) else v for v in value]
    for item in items:
        if isinstance(item, (bytes, bytearray, memoryview)):
            raise ValueError("image data cannot be stored; store a reference (path, URL or display name)")
        if not isinstance(item, str):
            raise ValueError(f"expected strings, got {type(item).__name__}")
        if name == "images" and item.startswith("data:"):
            raise ValueError("data: URIs cannot be stored; store a reference (path, URL or display name)")
    return items


def _check_names(fields: Iterable[str]) -> None:
    unknown = sorted(set(fields) - set(RUN_COLUMNS))
    if unknown:
        raise ValueError(
            f"unknown run column(s) {', '.join(map(repr, unknown))}; see runflow_nb.store.RUN_COLUMNS"
        )


def _new_row(record: Mapping[str, Any]) -> dict[str, Any]:
    _check_names(record)
    row = {name: _coerce(name, value) for name, value in record.items()}
    for name in ("experiment", "run_key"):
        if not row.get(name):
            raise ValueError(f"a run needs a non-empty {name!r}")
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
        raise ValueError("run_id cannot be changed")
    values = {name: _coerce(name, value) for name, value in fields.items()}
    for name in ("experiment", "run_key", "status", "created_at", "attempts"):
        if name in values and values[name] is None:
            raise ValueError(f"{name!r} cannot be None")
    values.setdefault("updated_at", _now())
    return values


def _as_dict(row: sa.Row[Any]) -> dict[str, Any]:
    return {name: row._mapping.get(name) for name in RUN_COLUMNS}


# --- the store --------------------------------------------------------------------------------


class Store:
    """The runs of every experiment in one SQLite file or PostgreSQL database.

    Opening a store creates or upgrades its schema. Every method is safe to call from several
    threads and processes at once.

    Example::

        store = Store("runs.sqlite")  # or "postgresql://user@host/db"
        row, created = store.claim_run({"experiment": "horses", "run_key": key, "seed": 3})
        store.update_run(row["run_id"], status="succeeded", cost_usd=0.4)
        store.table("horses")  # one row per run, proper dtypes
    """

    def __init__(self, url: str | os.PathLike[str] | None = None, *, echo: bool = False, create: bool = True) -> None:
        from . import settings

        url = settings.store_url(url)
        if not create:
            _require_existing(url)
        self._engine = _make_engine(url, echo=echo)
        database = self._engine.url.database if self._engine.dialect.name == "sqlite" else None
        self.folder: Path | None = (Path(os.path.normpath(Path(database).expanduser().absolute())).parent
                                    if database not in (None, "", ":memory:") else None)
        """The SQLite file's folder: local artifact paths under it are stored relative to it."""
        self._known_experiments: set[str] = set()
        try:
            with _mapped_errors(self._engine):
                if not create:
                    with self._engine.connect() as conn:
                        found = _read_version(conn)
                        conn.rollback()
                    if found == 0:
                        raise MissingStoreError(f"{_redacted(self._engine.url)} holds no runflow store yet "
                                                "(nothing was created): check the store URL")
                _, self._version = _migrate_engine(self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    # -- identity --

    @property
    def url(self) -> str:
        """The store's URL with any password hidden."""
        return _redacted(self._engine.url)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    @property
    def schema_version(self) -> int:
        """The schema version the store was opened (and migrated) at."""
        return self._version

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for ad-hoc queries (e.g. ``pd.read_sql``)."""
        return self._engine

    def __repr__(self) -> str:
        return f"Store({self.url!r}, schema_version={self._version})"

    def close(self) -> None:
        """Close every pooled connection; the store can still reconnect if used again."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- experiments and reports --

    def ensure_experiment(self, name: str, *, metadata: Mapping[str, Any] | None = None) -> None:
        """Create the experiment if missing; ``metadata`` is merged into what is stored."""
        if not isinstance(name, str) or not name:
            raise ValueError("an experiment needs a non-empty name")
        table = _TABLES["experiments"]
        with _mapped_errors(self._engine):
            try:
                with _writing(self._engine) as conn:
                    stored = conn.execute(sa.select(table.c.metadata).where(table.c.name == name)).first()
                    if stored is None:
                        conn.execute(
                            table.insert().values(name=name, created_at=_now(), metadata=metadata or {})
                        )
                    elif metadata:
                        merged = {**(stored.metadata or {}), **metadata}
                        conn.execute(table.update().where(table.c.name == name).values(metadata=merged))
            except sa.exc.IntegrityError:  # created concurrently (PostgreSQL)
                if metadata:
                    self.ensure_experiment(name, metadata=metadata)
        self._known_experiments.add(name)

    def experiments(self) -> list[str]:
        """Names of every experiment, sorted."""
        table = _TABLES["experiments"]
        with _mapped_errors(self._engine), self._engine.connect() as conn:
            return list(conn.execute(sa.select(table.c.name).order_by(table.c.name)).scalars())

    def experiment_metadata(self, name: str) -> dict[str, Any] | None:
        """What :meth:`ensure_experiment` stored for ``name`` (None if there is no such experiment)."""
        table = _TABLES["experiments"]
        with _mapped_errors(self._engine), self._engine.connect() as conn:
            row = conn.execute(sa.select(table.c.metadata).where(table.c.name == name)).first()
        return None if row is None else dict(row.metadata or {})

    def add_report(self, *, experiment: str, path: str | os.PathLike[str], params: Mapping[str, Any]) -> None:
        """Record that a report was rendered at ``path`` with these (papermill) parameters."""
        self._ensure_known(experiment)
        values = {
            "experiment": experiment,
            "path": os.fspath(path),
            "params": dict(params),
            "created_at": _now(),
        }
        with _mapped_errors(self._engine), _writing(self._engine) as conn:
            conn.execute(_TABLES["reports"].insert().values(values))

    def reports(self, experiment: str) -> list[dict[str, Any]]:
        """The experiment's reports, oldest first: id, experiment, path, params, created_at."""
        table = _TABLES["reports"]
        query = (
            sa.select(table).where(table.c.experiment == experiment).order_by(table.c.created_at, table.c.id)
        )
        with _mapped_errors(self._engine), self._engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    # -- runs: writing --

    def insert_run(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Store a new run (defaults: uuid4 ``run_id``, ``status="planned"``) and return it.

        Raises :class:`DuplicateRunKey` when its (experiment, run_key) is already stored.
        """
        row = _new_row(values_to_stored(dict(record), self.folder))
        self._ensure_known(row["experiment"])
        with _mapped_errors(self._engine):
            try:
                with _writing(self._engine) as conn:
                    conn.execute(_RUNS.insert().values(row))
                    return self._dict(conn.execute(_select_runs(_RUNS.c.run_id == row["run_id"])).one())
            except sa.exc.IntegrityError as exc:
                raise self._conflict(row, exc, own_run_id=None) from exc

    def insert_runs(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Store many new runs in one transaction (all or none); returns how many."""
        rows = [_new_row(values_to_stored(dict(r), self.folder)) for r in records]
        for name in {r["experiment"] for r in rows}:
            self._ensure_known(name)
        if not rows:
            return 0
        # executemany needs the same keys in every row
        rows = [{name: r.get(name) for name in RUN_COLUMNS} for r in rows]
        with _mapped_errors(self._engine):
            try:
                with _writing(self._engine) as conn:
                    conn.execute(_RUNS.insert(), rows)
            except sa.exc.IntegrityError as exc:
                raise StoreError(f"cannot insert {len(rows)} runs (nothing was stored): {exc.orig}") from exc
        return len(rows)

    def claim_run(self, record: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Insert the run, or return the one already stored under its (experiment, run_key).

        Atomic across threads and processes (the unique constraint decides): ``(row, created)``.
        """
        for _ in range(3):
            try:
                return self.insert_run(record), True
            except DuplicateRunKey as dup:
                existing = self.find_run(experiment=dup.experiment, run_key=dup.run_key)
                if existing is not None:
                    return existing, False
        raise StoreError(f"could not claim run key {record.get('run_key')!r}")  # pragma: no cover

    def update_run(self, run_id: str, /, **fields: Any) -> dict[str, Any]:
        """Set ``fields`` (column names of :data:`RUN_COLUMNS`) and ``updated_at``; return the row."""
        values = _update_values(values_to_stored(dict(fields), self.folder))
        with _mapped_errors(self._engine):
            try:
                with _writing(self._engine) as conn:
                    done = conn.execute(_RUNS.update().where(_RUNS.c.run_id == run_id).values(values))
                    if done.rowcount == 0:
                        raise UnknownRunError(f"no run with run_id {run_id!r}")
                    return self._dict(conn.execute(_select_runs(_RUNS.c.run_id == run_id)).one())
            except sa.exc.IntegrityError as exc:
                current = self.get_run(run_id) or {}
                raise self._conflict({**current, **values}, exc, own_run_id=run_id) from exc

    def transition(
        self,
        run_id: str,
        /,
        *,
        from_statuses: str | Iterable[str],
        expect: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> bool:
        """Compare-and-set: write ``fields`` only while the run's status is one of ``from_statuses``.

        One ``UPDATE ... WHERE run_id = ? AND status IN (...)``, so of several threads or processes
        making the same move at once exactly one gets ``True``; the others get ``False`` and the
        row as the winner left it. ``expect`` adds equality conditions on other columns (``None``
        matches NULL), e.g. ``expect={"attempts": 2}`` so that a move that already happened and was
        undone (A → B → A) does not match again. Raises :class:`UnknownRunError` for an unknown run.

        Example: ``store.transition(run_id, from_statuses=["planned"], status="submitting",
        owner="host:123")``
        """
        statuses = [from_statuses] if isinstance(from_statuses, str) else list(from_statuses)
        if not statuses or not all(isinstance(s, str) and s for s in statuses):
            raise ValueError(f"from_statuses must name at least one status, got {from_statuses!r}")
        values = _update_values(values_to_stored(dict(fields), self.folder))
        conditions = [_RUNS.c.run_id == run_id, _RUNS.c.status.in_(statuses)]
        conditions += _filters(None, None, None, expect)
        with _mapped_errors(self._engine):
            try:
                with _writing(self._engine) as conn:
                    done = conn.execute(_RUNS.update().where(*conditions).values(values))
                    if done.rowcount == 1:
                        return True
                    found = conn.execute(sa.select(_RUNS.c.run_id).where(_RUNS.c.run_id == run_id)).first()
                    if found is None:
                        raise UnknownRunError(f"no run with run_id {run_id!r}")
                    return False
            except sa.exc.IntegrityError as exc:
                current = self.get_run(run_id) or {}
                raise self._conflict({**current, **values}, exc, own_run_id=run_id) from exc

    # -- leases (runflow_nb.leases) --

    def take_lease(self, run_id: str, /, *, owner: str, lease_s: float) -> bool:
        """Make ``owner`` the run's driver for ``lease_s`` seconds, if no one else holds it.

        One conditional ``UPDATE``: it succeeds when the run has no owner, is ``owner``'s already,
        or its lease has expired (or was never set), so of several processes exactly one wins.
        Raises :class:`UnknownRunError` for an unknown run.
        """
        now = _now()
        free = sa.or_(_RUNS.c.owner.is_(None), _RUNS.c.owner == owner, _RUNS.c.lease_expires_at.is_(None),
                      _RUNS.c.lease_expires_at <= now)
        values = {"owner": owner, "lease_expires_at": now + timedelta(seconds=lease_s)}
        with _mapped_errors(self._engine), _writing(self._engine) as conn:
            done = conn.execute(_RUNS.update().where(_RUNS.c.run_id == run_id, free).values(values))
            if done.rowcount == 1:
                return True
            if conn.execute(sa.select(_RUNS.c.run_id).where(_RUNS.c.run_id == run_id)).first() is None:
                raise UnknownRunError(f"no run with run_id {run_id!r}")
            return False

    def renew_leases(self, run_ids: Iterable[str], /, *, owner: str, lease_s: float) -> set[str]:
        """Extend ``owner``'s leases on ``run_ids``; returns the ids still held (the others were taken over)."""
        ids = list(run_ids)
        if not ids:
            return set()
        until = _now() + timedelta(seconds=lease_s)
        mine = sa.and_(_RUNS.c.run_id.in_(ids), _RUNS.c.owner == owner)
        with _mapped_errors(self._engine), _writing(self._engine) as conn:
            conn.execute(_RUNS.update().where(mine).values(lease_expires_at=until))
            return set(conn.execute(sa.select(_RUNS.c.run_id).where(mine)).scalars())

    def release_lease(self, run_id: str, /, *, owner: str) -> bool:
        """End ``owner``'s lease at once (the owner stays recorded); False if it was not ``owner``'s."""
        with _mapped_errors(self._engine), _writing(self._engine) as conn:
            done = conn.execute(_RUNS.update().where(_RUNS.c.run_id == run_id, _RUNS.c.owner == owner)
                                .values(lease_expires_at=None))
            return done.rowcount == 1

    def set_rating(self, run_id: str, rating: int | None) -> dict[str, Any]:
        """Rate a run (any integer, e.g. 1-5), or clear the rating with ``None``."""
        if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int)):
            raise ValueError(f"rating must be an int or None, got {rating!r}")
        return self.update_run(run_id, rating=rating)

    def add_tags(self, run_id: str, *tags: str) -> list[str]:
        """Add tags (kept in order, without duplicates); returns the run's tags."""
        return self._edit_tags(
            run_id, lambda old: [*old, *(t for t in dict.fromkeys(tags) if t not in old)], tags
        )

    def remove_tags(self, run_id: str, *tags: str) -> list[str]:
        """Remove tags if present; returns the run's tags."""
        return self._edit_tags(run_id, lambda old: [t for t in old if t not in tags], tags)

    def _edit_tags(
        self, run_id: str, edit: Callable[[list[str]], list[str]], tags: Sequence[str]
    ) -> list[str]:
        if not all(isinstance(t, str) and t for t in tags):
            raise ValueError(f"tags must be non-empty strings, got {tags!r}")
        with _mapped_errors(self._engine), _writing(self._engine) as conn:
            query = sa.select(_RUNS.c.tags).where(_RUNS.c.run_id == run_id).with_for_update()
            row = conn.execute(query).first()
            if row is None:
                raise UnknownRunError(f"no run with run_id {run_id!r}")
            new = edit(list(row.tags or []))
            conn.execute(_RUNS.update().where(_RUNS.c.run_id == run_id).values(tags=new, updated_at=_now()))
            return new

    def _ensure_known(self, experiment: str) -> None:
        if experiment not in self._known_experiments:
            self.ensure_experiment(experiment)

    def _conflict(
        self, row: Mapping[str, Any], exc: sa.exc.IntegrityError, *, own_run_id: str | None
    ) -> StoreError:
        """Name the constraint an IntegrityError broke (the drivers' messages differ)."""
        experiment, run_key = row.get("experiment"), row.get("run_key")
        if experiment and run_key:
            found = self.find_run(experiment=experiment, run_key=run_key)
            if found is not None and found["run_id"] != own_run_id:
                return DuplicateRunKey(experiment, run_key)
        return StoreError(f"cannot store run {row.get('run_id')!r}: {exc.orig}")

    # -- runs: reading --

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The run as a dict of every :data:`RUN_COLUMNS` entry, or None."""
        return self._one(_RUNS.c.run_id == run_id)

    def find_run(self, *, experiment: str, run_key: str) -> dict[str, Any] | None:
        """The run stored under this (experiment, run_key), or None."""
        return self._one((_RUNS.c.experiment == experiment) & (_RUNS.c.run_key == run_key))

    def runs(
        self,
        experiment: str | None = None,
        *,
        status: str | Iterable[str] | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Runs as dicts, oldest first, filtered like :meth:`table`."""
        query = _select_runs(*_filters(experiment, status, None, where))
        with _mapped_errors(self._engine), self._engine.connect() as conn:
            return [self._dict(row) for row in conn.execute(query.order_by(_RUNS.c.created_at, _RUNS.c.run_id))]

    def table(
        self,
        experiment: str | None = None,
        *,
        status: str | Iterable[str] | None = None,
        tags: str | Iterable[str] | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> pd.DataFrame:
        """All matching runs as a DataFrame, one row a run, columns in :data:`RUN_COLUMNS` order.

        ``tags`` keeps runs that carry all of them; ``where`` maps columns to a value, a list of
        values, or ``None`` (missing). Dtypes: ``Int64``, ``float64``, ``boolean``, ``string``,
        ``datetime64[us, UTC]``; ``images``/``image_sha256``/``tags`` hold Python lists and
        ``params`` the JSON text of every parameter as sent (so parquet and CSV export work).
        """
        wanted = [tags] if isinstance(tags, str) else list(tags or [])
        cols = [sa.type_coerce(_RUNS.c[name], sa.types.NullType()).label(name) for name in RUN_COLUMNS]
        query = sa.select(*cols).where(*_filters(experiment, status, wanted, where))
        with _gc_paused(), _mapped_errors(self._engine), self._engine.connect() as conn:
            # created_at alone follows the (experiment, created_at) index; _frame breaks ties.
            rows = conn.execute(query.order_by(_RUNS.c.created_at)).all()
            frame = _frame(rows, tags=wanted)
            del rows  # freed while the GC is still paused, or resuming it walks them all
            if self.folder is not None:  # store-relative paths made absolute, vectorized (no file-system calls)
                base = str(self.folder) + os.sep
                for name in PATH_COLUMNS:
                    column = frame[name]
                    text = column.fillna("")
                    # one anchored regex (a tuple to str.startswith fails on pandas' arrow strings before 2.2)
                    relative = ((text != "") & ~text.str.match(r"[/\\]|[A-Za-z]:[\\/]")
                                & ~text.str.contains("://", regex=False))
                    if bool(relative.any()):
                        frame.loc[relative, name] = base + column[relative]
        return frame

    def integrity_check(self) -> list[str]:
        """Problems found by SQLite's ``PRAGMA integrity_check`` (empty: healthy; [] on PostgreSQL)."""
        if self.dialect != "sqlite":
            return []
        with _mapped_errors(self._engine), self._engine.connect() as conn:
            found = [row[0] for row in conn.exec_driver_sql("PRAGMA integrity_check")]
        return [] if found == ["ok"] else found

    def _one(self, condition: sa.ColumnElement[bool]) -> dict[str, Any] | None:
        with _mapped_errors(self._engine), self._engine.connect() as conn:
            row = conn.execute(_select_runs(condition)).first()
        return None if row is None else self._dict(row)

    def _dict(self, row: sa.Row[Any]) -> dict[str, Any]:
        return dict(row_from_stored(_as_dict(row), self.folder))


def _select_runs(*conditions: sa.ColumnElement[bool]) -> sa.Select[Any]:
    return sa.select(_RUNS).where(*conditions)


def _filters(
    experiment: str | None,
    status: str | Iterable[str] | None,
    tags: Sequence[str] | None,
    where: Mapping[str, Any] | None,
) -> list[sa.ColumnElement[bool]]:
    conditions: dict[str, Any] = dict(where or {})
    _check_names(conditions)
    if experiment is not None:
        conditions["experiment"] = experiment
    if status is not None:
        conditions["status"] = status if isinstance(status, str) else list(status)
    out: list[sa.ColumnElement[bool]] = []
    for name, value in conditions.items():
        column = _RUNS.c[name]
        if _SPEC[name].kind in ("list", "dict"):
            raise ValueError(f"cannot filter on {name!r} with where=; use tags= for tags")
        if value is None:
            out.append(column.is_(None))
        elif isinstance(value, (list, tuple, set, frozenset)):
            out.append(column.in_([_coerce(name, v) for v in value]))
        else:
            out.append(column == _coerce(name, value))
    for tag in tags or ():
        # Prefilter in SQL on the JSON text; the exact check happens on the decoded lists.
        needle = _dumps(tag).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        out.append(sa.type_coerce(_RUNS.c.tags, sa.Text).like(f"%{needle}%", escape="\\"))
    return out


# --- DataFrame --------------------------------------------------------------------------------


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
