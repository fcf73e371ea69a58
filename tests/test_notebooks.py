"""The shipped notebooks as files: stripped, runnable offline, with the documented parameters.

Executing them is nbval's job: ``scripts/test.sh`` runs ``pytest --nbval-lax notebooks/*.ipynb`` as its own
step (the simulator, small defaults), comparing the stored output of every cell marked
``# NBVAL_CHECK_OUTPUT`` (``scripts/checked_outputs.py`` stores them), and tests/test_report.py runs
seed_sweep.ipynb through papermill with non-default parameters.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from checked_outputs import checked

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NAMES = ["quickstart.ipynb", "seed_sweep.ipynb", "compare.ipynb", "compare_models.ipynb"]
SWEEP_PARAMETERS = ["experiment", "prompt", "images", "seeds", "durations", "resolutions", "aspect_ratios",
                    "concurrency", "budget_usd", "store", "artifacts_dir"]


def _parameters(nb: nbformat.NotebookNode) -> dict[str, object]:
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged 'parameters'"
    tree = ast.parse(cells[0].source)
    return {node.targets[0].id: ast.literal_eval(node.value)  # type: ignore[attr-defined]
            for node in tree.body if isinstance(node, ast.Assign)}


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stripped_and_explains_the_simulator(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert not {"widgets", "papermill"} & set(nb.metadata), "execution metadata committed"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "RUNFLOW_API_KEY" in first.source and "simulator" in first.source
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if checked(cell):  # nbval compares these: the output is stored, and the cell counts as run
            assert cell.outputs and cell.execution_count is not None, f"{name} cell {i}: no stored output"
            assert not any(o.get("name") == "stderr" or o.output_type == "error" for o in cell.outputs)
        else:
            assert cell.outputs == [] and cell.execution_count is None, f"{name} cell {i}: outputs are not stripped"
    assert (NOTEBOOKS / name).stat().st_size < 20_000


def test_seed_sweep_parameters_are_the_documented_contract() -> None:
    params = _parameters(nbformat.read(NOTEBOOKS / "seed_sweep.ipynb", as_version=4))
    assert list(params) == SWEEP_PARAMETERS
    assert params["images"] is None  # the shipped samples
    assert params["durations"] == [3] and params["resolutions"] == ["720p"] and len(params["seeds"]) <= 3
    # None: the settings default (RUNFLOW_STORE, else runflow_data/runflow.sqlite), the CLI's store too.
    assert params["store"] is None and params["artifacts_dir"] is None


def test_compare_takes_an_experiment_and_where_it_lives() -> None:
    params = _parameters(nbformat.read(NOTEBOOKS / "compare.ipynb", as_version=4))
    assert list(params) == ["experiment", "store", "artifacts_dir"]
    assert params["store"] is None and params["artifacts_dir"] is None


def test_compare_models_parameters_are_the_documented_contract() -> None:
    params = _parameters(nbformat.read(NOTEBOOKS / "compare_models.ipynb", as_version=4))
    assert list(params) == ["experiment", "prompt", "references", "seeds", "models", "duration", "resolution",
                            "concurrency", "budget_usd", "edit_prompt", "audio_setting", "store", "artifacts_dir"]
    assert params["references"] is None and params["duration"] == 3 and params["resolution"] == "720p"
    assert len(params["models"]) == 3 and len(params["seeds"]) == 2  # the demo budget: 3 models × 2 seeds
    assert params["store"] is None and params["artifacts_dir"] is None  # RUNFLOW_STORE / RUNFLOW_ARTIFACTS apply


def test_ci_runs_every_notebook_with_nbval() -> None:
    script = (REPO / "scripts" / "test.sh").read_text()
    assert "--nbval-lax" in script and "notebooks/*.ipynb" in script
    assert "-p no:randomly" in script  # a notebook's cells run in order


def test_the_estimates_are_compared_by_nbval() -> None:
    for name in ("seed_sweep.ipynb", "compare_models.ipynb"):
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        (cell,) = [c for c in nb.cells if checked(c)]
        assert "estimate()" in cell.source
        shown = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.outputs)
        assert "runs=" in shown or "runs, " in shown, shown


def test_every_shipped_notebook_is_bundled_by_name_and_takes_its_store_from_the_settings() -> None:
    from runflow_nb.report.build import BUNDLED_NOTEBOOKS, bundled_notebook

    shipped = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    assert sorted(BUNDLED_NOTEBOOKS) == shipped
    for name in shipped:
        # the one copy: linked into the package in a checkout, copied into a wheel
        assert bundled_notebook(name).read_bytes() == (NOTEBOOKS / f"{name}.ipynb").read_bytes()
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        params = _parameters(nb) if any("parameters" in c.metadata.get("tags", []) for c in nb.cells) else {}
        if "store" in params:  # None: RUNFLOW_STORE / RUNFLOW_ARTIFACTS, else the one default the CLI uses too
            assert params["store"] is None and params.get("artifacts_dir") is None, name
