"""``import runflow_nb`` time in a fresh interpreter (best of N), against ``python -c pass``.

Heavy modules (PyAV, pandas, SQLAlchemy, ipywidgets) must load lazily, on first use. Also timed:
the first ``rf.Client`` (httpx, pydantic) — what a notebook's first cell pays before any request.

    python benchmarks/bench_import.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any

SNIPPETS = {"pass": "pass", "import": "import runflow_nb", "client": "import runflow_nb as rf; rf.Client"}


def _best(code: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - t0)
    return best


def _importtime(code: str) -> list[tuple[str, float]]:
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                         check=True).stderr
    rows = []
    for line in err.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            _, cumulative, name = (x for x in line[len("import time:"):].split("|"))
            if not name.startswith("  "):  # top level: its cumulative time includes its children
                rows.append((name.strip(), int(cumulative) / 1e6))
    return rows


def heaviest(code: str = "import runflow_nb as rf; rf.Client", n: int = 3) -> list[tuple[str, float]]:
    """The slowest top-level imports ``code`` adds to a bare interpreter (cumulative seconds)."""
    startup = {name for name, _ in _importtime("pass")}
    return sorted((r for r in _importtime(code) if r[0] not in startup), key=lambda r: -r[1])[:n]


def run(*, repeat: int = 5) -> dict[str, Any]:
    times = {name: _best(code, repeat) for name, code in SNIPPETS.items()}
    return {"repeat": repeat, "python_s": times["pass"], "import_s": max(0.0, times["import"] - times["pass"]),
            "client_s": max(0.0, times["client"] - times["pass"]), "heaviest": heaviest()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    r = run(repeat=ap.parse_args().repeat)
    print(f"python -c pass                 {r['python_s']:.3f} s (best of {r['repeat']})")
    print(f"import runflow_nb              +{r['import_s']:.3f} s")
    print(f"import runflow_nb; rf.Client   +{r['client_s']:.3f} s")
    print("heaviest imports: " + ", ".join(f"{n} {s * 1000:.0f} ms" for n, s in r["heaviest"]))


if __name__ == "__main__":
    main()
