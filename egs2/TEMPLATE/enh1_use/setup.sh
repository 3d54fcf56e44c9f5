#!/usr/bin/env bash
# Makes a recipe folder of an ESPnet checkout ready to run USE through ESPnet's own enh.sh.
#
# Usage: egs2/TEMPLATE/enh1_use/setup.sh <espnet>/egs2/<corpus>/enh1
#
# 1. ESPnet's own egs2/TEMPLATE/enh1/setup.sh makes the folder (enh.sh, path.sh, scripts/,
#    utils/, ... linked to the checkout's TEMPLATE, as for any ESPnet recipe).
# 2. USE's three configs go to its conf/: use_fixed.yaml, use_flexible.yaml, use_tse.yaml.
# 3. Python: the recipe's path.sh sources <espnet>/tools/activate_python.sh. When the checkout
#    has none (ESPnet's tools/ not installed), one is written that activates this project's
#    venv (tools/venv, built by tools/setup.sh: ESPnet, its recipe extra and USE). When it has
#    one (ESPnet's own venv), nothing is changed; it must then hold USE too
#    (pip install -e <this project>[recipe]), which is checked.
# A second run refreshes the configs and changes nothing else.
set -euo pipefail

log() { echo "[enh1_use/setup.sh] $*" >&2; }

if [ $# -ne 1 ]; then
    echo "Usage: $0 <espnet>/egs2/<corpus>/enh1" >&2
    exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "${here}/../../.." && pwd)
dir=$1
mkdir -p "${dir}"
dir=$(cd "${dir}" && pwd)
template=${dir}/../../TEMPLATE/enh1
if [ ! -x "${template}/setup.sh" ] || [ ! -f "${template}/enh.sh" ]; then
    log "error: ${template}/setup.sh and enh.sh not found; give a folder two levels below an"
    log "ESPnet checkout's egs2/ (e.g. ~/espnet/egs2/mycorpus/enh1)"
    exit 1
fi
espnet_root=$(cd "${dir}/../../.." && pwd)

if [ ! -e "${dir}/enh.sh" ]; then
    (cd "${espnet_root}/egs2" && "${template}/setup.sh" "${dir}") > /dev/null
fi
mkdir -p "${dir}/conf"
cp "${here}"/conf/use_*.yaml "${dir}/conf/"
log "configs: ${dir}/conf/use_{fixed,flexible,tse}.yaml"

activate=${espnet_root}/tools/activate_python.sh
if [ ! -e "${activate}" ]; then
    if [ ! -f "${repo}/tools/activate_python.sh" ]; then
        log "error: ${repo}/tools/activate_python.sh is missing: run ${repo}/tools/setup.sh first"
        exit 1
    fi
    printf '# Written by %s: the recipe'"'"'s path.sh activates USE'"'"'s venv.\n. "%s"\n' \
        "${here}/setup.sh" "${repo}/tools/activate_python.sh" > "${activate}.tmp"
    mv "${activate}.tmp" "${activate}"
    log "python: ${activate} activates ${repo}/tools/venv"
fi
# The interpreter must be reachable from the recipe's path.sh, as enh.sh will call it.
if ! (cd "${dir}" && . ./path.sh > /dev/null 2>&1 && command -v espnet2-use-python > /dev/null); then
    log "error: after ${dir}/path.sh, espnet2-use-python is not on PATH: install USE into the"
    log "venv that ${activate} activates: pip install -e '${repo}[recipe]'"
    exit 1
fi
log "ready: cd ${dir} && ./enh.sh --python espnet2-use-python --enh_config conf/use_fixed.yaml ..."
