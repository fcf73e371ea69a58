"""Library errors read in one screen in a notebook (what was wrong, the fix, the line that called the
library), with the full chain one ``%tb`` away; papermill, nbconvert and plain Python still show them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import runflow_nb as rf
from runflow_nb.errors import UsageError, ValidationError

REPO = Path(__file__).resolve().parents[1]
BAD_CELL = "import runflow_nb as rf\nplan = rf.grid(prompt='character1 runs', images=['/nope/horse.png'], duration=99)"


def test_a_misspelt_argument_says_which_one_was_meant() -> None:
    with pytest.raises(UsageError, match=r"grid\(\) has no argument 'seeds': did you mean seed=\?"):
        rf.grid(prompt="character1 runs", seeds=[1, 2])
    with pytest.raises(UsageError, match="it takes: prompt, images, seed"):
        rf.grid(colour="red")


def test_a_missing_image_file_is_named_by_the_callers_argument() -> None:
    with pytest.raises(ValidationError) as info:
        rf.grid(prompt="character1 runs", images=["/nope/horse.png"])
    assert info.value.fields == ["plan[0].images[0]"] and "image_urls" not in str(info.value)
    with pytest.raises(ValidationError) as one:
        rf.VideoRequest.build(model="i2v", image="/nope/horse.png")
    assert one.value.fields == ["image"]


@pytest.fixture
def shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell

    sh = InteractiveShell.instance()
    shown: list[list[str]] = []
    sh._showtraceback = lambda etype, value, stb: shown.append(list(stb))  # what the front end gets
    sh.shown = shown
    yield sh
    InteractiveShell.clear_instance()


def test_a_library_error_in_a_cell_reads_in_one_screen_and_tb_shows_the_rest(shell: Any) -> None:
    shell.run_cell(BAD_CELL)
    short = "\n".join(shell.shown[-1])
    assert len(short.splitlines()) <= 12
    assert "ValidationError" in short and "2 problems with the request (nothing was sent)" in short
    assert "images[0]: no file at '/nope/horse.png'" in short and "check the path" in short  # what and the fix
    assert "duration: 99 is out of range — use 3–15" in short
    assert "raised by" in short and "rf.grid(prompt='character1 runs'" in short  # the user's own line
    assert "%tb" in short and "_boundary.py" not in short and "plan.py" not in short  # internals hidden
    shell.run_cell("%tb")
    full = "\n".join(shell.shown[-1])
    assert "Traceback" in full and "plan.py" in full and "_boundary.py" in full  # the whole chain
    assert len(full.splitlines()) > len(short.splitlines())


def test_a_misspelt_argument_in_a_cell_names_the_cells_line_not_the_standard_library(shell: Any) -> None:
    shell.run_cell("import runflow_nb as rf\nplan = rf.grid(prompt='character1 runs', seeds=[1, 2])")
    short = "\n".join(shell.shown[-1])
    assert "did you mean seed=?" in short
    assert "raised by" in short and "a cell, line 2: plan = rf.grid(prompt='character1 runs', seeds=[1, 2])" in short
    assert "contextlib.py" not in short


def test_an_interrupted_sweep_reads_in_one_screen_and_tb_shows_the_rest(shell: Any) -> None:
    shell.run_cell("from runflow_nb.errors import SweepInterrupted\n"
                   "try:\n    raise KeyboardInterrupt\n"
                   "except KeyboardInterrupt as e:\n"
                   "    raise SweepInterrupted('stopped: nothing more was submitted; 14 left planned') from e")
    short = "\n".join(shell.shown[-1])
    assert len(short.splitlines()) <= 4, short
    assert "SweepInterrupted" in short and "stopped: nothing more was submitted; 14 left planned" in short
    assert "Traceback" not in short and "caused by KeyboardInterrupt" not in short and "%tb" in short
    shell.run_cell("%tb")
    assert "Traceback" in "\n".join(shell.shown[-1])


def test_other_errors_keep_ipythons_own_traceback(shell: Any) -> None:
    shell.run_cell("def f():\n    return 1 / 0\nf()")
    text = "\n".join(shell.shown[-1])
    assert "ZeroDivisionError" in text and "Traceback" in text and "%tb" not in text


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNFLOW_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return env


def test_plain_python_shows_the_usual_traceback() -> None:
    out = subprocess.run([sys.executable, "-c", BAD_CELL], capture_output=True, text=True, env=_env(), timeout=120)
    assert out.returncode == 1
    assert "Traceback (most recent call last)" in out.stderr and "ValidationError" in out.stderr
    assert "images[0]: no file at '/nope/horse.png'" in out.stderr


def test_papermill_reports_the_error_and_its_fix(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    papermill = pytest.importorskip("papermill")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(BAD_CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = tmp_path / "bad.ipynb"
    nbformat.write(nb, src)
    old = dict(os.environ)
    os.environ.update(_env())
    try:
        with pytest.raises(papermill.PapermillExecutionError) as info:
            papermill.execute_notebook(str(src), str(tmp_path / "out.ipynb"), kernel_name="python3",
                                       progress_bar=False, cwd=str(tmp_path))
    finally:
        os.environ.clear()
        os.environ.update(old)
    err = info.value
    assert err.ename == "ValidationError" and "images[0]: no file at" in err.evalue
    text = str(err)
    assert "check the path" in text and "%tb" in text  # the saved output reads in one screen too
