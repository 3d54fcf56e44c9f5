#!/usr/bin/env bash
# Stage 1 of egs2/audioset/use1: simulated SS and TSE mixtures from local AudioSet clips.
set -euo pipefail

log() {
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[0]##*/}) $*"
}

help_message=$(cat <<'EOF'
Usage: local/data.sh --audioset_dir <dir> [options]

Simulates separation (2mix, 3mix) and extraction (tse) mixtures from AudioSet clips
already downloaded to this machine and writes data/{train,dev,test_seen,test_unseen,
test_seen_tse,test_unseen_tse} (layout: egs2/TEMPLATE/use1/README.md),
data/token_list/labels.txt, data/local/unseen_classes.txt and data/local/missing_clips.txt
(segments skipped with --allow_missing true). Nothing is downloaded.

Options:
  --audioset_dir <dir>      folder searched (recursively) for the clips (required)
  --meta_dir <dir>          folder of the CSVs below (default: --audioset_dir)
  --train_csv <name>        segments CSV of the training clips (default: balanced_train_segments.csv)
  --test_csv <name>         segments CSV of the test clips (default: eval_segments.csv)
  --class_labels_csv <name> (default: class_labels_indices.csv)
  --audiocaps_dir <dir>     AudioCaps' dataset/ folder with train.csv, val.csv, test.csv;
                            gives captions (text cues) to the clips it covers (default: none)
  --unbalanced_csv <name>   segments CSV listing AudioCaps' clips, read with --audiocaps_dir
                            (default: unbalanced_train_segments.csv in --meta_dir if there)
  --unseen_classes <file>   unseen classes, one display name or mid per line (default: a
                            seeded --unseen_fraction of the test clips' classes)
  --unseen_fraction <x>     (default: 0.1)
  --max_labels_per_clip <n> use only clips with at most n labels; 0: all (default: 0)
  --categories "<c> ..."    mixture kinds of train/dev: 2mix 3mix tse (default: all three)
  --num_train_mix <n>       mixtures per category in train (default: 10000)
  --num_dev_mix <n>         per category in dev (default: 500)
  --num_test_mix <n>        per category in each test set (default: 1000)
  --dev_fraction <x>        share of the training clips held out for dev (default: 0.05)
  --fs <hz>                 sampling rate of the written audio (default: 16000)
  --segment_sec <s>         length of every mixture (default: 5.0)
  --level_range <db>        source levels uniform in +-db around a common RMS (default: 5)
  --tse_max_interferers <n> a tse mixture has 1..n interferers (default: 2)
  --allow_missing true|false  skip listed segments without a file instead of stopping
                            (a YouTube-based download always misses some; default: false)
  --seed <n>                (default: 0)
  --nj <n>                  processes writing audio; the output does not depend on it (default: 1)
  --data_dir <dir>          output data directory (default: data)
  --help                    this message

Corpus layout assumed (https://research.google.com/audioset/download.html):
  balanced_train_segments.csv, eval_segments.csv: 3 comment lines, the third
    "# YTID, start_seconds, end_seconds, positive_labels", then rows like
    --PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"
  class_labels_indices.csv: header index,mid,display_name
  clips: <dir>/**/<name>.wav|.flac (audio) and/or <name>.mp4 (video; also the audio
    source when no wav/flac exists), <name> one of <YTID>_<start> (e.g. --PJHxphWEs_30),
    <YTID>_<start:.3f>, <YTID>_<start:.1f>, <YTID>_<start ms>, <YTID>_<start:06d>,
    <YTID>_<start>_<end> (s, s.3f or ms; the audiosetdl downloader writes
    audio/<YTID>_<start ms>_<end ms>.flac and video/<same>.mp4), Y<YTID>,
    Y<YTID>_<start:.3f>_<end:.3f>, <YTID>
  AudioCaps (github.com/cdjkim/audiocaps, dataset/): train.csv, val.csv, test.csv with the
    header audiocap_id,youtube_id,start_time,caption (val/test: 5 captions per clip)
  unbalanced_train_segments.csv (same format as the segment CSVs): AudioCaps draws its clips
    from this list, not from the balanced/eval ones. With --audiocaps_dir, the AudioCaps
    clips it lists that are on disk join the clips (AudioCaps train/val: training, test:
    testing), labelled from it; AudioCaps clips without a file are skipped. The script
    prints how many clips and, per set, mixtures have a caption, and stops when
    --audiocaps_dir is given and no clip on disk has a caption.

Mixtures (our construction, the paper's lists are not public): each source is the
loudest --segment_sec window of its 10-s clip (labels are clip-level) resampled to
--fs, at a common RMS times a level uniform in +-level_range dB; classes are drawn
uniformly, one clip per class, and the clips of a mixture share no label. A clip's
label_spk is its rarest positive label (the most specific one). 2mix/3mix give every
source its cues (label; AudioCaps caption if any; the clip's mp4 if any, the whole
10-s clip); tse gives cues to its target spk1 only. Training clips carry no unseen
label; test_unseen* draw their sources from clips whose label is unseen.
Disk: about 2 bytes x fs x segment_sec x (sources + 1) per mixture.
A missing root, CSV, CSV column, unknown label or clip file stops the script with a
message naming the path (and line); nothing is written then.
EOF
)

audioset_dir=
meta_dir=
train_csv=balanced_train_segments.csv
test_csv=eval_segments.csv
class_labels_csv=class_labels_indices.csv
audiocaps_dir=
unbalanced_csv=
unseen_classes=
unseen_fraction=0.1
max_labels_per_clip=0
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
if [ -z "${audioset_dir}" ]; then
  echo "$0: --audioset_dir is required: the folder holding the downloaded AudioSet clips" >&2
  exit 1
fi
if [ ! -d "${audioset_dir}" ]; then
  echo "ERROR: ${audioset_dir}: does not exist or is not a directory; expected the folder holding the downloaded AudioSet clips" >&2
  exit 1
fi

if [ -f ./path.sh ]; then set +u; . ./path.sh; set -u; fi

log "AudioSet ${audioset_dir} -> ${data_dir}"
python3 "$(dirname "${BASH_SOURCE[0]}")/prepare_audioset.py" \
  --audioset_dir "${audioset_dir}" --meta_dir "${meta_dir}" --train_csv "${train_csv}" \
  --test_csv "${test_csv}" --class_labels_csv "${class_labels_csv}" \
  --audiocaps_dir "${audiocaps_dir}" --unbalanced_csv "${unbalanced_csv}" \
  --unseen_classes "${unseen_classes}" \
  --unseen_fraction "${unseen_fraction}" --max_labels_per_clip "${max_labels_per_clip}" \
  --categories "${categories}" --num_train_mix "${num_train_mix}" --num_dev_mix "${num_dev_mix}" \
  --num_test_mix "${num_test_mix}" --dev_fraction "${dev_fraction}" --fs "${fs}" \
  --segment_sec "${segment_sec}" --level_range "${level_range}" \
  --tse_max_interferers "${tse_max_interferers}" --allow_missing "${allow_missing}" \
  --seed "${seed}" --nj "${nj}" --data_dir "${data_dir}"
log "done"
