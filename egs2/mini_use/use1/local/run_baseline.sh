#!/usr/bin/env bash
# Reference rows of RESULTS.md, on the same test set as USE (run after ./run.sh stage 3):
#   1. the oracle ideal ratio mask (IRM) of every test_ss mixture;
#   2. ESPnet's stock Conv-TasNet (separator: tcn, count known = 2) trained on the
#      2-source mixtures of the training set. A fixed-count separator cannot train on
#      1- and 3-source mixtures, so it gets the 2-source third of the training set, for
#      15 epochs (10,000 mixtures seen; USE-S sees 14,000 in stage 1, 24,000 in all).
#      Scored on the 2-source mixtures of test_ss.
# Outputs: exp/oracle_irm/decode_test_ss/ss, exp/tcn_baseline/decode_test_ss_2src/ss,
# each with scores.json / scores.md, and their section in RESULTS.md.
set -euo pipefail
. ./path.sh
. ./cmd.sh

dumpdir=dump
test_set=test_ss
config=conf/tuning/train_tcn_baseline.yaml
exp=exp/tcn_baseline
results_md=RESULTS.md
python=python3

. utils/parse_options.sh

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}) $*" >&2; }
start=${SECONDS}

log "oracle IRM on ${test_set}"
irm=exp/oracle_irm/decode_${test_set}/ss
${python} -m espnet2_use.bin.oracle_mask --ref_dir "${dumpdir}/raw/${test_set}" --out_dir "${irm}"

log "2-source subsets"
for dset in train valid "${test_set}"; do
    ${python} local/subset_by_count.py --num_src 2 "${dumpdir}/raw/${dset}" "${dumpdir}/raw/${dset}_2src"
done

data_args=()
for mode in train valid; do
    dset=train_2src; [ "${mode}" = valid ] && dset=valid_2src
    data_args+=(--"${mode}"_data_path_and_name_and_type "${dumpdir}/raw/${dset}/wav.scp,speech_mix,sound")
    for k in 1 2; do
        data_args+=(--"${mode}"_data_path_and_name_and_type "${dumpdir}/raw/${dset}/spk${k}.scp,speech_ref${k},sound")
    done
done

if [ ! -f "${exp}/.done" ]; then
    mkdir -p "${exp}/stats"
    cut -d' ' -f1 "${dumpdir}/raw/train_2src/wav.scp" > "${exp}/stats/train.keys"
    cut -d' ' -f1 "${dumpdir}/raw/valid_2src/wav.scp" > "${exp}/stats/valid.keys"
    log "statistics and training: ${exp}/train.log"
    ${train_cmd} "${exp}/stats/stats.log" ${python} -m espnet2.bin.enh_train --collect_stats true \
        --config "${config}" --output_dir "${exp}/stats" "${data_args[@]}" \
        --train_shape_file "${exp}/stats/train.keys" --valid_shape_file "${exp}/stats/valid.keys"
    ${cuda_cmd} --num_threads 2 "${exp}/train.log" OMP_NUM_THREADS=2 ${python} -m espnet2.bin.enh_train \
        --config "${config}" --output_dir "${exp}" --resume true "${data_args[@]}" \
        --train_shape_file "${exp}/stats/train/speech_mix_shape" \
        --valid_shape_file "${exp}/stats/valid/speech_mix_shape"
    touch "${exp}/.done"
fi

log "decoding ${test_set}_2src"
tcn=${exp}/decode_${test_set}_2src/ss
${python} local/decode_enh_baseline.py --exp_dir "${exp}" --data_dir "${dumpdir}/raw/${test_set}_2src" \
    --output_dir "${tcn}"

${python} -m espnet2_use.bin.use_scoring --mode ss --ref_dir "${dumpdir}/raw/${test_set}" --est_dir "${irm}" --no_progress
${python} -m espnet2_use.bin.use_scoring --mode ss --ref_dir "${dumpdir}/raw/${test_set}_2src" --est_dir "${tcn}" --no_progress
echo "baselines $(( SECONDS - start )) s" >> exp/stage_times.txt
log "done in $(( SECONDS - start )) s; scores: ${irm}/scores.md ${tcn}/scores.md"
