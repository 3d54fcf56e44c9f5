#!/usr/bin/env python3
"""How well a model names its separated sources, and whether a per-label correction
(hubness) helps: every separated source that the scoring's assignment matches to an
active reference gives its label score vector and its reference's label; naming is
right when the best label is that label. Each label's mean (and spread) of scores over
every separated source of ``--fit_dir`` corrects the scores of ``--eval_dir``.

    local/naming_study.py --model exp/train_stage2/use_model.zip \
        --fit_dir dump/raw/valid --eval_dir dump/raw/test_ss
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from espnet2_use import USE

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "mini_use" / "use1" / "local"))
from choose_name_threshold import named_sources  # noqa: E402

Matched = List[Tuple[np.ndarray, int]]


def collect(use: USE, data_dir: Path, max_utts: int, true_count: bool) -> Tuple[np.ndarray, Matched]:
    """Label scores of every separated source [N, V], and (scores, index of the true
    label) of each source the scoring's assignment matches to an active reference."""
    names = use._labels()
    sources = named_sources(use, data_dir, max_utts, true_count)
    if not sources:
        sys.exit(f"{data_dir}: no separated source to score")
    matched = []
    for scores, label in sources:
        if not label:
            continue
        if label not in names:
            sys.exit(f"{data_dir}: the label {label!r} of a source is not in the model's vocabulary")
        matched.append((scores, names.index(label)))
    return np.stack([scores for scores, _ in sources]), matched


def acc(matched: Matched, bias: Optional[np.ndarray] = None, scale: Optional[np.ndarray] = None) -> float:
    """Share of matched sources whose best (corrected) label is their own."""
    right = 0
    for scores, truth in matched:
        v = scores if bias is None else (scores - bias) / (1.0 if scale is None else scale)
        right += int(np.argmax(v) == truth)
    return right / max(len(matched), 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a packed model (stage 8)")
    parser.add_argument("--fit_dir", type=Path, required=True, help="where the label means come from")
    parser.add_argument("--eval_dir", type=Path, required=True)
    parser.add_argument("--max_utts", type=int, default=300)
    parser.add_argument("--true_count", action="store_true", help="separate with the reference count")
    args = parser.parse_args(argv)
    use = USE.from_packed(args.model)
    if use._labels() is None:
        sys.exit(f"{args.model}: the model has no label encoder: it names no source")
    fit_all, fit_m = collect(use, args.fit_dir, args.max_utts, args.true_count)
    ev_all, ev_m = collect(use, args.eval_dir, args.max_utts, args.true_count)
    mu, sd = fit_all.mean(0), fit_all.std(0) + 1e-6
    print(f"{len(ev_m)} matched sources of {args.eval_dir} (labels fitted on {len(fit_all)} sources of {args.fit_dir})")
    print(f"named right, best cosine:             {100 * acc(ev_m):.1f} %")
    print(f"named right, minus each label's mean: {100 * acc(ev_m, mu):.1f} %")
    print(f"named right, z-scored per label:      {100 * acc(ev_m, mu, sd):.1f} %")
    top = sorted(zip(use._labels(), mu), key=lambda x: -x[1])[:5]
    print("labels with the highest mean score:", ", ".join(f"{n} {m:.2f}" for n, m in top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
