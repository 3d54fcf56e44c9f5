#!/usr/bin/env python3
"""Which separated source does a cue describe? The attractors' answer against the extraction's.

USE answers "give me the source the cue describes" in two ways: *pick* one of the
separated sources (the one whose attractor is most similar to the cue: the matching
accuracy of RESULTS.md), or *extract* the target with the cue (TSE). This study reads
both decodings of the same mixtures and asks a third way: pick the separated source
most like the extraction (highest SI-SNR against the extracted signal). For every
target of a TSE set (reference ``--target``) it reports

- how often each pick is the estimate PIT assigned to the target (a missed target, one
  with no estimate, counts as a miss for both picks);
- the SI-SNRi of what each answer returns: the attractor's pick, the extraction's pick,
  the extraction itself (a miss returns the mixture: 0 dB);

with paired bootstrap intervals of the differences (over the targets). It trains
nothing and decodes nothing: the inputs are ``use_inference``'s decoding dirs and
``use_scoring``'s ``scores.json`` of the SS dir (for the PIT assignment).

Usage:
    local/match_by_extraction.py --ref_dir dump/raw/test_tse \\
        --ss_dir exp/train_stage2/decode_test_tse/ss \\
        --tse_dir exp/train_stage2/decode_test_tse/tse_label_text_video [--out_json F]
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np

from espnet2_use.data.kaldi_dir import DataDirError, EstimateSet, ReferenceSet
from espnet2_use.scoring.bootstrap import bootstrap_mean, paired_difference
from espnet2_use.scoring.metrics import si_snr
from espnet2_use.utils.fileio import atomic_write_json

TOLERANCE = 256  # samples an estimate may differ from the mixture (as use_scoring)


def extraction_pick(extracted: np.ndarray, estimates: List[np.ndarray]) -> int:
    """Index of the estimate most like the extraction (highest SI-SNR against it); -1: none."""
    if not estimates:
        return -1
    return int(np.argmax([si_snr(extracted, est) for est in estimates]))


def study(ref_dir: Path, ss_dir: Path, tse_dir: Path, target: int = 1) -> Dict:
    refs = ReferenceSet.load(ref_dir)
    ss, tse = EstimateSet.load(ss_dir), EstimateSet.load(tse_dir)
    scores_path = ss_dir / "scores.json"
    if not scores_path.is_file():
        raise DataDirError(f"{scores_path}: missing; score the SS dir first (use_scoring --mode ss)")
    scored = json.loads(scores_path.read_text(encoding="utf-8"))["utterances"]
    if ss.cue_similarity is None:
        raise DataDirError(f"{ss_dir}: no cue_similarity file (decode with the cues present)")
    rows = []
    for utt in tse.utts:
        if utt not in scored:
            raise DataDirError(f"{scores_path}: utterance {utt!r} of {tse_dir} was not scored")
        rec = scored[utt]
        if not rec["ref_active"][target - 1]:
            continue  # a silent target: nothing to pick
        mixture, fs = refs.load_mixture(utt)
        reference = refs.load_reference(utt, target, len(mixture), fs)
        extracted, _ = tse.load_estimate(utt, target, len(mixture), fs, TOLERANCE)
        estimates = [ss.load_estimate(utt, k, len(mixture), fs, TOLERANCE)[0]
                     for k in ss.estimate_indices(utt)]
        assigned = int(rec["assignment"][target - 1]) if estimates else -1
        row = ss.cue_similarity.get(utt, {}).get(target)
        if estimates and row is None:
            raise DataDirError(f"{ss_dir / 'cue_similarity'}: no row for {utt} source {target}")
        by_attractor = int(np.argmax(row[0])) if estimates else -1
        by_extraction = extraction_pick(extracted, estimates)
        base = si_snr(reference, mixture)

        def improvement(index: int) -> float:  # SI-SNRi of the picked estimate; a miss: 0 dB
            return si_snr(reference, estimates[index]) - base if index >= 0 else 0.0

        rows.append({
            "utt": utt,
            "num_src": int(rec["num_src"]),
            "assigned": assigned,
            "by_attractor": by_attractor,
            "by_extraction": by_extraction,
            "attractor_right": assigned >= 0 and by_attractor == assigned,
            "extraction_right": assigned >= 0 and by_extraction == assigned,
            "si_snri_attractor_pick": improvement(by_attractor),
            "si_snri_extraction_pick": improvement(by_extraction),
            "si_snri_extracted": si_snr(reference, extracted) - base,
        })
    if not rows:
        raise DataDirError(f"{tse_dir}: no target to study")
    out: Dict = {"targets": len(rows), "ss_dir": str(ss_dir), "tse_dir": str(tse_dir)}
    att = np.array([r["attractor_right"] for r in rows], dtype=float) * 100
    ext = np.array([r["extraction_right"] for r in rows], dtype=float) * 100
    out["matching_attractor"] = bootstrap_mean(att)
    out["matching_extraction"] = bootstrap_mean(ext)
    out["matching_difference"] = paired_difference(ext, att)
    by_count = {}
    for n in sorted({r["num_src"] for r in rows}):
        sel = [r for r in rows if r["num_src"] == n]
        by_count[str(n)] = {
            "targets": len(sel),
            "attractor": float(np.mean([r["attractor_right"] for r in sel]) * 100),
            "extraction": float(np.mean([r["extraction_right"] for r in sel]) * 100),
        }
    out["matching_by_num_src"] = by_count
    values = {key: np.array([r[key] for r in rows]) for key in
              ("si_snri_attractor_pick", "si_snri_extraction_pick", "si_snri_extracted")}
    out["si_snri"] = {key: bootstrap_mean(v) for key, v in values.items()}
    out["si_snri_difference_extraction_pick_vs_attractor_pick"] = paired_difference(
        values["si_snri_extraction_pick"], values["si_snri_attractor_pick"])
    out["si_snri_difference_extracted_vs_attractor_pick"] = paired_difference(
        values["si_snri_extracted"], values["si_snri_attractor_pick"])
    out["rows"] = rows
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref_dir", type=Path, required=True)
    parser.add_argument("--ss_dir", type=Path, required=True, help="SS decoding dir, scored")
    parser.add_argument("--tse_dir", type=Path, required=True, help="TSE decoding dir")
    parser.add_argument("--target", type=int, default=1, help="reference index of the target")
    parser.add_argument("--out_json", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        result = study(args.ref_dir, args.ss_dir, args.tse_dir, args.target)
    except DataDirError as err:
        print(f"match_by_extraction.py: {err}", file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
    if args.out_json:
        atomic_write_json(args.out_json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
