#!/usr/bin/env bash
# FUSS with USE-B (reverberant FUSS, 16 kHz, 1-4 sources; separation only, no cues), scored by
# the FUSS rules: ./run.sh --fuss_dir <root> runs stages 1-8; RESULTS.md gives the compute
# it needs.
set -euo pipefail

fuss_dir=""          # FUSS root holding ssdata_reverb/ (and/or ssdata/ for --variant dry)
local_data_opts=""   # more options of local/data.sh, e.g. "--variant dry" or "--fuss_dev_dir <dir>"
recipe_options="fuss_dir local_data_opts"
recipe_help="Usage: ./run.sh --fuss_dir <FUSS root> [options of use.sh]
  --fuss_dir is the official dev data (<root>/fuss_dev from FUSS's get_dev_data.sh) or
  the output of FUSS's data augmentation (<root>/fuss_augment_<seed>), which has no eval
  split: the test set then comes from fuss_dev beside it, or from the tree given with
  --local_data_opts \"--fuss_dev_dir <dir>\" (local/data.sh --help lists the layouts).
  e.g. ./run.sh --fuss_dir /data/fuss/fuss_dev --ngpu 4
       ./run.sh --fuss_dir /data/fuss/fuss_augment_2020 --ngpu 4
       cmd_backend=slurm ./run.sh --fuss_dir /data/fuss/fuss_dev --ngpu 8 --num_nodes 2"
. utils/parse_recipe_options.sh

data_opts=${local_data_opts}
[ -z "${fuss_dir}" ] || data_opts="--fuss_dir $(printf %q "${fuss_dir}") ${data_opts}"

./use.sh \
    --train_set train \
    --valid_set dev \
    --ss_test_sets test \
    --local_data_opts "${data_opts}" \
    --stage1_config conf/train_stage1.yaml \
    --stage2_config "" \
    --ngpu 1 \
    "$@"
