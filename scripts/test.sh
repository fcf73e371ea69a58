#!/usr/bin/env bash
# The full check, as the README's `make test` and CI run it: install everything, start a throwaway
# PostgreSQL, then lint, type-check, run the test suite and every notebook. Runs every step even
# after a failure, prints a summary, and exits non-zero if anything failed.
#
# Offline by design: RUNFLOW_API_KEY and RUNFLOW_BASE_URL are unset, so nothing reaches Runflow.
# Set RUNFLOW_TEST_PG_URL yourself to use your own PostgreSQL instead of a throwaway one.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
export PYTHON
t0=$SECONDS
section() { printf '\n==> [%4ds] %s\n' "$((SECONDS - t0))" "$*"; }

results=()  # "name|status|seconds"
failed=0
step() {  # step NAME CMD... : run CMD, record its outcome, keep going
  local name=$1 start=$SECONDS rc
  shift
  section "$name"
  "$@"
  rc=$?
  if [ $rc -eq 0 ]; then
    results+=("$name|ok|$((SECONDS - start))")
  else
    results+=("$name|FAILED (exit $rc)|$((SECONDS - start))")
    failed=1
  fi
  return $rc
}

# --- throwaway PostgreSQL -------------------------------------------------------------------------
pg_dir=""
stop_postgres() {
  [ -n "$pg_dir" ] || return 0
  if [ -f "$pg_dir/data/PG_VERSION" ]; then
    local pg_ctl="/usr/lib/postgresql/$(cat "$pg_dir/data/PG_VERSION")/bin/pg_ctl"
    if [ "$(id -u)" -eq 0 ]; then
      runuser -u postgres -- "$pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
    else
      "$pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
  fi
  rm -rf "$pg_dir"
  pg_dir=""
}
trap stop_postgres EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_postgres() {
  if [ -n "${RUNFLOW_TEST_PG_URL:-}" ]; then
    echo "using RUNFLOW_TEST_PG_URL from the environment"
    return 0
  fi
  if [ ! -f scripts/start_postgres.sh ]; then
    echo "scripts/start_postgres.sh not found: PostgreSQL tests will skip"
    return 0
  fi
  local port url
  port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  pg_dir=$(mktemp -d /tmp/runflow-test-pg.XXXXXX)
  chmod 755 "$pg_dir"  # the postgres user must reach data/ and sock/ inside it
  if url=$(PGPORT=$port PGDATA_DIR="$pg_dir/data" PGSOCK_DIR="$pg_dir/sock" \
           bash scripts/start_postgres.sh 2>"$pg_dir/start.log" | tail -n 1) \
     && [[ "$url" == postgresql://* ]]; then
    export RUNFLOW_TEST_PG_URL=$url
    echo "PostgreSQL at $url (data in $pg_dir, stopped on exit)"
  else
    echo "could not start PostgreSQL: PostgreSQL tests will skip. Last lines of its output:"
    tail -n 5 "$pg_dir/start.log" 2>/dev/null | sed 's/^/    /'
    stop_postgres
  fi
  return 0  # a missing server is not a failure: those tests skip and say so
}

# --- the steps ------------------------------------------------------------------------------------
run_ruff() {
  local paths=() p
  for p in runflow_nb tests benchmarks; do [ -e "$p" ] && paths+=("$p"); done
  "$PYTHON" -m ruff check "${paths[@]}"
}
run_mypy() { "$PYTHON" -m mypy; }  # what to check is configured in pyproject.toml
run_pytest() {
  rm -f test-artifacts/harness-summary.txt
  "$PYTHON" -m pytest -q -p no:cacheprovider --durations=15 tests
  local rc=$?
  if [ -f test-artifacts/harness-summary.txt ]; then
    echo "--- fault, crash, bad-input and secret harness ---"
    cat test-artifacts/harness-summary.txt
  fi
  return $rc
}
run_notebooks() {
  shopt -s nullglob
  local notebooks=(runflow_nb/notebooks/*.ipynb)
  shopt -u nullglob
  if [ ${#notebooks[@]} -eq 0 ]; then
    echo "no runflow_nb/notebooks/*.ipynb: nothing to run"
    return 0
  fi
  "$PYTHON" -m pytest -q -p no:cacheprovider --nbval-lax "${notebooks[@]}"
}

if ! step "install (scripts/install.sh)" bash scripts/install.sh; then
  section "install failed: not running the checks"
  exit 1
fi

unset RUNFLOW_API_KEY RUNFLOW_BASE_URL
step "PostgreSQL (scripts/start_postgres.sh)" start_postgres
section "environment"
echo "python:   $("$PYTHON" -c 'import sys; print(sys.version.split()[0], sys.executable)')"
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo 'not installed (browser tests will skip)')"
echo "postgres: ${RUNFLOW_TEST_PG_URL:-none (PostgreSQL tests will skip)}"

step "ruff" run_ruff
step "mypy" run_mypy
step "pytest tests/" run_pytest
step "nbval runflow_nb/notebooks/" run_notebooks

section "summary"
for r in "${results[@]}"; do
  IFS='|' read -r name status secs <<<"$r"
  printf '  %-40s %-18s %5ss\n' "$name" "$status" "$secs"
done
printf '  %-40s %-18s %5ss\n' "total" "$([ $failed -eq 0 ] && echo ok || echo FAILED)" "$((SECONDS - t0))"
exit $failed
