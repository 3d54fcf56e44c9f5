#!/usr/bin/env python3
"""Build the debian_sounds corpus from the fetched Debian packages (recorded sounds).

Pipeline (every step sorted and seeded: the same cache and options give the same files):

1. Files: every sound file of every pinned package in ``--cache`` (see
   ``debian_packages.py``), classified by the hand-written map (``class_map.py``); files
   no rule classifies are left out. A reserved package in the cache stops the build
   before anything is read.
2. Clips: each file is read (ogg/wav/flac, any rate and channel count -> mono at
   ``--fs``), trimmed to where it sounds, and a long recording is cut into up to
   ``--max_segments`` segments of at most ``--max_dur`` seconds (``recorded_clips.py``).
   Silent files and clips shorter than ``--min_clip_dur`` are dropped, then exact and
   near-duplicate clips of a class (the first in path order is kept).
3. Splits: the test pool is held out by *group*: a voice (a language's speaker, a voice
   pack, a game unit's voice, a drum kit) where the class map names one, else the
   recording, so no test clip, recording or voice is ever heard in training or
   validation. Groups go to test or to train+valid greedily (groups of small classes
   first, larger groups first) towards ``--test_frac`` of each class's clips, every
   class first getting 2 clips in test and 4 in train+valid. Valid then takes whole
   recordings of the train+valid groups (``--valid_frac`` of a class's clips, at least
   2), single clips of a recording only when a class has too few recordings: like
   mini_use's valid pool, it shares voices with training but no clip. A class that
   still lacks 2 clips in a split is dropped (listed in the statistics).
4. Cues per clip: the label; a caption drawn from the class's phrasings, with the
   file name's own words where it has them (``class_map.caption``); a picture of the
   source where the package ships one (GCompris's farm-animal photos), else none; the
   audio example is chosen per mixture by the mini_use mixer: another clip of the class
   in the same split, from another recording where there is one.
5. Mixtures: 1-K sources (train, valid, test_ss) and a TSE set (2-K sources, spk1 the
   target with cues), cut and mixed by mini_use's mixer (``synth_corpus.build_set``), in
   mini_use's data layout (``egs2/TEMPLATE/use1/README.md``).

Also written: ``token_list/labels.txt`` (the kept classes), ``pool/<split>/clips.jsonl``
(per clip: package, source path, segment, voice, recording, words, caption, picture),
``licences/<package>_<version>.copyright`` (each package's licence as shipped), and
``corpus_stats.json`` (classes, clips, clips per split and class, voices per split,
what was dropped and why, the packages with their versions).
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import zlib
from dataclasses import asdict, dataclass
from io import BytesIO
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[2] / "mini_use" / "use1" / "local"))
import synth_corpus  # noqa: E402  (mini_use's mixer and data writer)
from class_map import CLASSES, Match, caption, classify  # noqa: E402
from debian_packages import PINNED, MARKER, ReservedPackageError, check_not_reserved, is_reserved, read_marker  # noqa: E402
from recorded_clips import ClipError, PackageFiles, cut_segments, fingerprint, is_near_duplicate, read_audio  # noqa: E402

SPLITS: Tuple[str, ...] = ("train", "valid", "test")
ANALYSIS_FS = 8000  # trimming, cutting and duplicates are decided at this rate, whatever --fs
MIN_PER_SPLIT = 2  # clips of a class in every split (the audio example is another clip)


@dataclass
class RecordedClip(synth_corpus.PoolClip):
    """A pool clip cut from a recording of a Debian package.

    Args (besides PoolClip's; ``mp4`` is the picture's path, "" when there is none):
        package: the Debian package.
        source: the file's path in the package (``bundle.rcc!inner`` for bundled files).
        segment: index of the segment within the recording.
        start, stop: the segment's samples in the recording (at ``--fs``).
        recording: ``package:source``.
        voice: the voice / kit of the class map, "" when none.
        group: the unit of the split (the voice, else the recording).
        words: the file name's own words ("" when none).
    """

    package: str = ""
    source: str = ""
    segment: int = 0
    start: int = 0
    stop: int = 0
    recording: str = ""
    voice: str = ""
    group: str = ""
    words: str = ""


@dataclass
class Candidate:
    """A classified file before reading."""

    package: str
    version: str
    root: str
    source: str
    match: Match


def get_parser() -> argparse.ArgumentParser:
    """mini_use's options (mixing, sizes) plus those of the recorded corpus."""
    parser = synth_corpus.get_parser()
    parser.description = __doc__.split("\n")[0]
    parser.add_argument("--cache", required=True, help="the fetched packages (downloads/debian)")
    parser.add_argument("--packages", nargs="+", default=None, help="the packages to build from (default: every pinned one)")
    parser.add_argument("--max_segments", type=int, default=6, help="most segments cut from one long recording")
    parser.add_argument("--test_frac", type=float, default=0.2, help="share of each class's clips in the test pool")
    parser.add_argument("--valid_frac", type=float, default=0.1, help="share of each class's clips in the valid pool")
    parser.set_defaults(min_clip_dur=0.08, min_src_dur=0.08)
    return parser


# ----------------------------------------------------------------------------
# Files and clips
# ----------------------------------------------------------------------------
def find_packages(cache: Path, names: Sequence[str]) -> Dict[str, Tuple[str, Path]]:
    """The fetched packages: name -> (version, folder).

    Raises:
        ReservedPackageError: a reserved package is in the cache (it is never read).
        FileNotFoundError: a pinned package is not fetched (naming its folder pattern).
    """
    present = [p.name.split("_", 1)[0] for p in cache.iterdir() if p.is_dir()] if cache.is_dir() else []
    check_not_reserved([n for n in present if is_reserved(n)], f"found in {cache}")
    out = {}
    for name in names:
        check_not_reserved([name])
        found = None
        for folder in sorted(cache.glob(f"{name}_*")):
            marker = read_marker(folder)
            if marker and marker.get("name") == name:
                found = (marker["version"], folder)
        if found is None:
            raise FileNotFoundError(f"{cache}/{name}_<version>/{MARKER}: package {name} is not fetched (run local/data.sh, which fetches it)")
        out[name] = found
    return out


def list_candidates(packages: Dict[str, Tuple[str, Path]]) -> Tuple[List[Candidate], Dict[str, int]]:
    """Every classified file, sorted by (package, path), and the count of files left out per package."""
    candidates, left_out = [], {}
    for name, (version, root) in sorted(packages.items()):
        files = PackageFiles(root).list()
        left_out[name] = 0
        for rel in files:
            match = classify(name, rel)
            if match is None:
                left_out[name] += 1
            else:
                candidates.append(Candidate(name, version, str(root), rel, match))
    return candidates, left_out


@dataclass
class Segment:
    """One segment of a recording: its bounds at the analysis rate, its samples at ``--fs``.

    Args:
        start, stop: bounds in samples at ANALYSIS_FS.
        samples: int16 samples at ``--fs`` [T].
        fingerprint: of the segment at ANALYSIS_FS (for near duplicates).
        length: stop - start.
        digest: sha256 of the segment's int16 samples at ANALYSIS_FS (exact copies).
    """

    start: int
    stop: int
    samples: np.ndarray
    fingerprint: np.ndarray
    length: int
    digest: str


def read_candidate(job: Tuple[Candidate, int, float, float, int]) -> Tuple[List[Segment], str]:
    """Read, trim and cut one file (worker).

    Trimming, cutting and the duplicate fingerprints work at ANALYSIS_FS whatever
    ``--fs``, so the corpus at 8 kHz and at 16 kHz holds the same clips in the same
    splits; the samples are then taken at ``--fs`` over the same stretch.

    Returns:
        (segments, "") or ([], reason) when nothing is kept.
    """
    cand, fs, min_dur, max_dur, max_segments = job
    files = PackageFiles(Path(cand.root))
    name = f"{cand.package}:{cand.source}"
    data = files.read_bytes(cand.source)
    try:
        waves = {rate: read_audio(data, rate, name) for rate in sorted({ANALYSIS_FS, fs})}
    except ClipError as err:
        return [], f"unreadable: {err}"
    for rate, wave in waves.items():
        peak = float(np.max(np.abs(wave)))
        if peak > 1.0:  # decoded float beyond full scale (some ogg): keep the shape, not the clip
            waves[rate] = wave / peak
    probe = waves[ANALYSIS_FS]
    bounds = cut_segments(probe, ANALYSIS_FS, min_dur, max_dur, max_segments)
    if not bounds:
        return [], "silent or too short"
    out = []
    for start, stop in bounds:
        probe_q = synth_corpus._to_int16(probe[start:stop])
        lo, hi = start * fs // ANALYSIS_FS, min(len(waves[fs]), stop * fs // ANALYSIS_FS)
        out.append(Segment(
            start=start, stop=stop, samples=synth_corpus._to_int16(waves[fs][lo:hi]),
            fingerprint=fingerprint(probe_q.astype(np.float64) / synth_corpus.INT16_SCALE, ANALYSIS_FS),
            length=stop - start, digest=hashlib.sha256(probe_q.tobytes()).hexdigest(),
        ))
    return out, ""


def drop_duplicates(clips: List[RecordedClip], segments: Dict[str, Segment]) -> Tuple[List[RecordedClip], Dict[str, str]]:
    """Drop exact copies (any class) and near duplicates within a class; the first is kept.

    Returns:
        The kept clips (order kept) and dropped clip id -> the clip it duplicates.
    """
    kept: List[RecordedClip] = []
    dropped: Dict[str, str] = {}
    by_hash: Dict[str, str] = {}
    prints: Dict[str, List[Tuple[np.ndarray, int, str]]] = {}
    for clip in clips:
        seg = segments[clip.clip_id]
        if seg.digest in by_hash:
            dropped[clip.clip_id] = by_hash[seg.digest]
            continue
        twin = next((cid for other, n, cid in prints.get(clip.label, []) if is_near_duplicate(seg.fingerprint, seg.length, other, n)), None)
        if twin is not None:
            dropped[clip.clip_id] = twin
            continue
        by_hash[seg.digest] = clip.clip_id
        prints.setdefault(clip.label, []).append((seg.fingerprint, seg.length, clip.clip_id))
        kept.append(clip)
    return kept, dropped


def assign_splits(clips: List[RecordedClip], seed: int, test_frac: float, valid_frac: float) -> Dict[str, str]:
    """Clip id -> split (see the module docstring, step 3).

    Test is held out by group (voice, else recording); valid takes whole recordings of
    the remaining groups where it can (a valid clip may share a voice with training, as
    mini_use's valid pool shares its variants), single clips of a recording only when a
    class has too few recordings.
    """
    totals: Dict[str, int] = {}
    per_group: Dict[str, Dict[str, int]] = {}
    for clip in clips:
        per_group.setdefault(clip.group, {}).setdefault(clip.label, 0)
        per_group[clip.group][clip.label] += 1
        totals[clip.label] = totals.get(clip.label, 0) + 1
    rng = np.random.default_rng([seed, 23])
    tie = {g: float(t) for g, t in zip(sorted(per_group), rng.random(len(per_group)))}
    # Groups of small classes first (each side gets its minimum early), larger groups first.
    order = sorted(per_group, key=lambda g: (min(totals[c] for c in per_group[g]) > 40, -sum(per_group[g].values()), tie[g]))
    need = {"test": MIN_PER_SPLIT, "trainval": 2 * MIN_PER_SPLIT}
    share = {"test": test_frac, "trainval": 1.0 - test_frac}
    current = {c: {"test": 0, "trainval": 0} for c in totals}
    side_of: Dict[str, str] = {}
    for group in order:
        counts = per_group[group]
        size = sum(counts.values())
        scores = {}
        for side in ("test", "trainval"):
            scores[side] = sum(
                n / size * (float(current[c][side] < need[side]) + (share[side] * totals[c] - current[c][side]) / totals[c])
                for c, n in counts.items()
            )
        side = max(("test", "trainval"), key=lambda s: scores[s])
        side_of[group] = side
        for c, n in counts.items():
            current[c][side] += n

    split_of = {c.clip_id: "test" for c in clips if side_of[c.group] == "test"}
    by_class: Dict[str, Dict[str, List[str]]] = {}
    for clip in clips:
        if side_of[clip.group] == "trainval":
            by_class.setdefault(clip.label, {}).setdefault(clip.recording, []).append(clip.clip_id)
    for label in sorted(by_class):
        recordings = by_class[label]
        n_all = sum(len(v) for v in recordings.values())
        target = max(MIN_PER_SPLIT, int(round(valid_frac * totals[label])))
        keys = sorted(recordings, key=lambda r: (float(np.random.default_rng([seed, 29, zlib_crc(r)]).random()), r))
        valid: List[str] = []
        for rec in keys:
            if len(valid) >= target:
                break
            if n_all - len(valid) - len(recordings[rec]) >= MIN_PER_SPLIT:
                valid.extend(recordings[rec])
        if len(valid) < MIN_PER_SPLIT:  # too few recordings: single clips of the largest one
            rest = [cid for rec in sorted(keys, key=lambda r: -len(recordings[r])) for cid in recordings[rec] if cid not in valid]
            while len(valid) < MIN_PER_SPLIT and n_all - len(valid) > MIN_PER_SPLIT and rest:
                valid.append(rest.pop(0))
        for rec_clips in recordings.values():
            for cid in rec_clips:
                split_of[cid] = "valid" if cid in valid else "train"
    return split_of


def zlib_crc(text: str) -> int:
    """A stable integer of a string (for seeding)."""
    return zlib.crc32(text.encode("utf-8"))


def save_picture(files: PackageFiles, rel: str, size: int, path: Path) -> None:
    """A package's picture as a ``size`` x ``size`` PNG (aspect kept, padded white)."""
    try:
        img = Image.open(BytesIO(files.read_bytes(rel))).convert("RGB")
    except (OSError, KeyError) as err:
        raise ClipError(f"{files.root}/{rel}: not a readable picture ({err})") from err
    img.thumbnail((size, size))
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    canvas.save(path, format="PNG")


def slug(label: str) -> str:
    """A label as a file-name part ("hi-hat" -> "hi_hat")."""
    return "".join(ch if ch.isalnum() else "_" for ch in label)


# ----------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------
def build(args: argparse.Namespace) -> Dict[str, object]:
    """Build the corpus into ``--work_dir`` (paths in files under ``--out``); return the statistics."""
    work_dir = Path(args.work_dir or args.out)
    cache = Path(args.cache)
    names = sorted(args.packages) if args.packages else sorted(PINNED)
    check_not_reserved(names, "--packages")
    unknown = [n for n in names if n not in PINNED]
    if unknown:
        raise FileNotFoundError(f"--packages: {', '.join(unknown)} not pinned in local/debian_packages.py")
    packages = find_packages(cache, names)
    candidates, left_out = list_candidates(packages)
    jobs = [(c, args.fs, args.min_clip_dur, args.max_dur, args.max_segments) for c in candidates]
    results = synth_corpus._run_jobs(read_candidate, jobs, args.nj, "read clips")

    clips: List[RecordedClip] = []
    segs: Dict[str, Segment] = {}
    skipped: Dict[str, int] = {}
    counters: Dict[str, int] = {}
    for cand, (segments, reason) in zip(candidates, results):
        if not segments:
            key = reason.split(":")[0]
            skipped[key] = skipped.get(key, 0) + 1
            continue
        m = cand.match
        recording = f"{cand.package}:{cand.source}"
        for k, seg in enumerate(segments):
            index = counters.get(m.label, 0)
            counters[m.label] = index + 1
            clip_id = f"{slug(m.label)}_{index:04d}"
            clips.append(RecordedClip(
                clip_id=clip_id, label=m.label, class_index=-1, caption="", u=0.0, colour_u=0.0,
                num_samples=len(seg.samples), wav="", png="", mp4="", package=cand.package, source=cand.source,
                segment=k, start=seg.start * args.fs // ANALYSIS_FS, stop=seg.stop * args.fs // ANALYSIS_FS,
                recording=recording, voice=m.voice or "", group=m.voice or recording, words=m.words,
            ))
            segs[clip_id] = seg
    num_read = len(clips)
    clips, duplicates = drop_duplicates(clips, segs)
    audio = {c.clip_id: segs[c.clip_id].samples for c in clips}
    split_of = assign_splits(clips, args.seed, args.test_frac, args.valid_frac)

    # Classes lacking clips in a split are dropped.
    per_split: Dict[str, Dict[str, int]] = {}
    for clip in clips:
        per_split.setdefault(clip.label, {s: 0 for s in SPLITS})[split_of[clip.clip_id]] += 1
    dropped_classes = {c: n for c, n in per_split.items() if min(n.values()) < MIN_PER_SPLIT}
    labels = [c.name for c in CLASSES if c.name in per_split and c.name not in dropped_classes]
    if len(labels) < args.max_sources:
        raise RuntimeError(f"only {len(labels)} classes have {MIN_PER_SPLIT} clips in every split; --max_sources {args.max_sources} needs more")
    index_of = {name: i for i, name in enumerate(labels)}
    clips = [c for c in clips if c.label in index_of]

    (work_dir / "token_list").mkdir(parents=True, exist_ok=True)
    synth_corpus._atomic_write_text(str(work_dir / "token_list" / "labels.txt"), "".join(f"{n}\n" for n in labels))
    lic_dir = work_dir / "licences"
    lic_dir.mkdir(parents=True, exist_ok=True)
    for name, (version, root) in sorted(packages.items()):
        shutil.copyfile(root / "usr" / "share" / "doc" / name / "copyright", lic_dir / f"{name}_{version.replace(':', '%3a')}.copyright")

    pools: Dict[str, List[RecordedClip]] = {s: [] for s in SPLITS}
    pictures: Dict[str, str] = {}
    pic_dir = work_dir / "pictures"
    for clip in clips:
        split = split_of[clip.clip_id]
        rel = f"pool/{split}/{clip.clip_id}"
        clip.class_index = index_of[clip.label]
        clip.wav = rel + ".wav"
        m = classify(clip.package, clip.source)
        clip.caption = caption(clip.label, m.words, m.language, clip.recording, args.seed, native=m.native)
        if m.picture:
            key = f"{clip.package}:{m.picture}"
            if key not in pictures:
                pic_dir.mkdir(exist_ok=True)
                pic_rel = f"pictures/{slug(clip.label)}_{len(pictures):03d}.png"
                save_picture(PackageFiles(Path(packages[clip.package][1])), m.picture, args.image_size, work_dir / pic_rel)
                pictures[key] = pic_rel
            clip.png = clip.mp4 = pictures[key]
        pools[split].append(clip)
    for split, pool in pools.items():
        os.makedirs(work_dir / "pool" / split, exist_ok=True)
        for clip in pool:
            synth_corpus._write_wav(str(work_dir / clip.wav), audio[clip.clip_id], args.fs)
        lines = "".join(json.dumps(asdict(c), sort_keys=True) + "\n" for c in pool)
        synth_corpus._atomic_write_text(str(work_dir / "pool" / split / "clips.jsonl"), lines)

    set_pool = {"train": "train", "valid": "valid", "test_ss": "test", "test_tse": "test"}
    for set_name, split in set_pool.items():
        pool_audio = {c.clip_id: audio[c.clip_id] for c in pools[split]}
        synth_corpus.build_set(args, str(work_dir), set_name, getattr(args, f"num_{set_name}"), pools[split], pool_audio)

    stats = corpus_stats(args, packages, labels, pools, left_out, skipped, num_read, duplicates, dropped_classes)
    synth_corpus._atomic_write_text(str(work_dir / "corpus_stats.json"), json.dumps(stats, indent=1, sort_keys=True) + "\n")
    return stats


def corpus_stats(
    args: argparse.Namespace,
    packages: Dict[str, Tuple[str, Path]],
    labels: List[str],
    pools: Dict[str, List[RecordedClip]],
    left_out: Dict[str, int],
    skipped: Dict[str, int],
    num_read: int,
    duplicates: Dict[str, str],
    dropped_classes: Dict[str, Dict[str, int]],
) -> Dict[str, object]:
    """The corpus statistics (RESULTS.json's "corpus" keys and more)."""
    per_class = {c: {s: 0 for s in SPLITS} for c in labels}
    voices: Dict[str, List[str]] = {s: [] for s in SPLITS}
    seconds = {s: 0.0 for s in SPLITS}
    for split, pool in pools.items():
        for clip in pool:
            per_class[clip.label][split] += 1
            seconds[split] += clip.num_samples / args.fs
        voices[split] = sorted({c.voice for c in pool if c.voice})
    return {
        "classes": len(labels),
        "clips": sum(len(p) for p in pools.values()),
        "train_clips": len(pools["train"]),
        "valid_clips": len(pools["valid"]),
        "test_clips": len(pools["test"]),
        "hours": {s: round(v / 3600, 3) for s, v in seconds.items()},
        "packages": {name: version for name, (version, _) in sorted(packages.items())},
        "per_class": per_class,
        "voices": voices,
        "pictures": sum(1 for p in pools.values() for c in p if c.mp4),
        "fs": args.fs,
        "seed": args.seed,
        "dropped": {
            "files_left_out_by_class_map": left_out,
            "files_skipped": skipped,
            "segments_read": num_read,
            "duplicates": len(duplicates),
            "classes_without_2_clips_per_split": dropped_classes,
        },
    }


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Build the corpus (see the module docstring)."""
    parser = get_parser()
    args = parser.parse_args(argv)
    try:
        synth_corpus.check_args(args)
        if args.max_segments < 1 or not (0 < args.test_frac < 1 and 0 < args.valid_frac < 1 and args.test_frac + args.valid_frac < 1):
            raise ValueError("--max_segments >= 1 and 0 < --test_frac, --valid_frac with test_frac + valid_frac < 1 expected")
    except ValueError as err:
        parser.error(str(err))
    try:
        stats = build(args)
    except (ReservedPackageError, FileNotFoundError, ClipError, RuntimeError) as err:
        sys.exit(f"build_corpus.py: {err}")
    print(json.dumps({k: stats[k] for k in ("classes", "clips", "train_clips", "valid_clips", "test_clips", "packages")}, indent=1))


if __name__ == "__main__":
    main()
