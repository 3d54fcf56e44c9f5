"""Pack a trained USE model into one file (recipe stage 8).

The zip holds ``config.yaml`` (cue-encoder paths rewritten to files inside the
pack), ``model.pth``, the label vocabulary and the sentencepiece model when the
config uses them, and ``meta.json``: format version, sample rate, the cue
encoders and, for frozen pretrained encoders that are not packed (a transformers
folder, timm weights: large, and under their own licences), the paths they were
loaded from. ``USE.from_packed`` loads it; ``overrides`` there points those
encoders elsewhere.

Example:
    python -m espnet2_use.bin.use_pack --exp_dir exp/use_stage2 --out exp/use_stage2/use_model.zip
"""
import argparse
import datetime
import json
import os
import zipfile
from pathlib import Path
from typing import Optional, Sequence

import yaml

from espnet2_use.inference import (
    MODEL_FILE_PREFERENCE,
    PACK_CONFIG,
    PACK_META,
    PACK_MODEL,
    recipe_root,
)
from espnet2_use.utils.fileio import atomic_write
from espnet2_use.version import __version__

PACKED_FILES = {"label_list": "labels.txt", "bpemodel": "bpe.model"}  # packed: small, ours
EXTERNAL_FILES = ("model_path", "weights")  # recorded: pretrained encoders


def pack(exp_dir: Path, out: Path, model_file: Optional[str] = None, root: Optional[Path] = None) -> Path:
    """Write the packed model ``out`` (whole or not at all) and return it."""
    exp_dir = Path(exp_dir)
    root = Path(root) if root is not None else recipe_root(exp_dir)
    config_path = exp_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: no training config")
    if model_file is None:
        found = [n for n in MODEL_FILE_PREFERENCE if (exp_dir / n).is_file()]
        if not found:
            raise FileNotFoundError(f"{exp_dir}: no model file ({', '.join(MODEL_FILE_PREFERENCE)})")
        model_file = found[0]
    weights = exp_dir / model_file
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no such model file")
    with open(config_path, encoding="utf-8") as f:
        conf = yaml.safe_load(f)

    def resolve(value: str) -> Path:
        return Path(value) if os.path.isabs(value) else root / value

    members = {PACK_MODEL: weights}
    encoders = {}
    for modality, spec in (conf.get("cue_encoders") or {}).items():
        spec_conf = spec.setdefault("conf", {})
        external = {}
        for key, packed_name in PACKED_FILES.items():
            if spec_conf.get(key):
                source = resolve(spec_conf[key])
                if not source.is_file():
                    raise FileNotFoundError(f"{config_path}: cue_encoders.{modality}.conf.{key}: {source} does not exist")
                name = f"{modality}_{packed_name}"
                members[name] = source
                spec_conf[key] = name
        for key in EXTERNAL_FILES:
            if spec_conf.get(key):
                external[key] = str(resolve(spec_conf[key]).resolve())
                spec_conf[key] = external[key]
        encoders[modality] = {"type": spec.get("type"), "external": external}
    meta = {
        "format": "espnet2_use packed model",
        "format_version": 1,
        "espnet2_use_version": __version__,
        "task": "use",
        "sample_rate": conf.get("sample_rate"),
        "source_exp_dir": str(exp_dir.resolve()),
        "model_file": model_file,
        "cue_encoders": encoders,
        "cue_example": bool(conf.get("cue_example")),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }

    def write(tmp: str) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(PACK_CONFIG, yaml.safe_dump(conf, sort_keys=False))
            zf.writestr(PACK_META, json.dumps(meta, indent=2) + "\n")
            for name, source in members.items():
                zf.write(source, name)

    atomic_write(out, write)
    return Path(out)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", required=True, type=Path)
    parser.add_argument("--model_file", default=None, help=f"default: first of {MODEL_FILE_PREFERENCE}")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--root", default=None, type=Path,
                        help="folder that relative paths in the config start from (default: the recipe folder above exp_dir)")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    out = pack(args.exp_dir, args.out, args.model_file, args.root)
    print(f"packed {out}")


if __name__ == "__main__":
    main()
