"""Commands the bundled notebooks (and so their reports) tell readers to run work as written from the
checkout root: every notebook they name exists there, every parameter they pass is the notebook's
own, and ``runflow-nb`` parses them."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from runflow_nb.cli import build_parser
from runflow_nb.report.params import BUNDLED_NOTEBOOKS, find_notebook, notebook_defaults

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _commands() -> list[tuple[str, str]]:
    found = []
    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            for line in "".join(cell["source"]).splitlines():
                text = line.strip().strip("`")
                if text.startswith(("runflow-nb ", "papermill ")):
                    found.append((path.name, text))
    return found


def test_the_notebooks_write_commands_down() -> None:
    assert {name for name, _ in _commands()} >= {"seed_sweep.ipynb", "compare_models.ipynb"}


@pytest.mark.parametrize(("notebook", "command"), _commands())
def test_each_written_command_works_from_the_checkout_root(notebook: str, command: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat

    monkeypatch.chdir(REPO)
    argv = shlex.split(command)
    if argv[0] == "runflow-nb":
        args = build_parser().parse_args(argv[1:])  # a command runflow-nb accepts
        target = find_notebook(args.notebook) if args.command == "report" else None
        params = [name for name, _ in args.parameter] if args.command == "report" else []
    else:
        target = Path(argv[1])
        assert target.is_file(), f"{notebook} says to run {argv[1]!r}, which does not exist from the checkout root"
        params = [argv[i + 1] for i, a in enumerate(argv) if a in ("-p", "--parameters")]
    if target is not None:
        assert target.name == notebook or Path(target).stem in BUNDLED_NOTEBOOKS
        _, defaults = notebook_defaults(nbformat.read(target, as_version=4))
        assert set(params) <= set(defaults), (command, sorted(defaults))
