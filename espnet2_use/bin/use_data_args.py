"""ESPnet data arguments of the ``use`` task for a training config (used by use.sh).

Writes one argument per line to ``--out``: ``--{mode}_data_path_and_name_and_type`` followed by
``<file>,<name>,<type>``, for the mixture, the references ``speech_ref1..K``, the
count, and — unless ``--audio_only`` — the cue entries the config's cue network
reads (``USECueNetwork.data_name``), all from the layout table
(``espnet2_use.data.layout``): the cached row for frozen encoders, the raw row for
the others, audio examples.

Example:
    python -m espnet2_use.bin.use_data_args --config conf/tuning/stage2.yaml \\
        --max_num_src 3 --train_dir dump/raw/train --valid_dir dump/raw/valid --out args.txt
"""
import argparse
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import yaml

from espnet2_use.cue import cue_encoder_choices, cue_encoder_specs
from espnet2_use.data.layout import MIXTURE, NUM_SRC, REFERENCE, SourceFile, cue_file
from espnet2_use.utils.fileio import atomic_write_text

def cue_rows(config: Dict) -> List[SourceFile]:
    """The layout rows of the cues the config's cue network reads."""
    rows = []
    for modality, spec in cue_encoder_specs(config.get("cue_encoders"), config.get("cue_example")).items():
        cls = cue_encoder_choices.get(str(spec.get("type")).lower())
        if cls is None:
            raise ValueError(
                f"cue_encoders.{modality}.type {spec.get('type')!r} is not one of {sorted(cue_encoder_choices)}"
            )
        rows.append(cue_file(modality, cls.cached))
    return rows


def _entry(row: SourceFile, k: int) -> tuple:
    return row.file_name(k), row.name(k), row.loader


def cue_entries(config: Dict, k: int) -> List[tuple]:
    """(file name, data name, loader type) of source k's cues for this config."""
    return [_entry(row, k) for row in cue_rows(config)]


def data_args(
    config: Dict, mode: str, data_dir: Path, max_num_src: int, audio_only: bool = False
) -> List[str]:
    """The ``--{mode}_data_path_and_name_and_type`` arguments for one data directory."""
    entries = [MIXTURE, NUM_SRC]
    rows = [] if audio_only else cue_rows(config)
    optional = set()  # derived rows (the span): the preprocessor reads them off the reference
    for k in range(1, max_num_src + 1):
        entries += [_entry(row, k) for row in [REFERENCE] + rows]
        optional |= {row.file_name(k) for row in rows if row.derived}
    args = []
    for file_name, name, kind in entries:
        path = data_dir / file_name
        if file_name in optional and not path.is_file():
            continue
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
