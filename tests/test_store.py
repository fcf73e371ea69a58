"""The experiment store on SQLite (always) and PostgreSQL (when RUNFLOW_TEST_PG_URL is set)."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import traceback
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from _pg import pg_schema_url

from runflow_nb.errors import ConfigurationError, RunflowError
from runflow_nb.store.runstore import (
    LATEST_VERSION,
    RUN_COLUMNS,
    DuplicateRunKey,
    SchemaVersionError,
    Store,
    StoreError,
    UnknownRunError,
    migrate,
)

EST = timezone(timedelta(hours=-5))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store(store_url) as opened:
        yield opened


def _run(**fields: object) -> dict[str, object]:
    return {"experiment": "horses", "run_key": uuid.uuid4().hex, **fields}


# --- writing and reading runs -----------------------------------------------------------------


def test_insert_fills_defaults_and_get_returns_the_row(store: Store) -> None:
    row = store.insert_run(_run(seed=3, prompt="a horse", images=["horse.png"], params={"seed": 3}))
    assert len(row["run_id"]) == 32 and row["status"] == "planned" and row["attempts"] == 0
    assert row["tags"] == [] and row["images"] == ["horse.png"] and row["params"] == {"seed": 3}
    assert row["created_at"] == row["updated_at"] and row["library_version"]
    assert set(row) == set(RUN_COLUMNS)
    assert store.get_run(row["run_id"]) == row
    assert store.find_run(experiment="horses", run_key=row["run_key"]) == row
    assert store.get_run("nope") is None
    assert store.experiments() == ["horses"]


def test_update_sets_fields_and_updated_at(store: Store) -> None:
    row = store.insert_run(_run())
    done = store.update_run(
        row["run_id"],
        status="succeeded",
        cost_usd=0.4,
        has_audio=True,
        width=1280,
        video_path=Path("a/b.mp4"),
    )
    assert (done["status"], done["cost_usd"], done["has_audio"], done["width"]) == (
        "succeeded",
        0.4,
        True,
        1280,
    )
    assert done["video_path"] == str(Path.cwd() / "a" / "b.mp4")  # relative to the caller, made absolute
    assert done["updated_at"] > row["updated_at"] and done["created_at"] == row["created_at"]
    assert store.get_run(row["run_id"]) == done


def test_update_refuses_unknown_columns_and_unknown_runs(store: Store) -> None:
    row = store.insert_run(_run())
    with pytest.raises(ValueError, match="colour"):
        store.update_run(row["run_id"], colour="red")
    with pytest.raises(ValueError, match="run_id"):
        store.update_run(row["run_id"], run_id="other")
    with pytest.raises(ValueError, match="seed"):
        store.update_run(row["run_id"], seed="three")
    with pytest.raises(ValueError, match="cost_usd"):
        store.update_run(row["run_id"], cost_usd="0.4")
    assert store.update_run(row["run_id"], wall_s=float("nan"))["wall_s"] is None  # NaN means missing
    with pytest.raises(UnknownRunError):
        store.update_run("nope", status="failed")
    with pytest.raises(ValueError, match="colour"):
        store.insert_run(_run(colour="red"))


def test_images_are_stored_as_references_never_bytes(store: Store) -> None:
    with pytest.raises(ValueError, match="reference"):
        store.insert_run(_run(images=[b"\x89PNG..."]))
    with pytest.raises(ValueError, match="reference"):
        store.insert_run(_run(images=["data:image/png;base64,iVBORw0KGgo="]))
    assert store.runs() == []


def test_duplicate_run_key_raises(store: Store) -> None:
    store.insert_run({"experiment": "horses", "run_key": "k1"})
    with pytest.raises(DuplicateRunKey) as caught:
        store.insert_run({"experiment": "horses", "run_key": "k1"})
    assert isinstance(caught.value, RunflowError) and caught.value.run_key == "k1"
    store.insert_run({"experiment": "zebras", "run_key": "k1"})  # keys are unique per experiment
    assert len(store.runs()) == 2


def test_insert_runs_is_all_or_nothing(store: Store) -> None:
    assert store.insert_runs([_run(run_key="a"), _run(run_key="b")]) == 2
    with pytest.raises(StoreError):
        store.insert_runs([_run(run_key="c"), _run(run_key="a")])
    assert sorted(r["run_key"] for r in store.runs()) == ["a", "b"]


def test_claim_run_inserts_once_then_returns_the_stored_run(store: Store) -> None:
    first, created = store.claim_run({"experiment": "horses", "run_key": "k", "seed": 1})
    again, created_again = store.claim_run({"experiment": "horses", "run_key": "k", "seed": 2})
    assert (created, created_again) == (True, False)
    assert again == first and again["seed"] == 1


def test_claim_run_race_creates_each_key_exactly_once(store_url: str) -> None:
    keys = [f"key{i}" for i in range(15)]
    barrier = threading.Barrier(2)
    results: list[list[tuple[dict, bool]]] = [[], []]
    errors: list[BaseException] = []

    def claim(slot: int) -> None:
        try:
            with Store(store_url) as own:  # separate engines, like two notebooks
                barrier.wait()
                results[slot] = [own.claim_run({"experiment": "race", "run_key": k}) for k in keys]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    Store(store_url).close()  # migrate first: this test is about the run key, not the schema
    threads = [threading.Thread(target=claim, args=(slot,)) for slot in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (a, a_created), (b, b_created) in zip(*results, strict=True):
        assert a["run_id"] == b["run_id"] and a_created != b_created
    with Store(store_url) as check:
        assert len(check.runs("race")) == len(keys)


def test_timestamps_round_trip_as_tz_aware_utc(store: Store) -> None:
    submitted = datetime(2025, 3, 30, 1, 59, 59, 123456, tzinfo=EST)
    row = store.insert_run(
        _run(submitted_at=submitted, completed_at=pd.Timestamp("2025-03-30 09:00", tz="UTC"))
    )
    stored = store.get_run(row["run_id"])
    assert stored is not None
    assert stored["submitted_at"] == submitted and stored["submitted_at"].tzinfo == timezone.utc
    assert stored["submitted_at"].hour == 6 and stored["completed_at"] == datetime(
        2025, 3, 30, 9, tzinfo=timezone.utc
    )
    frame = store.table()
    assert frame.loc[0, "submitted_at"] == pd.Timestamp(submitted)
    assert str(frame["submitted_at"].dt.tz) == "UTC"
    with pytest.raises(ValueError, match="naive"):
        store.update_run(row["run_id"], started_at=datetime(2025, 1, 1))


# --- the table ------------------------------------------------------------------------------


def _fill(store: Store) -> list[dict]:
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    rows = []
    for i in range(6):
        rows.append(
            store.insert_run(
                _run(
                    experiment="horses" if i < 4 else "zebras",
                    status="succeeded" if i % 2 == 0 else "failed",
                    seed=i,
                    duration=5 if i < 3 else 8,
                    resolution="720p",
                    aspect_ratio="16:9",
                    prompt=f"prompt {i}",
                    enable_safety_checker=True,
                    nsfw_detected=None if i == 1 else False,
                    cost_usd=0.25 * i if i % 2 == 0 else None,
                    created_at=start + timedelta(minutes=i),
                    completed_at=start + timedelta(minutes=i, seconds=40) if i % 2 == 0 else None,
                    images=["refs/horse.png", "refs/beach.jpg"],
                    tags=["keep"] if i in (0, 3) else [],
                    params={"seed": i, "duration": 5},
                )
            )
        )
    return rows


def test_table_has_human_first_columns_and_proper_dtypes(store: Store) -> None:
    _fill(store)
    frame = store.table()
    assert list(frame.columns) == list(RUN_COLUMNS)
    assert list(frame.columns[:8]) == [
        "run_id", "experiment", "status", "prompt", "seed", "duration", "resolution", "aspect_ratio",
    ]  # fmt: skip
    dtypes = frame.dtypes.astype(str)
    assert dtypes[["seed", "duration", "rating", "attempts", "width"]].eq("Int64").all()
    assert dtypes[["cost_usd", "wall_s", "queue_s", "inference_ms"]].eq("float64").all()
    assert dtypes[["enable_safety_checker", "nsfw_detected", "has_audio"]].eq("boolean").all()
    assert dtypes[["created_at", "completed_at", "updated_at"]].eq("datetime64[us, UTC]").all()
    assert isinstance(frame["prompt"].dtype, pd.StringDtype) and isinstance(
        frame["params"].dtype, pd.StringDtype
    )
    assert frame["images"].map(type).eq(list).all() and frame.loc[0, "tags"] == ["keep"]
    assert frame["seed"].tolist() == [0, 1, 2, 3, 4, 5]  # oldest first
    assert pd.isna(frame.loc[1, "nsfw_detected"]) and pd.isna(frame.loc[1, "completed_at"])
    assert frame.loc[2, "cost_usd"] == 0.5 and pd.isna(frame.loc[1, "cost_usd"])
    # each row owns its lists
    frame.loc[0, "images"].append("x")
    assert frame.loc[2, "images"] == ["refs/horse.png", "refs/beach.jpg"]


def test_table_of_an_empty_store_keeps_columns_and_dtypes(store: Store) -> None:
    frame = store.table()
    assert frame.empty and list(frame.columns) == list(RUN_COLUMNS)
    assert str(frame["seed"].dtype) == "Int64" and str(frame["created_at"].dtype) == "datetime64[us, UTC]"


def test_table_filters_by_experiment_status_tags_and_params(store: Store) -> None:
    _fill(store)
    assert store.table("horses")["seed"].tolist() == [0, 1, 2, 3]
    assert store.table("horses", status="failed")["seed"].tolist() == [1, 3]
    assert store.table(status=["succeeded"])["seed"].tolist() == [0, 2, 4]
    assert store.table(tags="keep")["seed"].tolist() == [0, 3]
    assert store.table(tags=["keep", "other"]).empty
    assert store.table(where={"duration": 8})["seed"].tolist() == [3, 4, 5]
    assert store.table(where={"seed": [1, 5], "nsfw_detected": None})["seed"].tolist() == [1]
    assert [r["seed"] for r in store.runs("zebras", status="succeeded")] == [4]
    with pytest.raises(ValueError, match="colour"):
        store.table(where={"colour": "red"})


def test_table_exports_to_parquet_and_csv(store: Store, tmp_path: Path) -> None:
    _fill(store)
    frame = store.table()
    frame.to_parquet(tmp_path / "runs.parquet")
    frame.to_csv(tmp_path / "runs.csv", index=False)
    back = pd.read_parquet(tmp_path / "runs.parquet")
    assert back["seed"].tolist() == frame["seed"].tolist()
    assert list(back.loc[0, "images"]) == ["refs/horse.png", "refs/beach.jpg"]
    assert back["created_at"].equals(frame["created_at"])
    csv = pd.read_csv(tmp_path / "runs.csv")
    assert len(csv) == 6 and csv["seed"].tolist() == frame["seed"].tolist()
    assert csv["run_id"].tolist() == frame["run_id"].tolist() and csv["status"].tolist() == frame["status"].tolist()


def test_rating_and_tags(store: Store) -> None:
    row = store.insert_run(_run())
    assert store.set_rating(row["run_id"], 4)["rating"] == 4
    assert store.set_rating(row["run_id"], None)["rating"] is None
    with pytest.raises(ValueError):
        store.set_rating(row["run_id"], 4.5)  # type: ignore[arg-type]
    assert store.add_tags(row["run_id"], "best", "horse", "best") == ["best", "horse"]
    assert store.add_tags(row["run_id"], "horse", "blue") == ["best", "horse", "blue"]
    assert store.remove_tags(row["run_id"], "horse", "absent") == ["best", "blue"]
    assert store.get_run(row["run_id"])["tags"] == ["best", "blue"]  # type: ignore[index]
    with pytest.raises(UnknownRunError):
        store.add_tags("nope", "x")


def test_experiments_and_reports(store: Store) -> None:
    store.ensure_experiment("horses", metadata={"owner": "ana"})
    store.ensure_experiment("horses", metadata={"goal": "seeds"})
    store.ensure_experiment("horses")
    assert store.experiment_metadata("horses") == {"owner": "ana", "goal": "seeds"}
    store.add_report(experiment="horses", path=Path("reports/horses.html"), params={"seeds": [1, 2]})
    (report,) = store.reports("horses")
    assert report["path"] == "reports/horses.html" and report["params"] == {"seeds": [1, 2]}
    assert report["created_at"].tzinfo == timezone.utc
    assert store.reports("zebras") == [] and store.experiments() == ["horses"]


# --- schema and migrations --------------------------------------------------------------------


def test_opening_an_old_v1_store_upgrades_it_in_place(store_url: str) -> None:
    assert migrate(store_url, target=1) == (0, 1)
    with sa.create_engine(_sa_url(store_url)).begin() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("runs")}
        assert "note" not in columns and "poster_path" not in columns
        conn.execute(
            sa.text(
                "INSERT INTO runs (run_id, experiment, status, run_key, created_at, updated_at, attempts, tags)"
                " VALUES ('old1', 'horses', 'succeeded', 'k-old', :t, :t, 1, '[\"v1\"]')"
            ),
            {"t": "2024-05-01 12:00:00.000000"},  # as the store writes it (no sqlite3 default adapter, gone in 3.12)
        )
    with Store(store_url) as upgraded:
        assert upgraded.schema_version == LATEST_VERSION >= 3
        old = upgraded.get_run("old1")
        assert (
            old is not None and old["status"] == "succeeded" and old["tags"] == ["v1"] and old["note"] is None
        )
        assert upgraded.update_run("old1", note="kept", poster_path="p.jpg", owner="host:1")["note"] == "kept"
    assert migrate(store_url) == (LATEST_VERSION, LATEST_VERSION)  # already current: nothing to do
    with sa.create_engine(_sa_url(store_url)).connect() as conn:
        versions = (
            conn.execute(sa.text("SELECT version FROM schema_version ORDER BY version")).scalars().all()
        )
    assert versions == list(range(1, LATEST_VERSION + 1))


def test_a_store_newer_than_the_library_is_refused(store_url: str) -> None:
    Store(store_url).close()
    with sa.create_engine(_sa_url(store_url)).begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (99, 'future', :t)"
            ),
            {"t": "2030-01-01 00:00:00.000000"},
        )
    with pytest.raises(SchemaVersionError, match="newer"):
        Store(store_url)


def test_a_foreign_database_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER)")
    with pytest.raises(SchemaVersionError, match="not a runflow store"):
        Store(path)
    with sqlite3.connect(path) as conn:
        assert [r[1] for r in conn.execute("PRAGMA table_info(runs)")] == ["id"]


def _sa_url(url: str) -> str:
    if "://" not in url:
        return f"sqlite:///{url}"
    return sa.make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


# --- concurrency and robustness ---------------------------------------------------------------


def _write_runs(url: str, worker: int, n: int, barrier: object) -> None:
    try:
        barrier.wait()  # type: ignore[attr-defined]
        with Store(url) as store:  # both processes open (and migrate) a fresh store at once
            for i in range(n):
                row = store.insert_run({"experiment": "proc", "run_key": f"w{worker}-{i}", "seed": i})
                store.update_run(row["run_id"], status="succeeded", attempts=1)
    except BaseException:
        traceback.print_exc()
        raise


@pytest.mark.slow
def test_two_processes_write_200_runs_each_without_errors(store_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_write_runs, args=(store_url, w, 200, barrier)) for w in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    with Store(store_url) as store:
        frame = store.table("proc")
        assert len(frame) == 400 and frame["run_key"].nunique() == 400
        assert frame["status"].eq("succeeded").all()
        assert store.integrity_check() == []


def test_sqlite_store_uses_wal_and_passes_integrity_check(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "runs.sqlite"
    with Store(path) as store:
        store.insert_run(_run())
        assert store.integrity_check() == [] and store.dialect == "sqlite"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_in_memory_store_works() -> None:
    with Store(":memory:") as store:
        store.insert_run(_run())
        assert len(store.table()) == 1


def test_unusable_urls_raise_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="postgresql://"):
        Store("mysql://ana@db/runs")
    with pytest.raises(ConfigurationError):
        Store("postgresql://ana@db:notaport/runs")


def test_errors_and_repr_hide_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        Store("postgresql://ana:s3cret-pw@127.0.0.1:1/runs")  # nothing listens on port 1
    assert "s3cret-pw" not in str(caught.value) and "postgresql+psycopg://ana:***@" in str(caught.value)


@pytest.mark.postgres
def test_postgres_url_is_mapped_to_psycopg_and_repr_hides_password() -> None:
    with pg_schema_url(timezone="Asia/Kolkata") as plain:
        url = sa.make_url(plain).set(drivername="postgresql")
        url = url.set(password=url.password or "s3cret-pw")  # trust auth ignores an unneeded password
        with Store(url.render_as_string(hide_password=False)) as store:
            assert store.dialect == "postgresql" and store.url.startswith("postgresql+psycopg://")
            assert str(url.password) not in repr(store) and "***" in repr(store)


# --- compare-and-set transitions --------------------------------------------------------------


def test_transition_moves_only_from_the_given_statuses(store: Store) -> None:
    row = store.insert_run(_run(seed=1))
    assert store.transition(row["run_id"], from_statuses=["planned"], status="submitting", owner="a:1", attempts=1)
    assert not store.transition(row["run_id"], from_statuses="planned", status="submitting", owner="b:2")
    after = store.get_run(row["run_id"])
    assert after is not None and (after["status"], after["owner"], after["attempts"]) == ("submitting", "a:1", 1)
    assert after["updated_at"] >= row["updated_at"]
    # expect= guards against A -> B -> A: the same status again, but another attempt
    assert not store.transition(row["run_id"], from_statuses=["submitting"], expect={"attempts": 0},
                                status="queued")
    assert store.transition(row["run_id"], from_statuses=["submitting"], expect={"attempts": 1, "remote_id": None},
                            status="queued", remote_id="r1")
    with pytest.raises(UnknownRunError):
        store.transition("nope", from_statuses=["planned"], status="submitting")
    with pytest.raises(ValueError, match="from_statuses"):
        store.transition(row["run_id"], from_statuses=[], status="submitting")
    with pytest.raises(ValueError, match="unknown run column"):
        store.transition(row["run_id"], from_statuses=["queued"], colour="red")


def _race_transitions(url: str, run_ids: list[str], worker: int, barrier: object, wins: object) -> None:
    try:
        with Store(url) as store:
            barrier.wait()  # type: ignore[attr-defined]
            won = [rid for rid in run_ids
                   if store.transition(rid, from_statuses=["planned"], status="submitting", owner=f"w:{worker}")]
        wins.put(won)  # type: ignore[attr-defined]
    except BaseException:
        traceback.print_exc()
        raise


def test_transition_race_has_exactly_one_winner_per_run(store_url: str) -> None:
    with Store(store_url) as store:
        run_ids = [store.insert_run(_run(seed=i))["run_id"] for i in range(40)]
    ctx = multiprocessing.get_context("spawn")
    barrier, wins = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_race_transitions, args=(store_url, run_ids, w, barrier, wins)) for w in range(4)]
    for p in procs:
        p.start()
    won = [rid for _ in procs for rid in wins.get(timeout=120)]
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * 4
    assert sorted(won) == sorted(run_ids)  # each run won exactly once
    with Store(store_url) as store:
        owners = {r["run_id"]: r["owner"] for r in store.runs("horses")}
    assert all(owners[rid] and owners[rid].startswith("w:") for rid in run_ids)


def test_transition_takes_one_status_as_a_string(store: Store) -> None:
    row = store.insert_run(_run(seed=2))
    assert store.transition(row["run_id"], from_statuses="planned", status="submitting")
    assert store.transition(row["run_id"], from_statuses=("queued", "submitting"), status="queued")
    assert store.get_run(row["run_id"])["status"] == "queued"  # type: ignore[index]
    assert not store.transition(row["run_id"], from_statuses="planned", status="submitting")
    for bad in ([""], ["planned", ""], [None], "", ["planned", 3]):
        with pytest.raises(ValueError, match="from_statuses"):
            store.transition(row["run_id"], from_statuses=bad, status="failed")  # type: ignore[arg-type]
    assert store.get_run(row["run_id"])["status"] == "queued"  # type: ignore[index]


def test_an_unknown_run_is_named_when_a_transition_cannot_find_it(store: Store) -> None:
    with pytest.raises(UnknownRunError, match="no run with run_id 'missing-run'"):
        store.transition("missing-run", from_statuses="planned", status="submitting")


@pytest.mark.parametrize("column", ["experiment", "run_key", "status", "created_at", "attempts"])
def test_a_claim_cannot_lose_its_identity_or_status(store: Store, column: str) -> None:
    row = store.insert_run(_run(seed=3))
    with pytest.raises(ValueError, match=f"'{column}' cannot be None"):
        store.update_run(row["run_id"], **{column: None})
    with pytest.raises(ValueError, match=f"'{column}' cannot be None"):
        store.transition(row["run_id"], from_statuses="planned", **{column: None})
    assert store.get_run(row["run_id"]) == row  # nothing was written


def test_a_run_id_cannot_be_changed(store: Store) -> None:
    row = store.insert_run(_run(seed=4))
    with pytest.raises(ValueError, match="run_id cannot be changed"):
        store.update_run(row["run_id"], run_id="other")
    with pytest.raises(ValueError, match="run_id cannot be changed"):
        store.transition(row["run_id"], from_statuses="planned", run_id="other")
    assert store.get_run("other") is None and store.get_run(row["run_id"]) == row


def test_where_filters_refuse_list_and_mapping_columns(store: Store) -> None:
    store.insert_run(_run(seed=5, tags=["a"], params={"seed": 5}))
    for where in ({"tags": ["a"]}, {"images": ["x.png"]}, {"params": {"seed": 5}}):
        with pytest.raises(ValueError, match="cannot filter on"):
            store.table(where=where)


def test_status_filters_take_any_iterable(store: Store) -> None:
    ok = store.insert_run(_run(seed=6, status="succeeded"))
    store.insert_run(_run(seed=7, status="failed"))
    assert [r["run_id"] for r in store.runs("horses", status=(s for s in ["succeeded"]))] == [ok["run_id"]]
    assert [r["run_id"] for r in store.runs("horses", status={"succeeded"})] == [ok["run_id"]]
    assert [r["run_id"] for r in store.runs("horses", status="succeeded")] == [ok["run_id"]]


@pytest.mark.parametrize("tag", ["50%", "a_b", "back\\slash", 'quote"d', "ünï"])
def test_tags_with_like_wildcards_and_escapes_match_exactly(store: Store, tag: str) -> None:
    mine = store.insert_run(_run(seed=8, tags=[tag]))
    store.insert_run(_run(seed=9, tags=["50x", "aXb", "back/slash", "quoted", "uni"]))
    assert store.table(tags=[tag])["run_id"].tolist() == [mine["run_id"]]
