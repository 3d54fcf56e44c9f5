"""Weigh the two views of the count on a validation set, and write the choice into the
model's config.

A model with a count branch (``model_conf.count_branch_conf``) has two views of how
many sources a mixture holds: the branch's posterior over the counts 0 .. K and the
attractors' (their existence probabilities read in order). The ``product`` rule adds
their log-posteriors; the two are trained apart and are not calibrated against each
other (on mini_use the branch under-counts 3-source mixtures and the EDA over-counts
2-source ones). This tool decodes the counts of a validation set once, then searches

    count = argmax_n  log p_branch(n) + w * log p_attractors(n) + b_n

over a grid of weights ``w`` (``--weights``; 0 is the ``branch`` rule) and of biases
``b_n`` for the counts above the smallest allowed one (``--biases``), and keeps the setting
with the best balanced accuracy (the mean over the true counts of the share counted
right, so that no count is given up for the common one; ties: the plain accuracy, then
the setting nearest the plain product). The choice goes into ``model_conf`` of the
experiment's ``config.yaml`` as ``count_attractor_weight`` and ``count_bias`` (the
file as trained is kept once beside it as ``config.uncalibrated.yaml``; the new one is
written to a temporary file, then renamed), and the rule becomes ``product``. A table
of the counting before and after is printed, and ``count_calibration.json`` is written
beside the config.

Choose on a validation set, never on the test set that reports the result. Three
numbers fitted to a small set fit its noise: on mini_use's 150 validation mixtures the
choice raised counting there from 82.0 to 87.3 % and lowered it on the test set from
81.3 to 79.7 % (NOTEBOOK.md), so recipes run it only when asked
(``use.sh --calibrate_count true``). ``--remix N`` calibrates on N mixtures made afresh
from the validation set's references instead of its own mixtures (counts uniform over
1 .. max_num_src, distinct classes, each source at its level in the set, 2-4 s:
``espnet2_use.counting.dynamic_mixing.SourcePool``), so that the three numbers are fitted
to many more mixtures than the set holds, with the counts balanced.

Example:
    python -m espnet2_use.bin.use_count_calibrate --exp_dir exp/train_stage2 \\
        --data_dir dump/raw/valid [--remix 1500]
"""
import argparse
import json
import logging
import os
import shutil
from itertools import product as grid_product
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import yaml

from espnet2_use.counting.dynamic_mixing import SourcePool
from espnet2_use.counting.feature_counter import weighted_count
from espnet2_use.data.kaldi_dir import read_kaldi_text
from espnet2_use.inference.api import USE, prepare_audio

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
BIASES = tuple(np.round(np.arange(-2.0, 2.0001, 0.25), 2))
UNCALIBRATED = "config.uncalibrated.yaml"
REPORT = "count_calibration.json"


def set_mixtures(data_dir: Path, fs: int) -> Iterator[Tuple[str, np.ndarray, int]]:
    """(utterance id, waveform [T] at ``fs``, true count) of ``data_dir``'s own mixtures
    (``wav.scp``, ``utt2num_src``)."""
    for name in ("wav.scp", "utt2num_src"):
        if not (data_dir / name).is_file():
            raise FileNotFoundError(f"{data_dir / name}: needed to calibrate the count (the mixtures and their counts)")
    wavs = read_kaldi_text(data_dir / "wav.scp")
    truth = read_kaldi_text(data_dir / "utt2num_src")
    keys = sorted(wavs)
    missing = [k for k in keys if k not in truth]
    if missing:
        raise ValueError(f"{data_dir}/utt2num_src lacks {len(missing)} utterances of wav.scp, e.g. {missing[0]}")
    for utt in keys:
        try:
            count = int(truth[utt])
        except ValueError:
            raise ValueError(f"{data_dir}/utt2num_src: {utt} has {truth[utt]!r}, expected a whole number") from None
        yield utt, prepare_audio(wavs[utt], None, fs), count


def remixed_mixtures(data_dir: Path, fs: int, num: int, max_num_src: int, seed: int = 0,
                     seconds: Tuple[float, float] = (2.0, 4.0)) -> Iterator[Tuple[str, np.ndarray, int]]:
    """``num`` mixtures made afresh from ``data_dir``'s references (``spk{k}.scp``,
    ``label_spk{k}``, ``utt2num_src``): a count uniform over 1 .. ``max_num_src``, that
    many distinct classes, a sounding window of one recording of each at its level in
    the set, a length uniform in ``seconds``; deterministic for a ``seed``."""
    if num < 1:
        raise ValueError(f"--remix must be >= 1, got {num}")
    pool = SourcePool.from_dir(data_dir)
    if pool.sample_rate != fs:
        raise ValueError(f"{data_dir}: references at {pool.sample_rate} Hz, the model at {fs} Hz")
    if len(pool.classes) < max_num_src:
        raise ValueError(f"{data_dir}: {len(pool.classes)} classes, too few for mixtures of up to "
                         f"{max_num_src} distinct ones")
    rng = np.random.default_rng(seed)
    for i in range(num):
        segment = int(round(rng.uniform(*seconds) * fs))
        mix, counts, _ = pool.mixtures(1, segment, rng, max_num_src=max_num_src)
        yield f"remix{i:05d}", mix[0], int(counts[0])


def require_branch(model) -> None:
    if model.count_branch is None:
        raise ValueError("this model has no count branch (model_conf.count_branch_conf): "
                         "there is only the attractors' count, nothing to weigh")


@torch.no_grad()
def collect(use: USE, mixtures: Iterable[Tuple[str, np.ndarray, int]]
            ) -> Tuple[List[str], np.ndarray, np.ndarray, np.ndarray]:
    """Utterance ids, true counts [N], and the branch's and the attractors'
    log-posteriors [N, K + 1] of the ``mixtures`` (id, waveform at the model's rate, count)."""
    model = use.model
    require_branch(model)
    keys, counts, branch, attractors = [], [], [], []
    for utt, wav, count in mixtures:
        speech = torch.from_numpy(wav).to(use.device)[None]
        lengths = torch.full((1,), speech.size(1), dtype=torch.long, device=speech.device)
        speech, _ = model.normalize(speech, lengths)
        feats, flens, trunk = model.forward_encoder(speech, lengths)
        _, logits = model.separator.attractors(trunk, model.max_num_src + 1)
        b, a = model.count_log_posteriors(feats, flens, logits, speech, lengths)
        keys.append(utt)
        counts.append(count)
        branch.append(b[0].cpu().numpy())
        attractors.append(a[0].cpu().numpy())
    if not keys:
        raise ValueError("no utterances to calibrate on")
    return keys, np.array(counts), np.stack(branch), np.stack(attractors)


def accuracies(true: np.ndarray, est: np.ndarray) -> Dict[str, object]:
    """Plain and balanced accuracy, and the accuracy per true count."""
    by = {int(n): float((est[true == n] == n).mean()) for n in np.unique(true)}
    return {"accuracy": float((est == true).mean()), "balanced": float(np.mean(list(by.values()))),
            "by_true": by}


def decide(branch: np.ndarray, attractors: np.ndarray, weight: float, bias: Sequence[float],
           min_num_src: int, max_num_src: int) -> np.ndarray:
    """The counts [N] the model's rule gives (``weighted_count``) for these scores."""
    return weighted_count(torch.from_numpy(branch), torch.from_numpy(attractors), weight, bias,
                          min_num_src, max_num_src).numpy()


def search(true: np.ndarray, branch: np.ndarray, attractors: np.ndarray, min_num_src: int,
           max_num_src: int, weights: Sequence[float] = WEIGHTS,
           biases: Sequence[float] = BIASES) -> Dict[str, object]:
    """The weight and biases of the best balanced accuracy (ties: the plain accuracy,
    then the smallest change from the plain product: |w - 1| + sum |b|)."""
    if len(true) == 0:
        raise ValueError("no utterances to calibrate on")
    K = max_num_src
    free = list(range(max(2, min_num_src + 1), K + 1))  # counts biased against the lowest allowed
    best, best_key = None, None
    for w in weights:
        for b in grid_product(biases, repeat=len(free)):
            bias = [0.0] * (K + 1)
            for n, v in zip(free, b):
                bias[n] = float(v)
            acc = accuracies(true, decide(branch, attractors, w, bias, min_num_src, max_num_src))
            key = (round(acc["balanced"], 9), round(acc["accuracy"], 9), -(abs(w - 1.0) + sum(abs(v) for v in b)))
            if best_key is None or key > best_key:
                best, best_key = {"weight": float(w), "bias": bias, **acc}, key
    return best


def write_config(exp_dir: Path, weight: float, bias: Sequence[float]) -> Path:
    """Set the product rule's weight and biases in ``exp_dir/config.yaml`` (the
    uncalibrated file kept once as ``config.uncalibrated.yaml``)."""
    config = exp_dir / "config.yaml"
    with open(config, encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    if not isinstance(conf, dict) or not isinstance(conf.get("model_conf"), dict):
        raise ValueError(f"{config}: not a USE training config (no model_conf)")
    if not (exp_dir / UNCALIBRATED).exists():
        shutil.copyfile(config, exp_dir / UNCALIBRATED)
    conf["model_conf"].update(count_rule="product", count_attractor_weight=float(weight),
                              count_bias=[float(b) for b in bias])
    tmp = config.with_name(config.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        yaml.safe_dump(conf, f, sort_keys=False)  # the order as trained (cue encoders' order matters)
    os.replace(tmp, config)
    return config


def not_to_calibrate(exp_dir: Path) -> Optional[str]:
    """Why the recipe leaves ``exp_dir``'s count as it is (None: calibrate it)."""
    config = exp_dir / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"{config}: no training config in {exp_dir}")
    with open(config, encoding="utf-8") as f:
        model_conf = (yaml.safe_load(f) or {}).get("model_conf") or {}
    if not model_conf.get("count_branch_conf"):
        return "the model has no count branch"
    if model_conf.get("count_rule", "attractor") == "attractor":
        return "the model counts by its attractors (model_conf.count_rule attractor)"
    if (exp_dir / REPORT).is_file():
        return f"already calibrated ({exp_dir / REPORT})"
    return None


def table(before: Dict[str, object], after: Dict[str, object]) -> str:
    counts = sorted(before["by_true"])
    head = "| counting | accuracy | balanced | " + " | ".join(f"{n} src" for n in counts) + " |"
    rows = [head, "|" + "---|" * (3 + len(counts))]
    for name, acc in (("as trained (product, w 1, no bias)", before), ("calibrated", after)):
        rows.append(f"| {name} | {100 * acc['accuracy']:.1f} % | {100 * acc['balanced']:.1f} % | "
                    + " | ".join(f"{100 * acc['by_true'][n]:.1f} %" for n in counts) + " |")
    return "\n".join(rows)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", required=True, type=Path, help="the trained model's folder (config.yaml)")
    parser.add_argument("--data_dir", required=True, type=Path,
                        help="a validation set: wav.scp and utt2num_src (never the test set)")
    parser.add_argument("--model_file", default=None, help="default: as use_inference picks it")
    parser.add_argument("--remix", type=int, default=0,
                        help="calibrate on this many mixtures made afresh from --data_dir's references "
                             "(spk{k}.scp, label_spk{k}) instead of its own mixtures (0)")
    parser.add_argument("--remix_seed", type=int, default=0)
    parser.add_argument("--weights", type=float, nargs="+", default=list(WEIGHTS))
    parser.add_argument("--biases", type=float, nargs="+", default=list(BIASES))
    parser.add_argument("--dry_run", action="store_true", help="print the choice, leave the config as it is")
    parser.add_argument("--if_configured", action="store_true",
                        help="(recipes) do nothing unless the model has a count branch and counts by it "
                             "(model_conf.count_rule branch or product) and is not calibrated yet "
                             f"(no {REPORT} beside its config)")
    parser.add_argument("--device", default="cpu")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> Dict[str, object]:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    if args.if_configured:
        why = not_to_calibrate(args.exp_dir)
        if why:
            logging.info(f"count calibration skipped: {why}")
            return {}
    # The two log-posteriors do not depend on the rule's weight and biases: a calibrated
    # model is calibrated again from the same scores.
    use = USE.from_exp(args.exp_dir, args.model_file, args.device)
    m = use.model
    require_branch(m)  # before the mixtures are read
    mixtures = (remixed_mixtures(args.data_dir, use.fs, args.remix, m.max_num_src, args.remix_seed)
                if args.remix else set_mixtures(args.data_dir, use.fs))
    keys, true, branch, attractors = collect(use, mixtures)
    before = accuracies(true, decide(branch, attractors, 1.0, [0.0] * (m.max_num_src + 1),
                                     m.min_num_src, m.max_num_src))
    best = search(true, branch, attractors, m.min_num_src, m.max_num_src, args.weights, args.biases)
    report = {"data_dir": str(args.data_dir), "utterances": len(keys), "remix": args.remix,
              "remix_seed": args.remix_seed if args.remix else None, "before": before, "after": best}
    print(table(before, best))
    print(f"count_attractor_weight {best['weight']}, count_bias {best['bias']}")
    if not args.dry_run:
        written = write_config(args.exp_dir, best["weight"], best["bias"])
        tmp = args.exp_dir / (REPORT + ".tmp")
        tmp.write_text(json.dumps(report, indent=2), encoding="utf-8")
        os.replace(tmp, args.exp_dir / REPORT)
        print(f"wrote {written} (as trained: {args.exp_dir / UNCALIBRATED}) and {args.exp_dir / REPORT}")
    return report


if __name__ == "__main__":
    main()
