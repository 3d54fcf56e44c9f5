#!/usr/bin/env python3
"""AudioSet data preparation for the USE recipe (called by local/data.sh).

Reads (https://research.google.com/audioset/download.html, "CSV format")::

    <meta_dir>/balanced_train_segments.csv   # 3 comment lines, the last naming
    <meta_dir>/eval_segments.csv             #   "# YTID, start_seconds, end_seconds, positive_labels"
                                             # rows: --PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"
    <meta_dir>/class_labels_indices.csv      # index,mid,display_name
    <audioset_dir>/**/<clip>.{wav,flac}      # the downloaded 10-s clips, any folder depth
    <audioset_dir>/**/<clip>.mp4             # optional video of a clip
    <meta_dir>/unbalanced_train_segments.csv # optional, same format: where AudioCaps'
                                             #   clips are listed (read with --audiocaps_dir)
    <audiocaps_dir>/{train,val,test}.csv     # optional AudioCaps captions
                                             # (audiocap_id,youtube_id,start_time,caption;
                                             #  github.com/cdjkim/audiocaps, dataset/)

A clip file's name (without extension) is one of, in this order of preference:
``<YTID>_<start>`` (start in whole seconds, e.g. ``--PJHxphWEs_30``),
``<YTID>_<start:.3f>``, ``<YTID>_<start:.1f>``, ``<YTID>_<start in ms>``,
``<YTID>_<start:06d>``, ``<YTID>_<start>_<end>`` (whole seconds, seconds with 3
decimals, or ms; ``<YTID>_<start ms>_<end ms>`` is how the audiosetdl downloader
names its ``audio/*.flac`` and ``video/*.mp4``), ``Y<YTID>``,
``Y<YTID>_<start:.3f>_<end:.3f>``, ``<YTID>``. Audio comes from the wav/flac, or
from the mp4 when there is none.

Captions (``--audiocaps_dir``): AudioCaps draws its clips from AudioSet's
*unbalanced* segment list, so they are not among the balanced/eval clips. A
clip of the train/test CSVs that AudioCaps covers gets its caption; besides,
AudioCaps' clips listed in ``--unbalanced_csv`` (default:
``unbalanced_train_segments.csv`` in ``--meta_dir`` when it is there) whose
file is under ``--audioset_dir`` join the clips: AudioCaps' train and val clips
the training clips, its test clips the test clips (their labels from that CSV).
AudioCaps clips without a file are skipped (not an error). The script prints
how many AudioCaps clips it found and, per set, how many mixtures got a
caption, and stops when captions were asked for and no clip on disk has one.

Mixtures (our construction; the paper does not publish its lists): sources are
the loudest ``--segment_sec`` window (AudioSet labels are clip-level) of clips
resampled to ``--fs``, scaled to a common RMS and then to a level uniform in
+-``--level_range`` dB, and summed. Classes are drawn uniformly, one clip per
class, and the clips of a mixture share no label. A clip's class (its
``label_spk``) is its rarest positive label over both CSVs, which is the most
specific one since AudioSet also tags every ancestor class. Categories:
``2mix``/``3mix`` give cues (label, AudioCaps caption when there is one, the
clip's mp4 when there is one) to all sources; ``tse`` has a cued target (spk1)
and 1..``--tse_max_interferers`` interferers without cues.

Seen/unseen split: classes listed in ``--unseen_classes`` (display names or
mids, one per line) or else a seeded ``--unseen_fraction`` of the classes of the
test CSV's clips are unseen. Training uses clips with no unseen label only.

Sets: ``train`` and ``dev`` (a seeded ``--dev_fraction`` of the training clips)
with all ``--categories``; ``test_seen``/``test_unseen`` (2mix, 3mix) and
``test_seen_tse``/``test_unseen_tse`` (tse) from the test CSV. Also
``token_list/labels.txt`` (all display names in index order),
``local/unseen_classes.txt`` and ``local/missing_clips.txt`` (segments skipped
with ``--allow_missing true``; empty otherwise).
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple


from espnet2_use.data.corpus import (
    Clip,
    CorpusError,
    FileIndex,
    MixtureRenderer,
    add_mixture_arguments,
    check_mixture_arguments,
    StagedOutput,
    hold_out,
    num_sources_needed,
    plan_mixtures,
    read_csv_rows,
    require_dir,
    require_file,
    stable_seed,
    write_lines,
    write_mixture_sets,
)

SEGMENT_HEADER = ["YTID", "start_seconds", "end_seconds", "positive_labels"]
AUDIOCAPS_COLUMNS = ["audiocap_id", "youtube_id", "start_time", "caption"]
AUDIOCAPS_SPLITS = ("train", "val", "test")
UNBALANCED_CSV = "unbalanced_train_segments.csv"
AUDIO_EXTS = (".wav", ".flac")
VIDEO_EXTS = (".mp4",)


class Segment:
    """One row of an AudioSet segments CSV."""

    def __init__(self, ytid: str, start: float, end: float, mids: List[str], where: str) -> None:
        self.ytid, self.start, self.end, self.mids, self.where = ytid, start, end, mids, where

    @property
    def clip_id(self) -> str:
        return f"{self.ytid}_{_seconds(self.start)}"


def _seconds(t: float) -> str:
    """Seconds as in a file name: ``30`` for 30.0, ``30.5`` for 30.5."""
    return str(int(round(t))) if abs(t - round(t)) < 1e-6 else f"{t:g}"


def read_class_labels(path: Path) -> "Dict[str, str]":
    """Read ``class_labels_indices.csv`` into mid -> display name (index order).

    A display name that occurs twice gets its mid appended, so that every
    label name stays unique in labels.txt.

    Raises:
        CorpusError: Wrong columns, or indices not 0, 1, 2, ... in order.
    """
    names: Dict[str, str] = {}
    used = set()
    for i, (line, row) in enumerate(read_csv_rows(path, ["index", "mid", "display_name"])):
        if row["index"] != str(i):
            raise CorpusError(f"{path}: line {line}: index {row['index']}; expected {i} "
                              f"(indices in order from 0)")
        name = " ".join(row["display_name"].split())
        if not name:
            raise CorpusError(f"{path}: line {line}: empty display_name")
        if name in used:
            name = f"{name} ({row['mid']})"
        used.add(name)
        names[row["mid"]] = name
    if not names:
        raise CorpusError(f"{path}: no classes listed; expected index,mid,display_name rows")
    return names


def read_segments(path: Path, known_mids: Dict[str, str],
                  wanted: Optional[Set[str]] = None) -> List[Segment]:
    """Read an AudioSet segments CSV (``balanced_train_segments.csv`` etc.).

    Args:
        path: The CSV.
        known_mids: Mid -> display name of ``class_labels_indices.csv``.
        wanted: YouTube ids to read, or None for all; other rows are skipped
            unparsed (the unbalanced list has two million of them), and a list
            holding none of them is no error.

    Raises:
        CorpusError: No ``# YTID, start_seconds, end_seconds, positive_labels``
            header comment, a row without 4 fields, a bad number, or a label
            mid that ``class_labels_indices.csv`` does not list.
    """
    segments: List[Segment] = []
    header_seen = False
    with open(path, newline="", encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if line.startswith("#"):
                cols = [c.strip() for c in line[1:].split(",")]
                if cols == SEGMENT_HEADER:
                    header_seen = True
                continue
            if not line.strip():
                continue
            where = f"{path}: line {line_no}"
            if not header_seen:
                raise CorpusError(f"{where}: data before the header comment; expected the "
                                  f"comment line '# {', '.join(SEGMENT_HEADER)}' first")
            if wanted is not None and line.split(",", 1)[0].strip() not in wanted:
                continue
            fields = next(csv.reader([line], skipinitialspace=True))
            if len(fields) != 4:
                raise CorpusError(f"{where}: {len(fields)} fields; expected 4 "
                                  f"({', '.join(SEGMENT_HEADER)})")
            ytid, start_s, end_s, labels = (x.strip() for x in fields)
            try:
                start, end = float(start_s), float(end_s)
            except ValueError:
                raise CorpusError(f"{where}: start/end {start_s!r}, {end_s!r}; expected "
                                  f"numbers of seconds") from None
            mids = [m.strip() for m in labels.split(",") if m.strip()]
            if not ytid or not mids:
                raise CorpusError(f"{where}: empty YTID or positive_labels")
            for m in mids:
                if m not in known_mids:
                    raise CorpusError(f"{where}: label {m} is not in class_labels_indices.csv")
            segments.append(Segment(ytid, start, end, mids, where))
    if not header_seen:
        raise CorpusError(f"{path}: no header comment '# {', '.join(SEGMENT_HEADER)}'; "
                          f"expected an AudioSet segments CSV")
    if not segments and wanted is None:
        raise CorpusError(f"{path}: no segments listed")
    return segments


class AudioCaps:
    """AudioCaps' captions by (YouTube id, start second), and each clip's split.

    The first caption of a clip in train.csv, val.csv, test.csv order wins
    (val and test have five per clip); a clip's split is the first CSV naming it.

    Args:
        audiocaps_dir: AudioCaps' ``dataset/`` folder.

    Raises:
        CorpusError: None of the three CSVs exists, one has wrong columns or a
            start_time that is not a number, or no CSV lists any caption.
    """

    def __init__(self, audiocaps_dir: Path) -> None:
        self.dir = audiocaps_dir
        found = [audiocaps_dir / f"{s}.csv" for s in AUDIOCAPS_SPLITS
                 if (audiocaps_dir / f"{s}.csv").is_file()]
        if not found:
            raise CorpusError(f"{audiocaps_dir}: none of train.csv, val.csv, test.csv; expected "
                              f"AudioCaps' CSVs ({','.join(AUDIOCAPS_COLUMNS)})")
        self.captions: Dict[Tuple[str, int], str] = {}
        self.split: Dict[Tuple[str, int], str] = {}
        for path in found:
            for line, row in read_csv_rows(path, AUDIOCAPS_COLUMNS):
                try:
                    key = (row["youtube_id"], int(round(float(row["start_time"]))))
                except ValueError:
                    raise CorpusError(f"{path}: line {line}: start_time {row['start_time']!r}; "
                                      f"expected seconds") from None
                caption = " ".join(row["caption"].split())
                if caption:
                    self.captions.setdefault(key, caption)
                    self.split.setdefault(key, path.stem)
        if not self.captions:
            raise CorpusError(f"{audiocaps_dir}: {', '.join(p.name for p in found)} list no "
                              f"caption; expected rows {','.join(AUDIOCAPS_COLUMNS)}")

    def caption(self, seg: "Segment") -> Optional[str]:
        """The caption of a segment's clip, or None."""
        return self.captions.get(caption_key(seg))


def caption_key(seg: Segment) -> Tuple[str, int]:
    """How AudioCaps names a segment's clip: (YouTube id, start in whole seconds)."""
    return seg.ytid, int(round(seg.start))


def clip_stems(seg: Segment) -> List[str]:
    """File names (without extension) a downloaded clip of ``seg`` may have."""
    y, s, e = seg.ytid, seg.start, seg.end
    si, ei = int(round(s)), int(round(e))
    ms, me = int(round(s * 1000)), int(round(e * 1000))
    stems = [f"{y}_{si}", f"{y}_{s:.3f}", f"{y}_{s:.1f}", f"{y}_{ms}", f"{y}_{si:06d}",
             f"{y}_{si}_{ei}", f"{y}_{s:.3f}_{e:.3f}", f"{y}_{ms}_{me}",
             f"Y{y}", f"Y{y}_{s:.3f}_{e:.3f}", y]
    return list(dict.fromkeys(stems))


def read_unseen_file(path: Path, names: Dict[str, str]) -> List[str]:
    """Display names of the classes listed (by name or mid) in ``path``."""
    by_name = {v: v for v in names.values()}
    out = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            entry = " ".join(line.split())
            if not entry or entry.startswith("#"):
                continue
            name = names.get(entry) or by_name.get(entry)
            if name is None:
                raise CorpusError(f"{path}: line {line_no}: {entry!r} is neither a mid nor a "
                                  f"display_name of class_labels_indices.csv")
            out.append(name)
    if not out:
        raise CorpusError(f"{path}: no classes listed; expected one display name or mid per line")
    return sorted(set(out))


def find_unbalanced_csv(meta: Path, name: str) -> Optional[Path]:
    """The segments CSV that lists AudioCaps' clips, or None when there is none.

    Args:
        meta: The folder of the AudioSet CSVs.
        name: ``--unbalanced_csv``: a file name in ``meta`` or a path, or "" for
            ``unbalanced_train_segments.csv`` in ``meta`` if it is there.

    Raises:
        CorpusError: A CSV named explicitly does not exist.
    """
    if not name:
        default = meta / UNBALANCED_CSV
        return default.resolve() if default.is_file() else None
    return require_file(_csv_path(meta, name), "an AudioSet segments CSV listing AudioCaps' "
                        "clips (--unbalanced_csv)")


def audiocaps_segments(audiocaps: AudioCaps, unbalanced: Optional[Path],
                       listed: Sequence[Segment], names: Dict[str, str]
                       ) -> Tuple[List[Segment], List[Segment]]:
    """AudioCaps' clips that the train/test CSVs do not list, from ``unbalanced``.

    Args:
        audiocaps: The captions.
        unbalanced: The segments CSV to look the clips up in (their labels), or None.
        listed: The segments of the train and test CSVs (their clips are used anyway).
        names: Mid -> display name.

    Returns:
        (segments of AudioCaps' train and val clips, segments of its test clips).
    """
    if unbalanced is None:
        return [], []
    have = {caption_key(seg) for seg in listed}
    wanted = {key for key in audiocaps.captions if key not in have}
    train: List[Segment] = []
    test: List[Segment] = []
    done: Set[Tuple[str, int]] = set()
    for seg in read_segments(unbalanced, names, wanted={y for y, _ in wanted}):
        key = caption_key(seg)
        if key in wanted and key not in done:
            done.add(key)
            (test if audiocaps.split[key] == "test" else train).append(seg)
    return train, test


def report_captions(audiocaps: AudioCaps, unbalanced: Optional[Path], num_unbalanced: int,
                    num_not_on_disk: int, clips: Sequence[Clip], csv_names: Sequence[str]) -> None:
    """Print where AudioCaps' clips were found; stop when no clip on disk has a caption.

    Args:
        audiocaps: The captions.
        unbalanced: The CSV AudioCaps' other clips were looked up in, or None.
        num_unbalanced: How many AudioCaps clips that CSV listed.
        num_not_on_disk: How many of those have no file.
        clips: Every clip on disk (training and test).
        csv_names: The train and test CSVs, for the message.

    Raises:
        CorpusError: None of the clips has a caption.
    """
    with_caption = sum(1 for c in clips if c.caption)
    if unbalanced is None:
        where = (f"no {UNBALANCED_CSV} in --meta_dir (AudioCaps' clips are listed there) and "
                 f"no --unbalanced_csv")
    else:
        where = (f"{num_unbalanced} listed in {unbalanced}, {num_not_on_disk} of them "
                 f"without a file (skipped)")
    print(f"AudioCaps: {len(audiocaps.captions)} captioned clips in {audiocaps.dir}; "
          f"{with_caption} clips on disk have a caption; {where}")
    if with_caption == 0:
        raise CorpusError(
            f"{audiocaps.dir}: no clip on disk has an AudioCaps caption: none of AudioCaps' "
            f"{len(audiocaps.captions)} clips is in {' or '.join(csv_names)} with a file, and "
            f"{where}; expected captioned clips. AudioCaps draws its clips from AudioSet's "
            f"{UNBALANCED_CSV}: put that CSV in --meta_dir (or name it with --unbalanced_csv) "
            f"and the clips it lists under --audioset_dir, or leave out --audiocaps_dir")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--audioset_dir", required=True, help="folder searched for the clips")
    p.add_argument("--meta_dir", default=None, help="folder of the CSVs (default: --audioset_dir)")
    p.add_argument("--train_csv", default="balanced_train_segments.csv")
    p.add_argument("--test_csv", default="eval_segments.csv")
    p.add_argument("--class_labels_csv", default="class_labels_indices.csv")
    p.add_argument("--audiocaps_dir", default="", help="AudioCaps dataset/ folder (optional)")
    p.add_argument("--unbalanced_csv", default="",
                   help=f"segments CSV listing AudioCaps' clips, read with --audiocaps_dir "
                        f"(default: {UNBALANCED_CSV} in --meta_dir when it is there)")
    p.add_argument("--unseen_classes", default="", help="file of unseen classes (optional)")
    p.add_argument("--unseen_fraction", type=float, default=0.1,
                   help="share of the test clips' classes made unseen when no file is given")
    p.add_argument("--max_labels_per_clip", type=int, default=0,
                   help="use only clips with at most this many labels (0: no limit)")
    add_mixture_arguments(p)
    return p


def _csv_path(meta_dir: Path, name: str) -> Path:
    return Path(name) if os.path.isabs(name) else meta_dir / name


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Prepare the AudioSet sets; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        root = require_dir(args.audioset_dir, "the AudioSet folder holding the downloaded clips")
        categories = check_mixture_arguments(args)
        if not 0 <= args.unseen_fraction < 1:
            raise CorpusError(f"--unseen_fraction {args.unseen_fraction}; expected 0 <= x < 1")
        meta = require_dir(args.meta_dir or root, "the folder of the AudioSet CSVs")
        names = read_class_labels(require_file(_csv_path(meta, args.class_labels_csv),
                                               "AudioSet's class_labels_indices.csv"))
        train_csv = require_file(_csv_path(meta, args.train_csv),
                                 "an AudioSet segments CSV for training")
        test_csv = require_file(_csv_path(meta, args.test_csv),
                                "an AudioSet segments CSV for testing")
        train_segs = read_segments(train_csv, names)
        test_segs = read_segments(test_csv, names)
        audiocaps = (AudioCaps(require_dir(args.audiocaps_dir, "AudioCaps' dataset folder"))
                     if args.audiocaps_dir else None)
        unseen_file = (require_file(args.unseen_classes, "a list of unseen classes")
                       if args.unseen_classes else None)
        caps_train_segs: List[Segment] = []
        caps_test_segs: List[Segment] = []
        unbalanced: Optional[Path] = None
        if audiocaps is not None:
            unbalanced = find_unbalanced_csv(meta, args.unbalanced_csv)
            if unbalanced is not None and unbalanced not in (train_csv, test_csv):
                caps_train_segs, caps_test_segs = audiocaps_segments(
                    audiocaps, unbalanced, train_segs + test_segs, names)

        # Rarest label = most specific one (AudioSet also tags every ancestor).
        freq: Dict[str, int] = {}
        for seg in train_segs + test_segs + caps_train_segs + caps_test_segs:
            for m in seg.mids:
                freq[m] = freq.get(m, 0) + 1

        index = FileIndex(root, AUDIO_EXTS + VIDEO_EXTS)
        missing: List[str] = []
        caps_missing: List[str] = []

        def to_clips(segs: List[Segment], missing: List[str]) -> List[Clip]:
            clips, ids = [], set()
            for seg in segs:
                stems = clip_stems(seg)
                video = index.find(stems, VIDEO_EXTS)
                audio = index.find(stems, AUDIO_EXTS) or video
                if audio is None:
                    missing.append(f"{seg.where}: {seg.ytid} {seg.start:.3f}: expected "
                                   f"{root}/**/{stems[0]}.wav (or .flac/.mp4)")
                    continue
                if seg.clip_id in ids:
                    continue  # a segment listed twice in one CSV
                ids.add(seg.clip_id)
                if args.max_labels_per_clip and len(seg.mids) > args.max_labels_per_clip:
                    continue
                mids = sorted(seg.mids, key=lambda m: (freq[m], seg.mids.index(m)))
                clips.append(Clip(
                    clip_id=seg.clip_id, audio=audio,
                    labels=tuple(names[m] for m in mids),
                    caption=audiocaps.caption(seg) if audiocaps is not None else None,
                    video=video,
                ))
            return clips

        train_clips = to_clips(train_segs, missing) + to_clips(caps_train_segs, caps_missing)
        test_clips = to_clips(test_segs, missing) + to_clips(caps_test_segs, caps_missing)
        if audiocaps is not None:
            report_captions(audiocaps, unbalanced, len(caps_train_segs) + len(caps_test_segs),
                            len(caps_missing), train_clips + test_clips,
                            [args.train_csv, args.test_csv])
        if missing and args.allow_missing != "true":
            raise CorpusError(
                f"{len(missing)} listed segment(s) have no audio file under {root}; first: "
                + "; ".join(missing[:3])
                + ". Pass --allow_missing true to skip segments that were not downloaded")
        if missing:
            print(f"skipping {len(missing)} listed segments without audio "
                  f"(list in {os.path.join(args.data_dir, 'local', 'missing_clips.txt')})")

        if unseen_file is not None:
            unseen = read_unseen_file(unseen_file, names)
        else:
            candidates = sorted({c.labels[0] for c in test_clips})
            n = int(round(args.unseen_fraction * len(candidates)))
            if args.unseen_fraction > 0:
                n = max(n, 1)
            pick = stable_seed(args.seed, "unseen").permutation(len(candidates))[:n]
            unseen = sorted(candidates[int(i)] for i in pick)
        unseen_set = set(unseen)
        print(f"{len(unseen)} unseen classes (list in "
              f"{os.path.join(args.data_dir, 'local', 'unseen_classes.txt')})")

        seen_train = [c for c in train_clips if not unseen_set.intersection(c.labels)]
        train_pool, dev_pool = hold_out(seen_train, args.dev_fraction, stable_seed(args.seed, "dev"))
        pools = {
            "train": train_pool,
            "dev": dev_pool,
            "test_seen": [c for c in test_clips if not unseen_set.intersection(c.labels)],
            "test_unseen": [c for c in test_clips if c.labels[0] in unseen_set],
        }
        ss_cats = [c for c in categories if c != "tse"]
        layout: List[Tuple[str, str, List[str], int]] = [
            ("train", "train", categories, args.num_train_mix),
            ("dev", "dev", categories, args.num_dev_mix),
        ]
        # With no unseen class (--unseen_fraction 0) there is no unseen test set.
        for kind in ("seen", "unseen") if unseen else ("seen",):
            if ss_cats:
                layout.append((f"test_{kind}", f"test_{kind}", ss_cats, args.num_test_mix))
            if "tse" in categories:
                layout.append((f"test_{kind}_tse", f"test_{kind}", ["tse"], args.num_test_mix))

        # Every mixture is decided before any audio is read or anything written.
        plans = {}
        for set_name, pool_name, cats, num in layout:
            plans[set_name] = []
            for cat in cats:
                plans[set_name] += plan_mixtures(
                    pools[pool_name], cat, num, stable_seed(args.seed, set_name, cat),
                    utt_prefix=pool_name, level_range_db=args.level_range,
                    max_interferers=args.tse_max_interferers,
                    pool_name=f"{pool_name} clips ({len(pools[pool_name])} with audio)")

        renderer = MixtureRenderer(args.fs, args.segment_sec)
        num_spk = num_sources_needed(categories, args.tse_max_interferers)
        with StagedOutput(Path(args.data_dir)) as out:
            write_mixture_sets(out, plans, renderer, num_spk, nj=args.nj)
            write_lines(out.stage("token_list/labels.txt"), names.values())
            write_lines(out.stage("local/unseen_classes.txt"), unseen)
            # Written even when empty, so no list of an earlier run outlives it.
            write_lines(out.stage("local/missing_clips.txt"), missing)
    except CorpusError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
