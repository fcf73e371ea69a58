"""`runflow-nb migrate STORE_URL`: old stores are upgraded in place, newer ones refused, nothing rewritten."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from runflow_nb.cli import main
from runflow_nb.store.runstore import LATEST_VERSION, Store, migrate


def _engine(url: str) -> sa.Engine:
    if "://" not in url:
        return sa.create_engine(f"sqlite:///{url}")
    return sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"))


def _snapshot(url: str) -> tuple[list[int], list[tuple[object, ...]], set[str]]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            versions = list(conn.execute(sa.text("SELECT version FROM schema_version ORDER BY version")).scalars())
            rows = [tuple(r) for r in conn.execute(
                sa.text("SELECT run_id, experiment, status, run_key, tags, seed FROM runs ORDER BY run_id"))]
            columns = {c["name"] for c in sa.inspect(conn).get_columns("runs")}
    finally:
        engine.dispose()
    return versions, rows, columns


def _make_v1_store(url: str) -> None:
    """A store as runflow_nb's first schema wrote it, holding two runs."""
    assert migrate(url, target=1) == (0, 1)
    engine = _engine(url)
    with engine.begin() as conn:
        for run_id, seed in (("old1", 1), ("old2", 2)):
            conn.execute(
                sa.text("INSERT INTO runs (run_id, experiment, status, run_key, created_at, updated_at, attempts, "
                        "tags, seed) VALUES (:id, 'horses', 'succeeded', :key, :t, :t, 1, '[\"v1\"]', :seed)"),
                {"id": run_id, "key": f"k-{run_id}", "t": "2024-05-01 12:00:00.000000", "seed": seed},
            )
    engine.dispose()


def test_migrate_upgrades_a_v1_store_in_place_and_prints_the_versions(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _make_v1_store(store_url)
    versions, rows, columns = _snapshot(store_url)
    assert versions == [1] and "owner" not in columns and "poster_path" not in columns

    assert main(["migrate", store_url]) == 0
    assert capsys.readouterr().out.strip() == f"schema version 1 -> {LATEST_VERSION}"
    after_versions, after_rows, after_columns = _snapshot(store_url)
    assert after_versions == list(range(1, LATEST_VERSION + 1))
    assert after_rows == rows  # every old value intact
    assert {"owner", "poster_path", "note"} <= after_columns and columns <= after_columns

    assert main(["migrate", store_url]) == 0  # already current: nothing to do, said so
    assert capsys.readouterr().out.strip() == f"schema version {LATEST_VERSION}: up to date"
    with Store(store_url) as store:
        old = store.get_run("old1")
        assert old is not None and old["tags"] == ["v1"] and old["seed"] == 1 and old["owner"] is None
        assert store.schema_version == LATEST_VERSION


def test_migrate_refuses_a_store_newer_than_the_library_and_changes_nothing(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _make_v1_store(store_url)
    engine = _engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO schema_version (version, description, applied_at) "
                             "VALUES (99, 'from the future', :t)"), {"t": "2030-01-01 00:00:00.000000"})
    engine.dispose()
    before = _snapshot(store_url)

    assert main(["migrate", store_url]) == 1
    err = capsys.readouterr().err
    assert "SchemaVersionError" in err and "schema version 99" in err and "newer than this runflow_nb" in err
    assert f"up to {LATEST_VERSION}" in err and "upgrade runflow_nb" in err
    assert _snapshot(store_url) == before  # not a single column or row touched


def test_the_runflow_nb_migrate_command_runs_as_a_program(tmp_path: Path) -> None:
    url = str(tmp_path / "old.sqlite")
    _make_v1_store(url)
    done = subprocess.run([sys.executable, "-m", "runflow_nb.cli", "migrate", url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"schema version 1 -> {LATEST_VERSION}"
    missing = subprocess.run([sys.executable, "-m", "runflow_nb.cli", "migrate", "mysql://x@db/runs"],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "postgresql://" in missing.stderr and "Traceback" not in missing.stderr


def test_migrate_never_rewrites_a_database_that_is_not_a_runflow_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "other.sqlite"
    engine = _engine(str(path))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE runs (id INTEGER)"))
    engine.dispose()
    assert main(["migrate", str(path)]) == 1
    assert "not a runflow store" in capsys.readouterr().err
    engine = _engine(str(path))
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == ["runs"]
    engine.dispose()
