#!/usr/bin/env bash
# Stage 1 of egs2/fuss/use1: Kaldi-style data directories from a local FUSS copy.
set -euo pipefail

log() {
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[0]##*/}) $*"
}

help_message=$(cat <<'EOF'
Usage: local/data.sh --fuss_dir <dir> [options]

Writes data/{train,dev,test} (FUSS train, validation, eval; layout:
egs2/TEMPLATE/use1/README.md) from FUSS already on this machine. Nothing is
downloaded.

Options:
  --fuss_dir <dir>     FUSS root holding ssdata/ and/or ssdata_reverb/ (required): the
                       official dev data (fuss_dev/) or the output of FUSS's data
                       augmentation (fuss_augment_<seed>/)
  --fuss_dev_dir <dir> FUSS root that the splits --fuss_dir lacks come from, e.g. eval
                       (the test set) for fuss_augment_<seed>/, which has none (default:
                       fuss_dev beside --fuss_dir, where FUSS's setup.sh puts the
                       official dev data; read only when a split is missing)
  --data_dir <dir>     output data directory (default: data)
  --variant dry|reverb dry reads ssdata/, reverb reads ssdata_reverb/ (default: reverb,
                       the data of the DCASE2020 baseline and of FUSS results tables)
  --help               this message

Corpus layouts accepted (google-research/sound-separation datasets/fuss; read by
models/dcase2020_fuss_baseline/train/data_io.py):
  The official dev data (FUSS_ssdata.tar.gz / FUSS_ssdata_reverb.tar.gz, zenodo record
  3743844 in FUSS's setup.sh, earlier 3694384; get_dev_data.sh unpacks them into
  <root>/fuss_dev):
    <fuss_dir>/ssdata[_reverb]/{train,validation,eval}_example_list.txt
    <fuss_dir>/ssdata[_reverb]/<split>/example<NNNNN>.wav (+ .jams, .txt)
    <fuss_dir>/ssdata[_reverb]/<split>/example<NNNNN>_sources/background0_sound.wav,
                                                       foreground{0,1,2}_sound.wav
  The data augmentation's output (run_data_augmentation.sh: run_scaper.sh, then
  run_reverb_and_mix.sh, into <root>/fuss_augment_<seed>): the same, with train and
  validation only (no eval split, no eval_example_list.txt), plus mix_info.txt etc.;
  the test set then comes from --fuss_dev_dir, e.g.
    local/data.sh --fuss_dir <root>/fuss_augment_2020   # test: <root>/fuss_dev's eval
  A list line is tab-separated: mixture path, then its 1-4 source paths, relative
  to the list's folder.

Output per set: wav.scp, spk1.scp..spk4.scp (K = 4; an absent source is the
zero-length data/<set>/silence.wav), utt2num_src (number of source files, 1-4; a
listed source may still be silent, which scoring handles by the FUSS rules) and
utt2category (<n>src). FUSS has no source labels (its README: "Labels are not
provided for these source files"), so no cue files and no labels.txt are written.
A missing root, folder, example list, or listed wav stops the script with a
message naming the path; nothing is written then.
EOF
)

fuss_dir=
fuss_dev_dir=
data_dir=data
variant=reverb

# The shared option parser (utils/parse_options.sh): every variable above is an option.
. "$(dirname "${BASH_SOURCE[0]}")/../utils/parse_options.sh"
if [ $# -gt 0 ]; then echo "$0: unknown argument $1" >&2; echo "${help_message}" >&2; exit 1; fi

# The corpus root is checked before anything else happens.
if [ -z "${fuss_dir}" ]; then
  echo "$0: --fuss_dir is required: the FUSS root holding ssdata/ and/or ssdata_reverb/" >&2
  exit 1
fi
if [ ! -d "${fuss_dir}" ]; then
  echo "ERROR: ${fuss_dir}: does not exist or is not a directory; expected the FUSS root holding ssdata/ and/or ssdata_reverb/" >&2
  exit 1
fi

if [ -f ./path.sh ]; then set +u; . ./path.sh; set -u; fi

log "FUSS ${fuss_dir} (${variant}) -> ${data_dir}"
python3 "$(dirname "${BASH_SOURCE[0]}")/prepare_fuss.py" \
  --fuss_dir "${fuss_dir}" --fuss_dev_dir "${fuss_dev_dir}" --data_dir "${data_dir}" \
  --variant "${variant}"
log "done"
