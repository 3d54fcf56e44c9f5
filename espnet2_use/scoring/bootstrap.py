"""Means with 95 % intervals over test mixtures and training seeds, and of differences.

A system's score on a test set is a matrix ``[S, N]``: S training seeds, N test
mixtures, one number per (seed, mixture) (e.g. the mixture's mean SI-SNRi over its
references). Its headline is the mean of the matrix; its interval comes from a
two-level bootstrap (as in Koehn 2004's paired bootstrap for test items, with the
seeds resampled too, since a second training run moves a model as much as a second
test set does): each resample draws N mixtures with replacement and S seeds with
replacement, and takes the mean; the interval is the 2.5 and 97.5 percentiles of the
resampled means.

Two systems scored on the same mixtures are compared *paired*: each resample draws
one set of mixtures for both (a hard mixture is hard for both, and that variance
cancels in the difference) and each system's seeds independently (seeds of two
systems have nothing to do with each other). A claim "A beats B" holds when the
interval of A - B lies above 0.

References:
    P. Koehn, "Statistical significance tests for machine translation evaluation",
    EMNLP 2004.
"""
from typing import Dict, List, Sequence, Union

import numpy as np

ArrayLike = Union[np.ndarray, Sequence[float], Sequence[Sequence[float]]]
NUM_RESAMPLES = 10000
LEVEL = 0.95


def _matrix(values: ArrayLike, name: str) -> np.ndarray:
    """[N] or [S, N] -> [S, N] float64; every value finite."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name}: expected scores [mixtures] or [seeds, mixtures], got shape {arr.shape}")
    bad = int(np.size(arr) - np.isfinite(arr).sum())
    if bad:
        raise ValueError(f"{name}: {bad} of {arr.size} scores are NaN or infinite; score every "
                         "(seed, mixture) pair (a missed source is 0 dB, not missing)")
    return arr


def _resampled_means(
    arr: np.ndarray, mixtures: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Means of ``arr`` [S, N] over the drawn mixtures [R, N] and freshly drawn seeds: [R]."""
    num_seeds = arr.shape[0]
    per_seed = arr[:, mixtures].mean(axis=-1)  # [S, R]
    seeds = rng.integers(0, num_seeds, size=(mixtures.shape[0], num_seeds))  # [R, S]
    return per_seed[seeds, np.arange(mixtures.shape[0])[:, None]].mean(axis=-1)  # [R]


def _interval(samples: np.ndarray, level: float) -> List[float]:
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return [float(low), float(high)]


def bootstrap_mean(
    values: ArrayLike, num_resamples: int = NUM_RESAMPLES, level: float = LEVEL, seed: int = 0
) -> Dict:
    """Mean of one system's scores with its bootstrap interval.

    Args:
        values: [N] or [S, N] scores (seeds x mixtures).
        num_resamples: bootstrap resamples.
        level: coverage of the interval.
        seed: of the resampling (the interval is reproducible).

    Returns:
        ``{"mean", "ci": [low, high], "seeds": S, "mixtures": N}``.
    """
    arr = _matrix(values, "values")
    rng = np.random.default_rng(seed)
    mixtures = rng.integers(0, arr.shape[1], size=(num_resamples, arr.shape[1]))
    samples = _resampled_means(arr, mixtures, rng)
    return {"mean": float(arr.mean()), "ci": _interval(samples, level),
            "seeds": int(arr.shape[0]), "mixtures": int(arr.shape[1])}


def paired_difference(
    a: ArrayLike, b: ArrayLike, num_resamples: int = NUM_RESAMPLES, level: float = LEVEL,
    seed: int = 0,
) -> Dict:
    """Mean of A - B over the same test mixtures, with its paired bootstrap interval.

    Args:
        a: [N] or [Sa, N] scores of system A.
        b: [N] or [Sb, N] scores of system B on the same N mixtures, in the same order.
        num_resamples, level, seed: as :func:`bootstrap_mean`.

    Returns:
        ``{"mean", "ci": [low, high], "above_zero": low > 0}``.
    """
    arr_a, arr_b = _matrix(a, "a"), _matrix(b, "b")
    if arr_a.shape[1] != arr_b.shape[1]:
        raise ValueError(f"a has {arr_a.shape[1]} mixtures and b {arr_b.shape[1]}: a paired "
                         "difference needs the same test mixtures in the same order")
    rng = np.random.default_rng(seed)
    mixtures = rng.integers(0, arr_a.shape[1], size=(num_resamples, arr_a.shape[1]))
    samples = _resampled_means(arr_a, mixtures, rng) - _resampled_means(arr_b, mixtures, rng)
    ci = _interval(samples, level)
    return {"mean": float(arr_a.mean() - arr_b.mean()), "ci": ci, "above_zero": bool(ci[0] > 0)}
