"""Log-magnitude spectrogram plots of a mixture, its references and the estimates.

Library use::

    plot_spectrograms(mixture, [ref1, ref2], [est1, est2], fs=8000, path="utt.png")

One PNG: the mixture on the top row (full width), then one row per source
index with the reference on the left and the estimate on the right, all on
one colour scale (dB relative to the loudest bin of the figure).

CLI, the first N utterances (sorted ids) of a decoding dir::

    python -m espnet2_use.scoring.plot --ref_dir data/test_ss \\
        --est_dir exp/x/decode_test_ss_ss --out_dir exp/x/plots --num 3 [--mode ss]

In ``ss`` mode the estimates are put in the row of the reference that the
SI-SNR assignment (FUSS rules, as ``use_scoring``) gives them, and each title
carries the SI-SNRi; with one active reference the mixture is the source, so
the title carries the estimate's SI-SNR instead (an SI-SNRi there measures
nothing: the 80 dB clamp decides it).  An estimate too quiet to be active is
titled as a miss; estimates assigned to no reference get rows of their own.
In ``tse`` mode estimate k is shown next to reference k.
"""
import argparse
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from espnet2_use.data.kaldi_dir import DataDirError, EstimateSet, ReferenceSet
from espnet2_use.utils.fileio import atomic_write
from espnet2_use.scoring.metrics import (
    NoActiveReferenceError,
    SSUtteranceScore,
    score_ss_utterance,
)

ArrayLike = Union[np.ndarray, torch.Tensor]


def log_magnitude(signal: ArrayLike, n_fft: int = 512, hop_length: int = 128) -> np.ndarray:
    """20 log10 |STFT| of a signal (Hann window), floored at 1e-10.

    Args:
        signal: [T] signal.

    Returns:
        [F, N] dB values.
    """
    x = torch.as_tensor(np.asarray(signal), dtype=torch.float64)  # [T]
    if x.shape[-1] < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - x.shape[-1]))  # [n_fft]
    spec = torch.stft(x, n_fft=n_fft, hop_length=hop_length, win_length=n_fft,
                      window=torch.hann_window(n_fft, dtype=torch.float64),
                      center=True, return_complex=True)  # [F, N]
    return (20.0 * torch.log10(spec.abs().clamp_min(1e-10))).numpy()


def spectrogram_figure(
    mixture: ArrayLike,
    references: Sequence[Optional[ArrayLike]],
    estimates: Sequence[Optional[ArrayLike]],
    fs: int,
    titles: Optional[Sequence[str]] = None,
    n_fft: int = 512,
    hop_length: int = 128,
    dynamic_range_db: float = 80.0,
) -> Figure:
    """The figure of :func:`plot_spectrograms` (arguments as there, but ``path``).

    With no references at all (a separation of a new recording), the estimates take
    the full width, one per row, rather than sitting beside empty panels.
    """
    refs, ests = list(references), list(estimates)
    if titles is None:
        titles = (["mixture"] + [f"reference {k}" for k in range(1, len(refs) + 1)]
                  + [f"estimate {k}" for k in range(1, len(ests) + 1)])
    if len(titles) != 1 + len(refs) + len(ests):
        raise ValueError(
            f"{len(titles)} titles for 1 mixture, {len(refs)} references and "
            f"{len(ests)} estimates"
        )
    rows = max(len(refs), len(ests))
    specs = [log_magnitude(mixture, n_fft, hop_length)]
    specs += [None if s is None else log_magnitude(s, n_fft, hop_length) for s in refs + ests]
    vmax = max(float(s.max()) for s in specs if s is not None)
    vmin = vmax - dynamic_range_db
    duration = len(np.asarray(mixture)) / fs

    # Constrained layout leaves room for the shared colour bar.
    fig = Figure(figsize=(10, 2.2 * (rows + 1)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(rows + 1, 2 if refs else 1)
    extent = (0.0, duration, 0.0, fs / 2000.0)
    est_column = 1 if refs else 0
    panels = [(grid[0, :], specs[0], titles[0])]
    panels += [(grid[1 + i, 0], specs[1 + i], titles[1 + i]) for i in range(len(refs))]
    panels += [(grid[1 + i, est_column], specs[1 + len(refs) + i], titles[1 + len(refs) + i])
               for i in range(len(ests))]
    image = None
    for cell, spec, title in panels:
        if spec is None:
            continue
        ax = fig.add_subplot(cell)
        image = ax.imshow(spec, origin="lower", aspect="auto", extent=extent,
                          vmin=vmin, vmax=vmax, cmap="magma")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("time [s]", fontsize=8)
        ax.set_ylabel("kHz", fontsize=8)
        ax.tick_params(labelsize=7)
    if image is not None:
        fig.colorbar(image, ax=fig.axes, shrink=0.6, label="dB")
    return fig


def plot_spectrograms(
    mixture: ArrayLike,
    references: Sequence[Optional[ArrayLike]],
    estimates: Sequence[Optional[ArrayLike]],
    fs: int,
    path: Union[str, Path],
    titles: Optional[Sequence[str]] = None,
    n_fft: int = 512,
    hop_length: int = 128,
    dynamic_range_db: float = 80.0,
) -> Path:
    """Draws mixture, references and estimates as spectrograms into one PNG.

    Args:
        mixture: [T] mixture.
        references: reference per row (None leaves the left panel empty; none at
            all: the estimates take the full width).
        estimates: estimate per row (None leaves the right panel empty);
            row k pairs references[k] with estimates[k].
        fs: sample rate, for the axes.
        path: PNG to write (atomically).
        titles: 1 + len(references) + len(estimates) panel titles, in the order
            mixture, references, estimates; default "mixture", "reference k",
            "estimate k".
        n_fft, hop_length: STFT of the display.
        dynamic_range_db: colour range below the loudest bin of the figure.

    Returns:
        The path written.
    """
    fig = spectrogram_figure(mixture, references, estimates, fs, titles, n_fft,
                             hop_length, dynamic_range_db)
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    return path


def plot_decoding_dir(
    ref_dir: Path,
    est_dir: Path,
    out_dir: Path,
    num: int = 3,
    mode: str = "ss",
    fs: Optional[int] = None,
    length_tolerance: int = 256,
) -> List[Path]:
    """Plots the first ``num`` utterances (sorted ids) of a decoding dir.

    Returns:
        The PNG paths, ``<out_dir>/<utt>.png``.
    """
    refs = ReferenceSet.load(ref_dir)
    ests = EstimateSet.load(est_dir)
    paths = []
    for utt in ests.utts[:num]:
        if utt not in refs.wav:
            raise DataDirError(f"{est_dir}: utterance {utt!r} is not in {ref_dir}/wav.scp")
        mixture, references, rate = refs.load_utterance(utt, fs)
        ks = [k for k, m in ests.spk.items() if utt in m]
        estimates = {k: ests.load_estimate(utt, k, mixture.shape[0], rate, length_tolerance)[0]
                     for k in ks}
        if mode == "ss":
            row_refs, row_ests, titles = _ss_rows(mixture, references, estimates, utt)
        else:
            n = max(len(references), max(ks))
            row_refs = [references[i] if i < len(references) else None for i in range(n)]
            row_ests = [estimates.get(i + 1) for i in range(n)]
            titles = [utt] + [f"reference {i + 1}" for i in range(n)] + [
                f"extracted {i + 1}" for i in range(n)]
        name = "".join(c if c.isalnum() or c in "._+-" else "_" for c in utt)
        paths.append(plot_spectrograms(mixture, row_refs, row_ests, rate,
                                       Path(out_dir) / f"{name}.png", titles))
    return paths


def _ss_rows(
    mixture: np.ndarray,
    references: Sequence[np.ndarray],
    estimates: Dict[int, np.ndarray],
    utt: str,
) -> Tuple[List[Optional[np.ndarray]], List[Optional[np.ndarray]], List[str]]:
    """Orders SS estimates by their assigned reference; titles carry the score.

    Returns:
        References and estimates per row, and the panel titles (see
        :func:`plot_spectrograms`): "spk{k} (SI-SNRi x dB)" for an active pair
        of a multi-source utterance, "spk{k} (SI-SNR x dB)" with one active
        reference, "spk{k} (inactive: missed)" for an inactive estimate.
    """
    ks = sorted(estimates)
    try:
        score = score_ss_utterance(mixture, references, [estimates[k] for k in ks],
                                   compute_sdr=False)
        assignment = list(score.assignment)
    except NoActiveReferenceError:
        score, assignment = None, [-1] * len(references)
    row_refs: List[Optional[np.ndarray]] = list(references)
    row_ests: List[Optional[np.ndarray]] = []
    est_titles = []
    for r, e in enumerate(assignment):
        if e >= 0:
            row_ests.append(estimates[ks[e]])
            est_titles.append(_ss_title(ks[e], r, score))
        else:
            row_ests.append(None)
            est_titles.append("")
    for i, k in enumerate(ks):
        if i not in assignment:  # estimate assigned to no reference: own row
            row_refs.append(None)
            row_ests.append(estimates[k])
            est_titles.append(f"spk{k} (unassigned)")
    titles = [utt] + [f"reference {r + 1}" if ref is not None else ""
                      for r, ref in enumerate(row_refs)] + est_titles
    return row_refs, row_ests, titles


def _ss_title(k: int, r: int, score: SSUtteranceScore) -> str:
    """Title of estimate ``spk{k}`` assigned to reference index ``r``."""
    if not score.pair_active[r]:
        return f"spk{k} (inactive: missed)"
    if score.num_ref_active == 1:
        # The mixture is the source: its SI-SNRi would be the clamp's, not a measure.
        return f"spk{k} (SI-SNR {score.si_snr[r]:.1f} dB)"
    return f"spk{k} (SI-SNRi {score.si_snri[r]:.1f} dB)"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Spectrogram PNGs of the first utterances of a decoding dir",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--ref_dir", type=Path, required=True)
    parser.add_argument("--est_dir", type=Path, required=True)
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--num", type=int, default=3, help="number of utterances")
    parser.add_argument("--mode", choices=["ss", "tse"], default="ss")
    parser.add_argument("--fs", type=int, default=None)
    parser.add_argument("--length_tolerance", type=int, default=256)
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> List[Path]:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level="INFO",
                        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    paths = plot_decoding_dir(args.ref_dir, args.est_dir, args.out_dir, args.num,
                              args.mode, args.fs, args.length_tolerance)
    for p in paths:
        logging.info(f"wrote {p}")
    return paths


if __name__ == "__main__":
    main()
