"""Shared parts of ``utils/run.py`` and ``utils/slurm.py``: Kaldi's job-runner calling convention.

Both runners take the arguments of Kaldi's ``run.pl`` / ``slurm.pl``::

    <runner> [--opt value | --opt=value]... [VAR=START:END | VAR=N] LOGFILE command...

Options and the job range may come in any order before LOGFILE. ``VAR`` (usually ``JOB``) is
replaced, as a plain substring and everywhere it occurs, by the job number in LOGFILE and in
the command, as Kaldi does. Command words without whitespace are joined as they are, so
``'|'`` and ``'>'`` keep their shell meaning; a word with whitespace (or an empty word) is
single-quoted so that it stays one word.

This module uses the standard library only, so the runners work with any Python 3.9+.
"""
import re
import shlex
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

# Kaldi accepts any identifier as the job variable (JOB, SPLIT, ...).
_RANGE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+)(?::(\d+))?$")
_FOOTER_RE = re.compile(r"^# Ended \(code (\d+)(?:; signal \d+)?\) at ")


class UsageError(Exception):
    """The command line does not follow the runner's calling convention."""


@dataclass
class JobArgs:
    """A parsed runner command line.

    Args:
        options: Option values by name, hyphens turned into underscores (``--max-jobs-run``
            and ``--max_jobs_run`` are the same), in the order given.
        var: The job variable (``JOB``), or None for a single job without one.
        start: First job number (1 when there is no job variable).
        end: Last job number, inclusive.
        logfile: The log file path, still holding the job variable.
        command: The command as one shell string, still holding the job variable.
    """

    options: Dict[str, str] = field(default_factory=dict)
    var: Optional[str] = None
    start: int = 1
    end: int = 1
    logfile: str = ""
    command: str = ""

    @property
    def job_ids(self) -> range:
        """Job numbers, START..END inclusive."""
        return range(self.start, self.end + 1)

    def substitute(self, text: str, job_id: int) -> str:
        """Replace the job variable in ``text`` by ``job_id`` (no-op without a variable)."""
        return text.replace(self.var, str(job_id)) if self.var else text

    def logfile_for(self, job_id: int) -> str:
        """The log file of one job."""
        return self.substitute(self.logfile, job_id)

    def command_for(self, job_id: int) -> str:
        """The shell command of one job."""
        return self.substitute(self.command, job_id)

    def int_option(self, name: str, default: int, minimum: int = 1) -> int:
        """An integer option, checked against ``minimum``.

        Raises:
            UsageError: The value is not an integer >= ``minimum``.
        """
        raw = self.options.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise UsageError(f"--{name} expects an integer, got '{raw}'") from None
        if value < minimum:
            raise UsageError(f"--{name} must be >= {minimum}, got {value}")
        return value


def join_command(words: Sequence[str]) -> str:
    """Join command words into one shell string the way Kaldi's run.pl does.

    Words without whitespace go in unquoted, so that shell syntax passed as separate words
    (``'|'``, ``'>'``, ``'&&'``) works; words with whitespace, or empty words, are quoted so
    that they stay one word.
    """
    parts = []
    for word in words:
        if word and not re.search(r"\s", word):
            parts.append(word)
        else:
            parts.append(shlex.quote(word))
    return " ".join(parts)


def parse_job_args(argv: Sequence[str]) -> JobArgs:
    """Parse a runner command line.

    Args:
        argv: The arguments after the program name.

    Returns:
        The parsed arguments.

    Raises:
        UsageError: An option lacks a value, the job range is invalid or given twice, or the
            log file or the command is missing.
    """
    args = list(argv)
    parsed = JobArgs()
    seen_range = False
    while args:
        head = args[0]
        match = _RANGE_RE.match(head)
        if match:
            if seen_range:
                raise UsageError(f"a second job range '{head}'")
            seen_range = True
            start = int(match.group(2))
            end = int(match.group(3)) if match.group(3) is not None else start
            if start < 1 or end < start:
                raise UsageError(
                    f"invalid job range '{head}': expected {match.group(1)}=START:END with "
                    "1 <= START <= END"
                )
            parsed.var, parsed.start, parsed.end = match.group(1), start, end
            args.pop(0)
        elif head.startswith("--") and len(head) > 2:
            name, eq, value = head[2:].partition("=")
            if eq:
                args.pop(0)
            else:
                if len(args) < 2:
                    raise UsageError(f"option {head} needs a value")
                value = args[1]
                del args[:2]
            parsed.options[name.replace("-", "_")] = value
        elif head.startswith("-") and len(head) > 1:
            raise UsageError(f"unknown option '{head}' (options are written --name value)")
        else:
            break
    if len(args) < 2:
        raise UsageError("expected a log file and a command after the options")
    parsed.logfile = args[0]
    parsed.command = join_command(args[1:])
    if parsed.var and parsed.end > parsed.start and parsed.var not in parsed.logfile:
        raise UsageError(
            f"{parsed.end - parsed.start + 1} jobs would write one log file "
            f"'{parsed.logfile}': put {parsed.var} in its name"
        )
    return parsed


def kaldi_date() -> str:
    """The current time as the ``date`` command prints it in the C locale."""
    return time.strftime("%a %b %e %H:%M:%S %Z %Y")


def log_header(command: str) -> str:
    """The lines a runner writes at the top of a job's log, before the job runs."""
    return f"# {command}\n# Started at {kaldi_date()}\n#\n"


def log_footer(returncode: int, elapsed: float, threads: str) -> str:
    """The lines a runner appends to a job's log after the job ends.

    Args:
        returncode: The exit status; negative for death by a signal (Python's convention),
            written as ``code 128+S; signal S``.
        elapsed: Wall-clock seconds the job ran.
        threads: The ``--num_threads`` value, for the accounting line.
    """
    seconds = int(round(elapsed))
    if returncode < 0:
        status = f"code {128 - returncode}; signal {-returncode}"
    else:
        status = f"code {returncode}"
    return (
        f"# Accounting: time={seconds} threads={threads}\n"
        f"# Ended ({status}) at {kaldi_date()}, elapsed time {seconds} seconds\n"
    )


def footer_status(log_text: str) -> Optional[int]:
    """The exit code recorded by the footer on the last line of a log, or None if it has none."""
    lines = log_text.rstrip("\n").split("\n")
    match = _FOOTER_RE.match(lines[-1]) if lines else None
    return int(match.group(1)) if match else None


def failure_message(program: str, failed: List[str], total: int) -> str:
    """The message naming the logs of failed jobs."""
    shown = failed[:20]
    more = f" (and {len(failed) - len(shown)} more)" if len(failed) > len(shown) else ""
    if total == 1:
        return f"{program}: job failed, log is in {failed[0]}"
    return f"{program}: {len(failed)} / {total} jobs failed, logs: {' '.join(shown)}{more}"
