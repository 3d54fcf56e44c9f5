#!/usr/bin/env bash
# debian_sounds: USE-S on real recorded sounds from openly licensed Debian packages
# (29 classes: voices in 22 languages, shouting, singing, animals, water, fire,
# vehicles, machines, drums and instruments; local/debian_packages.py pins them).
# ./run.sh runs stages 1-8 (stage 1 fetches the packages into downloads/debian once);
# ./run.sh --fs 16000 builds and trains at 16 kHz.
set -euo pipefail

fs=8000              # sample rate of the corpus and the model (8000 or 16000)
recipe_options="fs"
recipe_help="Usage: ./run.sh [--fs 8000|16000] [options of use.sh]"
. utils/parse_recipe_options.sh

../../mini_use/use1/local/link_pretrained.sh

./use.sh \
    --fs "${fs}" \
    --local_data_opts "--fs ${fs}" \
    --train_set train \
    --valid_set valid \
    --ss_test_sets "test_ss test_tse" \
    --tse_test_sets test_tse \
    --tse_cue_combinations "label text video label+text label+video text+video label+text+video" \
    --stage1_config conf/train_stage1.yaml \
    --stage2_config conf/train_stage2.yaml \
    --label_list data/token_list/labels.txt \
    --nj 2 \
    --decode_nj 2 \
    "$@"
