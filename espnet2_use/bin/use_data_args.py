"""ESPnet data arguments of the ``use`` task for a training config (used by use.sh).

Writes one argument per line to ``--out``: ``--{mode}_data_path_and_name_and_type`` followed by
``<file>,<name>,<type>``, for the mixture, the references ``speech_ref1..K``, the
count, and — unless ``--audio_only`` — the cue entries the config's cue network
reads (``USECueNetwork.data_name``): cached features (``kaldi_ark``) for frozen
encoders, raw text for the others, audio examples (``sound``).

Example:
    python -m espnet2_use.bin.use_data_args --config conf/tuning/stage2.yaml \\
        --max_num_src 3 --train_dir dump/raw/train --valid_dir dump/raw/valid --out args.txt
"""
import argparse
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import yaml

from espnet2_use.cue import cue_encoder_choices
from espnet2_use.utils.fileio import atomic_write_text

EXAMPLE_FILE = "enroll_spk{k}.scp"


def cue_entries(config: Dict, k: int) -> List[tuple]:
    """(file name, data name, loader type) of source k's cues for this config."""
    entries = []
    for modality, spec in (config.get("cue_encoders") or {}).items():
        cls = cue_encoder_choices.get(str(spec.get("type")).lower())
        if cls is None:
            raise ValueError(
                f"cue_encoders.{modality}.type {spec.get('type')!r} is not one of {sorted(cue_encoder_choices)}"
            )
        if cls.cached:
            entries.append((f"{modality}_emb_spk{k}.scp", f"{modality}_emb_spk{k}", "kaldi_ark"))
        else:
            entries.append((f"{modality}_spk{k}", f"{modality}_spk{k}", "text"))
    if config.get("cue_example"):
        entries.append((EXAMPLE_FILE.format(k=k), f"enroll_ref{k}", "sound"))
    return entries


def data_args(
    config: Dict, mode: str, data_dir: Path, max_num_src: int, audio_only: bool = False
) -> List[str]:
    """The ``--{mode}_data_path_and_name_and_type`` arguments for one data directory."""
    entries = [("wav.scp", "speech_mix", "sound"), ("utt2num_src", "num_src", "text_int")]
    for k in range(1, max_num_src + 1):
        entries.append((f"spk{k}.scp", f"speech_ref{k}", "sound"))
        if not audio_only:
            entries += cue_entries(config, k)
    args = []
    for file_name, name, kind in entries:
        path = data_dir / file_name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: needed for '{name}' (config cue_encoders / max_num_src {max_num_src})")
        args += [f"--{mode}_data_path_and_name_and_type", f"{path},{name},{kind}"]
    return args


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--max_num_src", required=True, type=int)
    parser.add_argument("--train_dir", required=True, type=Path)
    parser.add_argument("--valid_dir", required=True, type=Path)
    parser.add_argument("--audio_only", action="store_true", help="mixture, references and count only")
    # A file, not stdout: importing ESPnet prints notices to stdout.
    parser.add_argument("--out", required=True, type=Path, help="file to write the arguments to")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    with open(args.config, encoding="utf-8") as f:
        config = yaml.safe_load(f) or {}
    lines = data_args(config, "train", args.train_dir, args.max_num_src, args.audio_only)
    lines += data_args(config, "valid", args.valid_dir, args.max_num_src, args.audio_only)
    atomic_write_text(args.out, "".join(line + "\n" for line in lines))


if __name__ == "__main__":
    main()
