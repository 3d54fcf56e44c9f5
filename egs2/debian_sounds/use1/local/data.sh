#!/usr/bin/env bash
# Stage 1 of egs2/debian_sounds/use1: fetch the pinned Debian packages of recorded sounds
# (apt-get download + dpkg-deb -x into --cache; nothing is installed) and build the
# debian_sounds corpus into --out, in mini_use's layout (egs2/TEMPLATE/use1/README.md).
#
# Run it from the recipe directory. Idempotent: a fetched package is not fetched again
# (--cache/<name>_<version>/.fetched), and --out/.debian_sounds_done records a hash of
# the options, the packages' versions and sha256s and the builder's code; when it
# matches, nothing is done. The corpus is built in a temporary folder beside --out and
# renamed into place, so a killed run leaves the previous corpus (or nothing).
set -euo pipefail

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}) $*" >&2; }

# Options (name=default). --nj and --python do not change the corpus.
seed=0
fs=8000
num_train=2000
num_valid=150
num_test_ss=300
num_test_tse=300
max_sources=3
out=data
cache=downloads/debian
allow_other_version=false
nj=2
python=python3

help_message=$(cat <<EOF
Usage: $0 [options]
Fetch the pinned Debian packages (local/debian_packages.py) into --cache and build the
debian_sounds corpus (clips of 29 classes of recorded sounds, splits held out by voice,
kit and recording; mixtures of 1-${max_sources} sources and a TSE set) into --out.
The packages reserved for evaluation (tuxpaint-stamps-default, ufoai-sound,
sonic-pi-samples, asterisk-core-sounds-en*) are refused.

Options (default):
  --seed INT            random seed (${seed})
  --fs INT              sample rate in Hz, e.g. 8000 or 16000 (${fs})
  --num_train INT       training mixtures (${num_train})
  --num_valid INT       validation mixtures (${num_valid})
  --num_test_ss INT     separation test mixtures (${num_test_ss})
  --num_test_tse INT    extraction test mixtures, spk1 = target (${num_test_tse})
  --max_sources INT     K, the largest number of sources (${max_sources})
  --out DIR             corpus root; relative paths are kept relative (${out})
  --cache DIR           where the packages are unpacked (${cache})
  --allow_other_version true|false  take the package lists' version when a pin is gone (${allow_other_version})
  --nj INT              worker processes (${nj})
  --python CMD          Python interpreter (${python})
  --help                show this help
EOF
)

. "$(dirname "${BASH_SOURCE[0]}")/../utils/parse_options.sh"
if [ $# -gt 0 ]; then
    echo "$0: unexpected argument '$1' (options are --name value; see --help)" >&2
    exit 1
fi
hashed_opts="seed fs num_train num_valid num_test_ss num_test_tse max_sources"
for name in ${hashed_opts} nj; do
    if ! [[ "${!name}" =~ ^[0-9]+$ ]]; then
        echo "$0: --${name} '${!name}': expected a non-negative integer" >&2
        exit 1
    fi
done
for name in out cache; do
    if [ -z "${!name}" ] || [[ "${!name}" =~ [[:space:]] ]]; then
        echo "$0: --${name} '${!name}': expected a non-empty path without whitespace" >&2
        exit 1
    fi
done
case "${allow_other_version}" in
    true) other_opt=--allow_other_version ;;
    false) other_opt= ;;
    *) echo "$0: --allow_other_version '${allow_other_version}': expected true or false" >&2; exit 1 ;;
esac

local_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${out%/}
marker=${out}/.debian_sounds_done

log "fetching the pinned packages into ${cache}"
"${python}" "${local_dir}/debian_packages.py" --cache "${cache}" ${other_opt}

# The hash covers the options, the --out spelling, the fetched packages (version and the
# .deb's sha256) and the builder's code (mini_use's mixer included).
opts_text=$(for name in ${hashed_opts} out; do echo "${name}=${!name}"; done)
packages_text=$(cat "${cache}"/*/.fetched | sort)
code_hash=$(cat "${local_dir}"/build_corpus.py "${local_dir}"/class_map.py "${local_dir}"/recorded_clips.py \
    "${local_dir}"/debian_packages.py "${local_dir}"/../../../mini_use/use1/local/synth_corpus.py | sha256sum | cut -d' ' -f1)
opts_hash=$(printf '%s\n%s\ncode=%s\n' "${opts_text}" "${packages_text}" "${code_hash}" | sha256sum | cut -d' ' -f1)

if [ -f "${marker}" ] && [ "$(head -n 1 "${marker}")" = "${opts_hash}" ]; then
    log "${out} is up to date (${marker}); nothing to do"
    exit 0
fi
if [ -e "${out}" ] && [ ! -f "${marker}" ] && [ -n "$(ls -A "${out}" 2>/dev/null)" ]; then
    echo "$0: ${out} exists and is not a debian_sounds corpus (no ${marker}); remove it or pick another --out" >&2
    exit 1
fi

mkdir -p "$(dirname "${out}")"
rm -rf "${out}".tmp.* "${out}".old.*
tmp=$(mktemp -d "${out}.tmp.XXXXXX")
trap 'rm -rf "${tmp}"' EXIT
chmod 755 "${tmp}"

log "building the debian_sounds corpus into ${out} (via ${tmp})"
start=$(date +%s)
"${python}" "${local_dir}/build_corpus.py" \
    --cache "${cache}" --out "${out}" --work_dir "${tmp}" --nj "${nj}" \
    --seed "${seed}" --fs "${fs}" --max_sources "${max_sources}" \
    --num_train "${num_train}" --num_valid "${num_valid}" \
    --num_test_ss "${num_test_ss}" --num_test_tse "${num_test_tse}"
printf '%s\n%s\n%s\n' "${opts_hash}" "${opts_text}" "${packages_text}" > "${tmp}/.debian_sounds_done"

if [ -e "${out}" ]; then
    old=$(mktemp -u "${out}.old.XXXXXX")
    mv "${out}" "${old}"
    mv "${tmp}" "${out}"
    rm -rf "${old}"
else
    mv "${tmp}" "${out}"
fi
trap - EXIT
log "done in $(( $(date +%s) - start )) s: ${out} ($(du -sh "${out}" | cut -f1))"
