# shellcheck shell=bash
# cmd.sh: how the recipe runs its jobs. Sourced by run.sh / use.sh (". ./cmd.sh").
#
# Every job goes through one of these commands, with Kaldi's run.pl calling convention:
#   ${train_cmd} [--mem 4G] [--num_threads N] [--gpu N] [JOB=1:N] LOGFILE command...
# and the same options mean the same thing with every backend:
#   local  utils/run.py   runs the jobs on this machine (at most --max_jobs_run at a time,
#                         default: the number of cores); --mem/--gpu/--time are ignored.
#   slurm  utils/slurm.py submits a Slurm job array per call and waits for it; the options
#                         become sbatch options through conf/slurm.conf (see
#                         utils/slurm.py --help for its format).
# Pick the backend here, or for one run: cmd_backend=slurm ./run.sh
#
#   train_cmd   CPU jobs: data preparation, statistics, scoring
#   cuda_cmd    training and inference; use.sh passes --gpu <ngpu>
#   decode_cmd  decoding jobs
cmd_backend="${cmd_backend:-local}"

case "${cmd_backend}" in
    local)
        export train_cmd="utils/run.py"
        export cuda_cmd="utils/run.py"
        export decode_cmd="utils/run.py"
        ;;
    slurm)
        export train_cmd="utils/slurm.py --config conf/slurm.conf"
        export cuda_cmd="utils/slurm.py --config conf/slurm.conf"
        export decode_cmd="utils/slurm.py --config conf/slurm.conf"
        ;;
    *)
        echo "cmd.sh: unknown cmd_backend='${cmd_backend}' (expected local or slurm)" 1>&2
        return 1
        ;;
esac
