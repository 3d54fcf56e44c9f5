#!/usr/bin/env python3
"""Chooses ``USE.name_threshold`` on a validation set and prints the choice.

``USE.separate`` names each separated source by the label whose cue vector is most
similar to its attractor (cosine score), or ``unknown`` when that score is below
``name_threshold``. Here every separated source of the validation mixtures gets its
best score and whether that best name is right: the separated source is matched to a
reference by SI-SNR (the assignment of the scoring, FUSS rules), and the name is right
when it is that reference's ``label_spk{k}``; an output matched to no active
reference (over-separation, a silent output) has no right name. The threshold chosen
maximises the share of right decisions: a right name shown, or ``unknown`` in place of
a wrong one (ties: the lowest threshold, which names more).

Usage:
    local/choose_name_threshold.py --model exp/<stage2>/use_model.zip \\
        --data_dir data/valid [--max_utts 200] [--out_json name_threshold.json]
"""
import argparse
import json
import sys
from pathlib import Path
from typing import List, Tuple

import numpy as np

from espnet2_use.data.kaldi_dir import ReferenceSet, read_kaldi_text
from espnet2_use.data.layout import SOURCE_FILES
from espnet2_use.scoring.metrics import NoActiveReferenceError, score_ss_utterance

LABEL = next(row for row in SOURCE_FILES if row.modality == "label" and not row.cached)
GRID = np.round(np.arange(-0.2, 1.0001, 0.05), 2)


def named_sources(use, data_dir: Path, max_utts: int, true_count: bool = False) -> List[Tuple[np.ndarray, str]]:
    """(label scores [V], the true label or "") of every separated source of the first
    ``max_utts`` mixtures: the true label is that of the active reference the scoring's
    assignment matches the source to ("" for a source matched to none). ``true_count``:
    separate with the reference count."""
    refs = ReferenceSet.load(data_dir)
    k_max = max(refs.spk)
    labels = {k: read_kaldi_text(data_dir / LABEL.file_name(k)) for k in range(1, k_max + 1)
              if (data_dir / LABEL.file_name(k)).is_file()}
    if not labels:
        sys.exit(f"{data_dir}: no {LABEL.file_name(1)}: the sources' class names are needed")
    out = []
    for utt in refs.utts[:max_utts]:
        mixture, references, rate = refs.load_utterance(utt, use.fs)
        result = use.separate(mixture, fs=rate, num_sources=refs.num_src[utt] if true_count else None)
        if result.count == 0:
            continue
        try:
            score = score_ss_utterance(mixture, references, list(result.sources), compute_sdr=False)
            assignment = list(score.assignment)
            active = list(score.pair_active)
        except NoActiveReferenceError:
            assignment, active = [], []
        truth = {e: labels.get(r + 1, {}).get(utt, "").strip()
                 for r, e in enumerate(assignment) if e >= 0 and active[r]}
        out.extend((result.label_scores[e], truth.get(e, "")) for e in range(result.count))
    return out


def collect(use, data_dir: Path, max_utts: int) -> List[Tuple[float, bool]]:
    """(best label score, is that name right) of every separated source."""
    vocabulary = use._labels()
    return [(float(scores.max()), bool(truth) and vocabulary[int(scores.argmax())] == truth)
            for scores, truth in named_sources(use, data_dir, max_utts)]


def right_decisions(scored: List[Tuple[float, bool]], t: float) -> float:
    """Share of sources named rightly, or called ``unknown`` in place of a wrong name."""
    return float(np.mean([(s >= t) == r for s, r in scored]))


def choose(scored: List[Tuple[float, bool]]) -> Tuple[float, List[dict]]:
    """The threshold with the most right decisions, and the table over the grid."""
    scores = np.array([s for s, _ in scored])
    right = np.array([r for _, r in scored])

    def row(t: float) -> dict:
        named = scores >= t
        return {
            "threshold": float(t),
            "named": float(named.mean()),
            "named_right": float((named & right).sum() / max(named.sum(), 1)),
            "right_named": float((named & right).sum() / max(right.sum(), 1)),
            "right_decisions": right_decisions(scored, t),
        }

    # Decisions change only at the scores themselves: try each, naming all (-inf)
    # and naming none (inf).
    candidates = np.concatenate([[-np.inf], np.unique(scores), [np.inf]])
    best = max(candidates, key=lambda t: (right_decisions(scored, t), -t))
    return float(best), [row(t) for t in GRID]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", type=Path, help="a packed model (stage 8)")
    model.add_argument("--exp_dir", type=Path, help="a training directory")
    parser.add_argument("--data_dir", type=Path, required=True,
                        help="validation set: wav.scp, spk{k}.scp, label_spk{k}")
    parser.add_argument("--max_utts", type=int, default=200)
    parser.add_argument("--out_json", type=Path)
    args = parser.parse_args(argv)
    from espnet2_use import USE

    use = USE.from_packed(args.model) if args.model else USE.from_exp(args.exp_dir)
    if use._labels() is None:
        sys.exit("the model has no label encoder: it names no source")
    scored = collect(use, args.data_dir, args.max_utts)
    if not scored:
        sys.exit(f"{args.data_dir}: no separated source to score")
    threshold, table = choose(scored)
    right = sum(r for _, r in scored)
    print(f"{len(scored)} separated sources of {args.data_dir}, best name right for {right} "
          f"({100 * right / len(scored):.1f} %)")
    print(f"{'threshold':>9} {'named %':>8} {'named right %':>14} {'right named %':>14} {'right decisions %':>18}")
    for r in table:
        print(f"{r['threshold']:>9.2f} {100 * r['named']:>8.1f} {100 * r['named_right']:>14.1f} "
              f"{100 * r['right_named']:>14.1f} {100 * r['right_decisions']:>18.1f}")
    print(f"chosen name_threshold: {threshold:.3f} (right decisions "
          f"{100 * right_decisions(scored, threshold):.1f} %; -inf: name every source, inf: none)")
    if args.out_json:
        args.out_json.write_text(json.dumps({"name_threshold": threshold, "num_sources": len(scored),
                                             "table": table}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
