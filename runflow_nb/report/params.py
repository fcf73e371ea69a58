"""A report's parameters: read from the CLI and YAML, the notebook located (a path or a bundled
name), its defaults read from the cell tagged ``parameters``, file locations made absolute."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError

__all__ = ["BUNDLED_NOTEBOOKS", "PATH_PARAMETERS", "absolute", "bundled_notebook", "find_notebook",
           "notebook_defaults", "parameter_list", "parse_parameters"]

PATH_PARAMETERS = ("store", "artifacts_dir", "images")
"""Notebook parameters holding file locations (or lists of them); made absolute before the run."""

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # runflow_nb/


def parameter_list(value: Any) -> list[Any] | None:
    """A list-valued notebook parameter as a list (None stays None).

    papermill's own CLI passes ``-p seeds "[1, 2, 3]"`` as the text ``"[1, 2, 3]"``: text that
    starts with ``[`` is read as a YAML list; any other single value becomes a list of one.

    >>> parameter_list("[1, 2, 3]"), parameter_list(5), parameter_list("720p"), parameter_list(None)
    ([1, 2, 3], [5], ['720p'], None)
    """
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().startswith("["):
            import yaml

            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                parsed = None
            if isinstance(parsed, list):
                return parsed
        return [value]
    if isinstance(value, (bytes, Mapping)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def parse_parameters(pairs: Iterable[Sequence[str]] | None = None,
                     file: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Parameters from ``-f params.yaml`` then ``-p NAME VALUE`` pairs (a pair wins over the file).

    Values are YAML, so ``-p seeds "[1, 2, 3]"`` is a list and ``-p budget_usd 5`` a number; text that
    YAML would read as a mapping (``-p prompt "character1: runs"``) or cannot parse stays text.
    """
    import yaml

    params: dict[str, Any] = {}
    if file is not None:
        path = Path(file)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(f"cannot read the parameters file {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"the parameters file {path} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict) or not all(isinstance(k, str) for k in loaded):
            raise ConfigurationError(f"the parameters file {path} must hold a mapping of names to values")
        params.update(loaded)
    for pair in pairs or ():
        if len(pair) != 2:
            raise ConfigurationError(f"a parameter is NAME VALUE, got {list(pair)!r}")
        name, text = pair
        if not name.isidentifier():
            raise ConfigurationError(f"parameter name {name!r} is not a Python identifier")
        params[name] = _yaml_value(text)
    return params


def _yaml_value(text: str) -> Any:
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if value is None and text.strip() not in ("null", "~", "None", "none"):
        return text  # "" stays ""
    if isinstance(value, dict) and not text.lstrip().startswith("{"):
        return text
    if isinstance(value, str) and value == "None":
        return None
    return value


# -- locating notebooks ---------------------------------------------------------------------------

BUNDLED_NOTEBOOKS = ("quickstart", "seed_sweep", "compare", "compare_models")
"""Notebooks shipped inside the package (``runflow_nb/notebooks/``), usable by name."""


def bundled_notebook(name: str) -> Path:
    """The packaged copy of a bundled notebook (``"seed_sweep"`` or ``"seed_sweep.ipynb"``).

    >>> bundled_notebook("seed_sweep").name
    'seed_sweep.ipynb'
    """
    stem = name[:-len(".ipynb")] if name.endswith(".ipynb") else name
    path = PACKAGE_DIR / "notebooks" / f"{stem}.ipynb"
    if "/" in stem or os.sep in stem or not path.is_file():
        raise ConfigurationError(f"no bundled notebook {name!r}: the bundled ones are "
                                 + ", ".join(BUNDLED_NOTEBOOKS))
    return path


def find_notebook(name: str | os.PathLike[str]) -> Path:
    """An existing path as given, else a bundled notebook by name (``"seed_sweep"`` or ``"seed_sweep.ipynb"``).

    Bundled notebooks ship inside the package (``runflow_nb/notebooks/``), so names work from an
    installed wheel in any folder; a file of that name in the working directory wins when the
    caller names it with its suffix or a path (``./seed_sweep.ipynb``).
    """
    path = Path(name).expanduser()
    if path.is_file():
        return path
    if path.parent == Path(".") and path.suffix in ("", ".ipynb"):
        try:
            return bundled_notebook(path.name)
        except ConfigurationError:
            pass
    raise ConfigurationError(f"no notebook {os.fspath(name)!r}: give a path to an .ipynb file, or the name "
                             "of a bundled one (" + ", ".join(BUNDLED_NOTEBOOKS) + ")")


def notebook_defaults(nb: Any) -> tuple[bool, dict[str, Any]]:
    """(has a parameters cell, {name: default}) from the cell tagged ``parameters``."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            defaults: dict[str, Any] = {}
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:
                return True, defaults
            for node in tree.body:
                targets = node.targets if isinstance(node, ast.Assign) else (
                    [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else [])
                for target in targets:
                    if isinstance(target, ast.Name):
                        try:
                            defaults[target.id] = ast.literal_eval(node.value)
                        except ValueError:
                            defaults[target.id] = None
            return True, defaults
    return False, {}


def absolute(value: Any, base: Path) -> Any:
    """A relative file location (or a list of them) made absolute against ``base``.

    URLs, ``data:`` URIs, ``:memory:`` and anything that is not text are returned unchanged.
    """
    if isinstance(value, (list, tuple)):
        return [absolute(v, base) for v in value]
    if not isinstance(value, (str, os.PathLike)):
        return value
    text = os.fspath(value)
    if not text or text == ":memory:" or "://" in text or text.startswith("data:"):
        return text
    path = Path(text).expanduser()
    return os.path.normpath(path if path.is_absolute() else base / path)


