#!/usr/bin/env python3
"""The TSE bar of mini_use: extraction with cues against separation of the same mixtures.

For every target (spk1 of test_tse) compares the SNRi of the extracted source (a TSE
decoding dir) with the SNRi of the separated estimate that matches it best (highest
SI-SNR; an SS decoding dir of the same set), and prints the means and their difference.
The bar (issue "USE learns its job", 4): TSE SNRi >= SS SNRi of the best-matching
estimate.

Usage:
    local/tse_vs_ss.py --ref_dir dump/raw/test_tse \\
        --tse_dir exp/train_stage2/decode_test_tse/tse_label_text_video \\
        --ss_dir exp/train_stage2/decode_test_tse/ss [--out_json tse_vs_ss.json]
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

from espnet2_use.data.kaldi_dir import EstimateSet, ReferenceSet
from espnet2_use.scoring.metrics import score_tse, si_snr

TOLERANCE = 256  # samples an estimate may differ from the mixture (as use_scoring)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref_dir", type=Path, required=True)
    parser.add_argument("--tse_dir", type=Path, required=True)
    parser.add_argument("--ss_dir", type=Path, required=True)
    parser.add_argument("--target", type=int, default=1, help="reference index of the target")
    parser.add_argument("--out_json", type=Path, default=None)
    args = parser.parse_args(argv)
    refs = ReferenceSet.load(args.ref_dir)
    tse, ss = EstimateSet.load(args.tse_dir), EstimateSet.load(args.ss_dir)
    rows = []
    for utt in tse.utts:
        mixture, fs = refs.load_mixture(utt)
        reference = refs.load_reference(utt, args.target, len(mixture), fs)
        extracted, _ = tse.load_estimate(utt, args.target, len(mixture), fs, TOLERANCE)
        candidates = [ss.load_estimate(utt, k, len(mixture), fs, TOLERANCE)[0]
                      for k in ss.estimate_indices(utt)]
        if not candidates:  # the separation found no source: it matches nothing
            continue
        best = max(candidates, key=lambda est: si_snr(reference, est))
        rows.append((score_tse(mixture, reference, extracted)["snri"],
                     score_tse(mixture, reference, best)["snri"]))
    if not rows:
        print("no target to compare", file=sys.stderr)
        return 1
    tse_snri, ss_snri = np.mean(rows, axis=0)
    result = {"targets": len(rows), "tse_snri": float(tse_snri),
              "ss_best_match_snri": float(ss_snri), "difference": float(tse_snri - ss_snri),
              "bar_met": bool(tse_snri >= ss_snri)}
    print(json.dumps(result, indent=2))
    if args.out_json:
        args.out_json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
