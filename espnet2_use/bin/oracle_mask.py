#!/usr/bin/env python3
"""Oracle ideal ratio mask (IRM): the upper-reference row of every SS results table.

For each utterance of a reference set, with the STFTs X of the mixture and S_k
of references 1..n::

    IRM_k = |S_k| / (sum_j |S_j| + eps),   s_hat_k = iSTFT(IRM_k * X)

and the estimates are written as a decoding dir in the SS layout of
``egs2/TEMPLATE/use1/README.md`` (``spk{k}.scp``, ``wavs/``, ``utt2num_src`` =
the true count), so ``use_scoring --mode ss`` scores it like a model::

    python -m espnet2_use.bin.oracle_mask --ref_dir data/test_ss \\
        --out_dir exp/oracle_irm/decode_test_ss_ss [--n_fft 256 --hop_length 64]
    python -m espnet2_use.bin.use_scoring --mode ss --ref_dir data/test_ss \\
        --est_dir exp/oracle_irm/decode_test_ss_ss

The defaults (256-point FFT, hop 64, Hann window) are 32 ms / 8 ms at 8 kHz;
scale them with the sample rate.  The output dir is built in a temporary
sibling and renamed into place, so it is either complete or absent; a previous
one is replaced.  Wavs are float32, so no clipping or quantisation enters the
oracle scores.

References:
    Y. Wang, A. Narayanan, D. Wang, "On training targets for supervised speech
    separation", IEEE/ACM TASLP 2014 (ideal ratio mask).
"""
import argparse
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from espnet2_use.data.kaldi_dir import DataDirError, ReferenceSet
from espnet2_use.data.layout import REFERENCE
from espnet2_use.utils.fileio import atomic_write_text, atomic_write_wav

DEFAULT_EPS = 1e-8


def oracle_irm(
    mixture: np.ndarray,
    references: Sequence[np.ndarray],
    n_fft: int = 256,
    hop_length: int = 64,
    eps: float = DEFAULT_EPS,
) -> np.ndarray:
    """Separates a mixture with the oracle magnitude-ratio mask of its references.

    Args:
        mixture: [T] mixture.
        references: n references, each [T].
        n_fft: FFT size (also the Hann window length).
        hop_length: hop in samples.
        eps: added to the mask denominator so silent bins give mask 0.

    Returns:
        [n, T] estimates (float64).
    """
    if len(references) == 0:
        raise ValueError("oracle_irm needs at least one reference")
    mix = torch.as_tensor(np.asarray(mixture), dtype=torch.float64)  # [T]
    refs = torch.as_tensor(np.stack(references), dtype=torch.float64)  # [n, T]
    if refs.shape[-1] != mix.shape[-1]:
        raise ValueError(f"references have {refs.shape[-1]} samples, the mixture {mix.shape[-1]}")
    window = torch.hann_window(n_fft, dtype=torch.float64)
    stft = dict(n_fft=n_fft, hop_length=hop_length, win_length=n_fft, window=window,
                center=True, return_complex=True)
    spec_mix = torch.stft(mix, **stft)  # [F, N]
    spec_refs = torch.stft(refs, **stft)  # [n, F, N]
    mag = spec_refs.abs()  # [n, F, N]
    irm = mag / (mag.sum(dim=0, keepdim=True) + eps)  # [n, F, N]
    est = torch.istft(irm * spec_mix.unsqueeze(0), n_fft=n_fft, hop_length=hop_length,
                      win_length=n_fft, window=window, center=True,
                      length=mix.shape[-1])  # [n, T]
    return est.numpy()


def _safe_name(utt: str) -> str:
    """File name of an utterance id (ids may hold characters unsafe in paths)."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", utt)


def write_oracle_dir(
    ref_dir: Path,
    out_dir: Path,
    n_fft: int = 256,
    hop_length: int = 64,
    fs: Optional[int] = None,
    eps: float = DEFAULT_EPS,
    progress: bool = True,
) -> Path:
    """Writes the oracle-IRM decoding dir of a reference set.

    Args:
        ref_dir: reference data dir.
        out_dir: decoding dir to (re)create.
        n_fft, hop_length, eps: see :func:`oracle_irm`.
        fs: expected sample rate (None: the first mixture's).
        progress: show a tqdm progress bar.

    Returns:
        ``out_dir``.
    """
    ref_dir, out_dir = Path(ref_dir), Path(out_dir)
    refs = ReferenceSet.load(ref_dir)
    names = {u: _safe_name(u) for u in refs.utts}
    if len(set(names.values())) != len(names):
        raise DataDirError(f"{ref_dir}: utterance ids collide once made file-name safe")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        scp: Dict[int, List[str]] = {}
        counts: List[str] = []
        for utt in tqdm(refs.utts, desc="oracle IRM", disable=not progress):
            mixture, references, rate = refs.load_utterance(utt, fs)
            fs = rate if fs is None else fs
            estimates = oracle_irm(mixture, references, n_fft, hop_length, eps)  # [n, T]
            for k, est in enumerate(estimates, 1):
                name = f"{names[utt]}_spk{k}.wav"
                atomic_write_wav(tmp / "wavs" / name, est, fs)
                # The scp names the final location: the temp dir is renamed below.
                scp.setdefault(k, []).append(f"{utt} {out_dir / 'wavs' / name}\n")
            counts.append(f"{utt} {len(references)}\n")
        for k, lines in scp.items():
            atomic_write_text(tmp / REFERENCE.file_name(k), "".join(lines))
        atomic_write_text(tmp / "utt2num_src", "".join(counts))
        # mkdtemp makes the dir private (0o700); give it the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        old = None
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
            os.rename(out_dir, old / "dir")
        os.rename(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Oracle ideal-ratio-mask decoding dir (SS layout) of a reference set",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--ref_dir", type=Path, required=True, help="reference data dir")
    parser.add_argument("--out_dir", type=Path, required=True, help="decoding dir to write")
    parser.add_argument("--n_fft", type=int, default=256, help="FFT size = window length")
    parser.add_argument("--hop_length", type=int, default=64)
    parser.add_argument("--fs", type=int, default=None, help="expected sample rate")
    parser.add_argument("--eps", type=float, default=DEFAULT_EPS)
    parser.add_argument("--no_progress", action="store_true")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> Path:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level="INFO",
                        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    out = write_oracle_dir(args.ref_dir, args.out_dir, args.n_fft, args.hop_length,
                           args.fs, args.eps, progress=not args.no_progress)
    logging.info(f"wrote oracle IRM estimates to {out}")
    return out


if __name__ == "__main__":
    main()
