"""Print requirements declared in pyproject.toml, one a line, for the CI's install jobs.

    python scripts/requirements.py            # the package's own dependencies, the notebooks and team extras
    python scripts/requirements.py --tests    # ... plus the test tools the core suite needs

Used by scripts/test.sh's lowest-versions job, which installs exactly these with
``uv pip install --resolution lowest-direct`` so every declared floor is what gets tested.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

try:
    import tomllib
except ImportError:  # Python 3.10: pip vendors tomli
    from pip._vendor import tomli as tomllib  # type: ignore[no-redef]

# Test tools the core suite does not import (browser tests, lint): left out to keep the job short.
NOT_FOR_CORE = {"playwright", "jupyterlab", "ruff", "mypy"}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tests", action="store_true", help="add the test extra (minus browser and lint tools)")
    args = ap.parse_args()
    project = tomllib.loads((pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    reqs = list(project["dependencies"]) + list(extras["notebooks"]) + list(extras["team"])
    if args.tests:
        for req in extras["test"]:
            name = req.split("[")[0].split(">")[0].split("<")[0].split("=")[0].split(";")[0].strip().lower()
            if name not in NOT_FOR_CORE:
                reqs.append(req)
    for req in reqs:
        print(req.split("#")[0].strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
