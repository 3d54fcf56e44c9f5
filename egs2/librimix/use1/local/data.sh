#!/usr/bin/env bash
# Stage 1 of egs2/librimix/use1: Kaldi-style data directories from a local LibriMix.
set -euo pipefail

log() {
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[0]##*/}) $*"
}

help_message=$(cat <<'EOF'
Usage: local/data.sh --librimix_dir <dir> [options]

Writes data/{train,dev,test} (layout: egs2/TEMPLATE/use1/README.md) from a LibriMix
corpus already generated on this machine. Nothing is downloaded.

Options:
  --librimix_dir <dir>   LibriMix root, holding Libri2Mix/ and/or Libri3Mix/ (required)
  --data_dir <dir>       output data directory (default: data)
  --sample_rate 8k|16k   which wav<sr> tree to read (default: 8k)
  --mode min|max         LibriMix length mode (default: min)
  --condition clean|noisy  clean reads mix_clean, noisy reads mix_both, whose mixtures
                         also hold WHAM! noise that is no reference (default: clean)
  --num_src 2|3|both     Libri2Mix, Libri3Mix, or both pooled into one set
                         (the paper's unknown-count setting; K = 3 and a 2-speaker
                         mixture's spk3 is the zero-length data/<set>/silence.wav)
                         (default: 2)
  --train_subsets "<s> ..."  training subsets pooled into data/train
                         (train-100 and/or train-360; default: train-360)
  --help                 this message

Corpus layout assumed (JorisCos/LibriMix, scripts/create_librimix_from_metadata.py,
https://github.com/JorisCos/LibriMix, the version that writes per-subset metadata):
  <librimix_dir>/Libri{2,3}Mix/wav{8k,16k}/{min,max}/
      {train-100,train-360,dev,test}/{mix_clean,mix_both,s1,s2[,s3],noise}/<mixture_ID>.wav
      metadata/mixture_<subset>_{mix_clean,mix_both}.csv
  CSV columns: mixture_ID,[original_mixture_ID,]mixture_path,source_1_path,...,
  source_<n>_path,[noise_path (mix_both),]length. The CSVs hold the generating
  machine's absolute paths: each is looked up under --librimix_dir (from its
  Libri<n>Mix/ part on) first, then as written.

Output per set: wav.scp, spk1.scp..spkK.scp, utt2num_src, utt2category (2mix/3mix).
LibriMix is separation-only speech, so no cue files and no labels.txt are written.
A missing root, metadata CSV, CSV column or listed wav stops the script with a
message naming the path; nothing is written then.
EOF
)

librimix_dir=
data_dir=data
sample_rate=8k
mode=min
condition=clean
num_src=2
train_subsets=train-360

# The shared option parser (utils/parse_options.sh): every variable above is an option.
. "$(dirname "${BASH_SOURCE[0]}")/../utils/parse_options.sh"
if [ $# -gt 0 ]; then echo "$0: unknown argument $1" >&2; echo "${help_message}" >&2; exit 1; fi

# The corpus root is checked before anything else happens.
if [ -z "${librimix_dir}" ]; then
  echo "$0: --librimix_dir is required: the LibriMix root holding Libri2Mix/ and/or Libri3Mix/" >&2
  exit 1
fi
if [ ! -d "${librimix_dir}" ]; then
  echo "ERROR: ${librimix_dir}: does not exist or is not a directory; expected the LibriMix root holding Libri2Mix/ and/or Libri3Mix/" >&2
  exit 1
fi

if [ -f ./path.sh ]; then set +u; . ./path.sh; set -u; fi

log "LibriMix ${librimix_dir}: wav${sample_rate} ${mode} ${condition} num_src=${num_src} -> ${data_dir}"
python3 "$(dirname "${BASH_SOURCE[0]}")/prepare_librimix.py" \
  --librimix_dir "${librimix_dir}" --data_dir "${data_dir}" --sample_rate "${sample_rate}" \
  --mode "${mode}" --condition "${condition}" --num_src "${num_src}" \
  --train_subsets "${train_subsets}"
log "done"
