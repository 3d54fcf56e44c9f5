#!/usr/bin/env python3
"""Split Kaldi text files (scp, text, ...) into N parts of contiguous utterances.

Usage:
    utils/split_scp.py in.scp out.1.scp ... out.N.scp
    utils/split_scp.py --num_splits N --out_dir DIR in1.scp [in2 ...]

The first form (Kaldi's split_scp.pl) splits one file into the given outputs. The second
writes DIR/1/<name> .. DIR/N/<name> for each input, splitting every input at the same
utterances as the first one (so the parts of a data directory's files match); the inputs
must then list the same utterance ids in the same order.

Lines are kept whole and in input order, so sorted input gives sorted parts; part i gets
ceil or floor of (lines / N) lines, the longer parts first. Asking for more parts than lines
is an error, as empty parts would break the jobs that read them. Every output is written
whole (temporary file, then rename).
"""
import argparse
import os
import sys
import tempfile
from typing import List, Optional, Sequence


def part_sizes(num_lines: int, num_splits: int) -> List[int]:
    """Sizes of ``num_splits`` contiguous parts of ``num_lines`` lines, as equal as possible.

    Raises:
        ValueError: ``num_splits`` < 1 or > ``num_lines``.
    """
    if num_splits < 1 or num_splits > num_lines:
        raise ValueError(
            f"cannot split {num_lines} line(s) into {num_splits} non-empty part(s)"
        )
    base, extra = divmod(num_lines, num_splits)
    return [base + 1 if i < extra else base for i in range(num_splits)]


def read_lines(path: str) -> List[str]:
    """The lines of a Kaldi text file, each ending with a newline.

    Raises:
        ValueError: A line is empty or starts with a blank (names the file and line).
    """
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip() or line[0] in " \t":
            raise ValueError(f"{path} line {lineno}: expected '<utt-id> <value>', got {line!r}")
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


def _key(line: str) -> str:
    return line.split(maxsplit=1)[0]


def write_whole(path: str, lines: Sequence[str]) -> None:
    """Write ``lines`` to ``path`` via a temporary file in the same folder."""
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(lines)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def split_lines(lines: Sequence[str], num_splits: int) -> List[List[str]]:
    """Contiguous parts of ``lines`` (see part_sizes)."""
    parts, start = [], 0
    for size in part_sizes(len(lines), num_splits):
        parts.append(list(lines[start : start + size]))
        start += size
    return parts


def split_scp(in_path: str, out_paths: Sequence[str]) -> None:
    """Split one file into ``len(out_paths)`` parts (Kaldi's split_scp.pl without options).

    Raises:
        ValueError: More outputs than lines, or a malformed line.
    """
    lines = read_lines(in_path)
    try:
        parts = split_lines(lines, len(out_paths))
    except ValueError as error:
        raise ValueError(f"{in_path}: {error}") from None
    for out_path, part in zip(out_paths, parts):
        write_whole(out_path, part)


def split_to_dir(in_paths: Sequence[str], num_splits: int, out_dir: str) -> None:
    """Split each input into ``out_dir/<i>/<name>``, i = 1..num_splits, at the first one's utts.

    Raises:
        ValueError: More parts than lines, a malformed line, two inputs with the same name,
            or an input whose utterance ids differ from the first input's (names the line).
    """
    names = [os.path.basename(p) for p in in_paths]
    if len(set(names)) != len(names):
        raise ValueError(f"inputs share a file name, their parts would collide: {in_paths}")
    all_lines = [read_lines(p) for p in in_paths]
    reference = all_lines[0]
    try:
        sizes = part_sizes(len(reference), num_splits)
    except ValueError as error:
        raise ValueError(f"{in_paths[0]}: {error}") from None
    for path, lines in zip(in_paths[1:], all_lines[1:]):
        for lineno, (ref_line, line) in enumerate(zip(reference, lines), start=1):
            if _key(ref_line) != _key(line):
                raise ValueError(
                    f"{path} line {lineno}: utt '{_key(line)}', but {in_paths[0]} line "
                    f"{lineno} has '{_key(ref_line)}'; the inputs must list the same utts"
                )
        if len(lines) != len(reference):
            raise ValueError(
                f"{path} has {len(lines)} lines, {in_paths[0]} has {len(reference)}; "
                "the inputs must list the same utts"
            )
    for i in range(1, num_splits + 1):
        os.makedirs(os.path.join(out_dir, str(i)), exist_ok=True)
    for name, lines in zip(names, all_lines):
        start = 0
        for i, size in enumerate(sizes, start=1):
            write_whole(os.path.join(out_dir, str(i), name), lines[start : start + size])
            start += size


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="+", help="input (and, without --out_dir, outputs)")
    parser.add_argument("--num_splits", type=int, default=None, help="number of parts")
    parser.add_argument("--out_dir", default=None, help="write DIR/<i>/<name> for each input")
    args = parser.parse_args(argv)
    try:
        if args.out_dir is not None or args.num_splits is not None:
            if args.out_dir is None or args.num_splits is None:
                parser.error("--num_splits and --out_dir go together")
            split_to_dir(args.files, args.num_splits, args.out_dir)
        else:
            if len(args.files) < 2:
                parser.error("expected an input and at least one output")
            split_scp(args.files[0], args.files[1:])
    except (ValueError, OSError) as error:
        print(f"split_scp.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
