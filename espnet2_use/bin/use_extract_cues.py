#!/usr/bin/env python3
"""Cache the frozen cue encoders' features of data dirs (recipe stage 2).

Argument parsing only; the cache is :mod:`espnet2_use.cue.cue_cache` (its docstring
describes the files written and the marker that makes a re-run skip)::

    python -m espnet2_use.bin.use_extract_cues --data_dir data/test \\
        --out_dir dump/raw/test --config conf/tuning/x.yaml [--device cuda]
    python -m espnet2_use.bin.use_extract_cues --out_dir dump/raw/test \\
        --merge_from dump/raw/test/cue_split/1 dump/raw/test/cue_split/2
"""
import argparse
import logging
from typing import Dict, Optional, Sequence

from espnet2_use.cue import AbsCueEncoder
from espnet2_use.cue.cue_cache import (  # noqa: F401  (library names, kept here)
    DONE_MARKER,
    extract_cues,
    load_cue_config,
    merge_cue_outputs,
    read_kaldi_text,
)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Cache frozen cue-encoder features (text_emb_spk*, video_emb_spk*) "
        "of data dirs as kaldiio ark/scp. --data_dir / --out_dir (/ --utt_list / "
        "--merge_from) may be repeated, one group per set: the networks load once.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data_dir", action="append",
                        help="data/<set> with text_spk*, video_spk*.scp")
    parser.add_argument("--out_dir", action="append", required=True, help="e.g. dump/raw/<set>")
    parser.add_argument("--config", help="training config with cue_encoders")
    parser.add_argument("--utt_list", action="append", default=None,
                        help="process only these utts (JOB split)")
    parser.add_argument("--device", default="cpu", help="device of the frozen networks")
    parser.add_argument(
        "--merge_from",
        nargs="+",
        action="append",
        default=None,
        help="merge the scp files of these split out_dirs into --out_dir (with "
        "--data_dir: check that every utterance is present)",
    )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s",
    )
    parser = get_parser()
    args = parser.parse_args(argv)
    groups = len(args.out_dir)
    for name in ("data_dir", "utt_list", "merge_from"):
        value = getattr(args, name)
        if value is not None and len(value) != groups:
            parser.error(f"give one --{name} per --out_dir ({groups}), got {len(value)}")
    encoders: Dict[str, AbsCueEncoder] = {}
    for i, out_dir in enumerate(args.out_dir):
        data_dir = args.data_dir[i] if args.data_dir else None
        if args.merge_from:
            outputs = merge_cue_outputs(args.merge_from[i], out_dir, data_dir)
        else:
            if not data_dir or not args.config:
                parser.error("--data_dir and --config are required (unless --merge_from)")
            utt_list = args.utt_list[i] if args.utt_list else None
            outputs = extract_cues(data_dir, out_dir, args.config, utt_list, args.device, encoders)
        logging.info(f"wrote {len(outputs)} scp file(s) in {out_dir}")


if __name__ == "__main__":
    main()
