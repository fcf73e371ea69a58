"""Every example in the package's docstrings runs and prints what it shows (examples that need a
network, a browser or a live kernel say ``# doctest: +SKIP`` on each line)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import runflow_nb

MODULES = sorted(m.name for m in pkgutil.walk_packages(runflow_nb.__path__, "runflow_nb.")
                 if not m.name.endswith("__main__"))  # __main__ runs the CLI when imported


def test_every_module_is_searched() -> None:
    assert {"runflow_nb.emulator.app", "runflow_nb.simulator.scenes", "runflow_nb.report.params"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner()
    report: list[str] = []
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, name, module=module):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
