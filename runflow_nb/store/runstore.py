"""The experiment store: one row per generation, SQLite by default, PostgreSQL for a team.

SQLAlchemy Core only, one code path for both databases. The schema is created and upgraded by an
ordered list of :data:`MIGRATIONS`; opening a store migrates it forward in one transaction that
other processes wait for (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL).

Adding a column later is a two-line change: a :class:`_Col` with ``since=N`` in ``_RUN_SPECS``
(nullable, no unique constraint) and ``Migration(N, "add runs.x", _add_columns)``, both in
:mod:`runflow_nb.store.schema`. Opening databases lives in :mod:`runflow_nb.store.engine`, row
values and the DataFrame in :mod:`runflow_nb.store.rows`; this module is the :class:`Store` itself.

Run ``status`` is a free string so that a newer library can add states; the values used today
are :data:`STATUSES`: ``planned`` (written before submit), ``submitting``, ``queued``,
``running``, ``succeeded``, ``failed``, ``canceled``, ``skipped_budget`` (not submitted: the
budget would have been exceeded) and ``unknown`` (submitted, result not known yet: re-attach by
``remote_id`` or ``client_ref``, never re-submit).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from runflow_nb.errors import UsageError
from runflow_nb.store.engine import (
    _make_engine,
    _mapped_errors,
    _migrate_engine,
    _redacted,
    _require_existing,
    _writing,
    migrate,
)
from runflow_nb.store.paths import PATH_COLUMNS, row_from_stored, values_to_stored
from runflow_nb.store.rows import (
    _as_dict,
    _check_names,
    _coerce,
    _frame,
    _gc_paused,
    _new_row,
    _update_values,
)
from runflow_nb.store.schema import (
    _RUNS,
    _SPEC,
    _TABLES,
    LATEST_VERSION,
    MIGRATIONS,
    RUN_COLUMNS,
    STATUSES,
    DuplicateRunKey,
    Migration,
    MissingStoreError,
    SchemaVersionError,
    StoreError,
    UnknownRunError,
    _dumps,
    _now,
    _read_version,
)

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
    "last_opened",
    "migrate",
    "remember_opened",
]


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
        from .. import settings

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

    # -- leases (runflow_nb.sweep.leases) --

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
            raise UsageError(f"tags must be non-empty strings, got {tags!r}: pass each tag as its own argument")
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

    def recent_runs(self, since: datetime, *, experiment: str | None = None, open_statuses: Iterable[str] = (),
                    limit: int = 500) -> list[dict[str, Any]]:
        """Runs changed at or after ``since`` plus every run whose status is one of ``open_statuses``
        (however old), newest change first, at most ``limit`` (what a queue panel shows)."""
        recent = _RUNS.c.updated_at >= since
        wanted = list(open_statuses)
        condition = sa.or_(recent, _RUNS.c.status.in_(wanted)) if wanted else recent
        query = _select_runs(condition, *_filters(experiment, None, None, None))
        query = query.order_by(_RUNS.c.updated_at.desc(), _RUNS.c.run_id).limit(max(1, int(limit)))
        with _mapped_errors(self._engine), self._engine.connect() as conn:
            return [self._dict(row) for row in conn.execute(query)]

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
        wanted = [tags] if isinstance(tags, str) else list(tags) if isinstance(tags, Iterable) else [] \
            if tags is None else None
        if wanted is None or not all(isinstance(t, str) for t in wanted):
            raise UsageError(f"tags is {tags!r}: use a tag, or a list of tags")
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
        wanted = status if isinstance(status, str) else list(status) if isinstance(status, Iterable) else None
        if wanted is None or not all(isinstance(s, str) for s in ([wanted] if isinstance(wanted, str) else wanted)):
            raise UsageError(f"status is {status!r}: use a status such as 'succeeded', or a list of them")
        conditions["status"] = wanted
    out: list[sa.ColumnElement[bool]] = []
    for name, value in conditions.items():
        column = _RUNS.c[name]
        if _SPEC[name].kind in ("list", "dict"):
            raise UsageError(f"cannot filter on {name!r} with where=; use tags= for tags")
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


_last_opened: list[Store] = []


def remember_opened(store: Store) -> None:
    """Note ``store`` as the one an experiment of this process opened last (``rf.queue()``'s default)."""
    _last_opened[:] = [store]


def last_opened() -> Store | None:
    """The store an experiment of this process opened last (a closed store reconnects), if any."""
    return _last_opened[0] if _last_opened else None
