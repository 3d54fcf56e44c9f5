#!/usr/bin/env python3
"""Start-up times of USE's entry points, as a new user meets them (issues 13 and 27).

Each command runs as a fresh process (``--repeat`` times; the median and the fastest
are printed) with ``OMP_NUM_THREADS=1``.

Part 1, the command line without a model: ``use-separate --help``, a mistyped option
and a missing ``--model`` at most 2 s; ``import espnet2_use`` and
``espnet2-use-python -c pass`` close to ``python -c pass``. ``--full`` adds what
loading ESPnet's enh task costs through ``espnet2-use-python`` (the price every ESPnet
entry point pays anyway), and checks that no NLTK download message is printed.

Part 2, a user's first separation, beside ``python -c 'import torch'`` (from the
process's start to torch imported):
- time to the first written output of ``use-separate --model M mix.wav -o out`` on
  one 4 s recording (the mtime of its first wav, from the process's start); targets
  <= 3 s, and <= 2 x import torch + the separation itself (``separate()`` on the same
  file, timed inside a process that has loaded the model);
- ``USE.from_packed(M)`` in a fresh interpreter: the import and the call (target
  <= 2.5 s), and the call alone;
- a folder of 100 short files (1 s) in one call: files per second over the whole
  command, and between its first and last output (the model is loaded once).

The packed model: ``--model PATH`` (e.g. a recipe's stage-8 zip); else one is built
here with random weights (the timings do not depend on them): a tiny USE-S with a
label cue (``--config`` a recipe's training config instead: its network at full size,
with a label cue over 18 made-up class names in place of its cue encoders).

Usage: python tools/bench_startup.py [--repeat 3] [--full] [--model PATH | --config YAML]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

BIN = Path(sys.executable).parent
TARGET_S = 2.0
FIRST_OUTPUT_S = 3.0
FROM_PACKED_S = 2.5
TINY_CONFIG = dict(
    encoder="conv", encoder_conf=dict(channel=16, kernel_size=16, stride=8),
    decoder="conv", decoder_conf=dict(channel=16, kernel_size=16, stride=8),
    separator="use",
    separator_conf=dict(backbone="use_s", backbone_conf=dict(
        latent_dim=16, emb_dim=16, chunk_size=20, num_heads=2, ffn_dim=32,
        num_pre_blocks=1, num_post_blocks=1)),
    model_conf=dict(max_num_src=3), sample_rate=8000,
)
NUM_LABELS = 18

# In a fresh interpreter: import + from_packed, the call alone, then separate() twice.
PROBE = """
import sys, time, json
t0 = time.perf_counter()
from espnet2_use import USE
t1 = time.perf_counter()
use = USE.from_packed(sys.argv[1])
t2 = time.perf_counter()
use.separate(sys.argv[2])
t3 = time.perf_counter()
use.separate(sys.argv[2])
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "from_packed": t2 - t1, "separate_first": t3 - t2,
                  "separate": t4 - t3}))
"""


def _tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        sys.exit(f"bench_startup: {name} is not installed (run tools/setup.sh)")
    return found


def _env() -> Dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1")


def time_command(cmd: List[str], repeat: int) -> Tuple[float, float, int, str]:
    """Median and fastest wall time of ``cmd``; its exit code and stderr (last run)."""
    times = []
    proc = None
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=_env())
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), proc.returncode, proc.stderr


def build_model(work: Path, config: Optional[Path]) -> Path:
    """A packed model with random weights (see the module's docstring)."""
    import torch
    import yaml

    from espnet2_use.inference import pack
    from espnet2_use.model_builder import build_use_model

    labels = work / "labels.txt"
    labels.write_text("".join(f"class_{i:02d}\n" for i in range(NUM_LABELS)))
    if config is None:
        conf = dict(TINY_CONFIG)
    else:
        with open(config, encoding="utf-8") as f:
            conf = yaml.safe_load(f)
        conf.pop("cue_example", None)
    conf["cue_encoders"] = {"label": {"type": "embedding", "conf": {"label_list": str(labels)}}}
    exp = work / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump(conf))
    torch.manual_seed(0)
    torch.save(build_use_model(conf).state_dict(), exp / "valid.loss.best.pth")
    return pack(exp, work / "use_model.zip", root=work)


def write_mixture(path: Path, seconds: float, fs: int, seed: int) -> None:
    """Two tones and a little noise: something for the model to separate."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    wav = sum(0.2 * np.sin(2 * np.pi * f * t) * (0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
              for f in rng.uniform(150, fs / 3, size=2))
    wav = wav + 0.01 * rng.standard_normal(len(t))
    sf.write(path, wav.astype(np.float32), fs)


def first_output(cmd: List[str], outdir: Path, repeat: int) -> Tuple[List[float], List[float], int]:
    """Per run: seconds from the start of ``cmd`` to its first written wav, and its wall."""
    firsts, walls, rc = [], [], 0
    for _ in range(repeat):
        shutil.rmtree(outdir, ignore_errors=True)
        start = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=_env())
        walls.append(time.time() - start)
        rc = rc or proc.returncode
        written = [p.stat().st_mtime for p in outdir.rglob("*.wav")]
        if proc.returncode or not written:
            sys.exit(f"bench_startup: {' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        firsts.append(min(written) - start)
    return firsts, walls, rc


def row(name: str, values: List[float], torch_s: Optional[float] = None, verdict: str = "") -> str:
    median = statistics.median(values)
    ratio = f"{median / torch_s:>6.2f}x" if torch_s else " " * 7
    return f"{name:<58} {median:>9.3f} {min(values):>7.3f} {ratio}  {verdict}"


def bench_first_separation(args: argparse.Namespace, separate: str) -> bool:
    work = Path(tempfile.mkdtemp(prefix="bench_startup_"))
    try:
        model = Path(args.model) if args.model else build_model(work, args.config)
        import zipfile

        with zipfile.ZipFile(model) as zf:
            fs = int(json.loads(zf.read("meta.json"))["sample_rate"] or 8000)
        mix = work / "mix.wav"
        write_mixture(mix, 4.0, fs, seed=0)
        folder = work / "many"
        folder.mkdir()
        for i in range(100):
            write_mixture(folder / f"utt{i:03d}.wav", 1.0, fs, seed=i + 1)

        py = sys.executable
        # From the process's start to torch imported (its exit, about 1 s with torch
        # loaded, is not counted: use-separate's first output does not wait for it).
        torch_times = []
        for _ in range(args.repeat):
            start = time.time()
            proc = subprocess.run([py, "-c", "import torch, time; print(time.time())"],
                                  capture_output=True, text=True, env=_env())
            torch_times.append(float(proc.stdout.split()[-1]) - start)
        torch_s = statistics.median(torch_times)
        probes = []
        for _ in range(args.repeat):
            proc = subprocess.run([py, "-c", PROBE, str(model), str(mix)], capture_output=True,
                                  text=True, env=_env())
            if proc.returncode:
                sys.exit(f"bench_startup: USE.from_packed failed:\n{proc.stderr[-2000:]}")
            probes.append(json.loads(proc.stdout.splitlines()[-1]))
        sep_s = statistics.median(p["separate_first"] for p in probes)
        firsts, walls, _ = first_output([separate, "--model", str(model), str(mix), "-o", str(work / "out1")],
                                        work / "out1", args.repeat)
        many_walls, rates = [], []
        for _ in range(max(1, args.repeat // 2)):
            out = work / "out100"
            shutil.rmtree(out, ignore_errors=True)
            start = time.time()
            proc = subprocess.run([separate, "--model", str(model), str(folder), "-o", str(out)],
                                  capture_output=True, text=True, env=_env())
            many_walls.append(time.time() - start)
            stamps = sorted(p.stat().st_mtime for p in out.rglob("manifest.json"))
            if proc.returncode or len(stamps) != 100:
                sys.exit(f"bench_startup: the folder run failed:\n{proc.stderr[-2000:]}")
            rates.append((len(stamps) - 1) / max(stamps[-1] - stamps[0], 1e-9))

        first = statistics.median(firsts)
        bar = 2 * torch_s + sep_s
        ok_first = first <= FIRST_OUTPUT_S and first <= bar
        loaded = [p["import"] + p["from_packed"] for p in probes]
        ok_packed = statistics.median(loaded) <= FROM_PACKED_S
        print(f"\nA first separation: {model.name}"
              f"{' (built here, random weights)' if not args.model else ''}, {fs} Hz; "
              f"ratio: median / import torch")
        print(f"{'measure':<58} {'median s':>9} {'min s':>7} {'ratio':>7}  target")
        print(row("python -c 'import torch' (start to imported)", torch_times, torch_s))
        print(row("use-separate, one 4 s file: first output written", firsts, torch_s,
                  f"<= {FIRST_OUTPUT_S:.0f} s and <= 2 x torch + separation = {bar:.2f} s: "
                  f"{'ok' if ok_first else 'SLOW'}"))
        print(row("use-separate, one 4 s file: whole command", walls, torch_s))
        print(row("  separate() of the 4 s file alone (first call)", [p["separate_first"] for p in probes], torch_s))
        print(row("  separate() of the 4 s file alone (second call)", [p["separate"] for p in probes], torch_s))
        print(row("import espnet2_use.USE + USE.from_packed (fresh)", loaded, torch_s,
                  f"<= {FROM_PACKED_S} s: {'ok' if ok_packed else 'SLOW'}"))
        print(row("  USE.from_packed call alone", [p["from_packed"] for p in probes], torch_s))
        print(row("use-separate, folder of 100 files (1 s): whole command", many_walls, torch_s,
                  f"{100 / statistics.median(many_walls):.1f} files/s"))
        print(f"{'  files/s between its first and last output':<58} {statistics.median(rates):>9.1f}")
        return ok_first and ok_packed
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--full", action="store_true",
                        help="also time loading ESPnet's enh task through espnet2-use-python")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--model", help="a packed model (default: a tiny one built here)")
    model.add_argument("--config", type=Path,
                       help="build the model from this training config (random weights)")
    parser.add_argument("--skip-separation", action="store_true",
                        help="part 1 only: the command line without a model")
    args = parser.parse_args()
    py = sys.executable
    separate = _tool("use-separate")
    interp = _tool("espnet2-use-python")
    cases = [
        ("python -c pass", [py, "-c", "pass"], None),
        ("python -c 'import espnet2_use'", [py, "-c", "import espnet2_use"], None),
        ("espnet2-use-python -c pass", [interp, "-c", "pass"], None),
        ("use-separate --help", [separate, "--help"], TARGET_S),
        ("use-separate x.wav --ouput out (mistyped option)", [separate, "x.wav", "--ouput", "out"], TARGET_S),
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
    if not args.skip_separation:
        failed |= not bench_first_separation(args, separate)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
