"""Text progress (scripts, papermill, nbval) goes to standard error, like tqdm's, so what a script
prints on standard output stays clean to pipe."""

from __future__ import annotations

from pathlib import Path

import pytest

import runflow_nb as rf


def test_text_progress_lines_go_to_stderr_and_leave_stdout_clean(ref_images: list[Path], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    exp = rf.Experiment("progress", store=tmp_path / "runs.sqlite", artifacts=tmp_path / "artifacts")
    plan = rf.grid(prompt="character1 trots", images=[[ref_images[0]]], seed=[1], duration=3, resolution="720p")
    capsys.readouterr()
    df = exp.run(plan, progress="text")
    assert list(df.status) == ["succeeded"]
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0].startswith("runflow_nb: sweep of 1 run") and "Ctrl-C stops submitting" in lines[0]
    assert any(line.startswith("runflow_nb: ") and "1/1" in line for line in lines[1:]), err
