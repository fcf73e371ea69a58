#!/usr/bin/env bash
# Mutation testing of the money and safety code (see docs/mutation.md): `make mutate`, or
# `bash scripts/mutate.sh report display` for some targets only (names as in
# scripts/mutation_targets.py, matched by substring). Cheap on a shared machine: one worker at low
# priority, each mutant tested only by the tests that run its function (mutmut's coverage map) out
# of a fast selection of test files (pyproject.toml, [tool.mutmut]). Results persist in mutants/.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
unset RUNFLOW_API_KEY RUNFLOW_BASE_URL RUNFLOW_BACKEND RUNFLOW_STORE RUNFLOW_ARTIFACTS RUNFLOW_TEST_PG_URL
if ! "$PYTHON" -c "import mutmut" 2>/dev/null; then
  echo "mutmut is not installed: pip install -e '.[dev]' (or pip install 'mutmut>=3.3')" >&2
  exit 2
fi
t0=$SECONDS
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("")
for target in "${targets[@]}"; do
  # shellcheck disable=SC2046  # the globs are one word each
  globs=$("$PYTHON" scripts/mutation_targets.py globs ${target:+"$target"}) || exit 2
  echo "==> mutating: ${target:-all targets}"
  # shellcheck disable=SC2086
  nice -n 15 "$PYTHON" -m mutmut run --max-children 1 $globs | tr '\r' '\n' | grep -v '^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]' | tail -n 5
done
echo "==> scores (mutants/*.meta), $((SECONDS - t0)) s"
"$PYTHON" scripts/mutation_targets.py score
