# shellcheck shell=bash
# Sourced by every recipe script: the project's Python environment, offline.
# Resolved through symlinks: recipes link this file from egs2/TEMPLATE/use1.
MAIN_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)
if [ ! -f "${MAIN_ROOT}/tools/activate_python.sh" ]; then
    echo "path.sh: ${MAIN_ROOT}/tools/activate_python.sh is missing; run tools/setup.sh first" >&2
    return 1
fi
# shellcheck disable=SC1091
. "${MAIN_ROOT}/tools/activate_python.sh"
export PYTHONIOENCODING=UTF-8
# Pretrained encoders load from local paths only; never reach for a model hub.
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
