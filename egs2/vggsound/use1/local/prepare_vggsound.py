#!/usr/bin/env python3
"""VGGSound data preparation for the USE recipe (called by local/data.sh).

Reads (VGGSound, Chen et al., ICASSP 2020, https://www.robots.ox.ac.uk/~vgg/data/vggsound/;
the csv of https://github.com/hche11/VGGSound/blob/master/data/vggsound.csv)::

    <vggsound_dir>/vggsound.csv       # no header; rows  YouTube ID,start seconds,label,train|test
                                      # e.g.  ---g-f_I2yQ,1,people marching,test
                                      #       (labels with commas are quoted)
    <vggsound_dir>/**/<name>.mp4       # the 10-s clips, any folder depth, <name> one of
                                      #   <YTID>_<start:06d>  (the released video archives,
                                      #     e.g. ---g-f_I2yQ_000001.mp4)
                                      #   <YTID>_<start ms>_<end ms>  (the audiosetdl
                                      #     downloader VGGSound's README points to, e.g.
                                      #     video/---g-f_I2yQ_1000_11000.mp4)
                                      #   <YTID>_<start>
    <vggsound_dir>/**/<name>.flac|.wav # audio-only copies, beside or instead of the mp4
                                      #   (audiosetdl: audio/<YTID>_<start ms>_<end ms>.flac)

A clip's audio comes from its flac/wav when there is one, else from the mp4's
audio track (decoded with PyAV); either is resampled to ``--fs`` and written as
wav into the data directory (the mixtures' references). ``video_spk{k}.scp``
names the clip's mp4, or is empty for a clip that has no mp4 (an audio-only
copy: that source has no video cue). An audiosetdl name's end may be any
number (the downloader shortens clips at the end of a video).

Mixtures (our construction; see espnet2_use/data/corpus.py): sources are the
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
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple


from espnet2_use.data.corpus import (
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
AUDIO_EXTS = (".flac", ".wav")
VIDEO_EXTS = (".mp4",)
CLIP_SECONDS = 10  # VGGSound's clips: 10 s from the CSV's start
AUDIOSETDL_STEM = re.compile(r"^(?P<ytid>.+)_(?P<start_ms>\d+)_(?P<end_ms>\d+)$")


class ClipFiles:
    """Finds a VGGSound clip's files under the corpus root, whatever the naming scheme.

    Args:
        root: The folder searched recursively.
    """

    def __init__(self, root: Path) -> None:
        self.index = FileIndex(root, AUDIO_EXTS + VIDEO_EXTS)
        # audiosetdl names: (YTID, start ms) -> stems, whatever the end.
        self.by_start_ms: Dict[Tuple[str, int], List[str]] = {}
        for stem in self.index.stems():
            m = AUDIOSETDL_STEM.match(stem)
            if m:
                key = (m.group("ytid"), int(m.group("start_ms")))
                self.by_start_ms.setdefault(key, []).append(stem)

    def __len__(self) -> int:
        return len(self.index)

    @staticmethod
    def stems(ytid: str, start: int) -> List[str]:
        """The names a clip may have, most likely first (the first is the archives')."""
        ms = start * 1000
        return [f"{ytid}_{start:06d}", f"{ytid}_{ms}_{ms + CLIP_SECONDS * 1000}", f"{ytid}_{start}"]

    def find(self, ytid: str, start: int) -> Tuple[Optional[str], Optional[str]]:
        """(audio file, video file) of a clip; audio is the flac/wav, else the mp4."""
        stems = self.stems(ytid, start) + self.by_start_ms.get((ytid, start * 1000), [])
        video = self.index.find(stems, VIDEO_EXTS)
        return self.index.find(stems, AUDIO_EXTS) or video, video


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
    p.add_argument("--vggsound_dir", required=True,
                   help="folder searched for the clips (mp4, flac, wav)")
    p.add_argument("--csv", default="", help="the clip list (default: <vggsound_dir>/vggsound.csv)")
    p.add_argument("--caption_template", default="the sound of {label}",
                   help="text cue made from the label ({label} is replaced)")
    add_mixture_arguments(p)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Prepare the VGGSound sets; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        root = require_dir(args.vggsound_dir, "the VGGSound folder holding the clips")
        categories = check_mixture_arguments(args)
        if "{label}" not in args.caption_template:
            raise CorpusError(f"--caption_template {args.caption_template!r}; expected a text "
                              f"with {{label}} in it")
        rows = read_vggsound_csv(require_file(Path(args.csv) if args.csv else root / "vggsound.csv",
                                              "VGGSound's vggsound.csv"))
        files = ClipFiles(root)
        clips: Dict[str, List[Clip]] = {s: [] for s in SPLITS}
        missing: List[str] = []
        seen_ids = set()
        for ytid, start, label, split, where in rows:
            audio, video = files.find(ytid, start)
            if audio is None:
                stems = ClipFiles.stems(ytid, start)
                missing.append(f"{where}: expected {root}/**/{stems[0]}.mp4 (or "
                               f"{stems[1]}.mp4, or either name with .flac/.wav)")
                continue
            clip_id = f"{ytid}_{start:06d}"
            if clip_id in seen_ids:
                continue
            seen_ids.add(clip_id)
            clips[split].append(Clip(clip_id=clip_id, audio=audio, labels=(label,),
                                     caption=args.caption_template.format(label=label),
                                     video=video))
        if missing and args.allow_missing != "true":
            raise CorpusError(
                f"{len(missing)} listed clip(s) have no file under {root} ({len(files)} "
                f"audio/video files there); first: " + "; ".join(missing[:3])
                + ". Pass --allow_missing true to skip clips that were not downloaded")
        if missing:
            print(f"skipping {len(missing)} listed clips without a file "
                  f"(list in {os.path.join(args.data_dir, 'local', 'missing_clips.txt')})")
        found = [c for split in SPLITS for c in clips[split]]
        print(f"{len(found)} clips on disk: {sum(1 for c in found if c.video)} with an mp4 "
              f"(video cue), {sum(1 for c in found if c.audio != c.video)} with their audio "
              f"from a flac/wav")

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
