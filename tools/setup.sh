#!/usr/bin/env bash
# Builds tools/venv: Python 3.11, the pinned wheels of tools/constraints.txt, this package
# installed editable with its demo, test and recipe extras (recipe: ESPnet's espnet[recipe], what
# its egs2 shell scripts import); then `pip check`, an import smoke test, and
# tools/activate_python.sh, which every egs2/*/use1/path.sh sources.
#
# Usage: tools/setup.sh            (or: cd tools && make)
# Environment: PYTHON  the interpreter to build the venv with (default: python3.11)
#
# A second run with nothing changed returns in seconds: the marker tools/venv/.setup_done
# holds the hash of constraints.txt and setup.py and is written last, so an interrupted or
# failed run leaves no marker and the next run repairs the venv.
set -euo pipefail

tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "${tools_dir}")
venv=${tools_dir}/venv
marker=${venv}/.setup_done
constraints=${tools_dir}/constraints.txt
python=${PYTHON:-python3.11}
required_python=3.11

log() { echo "[tools/setup.sh] $*" >&2; }

write_activate() {
    local tmp=${tools_dir}/activate_python.sh.tmp
    cat > "${tmp}" <<'EOF'
# Written by tools/setup.sh: puts this project's venv first on PATH.
# shellcheck disable=SC1091
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/venv/bin/activate"
EOF
    mv "${tmp}" "${tools_dir}/activate_python.sh"
}

# One set-up at a time: a second caller waits, then finds the marker and returns.
exec 9> "${tools_dir}/.setup.lock"
flock 9

wanted_hash=$(cat "${constraints}" "${repo_dir}/setup.py" | sha256sum | cut -d' ' -f1)
if [ -f "${marker}" ] && [ "$(cat "${marker}")" = "${wanted_hash}" ] && [ -x "${venv}/bin/python" ]; then
    write_activate
    log "up to date (${venv})"
    exit 0
fi

if ! command -v "${python}" > /dev/null 2>&1; then
    log "error: needs Python ${required_python}, but '${python}' is not on PATH; install Python ${required_python} or set PYTHON=/path/to/python${required_python}"
    exit 1
fi
found=$("${python}" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "${found}" != "${required_python}" ]; then
    log "error: needs Python ${required_python}, but '${python}' is Python ${found}; set PYTHON=/path/to/python${required_python}"
    exit 1
fi

rm -f "${marker}"

smoke_test() {
    "${venv}/bin/python" - <<'EOF'
import torch, torchaudio, torchvision, timm, transformers, kaldiio, sentencepiece  # noqa: F401
import resampy  # noqa: F401  (espnet[recipe]: stage 3 of ESPnet's enh.sh imports it)
import espnet2.tasks.enh, espnet2.tasks.enh_tse  # noqa: F401
import espnet2_use  # noqa: F401
print("torch", torch.__version__, "torchaudio", torchaudio.__version__,
      "torchvision", torchvision.__version__, "timm", timm.__version__,
      "transformers", transformers.__version__)
EOF
}

# Written with explicit `|| return 1`: `set -e` does not apply inside a function that runs
# as the condition of `if`.
install() {
    # A venv whose interpreter does not run (killed while being created) is rebuilt.
    if ! "${venv}/bin/python" -c 'pass' > /dev/null 2>&1; then
        log "creating ${venv} with ${python}"
        rm -rf "${venv}"
        "${python}" -m venv "${venv}" || return 1
    fi
    log "installing the pinned set (tools/constraints.txt)"
    "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
        -c "${constraints}" pip setuptools || return 1
    "${venv}/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
        -c "${constraints}" -e "${repo_dir}[demo,test,recipe]" || return 1
    "${venv}/bin/python" -m pip check || return 1
    smoke_test || return 1
}

if ! install; then
    # pip trusts what it finds installed; a run killed mid-extraction can leave a package
    # that is listed but broken. Start once more from an empty venv.
    log "the venv did not come out whole; rebuilding it from scratch"
    rm -rf "${venv}"
    install
fi

write_activate
echo "${wanted_hash}" > "${marker}.tmp"
mv "${marker}.tmp" "${marker}"
log "done: . tools/activate_python.sh"
