#!/usr/bin/env python3
"""FUSS data preparation for the USE recipe (called by local/data.sh).

Layout read: the FUSS release (FUSS_ssdata.tar.gz and FUSS_ssdata_reverb.tar.gz from
zenodo record 3694384, the URLs of sound-separation's get_dev_data.sh; asteroid's
egs/fuss uses record 3710392), as produced by google-research/sound-separation
datasets/fuss (make_ss_examples.py, reverberate_and_mix.py) and read by its
DCASE2020 baseline (models/dcase2020_fuss_baseline/train_model.py, data_io.py)::

    <fuss_dir>/ssdata[_reverb]/
        {train,validation,eval}_example_list.txt
        {train,validation,eval}/example<NNNNN>.wav (+ .jams, .txt)
        {train,validation,eval}/example<NNNNN>_sources/background0_sound.wav
                                                      foreground{0,1,2}_sound.wav

Each line of ``<split>_example_list.txt`` is tab-separated: the mixture's path,
then its 1..4 source paths (background first), relative to the list's folder.

``--fuss_dir`` may also be the output of FUSS's data augmentation
(``run_data_augmentation.sh``: ``<root>/fuss_augment_<seed>/ssdata[_reverb]``,
made by ``run_scaper.sh`` and ``run_reverb_and_mix.sh``), which has train and
validation splits but no eval split (``NUM_EVAL_MIX=0``: no eval folder, no
``eval_example_list.txt``). A split ``--fuss_dir`` lacks comes from the same
variant of ``--fuss_dev_dir``: by default ``fuss_dev`` beside ``--fuss_dir``,
where FUSS's ``setup.sh`` / ``get_dev_data.sh`` put the official dev data
(``<root>/fuss_dev/ssdata[_reverb]``). The script prints which tree each set
comes from.

Output (egs2/TEMPLATE/use1/README.md): ``data/{train,dev,test}`` (FUSS train,
validation, eval) with ``wav.scp``, ``spk1..4.scp``, ``utt2num_src`` (= number of
source files, 1..4), ``utt2category`` (``<n>src``); an absent source k > n is
the zero-length ``data/<set>/silence.wav``. FUSS ships no labels for its
sources (the FUSS README: "Labels are not provided for these source files"),
so no cue files and no labels.txt are written.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence


from espnet2_use.data.corpus import (
    CorpusError,
    StagedOutput,
    Utterance,
    check_utt_id,
    require_dir,
    require_file,
    write_data_dir,
    write_silence,
)

NUM_SPK = 4  # FUSS: one background and up to three foreground sources
FS = 16000
VARIANT_DIR = {"dry": "ssdata", "reverb": "ssdata_reverb"}
SET_OF_SPLIT = {"train": "train", "validation": "dev", "eval": "test"}


def read_example_list(list_path: Path, split: str) -> List[Utterance]:
    """Read a FUSS ``<split>_example_list.txt``, checking every listed file.

    Args:
        list_path: The list file.
        split: ``train``, ``validation`` or ``eval`` (prefix of utterance ids).

    Raises:
        CorpusError: A line with fewer than 2 or more than 5 fields, a listed
            file that does not exist, or an empty list.
    """
    base = list_path.parent
    utts = []
    with open(list_path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            where = f"{list_path}: line {line_no}"
            if not 2 <= len(fields) <= NUM_SPK + 1:
                raise CorpusError(
                    f"{where}: {len(fields)} tab-separated field(s); expected the mixture "
                    f"path then 1..{NUM_SPK} source paths"
                )
            paths = []
            for rel in fields:
                p = base / rel
                if not p.is_file():
                    raise CorpusError(f"{where}: {p} does not exist; expected the wav file "
                                      f"the example list names")
                paths.append(str(p))
            stem = os.path.splitext(os.path.basename(fields[0]))[0]
            utts.append(Utterance(
                utt_id=check_utt_id(f"{split}_{stem}", where),
                mixture=paths[0],
                sources=paths[1:],
                category=f"{len(paths) - 1}src",
            ))
    if not utts:
        raise CorpusError(f"{list_path}: no examples listed; expected one line per mixture")
    return utts


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fuss_dir", required=True, help="FUSS root holding ssdata/ and/or ssdata_reverb/")
    p.add_argument("--data_dir", default="data", help="output data directory")
    p.add_argument("--variant", choices=["dry", "reverb"], default="reverb",
                   help="dry: ssdata; reverb: ssdata_reverb (the DCASE2020 baseline's data)")
    p.add_argument("--fuss_dev_dir", default="",
                   help="FUSS tree that the splits --fuss_dir lacks come from (eval for the "
                        "output of FUSS's augmentation, which has none); default: fuss_dev "
                        "beside --fuss_dir (the official dev data, where FUSS's setup.sh puts it)")
    return p


def find_example_lists(sub: Path, dev_sub: Path, dev_dir_given: bool) -> Dict[str, Path]:
    """The example list of every split: from ``sub`` where it has one, else from ``dev_sub``.

    Args:
        sub: The variant folder of ``--fuss_dir`` (e.g. ``.../ssdata_reverb``).
        dev_sub: The same variant folder of ``--fuss_dev_dir`` (or of its default).
        dev_dir_given: Whether ``--fuss_dev_dir`` was given (for the message).

    Raises:
        CorpusError: ``sub`` has no train list, or a list it lacks is not in ``dev_sub``.
    """
    lists = {"train": require_file(sub / "train_example_list.txt",
                                   "the FUSS train example list")}
    for split in ("validation", "eval"):
        own, other = sub / f"{split}_example_list.txt", dev_sub / f"{split}_example_list.txt"
        if own.is_file():
            lists[split] = own
        elif other.is_file():
            lists[split] = other
        else:
            named = ("--fuss_dev_dir" if dev_dir_given
                     else "fuss_dev beside --fuss_dir, the default of --fuss_dev_dir")
            raise CorpusError(
                f"{own} does not exist, nor does {other} ({named}); expected the FUSS {split} "
                f"example list in --fuss_dir or, for a tree without a {split} split (FUSS's "
                f"data augmentation writes no eval split), in the same folder of the official "
                f"dev data: pass its root (fuss_dev/) with --fuss_dev_dir")
    return lists


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Prepare ``data/{train,dev,test}``; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        root = require_dir(args.fuss_dir, "the FUSS root holding ssdata/ and/or ssdata_reverb/")
        sub = require_dir(root / VARIANT_DIR[args.variant],
                          f"the FUSS {args.variant} data (FUSS_{VARIANT_DIR[args.variant]}.tar.gz "
                          f"unpacked, or the output of FUSS's data augmentation)")
        if args.fuss_dev_dir:
            dev_root = require_dir(args.fuss_dev_dir, "the root of FUSS's dev data (fuss_dev/, "
                                                      "holding ssdata/ and/or ssdata_reverb/)")
        else:
            dev_root = root.parent / "fuss_dev"
        lists = find_example_lists(sub, dev_root / VARIANT_DIR[args.variant],
                                   bool(args.fuss_dev_dir))
        sets: Dict[str, List[Utterance]] = {}
        for split, set_name in SET_OF_SPLIT.items():
            sets[set_name] = read_example_list(lists[split], split)

        with StagedOutput(Path(args.data_dir)) as out:
            for split, set_name in SET_OF_SPLIT.items():
                utts = sets[set_name]
                write_silence(out.stage(set_name) / "silence.wav", FS)
                write_data_dir(out.stage(set_name), utts, NUM_SPK,
                               silence=os.path.join(out.final(set_name), "silence.wav"))
                print(f"{out.final(set_name)}: {len(utts)} mixtures (FUSS {split}, "
                      f"{lists[split].parent})")
    except CorpusError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
