#!/usr/bin/env python3
"""Run a command, or an array of jobs, on a Slurm cluster: Kaldi's slurm.pl calling convention.

Usage:
    utils/slurm.py [options] [JOB=1:N] LOGFILE command...

Example:
    utils/slurm.py --mem 8G --num_threads 4 --gpu 1 JOB=1:8 exp/log/decode.JOB.log \\
        python -m espnet2_use.bin.use_inference --key_file exp/keys.JOB.scp ...

The jobs are submitted as one Slurm job array (``sbatch --array=1-N[%M] --parsable --wait``)
and this command waits until all of them have ended. The generated job script is
``<log folder>/q/<log name>.sh``; Slurm's own output of each task (where Slurm reports a job
it killed) is ``<log folder>/q/<log name>.out`` with JOB replaced by the task number. Each
task runs from the current folder, sources ``./path.sh`` if there is one, and runs its command
through bash. Its log gets the same header and footer as with utils/run.py, and the footer is
how this command learns each job's exit status (the log folder must therefore be on a file
system shared with the compute nodes).

Options (each ``--name value`` is turned into sbatch options by the configuration):
    --mem 4G           -> --mem 4G
    --num_threads N    -> --cpus-per-task N
    --gpu N            -> --gres=gpu:N (nothing for 0)
    --time T           -> --time T
    --name NAME        -> --job-name NAME (default: the log file's name)
    --num_nodes N      -> --nodes N
    --max_jobs_run M   at most M tasks of the array at a time (--array=1-N%M)
    --config FILE      the configuration (default: conf/slurm.conf if it exists, else the
                       built-in one shown below)
    --log_wait S       seconds to wait for job logs to show their footer after Slurm reports
                       the jobs ended, as shared file systems can lag (default 30)
    -h, --help         print this help
An option the configuration does not describe is an error, so that no resource request is
silently dropped.

Configuration file format (Kaldi's slurm.pl format; '#' starts a comment):
    command sbatch --export=ALL          the submit command and options added to every job
    option NAME=* --opt $0               --NAME V adds '--opt V' ($0 is replaced by V)
    option NAME=VALUE --opt2             --NAME VALUE adds '--opt2' (an exact value wins
                                         over '*'; nothing after NAME=VALUE adds nothing)
    default NAME=VALUE                   the value of --NAME when it is not given
Option names may use '-' or '_'. The built-in configuration:
{default_config}
Exit status: 0 when every job exits 0; 1 when any job failed or Slurm refused the submission,
with a message naming the failed logs; 2 for a malformed command line or configuration.
"""
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _jobs import (  # noqa: E402
    JobArgs,
    UsageError,
    failure_message,
    footer_status,
    parse_job_args,
)

PROGRAM = "slurm.py"

DEFAULT_CONFIG = """\
command sbatch
option name=* --job-name $0
option time=* --time $0
option mem=* --mem $0
option num_threads=* --cpus-per-task $0
option num_nodes=* --nodes $0
default gpu=0
option gpu=0
option gpu=* --gres=gpu:$0
"""

# Options this command handles itself; the configuration never sees them.
_OWN_OPTIONS = ("max_jobs_run", "config", "log_wait")


@dataclass
class SlurmConfig:
    """How runner options become sbatch options (Kaldi's slurm.conf format).

    Args:
        command: The submit command and its fixed options.
        defaults: Option values used when an option is not given.
        exact: Options added for one exact (name, value).
        wildcard: Options added for any value of a name, with ``$0`` standing for the value.
        source: Where the configuration came from, for messages.
    """

    command: List[str] = field(default_factory=list)
    defaults: Dict[str, str] = field(default_factory=dict)
    exact: Dict[Tuple[str, str], List[str]] = field(default_factory=dict)
    wildcard: Dict[str, List[str]] = field(default_factory=dict)
    source: str = "built-in configuration"

    @classmethod
    def parse(cls, text: str, source: str) -> "SlurmConfig":
        """Parse a configuration.

        Raises:
            UsageError: A line is malformed (names the source and line number), or there is
                no ``command`` line.
        """
        config = cls(source=source)
        for lineno, line in enumerate(text.splitlines(), start=1):
            try:
                words = shlex.split(line, comments=True)
            except ValueError as error:
                raise UsageError(f"{source} line {lineno}: {error}: {line!r}") from None
            if not words:
                continue
            kind = words[0]
            if kind == "command":
                if len(words) < 2:
                    raise UsageError(f"{source} line {lineno}: 'command' needs a program")
                config.command = words[1:]
                continue
            setting = words[1] if len(words) > 1 else ""
            match = re.match(r"^([A-Za-z_][A-Za-z0-9_-]*)=(.+)$", setting)
            if kind not in ("option", "default") or match is None:
                raise UsageError(
                    f"{source} line {lineno}: expected 'command PROGRAM ...', "
                    f"'option NAME=VALUE ...', 'option NAME=* ...' or 'default NAME=VALUE', "
                    f"got {line.strip()!r}"
                )
            name, value = match.group(1).replace("-", "_"), match.group(2)
            if kind == "default":
                if len(words) != 2 or value == "*":
                    raise UsageError(
                        f"{source} line {lineno}: expected 'default NAME=VALUE', "
                        f"got {line.strip()!r}"
                    )
                config.defaults[name] = value
            elif value == "*":
                config.wildcard[name] = words[2:]
            else:
                config.exact[(name, value)] = words[2:]
        if not config.command:
            raise UsageError(f"{source}: no 'command' line (e.g. 'command sbatch')")
        return config

    def sbatch_options(self, options: Dict[str, str]) -> List[str]:
        """The sbatch options for runner options (defaults filled in).

        Raises:
            UsageError: An option (or its value) is not described by the configuration.
        """
        merged = dict(self.defaults)
        merged.update(options)
        result: List[str] = []
        for name, value in merged.items():
            if (name, value) in self.exact:
                result.extend(self.exact[(name, value)])
            elif name in self.wildcard:
                result.extend(word.replace("$0", value) for word in self.wildcard[name])
            else:
                raise UsageError(
                    f"option --{name} {value} is not described in the {self.source}; "
                    f"add a line 'option {name}=* <sbatch options using $0>'"
                )
        return result


def load_config(path: Optional[str]) -> SlurmConfig:
    """The configuration from ``path``, else conf/slurm.conf if present, else the built-in one.

    Raises:
        UsageError: ``path`` is given but cannot be read, or the file is malformed.
    """
    if path is None:
        if not Path("conf/slurm.conf").is_file():
            return SlurmConfig.parse(DEFAULT_CONFIG, "built-in configuration")
        path = "conf/slurm.conf"
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise UsageError(f"cannot read the configuration {path}: {error.strerror}") from None
    return SlurmConfig.parse(text, f"configuration {path}")


def _log_base(args: JobArgs) -> str:
    """The log file's name without '.log', for the job script, job name and Slurm output."""
    name = Path(args.logfile).name
    name = name[: -len(".log")] if name.endswith(".log") else name
    # '%' starts a Slurm filename pattern.
    return name.replace("%", "_") or "job"


def job_script(args: JobArgs, cwd: str) -> str:
    """The bash script one array task runs: it picks its job by SLURM_ARRAY_TASK_ID.

    Every job's command and log path are written out in full (the job variable already
    substituted), so a JOB inside quotes of the command is replaced as with utils/run.py.
    """
    threads = args.options.get("num_threads", "1")
    lines = [
        "#!/usr/bin/env bash",
        "# Generated by utils/slurm.py: one task of a Slurm job array; the task number picks",
        "# the job. The footer of the job's log is how slurm.py learns the job's exit status.",
        f"cd {shlex.quote(cwd)} || exit 1",
        "if [ -f ./path.sh ]; then . ./path.sh; fi",
        'case "${SLURM_ARRAY_TASK_ID:?this script runs as a task of a Slurm job array}" in',
    ]
    for job_id in args.job_ids:
        logfile = shlex.quote(args.logfile_for(job_id))
        command = shlex.quote(args.command_for(job_id))
        lines.append(f"  {job_id}) logfile={logfile}; command={command} ;;")
    lines += [
        '  *) echo "$0: no job ${SLURM_ARRAY_TASK_ID} in this array" >&2; exit 1 ;;',
        "esac",
        'mkdir -p "$(dirname "${logfile}")" || exit 1',
        "start=$(date +%s)",
        "{",
        '  printf "# %s\\n" "${command}"',
        '  printf "# Running on %s, Slurm job %s\\n" "$(hostname)" "${SLURM_JOB_ID:-?}"',
        '  printf "# Started at %s\\n#\\n" "$(LC_ALL=C date)"',
        '} > "${logfile}"',
        'bash -c "${command}" < /dev/null >> "${logfile}" 2>&1',
        "rc=$?",
        "elapsed=$(( $(date +%s) - start ))",
        "{",
        f'  printf "# Accounting: time=%s threads=%s\\n" "${{elapsed}}" {shlex.quote(threads)}',
        '  printf "# Ended (code %s) at %s, elapsed time %s seconds\\n" "${rc}" '
        '"$(LC_ALL=C date)" "${elapsed}"',
        '} >> "${logfile}"',
        'exit "${rc}"',
    ]
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str, mode: int = 0o755) -> None:
    """Write ``text`` to ``path`` whole (temp file in the same folder, then rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _read_status(logfile: str) -> Optional[int]:
    """The exit code in a log's footer, or None if the log or its footer is missing."""
    try:
        return footer_status(Path(logfile).read_text(errors="replace"))
    except OSError:
        return None


def submit_and_wait(args: JobArgs, config: SlurmConfig, log_wait: float) -> int:
    """Submit the job array, wait for it, and report; returns the exit status."""
    logs = {job_id: args.logfile_for(job_id) for job_id in args.job_ids}
    # Absolute, so that a --chdir among the sbatch options cannot move them.
    qdir = Path.cwd() / Path(args.logfile).parent / "q"
    qdir.mkdir(parents=True, exist_ok=True)
    base = _log_base(args)
    script = qdir / f"{base}.sh"
    if args.var and args.var in base:
        output = qdir / f"{base.replace(args.var, '%a')}.out"
    else:
        output = qdir / (f"{base}.%a.out" if len(args.job_ids) > 1 else f"{base}.out")

    options = {k: v for k, v in args.options.items() if k not in _OWN_OPTIONS}
    if "name" not in options and "name" in config.wildcard:
        options["name"] = base
    sbatch_opts = config.sbatch_options(options)
    array = f"{args.start}-{args.end}"
    if "max_jobs_run" in args.options:
        array += f"%{args.int_option('max_jobs_run', 1)}"

    _write_atomic(script, job_script(args, os.getcwd()))
    # A log left by an earlier run would show that run's footer.
    for logfile in logs.values():
        Path(logfile).unlink(missing_ok=True)
    Path(args.logfile).parent.mkdir(parents=True, exist_ok=True)

    command = config.command + sbatch_opts + [
        f"--array={array}",
        f"--output={output}",
        "--parsable",
        "--wait",
        str(script),
    ]
    print(f"{PROGRAM}: submitting: {shlex.join(command)}", file=sys.stderr)
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    except OSError as error:
        print(f"{PROGRAM}: cannot run {command[0]}: {error.strerror}", file=sys.stderr)
        return 1
    slurm_job = ""
    try:
        # --parsable prints "jobid[;cluster]" at submission; --wait then blocks until the end.
        slurm_job = (proc.stdout.readline() if proc.stdout else "").strip().split(";")[0]
        proc.communicate()
    except KeyboardInterrupt:
        if slurm_job:
            subprocess.run(["scancel", slurm_job], check=False)
            print(f"{PROGRAM}: interrupted; cancelled Slurm job {slurm_job}", file=sys.stderr)
        proc.kill()
        return 130
    if not slurm_job:
        print(
            f"{PROGRAM}: the submission failed (exit code {proc.returncode}); "
            f"job script {script}",
            file=sys.stderr,
        )
        return 1

    statuses = {job_id: _read_status(log) for job_id, log in logs.items()}
    deadline = time.time() + log_wait
    while any(s is None for s in statuses.values()) and time.time() < deadline:
        time.sleep(1.0)
        for job_id, status in statuses.items():
            if status is None:
                statuses[job_id] = _read_status(logs[job_id])

    failed = [logs[j] for j, s in statuses.items() if s != 0]
    if not failed:
        return 0
    print(failure_message(PROGRAM, failed, len(logs)), file=sys.stderr)
    for job_id, status in statuses.items():
        if status is None:
            slurm_out = str(output).replace("%a", str(job_id))
            print(
                f"{PROGRAM}: {logs[job_id]} has no exit status: Slurm killed the job or it never "
                f"ran; see {slurm_out} and 'sacct -j {slurm_job}_{job_id}'",
                file=sys.stderr,
            )
    return 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        text = __doc__.strip().replace(
            "{default_config}", "".join(f"    {line}\n" for line in DEFAULT_CONFIG.splitlines())
        )
        print(text, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    try:
        args = parse_job_args(argv)
        args.int_option("max_jobs_run", 1)
        try:
            log_wait = float(args.options.get("log_wait", "30"))
        except ValueError:
            raise UsageError(f"--log_wait expects seconds, got '{args.options['log_wait']}'")
        config = load_config(args.options.get("config"))
        return submit_and_wait(args, config, log_wait)
    except UsageError as error:
        print(f"{PROGRAM}: {error}\nRun '{PROGRAM} --help' for the usage.", file=sys.stderr)
        return 2


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM cancels like Ctrl-C
    sys.exit(main())
