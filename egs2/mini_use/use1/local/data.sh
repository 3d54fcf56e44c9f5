#!/usr/bin/env bash
# Stage 1 of the mini_use recipe: synthesise the mini_use corpus into --out.
#
# Run it from the recipe directory (egs2/mini_use/use1). With a relative --out
# (default "data") the data files name recipe-relative paths such as
# data/pool/train/siren_0003.wav; with an absolute --out, absolute paths.
#
# Idempotent: --out/.mini_use_done records a hash of the options and of the
# generator's sources; when it matches, nothing is done. Otherwise the corpus is
# generated into a temporary folder beside --out and renamed into place at the
# end, so a killed run leaves the previous corpus (or nothing) and never half a
# corpus, and a re-run gives byte-identical files. data.sh owns --out: an
# existing --out without the marker is not replaced (remove it yourself).
# Do not run two data.sh on the same --out at the same time.
set -euo pipefail

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}) $*" >&2; }

# Options (name=default). --nj and --python do not change the corpus.
seed=0
fs=8000
num_train=2000
num_valid=150
num_test_ss=300
num_test_tse=300
num_pool_train=40
num_pool_valid=8
num_pool_test=20
max_sources=3
out=data
nj=2
python=python3

help_message=$(cat <<EOF
Usage: $0 [options]
Synthesise the mini_use corpus (pools of clips with captions, labels, pictures,
videos; mixtures of 1-${max_sources} sources) into --out, in the layout of
egs2/TEMPLATE/use1/README.md. Run from the recipe directory.

Options (default):
  --seed INT            random seed (${seed})
  --fs INT              sample rate in Hz (${fs})
  --num_train INT       training mixtures (${num_train})
  --num_valid INT       validation mixtures (${num_valid})
  --num_test_ss INT     separation test mixtures (${num_test_ss})
  --num_test_tse INT    extraction test mixtures, spk1 = target (${num_test_tse})
  --num_pool_train INT  train pool clips per class (${num_pool_train})
  --num_pool_valid INT  valid pool clips per class (${num_pool_valid})
  --num_pool_test INT   test pool clips per class, held-out variants (${num_pool_test})
  --max_sources INT     K, the largest number of sources (${max_sources})
  --out DIR             corpus root; relative paths are kept relative (${out})
  --nj INT              worker processes (${nj})
  --python CMD          Python interpreter (${python})
  --help                show this help
EOF
)

# The shared option parser (utils/parse_options.sh): every variable above is an option.
. "$(dirname "${BASH_SOURCE[0]}")/../utils/parse_options.sh"
if [ $# -gt 0 ]; then
    echo "$0: unexpected argument '$1' (options are --name value; see --help)" >&2
    exit 1
fi
hashed_opts="seed fs num_train num_valid num_test_ss num_test_tse num_pool_train num_pool_valid num_pool_test max_sources"

for name in ${hashed_opts} nj; do
    if ! [[ "${!name}" =~ ^[0-9]+$ ]]; then
        echo "$0: --${name} '${!name}': expected a non-negative integer" >&2
        exit 1
    fi
done
if [ -z "${out}" ] || [[ "${out}" =~ [[:space:]] ]]; then
    echo "$0: --out '${out}': expected a non-empty path without whitespace (it is written into Kaldi-style files)" >&2
    exit 1
fi

local_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${out%/}
marker=${out}/.mini_use_done

# The hash covers every option that changes the corpus, the --out spelling
# (paths inside the files) and the generator's code.
opts_text=$(for name in ${hashed_opts} out; do echo "${name}=${!name}"; done)
code_hash=$(cat "${local_dir}/synth_corpus.py" "${local_dir}/sound_classes.py" "${local_dir}/cue_media.py" | sha256sum | cut -d' ' -f1)
opts_hash=$(printf '%s\ncode=%s\n' "${opts_text}" "${code_hash}" | sha256sum | cut -d' ' -f1)

if [ -f "${marker}" ] && [ "$(head -n 1 "${marker}")" = "${opts_hash}" ]; then
    log "${out} is up to date (${marker}); nothing to do"
    exit 0
fi
if [ -e "${out}" ] && [ ! -f "${marker}" ] && [ -n "$(ls -A "${out}" 2>/dev/null)" ]; then
    echo "$0: ${out} exists and is not a mini_use corpus (no ${marker}); remove it or pick another --out" >&2
    exit 1
fi

parent=$(dirname "${out}")
mkdir -p "${parent}"
# Leftovers of killed runs (same --out) are removed before starting.
rm -rf "${out}".tmp.* "${out}".old.*
tmp=$(mktemp -d "${out}.tmp.XXXXXX")
trap 'rm -rf "${tmp}"' EXIT
chmod 755 "${tmp}"  # mktemp makes it private; the corpus is not

log "generating the mini_use corpus into ${out} (via ${tmp})"
start=$(date +%s)
"${python}" "${local_dir}/synth_corpus.py" \
    --out "${out}" --work_dir "${tmp}" --nj "${nj}" \
    --seed "${seed}" --fs "${fs}" --max_sources "${max_sources}" \
    --num_train "${num_train}" --num_valid "${num_valid}" \
    --num_test_ss "${num_test_ss}" --num_test_tse "${num_test_tse}" \
    --num_pool_train "${num_pool_train}" --num_pool_valid "${num_pool_valid}" \
    --num_pool_test "${num_pool_test}"
printf '%s\n%s\n' "${opts_hash}" "${opts_text}" > "${tmp}/.mini_use_done"

# Swap into place: the old corpus (if any) is moved aside first, then removed.
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
