#!/usr/bin/env python3
"""Score USE decoding directories (SS or TSE), or collect scores into RESULTS.md.

Argument parsing and output files only; the scoring is
:mod:`espnet2_use.scoring.score_dir` (its docstring describes the rules)::

    python -m espnet2_use.bin.use_scoring --mode ss \\
        --ref_dir data/test_ss --est_dir exp/x/decode_test_ss/ss [--fs 8000]
    python -m espnet2_use.bin.use_scoring --mode tse --cue_combination text+label \\
        --ref_dir data/test_tse --est_dir exp/x/decode_test_tse/tse_text_label
    python -m espnet2_use.bin.use_scoring --collect exp/x/decode_* --out_md RESULTS.md

``--out_json`` / ``--out_md`` default to ``scores.json`` / ``scores.md`` in each
``--est_dir``; all outputs are written atomically.
"""
import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from espnet2.utils.types import str2bool

from espnet2_use.data.kaldi_dir import DataDirError
from espnet2_use.scoring.metrics import DEFAULT_CLAMP_DB, DEFAULT_SDR_FILTER_LENGTH
from espnet2_use.scoring.report import render
from espnet2_use.scoring.score_dir import (  # noqa: F401  (score_*_dir: library names, kept here)
    DEFAULT_LENGTH_TOLERANCE,
    collect,
    score_ss_dir,
    score_tse_dir,
)
from espnet2_use.utils.fileio import atomic_write_json, atomic_write_text


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Score USE SS/TSE decoding dirs; collect scores into RESULTS.md",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--ref_dir", type=Path, help="reference data dir, e.g. data/test_ss")
    parser.add_argument("--est_dir", type=Path, nargs="+",
                        help="decoding dir(s), e.g. exp/x/decode_test_ss/ss; several are scored "
                        "in one run (each gets its own scores.json / scores.md)")
    parser.add_argument("--mode", choices=["ss", "tse"], help="separation or extraction")
    parser.add_argument("--out_json", type=Path, default=None,
                        help="JSON of all numbers (default: <est_dir>/scores.json)")
    parser.add_argument("--out_md", type=Path, default=None,
                        help="markdown table (default: <est_dir>/scores.md); with "
                        "--collect: the RESULTS.md to update")
    parser.add_argument("--cue_combination", default=None,
                        help="TSE only: label of the row, e.g. text+label (default: from the "
                        "decoding dir's name tse_<cue>_<cue>, as use_inference names them)")
    parser.add_argument("--fs", type=int, default=None,
                        help="expected sample rate (default: the first mixture's)")
    parser.add_argument("--length_tolerance", type=int, default=DEFAULT_LENGTH_TOLERANCE,
                        help="estimates up to this many samples longer/shorter than the "
                        "mixture are cropped/zero-padded; more is an error")
    parser.add_argument("--compute_sdr", type=str2bool,
                        default=True, help="SS: also compute SDR/SDRi (true/false)")
    parser.add_argument("--sdr_filter_length", type=int, default=DEFAULT_SDR_FILTER_LENGTH)
    parser.add_argument("--clamp_db", type=float, default=DEFAULT_CLAMP_DB,
                        help="metrics are clamped to [-clamp_db, clamp_db]")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--collect", nargs="+", type=Path, default=None, metavar="PATH",
                        help="decoding dirs or scores JSONs to collect into --out_md")
    parser.add_argument("--log_level", default="INFO",
                        choices=["ERROR", "WARNING", "INFO", "DEBUG"])
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Runs the CLI; returns the result dict (or {'section': ...} for --collect)."""
    parser = get_parser()
    args = parser.parse_args(cmd)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s",
    )
    if args.collect:
        if args.out_md is None:
            parser.error("--collect needs --out_md (the RESULTS.md to update)")
        section = collect(args.collect, args.out_md)
        logging.info(f"wrote {len(args.collect)} results into {args.out_md}")
        return {"section": section}
    for name in ("ref_dir", "est_dir", "mode"):
        if getattr(args, name) is None:
            parser.error(f"--{name} is required unless --collect is given")
    if len(args.est_dir) > 1 and (args.out_json or args.out_md):
        parser.error("--out_json / --out_md name one file: give them with one --est_dir only")
    results = [_score_one(args, est_dir) for est_dir in args.est_dir]
    return results[0] if len(results) == 1 else {"results": results}


def _score_one(args: argparse.Namespace, est_dir: Path) -> Dict[str, Any]:
    """Scores one decoding dir and writes its scores.json / scores.md."""
    if args.mode == "ss":
        result = score_ss_dir(
            args.ref_dir, est_dir, fs=args.fs, length_tolerance=args.length_tolerance,
            compute_sdr=args.compute_sdr, sdr_filter_length=args.sdr_filter_length,
            clamp_db=args.clamp_db, progress=not args.no_progress,
        )
    else:
        combination = args.cue_combination
        if combination is None and est_dir.name.startswith("tse_"):
            combination = est_dir.name[len("tse_"):].replace("_", "+")
        result = score_tse_dir(
            args.ref_dir, est_dir, cue_combination=combination, fs=args.fs,
            length_tolerance=args.length_tolerance, clamp_db=args.clamp_db,
            progress=not args.no_progress,
        )
    out_json = args.out_json or est_dir / "scores.json"
    out_md = args.out_md or est_dir / "scores.md"
    atomic_write_json(out_json, result)
    markdown = render(result, level=2)
    atomic_write_text(out_md, markdown)
    sys.stdout.write(markdown)
    logging.info(f"wrote {out_json} and {out_md}")
    return result


def cli() -> None:
    """Console entry: a data error prints one line naming the file, exit status 1."""
    try:
        main()
    except DataDirError as e:
        sys.stderr.write(f"use_scoring: error: {e}\n")
        sys.exit(1)


if __name__ == "__main__":
    cli()
