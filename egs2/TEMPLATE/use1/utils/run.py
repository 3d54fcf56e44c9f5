#!/usr/bin/env python3
"""Run a command, or an array of jobs, on this machine: Kaldi's run.pl calling convention.

Usage:
    utils/run.py [options] [JOB=1:N] LOGFILE command...

Examples:
    utils/run.py exp/log/prep.log local/data.sh
    utils/run.py --max_jobs_run 4 JOB=1:8 exp/log/decode.JOB.log \\
        python -m espnet2_use.bin.use_inference --key_file exp/keys.JOB.scp ...

JOB (any identifier works, e.g. SPLIT=1:4) is replaced by the job number 1..N everywhere it
occurs in LOGFILE and in the command. Each job runs through bash with stdin from /dev/null;
its stdout and stderr go to its log file, whose folder is created if missing. The log starts
with a header (``# <command>``, ``# Started at <date>``) and ends with a footer
(``# Accounting: time=<s> threads=<n>``, ``# Ended (code <status>) at <date>, ...``).

Options:
    --max_jobs_run N   run at most N jobs at a time (default: the number of usable cores)
    --num_threads N    recorded in the accounting line (default 1)
    --mem, --gpu, --time, --name, ...   accepted and ignored, as run.pl does, so that a
                       recipe can switch between run.py and slurm.py without edits
    -h, --help         print this help

Exit status: 0 when every job exits 0; 1 otherwise, with a message naming the failed logs;
2 for a malformed command line; 130/143 when interrupted (running jobs are terminated).
"""
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _jobs import (  # noqa: E402
    JobArgs,
    UsageError,
    failure_message,
    log_footer,
    log_header,
    parse_job_args,
)

PROGRAM = "run.py"


class _Interrupted(Exception):
    """Raised in the main thread by SIGINT/SIGTERM."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class LocalRunner:
    """Runs the jobs of one command line in parallel and records their logs.

    Args:
        args: The parsed command line.
        max_jobs: How many jobs run at the same time.
    """

    def __init__(self, args: JobArgs, max_jobs: int) -> None:
        self.args = args
        self.max_jobs = max_jobs
        self.threads = args.options.get("num_threads", "1")
        self._lock = threading.Lock()
        self._running: Dict[int, subprocess.Popen] = {}
        self._stopping = False

    def run_one(self, job_id: int) -> int:
        """Run one job to its end; returns its exit status (-S for signal S)."""
        logfile = Path(self.args.logfile_for(job_id))
        command = self.args.command_for(job_id)
        logfile.parent.mkdir(parents=True, exist_ok=True)
        logfile.write_text(log_header(command))
        start = time.time()
        with open(logfile, "a") as log, self._lock:
            if self._stopping:
                returncode = -signal.SIGTERM
                proc = None
            else:
                # A session of its own, so that an interrupt can end the job's whole
                # process tree (bash and what it started) without touching this runner.
                proc = subprocess.Popen(
                    ["bash", "-c", command],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                self._running[job_id] = proc
        if proc is not None:
            returncode = proc.wait()
            with self._lock:
                self._running.pop(job_id, None)
        with open(logfile, "a") as log:
            log.write(log_footer(returncode, time.time() - start, self.threads))
        return returncode

    def terminate(self) -> None:
        """Stop starting jobs and send SIGTERM to the process group of each running job."""
        with self._lock:
            self._stopping = True
            for proc in self._running.values():
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    def run(self) -> List[int]:
        """Run every job; returns the job numbers that failed.

        Raises:
            _Interrupted: SIGINT or SIGTERM arrived; running jobs were terminated and their
                logs closed with a footer.
        """

        def on_signal(signum: int, frame: object) -> None:
            raise _Interrupted(signum)

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        pool = ThreadPoolExecutor(max_workers=self.max_jobs)
        futures = {job_id: pool.submit(self.run_one, job_id) for job_id in self.args.job_ids}
        try:
            # Future.result() with a timeout, so that signals reach this thread promptly.
            for future in futures.values():
                while not future.done():
                    time.sleep(0.05)
            return [job_id for job_id, future in futures.items() if future.result() != 0]
        except _Interrupted:
            self.terminate()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    try:
        args = parse_job_args(argv)
        default_jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1
        )
        max_jobs = args.int_option("max_jobs_run", default_jobs)
        args.int_option("num_threads", 1)  # validated only: it is recorded, not enforced
    except UsageError as error:
        print(f"{PROGRAM}: {error}\nRun '{PROGRAM} --help' for the usage.", file=sys.stderr)
        return 2
    runner = LocalRunner(args, max_jobs)
    try:
        failed = runner.run()
    except _Interrupted as interrupt:
        print(f"{PROGRAM}: interrupted; running jobs were terminated", file=sys.stderr)
        return 128 + interrupt.signum
    if failed:
        logs = [args.logfile_for(job_id) for job_id in failed]
        print(failure_message(PROGRAM, logs, len(args.job_ids)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
