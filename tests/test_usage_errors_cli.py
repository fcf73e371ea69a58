"""The CLI refuses bad input with one readable line naming the argument (no traceback), exits
non-zero, and leaves no partial output behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runflow_nb.cli import main
from runflow_nb.store.runstore import Store


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RUNFLOW_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``runflow-nb ARGS`` in-process: (exit code, stdout, stderr); argparse's exits count too."""
    try:
        rc = main(args)
    except SystemExit as exc:
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def _refused(rc: int, err: str, *words: str) -> None:
    assert rc != 0, err
    assert "Traceback" not in err, err
    assert err.strip(), "no message on stderr"
    line = next((ln for ln in err.splitlines() if ln.startswith("runflow-nb")), "")
    for word in words:
        assert word in line, f"{word!r} not in the error line {line!r} (stderr: {err!r})"


@pytest.fixture
def store_with_experiment(tmp_path: Path) -> str:
    path = tmp_path / "runs.sqlite"
    with Store(str(path)) as st:
        st.ensure_experiment("exp")
    return str(path)


# -- table --out ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "parquet", "markdown"])
def test_table_out_a_folder_is_refused(fmt: str, store_with_experiment: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "outdir"
    folder.mkdir()
    rc, _, err = _cli(["table", "exp", "--store", store_with_experiment, "--format", fmt, "--out", str(folder)],
                      capsys)
    _refused(rc, err, "--out", "folder")
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_out_in_a_missing_folder_is_refused(fmt: str, store_with_experiment: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "missing" / f"t.{fmt}"
    rc, _, err = _cli(["table", "exp", "--store", store_with_experiment, "--format", fmt, "--out", str(target)],
                      capsys)
    _refused(rc, err, "--out")
    assert not target.parent.exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_table_parquet_out_where_nothing_can_be_written_is_refused(store_with_experiment: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _cli(["table", "exp", "--store", store_with_experiment, "--format", "parquet",
                       "--out", "/proc/x.parquet"], capsys)
    _refused(rc, err, "--out", "/proc/x.parquet")
    assert not os.path.exists("/proc/x.parquet")


def test_table_out_still_writes_a_whole_file_and_nothing_else(store_with_experiment: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ok"
    folder.mkdir()
    for fmt in ("csv", "parquet", "markdown"):
        target = folder / f"t.{fmt}"
        rc, out, err = _cli(["table", "exp", "--store", store_with_experiment, "--format", fmt,
                             "--out", str(target)], capsys)
        assert rc == 0, err
        assert target.is_file() and str(target) in out
    assert sorted(p.name for p in folder.iterdir()) == ["t.csv", "t.markdown", "t.parquet"]


# -- report: not a notebook, --out a file ----------------------------------------------------------

@pytest.mark.parametrize("name,content", [
    ("notes.txt", "hello\n"),
    ("bad.ipynb", "not json at all"),
    ("wrong.ipynb", '{"a": 1}'),
    ("list.ipynb", "[1]"),
    ("cells.ipynb", '{"nbformat": 4, "nbformat_minor": 5, "cells": [5], "metadata": {}}'),
    ("binary.ipynb", b"\xff\xfe\x00"),
])
def test_report_of_a_file_that_is_not_a_notebook_says_so(name: str, content: str | bytes, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    rc, _, err = _cli(["report", str(path)], capsys)
    _refused(rc, err, "not a Jupyter notebook", name)
    assert not (tmp_path / "runflow_reports").exists()


@pytest.mark.parametrize("command", [["report", "seed_sweep"], ["demo"]])
def test_report_out_an_existing_file_is_refused_and_the_file_kept(command: list[str], tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "existing_file"
    existing.write_text("keep me")
    rc, _, err = _cli([*command, "--out", str(existing)], capsys)
    _refused(rc, err, "--out", "file")
    assert existing.read_text() == "keep me"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
@pytest.mark.parametrize("command", [["report", "seed_sweep"], ["demo"]])
def test_report_out_where_no_folder_can_be_made_is_refused(command: list[str],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _cli([*command, "--out", "/proc/x"], capsys)
    _refused(rc, err, "--out", "/proc/x")


def test_run_report_out_dir_a_file_is_a_library_error(tmp_path: Path) -> None:
    from runflow_nb.errors import ConfigurationError
    from runflow_nb.report.build import run_report

    existing = tmp_path / "existing_file"
    existing.write_text("keep me")
    with pytest.raises(ConfigurationError, match="out_dir"):
        run_report("seed_sweep", out_dir=existing, quiet=True)
    assert existing.read_text() == "keep me"


def test_run_report_of_a_text_file_is_a_library_error(tmp_path: Path) -> None:
    from runflow_nb.errors import ConfigurationError
    from runflow_nb.report.build import run_report

    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(ConfigurationError, match="not a Jupyter notebook"):
        run_report(notes, quiet=True)


# -- sweep: plan size, seed bounds, empty lists -----------------------------------------------------

_SWEEP = ["sweep", "--experiment", "x", "--prompt", "a horse", "--model", "t2v", "--dry-run"]


@pytest.mark.parametrize("seeds", ["1-20000", "1-999999999", "0-5000,6000-12000"])
def test_sweep_of_too_many_seeds_is_refused_before_building_it(seeds: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    import time

    t0 = time.monotonic()
    rc, out, err = _cli([*_SWEEP, "--seeds", seeds], capsys)
    _refused(rc, err, "--seeds", "10,000")
    assert "dry run" not in out
    assert time.monotonic() - t0 < 2


def test_sweep_whose_grid_is_too_big_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _cli([*_SWEEP, "--seeds", "0-4999", "--duration", "3,4,5"], capsys)
    _refused(rc, err, "15,000 runs", "10,000")
    assert "dry run" not in out


@pytest.mark.parametrize("seeds", ["2147483640-2147483650", "2147483648", "99999999999999999999-99999999999999999999"])
def test_sweep_seeds_out_of_range_are_refused_with_the_bounds(seeds: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _cli([*_SWEEP, "--seeds", seeds], capsys)
    _refused(rc, err, "--seeds", "0-2147483647")
    assert "dry run" not in out


@pytest.mark.parametrize("option", ["--duration", "--resolution", "--aspect-ratio", "--model", "--seeds"])
def test_sweep_an_empty_list_is_refused(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _cli([*_SWEEP, option, ","], capsys)
    _refused(rc, err, option)
    assert "dry run" not in out


@pytest.mark.parametrize("text", ["a-b", "1-x", "five"])
def test_sweep_seeds_that_are_not_numbers_say_what_is_expected(text: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _cli([*_SWEEP, "--seeds", text], capsys)
    _refused(rc, err, "--seeds", "0-7")


def test_sweep_at_the_limit_still_plans(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _cli([*_SWEEP, "--seeds", "1-4", "--duration", "3,5"], capsys)
    assert rc == 0, err
    assert "8 runs" in out and "dry run: nothing submitted" in out
