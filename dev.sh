#!/usr/bin/env bash
# Tawasul developer entry point: the two set-up commands of the README.
#   ./dev.sh demo   install everything, then run `tawasul demo` (broker, pipeline, wall display, traffic)
#   ./dev.sh test   install everything, then run the whole test suite on the real broker and databases
#   ./dev.sh lint   install the Python tools, then ruff (lint and format) and mypy; fails on any finding
set -euo pipefail
cd "$(dirname "$0")"

VENV=${TAWASUL_VENV:-.venv}

need_python() {
  local python=${PYTHON:-python3}
  if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    echo "Tawasul needs Python 3.11 or newer (found: $("$python" --version 2>&1))" >&2
    exit 2
  fi
  echo "$python"
}

system_packages() {
  # Debian packages the demo and the tests use; installed only when missing and we may install.
  local wanted=("$@") missing=()
  for entry in "${wanted[@]}"; do
    local command=${entry%%:*} package=${entry#*:}
    command -v "$command" >/dev/null 2>&1 || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "Please install: ${missing[*]}" >&2
    exit 2
  fi
}

python_env() {
  # Every package of the dependency tree (the test and postgres extras and the build backend
  # included) comes from requirements.lock, pinned with its SHA-256 hashes: pip refuses any file
  # whose hash differs. Then Tawasul itself, without resolving anything more.
  # Regenerate the lock after changing pyproject.toml: see docs/security.md.
  local python
  python=$(need_python)
  [ -x "$VENV/bin/python" ] || "$python" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --require-hashes -r requirements.lock
  "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
}

case "${1:-}" in
  demo)
    shift
    system_packages java:openjdk-17-jre-headless mvn:maven
    python_env
    exec "$VENV/bin/tawasul" demo "$@"
    ;;
  test)
    shift
    system_packages java:openjdk-17-jre-headless mvn:maven pg_ctlcluster:postgresql promtool:prometheus \
      amtool:prometheus-alertmanager chromium:chromium
    python_env
    # Services stopped by the Debian packages' own start scripts would be in the way of nothing:
    # the tests start their own broker (`tawasul kafka start`), PostgreSQL and Prometheus.
    set +e
    if [ $# -gt 0 ]; then
      "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
      status=$?
    else
      # The whole suite in two tiers: the broker-free tests on two processes (they wait on
      # nothing but the CPU, the browser and the databases), then every test that uses a Kafka
      # broker in one process (timers, group rebalances and killed nodes stay undisturbed).
      "$VENV/bin/python" -m pytest -q -p no:cacheprovider -m "not kafka" -n 2
      free=$?
      "$VENV/bin/python" -m pytest -q -p no:cacheprovider -m kafka
      broker=$?
      # exit status 5: a tier collected no tests; only both empty is an error (below)
      if [ "$free" -eq 5 ] && [ "$broker" -eq 5 ]; then status=5
      elif [ "$free" -ne 0 ] && [ "$free" -ne 5 ]; then status=$free
      elif [ "$broker" -ne 0 ] && [ "$broker" -ne 5 ]; then status=$broker
      else status=0
      fi
    fi
    set -e
    if [ "$status" -eq 5 ]; then
      echo "pytest collected no tests" >&2
      exit 1
    fi
    exit "$status"
    ;;
  lint)
    shift
    python_env
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    "$VENV/bin/mypy"
    ;;
  *)
    echo "usage: ./dev.sh demo|test|lint [args...]" >&2
    exit 2
    ;;
esac
