#!/usr/bin/env bash
# Same-budget comparison on mini_use: USE beside ESPnet's stock systems, one after another
# on this machine, on the same train/valid/test data; tables into RESULTS.md and RESULTS.json.
# Other corpus recipes in mini_use's data layout link this script and compare.py (and
# conf/compare) and run it in their own folder: egs2/debian_sounds/use1.
#
#   ./local/run_compare.sh                 # the whole comparison (about 2 h on 2 cores)
#   ./local/run_compare.sh --tiny true     # every system at a tiny size (the test suite's run)
#   ./local/run_compare.sh --seeds 3       # USE-S and the best peers with seeds 0-2 (default)
#   ./local/run_compare.sh --nj 2          # the sweep's, seeds' and curves' runs two at a time
#   ./local/run_compare.sh --seeds 1 --with_curves false   # one seed, no learning curve (about 18 B)
#
# Systems (exp/compare/<system>/):
#   USE-S       the recipe itself (./run.sh stages 1-7, its model and decodings); its
#               training time (stages 4 + 5, from train_budget_used) is the budget B
#   ablations   stage 1 alone (decoded, no training), align_weight 0 in stage 2
#   USE-S example  stage 2 with an audio-example cue too (budget B2), decoded with the example
#   USE-B       both stages, budgets B1 and B2 = USE-S's stage times
#   peers       ESPnet's tcn (Conv-TasNet), dprnn, tfgridnetv2: one model per count (2, 3),
#               each trained on the mixtures of its count for the whole budget B (they know
#               the count)
#   unknown-count peers  tcn and dprnn as one model with 3 outputs, trained on all 1-3-source
#               mixtures for B with silent references (FUSS's thresholded SNR loss), counting
#               by output energy (threshold chosen on valid): the peer the paper beats
#   TSE peer    ESPnet's td_speakerbeam (tse task, audio-example cue), budget B
#   count peer  a log-mel CNN sound counter (espnet2_use/counting, conf/compare/count_peer.yaml)
#               trained for B on mixtures made afresh at every step from the training
#               references; counting accuracy on test_ss beside USE's (issue 24's bar)
#   references  the mixture itself (floor) and the oracle ideal ratio mask (ceiling)
# then the inference real-time factor (one thread) and the tables.
#
# Every step marks what it finished (.done files); a killed run resumes where it
# stopped. Progress and what is left: exp/compare/progress.log.
set -euo pipefail

tiny=false
seeds=3              # USE-S and the best peer of each kind train with seeds 0 .. seeds-1
sweep_lrs="1e-3 2e-3 4e-3"   # the peak learning rates every system is swept over
sweep_fraction=0.25  # each sweep run trains for this share of the budget B
with_curves=true     # the learning curve (USE-S and the best fixed-count peer to 2B: 6.5 B more)
recipe_opts=""       # options of ./run.sh (shell words)
compare_dir=exp/compare
results_md=RESULTS.md
results_json=RESULTS.json
python=python3
# Runs of the sweep, seeds and curves steps started side by side (each its own system or
# seed). Budgets are wall-clock seconds: above 1 only where every job has cores of its own
# (OMP_NUM_THREADS x nj <= cores), or the systems would share them unevenly; the tiny run
# (one thread per job, two cores) uses 2.
nj=1

. utils/parse_options.sh
. ./path.sh

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (run_compare.sh) $*" | tee -a "${compare_dir}/progress.log" >&2; }
mkdir -p "${compare_dir}"

stage1_config=conf/train_stage1.yaml
stage2_config=conf/train_stage2.yaml
use_b1=conf/tuning/train_use_b_stage1.yaml
use_b2=conf/tuning/train_use_b_stage2.yaml
tse_combinations="label text video label+text label+video text+video label+text+video"
peer_args_tcn=() peer_args_dprnn=() peer_args_tfgridnetv2=() peer_args_tse=() count_peer_args=()
rtf_utts=30
budget_cap=""   # a cap on the budget (seconds; tiny runs only)
if "${tiny}"; then
    tiny_corpus="--num_train 16 --num_valid 6 --num_test_ss 6 --num_test_tse 6 --num_pool_train 2 --num_pool_valid 2 --num_pool_test 2"
    stage1_config=conf/tuning/train_use_s_tiny_stage1.yaml
    stage2_config=conf/tuning/train_use_s_tiny_stage2.yaml
    use_b1=conf/tuning/train_use_b_tiny_stage1.yaml
    use_b2=conf/tuning/train_use_b_tiny_stage2.yaml
    [ -n "${recipe_opts}" ] || recipe_opts="--stage1_config ${stage1_config} --stage2_config ${stage2_config} --local_data_opts '${tiny_corpus}' --num_plots 1"
    peer_args_tcn=(--encoder_conf channel=16 --decoder_conf channel=16 --separator_conf layer=2 --separator_conf stack=1 --separator_conf bottleneck_dim=16 --separator_conf hidden_dim=16)
    peer_args_dprnn=(--encoder_conf channel=16 --decoder_conf channel=16 --separator_conf layer=1 --separator_conf unit=8)
    peer_args_tfgridnetv2=(--separator_conf n_layers=1 --separator_conf lstm_hidden_units=8 --separator_conf emb_dim=8 --separator_conf attn_approx_qk_dim=16)
    peer_args_tse=(--encoder_conf channel=16 --decoder_conf channel=16 --extractor_conf layer=2 --extractor_conf stack=1 --extractor_conf bottleneck_dim=16 --extractor_conf hidden_dim=16 --extractor_conf skip_dim=16 --extractor_conf i_adapt_layer=1 --extractor_conf adapt_enroll_dim=16)
    count_peer_args=(model_conf.n_mels=16 "model_conf.channels=[4, 8]" batch_size=4 log_every=1 save_every_s=1)
    rtf_utts=2
    budget_cap=4    # seconds: the tiny run checks the pipeline, not the models
    seeds=2
    sweep_lrs="1e-3 4e-3"
fi
stage1_tag=$(basename "${stage1_config}" .yaml)
stage2_tag=$(basename "${stage2_config}" .yaml)
recipe1=exp/${stage1_tag}
recipe2=exp/${stage2_tag}
dump=dump/raw
compare=(${python} local/compare.py)
start=${SECONDS}
steps="recipe sweep use_s_tuned use_s_stage1 use_s_align0 use_s_example use_b tcn dprnn tfgridnetv2 tcn_unknown dprnn_unknown td_speakerbeam count_peer seeds curves references rtf table"
step_no=0
step() {  # step <name> <command...>: runs a step, logs progress and what is left
    local name=$1; shift
    step_no=$(( step_no + 1 ))
    local left
    left=$(echo "${steps}" | tr ' ' '\n' | tail -n +$(( step_no + 1 )) | tr '\n' ' ')
    log "step ${step_no}/$(echo "${steps}" | wc -w) ${name} (elapsed $(( SECONDS - start )) s; then: ${left:-nothing})"
    local t0=${SECONDS}
    "$@"
    echo "${name} $(( SECONDS - t0 )) s" >> "${compare_dir}/step_times.txt"
}

# bstep <name> <compare.py subcommand and arguments...>: a step of its own, queued to run
# with the steps queued next to it in one Python process (run_batch), so that ESPnet and
# torch are imported once for all of them (about 10 s a process on this machine).
batch_file=${compare_dir}/batch.txt
: > "${batch_file}"
run_start=$(date +%s)
bstep() {
    local name=$1; shift
    step_no=$(( step_no + 1 ))
    { printf '%s %s' "${step_no}" "${name}"; printf ' %q' "$@"; echo; } >> "${batch_file}"
}
run_batch() {
    [ -s "${batch_file}" ] || return 0
    "${compare[@]}" batch --file "${batch_file}" --progress_log "${compare_dir}/progress.log" \
        --step_times "${compare_dir}/step_times.txt" --total "$(echo "${steps}" | wc -w)" \
        --started "${run_start}" --steps "${steps}"
    : > "${batch_file}"
}

# spawn <command...>: runs a command, in the background when nj > 1 (at most nj at once);
# join: waits for every spawned command and fails when one of them failed.
spawned=()
spawn() {
    if [ "${nj}" -le 1 ]; then "$@"; return; fi
    while [ "$(jobs -rp | wc -l)" -ge "${nj}" ]; do sleep 0.2; done
    "$@" &
    spawned+=($!)
}
join() {
    local pid failed=0
    for pid in "${spawned[@]}"; do wait "${pid}" || failed=1; done
    spawned=()
    [ "${failed}" = 0 ] || { log "a run started side by side failed (see above)"; return 1; }
}

count_key() { [ "$1" = tfgridnetv2 ] && echo n_srcs || echo num_spk; }

# 1. The recipe: data, USE-S's two stages, decoding, scoring (skipped where done).
recipe() {
    # shellcheck disable=SC2086
    eval "./run.sh --stage 1 --stop_stage 6 ${recipe_opts}"
    local d stale=false
    for d in "${recipe2}"/decode_*/*/; do  # stage 7 again only if a decoding is newer than its scores
        [ -f "${d}.done" ] && [ ! "${d}scores.json" -nt "${d}.done" ] && stale=true
    done
    if "${stale}"; then
        # shellcheck disable=SC2086
        eval "./run.sh --stage 7 --stop_stage 7 ${recipe_opts}"
    fi
    local all=${tse_combinations##* }
    ${python} local/tse_vs_ss.py --ref_dir "${dump}/test_tse" \
        --tse_dir "${recipe2}/decode_test_tse/tse_${all//+/_}" \
        --ss_dir "${recipe2}/decode_test_tse/ss" --out_json "${compare_dir}/tse_vs_ss.json" > /dev/null
}
step recipe recipe

b1=$(cat "${recipe1}/train_budget_used"); b2=$(cat "${recipe2}/train_budget_used")
if [ -n "${budget_cap}" ]; then  # scale both stages down to the cap
    read -r b1 b2 < <(${python} -c "import sys; a, b, c = map(float, sys.argv[1:]); f = min(1.0, c / (a + b)); print(round(a * f, 2), round(b * f, 2))" "${b1}" "${b2}" "${budget_cap}")
fi
budget=$(${python} -c "import sys; print(round(float(sys.argv[1]) + float(sys.argv[2]), 1))" "${b1}" "${b2}")
log "budget per system: ${budget} s (USE-S stage 1 ${b1} s + stage 2 ${b2} s)"

common=(--stats_dir exp/stats_8000 --train_dir "${dump}/train" --valid_dir "${dump}/valid")
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}  # training and decoding threads (the recipe trains with 2)

# The same small sweep for every system (compare.py sweep): a run of sweep_fraction x B at
# each peak learning rate of ESPnet's warmuplr, the best by the system's own validation
# loss; every system then trains with its best (sweep/<system>/config_best.yaml). USE-S
# and USE-B sweep their stage 1 (stage 2 fine-tunes at its config's rate). When USE-S's
# best is not its config's rate, USE-S trains anew with it (use_s_tuned), which then
# stands in for the recipe's model in every step below.
sweep_budget=$(${python} -c "import sys; print(round(float(sys.argv[1]) * float(sys.argv[2]), 2))" "${budget}" "${sweep_fraction}")
sweep_system() {  # sweep_system <name> <subcommand and its arguments...>
    local name=$1; shift
    "${compare[@]}" sweep --out "${compare_dir}/sweep/${name}" --lrs ${sweep_lrs} --system_command "$@" > /dev/null
}
sweeps() {
    local p args
    spawn sweep_system use_s use --stage1_config "${stage1_config}" --budget1 "${sweep_budget}" "${common[@]}"
    spawn sweep_system use_b use --stage1_config "${use_b1}" --budget1 "${sweep_budget}" "${common[@]}"
    for p in tcn dprnn tfgridnetv2; do
        eval "args=(\"\${peer_args_${p}[@]}\")"
        spawn sweep_system "${p}" peer-ss --config "conf/compare/${p}.yaml" --budget "${sweep_budget}" --counts 2 \
            --train_dir "${dump}/train" --valid_dir "${dump}/valid" --test_dir "${dump}/test_ss" \
            --count_key "$(count_key "${p}")" --train_args "${args[@]}"
    done
    for p in tcn dprnn; do
        eval "args=(\"\${peer_args_${p}[@]}\")"
        spawn sweep_system "${p}_unknown" peer-unknown --config "conf/compare/${p}.yaml" --budget "${sweep_budget}" \
            --train_dir "${dump}/train" --valid_dir "${dump}/valid" --test_dir "${dump}/test_ss" \
            --count_key num_spk --max_num_src 3 --train_args "${args[@]}"
    done
    spawn sweep_system td_speakerbeam peer-tse --config conf/compare/td_speakerbeam.yaml --budget "${sweep_budget}" \
        --train_dir "${dump}/train" --valid_dir "${dump}/valid" --test_dir "${dump}/test_tse" \
        --train_args "${peer_args_tse[@]}"
    join
}
step sweep sweeps
tuned() {  # tuned <config> <system>: the config with the system's best rate (its path)
    "${compare[@]}" tuned-config --config "$1" --sweep "${compare_dir}/sweep/$2/sweep.json" \
        --out "${compare_dir}/sweep/$2/config_best.yaml"
}
use_s_decode=${recipe2}
use_s_tuned() {
    local own best
    own=$(${python} -c "import sys, yaml; print(float(yaml.safe_load(open(sys.argv[1]))['optim_conf']['lr']))" "${stage1_config}")
    best=$(${python} -c "import json, sys; print(float(json.load(open(sys.argv[1]))['best']))" "${compare_dir}/sweep/use_s/sweep.json")
    if [ "${own}" = "${best}" ]; then
        log "USE-S's best rate is its config's (${own}): the recipe's model stands"
        return 0
    fi
    log "USE-S's best rate ${best} is not its config's ${own}: USE-S trains anew with it"
    stage1_config=$(tuned "${stage1_config}" use_s)
    # shellcheck disable=SC2086
    "${compare[@]}" use --out "${compare_dir}/use_s_tuned" --stage1_config "${stage1_config}" \
        --stage2_config "${stage2_config}" --budget1 "${b1}" --budget2 "${b2}" "${common[@]}" \
        --ss_test_dir "${dump}/test_ss" --tse_test_dir "${dump}/test_tse" \
        --tse_combinations ${tse_combinations} --ss_on_tse
    cp "${compare_dir}/use_s_tuned/tse_vs_ss.json" "${compare_dir}/tse_vs_ss.json"
    recipe1=${compare_dir}/use_s_tuned/stage1
    recipe2=${compare_dir}/use_s_tuned/stage2
    use_s_decode=${compare_dir}/use_s_tuned
}
step use_s_tuned use_s_tuned
use_b1=$(tuned "${use_b1}" use_b)
${python} - "${compare_dir}/info.json" "${budget}" "${recipe1}" "${recipe2}" "${tse_combinations}" "${use_s_decode}" <<'EOF'
import json, os, platform, subprocess, sys
out, budget, r1, r2, combos, decode_root = sys.argv[1:]
# The repository of these scripts (the recipe folder may be a copy linking to them).
repo = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                      cwd=os.path.realpath("local")).stdout.strip()
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                        cwd=repo).stdout.strip()
here = os.path.relpath(os.getcwd(), repo)  # the recipe run (mini_use, or one linking its scripts)
dirty = subprocess.run(["git", "status", "--porcelain", "--", "espnet2_use", "egs2/mini_use/use1/conf",
                        "egs2/mini_use/use1/local", f"{here}/conf", f"{here}/local", f"{here}/run.sh"],
                       capture_output=True, text=True, cwd=repo).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
info = {"commit": commit + ("+uncommitted" if dirty else ""), "budget_seconds": float(budget),
        "machine": f"{os.cpu_count()} cores ({cpu}), torch threads 2 for training",
        "recipe_stage1": r1, "recipe_stage2": r2, "use_s_decode_root": decode_root,
        "test_ss": "test_ss", "test_tse": "test_tse",
        "tse_combinations": combos.split(), "max_num_src": 3,
        "ss_peers": {"tcn": "ESPnet Conv-TasNet (tcn)", "dprnn": "ESPnet DPRNN",
                     "tfgridnetv2": "ESPnet TF-GridNetV2"}}
json.dump(info, open(out + ".tmp", "w"), indent=2); os.replace(out + ".tmp", out)
EOF


# shellcheck disable=SC2086
bstep use_s_stage1 use --out "${compare_dir}/use_s_stage1" --decode_exp "${recipe1}" \
    "${common[@]}" --ss_test_dir "${dump}/test_ss"
# shellcheck disable=SC2086
bstep use_s_align0 use --out "${compare_dir}/use_s_align0" --stage2_config "${stage2_config}" \
    --init_param "${recipe1}/valid.loss.best.pth" "${common[@]}" --ss_test_dir "${dump}/test_ss" \
    --tse_test_dir "${dump}/test_tse" --tse_combinations ${tse_combinations} --train_args --model_conf align_weight=0.0
# The audio-example cue, like for like with TD-SpeakerBeam: stage 2 with an example
# encoder added, from the recipe's stage 1, for the recipe's stage-2 time.
bstep use_s_example use --out "${compare_dir}/use_s_example" --stage2_config "${stage2_config}" \
    --example_cue --budget2 "${b2}" --init_param "${recipe1}/valid.loss.best.pth" "${common[@]}" \
    --tse_test_dir "${dump}/test_tse" --tse_combinations example
# shellcheck disable=SC2086
bstep use_b use --out "${compare_dir}/use_b" --stage1_config "${use_b1}" --stage2_config "${use_b2}" \
    --budget1 "${b1}" --budget2 "${b2}" "${common[@]}" --ss_test_dir "${dump}/test_ss" \
    --tse_test_dir "${dump}/test_tse" --tse_combinations ${tse_combinations}

peer_cmd() {  # peer_cmd <name> <count key> <out> <extra args...>: sets cmd, the peer's subcommand
    local name=$1 key=$2 out=$3; shift 3
    cmd=(peer-ss --config "$(tuned "conf/compare/${name}.yaml" "${name}")" --out "${out}"
        --budget "${budget}" --train_dir "${dump}/train" --valid_dir "${dump}/valid"
        --test_dir "${dump}/test_ss" --count_key "${key}" --train_args "$@")
}
peer() { peer_cmd "$@"; "${compare[@]}" "${cmd[@]}"; }
peer_cmd tcn num_spk "${compare_dir}/tcn" "${peer_args_tcn[@]}"; bstep tcn "${cmd[@]}"
peer_cmd dprnn num_spk "${compare_dir}/dprnn" "${peer_args_dprnn[@]}"; bstep dprnn "${cmd[@]}"
peer_cmd tfgridnetv2 n_srcs "${compare_dir}/tfgridnetv2" "${peer_args_tfgridnetv2[@]}"; bstep tfgridnetv2 "${cmd[@]}"
unknown_peer_cmd() {  # unknown_peer_cmd <name> <count key> <out> <extra args...>: sets cmd
    local name=$1 key=$2 out=$3; shift 3
    cmd=(peer-unknown --config "$(tuned "conf/compare/${name}.yaml" "${name}_unknown")" --out "${out}"
        --budget "${budget}" --train_dir "${dump}/train" --valid_dir "${dump}/valid"
        --test_dir "${dump}/test_ss" --count_key "${key}" --max_num_src 3 --train_args "$@")
}
unknown_peer() { unknown_peer_cmd "$@"; "${compare[@]}" "${cmd[@]}"; }
unknown_peer_cmd tcn num_spk "${compare_dir}/tcn_unknown" "${peer_args_tcn[@]}"; bstep tcn_unknown "${cmd[@]}"
unknown_peer_cmd dprnn num_spk "${compare_dir}/dprnn_unknown" "${peer_args_dprnn[@]}"; bstep dprnn_unknown "${cmd[@]}"
bstep td_speakerbeam peer-tse --config "$(tuned conf/compare/td_speakerbeam.yaml td_speakerbeam)" \
    --out "${compare_dir}/td_speakerbeam" --budget "${budget}" --train_dir "${dump}/train" \
    --valid_dir "${dump}/valid" --test_dir "${dump}/test_tse" --train_args "${peer_args_tse[@]}"
# The count peer: a dedicated counter with the whole budget B (issue 24's bar for counting).
bstep count_peer count-peer --config conf/compare/count_peer.yaml \
    --out "${compare_dir}/count_peer" --budget "${budget}" --train_dir "${dump}/train" \
    --valid_dir "${dump}/valid" --test_dir "${dump}/test_ss" --set "${count_peer_args[@]}"
# The systems above, one after another in one Python process.
run_batch

# More seeds (--seeds N): USE-S (both stages, the recipe's budgets) and the best peer of
# each kind by seed 0 train again with seeds 1 .. N-1 (SS decodings only): the headlines
# become means over seeds, the intervals resample seeds as well as test mixtures.
extra_seeds() {
    local s best_fixed best_unknown
    [ "${seeds}" -gt 1 ] || return 0
    best_fixed=$("${compare[@]}" best-peer --compare_dir "${compare_dir}" --kind fixed tcn dprnn tfgridnetv2)
    best_unknown=$("${compare[@]}" best-peer --compare_dir "${compare_dir}" --kind unknown tcn dprnn)
    local -n fixed_args="peer_args_${best_fixed}" unknown_args="peer_args_${best_unknown}"
    log "seeds 1..$(( seeds - 1 )) for use_s, ${best_fixed}, ${best_unknown}_unknown"
    for s in $(seq 1 $(( seeds - 1 ))); do
        spawn "${compare[@]}" use --out "${compare_dir}/use_s_seed${s}" --stage1_config "${stage1_config}" \
            --stage2_config "${stage2_config}" --budget1 "${b1}" --budget2 "${b2}" "${common[@]}" \
            --ss_test_dir "${dump}/test_ss" --train_args --seed "${s}"
        spawn peer "${best_fixed}" "$(count_key "${best_fixed}")" "${compare_dir}/${best_fixed}_seed${s}" \
            "${fixed_args[@]}" --seed "${s}"
        spawn unknown_peer "${best_unknown}" num_spk "${compare_dir}/${best_unknown}_unknown_seed${s}" \
            "${unknown_args[@]}" --seed "${s}"
    done
    join
}
step seeds extra_seeds

# Which way the gap goes: USE-S (both stages at half and twice the recipe's budgets) and
# the best fixed-count peer (its count models trained to B/2, then resumed to 2B), decoded
# at each point; with the main run's models at B, a curve of honest SI-SNRi against
# training seconds (RESULTS.json "curve", compare_curve.png beside RESULTS.md).
curves() {
    local f best_fixed half double
    best_fixed=$("${compare[@]}" best-peer --compare_dir "${compare_dir}" --kind fixed tcn dprnn tfgridnetv2)
    local -n fixed_args="peer_args_${best_fixed}"
    read -r half double < <(${python} -c "import sys; b = float(sys.argv[1]); print(round(b / 2, 2), round(2 * b, 2))" "${budget}")
    for f in 0.5 2; do
        spawn "${compare[@]}" use --out "${compare_dir}/curve/use_s_x${f}" --stage1_config "${stage1_config}" \
            --stage2_config "${stage2_config}" \
            --budget1 "$(${python} -c "print(round(${b1} * ${f}, 2))")" \
            --budget2 "$(${python} -c "print(round(${b2} * ${f}, 2))")" "${common[@]}" \
            --ss_test_dir "${dump}/test_ss"
    done
    spawn "${compare[@]}" peer-ss --config "$(tuned "conf/compare/${best_fixed}.yaml" "${best_fixed}")" \
        --out "${compare_dir}/curve/${best_fixed}" \
        --budget "${budget}" --curve_budgets "${half}" "${double}" --train_dir "${dump}/train" \
        --valid_dir "${dump}/valid" --test_dir "${dump}/test_ss" --count_key "$(count_key "${best_fixed}")" \
        --train_args "${fixed_args[@]}"
    join
    echo "${best_fixed}" > "${compare_dir}/curve/peer"
}
if "${with_curves}"; then
    step curves curves
else
    step_no=$(( step_no + 1 ))
    log "step ${step_no}/$(echo "${steps}" | wc -w) curves: left out (--with_curves false)"
fi

references() {
    "${compare[@]}" mixture --out "${compare_dir}/mixture" --test_dir "${dump}/test_ss"
    local irm=${compare_dir}/oracle_irm/decode_test_ss/ss
    if [ ! -f "${irm}/.done" ]; then
        ${python} -m espnet2_use.bin.oracle_mask --ref_dir "${dump}/test_ss" --out_dir "${irm}"
        ${python} -m espnet2_use.bin.use_scoring --mode ss --ref_dir "${dump}/test_ss" --est_dir "${irm}" --no_progress
        touch "${irm}/.done"
    fi
}
step references references

rtf() {
    OMP_NUM_THREADS=1 "${compare[@]}" rtf --test_dir "${dump}/test_ss" --num_utts "${rtf_utts}" \
        --out_dir "${compare_dir}/rtf" --systems "use_s:use:${recipe2}" \
        "use_b:use:${compare_dir}/use_b/stage2" "tcn:enh:${compare_dir}/tcn/k2" \
        "dprnn:enh:${compare_dir}/dprnn/k2" "tfgridnetv2:enh:${compare_dir}/tfgridnetv2/k2"
}
step rtf rtf
corpus_stats=()  # a recorded corpus (debian_sounds) says what it is made of in RESULTS.json
[ -f data/corpus_stats.json ] && corpus_stats=(--corpus_stats data/corpus_stats.json)
step table "${compare[@]}" table --compare_dir "${compare_dir}" --out_json "${results_json}" \
    --out_md "${results_md}" "${corpus_stats[@]}"
log "done in $(( SECONDS - start )) s: ${results_md}, ${results_json}"
