#!/usr/bin/env bash
# README's main command: all set-up (tools/setup.sh), then the mini_use recipe end to end.
# Extra arguments go to run.sh (e.g. tools/run_demo.sh --stage 6).
set -euo pipefail
repo_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "${repo_dir}/tools/setup.sh"
recipe=${repo_dir}/egs2/mini_use/use1
if [ ! -x "${recipe}/run.sh" ]; then
    echo "tools/run_demo.sh: the mini_use recipe (${recipe}) has not landed yet" >&2
    exit 1
fi
cd "${recipe}"
exec ./run.sh "$@"
