#!/usr/bin/env python3
"""Copy the utterances of a data directory that have exactly N sources into another.

Every per-utterance file is filtered; reference and cue files of sources beyond N
are left out, so the result is an ESPnet enh data directory with a fixed count
(``spk1.scp`` .. ``spkN.scp``). Used by local/run_baseline.sh.

Usage: local/subset_by_count.py --num_src 2 dump/raw/train dump/raw/train_2src
"""
import argparse
import re
import shutil
import sys
from pathlib import Path

from espnet2_use.data.kaldi_dir import read_kaldi_text, write_kaldi_text

PER_SOURCE = re.compile(r"^(spk|text_spk|label_spk|video_spk|enroll_spk|text_emb_spk|video_emb_spk)(\d+)(\.scp)?$")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_src", type=int, required=True)
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    args = parser.parse_args(argv)
    counts = read_kaldi_text(args.src / "utt2num_src")
    keep = {utt for utt, n in counts.items() if int(n) == args.num_src}
    if not keep:
        print(f"{args.src}: no utterance has {args.num_src} sources", file=sys.stderr)
        return 1
    tmp = args.dst.with_name(args.dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for path in sorted(args.src.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.suffix in (".ark", ".wav"):
            continue
        match = PER_SOURCE.match(path.name)
        if match and int(match.group(2)) > args.num_src:
            continue
        entries = read_kaldi_text(path)
        write_kaldi_text(tmp / path.name, {u: v for u, v in entries.items() if u in keep})
    shutil.rmtree(args.dst, ignore_errors=True)
    tmp.rename(args.dst)
    print(f"{args.dst}: {len(keep)} utterances with {args.num_src} sources")
    return 0


if __name__ == "__main__":
    sys.exit(main())
