#!/usr/bin/env bash
# Stage 1 of egs2/vggsound/use1: simulated SS and TSE mixtures with video cues from local VGGSound clips.
set -euo pipefail

log() {
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[0]##*/}) $*"
}

help_message=$(cat <<'EOF'
Usage: local/data.sh --vggsound_dir <dir> [options]

Simulates separation (2mix, 3mix) and extraction (tse) mixtures from VGGSound clips
already downloaded to this machine and writes data/{train,dev,test,test_tse}
(layout: egs2/TEMPLATE/use1/README.md), data/token_list/labels.txt and
data/local/missing_clips.txt (clips skipped with --allow_missing true). Nothing is
downloaded.

Options:
  --vggsound_dir <dir>      folder searched (recursively) for the clips (required)
  --csv <file>              the clip list (default: <vggsound_dir>/vggsound.csv)
  --caption_template <t>    text cue made from the label (default: "the sound of {label}")
  --categories "<c> ..."    mixture kinds of train/dev: 2mix 3mix tse (default: all three)
  --num_train_mix <n>       mixtures per category in train (default: 10000)
  --num_dev_mix <n>         per category in dev (default: 500)
  --num_test_mix <n>        per category in test / test_tse (default: 1000)
  --dev_fraction <x>        share of the CSV's train clips held out for dev (default: 0.05)
  --fs <hz>                 sampling rate of the written audio (default: 16000)
  --segment_sec <s>         length of every mixture (default: 5.0)
  --level_range <db>        source levels uniform in +-db around a common RMS (default: 5)
  --tse_max_interferers <n> a tse mixture has 1..n interferers (default: 2)
  --allow_missing true|false  skip listed clips without a file instead of stopping
                            (a YouTube-based download always misses some; default: false)
  --seed <n>                (default: 0)
  --nj <n>                  processes writing audio; the output does not depend on it (default: 1)
  --data_dir <dir>          output data directory (default: data)
  --help                    this message

Corpus layout assumed (VGGSound, https://www.robots.ox.ac.uk/~vgg/data/vggsound/; the csv
of github.com/hche11/VGGSound, data/vggsound.csv):
  vggsound.csv: no header, rows "YouTube ID,start seconds,label,train|test", e.g.
    ---g-f_I2yQ,1,people marching,test   (labels with commas are quoted)
  clips: <dir>/**/<name>.mp4 at any folder depth, <name> one of
    <YTID>_<start:06d>, e.g. ---g-f_I2yQ_000001.mp4 (the released video archives)
    <YTID>_<start ms>_<end ms>, e.g. video/---g-f_I2yQ_1000_11000.mp4 (the audiosetdl
      downloader VGGSound's README points to; it puts the audio beside, as
      audio/---g-f_I2yQ_1000_11000.flac)
    <YTID>_<start>
  audio-only copies: <name>.flac or <name>.wav (any of the names above), beside the
    mp4 or instead of it

A clip's audio comes from its flac/wav when there is one, else from its mp4 (decoded
with PyAV); the mixtures and references are written as wavs under data/<set>/audio/.
video_spk<k>.scp names the clip's mp4 (the whole 10-s clip), or nothing for a clip
without an mp4 (no video cue for that source). VGGSound has no captions: the text cue
(text_spk<k>) is the template
over the label, so it says no more than the label does. Mixtures: each source is
the loudest --segment_sec window of its clip at a common RMS times a level uniform in
+-level_range dB; one clip per class, classes drawn uniformly and all different.
2mix/3mix cue every source; tse cues its target spk1 only. Split from the CSV's
train/test column. Disk: about 2 bytes x fs x segment_sec x (sources + 1) per mixture.
A missing root, CSV, malformed CSV row or clip file stops the script with a message
naming the path (and line); nothing is written then.
EOF
)

vggsound_dir=
csv=
caption_template="the sound of {label}"
categories="2mix 3mix tse"
num_train_mix=10000
num_dev_mix=500
num_test_mix=1000
dev_fraction=0.05
fs=16000
segment_sec=5.0
level_range=5
tse_max_interferers=2
allow_missing=false
seed=0
nj=1
data_dir=data

# The shared option parser (utils/parse_options.sh): every variable above is an option.
. "$(dirname "${BASH_SOURCE[0]}")/../utils/parse_options.sh"
if [ $# -gt 0 ]; then echo "$0: unknown argument $1" >&2; echo "${help_message}" >&2; exit 1; fi

# The corpus root is checked before anything else happens.
if [ -z "${vggsound_dir}" ]; then
  echo "$0: --vggsound_dir is required: the folder holding the VGGSound mp4 clips" >&2
  exit 1
fi
if [ ! -d "${vggsound_dir}" ]; then
  echo "ERROR: ${vggsound_dir}: does not exist or is not a directory; expected the folder holding the VGGSound mp4 clips and vggsound.csv" >&2
  exit 1
fi

if [ -f ./path.sh ]; then set +u; . ./path.sh; set -u; fi

log "VGGSound ${vggsound_dir} -> ${data_dir}"
python3 "$(dirname "${BASH_SOURCE[0]}")/prepare_vggsound.py" \
  --vggsound_dir "${vggsound_dir}" --csv "${csv}" --caption_template "${caption_template}" \
  --categories "${categories}" --num_train_mix "${num_train_mix}" --num_dev_mix "${num_dev_mix}" \
  --num_test_mix "${num_test_mix}" --dev_fraction "${dev_fraction}" --fs "${fs}" \
  --segment_sec "${segment_sec}" --level_range "${level_range}" \
  --tse_max_interferers "${tse_max_interferers}" --allow_missing "${allow_missing}" \
  --seed "${seed}" --nj "${nj}" --data_dir "${data_dir}"
log "done"
