#!/usr/bin/env python3
"""Two models' SS decodings of one test set, side by side over their seeds: the paired
differences a recipe change is judged by (issue 24: "separation not worse", counting,
matching), with the intervals of ``espnet2_use.scoring.bootstrap`` (test mixtures
resampled for both, each system's seeds resampled on their own).

Each system is one or more scored decoding folders (``scores.json`` from stage 7), one
per training seed, joined by commas; every folder must score the same test mixtures.

    local/compare_decodings.py \\
        --a exp/train_use_s_lm_stage2/decode_test_ss/ss,exp/seed1_lm_stage2/decode_test_ss/ss \\
        --b exp/train_stage2/decode_test_ss/ss,exp/seed1_eda_stage2/decode_test_ss/ss \\
        [--names log-mel EDA] [--out_json exp/lm_vs_eda.json]

Per system it prints each metric's mean over seeds and mixtures with its 95 % interval;
then A - B with the interval of the difference. Metrics: honest SI-SNRi of the 2- and
3-source mixtures (a missed reference 0 dB, ``si_snri_all_refs``), counting accuracy
(all mixtures and per true count) and matching (a cue picks the attractor PIT gave its
source; per cue, for the decodings that hold cue similarities). Points of accuracy are
in %, SI-SNRi in dB.
"""
import argparse
import json
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import count_correct, difference, interval, per_mixture, seeds_mean  # noqa: E402


def load_scores(folder: Path) -> Dict:
    path = folder / "scores.json" if folder.is_dir() else folder
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no scores (run the recipe's stage 7 on this decoding)")
    scores = json.loads(path.read_text(encoding="utf-8"))
    if not scores.get("utterances"):
        raise ValueError(f"{path}: no per-utterance records (an SS scoring of stage 7 holds them)")
    return scores


def matches(scores: Dict) -> Dict[str, float]:
    """Per cue (``utt/k``): 1.0 when its best attractor is the one PIT gave its source."""
    return {f"{utt}/{m['k']}": float(bool(m["match"]))
            for utt, rec in sorted(scores["utterances"].items()) for m in rec.get("matching") or []}


def counted(scores: Dict, n: Optional[int] = None) -> Dict[str, float]:
    right = count_correct(scores)
    if n is None:
        return right
    return {u: v for u, v in right.items() if int(scores["utterances"][u]["num_src"]) == n}


def metrics(runs: Sequence[Dict]) -> Dict[str, List[Dict[str, float]]]:
    """Metric name -> one {unit: value} per seed."""
    counts = sorted({int(r["num_src"]) for sc in runs for r in sc["utterances"].values()})
    out = {f"honest SI-SNRi, {n} sources (dB)": [per_mixture(sc, n) for sc in runs] for n in (2, 3)}
    out["counting, all (%)"] = [{u: 100 * v for u, v in counted(sc).items()} for sc in runs]
    for n in counts:
        out[f"counting, {n} sources (%)"] = [{u: 100 * v for u, v in counted(sc, n).items()} for sc in runs]
    out["matching (%)"] = [{u: 100 * v for u, v in matches(sc).items()} for sc in runs]
    return {k: v for k, v in out.items() if all(v)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--a", required=True, help="system A: scored decoding folders, one per seed, comma-separated")
    parser.add_argument("--b", required=True, help="system B: the same")
    parser.add_argument("--names", nargs=2, default=["A", "B"])
    parser.add_argument("--out_json", type=Path, default=None)
    args = parser.parse_args(argv)
    systems = [[load_scores(Path(p)) for p in spec.split(",") if p] for spec in (args.a, args.b)]
    a, b = (metrics(runs) for runs in systems)
    report = {"a": args.a, "b": args.b, "names": args.names, "metrics": {}}
    print(f"| metric | {args.names[0]} ({len(systems[0])} seeds) | {args.names[1]} ({len(systems[1])} seeds) "
          f"| {args.names[0]} - {args.names[1]} [95 % CI] |")
    print("|---|---|---|---|")
    for name in [k for k in a if k in b]:
        diff = difference(a[name], b[name])
        if diff is None:
            continue
        row = {"a": seeds_mean(a[name]), "a_ci": interval(a[name]), "b": seeds_mean(b[name]),
               "b_ci": interval(b[name]), "difference": diff}
        report["metrics"][name] = row
        print(f"| {name} | {row['a']:.2f} [{row['a_ci'][0]:.2f}, {row['a_ci'][1]:.2f}] "
              f"| {row['b']:.2f} [{row['b_ci'][0]:.2f}, {row['b_ci'][1]:.2f}] "
              f"| {diff['mean']:+.2f} [{diff['ci'][0]:+.2f}, {diff['ci'][1]:+.2f}] ({diff['mixtures']} units) |")
    if args.out_json:
        args.out_json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out_json.with_name(args.out_json.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=2), encoding="utf-8")
        os.replace(tmp, args.out_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
