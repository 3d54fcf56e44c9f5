#!/usr/bin/env python3
"""LibriMix data preparation for the USE recipe (called by local/data.sh).

Layout read (the output of JorisCos/LibriMix, scripts/create_librimix_from_metadata.py,
https://github.com/JorisCos/LibriMix; ESPnet's egs2/librimix/enh1 reads the same CSVs)::

    <librimix_dir>/Libri{2,3}Mix/wav{8k,16k}/{min,max}/
        {train-100,train-360,dev,test}/{mix_clean,mix_both,s1,s2[,s3],noise}/<mixture_ID>.wav
        metadata/mixture_<split>_<mix_clean|mix_both>.csv

A metadata CSV has the columns ``mixture_ID``, (``original_mixture_ID`` in
newer versions), ``mixture_path``, ``source_1_path`` .. ``source_<n>_path``,
(``noise_path`` for mix_both) and ``length``. Its paths are the absolute paths
of the machine that generated the corpus; a listed path is looked up under
``--librimix_dir`` first (from its ``Libri<n>Mix`` component on) and as
written second, so a corpus that was moved or copied still works.

Output (see egs2/TEMPLATE/use1/README.md): ``data/{train,dev,test}`` with
``wav.scp``, ``spk1.scp``..``spkK.scp``, ``utt2num_src``, ``utt2category``
(``2mix``/``3mix``). LibriMix is separation-only speech: no cue files and no
labels.txt. With ``--num_src both`` (the unknown-count setting) Libri2Mix and
Libri3Mix are pooled, K = 3 and spk3 of a 2-speaker mixture is the zero-length
``data/<set>/silence.wav``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import soundfile


from espnet2_use.data.corpus import (
    CorpusError,
    Utterance,
    StagedOutput,
    check_utt_id,
    read_csv_rows,
    require_dir,
    require_file,
    write_data_dir,
    write_silence,
)

MIX_TYPE = {"clean": "mix_clean", "noisy": "mix_both"}
SETS_OF_SPLIT = {"dev": ["dev"], "test": ["test"]}


def metadata_csv(root: Path, n: int, sample_rate: str, mode: str, split: str, mix_type: str) -> Path:
    """Path of the metadata CSV of one LibriMix subset.

    Args:
        root: LibriMix root (holding ``Libri2Mix``/``Libri3Mix``).
        n: Number of speakers (2 or 3).
        sample_rate: ``8k`` or ``16k``.
        mode: ``min`` or ``max``.
        split: ``train-100``, ``train-360``, ``dev`` or ``test``.
        mix_type: ``mix_clean`` or ``mix_both``.
    """
    return (root / f"Libri{n}Mix" / f"wav{sample_rate}" / mode / "metadata"
            / f"mixture_{split}_{mix_type}.csv")


def resolve_listed(listed: str, root: Path, n: int, where: str, column: str) -> str:
    """Find the file a metadata CSV lists, under ``root`` first, then as written.

    Args:
        listed: The path in the CSV.
        root: LibriMix root given to the recipe.
        n: Number of speakers (names the ``Libri<n>Mix`` component).
        where: ``<csv>: line <i>`` for the message.
        column: CSV column of the path, for the message.

    Raises:
        CorpusError: Neither candidate exists.
    """
    parts = Path(listed).parts
    anchor = f"Libri{n}Mix"
    candidates: List[str] = []
    if anchor in parts:
        i = len(parts) - 1 - parts[::-1].index(anchor)
        candidates.append(str(root.joinpath(*parts[i:])))
    candidates.append(listed if os.path.isabs(listed) else str(root / listed))
    for c in candidates:
        if os.path.isfile(c):
            return c
    raise CorpusError(
        f"{where}: {column} {listed} does not exist"
        + (f" (nor {candidates[0]})" if len(candidates) > 1 else "")
        + "; expected the wav file the metadata lists"
    )


def read_metadata(csv_path: Path, n: int, mix_type: str, root: Path) -> List[Utterance]:
    """Read one metadata CSV into utterances, checking columns and files.

    Args:
        csv_path: ``.../metadata/mixture_<split>_<mix_type>.csv``.
        n: Number of speakers of the subset.
        mix_type: ``mix_clean`` or ``mix_both``.
        root: LibriMix root.
    """
    columns = ["mixture_ID", "mixture_path"] + [f"source_{k}_path" for k in range(1, n + 1)]
    if mix_type == "mix_both":
        columns.append("noise_path")
    columns.append("length")
    rows = read_csv_rows(csv_path, columns)
    if not rows:
        raise CorpusError(f"{csv_path}: no mixtures listed; expected one row per mixture")
    utts = []
    for line, row in rows:
        where = f"{csv_path}: line {line}"
        utt_id = check_utt_id(row["mixture_ID"], where)
        utts.append(Utterance(
            utt_id=utt_id,
            mixture=resolve_listed(row["mixture_path"], root, n, where, "mixture_path"),
            sources=[resolve_listed(row[f"source_{k}_path"], root, n, where, f"source_{k}_path")
                     for k in range(1, n + 1)],
            category=f"{n}mix",
        ))
    return utts


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--librimix_dir", required=True, help="LibriMix root (holds Libri2Mix/, Libri3Mix/)")
    p.add_argument("--data_dir", default="data", help="output data directory")
    p.add_argument("--sample_rate", choices=["8k", "16k"], default="8k")
    p.add_argument("--mode", choices=["min", "max"], default="min")
    p.add_argument("--condition", choices=["clean", "noisy"], default="clean",
                   help="clean: mix_clean; noisy: mix_both (speech + WHAM! noise)")
    p.add_argument("--num_src", choices=["2", "3", "both"], default="2")
    p.add_argument("--train_subsets", default="train-360",
                   help="space-separated training subsets pooled into data/train")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Prepare ``data/{train,dev,test}``; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        root = require_dir(args.librimix_dir, "the LibriMix root holding Libri2Mix/ and/or Libri3Mix/")
        counts = [2, 3] if args.num_src == "both" else [int(args.num_src)]
        num_spk = max(counts)
        mix_type = MIX_TYPE[args.condition]
        train_subsets = args.train_subsets.split()
        if not train_subsets:
            raise CorpusError("--train_subsets is empty; expected e.g. 'train-360'")
        splits: Dict[str, List[str]] = {"train": train_subsets, **SETS_OF_SPLIT}

        # Every CSV and every listed file is checked before anything is written.
        sets: Dict[str, List[Utterance]] = {}
        for set_name, subsets in splits.items():
            sets[set_name] = []
            for n in counts:
                for split in subsets:
                    csv_path = require_file(
                        metadata_csv(root, n, args.sample_rate, args.mode, split, mix_type),
                        f"the LibriMix metadata of Libri{n}Mix {split} ({mix_type}, "
                        f"wav{args.sample_rate}, {args.mode})",
                    )
                    sets[set_name].extend(read_metadata(csv_path, n, mix_type, root))

        fs = {"8k": 8000, "16k": 16000}[args.sample_rate]
        # One look at the audio catches a --sample_rate that does not match the tree.
        first = sets["train"][0].mixture
        try:
            found_fs = soundfile.info(first).samplerate
        except RuntimeError as e:
            raise CorpusError(f"{first}: cannot read ({e}); expected a wav file") from e
        if found_fs != fs:
            raise CorpusError(f"{first}: sample rate {found_fs}; expected {fs} (wav{args.sample_rate})")

        with StagedOutput(Path(args.data_dir)) as out:
            for set_name, utts in sets.items():
                silence = None
                if min(len(u.sources) for u in utts) < num_spk:
                    write_silence(out.stage(set_name) / "silence.wav", fs)
                    silence = os.path.join(out.final(set_name), "silence.wav")
                write_data_dir(out.stage(set_name), utts, num_spk, silence=silence)
                print(f"{out.final(set_name)}: {len(utts)} mixtures")
    except CorpusError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
