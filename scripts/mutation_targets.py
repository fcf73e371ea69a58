"""The money and safety code under mutation testing, and its score from mutmut's results.

``python scripts/mutation_targets.py globs [TARGET...]`` prints the mutant-name globs to pass to
``mutmut run``; ``python scripts/mutation_targets.py score [--markdown]`` reads ``mutants/*.meta``
(what the last runs recorded) and prints the kill ratio per target with every survivor named.

A target is a module and the functions in it that guard money or safety; a glob names them the
way mutmut names mutants (``module.x_function`` for functions, ``module.xǁClassǁmethod`` for
methods). Killed = a test failed (or the mutant timed out, i.e. it hung a test); everything else
(survived, no test reaches it, suspicious) counts against the ratio.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"

# target -> mutant-name globs (without the ``__mutmut_N`` suffix)
TARGETS: dict[str, list[str]] = {
    "runner (budget, claims, re-attach, outcome)": ["runflow_nb.runner.*"],
    "_protocol (submit, look-up, retries, downloads)": ["runflow_nb._protocol.*"],
    "client (key, backend, drivers)": ["runflow_nb.client.*"],
    "store (claims and transitions)": ["runflow_nb.store.xǁStoreǁclaim_run", "runflow_nb.store.xǁStoreǁtransition",
                                       "runflow_nb.store.xǁStoreǁinsert_run", "runflow_nb.store.x__update_values",
                                       "runflow_nb.store.x__filters"],
    "request (validation)": ["runflow_nb.request.xǁVideoRequestǁbuild", "runflow_nb.request.xǁVideoRequestǁ_load_images",
                             "runflow_nb.request.x__check_scalars", "runflow_nb.request.x__issue_for",
                             "runflow_nb.request.x_load_reference", "runflow_nb.request.x__load_reference",
                             "runflow_nb.request.x__decode_checked"],
    "display (HTML rendering)": ["runflow_nb.display.*"],
    "report (scrubbing)": ["runflow_nb.report.x__redact", "runflow_nb.report.x__redact_file",
                           "runflow_nb.report.x__check_no_secrets", "runflow_nb.report.x__strip_video_data"],
}
KILLED = {1, 3, 36, 24, -24, 152, 255, 37}  # a failing test (or a hang caught by the timeout)
LABELS = {0: "survived", 33: "no test", 5: "no test", 34: "skipped", 35: "suspicious", None: "not checked",
          -11: "crashed", -9: "crashed"}


def _function(mutant: str) -> str:
    return mutant.rsplit("__mutmut_", 1)[0]


def _target_of(mutant: str) -> str | None:
    fn = _function(mutant)
    for target, globs in TARGETS.items():
        if any(fnmatch.fnmatchcase(fn, g) for g in globs):
            return target
    return None


def results() -> dict[str, dict[str, int | None]]:
    """target -> {mutant name: exit code} from every ``mutants/**/*.py.meta``."""
    out: dict[str, dict[str, int | None]] = {t: {} for t in TARGETS}
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            target = _target_of(name)
            if target is not None:
                out[target][name] = code
    return out


def score(markdown: bool = False) -> int:
    table = results()
    lines = ["| target | mutants | killed | survived | no test | other | kill ratio |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    survivors: list[str] = []
    all_killed = all_total = 0
    for target, codes in table.items():
        counts = Counter("killed" if c in KILLED else LABELS.get(c, "other") for c in codes.values())
        total, killed = len(codes), counts["killed"]
        all_killed, all_total = all_killed + killed, all_total + total
        other = total - killed - counts["survived"] - counts["no test"]
        ratio = f"{killed / total:.0%}" if total else "not run"
        lines.append(f"| {target} | {total} | {killed} | {counts['survived']} | {counts['no test']} | {other} | "
                     f"{ratio} |")
        survivors += [f"{name} ({LABELS.get(c, c)})" for name, c in sorted(codes.items()) if c not in KILLED]
    if all_total:
        lines.append(f"| **all** | {all_total} | {all_killed} | | | | **{all_killed / all_total:.1%}** |")
    print("\n".join(lines))
    if not markdown:
        print(f"\n{len(survivors)} not killed:")
        print("\n".join(f"  {s}" for s in survivors))
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("globs", "score"):
        print(__doc__)
        return 2
    if argv[0] == "globs":
        wanted = argv[1:]
        chosen = [t for t in TARGETS if not wanted or any(w.lower() in t.lower() for w in wanted)]
        if not chosen:
            print(f"no target matches {wanted}; targets: {', '.join(TARGETS)}", file=sys.stderr)
            return 2
        print(" ".join(f"{g}__mutmut_*" for t in chosen for g in TARGETS[t]))
        return 0
    return score(markdown="--markdown" in argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
