#!/usr/bin/env bash
# README's test command: all set-up (tools/setup.sh), then the whole test suite.
# .ci/run calls this very script, so CI and README cannot drift apart.
# Extra arguments go to pytest (e.g. tools/run_tests.sh -k eda -x).
set -euo pipefail
repo_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${repo_dir}"
bash tools/setup.sh
# shellcheck disable=SC1091
. tools/activate_python.sh
# Two workers (pytest-xdist), a test file at a time each, the two recipe files first
# (test/conftest.py): the suite's wall time on 2 cores; -n 0 runs it in one process.
exec python -m pytest test -n 2 --dist loadfile --no-loadscope-reorder "$@"
