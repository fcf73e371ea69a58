#!/usr/bin/env bash
# Install everything runflow_nb needs to run its demo and its full test suite. Safe to re-run.
#
#   1. System packages (Debian): chromium + chromium-driver for the browser tests, postgresql for
#      the team-store tests. Installed only when missing and only as root; otherwise we say what is
#      skipped and those tests skip themselves.
#   2. The package itself, editable, with the dev extras, into whatever `python3` is (an active
#      virtualenv is respected), with scripts/constraints-dev.txt as resolver hints. Skipped when
#      everything pyproject.toml asks for is already there.
#   3. A Jupyter kernel named `python3` for this interpreter (papermill and nbval use that name).
#
# Environment knobs:
#   PYTHON=...                      interpreter to install into (default: python3)
#   RUNFLOW_SKIP_SYSTEM_PACKAGES=1  never touch apt-get
#   RUNFLOW_FORCE_PIP=1             run pip even when the requirements look satisfied
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
t0=$SECONDS
say() { printf '[install %3ds] %s\n' "$((SECONDS - t0))" "$*"; }

# --- 1. system packages -------------------------------------------------------------------------
apt_packages=(chromium chromium-driver postgresql)

is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# apt and dpkg hold these (fcntl locks) while they run: another apt-get, unattended-upgrades on a
# fresh machine. Wait for them instead of failing; apt-get itself also waits (DPkg::Lock::Timeout)
# should another one start in between. RUNFLOW_APT_LOCKS overrides the list (for testing).
apt_locks=${RUNFLOW_APT_LOCKS:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock}
apt_lock_wait_s=${RUNFLOW_APT_LOCK_WAIT_S:-1200}
apt_locks_free() {
  "$PYTHON" - $apt_locks <<'PY'
import fcntl, os, sys
for path in sys.argv[1:]:
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:  # no such lock here (or not ours to take): nothing to wait for
        continue
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the lock apt takes; released at once
    except OSError:
        sys.exit(1)
    finally:
        os.close(fd)
PY
}
wait_for_apt() {
  local waited=0
  while ! apt_locks_free; do
    if [ $((waited % 30)) -eq 0 ]; then
      say "system packages: another apt-get or dpkg is running; waiting for it to finish (${waited}s so far)"
    fi
    if [ "$waited" -ge "$apt_lock_wait_s" ]; then
      say "system packages: still locked after ${waited}s; stop the other apt or run again later" >&2
      return 1
    fi
    sleep 5
    waited=$((waited + 5))
  done
  [ "$waited" -eq 0 ] || say "system packages: the other apt finished after ${waited}s"
}

install_system_packages() {
  if [ "${RUNFLOW_SKIP_SYSTEM_PACKAGES:-0}" = 1 ]; then
    say "system packages: skipped (RUNFLOW_SKIP_SYSTEM_PACKAGES=1); browser and PostgreSQL tests will skip"
    return 0
  fi
  if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    say "system packages: skipped (no apt-get/dpkg here); install ${apt_packages[*]} yourself," \
        "or the browser and PostgreSQL tests will skip"
    return 0
  fi
  local missing=() p
  for p in "${apt_packages[@]}"; do is_installed "$p" || missing+=("$p"); done
  if [ ${#missing[@]} -eq 0 ]; then
    say "system packages: ${apt_packages[*]} already installed"
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    say "system packages: skipped (not root); missing: ${missing[*]}"
    say "  -> run as root: apt-get install -y --no-install-recommends ${missing[*]}"
    say "  -> until then the browser and/or PostgreSQL tests skip"
    return 0
  fi
  say "system packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  wait_for_apt || return 1
  apt-get -o DPkg::Lock::Timeout="$apt_lock_wait_s" update -qq
  wait_for_apt || return 1
  # Quiet apt, but keep its errors: on failure, show the tail of the log and stop.
  local log
  log=$(mktemp)
  if ! apt-get -o DPkg::Lock::Timeout="$apt_lock_wait_s" install -y -qq --no-install-recommends "${missing[@]}" \
       >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    say "system packages: apt-get install failed (set RUNFLOW_SKIP_SYSTEM_PACKAGES=1 to go on without them)" >&2
    return 1
  fi
  rm -f "$log"
  say "system packages: installed ${missing[*]}"
}

# --- 2. the Python package ----------------------------------------------------------------------
# Exit 0 when this interpreter already has runflow_nb installed editable from this checkout at the
# version in pyproject.toml, its console script, and every requirement of the `dev` extra
# (recursively, with the extras that requirements name). Anything unexpected -> exit 1 -> pip runs.
python_requirements_satisfied() {
  "$PYTHON" - "$PWD" <<'PY' 2>/dev/null
import json, os, pathlib, shutil, sys, sysconfig, tomllib
from importlib import metadata

# Look only at what is installed: not at the checkout's own runflow_nb.egg-info in the cwd.
sys.path[:] = [p for p in sys.path if p not in ("", ".", os.getcwd())]
try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name

root = pathlib.Path(sys.argv[1]).resolve()
project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
me = canonicalize_name(project["name"])

dist = metadata.distribution(project["name"])
# The version is kept in one place, runflow_nb/__init__.py (pyproject reads it as a dynamic field).
import ast
init = ast.parse((root / "runflow_nb" / "__init__.py").read_text())
version = next(n.value.value for n in init.body if isinstance(n, ast.Assign)
               and any(getattr(t, "id", "") == "__version__" for t in n.targets))
assert dist.version == version, "version"
direct = json.loads(dist.read_text("direct_url.json") or "{}")
assert direct.get("dir_info", {}).get("editable"), "not editable"
assert direct["url"].rstrip("/") == root.as_uri(), "installed from elsewhere"
scripts = sysconfig.get_path("scripts")
for name in project.get("scripts", {}):
    assert shutil.which(name, path=scripts) or shutil.which(name), name

extras = project.get("optional-dependencies", {})
seen = set()

def check(req_text: str, extra: str = "") -> None:
    req = Requirement(req_text)
    if req.marker and not req.marker.evaluate({"extra": extra}):
        return
    name = canonicalize_name(req.name)
    if name == me:  # self-reference such as runflow_nb[team,test]
        for e in req.extras:
            for r in extras.get(e, []):
                check(r)
        return
    installed = metadata.version(req.name)
    assert req.specifier.contains(installed, prereleases=True), f"{req.name} {installed}"
    for e in req.extras:  # e.g. psycopg[binary], moto[server]
        if (name, e) in seen:
            continue
        seen.add((name, e))
        for r in metadata.requires(req.name) or []:
            if "extra" in r:
                check(r, e)

for r in project.get("dependencies", []):
    check(r)
check(f"{project['name']}[dev]")
PY
}

install_python_package() {
  if [ "${RUNFLOW_FORCE_PIP:-0}" != 1 ] && python_requirements_satisfied; then
    say "python: runflow_nb[dev] already installed (editable, from $PWD) in $("$PYTHON" -c 'import sys; print(sys.prefix)')"
    return 0
  fi
  if [ -n "${VIRTUAL_ENV:-}" ]; then where="virtualenv $VIRTUAL_ENV"; else where="$("$PYTHON" -c 'import sys; print(sys.prefix)')"; fi
  say "python: pip install -e '.[dev]' into $where (a few minutes on a fresh machine)"
  if ! PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
       "$PYTHON" -m pip install --progress-bar off -q -c scripts/constraints-dev.txt -e ".[dev]"; then
    say "python: pip install failed. If pip refused because the environment is 'externally managed'," >&2
    say "  create and activate a virtualenv first: python3 -m venv .venv && . .venv/bin/activate" >&2
    return 1
  fi
  say "python: installed"
}

# --- 3. the Jupyter kernel ----------------------------------------------------------------------
register_kernel() {
  # Registered in sys.prefix and pointing at this very interpreter, or (re)install it.
  if "$PYTHON" - <<'PY' 2>/dev/null
import json, os, sys
spec = os.path.join(sys.prefix, "share", "jupyter", "kernels", "python3", "kernel.json")
argv0 = json.load(open(spec))["argv"][0]
assert os.path.realpath(argv0) == os.path.realpath(sys.executable)
PY
  then
    say "kernel: 'python3' already registered for $("$PYTHON" -c 'import sys; print(sys.executable)')"
    return 0
  fi
  "$PYTHON" -m ipykernel install --sys-prefix --name python3 >/dev/null
  say "kernel: registered 'python3' in $("$PYTHON" -c 'import sys; print(sys.prefix)')"
}

install_system_packages
install_python_package
register_kernel
say "done"
