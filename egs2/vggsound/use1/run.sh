#!/usr/bin/env bash
# VGGSound with USE-S (16 kHz): separation (2mix, 3mix) and extraction by label, caption
# (a template over the label) and video, on mixtures simulated from local VGGSound clips.
# ./run.sh --vggsound_dir <clips> runs stages 1-8; stage 2 needs the frozen encoders in
# pretrained/ (see RESULTS.md).
set -euo pipefail

vggsound_dir=""      # folder with vggsound.csv and the clips (mp4 and/or flac/wav; stage 1 reads it)
local_data_opts=""   # more options of local/data.sh, e.g. "--allow_missing true --nj 8"
recipe_options="vggsound_dir local_data_opts"
recipe_help="Usage: ./run.sh --vggsound_dir <clips> [options of use.sh]
  Stage 2 reads pretrained/distilbert-base-uncased (a transformers folder) and
  pretrained/swin_tiny_patch4_window7_224.safetensors (timm weights; Microsoft's original .pth loads too, named in the config's weights);
  see conf/train_stage2.yaml and RESULTS.md.
  Clips: <YTID>_<start:06d>.mp4 (the released archives) or the audiosetdl downloader's
  video/<YTID>_<start ms>_<end ms>.mp4 with audio/<same>.flac, any folder depth; flac/wav
  copies beside or instead of the mp4 (local/data.sh --help lists the layouts).
  e.g. ./run.sh --vggsound_dir /data/vggsound --ngpu 4
       cmd_backend=slurm ./run.sh --vggsound_dir /data/vggsound --ngpu 8 --num_nodes 2"
. utils/parse_recipe_options.sh

data_opts=${local_data_opts}
[ -z "${vggsound_dir}" ] || data_opts="--vggsound_dir $(printf %q "${vggsound_dir}") ${data_opts}"

./use.sh \
    --train_set train \
    --valid_set dev \
    --ss_test_sets test \
    --tse_test_sets test_tse \
    --local_data_opts "${data_opts}" \
    --stage1_config conf/train_stage1.yaml \
    --stage2_config conf/train_stage2.yaml \
    --label_list data/token_list/labels.txt \
    --ngpu 1 \
    "$@"
