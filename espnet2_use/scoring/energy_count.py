"""Counting by output energy: how a separator with a fixed number of outputs says how
many sources a mixture holds (FUSS's baseline, the peer USE's paper beats).

A model trained with silent references (``use_thresholded_snr``) learns to leave an
output quiet where there is no source. An output counts as a source when its power,
in dB relative to the mixture's, exceeds a threshold; the threshold is the one that
counts best on a validation set (:func:`choose_threshold`), never tuned on the test
set. A mixture that is not silent gets at least one source, as USE's ``min_num_src``
gives it.
"""
from typing import Dict, List, Sequence

import numpy as np

# Candidate thresholds, dB below (negative) or above the mixture's power.
CANDIDATES_DB = tuple(np.round(np.arange(-40.0, 0.01, 0.5), 2))


def output_levels_db(mixture: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Power of each output [M, T] relative to the mixture [T], in dB: [M]."""
    outputs = np.atleast_2d(np.asarray(outputs, dtype=np.float64))
    mixture = np.asarray(mixture, dtype=np.float64)
    if mixture.ndim != 1 or outputs.shape[-1] != mixture.shape[0]:
        raise ValueError(f"outputs {outputs.shape} and mixture {mixture.shape}: expected [M, T] and [T]")
    mix_power = np.mean(mixture**2)
    if mix_power <= 0:
        raise ValueError("the mixture is silent: nothing to count")
    return 10 * np.log10(np.mean(outputs**2, axis=-1) / mix_power + 1e-20)


def energy_count(levels_db: Sequence[float], threshold_db: float, min_count: int = 1) -> int:
    """Number of outputs louder than ``threshold_db`` (at least ``min_count``)."""
    return max(int(np.sum(np.asarray(levels_db) > threshold_db)), min_count)


def kept_outputs(levels_db: Sequence[float], threshold_db: float, min_count: int = 1) -> List[int]:
    """Indices of the outputs that count, in their order; the loudest when none does."""
    levels = np.asarray(levels_db, dtype=np.float64)
    kept = [i for i, v in enumerate(levels) if v > threshold_db]
    if len(kept) < min_count:
        kept = sorted(np.argsort(-levels)[:min_count].tolist())
    return kept


def choose_threshold(
    levels: Sequence[Sequence[float]], true_counts: Sequence[int],
    candidates: Sequence[float] = CANDIDATES_DB,
) -> Dict:
    """The threshold that counts the validation mixtures best.

    Among the candidates of the highest accuracy (a plateau, usually), the middle one is
    taken, as far as possible from both edges where counting starts to fail.

    Args:
        levels: per validation mixture, its outputs' levels (:func:`output_levels_db`).
        true_counts: its number of sources.
        candidates: thresholds to try, in dB.

    Returns:
        ``{"threshold_db", "accuracy", "num_utts"}``.
    """
    if len(levels) != len(true_counts) or not levels:
        raise ValueError(f"{len(levels)} mixtures of levels and {len(true_counts)} counts: "
                         "one count per validation mixture expected")
    truth = np.asarray(true_counts)
    accuracy = np.array([
        np.mean([energy_count(lv, c) for lv in levels] == truth) for c in candidates
    ])
    best = np.flatnonzero(accuracy == accuracy.max())
    pick = best[len(best) // 2]
    return {"threshold_db": float(candidates[pick]), "accuracy": float(accuracy[pick]),
            "num_utts": int(len(levels))}
