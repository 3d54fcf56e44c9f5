"""Commands started together in the background, each awaited by name.

Long subprocesses of a test module (each pays ESPnet's import) overlap with each other
and with the in-process tests that run meanwhile.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict


class BackgroundRuns:
    """Named background processes; ``wait(name)`` returns the finished run."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = {}
        self._procs: Dict[str, subprocess.Popen] = {}
        self._logs: Dict[str, Path] = {}
        self._start: Dict[str, float] = {}
        self._done: Dict[str, subprocess.CompletedProcess] = {}

    def start(self, name: str, log_dir: Path, **popen_kwargs) -> None:
        """Start ``subprocess.Popen(**popen_kwargs)``; its output goes to
        ``log_dir/stdout.log`` and ``stderr.log`` (a full pipe nobody reads yet would
        stall it), in a session of its own so that ``close`` ends its children too."""
        self._logs[name] = log_dir
        with open(log_dir / "stdout.log", "w") as out, open(log_dir / "stderr.log", "w") as err:
            self._procs[name] = subprocess.Popen(**popen_kwargs, stdout=out, stderr=err,
                                                 start_new_session=True)
        self._start[name] = time.time()

    def wait(self, name: str, timeout: float) -> subprocess.CompletedProcess:
        """The finished run ``name`` with what it printed (waited for once)."""
        if name not in self._done:
            proc = self._procs[name]
            proc.wait(timeout=timeout)
            self.seconds[name] = time.time() - self._start[name]
            logs = self._logs[name]
            self._done[name] = subprocess.CompletedProcess(
                proc.args, proc.returncode, (logs / "stdout.log").read_text(),
                (logs / "stderr.log").read_text())
        return self._done[name]

    def close(self) -> None:
        """End the runs no test waited for (when only some tests were selected)."""
        for proc in self._procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:  # it ended just now
                    pass
                proc.wait()
