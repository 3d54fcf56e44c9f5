#!/usr/bin/env python3
"""Start-up times of USE's entry points, as a new user meets them (issue 13).

Each command runs as a fresh process (``--repeat`` times; the median and the fastest
are printed) with ``OMP_NUM_THREADS=1``. The targets: ``use-separate --help`` and a
mistyped option at most 2 s; ``import espnet2_use`` and ``espnet2-use-python -c pass``
close to ``python -c pass``. ``--full`` adds what loading ESPnet's enh task costs
through ``espnet2-use-python`` (the price every ESPnet entry point pays anyway),
and checks that no NLTK download message is printed.

Usage: python tools/bench_startup.py [--repeat 3] [--full]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Tuple

BIN = Path(sys.executable).parent
TARGET_S = 2.0


def _tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        sys.exit(f"bench_startup: {name} is not installed (run tools/setup.sh)")
    return found


def time_command(cmd: List[str], repeat: int) -> Tuple[float, float, int, str]:
    """Median and fastest wall time of ``cmd``; its exit code and stderr (last run)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    times = []
    proc = None
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), proc.returncode, proc.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--full", action="store_true",
                        help="also time loading ESPnet's enh task through espnet2-use-python")
    args = parser.parse_args()
    py = sys.executable
    separate = _tool("use-separate")
    interp = _tool("espnet2-use-python")
    cases = [
        ("python -c pass", [py, "-c", "pass"], None),
        ("python -c 'import espnet2_use'", [py, "-c", "import espnet2_use"], None),
        ("espnet2-use-python -c pass", [interp, "-c", "pass"], None),
        ("use-separate --help", [separate, "--help"], TARGET_S),
        ("use-separate x.wav -o out (mistyped option)", [separate, "x.wav", "-o", "out"], TARGET_S),
        ("use-separate x.wav (no --model)", [separate, "x.wav"], TARGET_S),
    ]
    if args.full:
        cases.append(("espnet2-use-python -c 'import espnet2.tasks.enh'",
                      [interp, "-c", "import espnet2.tasks.enh as t; assert 'use' in t.separator_choices.classes"],
                      None))
    print(f"{'command':<58} {'median s':>9} {'min s':>7} {'rc':>3}  target")
    failed = False
    for name, cmd, target in cases:
        median, fastest, rc, stderr = time_command(cmd, args.repeat)
        verdict = ""
        if target is not None:
            ok = median <= target
            failed |= not ok
            verdict = f"<= {target:.0f} s: {'ok' if ok else 'SLOW'}"
        if "nltk_data" in stderr:
            verdict += " NLTK download attempted"
            failed = True
        print(f"{name:<58} {median:>9.3f} {fastest:>7.3f} {rc:>3}  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
