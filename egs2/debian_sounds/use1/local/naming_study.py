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
import torch

from espnet2_use import USE
from espnet2_use.data.kaldi_dir import ReferenceSet, read_kaldi_text
from espnet2_use.scoring.metrics import NoActiveReferenceError, score_ss_utterance

Matched = List[Tuple[np.ndarray, int]]


def collect(use: USE, data_dir: Path, max_utts: int, true_count: bool) -> Tuple[np.ndarray, Matched]:
    """Label scores of every separated source [N, V], and (scores, index of the true
    label) of each source the scoring's assignment matches to an active reference."""
    refs = ReferenceSet.load(data_dir)
    labels = {}
    for k in range(1, max(refs.spk) + 1):
        path = data_dir / f"label_spk{k}"
        if not path.is_file():
            sys.exit(f"{path}: missing (the sources' class names are needed)")
        labels[k] = read_kaldi_text(path)
    names = use._labels()
    all_scores, matched = [], []
    for utt in refs.utts[:max_utts]:
        mixture, references, _ = refs.load_utterance(utt, use.fs)
        x = torch.from_numpy(mixture.astype(np.float32))[None]
        with torch.no_grad():
            out = use.model.separate(x, num_src=refs.num_src[utt] if true_count else None,
                                     name_sources=True)
        n = int(out["counts"][0])
        if n == 0:
            continue
        est = out["sources"][0, :n].numpy()
        scores = out["label_scores"][0, :n].numpy()
        all_scores.append(scores)
        try:
            score = score_ss_utterance(mixture, references, list(est), compute_sdr=False)
        except NoActiveReferenceError:
            continue
        for r, e in enumerate(score.assignment):
            if e >= 0 and score.pair_active[r]:
                label = labels[r + 1][utt].strip()
                if label not in names:
                    sys.exit(f"{data_dir}/label_spk{r + 1}: {utt}'s label {label!r} is not in the model's vocabulary")
                matched.append((scores[e], names.index(label)))
    if not all_scores:
        sys.exit(f"{data_dir}: no separated source to score")
    return np.concatenate(all_scores), matched


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
