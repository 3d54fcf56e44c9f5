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
exec python -m pytest test "$@"
