#!/usr/bin/env bash
# USE recipe template: data preparation, two-stage training, decoding, scoring, packing.
# Each corpus' run.sh picks configs and sets and calls this script; see --help.
set -euo pipefail

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}:${BASH_LINENO[0]}) $*" >&2; }
min() { echo $(( $1 < $2 ? $1 : $2 )); }

# General
stage=1                 # first stage to run
stop_stage=8            # last stage to run
nj=2                    # parallel jobs for data formatting, cue extraction, statistics
decode_nj=2             # parallel decoding jobs
ngpu=0                  # GPUs per node for training (ESPnet's --ngpu)
num_nodes=1             # nodes for training (ESPnet's distributed launch)
cpu_procs=1             # data-parallel CPU training processes (torchrun, gloo) when ngpu=0
train_threads=2         # torch threads per training process on CPU
python=python3
dumpdir=dump
expdir=exp

# Data
fs=""                   # sample rate (Hz; 8k, 16k accepted): default the training config's
                        # sample_rate; given, it must equal it (the config is the one setting)
max_num_src=""          # K, the largest number of sources: default the config's
                        # model_conf.max_num_src; given, it must equal it
train_set=train
valid_set=valid
ss_test_sets=""         # sets decoded by separation (unknown and true count)
tse_test_sets=""        # sets decoded by extraction, once per cue combination
local_data_opts=""      # options of local/data.sh (shell words: quote values with spaces)
label_list=data/token_list/labels.txt
bpe_vocab_size=300      # sentencepiece vocabulary when the text cue encoder is 'spm'
bpe_dir=""              # default: data/token_list/bpe_unigram<bpe_vocab_size>

# Training
stage1_config=""        # separation + EDA (training stage 1)
stage2_config=""        # both branches + alignment, from stage 1's model (""= skip stage 5)
stage1_args=""          # extra arguments of use_train for stage 1
stage2_args=""
stage1_tag=""           # default: the config's name
stage2_tag=""
init_model=valid.loss.best.pth   # stage-1 weights that stage 2 starts from

# Decoding and scoring
ss_tasks="ss ss_oracle"
tse_cue_combinations="label text video label+text label+video text+video label+text+video"
inference_model=""      # weights for decoding (default: use_inference's choice)
calibrate_count=false   # true: before decoding, weigh a count branch against the attractors on
                        # the valid set (use_count_calibrate; only for a model that counts by its
                        # branch). Off: on mini_use it gained 5 points on valid and lost 1.7 on test.
calibrate_count_remix=0 # >0: calibrate on this many mixtures made afresh from the valid set's
                        # references (use_count_calibrate --remix) instead of its own mixtures
inference_ngpu=0        # 1: decoding and cue extraction jobs run on a GPU
num_plots=3             # spectrogram PNGs per decoding set
scoring_opts=""
results_md=RESULTS.md   # where stage 7 writes its section

help_message=$(cat <<EOF
Usage: $0 [options]

Stages:
  1  data preparation (local/data.sh ${local_data_opts}) and validation of every set
  2  formatting into ${dumpdir}/raw/<set>, the sentencepiece model (text encoder 'spm'),
     frozen cue embeddings (text encoder 'hf', video encoder 'timm')
  3  statistics (shape files) of the training and validation sets
  4  training stage 1: separation + EDA
  5  training stage 2: both branches + alignment, initialised from stage 1
  6  decoding: SS (unknown and true count) of ss_test_sets, TSE of tse_test_sets per cue
     combination, spectrogram PNGs
  7  scoring into ${results_md}
  8  packing of the model into one file

Finished work is marked (.done files) and skipped on a re-run; a killed training
resumes from its last finished epoch. Jobs run through cmd.sh (local or Slurm).
EOF
)
. utils/parse_options.sh

[ -n "${stage1_config}" ] || { log "error: --stage1_config is required"; exit 1; }
. ./path.sh
. ./cmd.sh
inference_device=cpu
[ "${inference_ngpu}" -eq 0 ] || inference_device=cuda
# sample_rate and max_num_src: the training configs' (use_config_values checks that the
# configs agree, and that --fs / --max_num_src, when given, equal them).
config_values=$(${python} -m espnet2_use.bin.use_config_values --config "${stage1_config}" \
    ${stage2_config:+--config "${stage2_config}"} ${fs:+--fs "${fs}"} \
    ${max_num_src:+--max_num_src "${max_num_src}"} | tail -n 1)
read -r fs max_num_src <<< "${config_values}"
[ -n "${stage1_tag}" ] || stage1_tag=$(basename "${stage1_config}" .yaml)
[ -n "${stage2_tag}" ] || { [ -z "${stage2_config}" ] || stage2_tag=$(basename "${stage2_config}" .yaml); }
[ -n "${bpe_dir}" ] || bpe_dir=data/token_list/bpe_unigram${bpe_vocab_size}
stage1_dir=${expdir}/${stage1_tag}
stage2_dir=${expdir}/${stage2_tag:-none}
stats_dir=${expdir}/stats_${fs}
all_sets=$(echo "${train_set} ${valid_set} ${ss_test_sets} ${tse_test_sets}" | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ')
if [ -n "${stage2_config}" ]; then
    final_dir=${stage2_dir}; final_config=${stage2_config}
else
    final_dir=${stage1_dir}; final_config=${stage1_config}
fi
mkdir -p "${expdir}"
timing=${expdir}/stage_times.txt

# Runs a stage body and records how long it took.
# (Its locals carry a prefix: bash's dynamic scoping would let a stage's loop
# variables overwrite them.)
run_stage() {
    local _stage_n=$1 _stage_name=$2; shift 2
    if [ "${stage}" -le "${_stage_n}" ] && [ "${stop_stage}" -ge "${_stage_n}" ]; then
        log "Stage ${_stage_n}: ${_stage_name}"
        local _stage_start=${SECONDS}
        "$@"
        echo "stage ${_stage_n} ${_stage_name} $(( SECONDS - _stage_start )) s" >> "${timing}"
        log "Stage ${_stage_n} done in $(( SECONDS - _stage_start )) s"
    fi
}

config_has_text() {  # prints the text cue encoder type of a config ("" if none)
    ${python} -c "import sys, yaml; c = yaml.safe_load(open(sys.argv[1])) or {}; print(((c.get('cue_encoders') or {}).get('text') or {}).get('type', ''))" "$1"
}

stage_data() {
    # eval: the options are shell words, so quoted values with spaces survive.
    eval "local/data.sh ${local_data_opts}"
    local dirs=()
    for dset in ${all_sets}; do dirs+=("data/${dset}"); done
    local opts=(--max_num_src "${max_num_src}" --fs "${fs}")
    [ -f "${label_list}" ] && opts+=(--label_list "${label_list}")
    ${python} utils/validate_data_dir.py "${opts[@]}" "${dirs[@]}"
}

stage_format() {
    local args=()
    for dset in ${all_sets}; do args+=(--in_dir "data/${dset}" --out_dir "${dumpdir}/raw/${dset}"); done
    ${python} -m espnet2_use.bin.use_format_data --fs "${fs}" --nj "${nj}" "${args[@]}"
    [ -n "${stage2_config}" ] || return 0
    if [ "$(config_has_text "${stage2_config}")" = spm ]; then
        ${python} -m espnet2_use.bin.use_train_spm --data_dir "data/${train_set}" \
            --vocab_size "${bpe_vocab_size}" --out_dir "${bpe_dir}"
    fi
    # Frozen cue encoders run once over every set: nj jobs, each over its share of every
    # set (the networks load once per job), then one merge per set. A set is done when
    # its marker holds the hash of the config and of its utterance list.
    local pending=() jobs=${nj}
    for dset in ${all_sets}; do
        local dir=${dumpdir}/raw/${dset}
        [ "$(cat "${dir}/.cues_done" 2>/dev/null)" = "$(cues_key "${dir}")" ] && continue
        pending+=("${dset}")
        jobs=$(min "${jobs}" "$(wc -l < "${dir}/wav.scp")")
    done
    [ "${#pending[@]}" -gt 0 ] || { log "cue embeddings are done"; return 0; }
    local extract_args=() merge_args=()
    for dset in "${pending[@]}"; do
        local dir=${dumpdir}/raw/${dset} sdir=${dumpdir}/raw/${dset}/logs/extract_cues
        mkdir -p "${sdir}"
        local keys=() outs=()
        for n in $(seq "${jobs}"); do keys+=("${sdir}/keys.${n}"); outs+=("${sdir}/out.${n}"); done
        ${python} utils/split_scp.py "${dir}/wav.scp" "${keys[@]}"
        extract_args+=(--data_dir "${dir}" --out_dir "${sdir}/out.JOB" --utt_list "${sdir}/keys.JOB")
        merge_args+=(--data_dir "${dir}" --out_dir "${dir}" --merge_from "${outs[@]}")
    done
    ${cuda_cmd} --gpu "${inference_ngpu}" JOB=1:"${jobs}" "${dumpdir}/logs/extract_cues.JOB.log" \
        OMP_NUM_THREADS=1 ${python} -m espnet2_use.bin.use_extract_cues --device "${inference_device}" \
        --config "${stage2_config}" "${extract_args[@]}"
    ${python} -m espnet2_use.bin.use_extract_cues "${merge_args[@]}"
    for dset in "${pending[@]}"; do
        cues_key "${dumpdir}/raw/${dset}" > "${dumpdir}/raw/${dset}/.cues_done"
    done
}

cues_key() {  # what the cue embeddings of a formatted set depend on
    cat "${stage2_config}" "$1/wav.scp" | sha256sum | cut -d' ' -f1
}

# Markers hold the hash of what the step depends on: a step is done only for the same
# inputs (switching configs or sets in one recipe folder redoes it).
inputs_key() { cat "$@" | sha256sum | cut -d' ' -f1; }
is_done() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

stage_stats() {
    local key
    key=$(inputs_key "${stage1_config}" "${dumpdir}/raw/${train_set}/wav.scp" "${dumpdir}/raw/${valid_set}/wav.scp")
    is_done "${stats_dir}/.done" "${key}" && { log "statistics are done (${stats_dir})"; return 0; }
    local logdir=${stats_dir}/logs
    mkdir -p "${logdir}"
    local args_file=${stats_dir}/data_args
    ${python} -m espnet2_use.bin.use_data_args --config "${stage1_config}" --audio_only \
        --max_num_src "${max_num_src}" --train_dir "${dumpdir}/raw/${train_set}" \
        --valid_dir "${dumpdir}/raw/${valid_set}" --out "${args_file}"
    local jobs
    jobs=$(min "${nj}" "$(wc -l < "${dumpdir}/raw/${valid_set}/wav.scp")")
    for mode in train valid; do
        local set_name=${train_set}; [ "${mode}" = valid ] && set_name=${valid_set}
        local files=()
        for n in $(seq "${jobs}"); do files+=("${logdir}/${mode}.${n}.scp"); done
        ${python} utils/split_scp.py "${dumpdir}/raw/${set_name}/wav.scp" "${files[@]}"
    done
    # shellcheck disable=SC2046
    ${train_cmd} JOB=1:"${jobs}" "${logdir}/stats.JOB.log" \
        OMP_NUM_THREADS=1 ${python} -m espnet2_use.bin.use_train --collect_stats true \
        --config "${stage1_config}" --num_workers 0 \
        --train_shape_file "${logdir}/train.JOB.scp" --valid_shape_file "${logdir}/valid.JOB.scp" \
        --output_dir "${logdir}/stats.JOB" $(tr '\n' ' ' < "${args_file}")
    local inputs=()
    for n in $(seq "${jobs}"); do inputs+=(--input_dir "${logdir}/stats.${n}"); done
    ${python} -m espnet2.bin.aggregate_stats_dirs "${inputs[@]}" --output_dir "${stats_dir}"
    echo "${key}" > "${stats_dir}/.done"
}

# train <config> <exp dir> <extra args> [--audio_only] [marker of the model it starts from]
train() {
    local config=$1 dir=$2 extra=$3 audio_only=${4:-} init_marker=${5:-} key
    # shellcheck disable=SC2086
    key=$(echo "${extra}" | inputs_key "${config}" "${stats_dir}/.done" ${init_marker} -)
    is_done "${dir}/.done" "${key}" && { log "training is done (${dir})"; return 0; }
    mkdir -p "${dir}"
    local args_file=${dir}/data_args
    ${python} -m espnet2_use.bin.use_data_args --config "${config}" ${audio_only} \
        --max_num_src "${max_num_src}" --train_dir "${dumpdir}/raw/${train_set}" \
        --valid_dir "${dumpdir}/raw/${valid_set}" --out "${args_file}"
    local common=(--config "${config}" --output_dir "${dir}" --resume true --ngpu "${ngpu}"
                  --train_shape_file "${stats_dir}/train/speech_mix_shape"
                  --valid_shape_file "${stats_dir}/valid/speech_mix_shape")
    local cmd_args
    cmd_args="${common[*]} $(tr '\n' ' ' < "${args_file}") ${extra}"
    log "training log: ${dir}/train.log"
    if [ "${ngpu}" -gt 1 ] || [ "${num_nodes}" -gt 1 ]; then
        # shellcheck disable=SC2086
        ${python} -m espnet2.bin.launch --cmd "${cuda_cmd} --name ${dir##*/}" --log "${dir}/train.log" \
            --ngpu "${ngpu}" --num_nodes "${num_nodes}" --init_file_prefix "${dir}/.dist_init_" \
            --multiprocessing_distributed true -- \
            ${python} -m espnet2_use.bin.use_train ${cmd_args}
    elif [ "${ngpu}" -eq 0 ] && [ "${cpu_procs}" -gt 1 ]; then
        # shellcheck disable=SC2086
        ${cuda_cmd} --num_threads "$(( cpu_procs * train_threads ))" "${dir}/train.log" \
            OMP_NUM_THREADS="${train_threads}" ${python} -m torch.distributed.run --standalone \
            --nproc_per_node "${cpu_procs}" -m espnet2_use.bin.use_train ${cmd_args} --dist_backend gloo
    else
        # shellcheck disable=SC2086
        ${cuda_cmd} --gpu "${ngpu}" --num_threads "${train_threads}" "${dir}/train.log" \
            OMP_NUM_THREADS="${train_threads}" ${python} -m espnet2_use.bin.use_train ${cmd_args}
    fi
    echo "${key}" > "${dir}/.done"
}

# Stage 1 reads the cues its config names (a label encoder whose vocabulary is the tag
# set of model_conf.tag_weight); stage 2 starts from it without its cue network.
stage_train1() { train "${stage1_config}" "${stage1_dir}" "${stage1_args}"; }

stage_train2() {
    [ -n "${stage2_config}" ] || { log "no --stage2_config: skipped"; return 0; }
    [ -f "${stage1_dir}/${init_model}" ] || { log "error: ${stage1_dir}/${init_model} is missing (run stage 4)"; exit 1; }
    local init
    init=$(${python} -m espnet2_use.bin.use_config_values --config "${stage2_config}" \
        --init_param "${stage1_dir}/${init_model}" | tail -n 1)
    train "${stage2_config}" "${stage2_dir}" "--init_param ${init} ${stage2_args}" "" \
        "${stage1_dir}/.done"
}

# decode_key <task> <set>: what a decoding depends on: the model's training, the set, the
# task and weights, and the count calibration when there is one (a recalibrated model
# decodes again; an uncalibrated one keeps the key it always had).
decode_key() {
    local calib=""
    [ ! -f "${final_dir}/count_calibration.json" ] || calib=" $(cksum < "${final_dir}/count_calibration.json")"
    echo "$1 ${inference_model}${calib}" | inputs_key "${final_dir}/.done" "${dumpdir}/raw/$2/wav.scp" -
}

# decode_set <set> <tasks...>: decodes the tasks of a set that are not done yet.
decode_set() {
    local dset=$1; shift
    local out=${final_dir}/decode_${dset} todo=() task key
    for task in "$@"; do
        key=$(decode_key "${task}" "${dset}")
        is_done "${out}/${task//[:+]/_}/.done" "${key}" || todo+=("${task}")
    done
    [ "${#todo[@]}" -gt 0 ] || { log "decoding of ${dset} is done (${out}: $*)"; return 0; }
    local logdir=${out}/logs
    mkdir -p "${logdir}"
    local jobs
    jobs=$(min "${decode_nj}" "$(wc -l < "${dumpdir}/raw/${dset}/wav.scp")")
    local keys=()
    for n in $(seq "${jobs}"); do keys+=("${logdir}/keys.${n}"); done
    ${python} utils/split_scp.py "${dumpdir}/raw/${dset}/wav.scp" "${keys[@]}"
    local model_opt=()
    [ -z "${inference_model}" ] || model_opt=(--model_file "${inference_model}")
    ${decode_cmd} --gpu "${inference_ngpu}" JOB=1:"${jobs}" "${logdir}/decode.JOB.log" \
        OMP_NUM_THREADS=1 ${python} -m espnet2_use.bin.use_inference --exp_dir "${final_dir}" \
        --device "${inference_device}" \
        "${model_opt[@]}" --data_dir "${dumpdir}/raw/${dset}" --output_dir "${logdir}/out.JOB" \
        --key_file "${logdir}/keys.JOB" --num_plots "${num_plots}" --tasks "${todo[@]}"
    # Merge the jobs' outputs task by task; the wavs stay where the jobs wrote them.
    for task in "${todo[@]}"; do
        local name=${task//[:+]/_}
        mkdir -p "${out}/${name}/plots"
        local files=()
        for f in "${logdir}"/out.*/"${name}"/*; do [ -f "${f}" ] && files+=("${f##*/}"); done
        [ "${#files[@]}" -gt 0 ] || { log "error: no output of task ${task} in ${logdir}"; exit 1; }
        for base in $(printf '%s\n' "${files[@]}" | sort -u); do
            cat "${logdir}"/out.*/"${name}/${base}" 2>/dev/null | LC_ALL=C sort > "${out}/${name}/.${base}.tmp"
            mv "${out}/${name}/.${base}.tmp" "${out}/${name}/${base}"
        done
        cp "${logdir}"/out.*/"${name}"/plots/*.png "${out}/${name}/plots/" 2>/dev/null || true
        key=$(decode_key "${task}" "${dset}")
        echo "${key}" > "${out}/${name}/.done"
    done
}

stage_decode() {
    if [ "${calibrate_count}" = true ]; then
        # Once per model (count_calibration.json marks it done); a no-op without a count branch.
        ${python} -m espnet2_use.bin.use_count_calibrate --if_configured --exp_dir "${final_dir}" \
            --data_dir "${dumpdir}/raw/${valid_set}" --remix "${calibrate_count_remix}" \
            ${inference_model:+--model_file "${inference_model}"}
    fi
    local tse_tasks=""
    for combo in ${tse_cue_combinations}; do tse_tasks+=" tse:${combo}"; done
    for dset in ${ss_test_sets}; do decode_set "${dset}" ${ss_tasks}; done
    if [ -n "${stage2_config}" ]; then
        # shellcheck disable=SC2086
        for dset in ${tse_test_sets}; do decode_set "${dset}" ${tse_tasks}; done
    fi
}

stage_score() {
    local dirs=()
    for dset in ${ss_test_sets}; do
        local ss_dirs=()
        for task in ${ss_tasks}; do ss_dirs+=("${final_dir}/decode_${dset}/${task}"); done
        ${python} -m espnet2_use.bin.use_scoring --mode ss --ref_dir "${dumpdir}/raw/${dset}" \
            --est_dir "${ss_dirs[@]}" --fs "${fs}" --no_progress ${scoring_opts}
        dirs+=("${ss_dirs[@]}")
    done
    if [ -n "${stage2_config}" ]; then
        for dset in ${tse_test_sets}; do
            local tse_dirs=()
            for combo in ${tse_cue_combinations}; do
                tse_dirs+=("${final_dir}/decode_${dset}/tse_${combo//+/_}")
            done
            ${python} -m espnet2_use.bin.use_scoring --mode tse --ref_dir "${dumpdir}/raw/${dset}" \
                --est_dir "${tse_dirs[@]}" --fs "${fs}" --no_progress ${scoring_opts}
            dirs+=("${tse_dirs[@]}")
        done
    fi
    ${python} -m espnet2_use.bin.use_scoring --collect "${dirs[@]}" --out_md "${results_md}"
    log "results: ${results_md}"
}

stage_pack() {
    ${python} -m espnet2_use.bin.use_pack --exp_dir "${final_dir}" --out "${final_dir}/use_model.zip" \
        ${inference_model:+--model_file "${inference_model}"}
}

run_stage 1 "data preparation" stage_data
run_stage 2 "formatting and cue embeddings" stage_format
run_stage 3 "statistics" stage_stats
run_stage 4 "training stage 1 (${stage1_tag})" stage_train1
run_stage 5 "training stage 2 (${stage2_tag:-skipped})" stage_train2
run_stage 6 "decoding" stage_decode
run_stage 7 "scoring" stage_score
run_stage 8 "packing" stage_pack
log "all done"
