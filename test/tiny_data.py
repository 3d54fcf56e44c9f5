"""Tiny data directories in the layout of egs2/TEMPLATE/use1/README.md, for tests.

Sources are tones of three classes (low, mid, high) whose pitch varies per clip, so
that a tiny model has something learnable; every source has a label, a caption and
an audio example of its class.
"""
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import soundfile as sf

LABELS = ("low_tone", "mid_tone", "high_tone")
BASE_HZ = {"low_tone": 220.0, "mid_tone": 700.0, "high_tone": 1800.0}
CAPTIONS = {
    "low_tone": "a low humming tone",
    "mid_tone": "a steady beep in the middle",
    "high_tone": "a high whistle",
}


def tone(label: str, num_samples: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    f0 = BASE_HZ[label] * rng.uniform(0.9, 1.1)
    t = np.arange(num_samples) / fs
    env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(1, 3) * t + rng.uniform(0, 6))
    return (0.25 * env * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


def write_set(
    root: Path,
    name: str,
    counts: Sequence[int],
    fs: int = 8000,
    max_num_src: int = 3,
    seconds: float = 0.5,
    seed: int = 0,
    cues: bool = True,
) -> Path:
    """Write ``root/name`` with one utterance per entry of ``counts``; returns the dir."""
    rng = np.random.default_rng(seed)
    d = Path(root) / name
    (d / "wav").mkdir(parents=True, exist_ok=True)
    silence = d / "silence.wav"
    sf.write(silence, np.zeros(0, dtype=np.float32), fs, subtype="FLOAT")
    files: Dict[str, List[str]] = {"wav.scp": [], "utt2num_src": []}
    keys = [f"spk{k}.scp" for k in range(1, max_num_src + 1)]
    if cues:
        for k in range(1, max_num_src + 1):
            keys += [f"label_spk{k}", f"text_spk{k}", f"enroll_spk{k}.scp", f"video_spk{k}.scp"]
        pictures = {label: draw_picture(d / "img" / f"{label}.png", i) for i, label in enumerate(LABELS)}
    files.update({key: [] for key in keys})
    num_samples = int(seconds * fs)
    for i, n in enumerate(counts):
        utt = f"{name}_{i:04d}"
        labels = rng.permutation(LABELS)[:n]
        sources = []
        for k in range(1, max_num_src + 1):
            if k <= n:
                src = tone(labels[k - 1], num_samples, fs, rng)
                path = d / "wav" / f"{utt}_s{k}.wav"
                sf.write(path, src, fs, subtype="FLOAT")
                sources.append(src)
                files[f"spk{k}.scp"].append(f"{utt} {path}")
                if cues:
                    example = d / "wav" / f"{utt}_e{k}.wav"
                    sf.write(example, tone(labels[k - 1], num_samples, fs, rng), fs, subtype="FLOAT")
                    files[f"label_spk{k}"].append(f"{utt} {labels[k - 1]}")
                    files[f"text_spk{k}"].append(f"{utt} {CAPTIONS[labels[k - 1]]}")
                    files[f"enroll_spk{k}.scp"].append(f"{utt} {example}")
                    files[f"video_spk{k}.scp"].append(f"{utt} {pictures[labels[k - 1]]}")
            else:
                files[f"spk{k}.scp"].append(f"{utt} {silence}")
                if cues:
                    for key in (f"label_spk{k}", f"text_spk{k}", f"enroll_spk{k}.scp", f"video_spk{k}.scp"):
                        files[key].append(utt)
        mix = d / "wav" / f"{utt}_mix.wav"
        sf.write(mix, np.sum(sources, axis=0), fs, subtype="FLOAT")
        files["wav.scp"].append(f"{utt} {mix}")
        files["utt2num_src"].append(f"{utt} {n}")
    for key, lines in files.items():
        (d / key).write_text("".join(line + "\n" for line in sorted(lines)))
    return d


def draw_picture(path: Path, index: int) -> Path:
    """A picture per class: a coloured shape on a plain background."""
    from PIL import Image, ImageDraw

    path.parent.mkdir(parents=True, exist_ok=True)
    colours = [(220, 40, 40), (40, 180, 60), (50, 80, 220)]
    img = Image.new("RGB", (64, 64), (240, 240, 230))
    draw = ImageDraw.Draw(img)
    box = (12, 12, 52, 52)
    [draw.ellipse, draw.rectangle, draw.polygon][index % 3](
        box if index % 3 < 2 else [(32, 8), (56, 56), (8, 56)], fill=colours[index % 3]
    )
    img.save(path)
    return path


def write_labels(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(label + "\n" for label in LABELS))
    return path


def data_args(
    d: Path, mode: str, max_num_src: int = 3, labels: bool = False, example: bool = False
) -> List[str]:
    """ESPnet ``--{mode}_data_path_and_name_and_type`` arguments for a set of ``write_set``."""
    entries = [(d / "wav.scp", "speech_mix", "sound"), (d / "utt2num_src", "num_src", "text_int")]
    for k in range(1, max_num_src + 1):
        entries.append((d / f"spk{k}.scp", f"speech_ref{k}", "sound"))
        if labels:
            entries.append((d / f"label_spk{k}", f"label_spk{k}", "text"))
    if example:
        # ESPnet's sound loader needs a file per line: absent examples become silence.
        for k in range(1, max_num_src + 1):
            scp = d / f"enroll_spk{k}.scp"
            filled = d / f"enroll_ref{k}.scp"
            lines = []
            for line in scp.read_text().splitlines():
                parts = line.split(maxsplit=1)
                lines.append(line if len(parts) == 2 else f"{parts[0]} {d / 'silence.wav'}")
            filled.write_text("".join(x + "\n" for x in lines))
            entries.append((filled, f"enroll_ref{k}", "sound"))
    args = []
    for path, name, kind in entries:
        args += [f"--{mode}_data_path_and_name_and_type", f"{path},{name},{kind}"]
    return args
