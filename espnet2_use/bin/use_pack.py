"""Pack a trained USE model into one file (recipe stage 8).

Argument parsing only; the pack and its contents are :mod:`espnet2_use.inference.packing`
(``USE.from_packed`` loads it; ``overrides`` there points frozen pretrained encoders
elsewhere).

Example:
    python -m espnet2_use.bin.use_pack --exp_dir exp/use_stage2 --out exp/use_stage2/use_model.zip
"""
import argparse
from pathlib import Path
from typing import Optional, Sequence

from espnet2_use.inference.packing import MODEL_FILE_PREFERENCE, pack


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
