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

# --- a new user's view: the wheel in a fresh venv, and the lowest declared versions ----------------
# Both make fresh virtualenvs with uv (a PyPI package, installed with the dev extra and run as
# `python -m uv`): it builds them without ensurepip and resolves in seconds. Downloads are cached
# in one place for every venv.
export UV_CACHE_DIR=${UV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/runflow-nb-ci/uv}
export UV_PYTHON_DOWNLOADS=never  # only the interpreters on this machine: nothing is downloaded
export UV_NO_PROGRESS=1
ci_tmp=$(mktemp -d /tmp/runflow-ci.XXXXXX)
kill_tree() { local c; for c in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$c"; done; kill "$1" 2>/dev/null || true; }
cleanup() { [ -n "${versions_pid:-}" ] && kill_tree "$versions_pid"; stop_postgres; rm -rf "$ci_tmp"; }
trap cleanup EXIT

find_pythons() {  # "X.Y.Z path" per usable CPython >= 3.10 on this machine, newest first
  local cand seen="" line
  {
    for cand in python3 python3.10 python3.11 python3.12 python3.13 python3.14; do command -v "$cand" || true; done
    if command -v pyenv >/dev/null 2>&1; then ls -d "$(pyenv root)"/versions/3.*/bin/python3 2>/dev/null || true; fi
    ls -d /usr/bin/python3.* /usr/local/bin/python3.* 2>/dev/null | grep -E 'python3\.[0-9]+$' || true
  } | while read -r cand; do
    [ -x "$cand" ] || continue
    "$cand" -c 'import sys; assert sys.version_info >= (3, 10); print("%d.%d.%d" % sys.version_info[:3], sys.executable)' \
      2>/dev/null || true
  done | sort -t. -k1,1nr -k2,2nr -k3,3nr | while read -r line; do
    case " $seen " in *" ${line%% *} "*) continue ;; esac
    seen="$seen ${line%% *}"
    echo "$line"
  done
}

check_wheel() {
  local ver py venv dist work out report
  read -r ver py < <(find_pythons | head -n 1)
  if [ -z "${py:-}" ]; then echo "no Python 3.10+ found"; return 1; fi
  case "$ver" in
    3.13.*|3.14.*|3.15.*) echo "newest Python on this machine: $ver ($py)" ;;
    *) echo "newest Python on this machine: $ver ($py); 3.13 is not installed here, so the check uses $ver" ;;
  esac
  dist="$ci_tmp/dist" venv="$ci_tmp/wheel-venv"
  "$PYTHON" -m uv build -q --wheel --out-dir "$dist" . || return 1
  rm -rf build
  echo "built $(basename "$dist"/runflow_nb-*.whl)"
  "$PYTHON" -m uv venv -q --python "$py" "$venv" || return 1
  "$PYTHON" -m uv pip install -q --python "$venv/bin/python" "$dist"/runflow_nb-*.whl || return 1
  echo "installed into a fresh venv: $("$venv/bin/python" -c 'import av, runflow_nb, sys; print("runflow_nb", runflow_nb.__version__, "PyAV", av.__version__, "Python", sys.version.split()[0])')"
  work=$(mktemp -d /tmp/runflow-empty.XXXXXX)  # an empty folder outside the checkout
  # As a new user: no checkout on the path, no settings, the venv not even activated.
  out=$(cd "$work" && env -u PYTHONPATH -u RUNFLOW_STORE -u RUNFLOW_ARTIFACTS -u RUNFLOW_SIMULATOR_LATENCY \
        "$venv/bin/runflow-nb" demo 2>&1) || { echo "$out" | tail -n 20; rm -rf "$work"; return 1; }
  report=$(echo "$out" | sed -n 's/^report: //p' | tail -n 1)
  echo "runflow-nb demo -> ${report:-no report path printed}"
  if [ -z "$report" ] || [ ! -f "$report" ]; then echo "$out" | tail -n 20; rm -rf "$work"; return 1; fi
  "$venv/bin/python" scripts/check_videos.py "$report" || { rm -rf "$work"; return 1; }
  (cd "$work" && env -u PYTHONPATH "$venv/bin/python" - <<'PY'
import runflow_nb as rf
from runflow_nb.samples import sample_images

result = rf.Client().generate(prompt="character1 trots past character2", images=sample_images(2), duration=3,
                              resolution="720p", seed=5)
assert result.simulated and result.video_path is not None and result.video_path.is_file(), result
print(f"simulated generation -> {result.video_path}")
open("generated.txt", "w").write(str(result.video_path.resolve()))
PY
  ) || { rm -rf "$work"; return 1; }
  "$venv/bin/python" scripts/check_videos.py "$(cat "$work/generated.txt")" || { rm -rf "$work"; return 1; }
  # RUNFLOW_STORE is honoured by sweep and table alike, and table finds the sweep.
  (cd "$work" && export RUNFLOW_STORE="$work/team/runs.sqlite" && env -u PYTHONPATH "$venv/bin/runflow-nb" sweep \
     --experiment ci --prompt "character1 jumps" --image "$(cd "$work" && "$venv/bin/python" -c \
     'from runflow_nb.samples import sample_images; print(sample_images(1)[0])')" --seeds 1-2 --duration 3 \
     --resolution 720p >/dev/null && env -u PYTHONPATH "$venv/bin/runflow-nb" table ci) >"$work/table.txt" 2>&1
  if [ "$(grep -c '| succeeded |' "$work/table.txt")" != 2 ]; then
    echo "RUNFLOW_STORE sweep + table: expected 2 succeeded rows"; cat "$work/table.txt"; rm -rf "$work"; return 1
  fi
  echo "RUNFLOW_STORE=... runflow-nb sweep, then runflow-nb table: 2 succeeded rows"
  rm -rf "$work"
}

prepare_versions() {  # prepare_versions JOB lowest-direct|highest oldest|newest|X.Y: a fresh venv with those versions
  local job=$1 resolution=$2 which=$3 ver py venv
  case "$which" in
    oldest) read -r ver py < <(find_pythons | tail -n 1) ;;
    newest) read -r ver py < <(find_pythons | head -n 1) ;;
    *) read -r ver py < <(find_pythons | grep "^${which//./\\.}\\." | head -n 1) ;;
  esac
  if [ -z "${py:-}" ]; then echo "no Python ${which} found"; return 1; fi
  venv="$ci_tmp/$job-venv"
  echo "$resolution declared versions on Python $ver ($py)"
  "$PYTHON" scripts/requirements.py --tests >"$ci_tmp/$job.txt" || return 1
  "$PYTHON" -m uv venv -q --python "$py" "$venv" || return 1
  "$PYTHON" -m uv pip install -q --python "$venv/bin/python" --resolution "$resolution" -r "$ci_tmp/$job.txt" || return 1
  "$PYTHON" -m uv pip install -q --python "$venv/bin/python" --no-deps . || return 1
  rm -rf build
  echo "resolved: $("$PYTHON" -m uv pip list --python "$venv/bin/python" 2>/dev/null | awk 'NR > 2 {print $1 "==" $2}' \
    | grep -iE '^(av|httpx|pydantic|pillow|numpy|sqlalchemy|pandas|pyarrow|ipywidgets|ipython|traitlets|jupyter-client|papermill|nbconvert|nbformat|ipykernel|matplotlib|pyyaml|psycopg|fsspec|s3fs|moto|itables)==' \
    | tr '\n' ' ')"
  touch "$venv/.ready"
}

suite_on_versions() {  # suite_on_versions JOB: the compat tests in its prepared venv, on the installed package
  # The compat tests (tests/conftest.py names their files) drive each dependency's own API at the toolkit's
  # edges: PyAV, numpy, Pillow, httpx, pydantic, SQLAlchemy, pandas, ipywidgets, IPython, papermill,
  # nbformat, jupyter_client, fsspec, itables and the rest. Not the browser tests or the slow papermill
  # reports (the main run and nbval run those). The lowest-versions-on-3.13 job checks the floors that
  # hold only on 3.13 with one file per dependency family. They run from a folder outside the checkout,
  # so they test the package as installed into the venv, in their own temporary folder.
  local venv="$ci_tmp/$1-venv" repo=$PWD files=(tests)
  case "$1" in
    lowest-3.13) files=(tests/test_dependencies.py tests/test_media.py tests/test_render.py tests/contract/test_wire.py
                        tests/test_request.py tests/test_store.py tests/test_widgets.py tests/test_notebook_errors.py
                        tests/test_artifacts_s3.py tests/test_view_sorting.py) ;;
  esac
  (cd "$ci_tmp" && env -u PYTHONPATH "$venv/bin/python" -m pytest -q -p no:cacheprovider -p no:randomly \
     --rootdir "$repo" -c "$repo/pyproject.toml" --basetemp="$ci_tmp/$1-pytest" \
     -m "compat and not browser and not slow" "${files[@]/#/$repo/}")
}

# The version jobs run one after the other in the background while the main suite runs, at a lower
# priority so the main suite's timing is the one that is kept.
VERSION_JOBS=(lowest-oldest lowest-3.13 highest-newest)
versions_pid=""
start_version_jobs() {
  local ok=() r
  for r in "${VERSION_JOBS[@]}"; do [ -f "$ci_tmp/$r-venv/.ready" ] && ok+=("$r"); done
  (
    for r in "${ok[@]}"; do
      start=$SECONDS
      nice -n 5 bash -c "$(declare -p ci_tmp); $(declare -f suite_on_versions); suite_on_versions $r" \
        >"$ci_tmp/$r.log" 2>&1
      echo "$? $((SECONDS - start))" >"$ci_tmp/$r.rc"
    done
  ) &
  versions_pid=$!
}
finish_version_job() {  # finish_version_job NAME JOB: wait for the background jobs, show one
  local name=$1 r=$2 rc secs
  [ -n "$versions_pid" ] && wait "$versions_pid" 2>/dev/null
  versions_pid=""
  section "$name"
  if [ ! -f "$ci_tmp/$r.rc" ]; then
    echo "not run (its venv could not be prepared: see above)"
    results+=("$name|FAILED (not run)|0"); failed=1; return
  fi
  read -r rc secs <"$ci_tmp/$r.rc"
  tail -n 40 "$ci_tmp/$r.log"
  if [ "$rc" -eq 0 ]; then results+=("$name|ok|$secs"); else results+=("$name|FAILED (exit $rc)|$secs"); failed=1; fi
}

# --- the steps ------------------------------------------------------------------------------------
run_ruff() {
  local paths=() p
  for p in runflow_nb tests benchmarks; do [ -e "$p" ] && paths+=("$p"); done
  "$PYTHON" -m ruff check "${paths[@]}"
}
run_mypy() { "$PYTHON" -m mypy; }  # what to check is configured in pyproject.toml
run_pytest() {
  # One worker per core (pytest-xdist); a file's tests stay together on one worker, so the servers and
  # clips a module's fixtures make are made once. pytest-randomly shuffles the order on every run and
  # the seed it used (RUNFLOW_TEST_SEED=N repeats an order).
  # The default order is a fixed shuffle whose order-dependent failures were fixed; RUNFLOW_TEST_SEED=random draws a
  # new one (to look for tests that depend on each other), RUNFLOW_TEST_SEED=N repeats one.
  local seed=${RUNFLOW_TEST_SEED:-585408407}
  [ "$seed" = random ] && seed=$((RANDOM * 32768 + RANDOM))
  echo "test order: pytest-randomly seed $seed (RUNFLOW_TEST_SEED=$seed make test repeats it)"
  rm -f test-artifacts/harness-summary.txt
  "$PYTHON" -m pytest -q -p no:cacheprovider -p randomly --randomly-seed="$seed" -n "${RUNFLOW_TEST_WORKERS:-auto}" \
    --dist loadfile --durations=15 tests
  local rc=$?
  if [ -f test-artifacts/harness-summary.txt ]; then
    echo "--- fault, crash, bad-input and secret harness ---"
    cat test-artifacts/harness-summary.txt
  fi
  return $rc
}
run_notebooks() {
  shopt -s nullglob
  local notebooks=(notebooks/*.ipynb)
  shopt -u nullglob
  if [ ${#notebooks[@]} -eq 0 ]; then
    echo "no notebooks/*.ipynb: nothing to run"
    return 0
  fi
  # Every cell must run; the cells marked `# NBVAL_CHECK_OUTPUT` must print what is stored in them
  # (scripts/checked_outputs.py). In file order: -p no:randomly.
  "$PYTHON" -m pytest -q -p no:cacheprovider -p no:randomly --nbval-lax "${notebooks[@]}"
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
step "venv: lowest declared versions, oldest Python" prepare_versions lowest-oldest lowest-direct oldest
step "venv: lowest declared versions, Python 3.13" prepare_versions lowest-3.13 lowest-direct 3.13
step "venv: newest releases, newest Python" prepare_versions highest-newest highest newest
start_version_jobs
step "pytest tests/" run_pytest
step "nbval notebooks/" run_notebooks
step "wheel: fresh venv, newest Python, demo from an empty folder" check_wheel
finish_version_job "lowest declared versions, oldest Python: compat tests" lowest-oldest
finish_version_job "lowest declared versions, Python 3.13: compat tests" lowest-3.13
finish_version_job "newest releases, newest Python: compat tests" highest-newest

section "summary"
for r in "${results[@]}"; do
  IFS='|' read -r name status secs <<<"$r"
  printf '  %-40s %-18s %5ss\n' "$name" "$status" "$secs"
done
printf '  %-40s %-18s %5ss\n' "total" "$([ $failed -eq 0 ] && echo ok || echo FAILED)" "$((SECONDS - t0))"
exit $failed
