#!/usr/bin/env python3
"""Generate the synthetic `mini_use` corpus (universal sound separation + extraction).

The corpus is built from pools of source clips. For every pool split
(``train``, ``valid``, ``test``) and every sound class of
``sound_classes.SOUND_CLASSES`` the generator synthesises ``--num_pool_<split>``
clips; each clip has a wav (16-bit PCM), a picture (png), a video (mp4, the
picture animated by the clip's loudness), a caption and a label. Mixtures are
then cut from the pool of their split:

- ``train``, ``valid``, ``test_ss``: 1 to K sources (K = ``--max_sources``, counts
  about equally frequent), every source with all cues (caption, label, video,
  audio example), ``utt2category`` = ``<n>src``.
- ``test_tse``: 2 to K sources; source 1 is the target and has all cues, the
  interferers have none; ``utt2category`` = ``tse``.

``test_ss`` and ``test_tse`` share the test pool. Pools are seeded from
``(seed, split, class, clip)``, so the three splits use disjoint seeds.

Held-out variants: each class has a variant coordinate ``u`` that drives its
main parameter (pitch for tonal classes, event rate for textures; listed per
class in ``sound_classes.SOUND_CLASSES[i].variant_param``), and every picture
has a colour coordinate that sets its hue offset within the class's hue band.
Train and valid pools draw both from ``[0, 0.4) U [0.6, 1]``, the test pool from
``[0.4, 0.6)``: test sources are pitches/rates and colours never seen in
training, between the ones seen. Caption descriptor words switch at 0.5, so
test captions use training vocabulary.

Mixing: a mixture lasts ``--min_dur``..``--max_dur`` seconds. Each source is a
window of its pool clip, at least ``max(--min_src_dur, half the mixture)`` long
(or the whole clip if shorter), faded in and out over 5 ms, placed at a random
onset, scaled to an RMS (over its window) of ``--ref_level_db`` plus a gain
drawn uniformly within ``+-level_range_db``. If the mixture or a reference would
peak above 0.99, mixture and references are scaled down together. References
are quantised to 16 bits first and the mixture is their integer sum, so
``mixture == sum(references)`` holds exactly in the files. Two sources of one
mixture never share a class.

Output layout (under ``--work_dir``; file contents name paths under ``--out``):

- ``token_list/labels.txt``: class names, one a line, in registry order.
- ``pool/<split>/<label>_<i>.{wav,png,mp4}`` and ``pool/<split>/clips.jsonl``
  (per clip: id, label, caption, variant and colour coordinates, length).
- ``<set>/{wav.scp, spk1..K.scp, utt2num_src, utt2category, utt2dur,
  text_spk<k>, label_spk<k>, video_spk<k>.scp, enroll_spk<k>.scp}`` as in
  ``egs2/TEMPLATE/use1/README.md``; audio in ``<set>/wav/{mix,spk<k>}/``; an
  absent source points to the zero-length ``<set>/silence.wav``;
  ``enroll_spk<k>.scp`` names a different pool clip of the same class.
- ``local/<set>.jsonl``: how each mixture was made (clips, windows, onsets,
  gains, the common scale), for checks and debugging.

Paths in the files are ``os.path.join(--out, <relative path>)``: relative to
the directory the generator runs in (the recipe directory) when ``--out`` is
relative, absolute when it is absolute.

Deterministic: the same options give byte-identical files whatever ``--nj``.
"""
import argparse
import json
import multiprocessing
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf
from tqdm import tqdm

# Helper modules live next to this script (recipe `local/`).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cue_media import (  # noqa: E402
    draw_picture_params,
    loudness_envelope,
    render_frame,
    render_video_frames,
    write_video,
)
from sound_classes import LABELS, SOUND_CLASSES, draw_variant  # noqa: E402

POOL_SPLITS: Tuple[str, ...] = ("train", "valid", "test")
# Seed codes keep the random streams of pools and mixture sets apart.
POOL_SEED_CODE: Dict[str, int] = {"train": 1, "valid": 2, "test": 3}
SET_SEED_CODE: Dict[str, int] = {"train": 11, "valid": 12, "test_ss": 13, "test_tse": 14}
SET_POOL: Dict[str, str] = {"train": "train", "valid": "valid", "test_ss": "test", "test_tse": "test"}
FADE_MS = 5.0
PEAK_LIMIT = 0.99
INT16_SCALE = 32768.0  # soundfile reads PCM_16 as int / 32768


@dataclass
class PoolClip:
    """One pool clip (paths relative to the corpus root)."""

    clip_id: str
    label: str
    class_index: int
    caption: str
    u: float
    colour_u: float
    num_samples: int
    wav: str
    png: str
    mp4: str


@dataclass
class SourcePlan:
    """How one source enters a mixture.

    Args:
        clip_id: pool clip.
        crop_start: first sample of the window taken from the clip.
        length: window length in samples.
        onset: first sample of the window in the mixture.
        gain_db: level re ``ref_level_db`` (RMS over the window).
        has_cues: whether the source gets caption/label/video/enrolment cues.
        enroll_id: pool clip used as the audio example (another clip of the class).
    """

    clip_id: str
    crop_start: int
    length: int
    onset: int
    gain_db: float
    has_cues: bool
    enroll_id: Optional[str]


@dataclass
class MixturePlan:
    """One mixture: its id, length, category and sources (spk1 first)."""

    utt_id: str
    num_samples: int
    category: str
    sources: List[SourcePlan] = field(default_factory=list)


# Pool audio shared with forked workers (set before the worker pool starts).
_POOL_AUDIO: Dict[str, np.ndarray] = {}


def get_parser() -> argparse.ArgumentParser:
    """Command-line options (all sizes and levels of the corpus)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="data", help="corpus root as written into the data files")
    parser.add_argument("--work_dir", default=None, help="where to write the files (default: --out); data.sh uses a temp folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fs", type=int, default=8000, help="sample rate (Hz), at least 8000")
    parser.add_argument("--num_train", type=int, default=2000, help="training mixtures")
    parser.add_argument("--num_valid", type=int, default=150, help="validation mixtures")
    parser.add_argument("--num_test_ss", type=int, default=300, help="separation test mixtures")
    parser.add_argument("--num_test_tse", type=int, default=300, help="extraction test mixtures")
    parser.add_argument("--num_pool_train", type=int, default=40, help="train pool clips per class")
    parser.add_argument("--num_pool_valid", type=int, default=8, help="valid pool clips per class")
    parser.add_argument("--num_pool_test", type=int, default=20, help="test pool clips per class")
    parser.add_argument("--max_sources", type=int, default=3, help="K, the largest number of sources")
    parser.add_argument("--min_dur", type=float, default=2.0, help="shortest mixture (s)")
    parser.add_argument("--max_dur", type=float, default=4.0, help="longest mixture and pool clip (s)")
    parser.add_argument("--min_clip_dur", type=float, default=1.5, help="shortest pool clip (s)")
    parser.add_argument("--min_src_dur", type=float, default=1.0, help="shortest source window in a mixture (s)")
    parser.add_argument("--ref_level_db", type=float, default=-30.0, help="source RMS level (dBFS) before the gain")
    parser.add_argument("--level_range_db", type=float, default=5.0, help="source gains are uniform in +-this (dB)")
    parser.add_argument("--image_size", type=int, default=96, help="picture and video frame size (pixels, even)")
    parser.add_argument("--video_frames", type=int, default=8)
    parser.add_argument("--video_fps", type=int, default=4)
    parser.add_argument("--nj", type=int, default=2, help="worker processes (does not change the output)")
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Reject option values the corpus cannot be built with.

    Raises:
        ValueError: naming the option and what was expected.
    """
    problems = []
    if args.fs < 8000:
        problems.append(f"--fs {args.fs}: expected at least 8000")
    for name in ("num_train", "num_valid", "num_test_ss", "num_test_tse"):
        if getattr(args, name) < 0:
            problems.append(f"--{name} {getattr(args, name)}: expected >= 0")
    for split in POOL_SPLITS:
        if getattr(args, f"num_pool_{split}") < 2:
            problems.append(f"--num_pool_{split}: expected >= 2 (the audio example must be another clip of the class)")
    if not 2 <= args.max_sources <= len(SOUND_CLASSES):
        problems.append(f"--max_sources {args.max_sources}: expected 2..{len(SOUND_CLASSES)}")
    if not 0 < args.min_dur <= args.max_dur:
        problems.append(f"--min_dur {args.min_dur} / --max_dur {args.max_dur}: expected 0 < min_dur <= max_dur")
    if not 0 < args.min_clip_dur <= args.max_dur:
        problems.append(f"--min_clip_dur {args.min_clip_dur}: expected 0 < min_clip_dur <= max_dur")
    if not 0 < args.min_src_dur <= args.min_clip_dur:
        problems.append(f"--min_src_dur {args.min_src_dur}: expected 0 < min_src_dur <= min_clip_dur")
    if args.level_range_db < 0:
        problems.append(f"--level_range_db {args.level_range_db}: expected >= 0")
    if args.ref_level_db + args.level_range_db > -3:
        problems.append(f"--ref_level_db {args.ref_level_db}: expected ref_level_db + level_range_db <= -3 dBFS")
    if args.image_size < 16 or args.image_size % 2:
        problems.append(f"--image_size {args.image_size}: expected an even number >= 16")
    if args.video_frames < 1 or args.video_fps < 1:
        problems.append("--video_frames/--video_fps: expected >= 1")
    if args.nj < 1:
        problems.append(f"--nj {args.nj}: expected >= 1")
    if problems:
        raise ValueError("synth_corpus.py: invalid options:\n  " + "\n  ".join(problems))


def _atomic_write_text(path: str, text: str) -> None:
    """Write a text file whole or not at all."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _write_wav(path: str, samples: np.ndarray, fs: int) -> None:
    """Write int16 samples as a 16-bit PCM wav."""
    assert samples.dtype == np.int16, samples.dtype
    sf.write(path, samples, fs, subtype="PCM_16", format="WAV")


def _to_int16(x: np.ndarray) -> np.ndarray:
    """Float in [-1, 1) to int16 by rounding (the reader divides by 32768)."""
    return np.clip(np.round(x * INT16_SCALE), -32768, 32767).astype(np.int16)


# ----------------------------------------------------------------------------
# Pools
# ----------------------------------------------------------------------------
def make_pool_clip(job: Tuple[str, str, int, int, Dict[str, float]]) -> Tuple[PoolClip, np.ndarray]:
    """Synthesise one pool clip and write its wav, png and mp4.

    Args:
        job: (work_dir, split, class_index, clip_index, options) where options
            holds seed, fs, min_clip_dur, max_dur, image_size, video_frames, video_fps.

    Returns:
        The clip's record and its int16 samples [T].
    """
    work_dir, split, class_index, clip_index, opt = job
    fs = int(opt["fs"])
    sound = SOUND_CLASSES[class_index]
    rng = np.random.default_rng([int(opt["seed"]), POOL_SEED_CODE[split], class_index, clip_index])
    held_out = split == "test"
    u = draw_variant(rng, held_out)
    colour_u = draw_variant(rng, held_out)
    num_samples = int(rng.integers(round(opt["min_clip_dur"] * fs), round(opt["max_dur"] * fs) + 1))
    wave, slots = sound.synth(rng, u, num_samples, fs)
    caption = sound.caption(rng, slots)
    samples = _to_int16(wave)
    picture = draw_picture_params(rng, class_index, len(SOUND_CLASSES), colour_u)

    clip_id = f"{sound.name}_{clip_index:04d}"
    rel = f"pool/{split}/{clip_id}"
    _write_wav(os.path.join(work_dir, rel + ".wav"), samples, fs)
    size = int(opt["image_size"])
    render_frame(sound.name, picture, size).save(os.path.join(work_dir, rel + ".png"), format="PNG")
    envelope = loudness_envelope(samples.astype(np.float64), int(opt["video_frames"]))
    write_video(os.path.join(work_dir, rel + ".mp4"), render_video_frames(sound.name, picture, size, envelope), int(opt["video_fps"]))
    clip = PoolClip(
        clip_id=clip_id, label=sound.name, class_index=class_index, caption=caption, u=round(u, 6),
        colour_u=round(colour_u, 6), num_samples=num_samples, wav=rel + ".wav", png=rel + ".png", mp4=rel + ".mp4",
    )
    return clip, samples


def _run_jobs(func: Callable[[Any], Any], jobs: Sequence[Any], nj: int, desc: str) -> List[Any]:
    """Map ``func`` over ``jobs`` in order, with ``nj`` forked workers and a progress bar.

    Args:
        func: a module-level function (it is sent to the workers).
        jobs: its arguments, one per call.
        nj: number of worker processes (1: run in this process).
        desc: progress bar label.

    Returns:
        The results in the order of ``jobs``.
    """
    results = []
    with tqdm(total=len(jobs), desc=desc, unit="item", mininterval=1.0, file=sys.stderr) as bar:
        if nj == 1 or len(jobs) < 2:
            for job in jobs:
                results.append(func(job))
                bar.update(1)
        else:
            # fork: workers inherit the pool audio without pickling it per job.
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(nj) as workers:
                for res in workers.imap(func, jobs, chunksize=4):
                    results.append(res)
                    bar.update(1)
    return results


def build_pool(args: argparse.Namespace, work_dir: str, split: str) -> Tuple[List[PoolClip], Dict[str, np.ndarray]]:
    """Generate the pool of one split.

    Args:
        args: options.
        work_dir: corpus root being written.
        split: "train", "valid" or "test".

    Returns:
        The clip records (class order, then clip order) and their samples by clip id.
    """
    os.makedirs(os.path.join(work_dir, "pool", split), exist_ok=True)
    opt = {k: float(getattr(args, k)) for k in ("seed", "fs", "min_clip_dur", "max_dur", "image_size", "video_frames", "video_fps")}
    per_class = getattr(args, f"num_pool_{split}")
    jobs = [(work_dir, split, c, i, opt) for c in range(len(SOUND_CLASSES)) for i in range(per_class)]
    results = _run_jobs(make_pool_clip, jobs, args.nj, f"pool {split}")
    clips = [clip for clip, _ in results]
    audio = {clip.clip_id: samples for clip, samples in results}
    lines = "".join(json.dumps(asdict(c), sort_keys=True) + "\n" for c in clips)
    _atomic_write_text(os.path.join(work_dir, "pool", split, "clips.jsonl"), lines)
    return clips, audio


# ----------------------------------------------------------------------------
# Mixtures
# ----------------------------------------------------------------------------
def _source_counts(rng: np.random.Generator, num: int, choices: Sequence[int]) -> List[int]:
    """Counts balanced over ``choices`` (they differ by at most one), in random order."""
    counts = [choices[i % len(choices)] for i in range(num)]
    return [int(c) for c in rng.permutation(counts)]


def _pick_window(rng: np.random.Generator, clip: np.ndarray, length: int) -> int:
    """Start of a ``length``-sample window of ``clip`` that is not near-silent.

    Sparse classes (drips, single bell strikes) can have quiet stretches; a
    window under -20 dB re the clip's RMS is redrawn (best of 8 tries kept).
    """
    max_start = len(clip) - length
    if max_start <= 0:
        return 0
    x = clip.astype(np.float64)
    clip_power = float(np.mean(x ** 2)) + 1e-12
    best, best_power = 0, -1.0
    for _ in range(8):
        start = int(rng.integers(0, max_start + 1))
        power = float(np.mean(x[start : start + length] ** 2))
        if power >= 0.01 * clip_power:
            return start
        if power > best_power:
            best, best_power = start, power
    return best


def _recording(clip: PoolClip) -> str:
    """The recording a pool clip was cut from (a synthesised clip is its own)."""
    return getattr(clip, "recording", clip.clip_id)


def plan_mixtures(
    args: argparse.Namespace, set_name: str, num: int, clips: List[PoolClip], audio: Dict[str, np.ndarray]
) -> List[MixturePlan]:
    """Draw every mixture of a set (sources, windows, onsets, gains, cues).

    Args:
        args: options.
        set_name: "train", "valid", "test_ss" or "test_tse".
        num: number of mixtures.
        clips: pool of the set's split.
        audio: pool samples by clip id.

    Returns:
        The mixture plans, in utterance-id order.
    """
    fs = args.fs
    rng = np.random.default_rng([args.seed, SET_SEED_CODE[set_name]])
    by_class: Dict[int, List[PoolClip]] = {}
    for clip in clips:
        by_class.setdefault(clip.class_index, []).append(clip)
    class_ids = sorted(by_class)
    tse = set_name == "test_tse"
    counts = _source_counts(rng, num, list(range(2 if tse else 1, args.max_sources + 1)))
    width = max(5, len(str(max(num - 1, 0))))
    min_len, max_len = round(args.min_dur * fs), round(args.max_dur * fs)
    plans = []
    for i, n_src in enumerate(counts):
        total = int(rng.integers(min_len, max_len + 1))
        plan = MixturePlan(f"{set_name}_{i:0{width}d}", total, "tse" if tse else f"{n_src}src")
        # Distinct classes: USE separates by kind of sound. The classes are those of the
        # pool (every class of SOUND_CLASSES here; a recorded corpus brings its own).
        for k, choice in enumerate(rng.choice(len(class_ids), size=n_src, replace=False)):
            candidates = by_class[class_ids[int(choice)]]
            clip = candidates[int(rng.integers(len(candidates)))]
            longest = min(clip.num_samples, total)
            shortest = min(longest, max(round(args.min_src_dur * fs), total // 2))
            length = int(rng.integers(shortest, longest + 1))
            crop_start = _pick_window(rng, audio[clip.clip_id], length)
            onset = int(rng.integers(0, total - length + 1))
            gain_db = float(rng.uniform(-args.level_range_db, args.level_range_db))
            has_cues = (k == 0) or not tse
            others = [c for c in candidates if c.clip_id != clip.clip_id]
            # A recorded corpus cuts long recordings into several clips (their
            # ``recording``): the example comes from another recording when the pool has one.
            other_recordings = [c for c in others if _recording(c) != _recording(clip)]
            choices = other_recordings or others
            enroll = choices[int(rng.integers(len(choices)))].clip_id
            plan.sources.append(SourcePlan(clip.clip_id, crop_start, length, onset, round(gain_db, 4), has_cues, enroll if has_cues else None))
        plans.append(plan)
    return plans


def _fade_window(n: int, fs: int) -> np.ndarray:
    """Raised-cosine fade in/out gain over FADE_MS at both ends of n samples."""
    m = min(int(fs * FADE_MS / 1000), n // 2)
    w = np.ones(n)
    if m > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(m) + 0.5) / m)
        w[:m] = ramp
        w[n - m :] = ramp[::-1]
    return w


def mix_sources(plan: MixturePlan, audio: Dict[str, np.ndarray], fs: int, ref_level_db: float) -> Tuple[np.ndarray, np.ndarray, float]:
    """Build the quantised references and mixture of one plan.

    Args:
        plan: the mixture plan.
        audio: pool samples by clip id (int16).
        fs: sample rate.
        ref_level_db: RMS level (dBFS) of a source at gain 0 dB.

    Returns:
        (references int16 [n, T], mixture int16 [T], common scale applied for the peak limit).
    """
    refs = np.zeros((len(plan.sources), plan.num_samples))  # [n, T]
    for k, src in enumerate(plan.sources):
        clip = audio[src.clip_id].astype(np.float64) / INT16_SCALE
        seg = clip[src.crop_start : src.crop_start + src.length] * _fade_window(src.length, fs)
        rms = np.sqrt(np.mean(seg ** 2))
        if rms <= 0:
            raise RuntimeError(f"{plan.utt_id}: source {k + 1} ({src.clip_id}) window is silent")
        refs[k, src.onset : src.onset + src.length] = seg * (10.0 ** ((ref_level_db + src.gain_db) / 20.0) / rms)
    peak = max(float(np.max(np.abs(refs.sum(axis=0)))), float(np.max(np.abs(refs))))
    scale = min(1.0, PEAK_LIMIT / peak)
    refs_q = _to_int16(refs * scale)  # [n, T]
    # The mixture is the integer sum of the stored references: exact, and it
    # cannot overflow because the float sum peaks at 0.99 at most.
    mix = refs_q.astype(np.int32).sum(axis=0)  # [T]
    assert np.max(np.abs(mix)) <= 32767, (plan.utt_id, np.max(np.abs(mix)))
    return refs_q, mix.astype(np.int16), scale


def render_mixture(job: Tuple[str, str, MixturePlan, int, float]) -> float:
    """Write the mixture and reference wavs of one plan (worker).

    Args:
        job: (work_dir, set_name, plan, fs, ref_level_db).

    Returns:
        The common scale applied for the peak limit.
    """
    work_dir, set_name, plan, fs, ref_level_db = job
    refs, mix, scale = mix_sources(plan, _POOL_AUDIO, fs, ref_level_db)
    base = os.path.join(work_dir, set_name, "wav")
    _write_wav(os.path.join(base, "mix", f"{plan.utt_id}.wav"), mix, fs)
    for k in range(refs.shape[0]):
        _write_wav(os.path.join(base, f"spk{k + 1}", f"{plan.utt_id}.wav"), refs[k], fs)
    return scale


def write_set(
    args: argparse.Namespace, work_dir: str, set_name: str, plans: List[MixturePlan], clips: Dict[str, PoolClip], scales: List[float]
) -> None:
    """Write the Kaldi-style files of one set (every file lists every utterance).

    Args:
        args: options.
        work_dir: corpus root being written.
        set_name: set name.
        plans: mixture plans.
        clips: pool clips by id.
        scales: common scale of each mixture.
    """
    set_dir = os.path.join(work_dir, set_name)

    def path(rel: str) -> str:
        # Paths as the later stages will see them: under --out, not the work dir.
        return os.path.join(args.out, rel)

    silence = path(f"{set_name}/silence.wav")
    files: Dict[str, List[str]] = {}

    def add(name: str, utt: str, value: str) -> None:
        files.setdefault(name, []).append(f"{utt} {value}".rstrip(" ") + "\n")

    for plan in sorted(plans, key=lambda p: p.utt_id):
        utt = plan.utt_id
        add("wav.scp", utt, path(f"{set_name}/wav/mix/{utt}.wav"))
        add("utt2num_src", utt, str(len(plan.sources)))
        add("utt2category", utt, plan.category)
        add("utt2dur", utt, repr(round(plan.num_samples / args.fs, 6)))
        for k in range(1, args.max_sources + 1):
            src = plan.sources[k - 1] if k <= len(plan.sources) else None
            add(f"spk{k}.scp", utt, path(f"{set_name}/wav/spk{k}/{utt}.wav") if src else silence)
            cued = clips[src.clip_id] if src is not None and src.has_cues else None
            add(f"text_spk{k}", utt, cued.caption if cued else "")
            add(f"label_spk{k}", utt, cued.label if cued else "")
            # A clip without a picture or video (mp4 "") has an empty entry: a missing modality.
            add(f"video_spk{k}.scp", utt, path(cued.mp4) if cued and cued.mp4 else "")
            add(f"enroll_spk{k}.scp", utt, path(clips[src.enroll_id].wav) if cued and src.enroll_id else "")
    for name, lines in files.items():
        _atomic_write_text(os.path.join(set_dir, name), "".join(lines))

    records = []
    for plan, scale in zip(plans, scales):
        rec = asdict(plan)
        rec["scale"] = round(scale, 8)
        records.append(json.dumps(rec, sort_keys=True) + "\n")
    os.makedirs(os.path.join(work_dir, "local"), exist_ok=True)
    _atomic_write_text(os.path.join(work_dir, "local", f"{set_name}.jsonl"), "".join(records))


def build_set(
    args: argparse.Namespace, work_dir: str, set_name: str, num: int, clips: List[PoolClip], audio: Dict[str, np.ndarray]
) -> None:
    """Plan, render and describe one mixture set.

    Args:
        args: options.
        work_dir: corpus root being written.
        set_name: set name.
        num: number of mixtures.
        clips: pool of the set's split.
        audio: pool samples by clip id.
    """
    global _POOL_AUDIO
    set_dir = os.path.join(work_dir, set_name)
    for sub in ["mix"] + [f"spk{k}" for k in range(1, args.max_sources + 1)]:
        os.makedirs(os.path.join(set_dir, "wav", sub), exist_ok=True)
    _write_wav(os.path.join(set_dir, "silence.wav"), np.zeros(0, dtype=np.int16), args.fs)
    plans = plan_mixtures(args, set_name, num, clips, audio)
    _POOL_AUDIO = audio
    jobs = [(work_dir, set_name, plan, args.fs, args.ref_level_db) for plan in plans]
    scales = _run_jobs(render_mixture, jobs, args.nj, f"mix {set_name}")
    write_set(args, work_dir, set_name, plans, {c.clip_id: c for c in clips}, scales)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Generate the whole corpus (see the module docstring)."""
    parser = get_parser()
    args = parser.parse_args(argv)
    try:
        check_args(args)
    except ValueError as err:
        parser.error(str(err))
    work_dir = args.work_dir or args.out
    os.makedirs(os.path.join(work_dir, "token_list"), exist_ok=True)
    _atomic_write_text(os.path.join(work_dir, "token_list", "labels.txt"), "".join(f"{name}\n" for name in LABELS))
    pools = {split: build_pool(args, work_dir, split) for split in POOL_SPLITS}
    for set_name in ("train", "valid", "test_ss", "test_tse"):
        clips, audio = pools[SET_POOL[set_name]]
        build_set(args, work_dir, set_name, getattr(args, f"num_{set_name}"), clips, audio)


if __name__ == "__main__":
    main()
