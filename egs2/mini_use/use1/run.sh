#!/usr/bin/env bash
# mini_use: the whole USE pipeline on a corpus synthesised on this machine (8 kHz, 1-3
# sources of 18 sound classes, captions, labels, pictures and video clips per source).
# ./run.sh runs stages 1-8; ./run.sh --stage 6 --stop_stage 7 re-decodes and re-scores.
set -euo pipefail

train_set=train
valid_set=valid
ss_test_sets="test_ss test_tse"   # test_tse too: the TSE bar compares with SS
tse_test_sets="test_tse"
tse_cue_combinations="label text video label+text label+video text+video label+text+video span label+span text+span"

./local/link_pretrained.sh

./use.sh \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --ss_test_sets "${ss_test_sets}" \
    --tse_test_sets "${tse_test_sets}" \
    --tse_cue_combinations "${tse_cue_combinations}" \
    --stage1_config conf/train_stage1.yaml \
    --stage2_config conf/train_stage2.yaml \
    --label_list data/token_list/labels.txt \
    --nj 2 \
    --decode_nj 2 \
    "$@"
