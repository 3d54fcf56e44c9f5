"""Separation and extraction metrics for USE: SI-SNR, SNR, SDR, FUSS-style SS scoring.

All functions are pure: they take numpy arrays or torch tensors (any float dtype,
any device), compute in float64 on the CPU, and return Python floats, numpy
arrays or plain dicts.  Argument order follows bss_eval and ESPnet's
``enh_scoring``: the **reference comes first**, then the estimate.

Metric definitions (the numbers a RESULTS.md reports):

- ``si_snr``: scale-invariant SNR, i.e. SI-SDR of the zero-mean signals
  (Le Roux et al. 2019; the "SI-SNR" of Conv-TasNet), from ``fast_bss_eval``.
- ``sdr``: BSS Eval v4 SDR with a time-invariant 512-tap distortion filter
  (``fast_bss_eval``, numerically the ``museval``/``mir_eval`` definition with a
  fixed filter).  SDR of a pair depends on that pair only.
- ``snr``: plain SNR ``10 log10(|s|^2 / |s - s_hat|^2)`` (no scaling allowed).
- ``*_improvement``: metric of the estimate minus metric of the mixture used
  as the estimate of the same reference.

Two ways to average SS improvements over the references of a set (see
:func:`score_ss_utterance` and :func:`every_reference_improvement`):

- *every reference* (the headline): every active reference counts; one that
  gets no active estimate (none left for it, or the one assigned is inactive)
  scores as if the mixture had been returned, 0 dB SI-SNRi and 0 dB SDRi;
- *FUSS rule*: only (reference, estimate) pairs that are both active are
  averaged, so a missed reference drops out of the mean (comparable with FUSS
  papers, but it flatters a system that misses sources).

Every value is clamped to ``[-clamp_db, clamp_db]`` (default 80 dB, the range
that FUSS's epsilon of 1e-8 gives its SI-SNR), so silent or perfect estimates
give finite, comparable numbers instead of inf/NaN.

Note on the backend: ``fast_bss_eval`` 0.1.3's numpy backend calls
``np.linalg.solve`` with the pre-NumPy-2 broadcasting rule and fails on
NumPy >= 2 (numpy/numpy#25914), so the torch backend is used for every call.

References:
    J. Le Roux et al., "SDR - half-baked or well done?", ICASSP 2019.
    R. Scheibler, "SDR - Medium Rare with Fast Computations", ICASSP 2022
    (fast_bss_eval).
    S. Wisdom et al., "What's All the FUSS About Free Universal Sound
    Separation Data?", ICASSP 2021; evaluation code
    google-research/sound-separation, models/dcase2020_fuss_baseline/evaluate_lib.py.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import fast_bss_eval
import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence[float]]

DEFAULT_CLAMP_DB = 80.0
# FUSS rules (evaluate_lib.py): a reference is active if its RMS exceeds 1e-8;
# an estimate is active if its power exceeds 1% (-20 dB) of the power of the
# quietest active reference.
REF_RMS_THRESHOLD = 1e-8
EST_POWER_RATIO = 0.01
DEFAULT_SDR_FILTER_LENGTH = 512


class NoActiveReferenceError(ValueError):
    """Raised when an utterance has no active reference (FUSS skips those)."""


def _as_signals(x: Union[ArrayLike, Sequence[ArrayLike]], name: str) -> np.ndarray:
    """Converts one signal or a stack of signals to a float64 numpy array."""
    if isinstance(x, torch.Tensor):
        arr = x.detach().to("cpu", torch.float64).numpy()
    elif isinstance(x, (list, tuple)) and len(x) > 0 and not np.isscalar(x[0]):
        parts = [_as_signals(s, f"{name}[{i}]") for i, s in enumerate(x)]
        shapes = {p.shape for p in parts}
        if len(shapes) > 1:
            raise ValueError(f"{name}: signals of different shapes {sorted(shapes)}")
        arr = np.stack(parts)
    else:
        arr = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf values")
    return arr


def _as_signal(x: ArrayLike, name: str) -> np.ndarray:
    arr = _as_signals(x, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one signal [T], got shape {arr.shape}")
    return arr


def _same_length(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"{name_a} has {a.shape[-1]} samples but {name_b} has {b.shape[-1]}: "
            "crop or pad to a common length first"
        )


def _unit_norm(x: np.ndarray) -> np.ndarray:
    """Scales each signal to unit norm (all-zero signals stay zero).

    SI-SNR and SDR are invariant to the scale of either argument, while
    fast_bss_eval floors norms at 1e-6 internally; rescaling first keeps very
    quiet (but FUSS-active) signals exact.
    """
    norm = np.linalg.norm(x, axis=-1, keepdims=True)  # [..., 1]
    return np.where(norm > 0, x / np.where(norm > 0, norm, 1.0), 0.0)


def _clamp(value: np.ndarray, clamp_db: Optional[float]) -> np.ndarray:
    if clamp_db is None:
        return value
    return np.clip(value, -clamp_db, clamp_db)


def pairwise_si_snr(
    references: Union[ArrayLike, Sequence[ArrayLike]],
    estimates: Union[ArrayLike, Sequence[ArrayLike]],
    zero_mean: bool = True,
    clamp_db: Optional[float] = DEFAULT_CLAMP_DB,
) -> np.ndarray:
    """SI-SNR of every (reference, estimate) pair.

    Args:
        references: [R, T] reference signals.
        estimates: [E, T] estimated signals.
        zero_mean: subtract each signal's mean first (SI-SNR convention).
        clamp_db: clamp the result to [-clamp_db, clamp_db]; None for no clamp.

    Returns:
        [R, E] array, entry (r, e) = SI-SNR of estimate e against reference r.
    """
    refs = _as_signals(references, "references")
    ests = _as_signals(estimates, "estimates")
    if refs.ndim != 2 or ests.ndim != 2:
        raise ValueError(
            f"references and estimates must be [N, T], got {refs.shape} and {ests.shape}"
        )
    if refs.shape[0] == 0 or ests.shape[0] == 0:
        return np.zeros((refs.shape[0], ests.shape[0]))
    _same_length("references", refs, "estimates", ests)
    if zero_mean:
        refs = refs - refs.mean(axis=-1, keepdims=True)
        ests = ests - ests.mean(axis=-1, keepdims=True)
    refs_t = torch.from_numpy(_unit_norm(refs))[:, None, :]  # [R, 1, T]
    ests_t = torch.from_numpy(_unit_norm(ests))[None, :, :]  # [1, E, T]
    refs_t, ests_t = torch.broadcast_tensors(refs_t, ests_t)  # [R, E, T]
    # Mean already removed above; the clamp is applied by fast_bss_eval on
    # the coherence, so silent estimates give exactly -clamp_db.
    neg = fast_bss_eval.si_sdr_loss(
        ests_t.contiguous(), refs_t.contiguous(), zero_mean=False, clamp_db=clamp_db
    )  # [R, E]
    return -neg.numpy()


def si_snr(
    reference: ArrayLike,
    estimate: ArrayLike,
    zero_mean: bool = True,
    clamp_db: Optional[float] = DEFAULT_CLAMP_DB,
) -> float:
    """Scale-invariant SNR (zero-mean SI-SDR) of one estimate, in dB.

    Args:
        reference: [T] reference signal.
        estimate: [T] estimated signal.
        zero_mean: subtract each signal's mean first.
        clamp_db: clamp the result to [-clamp_db, clamp_db]; None for no clamp.
    """
    ref = _as_signal(reference, "reference")
    est = _as_signal(estimate, "estimate")
    return float(pairwise_si_snr(ref[None], est[None], zero_mean, clamp_db)[0, 0])


def snr(
    reference: ArrayLike,
    estimate: ArrayLike,
    clamp_db: Optional[float] = DEFAULT_CLAMP_DB,
) -> float:
    """Plain SNR ``10 log10(|s|^2 / |s - s_hat|^2)`` in dB (scale-dependent).

    Args:
        reference: [T] reference signal s.
        estimate: [T] estimated signal s_hat.
        clamp_db: clamp the result to [-clamp_db, clamp_db]; None for no clamp
            (then an exact estimate gives +inf and a zero reference -inf).
    """
    ref = _as_signal(reference, "reference")
    est = _as_signal(estimate, "estimate")
    _same_length("reference", ref, "estimate", est)
    signal_power = float(np.sum(ref**2))
    noise_power = float(np.sum((ref - est) ** 2))
    with np.errstate(divide="ignore"):
        if noise_power == 0.0:
            value = np.inf if signal_power > 0.0 else 0.0
        else:
            value = 10.0 * np.log10(signal_power / noise_power)
    return float(_clamp(np.asarray(value), clamp_db))


def sdr(
    reference: ArrayLike,
    estimate: ArrayLike,
    filter_length: int = DEFAULT_SDR_FILTER_LENGTH,
    clamp_db: Optional[float] = DEFAULT_CLAMP_DB,
) -> float:
    """BSS Eval v4 SDR of one estimate in dB (fast_bss_eval, fixed distortion filter).

    Args:
        reference: [T] reference signal.
        estimate: [T] estimated signal.
        filter_length: taps of the allowed distortion filter (BSS Eval: 512);
            shortened to T for signals shorter than that.
        clamp_db: clamp the result to [-clamp_db, clamp_db]; None for no clamp.
    """
    ref = _as_signal(reference, "reference")
    est = _as_signal(estimate, "estimate")
    _same_length("reference", ref, "estimate", est)
    if not np.any(ref) or not np.any(est):
        # The Toeplitz system of a zero signal is singular; a silent estimate
        # (or reference) carries no target at all: the floor value.
        return float(-clamp_db) if clamp_db is not None else float("-inf")
    taps = max(1, min(filter_length, ref.shape[-1]))
    neg = fast_bss_eval.sdr_loss(
        torch.from_numpy(_unit_norm(est))[None],  # [1, T]
        torch.from_numpy(_unit_norm(ref))[None],  # [1, T]
        filter_length=taps,
        clamp_db=clamp_db,
    )  # [1]
    return float(-neg[0])


def si_snr_improvement(
    reference: ArrayLike,
    estimate: ArrayLike,
    mixture: ArrayLike,
    zero_mean: bool = True,
    clamp_db: Optional[float] = DEFAULT_CLAMP_DB,
) -> float:
    """SI-SNR(estimate) - SI-SNR(mixture), both against ``reference``, in dB."""
    return si_snr(reference, estimate, zero_mean, clamp_db) - si_snr(
        reference, mixture, zero_mean, clamp_db
    )


def snr_improvement(
    reference: ArrayLike,
    estimate: ArrayLike,
    mixture: ArrayLike,
    clamp_db: Optional[float] = DEFAULT_CLAMP_DB,
) -> float:
    """SNR(estimate) - SNR(mixture), both against ``reference``, in dB."""
    return snr(reference, estimate, clamp_db) - snr(reference, mixture, clamp_db)


def sdr_improvement(
    reference: ArrayLike,
    estimate: ArrayLike,
    mixture: ArrayLike,
    filter_length: int = DEFAULT_SDR_FILTER_LENGTH,
    clamp_db: Optional[float] = DEFAULT_CLAMP_DB,
) -> float:
    """SDR(estimate) - SDR(mixture), both against ``reference``, in dB."""
    return sdr(reference, estimate, filter_length, clamp_db) - sdr(
        reference, mixture, filter_length, clamp_db
    )


def separation_type(num_ref: int, num_est: int) -> str:
    """'under', 'equal' or 'over' separation of one utterance (FUSS)."""
    if num_est < num_ref:
        return "under"
    if num_est > num_ref:
        return "over"
    return "equal"


@dataclass
class SSUtteranceScore:
    """SS scores of one utterance; per-reference arrays have length R.

    Indices are 0-based. Per-reference metrics are NaN for inactive references.

    Attributes:
        ref_active: [R] bool, reference RMS > 1e-8.
        est_active: [E] bool, estimate power > 1% of the quietest active
            reference's power.
        assignment: [R] int, estimate index assigned to each reference, -1 for
            an inactive reference or an active one left without an estimate.
        pair_active: [R] bool, reference active and its assigned estimate
            active: the pairs that FUSS averages.
        si_snr, si_snri, sdr, sdri: [R] float, metrics of the assigned
            estimate (a zero signal where assignment is -1).
        si_snr_mixture, sdr_mixture: [R] float, metrics of the mixture.
        si_snri_all_refs, sdri_all_refs: [R] float, the improvement that the
            every-reference mean uses: ``si_snri`` / ``sdri`` where
            ``pair_active``, 0.0 for an active reference without an active
            estimate (a miss scores as the mixture), NaN for an inactive
            reference (and for SDRi when SDR was not computed).
        num_ref_active, num_est_active: FUSS counts.
        separation: 'under', 'equal' or 'over' (num_est_active vs num_ref_active).
    """

    ref_active: np.ndarray
    est_active: np.ndarray
    assignment: np.ndarray
    pair_active: np.ndarray
    si_snr: np.ndarray
    si_snri: np.ndarray
    sdr: np.ndarray
    sdri: np.ndarray
    si_snr_mixture: np.ndarray
    sdr_mixture: np.ndarray
    num_ref_active: int
    num_est_active: int
    separation: str
    si_snri_all_refs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sdri_all_refs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    si_snr_matrix: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0)))

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready view: NaN becomes None, indices stay 0-based."""

        def clean(values: np.ndarray) -> List[Optional[float]]:
            return [None if np.isnan(v) else float(v) for v in values]

        return {
            "num_ref_active": int(self.num_ref_active),
            "num_est_active": int(self.num_est_active),
            "separation": self.separation,
            "ref_active": [bool(v) for v in self.ref_active],
            "est_active": [bool(v) for v in self.est_active],
            "assignment": [int(v) for v in self.assignment],
            "pair_active": [bool(v) for v in self.pair_active],
            "si_snr": clean(self.si_snr),
            "si_snri": clean(self.si_snri),
            "sdr": clean(self.sdr),
            "sdri": clean(self.sdri),
            "si_snr_mixture": clean(self.si_snr_mixture),
            "sdr_mixture": clean(self.sdr_mixture),
            "si_snri_all_refs": clean(self.si_snri_all_refs),
            "sdri_all_refs": clean(self.sdri_all_refs),
        }


def every_reference_improvement(
    improvement: Sequence[Optional[float]],
    ref_active: Sequence[bool],
    pair_active: Sequence[bool],
) -> List[Optional[float]]:
    """Per-reference improvement of the every-reference mean (missed = 0 dB).

    An active reference whose pair is active keeps its improvement; an active
    reference without an active estimate (none assigned, or the assigned one
    inactive) gets 0.0, the improvement of returning the mixture; an inactive
    reference gets None.  A reference whose improvement was not computed (None
    or NaN, e.g. SDRi with SDR off) stays None, miss or not, so that a metric
    that was not computed does not average to 0 dB.

    Args:
        improvement: [R] SI-SNRi or SDRi of the assigned estimates (None/NaN
            where not computed).
        ref_active: [R] reference activity.
        pair_active: [R] reference and its assigned estimate both active.

    Returns:
        [R] list of floats or None.
    """
    if not len(improvement) == len(ref_active) == len(pair_active):
        raise ValueError(
            f"{len(improvement)} improvements, {len(ref_active)} reference activities "
            f"and {len(pair_active)} pair activities: one each per reference expected"
        )

    def known(v: Optional[float]) -> bool:
        return v is not None and bool(np.isfinite(v))

    return [
        None if not (active and known(v)) else (float(v) if pair else 0.0)
        for v, active, pair in zip(improvement, ref_active, pair_active)
    ]


def surplus_estimates(
    est_active: Sequence[bool], assignment: Sequence[int], pair_active: Sequence[bool]
) -> int:
    """Active estimates that stand for no active reference: the surplus a model returned.

    An estimate counts when it is active and is not the assigned estimate of an active
    pair (an over-counting model's extra outputs, or a second copy of one source).
    """
    claimed = {int(a) for a, p in zip(assignment, pair_active) if p}
    return sum(bool(active) and e not in claimed for e, active in enumerate(est_active))


def strict_improvement(
    improvement: Sequence[Optional[float]],
    ref_active: Sequence[bool],
    pair_active: Sequence[bool],
    est_active: Sequence[bool],
    assignment: Sequence[int],
) -> List[Optional[float]]:
    """The every-reference improvements plus one 0 dB slot per surplus active estimate.

    The strict mean divides the improvements of every active reference (a miss
    scores 0 dB, :func:`every_reference_improvement`) by the active references *and*
    the surplus active estimates (:func:`surplus_estimates`): an output that stands
    for nothing costs what a missed source costs, so that over-counting is never free.

    Returns:
        [R + surplus] list: the every-reference values, then 0.0 per surplus estimate
        (no slot when no improvement was computed for any reference).
    """
    values = every_reference_improvement(improvement, ref_active, pair_active)
    if not any(v is not None for v in values):
        return values
    return values + [0.0] * surplus_estimates(est_active, assignment, pair_active)


def score_ss_utterance(
    mixture: ArrayLike,
    references: Union[ArrayLike, Sequence[ArrayLike]],
    estimates: Union[ArrayLike, Sequence[ArrayLike]],
    compute_sdr: bool = True,
    sdr_filter_length: int = DEFAULT_SDR_FILTER_LENGTH,
    clamp_db: Optional[float] = DEFAULT_CLAMP_DB,
    ref_rms_threshold: float = REF_RMS_THRESHOLD,
    est_power_ratio: float = EST_POWER_RATIO,
) -> SSUtteranceScore:
    """Scores one SS utterance with an unknown number of sources (FUSS rules).

    What is done, step by step:

    1. Activity (FUSS ``_weights_for_nonzero_refs`` / ``_weights_for_active_seps``):
       reference r is active iff ``sqrt(mean(r**2)) > ref_rms_threshold``;
       estimate e is active iff ``mean(e**2) > est_power_ratio * min(power of
       active references)``.  With no active reference,
       :class:`NoActiveReferenceError` is raised (FUSS skips such examples).
    2. Assignment: the SI-SNR of every (active reference, estimate) pair, all
       estimates included whether active or not, and the Hungarian algorithm
       (``scipy.optimize.linear_sum_assignment``) maximising the summed SI-SNR.
       FUSS zero-pads both sides to a common count and runs exhaustive PIT;
       zero or inactive references add the same value to every permutation, so
       restricting to active references gives the same optimum.
    3. Mismatched counts, as FUSS does by zero-padding: with more estimates
       than active references the spare estimates stay unassigned (and count
       towards over-separation if active); with fewer, each reference left
       over is scored against an all-zero estimate (assignment -1), which gives
       the floor value ``-clamp_db``.
    4. Per reference: SI-SNR, SDR of its estimate and of the mixture, and the
       improvements.  ``pair_active`` marks the pairs FUSS averages: reference
       active and assigned estimate active.  A reference matched to an
       inactive or missing estimate is a miss: it is scored, but FUSS leaves it
       out of the SI-SNR means and it shows up as under-separation instead.
       ``si_snri_all_refs`` / ``sdri_all_refs`` give the every-reference view:
       the pair's improvement, or 0 dB for a miss (the mixture returned).
    5. Under/equal/over-separation: the active-estimate count against the
       active-reference count.

    Args:
        mixture: [T] mixture.
        references: [R, T] references (silent ones allowed).
        estimates: [E, T] estimates, E may differ from R (E = 0 allowed).
        compute_sdr: also compute SDR/SDRi (NaN otherwise); SDR costs a
            filter solve per pair.
        sdr_filter_length: BSS Eval distortion filter taps.
        clamp_db: metric clamp in dB.
        ref_rms_threshold: FUSS reference activity threshold (RMS).
        est_power_ratio: FUSS estimate activity threshold relative to the
            quietest active reference's power.

    Returns:
        SSUtteranceScore.
    """
    mix = _as_signal(mixture, "mixture")
    refs = _as_signals(references, "references")
    if refs.ndim == 1 and refs.shape[0] == 0:
        refs = refs.reshape(0, mix.shape[0])
    ests = _as_signals(estimates, "estimates")
    if ests.size == 0:
        ests = ests.reshape(0, mix.shape[0])
    if refs.ndim != 2 or ests.ndim != 2:
        raise ValueError(
            f"references and estimates must be [N, T], got {refs.shape} and {ests.shape}"
        )
    _same_length("mixture", mix, "references", refs)
    _same_length("mixture", mix, "estimates", ests)
    num_ref, num_est = refs.shape[0], ests.shape[0]

    ref_power = np.mean(refs**2, axis=-1)  # [R]
    ref_active = np.sqrt(ref_power) > ref_rms_threshold  # [R]
    if not np.any(ref_active):
        raise NoActiveReferenceError(
            f"none of the {num_ref} references has RMS > {ref_rms_threshold}"
        )
    est_power = np.mean(ests**2, axis=-1)  # [E]
    est_active = est_power > est_power_ratio * np.min(ref_power[ref_active])  # [E]

    active_idx = np.flatnonzero(ref_active)
    matrix = pairwise_si_snr(refs[active_idx], ests, clamp_db=clamp_db)  # [R_act, E]
    assignment = np.full(num_ref, -1, dtype=int)
    if num_est > 0:
        rows, cols = linear_sum_assignment(matrix, maximize=True)
        assignment[active_idx[rows]] = cols

    nan = np.full(num_ref, np.nan)
    out = {k: nan.copy() for k in ("si_snr", "sdr", "si_snr_mixture", "sdr_mixture")}
    zero = np.zeros_like(mix)
    for r in active_idx:
        est = ests[assignment[r]] if assignment[r] >= 0 else zero
        out["si_snr"][r] = si_snr(refs[r], est, clamp_db=clamp_db)
        out["si_snr_mixture"][r] = si_snr(refs[r], mix, clamp_db=clamp_db)
        if compute_sdr:
            out["sdr"][r] = sdr(refs[r], est, sdr_filter_length, clamp_db)
            out["sdr_mixture"][r] = sdr(refs[r], mix, sdr_filter_length, clamp_db)
    pair_active = np.array(
        [bool(ref_active[r] and assignment[r] >= 0 and est_active[assignment[r]])
         for r in range(num_ref)],
        dtype=bool,
    )
    num_ref_active = int(ref_active.sum())
    num_est_active = int(est_active.sum())
    full_matrix = np.full((num_ref, num_est), np.nan)
    full_matrix[active_idx] = matrix
    si_snri = out["si_snr"] - out["si_snr_mixture"]
    sdri = out["sdr"] - out["sdr_mixture"]

    def all_refs(values: np.ndarray) -> np.ndarray:
        return np.array(
            [np.nan if v is None else v
             for v in every_reference_improvement(list(values), ref_active, pair_active)],
            dtype=np.float64,
        )

    return SSUtteranceScore(
        ref_active=ref_active,
        est_active=est_active,
        assignment=assignment,
        pair_active=pair_active,
        si_snr=out["si_snr"],
        si_snri=si_snri,
        sdr=out["sdr"],
        sdri=sdri,
        si_snr_mixture=out["si_snr_mixture"],
        sdr_mixture=out["sdr_mixture"],
        num_ref_active=num_ref_active,
        num_est_active=num_est_active,
        separation=separation_type(num_ref_active, num_est_active),
        si_snri_all_refs=all_refs(si_snri),
        sdri_all_refs=all_refs(sdri),
        si_snr_matrix=full_matrix,
    )


def counting_summary(
    true_counts: Sequence[int], est_counts: Sequence[int]
) -> Dict[str, Any]:
    """Counting accuracy, confusion table and under/equal/over-separation rates.

    Args:
        true_counts: true number of sources per utterance.
        est_counts: estimated number per utterance (same order).

    Returns:
        dict with ``num_utts``, ``accuracy`` (share of exact counts),
        ``confusion`` ({true: {estimated: number of utterances}}, int keys,
        only cells that occur), and ``under`` / ``equal`` / ``over`` (shares of
        utterances whose estimated count is below / equal to / above the true
        one). Rates are NaN for an empty input.
    """
    if len(true_counts) != len(est_counts):
        raise ValueError(
            f"{len(true_counts)} true counts but {len(est_counts)} estimated counts"
        )
    confusion: Dict[int, Dict[int, int]] = {}
    kinds = {"under": 0, "equal": 0, "over": 0}
    for t, e in zip(true_counts, est_counts):
        t, e = int(t), int(e)
        row = confusion.setdefault(t, {})
        row[e] = row.get(e, 0) + 1
        kinds[separation_type(t, e)] += 1
    n = len(true_counts)
    rate = (lambda c: c / n) if n else (lambda c: float("nan"))
    return {
        "num_utts": n,
        "accuracy": rate(kinds["equal"]),
        "confusion": {t: dict(sorted(row.items())) for t, row in sorted(confusion.items())},
        "under": rate(kinds["under"]),
        "equal": rate(kinds["equal"]),
        "over": rate(kinds["over"]),
    }


def score_tse(
    mixture: ArrayLike,
    reference: ArrayLike,
    estimate: ArrayLike,
    clamp_db: Optional[float] = DEFAULT_CLAMP_DB,
) -> Dict[str, float]:
    """TSE scores of one extracted source.

    Args:
        mixture: [T] mixture.
        reference: [T] target reference.
        estimate: [T] extracted signal.
        clamp_db: metric clamp in dB.

    Returns:
        dict with ``snr``, ``snri``, ``si_snr``, ``si_snri``, ``snr_mixture``
        and ``si_snr_mixture`` (dB).
    """
    mix = _as_signal(mixture, "mixture")
    ref = _as_signal(reference, "reference")
    est = _as_signal(estimate, "estimate")
    _same_length("mixture", mix, "reference", ref)
    _same_length("mixture", mix, "estimate", est)
    scores = {
        "snr": snr(ref, est, clamp_db),
        "si_snr": si_snr(ref, est, clamp_db=clamp_db),
        "snr_mixture": snr(ref, mix, clamp_db),
        "si_snr_mixture": si_snr(ref, mix, clamp_db=clamp_db),
    }
    scores["snri"] = scores["snr"] - scores["snr_mixture"]
    scores["si_snri"] = scores["si_snr"] - scores["si_snr_mixture"]
    return scores


def cue_matches(similarity: ArrayLike, assigned: int) -> bool:
    """Whether a cue's most similar attractor is the one PIT assigned to its source.

    Args:
        similarity: [S] similarity of the cue to each estimated attractor.
        assigned: 0-based index of the estimate (= attractor) that PIT assigned
            to the cue's reference; -1 when the reference got no estimate, which
            counts as a miss.  Ties go to the lowest attractor index.
    """
    sim = _as_signals(similarity, "similarity")
    if sim.ndim != 1:
        raise ValueError(f"similarity must be [S], got shape {sim.shape}")
    if assigned < 0 or sim.shape[0] == 0:
        return False
    if assigned >= sim.shape[0]:
        raise ValueError(
            f"assigned attractor {assigned} out of range for {sim.shape[0]} attractors"
        )
    return int(np.argmax(sim)) == int(assigned)


def matching_accuracy(
    similarities: Sequence[ArrayLike], assignments: Sequence[int]
) -> float:
    """Share of cues whose most similar attractor is the PIT-assigned one.

    Args:
        similarities: for each cue k, its [S] similarity row to the estimated
            attractors (S may differ between utterances).
        assignments: for each cue k, the 0-based estimate index PIT assigned to
            reference k (-1: no estimate, a miss).

    Returns:
        Accuracy in [0, 1]; NaN when there are no cues.

    References:
        USE (arXiv 2512.21215): matching accuracy of attractors and cues.
    """
    if len(similarities) != len(assignments):
        raise ValueError(
            f"{len(similarities)} similarity rows but {len(assignments)} assignments"
        )
    if len(similarities) == 0:
        return float("nan")
    hits = [cue_matches(s, a) for s, a in zip(similarities, assignments)]
    return float(np.mean(hits))


def stats(values: Sequence[float]) -> Mapping[str, Optional[float]]:
    """Mean, standard deviation and count of finite values (None when empty)."""
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return {"mean": None, "std": None, "count": 0}
    return {"mean": float(arr.mean()), "std": float(arr.std()), "count": int(arr.size)}
