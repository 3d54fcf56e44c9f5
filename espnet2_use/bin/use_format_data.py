"""Format a data directory for training and decoding (recipe stage 2).

Copies ``data/<set>`` to ``dump/raw/<set>``: the text files as they are, and the
audio lists (``wav.scp``, ``spk{k}.scp``, ``enroll_spk{k}.scp``) with every file
that is not already mono at ``--fs`` converted (downmixed, resampled) into
``<out_dir>/audio/``. Files that already fit are referenced, not copied. An absent
audio example (empty value in ``enroll_spk{k}.scp``) becomes the shared zero-length
``silence.wav``, because ESPnet's sound loader needs a file on every line.

The output folder is built beside its final place and renamed into it, so it is
whole or absent; ``<out_dir>/.done`` holds a hash of the inputs and options, and a
re-run with the same inputs does nothing.

Example:
    python -m espnet2_use.bin.use_format_data --in_dir data/train --out_dir dump/raw/train --fs 8000
"""
import argparse
import hashlib
import os
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf
from tqdm import tqdm

from espnet2_use.utils.audio import load_mono
from espnet2_use.data.kaldi_dir import parse_sample_rate, read_kaldi_text, write_kaldi_text

AUDIO_LIST = re.compile(r"^(wav|spk\d+|enroll_spk\d+)\.scp$")
MARKER = ".done"


def _hash_inputs(in_dir: Path, fs: int) -> str:
    h = hashlib.sha256(f"fs={fs}\n".encode())
    for path in sorted(p for p in in_dir.iterdir() if p.is_file()):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _convert(src: str, dst: Path, fs: int) -> str:
    """``src`` if it is mono at ``fs``; else a mono, resampled copy at ``dst``."""
    try:
        info = sf.info(src)
    except (RuntimeError, sf.LibsndfileError) as e:
        raise ValueError(f"{src}: cannot read audio ({e})") from None
    if info.samplerate == fs and info.channels == 1:
        return src
    wav = load_mono(src, fs)
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(dst, np.asarray(wav, dtype=np.float32), fs, subtype="FLOAT")
    return str(dst)


def format_data_dir(in_dir: Path, out_dir: Path, fs: int, nj: int = 4) -> bool:
    """Format ``in_dir`` into ``out_dir``; returns False when it was already done."""
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not (in_dir / "wav.scp").is_file():
        raise FileNotFoundError(f"{in_dir}/wav.scp: no such file (is {in_dir} a data directory?)")
    digest = _hash_inputs(in_dir, fs)
    marker = out_dir / MARKER
    if marker.is_file() and marker.read_text().strip() == digest:
        return False
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        # Converted audio is written under its final name: paths inside the lists
        # must be right after the rename.
        silence = out_dir / "silence.wav"
        sf.write(tmp / "silence.wav", np.zeros(0, dtype=np.float32), fs, subtype="FLOAT")
        jobs: List[Tuple[str, str, str, Path]] = []  # (list, utt, src, final dst)
        lists: Dict[str, Dict[str, str]] = {}
        for path in sorted(in_dir.iterdir()):
            if not path.is_file() or path.name == MARKER:
                continue
            if not AUDIO_LIST.match(path.name):
                shutil.copyfile(path, tmp / path.name)
                continue
            entries = read_kaldi_text(path)
            lists[path.name] = entries
            stem = path.name[: -len(".scp")]
            for utt, src in entries.items():
                if not src:
                    if not stem.startswith("enroll_spk"):
                        raise ValueError(f"{path}: utterance {utt} has no audio path")
                    entries[utt] = str(silence)
                    continue
                jobs.append((path.name, utt, src, out_dir / "audio" / stem / f"{utt}.wav"))

        def run(job: Tuple[str, str, str, Path]) -> Tuple[str, str, str]:
            name, utt, src, dst = job
            staged = tmp / dst.relative_to(out_dir)
            result = _convert(src, staged, fs)
            return name, utt, str(dst) if result == str(staged) else result

        with ThreadPoolExecutor(max_workers=max(1, nj)) as pool:
            for name, utt, final in tqdm(pool.map(run, jobs), total=len(jobs),
                                         desc=f"format {in_dir.name}", mininterval=5):
                lists[name][utt] = final
        for name, entries in lists.items():
            write_kaldi_text(tmp / name, entries)
        (tmp / MARKER).write_text(digest + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return True


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--in_dir", required=True, type=Path, action="append",
                        help="data directory (repeat for several, with as many --out_dir)")
    parser.add_argument("--out_dir", required=True, type=Path, action="append")
    parser.add_argument("--fs", required=True, type=parse_sample_rate, help="e.g. 8000 or 8k")
    parser.add_argument("--nj", type=int, default=4, help="threads converting audio")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    if len(args.in_dir) != len(args.out_dir):
        raise SystemExit("give one --out_dir per --in_dir")
    for in_dir, out_dir in zip(args.in_dir, args.out_dir):
        done = format_data_dir(in_dir, out_dir, args.fs, args.nj)
        print(f"{'formatted' if done else 'up to date'}: {in_dir} -> {out_dir}")


if __name__ == "__main__":
    main()
