"""pyproject.toml declares what the package imports, and only that, with floors that hold on every
supported Python."""

from __future__ import annotations

import ast
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# Declared, never imported by name: what other libraries load on the package's behalf.
LOADED_BY_OTHERS = {
    "pyarrow": "pandas' parquet engine (exp.to_parquet) and string dtype",
    "ipykernel": "the kernel papermill runs a report in",
}


def _imported_modules() -> set[str]:
    """Top-level names of the third-party modules runflow_nb imports anywhere (lazily included)."""
    names: set[str] = set()
    for path in (ROOT / "runflow_nb").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module.partition(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "runflow_nb"}


def _names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def test_every_third_party_import_is_a_declared_dependency() -> None:
    dists = packages_distributions()
    declared = _names(PROJECT["dependencies"])
    for extra in PROJECT["optional-dependencies"].values():
        declared |= _names(extra)
    undeclared = {}
    for module in sorted(_imported_modules()):
        providers = {canonicalize_name(d) for d in dists.get(module, [module])}
        if not providers & declared:
            undeclared[module] = sorted(providers)
    assert undeclared == {}


def test_every_runtime_dependency_is_imported_by_the_package() -> None:
    dists = packages_distributions()
    imported = {canonicalize_name(d) for m in _imported_modules() for d in dists.get(m, [m])}
    unused = _names(PROJECT["dependencies"]) - imported - set(LOADED_BY_OTHERS)
    assert unused == set(), "declared but never imported: move it to an extra, or drop it"


def test_matplotlib_is_the_notebooks_extra_not_a_dependency() -> None:
    assert "matplotlib" not in _names(PROJECT["dependencies"])
    assert "matplotlib" in _names(PROJECT["optional-dependencies"]["notebooks"])
    assert "matplotlib" in _names(PROJECT["optional-dependencies"]["dev"])


def _allowed(name: str, version: str, python: str) -> bool:
    """Whether ``name==version`` satisfies every requirement on ``name`` that applies on ``python``."""
    env = {"python_version": python, "python_full_version": f"{python}.0"}
    reqs = [Requirement(r) for r in PROJECT["dependencies"]]
    applying = [r for r in reqs if canonicalize_name(r.name) == name and (r.marker is None or r.marker.evaluate(env))]
    assert applying, f"{name} is not a dependency"
    return all(r.specifier.contains(version) for r in applying)


@pytest.mark.parametrize(("name", "too_old", "first_good"), [
    ("sqlalchemy", "2.0.30", "2.0.31"),  # 2.0.30 and older fail to import on Python 3.13
    ("numpy", "2.0.2", "2.1.0"),  # the first releases with Python 3.13 wheels, from here down
    ("pandas", "2.2.2", "2.2.3"),
    ("pyarrow", "17.0.0", "18.0.0"),
    ("pydantic", "2.7.4", "2.8.0"),
])
def test_floors_on_python_3_13_are_releases_that_work_there(name: str, too_old: str, first_good: str) -> None:
    assert not _allowed(name, too_old, "3.13")
    assert _allowed(name, first_good, "3.13")
    assert _allowed(name, too_old, "3.10")  # older Pythons keep the lower floor


def test_every_test_file_the_version_jobs_name_exists() -> None:
    """scripts/test.sh and tests/conftest.py name test files for the dependency-version jobs; a name that
    matches no file would run nothing (pytest exits 4) or silently leave a dependency family untested."""
    import re

    tests = Path(__file__).resolve().parent
    script = (tests.parent / "scripts" / "test.sh").read_text()
    named = re.findall(r"tests/[\w/]+\.py", script)
    assert named and [n for n in named if not (tests.parent / n).is_file()] == []
    conftest = (tests / "conftest.py").read_text()
    compat = re.findall(r'"(test_\w+\.py)"', conftest[conftest.index("COMPAT_FILES"):])
    present = {p.name for p in tests.rglob("test_*.py")}
    assert compat and [n for n in compat if n not in present] == []
