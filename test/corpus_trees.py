"""Miniature corpus trees in the real layouts of LibriMix, FUSS, AudioSet and VGGSound.

Each builder writes a few short clips of synthesised audio (a tone per clip plus a
little noise) into the folder structure, file names and CSV formats the real corpus
has, so that a recipe's ``local/data.sh`` can be tested without the corpus:

- ``make_librimix``: ``Libri{2,3}Mix/wav8k/min/{train-360,dev,test}/{mix_clean,
  mix_both,s1,s2[,s3],noise}/<mixture_ID>.wav`` and ``metadata/mixture_<split>_
  <type>.csv`` + ``metrics_*.csv`` as JorisCos/LibriMix writes them, the CSVs
  holding absolute paths under ``listed_root`` (another machine's root by choice).
- ``make_fuss``: ``ssdata[_reverb]/{train,validation,eval}/example<N>.wav`` (+
  ``.jams``, ``.txt``), ``example<N>_sources/{background0,foreground<i>}_sound.wav``
  and the tab-separated ``<split>_example_list.txt``.
- ``make_fuss`` also builds the output of FUSS's data augmentation
  (``fuss_augment_<seed>/ssdata[_reverb]``: train and validation only, no eval split,
  with the reverb step's ``mix_info.txt``, ``src_list.txt``, ``rir_list.txt``).
- ``make_audioset``: ``balanced_train_segments.csv``/``eval_segments.csv``/
  ``unbalanced_train_segments.csv`` (three comment lines, quoted label lists),
  ``class_labels_indices.csv``, clips under nested folders with several real naming
  schemes (audiosetdl's ``audio/<YTID>_<start ms>_<end ms>.flac`` among them), a few
  ``.mp4`` videos (one clip has only its video), and AudioCaps' ``dataset/{train,val,
  test}.csv``, whose clips, as in the real AudioCaps, come from the unbalanced list and
  none from the balanced or eval lists.
- ``make_vggsound``: header-less ``vggsound.csv`` (one quoted label with a comma) and
  either the released archives' ``<YTID>_<start:06d>.mp4`` videos with an AAC audio
  track, or the audiosetdl downloader's ``video/<YTID>_<start ms>_<end ms>.mp4`` and
  ``audio/<same>.flac``, with audio-only copies (flac or wav, beside or instead of the
  mp4).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile


def tone(seconds: float, fs: int, seed: int) -> np.ndarray:
    """A clip of sound: a tone whose pitch depends on ``seed``, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * fs))) / fs
    f0 = 150.0 + 37.0 * (seed % 40)
    x = 0.2 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal(len(t))
    return x.astype(np.float32)


def write_wav(path: Path, x: np.ndarray, fs: int, fmt: str = "WAV") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), x, fs, format=fmt, subtype="PCM_16")


def write_mp4(path: Path, audio: Optional[np.ndarray], fs: int, seconds: float, seed: int,
              fps: int = 4, size: int = 32) -> None:
    """A tiny mp4 (mpeg4 video, one colour per frame) with an AAC track when audio is given."""
    import av

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        sound = container.add_stream("aac", rate=fs, layout="mono") if audio is not None else None
        for _ in range(max(1, int(round(seconds * fps)))):
            img = np.empty((size, size, 3), dtype=np.uint8)
            img[:] = rng.integers(0, 256, 3)
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            for start in range(0, len(audio), 1024):
                frame = av.AudioFrame.from_ndarray(
                    audio[None, start:start + 1024].astype(np.float32), format="fltp", layout="mono")
                frame.sample_rate = fs
                frame.pts = start
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)


# --------------------------------------------------------------------------
# LibriMix
# --------------------------------------------------------------------------


def librimix_ids(n_src: int, count: int, seed: int) -> List[str]:
    """Mixture ids in LibriMix's form: LibriSpeech ``<spk>-<chapter>-<utt>`` ids joined by '_'."""
    rng = np.random.default_rng(seed)
    ids = []
    for _ in range(count):
        parts = [f"{rng.integers(19, 8000)}-{rng.integers(1000, 300000)}-{rng.integers(0, 80):04d}"
                 for _ in range(n_src)]
        ids.append("_".join(parts))
    return ids


def make_librimix(root: Path, listed_root: Optional[Path] = None, fs: int = 8000,
                  mode: str = "min", counts: Sequence[int] = (2, 3),
                  splits: Dict[str, int] = None, seconds: float = 0.25,
                  with_original_id: bool = True) -> Path:
    """A LibriMix tree (``Libri<n>Mix/wav<fs>/<mode>/...``) of mix_clean and mix_both.

    Args:
        root: Where to build it.
        listed_root: Root written into the metadata CSVs (default: ``root``); the real
            CSVs hold the generating machine's absolute paths.
        fs: Sampling rate (8000 or 16000).
        mode: ``min`` or ``max``.
        counts: Which of Libri2Mix/Libri3Mix to build.
        splits: Subset -> number of mixtures.
        seconds: Length of each mixture.
        with_original_id: Write the ``original_mixture_ID`` column of newer versions.

    Returns:
        ``root``.
    """
    splits = splits or {"train-360": 3, "dev": 2, "test": 2}
    listed_root = listed_root or root
    sr_dir = f"wav{fs // 1000}k"
    for n in counts:
        mode_dir = Path(f"Libri{n}Mix") / sr_dir / mode
        (root / mode_dir / "metadata").mkdir(parents=True, exist_ok=True)
        for s_i, (split, count) in enumerate(splits.items()):
            ids = librimix_ids(n, count, seed=100 * n + s_i)
            for mix_type in ("mix_clean", "mix_both"):
                mix_rows, metric_rows = [], []
                for j, mix_id in enumerate(ids):
                    sources = [tone(seconds, fs, seed=7 * j + k + n) for k in range(n)]
                    noise = 0.05 * tone(seconds, fs, seed=999 + j)
                    paths = []
                    for k, s in enumerate(sources, 1):
                        rel = mode_dir / split / f"s{k}" / f"{mix_id}.wav"
                        write_wav(root / rel, s, fs)
                        paths.append(str(listed_root / rel))
                    noise_rel = mode_dir / split / "noise" / f"{mix_id}.wav"
                    write_wav(root / noise_rel, noise, fs)
                    mix = sum(sources) + (noise if mix_type == "mix_both" else 0)
                    mix_rel = mode_dir / split / mix_type / f"{mix_id}.wav"
                    write_wav(root / mix_rel, mix, fs)
                    row = [mix_id] + ([mix_id] if with_original_id else []) + [str(listed_root / mix_rel)]
                    row += paths + ([str(listed_root / noise_rel)] if mix_type == "mix_both" else [])
                    mix_rows.append(row + [str(len(mix))])
                    metric_rows.append([mix_id] + ([mix_id] if with_original_id else [])
                                       + ["10.0"] * (n + (mix_type == "mix_both")))
                head = ["mixture_ID"] + (["original_mixture_ID"] if with_original_id else [])
                src_cols = [f"source_{k}_path" for k in range(1, n + 1)]
                noise_col = ["noise_path"] if mix_type == "mix_both" else []
                _write_csv(root / mode_dir / "metadata" / f"mixture_{split}_{mix_type}.csv",
                           head + ["mixture_path"] + src_cols + noise_col + ["length"], mix_rows)
                snr_cols = [f"source_{k}_SNR" for k in range(1, n + 1)]
                _write_csv(root / mode_dir / "metadata" / f"metrics_{split}_{mix_type}.csv",
                           head + snr_cols + (["noise_SNR"] if mix_type == "mix_both" else []),
                           metric_rows)
    return root


def _write_csv(path: Path, header: Optional[List[str]], rows: List[List[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)


# --------------------------------------------------------------------------
# FUSS
# --------------------------------------------------------------------------

# make_ss_examples.py pads example numbers to the digits of the split's size:
# 20000 train examples -> 5 digits, 1000 validation/eval examples -> 4.
FUSS_DIGITS = {"train": 5, "validation": 4, "eval": 4}


def make_fuss(root: Path, splits: Dict[str, int] = None, seconds: float = 0.25,
              fs: int = 16000, variants: Sequence[str] = ("ssdata", "ssdata_reverb"),
              augmented: bool = False) -> Path:
    """A FUSS tree: mixtures with 1..4 sources (cycling), lists, jams/txt side files.

    Args:
        root: Where to build it (the real trees are ``<ROOT_DIR>/fuss_dev`` and
            ``<ROOT_DIR>/fuss_augment_<seed>``).
        splits: Split -> number of examples (default: train 4, validation 2, eval 3).
        seconds: Length of every wav.
        fs: Sampling rate.
        variants: Which of ``ssdata``/``ssdata_reverb`` to build.
        augmented: Build the output of FUSS's ``run_data_augmentation.sh``: train and
            validation only (its ``run_scaper.sh`` sets ``NUM_EVAL_MIX=0``, and
            make_ss_examples.py then writes neither the eval folder nor its list), and
            ``run_reverb_and_mix.sh``'s side files in ``ssdata_reverb``.

    Returns:
        ``root`` (holding ``ssdata/`` and ``ssdata_reverb/``).
    """
    splits = splits or ({"train": 5, "validation": 2} if augmented
                        else {"train": 4, "validation": 2, "eval": 3})
    for v_i, variant in enumerate(variants):
        base = root / variant
        for split, count in splits.items():
            lines = []
            for i in range(count):
                stem = f"example{i:0{FUSS_DIGITS[split]}d}"
                n_fg = i % 4  # 0..3 foreground sources, so 1..4 sources in all
                names = ["background0_sound.wav"] + [f"foreground{j}_sound.wav" for j in range(n_fg)]
                srcs = [tone(seconds, fs, seed=10 * i + j + v_i) for j in range(len(names))]
                rels = [f"{split}/{stem}_sources/{name}" for name in names]
                for rel, s in zip(rels, srcs):
                    write_wav(base / rel, s, fs)
                write_wav(base / split / f"{stem}.wav", sum(srcs), fs)
                (base / split / f"{stem}.jams").write_text("{}\n")
                (base / split / f"{stem}.txt").write_text("scaper annotation\n")
                lines.append("\t".join([f"{split}/{stem}.wav"] + rels))
            (base / f"{split}_example_list.txt").write_text("\n".join(lines) + "\n")
        if augmented and variant == "ssdata_reverb":
            lists = [(base / f"{split}_example_list.txt").read_text() for split in splits]
            (base / "src_list.txt").write_text("".join(lists))
            (base / "mix_info.txt").write_text("train/example00000.wav\trir_0001\n")
            (base / "rir_list.txt").write_text("rir_0001\ttrain/rir_0001.wav\n")
            (base / "log").mkdir(exist_ok=True)
    return root


# --------------------------------------------------------------------------
# AudioSet (+ AudioCaps)
# --------------------------------------------------------------------------

AUDIOSET_CLASSES: List[Tuple[str, str]] = [
    ("/m/09x0r", "Speech"),
    ("/m/0jbk", "Animal"),
    ("/m/0bt9lr", "Dog"),
    ("/m/01yrx", "Cat"),
    ("/m/04rlf", "Music"),
    ("/m/06mb1", "Rain"),
    ("/m/07pbtc8", "Walk, footsteps"),
    ("/m/0l15bq", "Clapping"),
    ("/m/0k4j", "Car"),
    ("/m/03m9d0z", "Wind"),
    ("/m/032s66", "Gunshot, gunfire"),
]
# Unseen classes of the miniature tree, as a user's list would name them (names or mids).
AUDIOSET_UNSEEN = ["Car", "/m/03m9d0z", "Gunshot, gunfire"]

# (mids, number of training clips, number of test clips); Dog and Cat clips are also
# tagged with their ancestor Animal, as AudioSet does.
_AUDIOSET_PLAN = [
    (["/m/09x0r"], 3, 2),
    (["/m/0jbk", "/m/0bt9lr"], 3, 2),
    (["/m/01yrx", "/m/0jbk"], 2, 1),
    (["/m/04rlf"], 3, 2),
    (["/m/06mb1"], 3, 2),
    (["/m/07pbtc8"], 2, 1),
    (["/m/0l15bq"], 2, 0),
    (["/m/0k4j"], 1, 2),
    (["/m/03m9d0z"], 0, 2),
    (["/m/032s66"], 0, 2),
]


def _ytid(rng: np.random.Generator) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), 11))


# AudioCaps' clips, all from the unbalanced list: (mids, AudioCaps split, file on disk).
_AUDIOCAPS_PLAN = [
    (["/m/09x0r"], "train", True),
    (["/m/0jbk", "/m/0bt9lr"], "train", True),
    (["/m/04rlf"], "train", True),
    (["/m/06mb1"], "train", True),
    (["/m/07pbtc8"], "train", True),
    (["/m/0l15bq"], "train", False),  # listed, never downloaded
    (["/m/01yrx", "/m/0jbk"], "val", True),
    (["/m/09x0r"], "test", True),
    (["/m/04rlf"], "test", True),
    (["/m/06mb1"], "test", True),
    (["/m/0k4j"], "test", True),
    (["/m/03m9d0z"], "test", False),
]


def make_audioset(root: Path, seconds: float = 1.0, fs: int = 22050,
                  with_audiocaps: bool = True) -> Dict[str, object]:
    """An AudioSet tree with nested folders, several clip naming schemes and videos.

    Training clips are ``balanced_train_segments/<YTID>_<start>.wav`` (whole
    seconds), except every fourth one as ``audio/bal/Y<YTID>.flac``; test clips are
    ``eval_segments/<YTID>_<start:.3f>_<end:.3f>.wav``. Dog clips have an mp4
    under ``video/<YTID>_<start>.mp4``; the first test Music clip has only its mp4.

    ``unbalanced_train_segments.csv`` lists AudioCaps' clips (``_AUDIOCAPS_PLAN``) and
    a few others; the AudioCaps clips that were downloaded are named as the audiosetdl
    downloader names them, ``audio/unbal/<YTID>_<start ms>_<end ms>.flac``. AudioCaps'
    CSVs (real header; val and test with five captions per clip, a caption with a
    comma quoted) list only clips of the unbalanced list, as the real ones do.

    Returns:
        ``{"root": Path, "audiocaps": Path or None, "unseen": Path (a class list file),
        "train_rows": [(ytid, start, mids, seed)], "test_rows": [...],
        "audiocaps_rows": [(ytid, start, mids, split, on_disk, captions)]}``.
    """
    rng = np.random.default_rng(1234)
    _write_csv(root / "class_labels_indices.csv", ["index", "mid", "display_name"],
               [[str(i), mid, name] for i, (mid, name) in enumerate(AUDIOSET_CLASSES)])
    train_rows, test_rows = [], []
    seed = 0
    for mids, n_train, n_test in _AUDIOSET_PLAN:
        for split_rows, count in ((train_rows, n_train), (test_rows, n_test)):
            for _ in range(count):
                split_rows.append((_ytid(rng), float(10 * int(rng.integers(0, 30))), mids, seed))
                seed += 1
    for name, rows in (("balanced_train_segments.csv", train_rows), ("eval_segments.csv", test_rows)):
        num_labels = sum(len(r[2]) for r in rows)
        with open(root / name, "w", encoding="utf-8") as f:
            f.write("# Segments csv created Sun Mar  5 10:54:31 2017\n")
            f.write(f"# num_ytids={len(rows)}, num_segs={len(rows)}, "
                    f"num_unique_labels={len({m for r in rows for m in r[2]})}, "
                    f"num_positive_labels={num_labels}\n")
            f.write("# YTID, start_seconds, end_seconds, positive_labels\n")
            for ytid, start, mids, _ in rows:
                f.write(f'{ytid}, {start:.3f}, {start + 10:.3f}, "{",".join(mids)}"\n')

    for i, (ytid, start, mids, s) in enumerate(train_rows):
        x = tone(seconds, fs, seed=s)
        if i % 4 == 3:
            write_wav(root / "audio" / "bal" / f"Y{ytid}.flac", x, fs, fmt="FLAC")
        else:
            write_wav(root / "balanced_train_segments" / f"{ytid}_{int(start)}.wav", x, fs)
        if "/m/0bt9lr" in mids:
            write_mp4(root / "video" / f"{ytid}_{int(start)}.mp4", x, fs, seconds, seed=s)
    music_video_done = False
    for ytid, start, mids, s in test_rows:
        x = tone(seconds, fs, seed=s)
        if mids == ["/m/04rlf"] and not music_video_done:
            write_mp4(root / "video" / f"{ytid}_{int(start)}.mp4", x, fs, seconds, seed=s)
            music_video_done = True
            continue
        write_wav(root / "eval_segments" / f"{ytid}_{start:.3f}_{start + 10:.3f}.wav", x, fs)
        if "/m/0bt9lr" in mids:
            write_mp4(root / "video" / f"{ytid}_{int(start)}.mp4", x, fs, seconds, seed=s)

    # The unbalanced list: AudioCaps' clips among others never downloaded.
    caps_rng = np.random.default_rng(4321)
    audiocaps_rows = []
    for i, (mids, split, on_disk) in enumerate(_AUDIOCAPS_PLAN):
        ytid, start = _ytid(caps_rng), float(int(caps_rng.integers(0, 30)) * 10)
        n_caps = 1 if split == "train" else 5
        captions = [f"{split} caption {c} of clip {i}, a sound of {len(mids)} tags"
                    if c == 0 and i % 3 == 0 else f"{split} caption {c} of clip {i}"
                    for c in range(n_caps)]
        audiocaps_rows.append((ytid, start, mids, split, on_disk, captions))
        if on_disk:
            ms, me = int(start * 1000), int((start + 10) * 1000)
            write_wav(root / "audio" / "unbal" / f"{ytid}_{ms}_{me}.flac",
                      tone(seconds, fs, seed=500 + i), fs, fmt="FLAC")
    others = [(_ytid(caps_rng), 30.0, ["/m/09x0r"]), (_ytid(caps_rng), 0.0, ["/m/04rlf"])]
    unbalanced = [(y, st, m) for y, st, m, *_ in audiocaps_rows] + others
    unbalanced.sort(key=lambda r: r[0])  # the real list is sorted by YTID
    with open(root / "unbalanced_train_segments.csv", "w", encoding="utf-8") as f:
        f.write("# Segments csv created Sun Mar  5 10:54:25 2017\n")
        f.write(f"# num_ytids={len(unbalanced)}, num_segs={len(unbalanced)}, "
                f"num_unique_labels={len({m for r in unbalanced for m in r[2]})}, "
                f"num_positive_labels={sum(len(r[2]) for r in unbalanced)}\n")
        f.write("# YTID, start_seconds, end_seconds, positive_labels\n")
        for ytid, start, mids in unbalanced:
            f.write(f'{ytid}, {start:.3f}, {start + 10:.3f}, "{",".join(mids)}"\n')

    audiocaps = None
    if with_audiocaps:
        audiocaps = root / "audiocaps" / "dataset"
        cols = ["audiocap_id", "youtube_id", "start_time", "caption"]
        for split in ("train", "val", "test"):
            rows = [[str(91000 + 10 * i + c), y, str(int(st)), cap]
                    for i, (y, st, _, sp, _, caps) in enumerate(audiocaps_rows) if sp == split
                    for c, cap in enumerate(caps)]
            _write_csv(audiocaps / f"{split}.csv", cols, rows)
    unseen = root / "unseen_classes.txt"
    unseen.write_text("# unseen classes\n" + "\n".join(AUDIOSET_UNSEEN) + "\n")
    return {"root": root, "audiocaps": audiocaps, "unseen": unseen,
            "train_rows": train_rows, "test_rows": test_rows, "audiocaps_rows": audiocaps_rows}


# --------------------------------------------------------------------------
# VGGSound
# --------------------------------------------------------------------------

VGGSOUND_LABELS = ["people marching", "dog barking", "male speech, man speaking",
                   "playing acoustic guitar", "rain on surface"]


def make_vggsound(root: Path, n_train: int = 3, n_test: int = 2, seconds: float = 1.0,
                  fs: int = 16000, layout: str = "archive") -> Dict[str, object]:
    """A VGGSound tree: header-less ``vggsound.csv`` and the clips.

    Args:
        root: Where to build it.
        n_train: Clips per label in the CSV's train split.
        n_test: Clips per label in its test split.
        seconds: Length of every clip.
        fs: Sampling rate of the audio.
        layout: ``archive``: ``scratch/VGGSound/video/<YTID>_<start:06d>.mp4`` (the
            released archives), each with an AAC track. ``audiosetdl``: the downloader
            VGGSound's README points to, ``video/<YTID>_<start ms>_<end ms>.mp4`` and
            ``audio/<same>.flac``; clip i by ``i % 4``: 0 flac + mp4 without sound,
            1 flac only, 2 mp4 with sound only, 3 an audio-only ``<YTID>_<start:06d>.wav``
            beside an mp4 without sound of that name. Clip 4 is cut short (its name ends
            7.5 s after the start, as audiosetdl names clips at the end of a video).
            An mp4 without sound fails if the audio is taken from it.

    Returns:
        ``{"root": Path, "rows": [(ytid, start, label, split)], "files": {(ytid, start):
        (audio path, video path or None)}}``.
    """
    rng = np.random.default_rng(77)
    rows = []
    for label in VGGSOUND_LABELS:
        for split, count in (("train", n_train), ("test", n_test)):
            for _ in range(count):
                rows.append((_ytid(rng), int(rng.integers(0, 300)), label, split))
    _write_csv(root / "vggsound.csv", None, [[y, str(s), lab, sp] for y, s, lab, sp in rows])
    files: Dict[Tuple[str, int], Tuple[Path, Optional[Path]]] = {}
    for i, (ytid, start, _, _) in enumerate(rows):
        x = tone(seconds, fs, seed=i)
        if layout == "archive":
            video = root / "scratch" / "VGGSound" / "video" / f"{ytid}_{start:06d}.mp4"
            write_mp4(video, x, fs, seconds, seed=i)
            files[(ytid, start)] = (video, video)
            continue
        if layout != "audiosetdl":
            raise ValueError(f"unknown layout {layout!r}")
        end_ms = start * 1000 + (7500 if i == 4 else 10000)
        stem = f"{ytid}_{start * 1000}_{end_ms}"
        flac, mp4 = root / "audio" / f"{stem}.flac", root / "video" / f"{stem}.mp4"
        kind = i % 4
        if kind == 0:
            write_wav(flac, x, fs, fmt="FLAC")
            write_mp4(mp4, None, fs, seconds, seed=i)
            files[(ytid, start)] = (flac, mp4)
        elif kind == 1:
            write_wav(flac, x, fs, fmt="FLAC")
            files[(ytid, start)] = (flac, None)
        elif kind == 2:
            write_mp4(mp4, x, fs, seconds, seed=i)
            files[(ytid, start)] = (mp4, mp4)
        else:
            wav = root / "extracted" / f"{ytid}_{start:06d}.wav"
            video = root / "clips" / f"{ytid}_{start:06d}.mp4"
            write_wav(wav, x, fs)
            write_mp4(video, None, fs, seconds, seed=i)
            files[(ytid, start)] = (wav, video)
    return {"root": root, "rows": rows, "files": files}
