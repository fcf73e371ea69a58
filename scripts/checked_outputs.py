"""Store the outputs nbval compares: run each bundled notebook and keep the outputs of the cells that
hold a ``# NBVAL_CHECK_OUTPUT`` line (and of no other cell).

    python scripts/checked_outputs.py              # every notebooks/*.ipynb with such a cell
    python scripts/checked_outputs.py notebooks/seed_sweep.ipynb

``make test`` runs the notebooks under ``pytest --nbval-lax``: every cell must run, and the marked
cells (deterministic ones: estimates, validation messages) must print what is stored here. Run this
after changing what such a cell shows. Offline, in a throwaway store, with the notebook's defaults.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile

import nbformat
from nbclient import NotebookClient

MARK = "# NBVAL_CHECK_OUTPUT"
ROOT = pathlib.Path(__file__).resolve().parents[1]


def checked(cell: nbformat.NotebookNode) -> bool:
    """Whether nbval compares this cell's output: a comment line that is exactly the marker."""
    return cell.cell_type == "code" and any(
        line.strip().startswith("#") and line.strip().lstrip("#").strip() == MARK.lstrip("# ")
        for line in cell.source.splitlines())


def store_outputs(path: pathlib.Path) -> int:
    """Run ``path`` and write it back with outputs on its marked cells only; returns how many."""
    nb = nbformat.read(path, as_version=4)
    marked = [i for i, c in enumerate(nb.cells) if checked(c)]
    if not marked:
        return 0
    with tempfile.TemporaryDirectory(prefix="runflow-checked-") as tmp:
        for name in ("RUNFLOW_API_KEY", "RUNFLOW_BASE_URL", "RUNFLOW_BACKEND", "RUNFLOW_ARTIFACTS"):
            os.environ.pop(name, None)
        os.environ["RUNFLOW_STORE"] = str(pathlib.Path(tmp) / "runflow.sqlite")
        run = nbformat.read(path, as_version=4)
        NotebookClient(run, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp}}).execute()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if i in marked:
            cell.outputs = run.cells[i].outputs
            cell.execution_count = 1  # nbval compares only cells that were run
            for out in cell.outputs:
                if "execution_count" in out:
                    out["execution_count"] = 1
        else:
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return len(marked)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=pathlib.Path)
    args = ap.parse_args()
    for path in args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb")):
        n = store_outputs(path)
        if n:
            print(f"{path}: stored the outputs of {n} checked cell(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
