#!/usr/bin/env python3
"""Runs README.md's ``enh.sh`` commands for USE on a tiny corpus of tones.

README's section "Use USE in your ESPnet recipe" gives one ``./enh.sh`` command per
config of ``egs2/TEMPLATE/enh1_use/conf/`` (fixed count, unknown count, TSE), each
followed by the commands a lab runs after it (scoring a varying count). This script
reads those commands from README.md itself, so README and code cannot drift apart,
and runs them in one of two ways:

- ``--espnet_root DIR`` (a maintainer, with an ESPnet checkout; its ``tools/`` need
  not be installed): makes the recipe folder ``DIR/egs2/use_check/enh1`` as README
  tells a lab to (``egs2/TEMPLATE/enh1_use/setup.sh``), writes the tiny corpus into
  its ``data/``, makes the config it copied there tiny (one epoch, same keys), and
  runs each README command there verbatim, plus ``--stage 2 --ngpu 0 --nj 2
  --inference_nj 3`` (three decoding jobs of two mixtures: some job has no mixture of
  the largest count). The pip wheel of ESPnet ships no ``egs2/``, so CI
  cannot run this mode.
- ``--emulate`` (CI, through ``test/test_enh_recipe.py``): the Python steps that
  ``enh.sh``'s stages 5-8 run for the same flags (collect stats, training through
  ``espnet2.bin.launch``, inference, scoring), each a subprocess of ``--python``, on
  the data layout stages 3-4 leave in ``dump/raw/``.

Usage:
    python egs2/TEMPLATE/enh1_use/check_enh_sh.py --espnet_root ~/espnet [--only use_tse]
    python egs2/TEMPLATE/enh1_use/check_enh_sh.py --emulate --workdir /tmp/check
"""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import soundfile as sf
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
README = REPO / "README.md"
SECTION = "## Use USE in your ESPnet recipe"
FS = 8000
MAX_SRC = 3
CLASSES = {"low": 220.0, "mid": 700.0, "high": 1800.0}
# Test size: one epoch of a tiny USE-S, written over the README's config in the check's
# recipe folder (enh.sh names its exp/ folder after the config, so the README's commands,
# later paths included, run verbatim).
TINY_BACKBONE = dict(latent_dim=16, emb_dim=16, chunk_size=20, num_heads=2, ffn_dim=32,
                     num_pre_blocks=1, num_post_blocks=1)
TINY_CODEC = dict(channel=16, kernel_size=16, stride=8)


def tiny_config(conf: Dict) -> Dict:
    """The README config at test size: same keys and choices, tiny widths, one epoch."""
    # log_interval: the training loss of every 6 updates is in train.log (a test reads it)
    conf = dict(conf, max_epoch=1, num_workers=0, batch_type="unsorted", batch_size=1,
                use_tensorboard=False, seed=0, log_interval=6)
    conf["encoder_conf"] = dict(conf.get("encoder_conf") or {}, **TINY_CODEC)
    conf["decoder_conf"] = dict(conf.get("decoder_conf") or {}, **TINY_CODEC)
    part = "extractor_conf" if "extractor" in conf else "separator_conf"
    conf[part] = dict(conf[part])
    conf[part]["backbone_conf"] = dict(conf[part].get("backbone_conf") or {}, **TINY_BACKBONE)
    return conf


def write_tiny_config(source: Path, target: Path) -> None:
    with open(source, encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    target.write_text(yaml.safe_dump(tiny_config(conf), sort_keys=False), encoding="utf-8")


# ------------------------------------------------------------------------ README
@dataclass
class RecipeRun:
    """One README ``./enh.sh`` command and the commands README runs after it."""

    enh_sh: List[str]
    after: List[List[str]] = field(default_factory=list)

    def flag(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The value of ``--name`` (the last one given), as enh.sh's parse_options reads it."""
        value = default
        for i, arg in enumerate(self.enh_sh[:-1]):
            if arg in (f"--{name}", f"--{name.replace('_', '-')}"):
                value = self.enh_sh[i + 1]
        return value

    @property
    def config(self) -> str:
        return Path(self.flag("enh_config")).stem


def readme_runs(readme: Path = README) -> Dict[str, RecipeRun]:
    """README's enh.sh commands (and what follows each) by config name (``use_fixed``, ...)."""
    text = readme.read_text(encoding="utf-8")
    start = text.find(SECTION)
    if start < 0:
        raise ValueError(f"{readme}: no section {SECTION!r}")
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end > 0 else len(text)]
    runs: Dict[str, RecipeRun] = {}
    current: Optional[RecipeRun] = None
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                current = None if line.startswith("# ---") else current
                continue
            words = shlex.split(line)
            if words[0] == "./enh.sh":
                current = RecipeRun(words)
                runs[current.config] = current
            elif current is not None and words[0] == "espnet2-use-python":
                current.after.append(words)
    if not runs:
        raise ValueError(f"{readme}: no ./enh.sh command in {SECTION!r}")
    return runs


# -------------------------------------------------------------------------- data
def tone(f0: float, n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / FS
    env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(1, 3) * t + rng.uniform(0, 6))
    return (0.25 * env * np.sin(2 * np.pi * f0 * rng.uniform(0.9, 1.1) * t)).astype(np.float32)


def write_corpus(data: Path, variable: bool, tse: bool) -> Dict[str, Path]:
    """``data/{train,dev,test}`` as a lab's local/data.sh leaves them for enh.sh.

    Fixed count and TSE: two sources per mixture, ``spk1.scp`` and ``spk2.scp`` (TSE:
    ``enroll_spk{k}.scp``, another clip of source k's class). Unknown count (``variable``):
    1-3 sources, all on the line of ``spk1.scp``; ``utt2category`` holds ``{n}src``.
    """
    sets = {"train": 24, "dev": 3, "test": 6}
    out = {}
    for seed, (name, size) in enumerate(sets.items()):
        rng = np.random.default_rng(seed)
        d = data / name
        (d / "wav").mkdir(parents=True, exist_ok=True)
        files: Dict[str, List[str]] = {"wav.scp": [], "utt2spk": [], "utt2category": [], "utt2num_src": []}
        for i in range(size):
            utt = f"{name}_{i:03d}"
            n = 1 + i % MAX_SRC if variable else 2
            classes = rng.permutation(list(CLASSES))[:n]
            paths = []
            sources = []
            for k, cls in enumerate(classes, start=1):
                src = tone(CLASSES[cls], FS // 2, rng)
                sources.append(src)
                paths.append(d / "wav" / f"{utt}_s{k}.wav")
                sf.write(paths[-1], src, FS)
                if tse:
                    enroll = d / "wav" / f"{utt}_e{k}.wav"
                    sf.write(enroll, tone(CLASSES[cls], FS // 2, rng), FS)
                    files.setdefault(f"enroll_spk{k}.scp", []).append(f"{utt} {enroll}")
            mix = d / "wav" / f"{utt}_mix.wav"
            sf.write(mix, np.sum(sources, axis=0), FS)
            files["wav.scp"].append(f"{utt} {mix}")
            files["utt2spk"].append(f"{utt} {utt}")
            files["utt2num_src"].append(f"{utt} {n}")
            if variable:
                files["utt2category"].append(f"{utt} {n}src")
                files.setdefault("spk1.scp", []).append(f"{utt} " + " ".join(map(str, paths)))
            else:
                for k, path in enumerate(paths, start=1):
                    files.setdefault(f"spk{k}.scp", []).append(f"{utt} {path}")
        if not variable:
            del files["utt2category"]
        files["spk2utt"] = list(files["utt2spk"])
        for key, lines in files.items():
            (d / key).write_text("".join(x + "\n" for x in sorted(lines)))
        out[name] = d
    return out


# ---------------------------------------------------------------- real enh.sh
def run_real(espnet_root: Path, only: Sequence[str], keep: bool) -> None:
    """Each README command in a recipe folder of an ESPnet checkout (see the module doc)."""
    recipe = espnet_root / "egs2" / "use_check" / "enh1"
    for name, run in readme_runs().items():
        if only and name not in only:
            continue
        if recipe.exists():
            shutil.rmtree(recipe)
        subprocess.run(["bash", str(HERE / "setup.sh"), str(recipe)], check=True)
        write_corpus(recipe / "data", variable=run.flag("variable_num_refs") == "true",
                     tse=run.flag("is_tse_task") == "true")
        config = recipe / run.flag("enh_config")
        write_tiny_config(config, config)
        args = run.enh_sh + ["--stage", "2", "--ngpu", "0", "--nj", "2", "--inference_nj", "3"]
        print(f"[check_enh_sh] {name}: {shlex.join(args)}", flush=True)
        subprocess.run(args, cwd=recipe, check=True)
        for cmd in run.after:
            print(f"[check_enh_sh] {name}: {shlex.join(cmd)}", flush=True)
            subprocess.run(["bash", "-c", ". ./path.sh && " + shlex.join(cmd)], cwd=recipe, check=True)
        print(f"[check_enh_sh] {name}: ok", flush=True)
    if not keep and recipe.exists():
        shutil.rmtree(recipe.parent)


# ------------------------------------------------------------- emulated stages
def _data_params(run: RecipeRun, d: Path, prefix: str) -> List[str]:
    """enh.sh's ``--{prefix}data_path_and_name_and_type`` list for the data dir ``d``."""
    variable = run.flag("variable_num_refs", "false") == "true"
    tse = run.flag("is_tse_task", "false") == "true"
    opt = f"--{prefix}data_path_and_name_and_type"
    params = [opt, f"{d / 'wav.scp'},speech_mix,sound"]
    for k in range(1, int(run.flag("ref_num", "2")) + 1):
        if prefix:  # training and stats: the references
            params += [opt, f"{d / f'spk{k}.scp'},speech_ref{k},"
                       + ("variable_columns_sound" if variable else "sound")]
        if tse:
            params += [opt, f"{d / f'enroll_spk{k}.scp'},enroll_ref{k},text"]
    if (d / "utt2category").is_file():
        params += [opt, f"{d / 'utt2category'},category,text"]
    return params


def _shapes(run: RecipeRun, stats: Path, mode: str) -> List[str]:
    names = ["speech_mix"]
    for k in range(1, int(run.flag("ref_num", "2")) + 1):
        names.append(f"speech_ref{k}")
        if run.flag("is_tse_task", "false") == "true":
            names.append(f"enroll_ref{k}")
    out = []
    for name in names:
        out += [f"--{mode}_shape_file", str(stats / mode / f"{name}_shape")]
    return out


def _split(key_file: Path, parts: int, out: Path) -> List[Path]:
    """utils/split_scp.pl: consecutive, nearly equal pieces."""
    lines = key_file.read_text().splitlines(keepends=True)
    parts = max(1, min(parts, len(lines)))
    files = []
    for j in range(parts):
        piece = lines[j * len(lines) // parts : (j + 1) * len(lines) // parts]
        files.append(out / f"keys.{j + 1}.scp")
        files[-1].parent.mkdir(parents=True, exist_ok=True)
        files[-1].write_text("".join(piece))
    return files


def emulate(run: RecipeRun, recipe: Path, python: str, runner: str,
            call: Callable[[Sequence[str], Path], None], inference_nj: int = 3) -> Path:
    """The Python steps of enh.sh's stages 5-8 for ``run``'s flags, then README's
    commands after it; data in ``recipe/dump/raw/{train,dev,test}`` (what stages 3-4
    leave). ``call(cmd, cwd)`` runs one command and raises when it fails. Returns the
    experiment folder."""
    tse = run.flag("is_tse_task", "false") == "true"
    ref_num = int(run.flag("ref_num", "2"))
    inf_num = int(run.flag("inf_num") or ref_num)
    stop_stage = int(run.flag("stop_stage", "10000"))
    fs = run.flag("fs", "16k")
    config = recipe / run.flag("enh_config")
    train_dir, valid_dir = (recipe / "dump" / "raw" / run.flag(k) for k in ("train_set", "valid_set"))
    test_sets = run.flag("test_sets").split()
    train_module = "espnet2.bin.enh_tse_train" if tse else "espnet2.bin.enh_train"
    infer_module = "espnet2.bin.enh_tse_inference" if tse else "espnet2.bin.enh_inference"
    exp = recipe / "exp" / f"enh_{config.stem}_raw"
    stats = recipe / "exp" / f"enh_stats_{fs}"
    train_params = _data_params(run, train_dir, "train_") + _data_params(run, valid_dir, "valid_")
    # stage 5: collect stats (one job), aggregate
    call([python, "-m", train_module, "--collect_stats", "true", *train_params,
          "--train_shape_file", str(train_dir / "wav.scp"),
          "--valid_shape_file", str(valid_dir / "wav.scp"),
          "--output_dir", str(stats / "logdir" / "stats.1"), "--config", str(config)], recipe)
    call([python, "-m", "espnet2.bin.aggregate_stats_dirs", "--input_dir",
          str(stats / "logdir" / "stats.1"), "--output_dir", str(stats)], recipe)
    # stage 6: training through launch
    shapes = _shapes(run, stats, "train") + _shapes(run, stats, "valid")
    call([python, "-m", "espnet2.bin.launch", "--cmd", runner, "--log", str(exp / "train.log"),
          "--ngpu", "0", "--num_nodes", "1", "--init_file_prefix", str(exp / ".dist_init_"),
          "--multiprocessing_distributed", "true", "--",
          python, "-m", train_module, *train_params, *shapes, "--resume", "true",
          "--output_dir", str(exp), "--config", str(config)], recipe)
    # stage 7: inference in jobs, each job's spk{k}.scp concatenated (the valid set, which
    # nothing here reads back, in one job: a Python start less per job)
    for dset in [run.flag("valid_set")] + test_sets:
        data = recipe / "dump" / "raw" / dset
        out = exp / f"enhanced_{dset}"
        jobs = _split(data / "wav.scp", inference_nj if dset in test_sets else 1, out / "logdir")
        for j, keys in enumerate(jobs, start=1):
            call([python, "-m", infer_module, "--ngpu", "0", "--fs", fs, *_data_params(run, data, ""),
                  "--key_file", str(keys), "--train_config", str(exp / "config.yaml"),
                  "--model_file", str(exp / "valid.loss.ave.pth"),
                  "--output_dir", str(out / "logdir" / f"output.{j}"),
                  "--normalize_output_wav", "true"], recipe)
        for k in range(1, inf_num + 1):
            parts = [out / "logdir" / f"output.{j}" / f"spk{k}.scp" for j in range(1, len(jobs) + 1)]
            missing = [p for p in parts if not p.is_file()]
            if missing:  # enh.sh's `cat` stops the stage here
                raise FileNotFoundError(f"stage 7: {missing[0]} is missing")
            lines = sorted(line for p in parts for line in p.read_text().splitlines(keepends=True))
            (out / f"spk{k}.scp").write_text("".join(lines))
        # stage 8: ESPnet's scoring of the enhanced signals
        if stop_stage >= 8:
            call([python, "-m", "espnet2.bin.enh_scoring", "--key_file", str(data / "wav.scp"),
                  "--output_dir", str(out / "scoring"),
                  *[a for k in range(1, ref_num + 1) for a in ("--ref_scp", str(data / f"spk{k}.scp"))],
                  *[a for k in range(1, inf_num + 1) for a in ("--inf_scp", str(out / f"spk{k}.scp"))],
                  "--ref_channel", "0", "--flexible_numspk", str(ref_num != inf_num).lower()], recipe)
    for cmd in run.after:
        call([python if cmd[0] == "espnet2-use-python" else cmd[0], *cmd[1:]], recipe)
    return exp


def run_emulated(workdir: Path, only: Sequence[str]) -> None:
    """Each README run emulated in ``workdir/<config>`` (the ``--emulate`` mode)."""
    python = str(Path(sys.executable).parent / "espnet2-use-python")
    runner = str(REPO / "egs2" / "TEMPLATE" / "use1" / "utils" / "run.py")

    def call(cmd: Sequence[str], cwd: Path) -> None:
        print(f"[check_enh_sh] {shlex.join(cmd)}", flush=True)
        subprocess.run(list(cmd), cwd=cwd, check=True)

    for name, run in readme_runs().items():
        if only and name not in only:
            continue
        recipe = workdir / name
        prepare_emulated(run, recipe)
        emulate(run, recipe, python, runner, call)
        print(f"[check_enh_sh] {name}: ok", flush=True)


def prepare_emulated(run: RecipeRun, recipe: Path) -> None:
    """``recipe/conf`` (the README's config, tiny) and ``recipe/dump/raw`` (tiny data)."""
    (recipe / "conf").mkdir(parents=True, exist_ok=True)
    config = Path(run.flag("enh_config"))
    write_tiny_config(HERE / "conf" / config.name, recipe / config)
    write_corpus(recipe / "dump" / "raw", variable=run.flag("variable_num_refs") == "true",
                 tse=run.flag("is_tse_task") == "true")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--espnet_root", type=Path, help="an ESPnet checkout (git clone)")
    parser.add_argument("--emulate", action="store_true",
                        help="run the Python steps of enh.sh's stages 5-8 instead (no checkout)")
    parser.add_argument("--workdir", type=Path, default=Path("enh_sh_check"),
                        help="--emulate: where the recipe folders go")
    parser.add_argument("--only", nargs="*", default=[], help="config names, e.g. use_tse")
    parser.add_argument("--keep", action="store_true", help="keep egs2/use_check afterwards")
    args = parser.parse_args(argv)
    if args.emulate:
        run_emulated(args.workdir.resolve(), args.only)
    elif args.espnet_root is None:
        parser.error("give --espnet_root or --emulate")
    else:
        run_real(args.espnet_root.resolve(), args.only, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
