"""Opening a store's database: URLs, engines, SQLite transactions and WAL, error mapping, migrating."""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from runflow_nb.errors import ConfigurationError
from runflow_nb.store.schema import (
    _LIBRARY_VERSION,
    _PG_MIGRATION_LOCK,
    _SCHEMA_VERSION,
    _SQLITE_BUSY_S,
    LATEST_VERSION,
    MIGRATIONS,
    MissingStoreError,
    SchemaVersionError,
    StoreError,
    _now,
    _read_version,
)


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
    if "\x00" in os.fspath(url):
        raise ConfigurationError(f"the store location {os.fspath(url)!r} holds a NUL character: use a plain path")
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
