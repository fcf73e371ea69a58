#!/usr/bin/env bash
# Mutation testing of the money and safety code (docs/mutation.md): `make mutate`, or
# `make mutate TARGETS="report display"` for some targets (names in scripts/mutation_targets.py).
#
# Cheap on a shared machine: one worker at low priority (MUTATE_CHILDREN=2 for two); each target builds its coverage map
# (which test runs which function) from its own fast tests only, and each mutant then runs only
# the tests that execute its function, stopping at the first failure. Each target works in
# .mutate/<target>/ (links to the package and the tests, a pyproject.toml with the target's test
# selection, mutmut's mutants/); results stay there for `mutmut browse` / `mutmut show`.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
unset RUNFLOW_API_KEY RUNFLOW_BASE_URL RUNFLOW_BACKEND RUNFLOW_STORE RUNFLOW_ARTIFACTS RUNFLOW_TEST_PG_URL
if ! "$PYTHON" -c "import mutmut" 2>/dev/null; then
  echo "mutmut is not installed: pip install -e '.[dev]' (or pip install 'mutmut>=3.8')" >&2
  exit 2
fi
if [ $# -gt 0 ]; then targets=("$@"); else read -r -a targets <<<"$("$PYTHON" scripts/mutation_targets.py names)"; fi
t0=$SECONDS
for target in "${targets[@]}"; do
  start=$SECONDS
  work="$ROOT/.mutate/$target"
  rm -rf "$work" && mkdir -p "$work"
  ln -s "$ROOT/runflow_nb" "$work/runflow_nb"
  ln -s "$ROOT/tests" "$work/tests"
  "$PYTHON" scripts/mutation_targets.py config "$target" >"$work/pyproject.toml" || exit 2
  read -r -a globs <<<"$("$PYTHON" scripts/mutation_targets.py globs "$target")" || exit 2
  echo "==> $target: mutmut run (${#globs[@]} globs)"
  (cd "$work" && nice -n 15 "$PYTHON" -m mutmut run --max-children "${MUTATE_CHILDREN:-1}" "${globs[@]}" >mutmut.log 2>&1)
  tr '\r' '\n' <"$work/mutmut.log" | grep -v '^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]' | grep -v '^ *$' | tail -n 3
  echo "    $target took $((SECONDS - start)) s"
done
echo "==> scores ($((SECONDS - t0)) s in all)"
"$PYTHON" scripts/mutation_targets.py score
