#!/usr/bin/env python3
"""Check a USE data directory against the layout of egs2/TEMPLATE/use1/README.md.

Usage:
    utils/validate_data_dir.py [options] data/<set> [data/<set2> ...]

Prints ``OK: <dir> (<N> utterances, sources: {1: a, 2: b, ...})`` and exits 0, or prints
every problem found (up to --max_problems), each naming the file and its line or
utterance, and exits 1. Relative audio/video paths are taken from the current folder, as in
the recipes. The checks are those of espnet2_use.data.validate.validate_data_dir.
"""
import argparse
import sys
from typing import List, Optional


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def get_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "data_dirs", nargs="+", help="data directories, e.g. data/train data/test"
    )
    parser.add_argument(
        "--max_num_src",
        type=_positive_int,
        default=None,
        help="K, the largest number of sources (default: the largest k with a spk<k>.scp)",
    )
    parser.add_argument(
        "--label_list",
        default=None,
        help="label vocabulary, one class name per line (e.g. data/token_list/labels.txt)",
    )
    parser.add_argument(
        "--no_audio_check",
        action="store_true",
        help="only check that audio files exist; do not open them",
    )
    parser.add_argument(
        "--fs", default=None, help="expected sample rate, e.g. 16000 or 16k"
    )
    parser.add_argument(
        "--length_tolerance",
        type=float,
        default=0.0,
        help="allowed length difference of a reference and its mixture, in seconds",
    )
    parser.add_argument(
        "--max_problems", type=_positive_int, default=100, help="report at most this many"
    )
    parser.add_argument(
        "--num_workers", type=_positive_int, default=8, help="threads reading audio headers"
    )
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = get_parser()
    args = parser.parse_args(argv)
    # Imported once the command line is read: importing espnet2_use registers USE into
    # ESPnet's tasks, which loads ESPnet (seconds); --help and usage errors need not wait.
    from espnet2_use.data.kaldi_dir import parse_sample_rate, source_count_histogram
    from espnet2_use.data.validate import validate_data_dir

    try:
        fs = None if args.fs is None else parse_sample_rate(args.fs)
    except ValueError as error:
        parser.error(f"argument --fs: {error}")
    status = 0
    for data_dir in args.data_dirs:
        problems = validate_data_dir(
            data_dir,
            max_num_src=args.max_num_src,
            label_list=args.label_list,
            check_audio=not args.no_audio_check,
            fs=fs,
            length_tolerance=args.length_tolerance,
            max_problems=args.max_problems,
            num_workers=args.num_workers,
        )
        if problems:
            for problem in problems:
                print(problem, file=sys.stderr)
            print(f"FAILED: {data_dir} (see the problems above)", file=sys.stderr)
            status = 1
            continue
        histogram = source_count_histogram(data_dir)
        print(f"OK: {data_dir} ({sum(histogram.values())} utterances, sources: {histogram})")
    return status


if __name__ == "__main__":
    sys.exit(main())
