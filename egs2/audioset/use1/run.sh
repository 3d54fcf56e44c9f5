#!/usr/bin/env bash
# AudioSet with USE-S (16 kHz): separation (2mix, 3mix) and extraction by label, caption
# (AudioCaps) and video, on mixtures simulated from local AudioSet clips; seen and unseen
# classes are tested apart. ./run.sh --audioset_dir <clips> --audiocaps_dir <dataset/> runs
# stages 1-8; stage 2 needs the frozen encoders in pretrained/ (see RESULTS.md).
set -euo pipefail

audioset_dir=""      # folder with the downloaded clips and the AudioSet CSVs (stage 1 reads it)
audiocaps_dir=""     # AudioCaps dataset/ folder: captions (text cues); without it no text cues
local_data_opts=""   # more options of local/data.sh, e.g. "--meta_dir /data/meta --nj 8"
recipe_options="audioset_dir audiocaps_dir local_data_opts"
recipe_help="Usage: ./run.sh --audioset_dir <clips> [--audiocaps_dir <AudioCaps dataset/>]
                [options of use.sh]
  AudioCaps' clips come from AudioSet's unbalanced_train_segments.csv: keep it beside the
  other CSVs (or pass --local_data_opts \"--unbalanced_csv <file>\") and its AudioCaps
  clips under --audioset_dir; local/data.sh --help lists the layouts and file names.
  Stage 2 reads pretrained/distilbert-base-uncased (a transformers folder) and
  pretrained/swin_tiny_patch4_window7_224.safetensors (timm weights; Microsoft's original .pth loads too, named in the config's weights);
  see conf/train_stage2.yaml and RESULTS.md.
  e.g. ./run.sh --audioset_dir /data/audioset --audiocaps_dir /data/audiocaps/dataset --ngpu 4
       cmd_backend=slurm ./run.sh --audioset_dir /data/audioset --ngpu 8 --num_nodes 2"
. utils/parse_recipe_options.sh

data_opts=${local_data_opts}
[ -z "${audiocaps_dir}" ] || data_opts="--audiocaps_dir $(printf %q "${audiocaps_dir}") ${data_opts}"
[ -z "${audioset_dir}" ] || data_opts="--audioset_dir $(printf %q "${audioset_dir}") ${data_opts}"

./use.sh \
    --train_set train \
    --valid_set dev \
    --ss_test_sets "test_seen test_unseen" \
    --tse_test_sets "test_seen_tse test_unseen_tse" \
    --local_data_opts "${data_opts}" \
    --stage1_config conf/train_stage1.yaml \
    --stage2_config conf/train_stage2.yaml \
    --label_list data/token_list/labels.txt \
    --ngpu 1 \
    "$@"
