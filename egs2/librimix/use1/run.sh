#!/usr/bin/env bash
# LibriMix with USE-B (8 kHz, min, clean; separation only, no cues): the paper's Libri2Mix,
# Libri3Mix and unknown-count (USE-B*) rows. ./run.sh --librimix_dir <root> runs stages 1-8;
# RESULTS.md gives the compute it needs. Each --num_src setup has its own dump/<setup>,
# exp/<setup> and RESULTS_<setup>.md; data/ holds the setup stage 1 last wrote.
set -euo pipefail

librimix_dir=""      # LibriMix root holding Libri2Mix/ and/or Libri3Mix/ (stage 1 reads it)
num_src=2            # 2: Libri2Mix (K=2); 3: Libri3Mix (K=3); both: pooled, count unknown (K=3)
local_data_opts=""   # more options of local/data.sh, e.g. "--train_subsets train-100"
recipe_options="librimix_dir num_src local_data_opts"
recipe_help="Usage: ./run.sh --librimix_dir <LibriMix root> [--num_src 2|3|both] [options of use.sh]
  e.g. ./run.sh --librimix_dir /data/LibriMix --num_src both --ngpu 4
       cmd_backend=slurm ./run.sh --librimix_dir /data/LibriMix --ngpu 8 --num_nodes 2"
. utils/parse_recipe_options.sh

case "${num_src}" in
    2) stage1_config=conf/train_stage1.yaml; setup=libri2mix ;;
    3) stage1_config=conf/train_stage1_k3.yaml; setup=libri3mix ;;
    both) stage1_config=conf/train_stage1_k3.yaml; setup=libri2mix_libri3mix ;;
    *) echo "$0: --num_src must be 2, 3 or both, got '${num_src}'" >&2; exit 1 ;;
esac
data_opts="--num_src ${num_src} ${local_data_opts}"
[ -z "${librimix_dir}" ] || data_opts="--librimix_dir $(printf %q "${librimix_dir}") ${data_opts}"

./use.sh \
    --train_set train \
    --valid_set dev \
    --ss_test_sets test \
    --local_data_opts "${data_opts}" \
    --stage1_config "${stage1_config}" \
    --stage2_config "" \
    --dumpdir "dump/${setup}" \
    --expdir "exp/${setup}" \
    --results_md "RESULTS_${setup}.md" \
    --ngpu 1 \
    "$@"
