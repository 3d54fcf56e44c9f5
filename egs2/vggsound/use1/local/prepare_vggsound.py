#!/usr/bin/env python3
"""VGGSound data preparation for the USE recipe (called by local/data.sh).

Reads (VGGSound, Chen et al., ICASSP 2020, https://www.robots.ox.ac.uk/~vgg/data/vggsound/;
the csv of https://github.com/hche11/VGGSound/blob/master/data/vggsound.csv)::

    <vggsound_dir>/vggsound.csv       # no header; rows  YouTube ID,start seconds,label,train|test
                                      # e.g.  ---g-f_I2yQ,1,people marching,test
                                      #       (labels with commas are quoted)
    <vggsound_dir>/**/<YTID>_<start:06d>.mp4   # the 10-s clips, e.g. ---g-f_I2yQ_000001.mp4
                                      # (the naming of the released video archives; any
                                      #  folder depth; <YTID>_<start>.mp4 is accepted too)

Audio and video both come from the mp4: its audio track is decoded with PyAV,
resampled to ``--fs`` and written as wav into the data directory (the
mixtures' references); ``video_spk{k}.scp`` names the mp4 itself.

Mixtures (our construction; see espnet2_use/utils/corpus.py): sources are the
loudest ``--segment_sec`` window of a clip at a common RMS times a level
uniform in +-``--level_range`` dB; classes drawn uniformly, one clip each,
all of different classes. ``2mix``/``3mix`` cue every source; ``tse`` cues its
target (spk1) only and adds 1..``--tse_max_interferers`` uncued interferers.
Cues: the label (``label_spk``), the video (``video_spk``) and a text
(``text_spk``). VGGSound has no captions, so the text is the template
``--caption_template`` over the label ("the sound of {label}" by default),
i.e. the text cue carries no more information than the label.

Sets: ``train`` and ``dev`` (a seeded ``--dev_fraction`` of the CSV's train
clips) with all ``--categories``; ``test`` (2mix, 3mix) and ``test_tse`` (tse)
from the CSV's test clips. ``token_list/labels.txt`` lists every label of the
CSV, sorted; ``local/missing_clips.txt`` the clips skipped with
``--allow_missing true`` (empty otherwise).
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple


from espnet2_use.utils.corpus import (
    Clip,
    CorpusError,
    FileIndex,
    MixtureRenderer,
    StagedOutput,
    add_mixture_arguments,
    check_mixture_arguments,
    hold_out,
    num_sources_needed,
    plan_mixtures,
    require_dir,
    require_file,
    stable_seed,
    write_lines,
    write_mixture_sets,
)

SPLITS = ("train", "test")
VIDEO_EXTS = (".mp4",)


def read_vggsound_csv(path: Path) -> List[Tuple[str, int, str, str, str]]:
    """Read ``vggsound.csv`` into (YTID, start, label, split, "<file>: line <i>") rows.

    Raises:
        CorpusError: A row without 4 fields, a start that is not a whole
            number, an empty label, or a split other than train/test.
    """
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        for fields in reader:
            where = f"{path}: line {reader.line_num}"
            if not fields or (fields[0].startswith("#")) or all(not x.strip() for x in fields):
                continue
            if len(fields) != 4:
                raise CorpusError(f"{where}: {len(fields)} fields; expected 4 "
                                  f"(YouTube ID,start seconds,label,train|test)")
            ytid, start, label, split = (x.strip() for x in fields)
            if not start.isdigit():
                raise CorpusError(f"{where}: start {start!r}; expected whole seconds")
            label = " ".join(label.split())
            if not ytid or not label:
                raise CorpusError(f"{where}: empty YouTube ID or label")
            if split not in SPLITS:
                raise CorpusError(f"{where}: split {split!r}; expected train or test")
            rows.append((ytid, int(start), label, split, where))
    if not rows:
        raise CorpusError(f"{path}: no clips listed; expected rows YouTube ID,start,label,split")
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vggsound_dir", required=True, help="folder searched for the mp4 clips")
    p.add_argument("--csv", default="", help="the clip list (default: <vggsound_dir>/vggsound.csv)")
    p.add_argument("--caption_template", default="the sound of {label}",
                   help="text cue made from the label ({label} is replaced)")
    add_mixture_arguments(p)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Prepare the VGGSound sets; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        root = require_dir(args.vggsound_dir, "the VGGSound folder holding the mp4 clips")
        categories = check_mixture_arguments(args)
        if "{label}" not in args.caption_template:
            raise CorpusError(f"--caption_template {args.caption_template!r}; expected a text "
                              f"with {{label}} in it")
        rows = read_vggsound_csv(require_file(Path(args.csv) if args.csv else root / "vggsound.csv",
                                              "VGGSound's vggsound.csv"))
        index = FileIndex(root, VIDEO_EXTS)
        clips = {s: [] for s in SPLITS}  # type: dict
        missing: List[str] = []
        seen_ids = set()
        for ytid, start, label, split, where in rows:
            stems = [f"{ytid}_{start:06d}", f"{ytid}_{start}"]
            video = index.find(stems, VIDEO_EXTS)
            if video is None:
                missing.append(f"{where}: expected {root}/**/{stems[0]}.mp4")
                continue
            clip_id = f"{ytid}_{start:06d}"
            if clip_id in seen_ids:
                continue
            seen_ids.add(clip_id)
            clips[split].append(Clip(clip_id=clip_id, audio=video, labels=(label,),
                                     caption=args.caption_template.format(label=label),
                                     video=video))
        if missing and args.allow_missing != "true":
            raise CorpusError(
                f"{len(missing)} listed clip(s) have no video file under {root}; first: "
                + "; ".join(missing[:3])
                + ". Pass --allow_missing true to skip clips that were not downloaded")
        if missing:
            print(f"skipping {len(missing)} listed clips without a video "
                  f"(list in {os.path.join(args.data_dir, 'local', 'missing_clips.txt')})")

        train_pool, dev_pool = hold_out(clips["train"], args.dev_fraction,
                                        stable_seed(args.seed, "dev"))
        pools = {"train": train_pool, "dev": dev_pool, "test": clips["test"]}
        ss_cats = [c for c in categories if c != "tse"]
        layout = [("train", "train", categories, args.num_train_mix),
                  ("dev", "dev", categories, args.num_dev_mix)]
        if ss_cats:
            layout.append(("test", "test", ss_cats, args.num_test_mix))
        if "tse" in categories:
            layout.append(("test_tse", "test", ["tse"], args.num_test_mix))

        # Every mixture is decided before any audio is decoded or anything written.
        plans = {}
        for set_name, pool_name, cats, num in layout:
            plans[set_name] = []
            for cat in cats:
                plans[set_name] += plan_mixtures(
                    pools[pool_name], cat, num, stable_seed(args.seed, set_name, cat),
                    utt_prefix=pool_name, level_range_db=args.level_range,
                    max_interferers=args.tse_max_interferers,
                    pool_name=f"VGGSound {pool_name} clips ({len(pools[pool_name])} on disk)")

        renderer = MixtureRenderer(args.fs, args.segment_sec)
        num_spk = num_sources_needed(categories, args.tse_max_interferers)
        with StagedOutput(Path(args.data_dir)) as out:
            write_mixture_sets(out, plans, renderer, num_spk, nj=args.nj)
            write_lines(out.stage("token_list/labels.txt"), sorted({r[2] for r in rows}))
            # Written even when empty, so no list of an earlier run outlives it.
            write_lines(out.stage("local/missing_clips.txt"), missing)
    except CorpusError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
