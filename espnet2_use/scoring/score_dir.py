#!/usr/bin/env python3
"""Score a USE decoding directory (SS or TSE) and collect scores into RESULTS.md.

Score one decoding dir (writes JSON with every number and a markdown table)::

    python -m espnet2_use.bin.use_scoring --mode ss \\
        --ref_dir data/test_ss --est_dir exp/x/decode_test_ss_ss \\
        [--out_json exp/x/decode_test_ss_ss/scores.json] \\
        [--out_md exp/x/decode_test_ss_ss/scores.md] [--fs 8000]

    python -m espnet2_use.bin.use_scoring --mode tse --cue_combination text+label \\
        --ref_dir data/test_tse --est_dir exp/x/decode_test_tse_text+label

``--out_json`` / ``--out_md`` default to ``scores.json`` / ``scores.md`` in
``--est_dir``.  The layouts read are those of ``egs2/TEMPLATE/use1/README.md``.

SS (unknown count, FUSS rules, see :func:`score_ss_utterance`): the estimates of
an utterance are ``spk1.scp`` .. ``spkS.scp`` of the decoding dir; the estimated
count is its ``utt2num_src`` (else S); ``cue_similarity``, when present, gives
the matching accuracy (attractor s is estimate ``spk{s}.scp``).  Every
reference utterance must have estimates, unless the decoding dir's
``utt2num_src`` gives it 0 sources.  Two means are reported per number of
sources: the headline over *every* active reference, where a reference that
got no active estimate counts 0 dB SI-SNRi / SDRi (as if the mixture had been
returned; ``si_snri_all_refs`` / ``sdri_all_refs`` in the JSON), and FUSS's
rule over the pairs both active (``si_snri`` / ``sdri``), for comparison with
FUSS papers.  1-source utterances report the estimate's SI-SNR and the share
whose estimated count was 1 (``count_one_rate``), no improvement; see
``espnet2_use.scoring.report`` for the JSON layout.

TSE: every ``spk{k}.scp`` line of the decoding dir is the extraction of
reference source k of that utterance; ``--cue_combination`` only labels the
row.  Reference utterances without an extraction are reported, not scored.

Estimates whose length differs from the mixture's by at most
``--length_tolerance`` samples (strided encoders can add or drop a few samples)
are cropped or zero-padded at the end, and the number of such files is
reported; a larger difference is an error.  Errors name the scp file, the line
and the utterance: an estimate pointing to a missing file, an utterance of the
estimates absent from the references, a sample rate other than ``--fs`` (or the
first mixture's rate), a reference shorter or longer than its mixture.

Collect several results into one section of a RESULTS.md (recipe stage 7)::

    python -m espnet2_use.bin.use_scoring --collect exp/x/decode_* \\
        --out_md exp/x/RESULTS.md

Each ``--collect`` argument is a decoding dir holding ``scores.json`` or a JSON
file itself.  The section sits between ``<!-- use_scoring: begin ... -->`` and
``<!-- use_scoring: end -->`` markers: a rerun replaces it and keeps the rest
of RESULTS.md (e.g. the paper's reference rows); a file without the markers
gets the section appended.

All outputs are written atomically (temp file in the same folder, then rename).
"""
import datetime
import importlib.metadata
import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from espnet2_use.data.kaldi_dir import DataDirError, EstimateSet, ReferenceSet
from espnet2_use.scoring.metrics import (
    DEFAULT_CLAMP_DB,
    DEFAULT_SDR_FILTER_LENGTH,
    NoActiveReferenceError,
    cue_matches,
    score_ss_utterance,
    score_tse,
)
from espnet2_use.scoring.report import (
    FORMAT,
    collect_section,
    merge_section,
    summarize_ss,
    summarize_tse,
)
from espnet2_use.utils.fileio import atomic_write_text

DEFAULT_LENGTH_TOLERANCE = 256


def _meta(
    mode: str,
    ref_dir: Path,
    est_dir: Path,
    num_ref_utts: int,
    num_scored: int,
    fs: Optional[int],
    clamp_db: float,
    sdr_filter_length: int,
    length_tolerance: int,
    num_length_fixed: int,
) -> Dict[str, Any]:
    try:
        fbe = importlib.metadata.version("fast_bss_eval")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - installed in tools/
        fbe = "unknown"
    return {
        "mode": mode,
        "ref_dir": str(ref_dir),
        "est_dir": str(est_dir),
        "num_ref_utts": num_ref_utts,
        "num_scored": num_scored,
        "fs": fs,
        "num_length_fixed": num_length_fixed,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "metric": {
            "implementation": f"fast_bss_eval {fbe} (torch backend)",
            "clamp_db": clamp_db,
            "sdr_filter_length": sdr_filter_length,
            "length_tolerance": length_tolerance,
            "si_snr_zero_mean": True,
            "fuss_ref_rms_threshold": 1e-8,
            "fuss_est_power_ratio": 0.01,
        },
    }


def _check_est_utts(refs: ReferenceSet, ests: EstimateSet) -> None:
    """Every utterance of the estimates must exist in the references."""
    for k, entries in ests.spk.items():
        for utt, entry in entries.items():
            if utt not in refs.wav:
                raise DataDirError(
                    f"{entry.where}: utterance {utt!r} is not in the references "
                    f"{refs.root / 'wav.scp'}"
                )
    if ests.num_src is not None:
        for utt in ests.num_src:
            if utt not in refs.wav:
                raise DataDirError(
                    f"{ests.root / 'utt2num_src'}: utterance {utt!r} is not in the "
                    f"references {refs.root / 'wav.scp'}"
                )


def score_ss_dir(
    ref_dir: Path,
    est_dir: Path,
    fs: Optional[int] = None,
    length_tolerance: int = DEFAULT_LENGTH_TOLERANCE,
    compute_sdr: bool = True,
    sdr_filter_length: int = DEFAULT_SDR_FILTER_LENGTH,
    clamp_db: float = DEFAULT_CLAMP_DB,
    progress: bool = True,
) -> Dict[str, Any]:
    """Scores an SS decoding dir against a reference set.

    Args:
        ref_dir: reference data dir (``data/<set>``).
        est_dir: SS decoding dir.
        fs: expected sample rate; None takes the first mixture's.
        length_tolerance: samples of length mismatch fixed by crop/pad.
        compute_sdr: compute SDR/SDRi besides SI-SNR/SI-SNRi.
        sdr_filter_length: BSS Eval distortion filter taps.
        clamp_db: metric clamp in dB.
        progress: show a tqdm progress bar.

    Returns:
        The result dict (format ``use_scoring/1``, see ``report``).
    """
    ref_dir, est_dir = Path(ref_dir), Path(est_dir)
    refs = ReferenceSet.load(ref_dir)
    ests = EstimateSet.load(est_dir)
    if not ests.spk and ests.num_src is None:
        raise DataDirError(f"{est_dir}: no spk*.scp estimate files and no utt2num_src")
    _check_est_utts(refs, ests)
    has_est = set(ests.utts)
    for utt in refs.utts:
        if utt in has_est:
            if ests.num_src is not None and utt not in ests.num_src:
                raise DataDirError(
                    f"{est_dir / 'utt2num_src'}: utterance {utt!r} has estimates but no "
                    "estimated count"
                )
            continue
        if ests.num_src is None or ests.num_src.get(utt, -1) != 0:
            raise DataDirError(
                f"{est_dir}: utterance {utt!r} of {ref_dir / 'wav.scp'} has no estimate in "
                "spk*.scp and utt2num_src does not give it 0 sources (incomplete decoding?)"
            )

    utterances: Dict[str, Dict[str, Any]] = {}
    skipped: List[str] = []
    num_fixed = 0
    for utt in tqdm(refs.utts, desc=f"scoring {est_dir.name}", disable=not progress):
        mixture, references, rate = refs.load_utterance(utt, fs)
        fs = rate if fs is None else fs
        ks = ests.estimate_indices(utt) if utt in has_est else []
        estimates, changes = [], {}
        for k in ks:
            est, diff = ests.load_estimate(utt, k, mixture.shape[0], fs, length_tolerance)
            estimates.append(est)
            if diff:
                changes[k] = diff
        num_fixed += len(changes)
        try:
            score = score_ss_utterance(
                mixture, references, estimates, compute_sdr=compute_sdr,
                sdr_filter_length=sdr_filter_length, clamp_db=clamp_db,
            )
        except NoActiveReferenceError:
            logging.warning(f"{utt}: no reference with RMS > 1e-8, skipped (as FUSS)")
            skipped.append(utt)
            continue
        rec: Dict[str, Any] = {
            "num_src": refs.num_src[utt],
            "num_estimates": len(estimates),
            "est_count": ests.num_src[utt] if ests.num_src is not None else len(estimates),
            **score.to_dict(),
            "length_changes": changes,
        }
        if ests.cue_similarity is not None:
            rec["matching"] = _matching(utt, refs.num_src[utt], len(estimates), score, ests)
        utterances[utt] = rec
    if num_fixed:
        logging.warning(
            f"{num_fixed} estimate files differed from the mixture length by at most "
            f"{length_tolerance} samples and were cropped/zero-padded"
        )
    meta = _meta("ss", ref_dir, est_dir, len(refs.utts), len(utterances), fs,
                 clamp_db, sdr_filter_length, length_tolerance, num_fixed)
    meta["count_source"] = (
        "estimated count (decoding dir `utt2num_src`)" if ests.num_src is not None
        else "number of estimates (the decoding dir has no `utt2num_src`)"
    )
    return {
        "format": FORMAT,
        "mode": "ss",
        "meta": meta,
        "summary": summarize_ss(utterances, skipped),
        "utterances": utterances,
    }


def _matching(
    utt: str, num_src: int, num_est: int, score: Any, ests: EstimateSet
) -> List[Dict[str, Any]]:
    """Matching records of one utterance from ``cue_similarity`` and the PIT assignment."""
    out = []
    for k, (row, where) in sorted(ests.cue_similarity.get(utt, {}).items()):
        if k > num_src:
            raise DataDirError(
                f"{where}: cue of source {k} but utterance {utt!r} has {num_src} sources"
            )
        if row.shape[0] != num_est:
            raise DataDirError(
                f"{where}: {row.shape[0]} similarities for utterance {utt!r}, expected one "
                f"per estimated attractor ({num_est} estimates in spk*.scp)"
            )
        if not score.ref_active[k - 1]:
            continue  # a silent source has no PIT assignment to match
        assigned = int(score.assignment[k - 1])
        out.append({
            "k": k,
            "best": int(np.argmax(row)) if row.size else -1,
            "assigned": assigned,
            "match": cue_matches(row, assigned),
        })
    return out


def score_tse_dir(
    ref_dir: Path,
    est_dir: Path,
    cue_combination: Optional[str] = None,
    fs: Optional[int] = None,
    length_tolerance: int = DEFAULT_LENGTH_TOLERANCE,
    clamp_db: float = DEFAULT_CLAMP_DB,
    progress: bool = True,
) -> Dict[str, Any]:
    """Scores a TSE decoding dir: ``spk{k}.scp`` line = extraction of reference k.

    Args:
        ref_dir: reference data dir.
        est_dir: TSE decoding dir.
        cue_combination: label of the row, e.g. ``text+label``.
        fs: expected sample rate; None takes the first mixture's.
        length_tolerance: samples of length mismatch fixed by crop/pad.
        clamp_db: metric clamp in dB.
        progress: show a tqdm progress bar.
    """
    ref_dir, est_dir = Path(ref_dir), Path(est_dir)
    refs = ReferenceSet.load(ref_dir)
    ests = EstimateSet.load(est_dir)
    if not ests.spk:
        raise DataDirError(f"{est_dir}: no spk*.scp files of extracted sources")
    _check_est_utts(refs, ests)
    jobs: List[Tuple[str, int]] = sorted((u, k) for k, m in ests.spk.items() for u in m)
    for utt, k in jobs:
        if k > refs.num_src[utt]:
            raise DataDirError(
                f"{ests.spk[k][utt].where}: extraction of source {k} of utterance {utt!r}, "
                f"but {ref_dir / 'utt2num_src'} gives it {refs.num_src[utt]} sources"
            )
    targets: List[Dict[str, Any]] = []
    num_fixed = 0
    cache: Tuple[Optional[str], Optional[np.ndarray]] = (None, None)
    for utt, k in tqdm(jobs, desc=f"scoring {est_dir.name}", disable=not progress):
        if cache[0] != utt:
            mixture, rate = refs.load_mixture(utt, fs)
            fs = rate if fs is None else fs
            cache = (utt, mixture)
        mixture = cache[1]
        ref = refs.load_reference(utt, k, mixture.shape[0], fs)
        est, diff = ests.load_estimate(utt, k, mixture.shape[0], fs, length_tolerance)
        num_fixed += bool(diff)
        targets.append({
            "utt": utt, "k": k, "num_src": refs.num_src[utt], "length_change": diff,
            **score_tse(mixture, ref, est, clamp_db=clamp_db),
        })
    unscored = len(set(refs.utts) - {u for u, _ in jobs})
    if unscored:
        logging.info(f"{unscored} reference utterances have no extraction in {est_dir}")
    meta = _meta("tse", ref_dir, est_dir, len(refs.utts), len({u for u, _ in jobs}), fs,
                 clamp_db, DEFAULT_SDR_FILTER_LENGTH, length_tolerance, num_fixed)
    meta["cue_combination"] = cue_combination
    meta["num_targets"] = len(targets)
    return {
        "format": FORMAT,
        "mode": "tse",
        "meta": meta,
        "summary": summarize_tse(targets),
        "targets": targets,
    }


def load_result(path: Path) -> Dict[str, Any]:
    """Loads a scoring JSON, or ``scores.json`` of a decoding dir."""
    path = Path(path)
    file = path / "scores.json" if path.is_dir() else path
    if not file.is_file():
        raise DataDirError(
            f"{file}: not found; score {path} with use_scoring --mode ss|tse first"
        )
    try:
        with file.open(encoding="utf-8") as f:
            result = json.load(f)
    except json.JSONDecodeError as e:
        raise DataDirError(f"{file}: not valid JSON ({e})") from None
    if not isinstance(result, dict) or result.get("format") != FORMAT:
        raise DataDirError(f"{file}: not a {FORMAT} scoring result")
    return result


def collect(paths: Sequence[Path], out_md: Path) -> str:
    """Merges the scoring results of ``paths`` into one section of ``out_md``.

    Args:
        paths: decoding dirs (holding ``scores.json``) or JSON files.
        out_md: the RESULTS.md to update (created when absent).

    Returns:
        The section written.
    """
    results = [(str(p), load_result(Path(p))) for p in paths]
    section = collect_section(results)
    out_md = Path(out_md)
    existing = out_md.read_text(encoding="utf-8") if out_md.is_file() else None
    atomic_write_text(out_md, merge_section(existing, section))
    return section
