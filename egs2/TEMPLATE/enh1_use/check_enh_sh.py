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
from typing import Dict, List, Optional, Sequence

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
    conf = dict(conf, max_epoch=1, num_workers=0, batch_type="unsorted", batch_size=1,
                use_tensorboard=False, seed=0)
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--espnet_root", type=Path, help="an ESPnet checkout (git clone)")
    parser.add_argument("--only", nargs="*", default=[], help="config names, e.g. use_tse")
    parser.add_argument("--keep", action="store_true", help="keep egs2/use_check afterwards")
    args = parser.parse_args(argv)
    if args.espnet_root is None:
        parser.error("give --espnet_root")
    run_real(args.espnet_root.resolve(), args.only, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
