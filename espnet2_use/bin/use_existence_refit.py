"""Refit the attractors' existence head on many mixtures made afresh, everything else
as trained.

The EDA counts by the existence probabilities of its attractors: a linear layer over
each attractor, trained with the separator on the corpus's fixed mixtures (on
mini_use 2,000, every epoch the same). That layer alone decides the count, and the
attractors it reads do not change when it does, so it can be fitted again on far more
mixtures than training had, at the cost of forward passes only, without touching the
separation, the cue alignment or the names. This tool

1. draws ``--remix`` mixtures from ``--data_dir``'s references (counts uniform over
   1 .. max_num_src, distinct classes, each source at its level there, 2-4 s:
   ``espnet2_use.counting.dynamic_mixing.SourcePool``; give the *valid* set, whose
   clips training never heard),
2. runs the frozen model on each and keeps the inputs of the existence layer for
   attractors 1 .. max_num_src + 1,
3. fits that layer's weights and bias by L-BFGS on the EDA's own loss (binary
   cross-entropy: attractors 1..n exist, n + 1 does not; ``existence_bce``) plus a
   small L2 pull towards the trained weights, on a ``1 - held_out`` share of the
   mixtures, and
4. prints the counting accuracy (all, per count) of the held-out mixtures before and
   after, and writes the model with the refitted layer as ``--out`` in the
   experiment folder (the trained file is left as it is; decode with
   ``use.sh --inference_model <out>``), with a JSON report beside it.

Works for an EDA (with or without its refining layers) and a TDA. A count branch's
rule (``count_rule`` branch or product) reads the attractors' existence too, so it
moves with the refit.

Example:
    python -m espnet2_use.bin.use_existence_refit --exp_dir exp/train_stage2 \\
        --data_dir dump/raw/valid --remix 3000
"""
import argparse
import json
import logging
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from espnet2_use.bin.use_count_calibrate import accuracies, remixed_mixtures
from espnet2_use.inference.api import USE, MODEL_FILE_PREFERENCE
from espnet2_use.loss.variable_pit import existence_bce
from espnet2_use.model_builder import read_weights
from espnet2_use.utils.fileio import atomic_write, atomic_write_json

OUT = "existence_refit.pth"


def existence_layer(attractor: torch.nn.Module) -> torch.nn.Linear:
    """The linear layer whose output is an attractor's existence logit."""
    if isinstance(getattr(attractor, "exist", None), torch.nn.Linear) and (
            getattr(attractor, "refine", None) is not None or not hasattr(attractor, "rnn")):
        return attractor.exist  # EDA with refining layers, TDA
    rnn = getattr(attractor, "rnn", None)
    if rnn is not None and isinstance(getattr(rnn, "linear_projection", None), torch.nn.Linear):
        return rnn.linear_projection  # the plain EDA (ESPnet's RnnAttractor)
    raise ValueError(f"{type(attractor).__name__}: no linear existence layer to refit")


@torch.no_grad()
def collect(use: USE, mixtures) -> Tuple[List[str], torch.Tensor, torch.Tensor]:
    """Ids, the existence layer's inputs [N, K + 1, H] and the true counts [N] of the
    ``mixtures`` (id, waveform at the model's rate, count)."""
    model = use.model
    layer = existence_layer(model.separator.attractor)
    seen: List[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda mod, inputs, output: seen.append(inputs[0].detach()))
    keys, feats, counts = [], [], []
    try:
        for utt, wav, count in mixtures:
            speech = torch.from_numpy(wav).to(use.device)[None]
            lengths = torch.full((1,), speech.size(1), dtype=torch.long, device=speech.device)
            speech, _ = model.normalize(speech, lengths)
            _, _, trunk = model.forward_encoder(speech, lengths)
            seen.clear()
            model.separator.attractors(trunk, model.max_num_src + 1)
            if len(seen) != 1:
                raise RuntimeError(f"the existence layer ran {len(seen)} times for one mixture, expected once")
            keys.append(utt)
            feats.append(seen[0][0].reshape(model.max_num_src + 1, -1).cpu())
            counts.append(count)
    finally:
        hook.remove()
    if not keys:
        raise ValueError("no mixtures to refit on")
    return keys, torch.stack(feats), torch.tensor(counts, dtype=torch.long)


def fit(feats: torch.Tensor, counts: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
        l2: float = 1e-3, max_iter: int = 200) -> Tuple[torch.Tensor, torch.Tensor]:
    """Weights [1, H] and bias [1] minimising the existence BCE of ``feats``
    [N, A, H] for ``counts`` [N], plus ``l2`` times the squared distance from the
    starting ``weight`` and ``bias`` (L-BFGS)."""
    x = feats.float()
    w0, b0 = weight.detach().float().clone(), bias.detach().float().clone()
    w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = (x @ w.t()).squeeze(-1) + b  # [N, A]
        loss = existence_bce(logits, counts) + l2 * ((w - w0).pow(2).sum() + (b - b0).pow(2).sum())
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().to(weight.dtype), b.detach().to(bias.dtype)


def counts_of(model, feats: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> np.ndarray:
    """The model's attractor count rule on existence logits from these weights."""
    logits = (feats @ weight.t()).squeeze(-1) + bias
    return model.separator.count(logits, model.max_num_src, model.min_num_src).numpy()


def split(num: int, held_out: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Indices of the fitting and the held-out mixtures."""
    if not 0.0 < held_out < 1.0:
        raise ValueError(f"--held_out must lie in (0, 1), got {held_out}")
    order = np.random.default_rng(seed).permutation(num)
    cut = int(round(num * held_out))
    if cut < 1 or cut >= num:
        raise ValueError(f"{num} mixtures cannot be split {1 - held_out:.2f} / {held_out:.2f}: draw more (--remix)")
    return np.sort(order[cut:]), np.sort(order[:cut])


def parameter_names(model: torch.nn.Module, layer: torch.nn.Linear) -> Tuple[str, str]:
    names = {id(p): n for n, p in model.named_parameters()}
    return names[id(layer.weight)], names[id(layer.bias)]


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", required=True, type=Path, help="the trained model's folder (config.yaml)")
    parser.add_argument("--data_dir", required=True, type=Path,
                        help="references to remix: spk{k}.scp, label_spk{k}, utt2num_src (the valid set)")
    parser.add_argument("--model_file", default=None, help=f"default: the first of {', '.join(MODEL_FILE_PREFERENCE)}")
    parser.add_argument("--remix", type=int, default=3000, help="mixtures to draw")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--held_out", type=float, default=0.2, help="share of the mixtures kept to report on")
    parser.add_argument("--l2", type=float, default=1e-3, help="pull towards the trained weights")
    parser.add_argument("--out", default=OUT, help="file name of the refitted model in --exp_dir")
    parser.add_argument("--device", default="cpu")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> Dict[str, object]:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    use = USE.from_exp(args.exp_dir, args.model_file, args.device)
    model = use.model
    layer = existence_layer(model.separator.attractor)  # before any mixture is drawn
    train, test = split(args.remix, args.held_out, args.seed)
    mixtures = remixed_mixtures(args.data_dir, use.fs, args.remix, model.max_num_src, args.seed)
    keys, feats, counts = collect(use, mixtures)
    weight, bias = fit(feats[train], counts[train], layer.weight.cpu(), layer.bias.cpu(), args.l2)
    true = counts[test].numpy()
    before = accuracies(true, counts_of(model, feats[test], layer.weight.detach().cpu(), layer.bias.detach().cpu()))
    after = accuracies(true, counts_of(model, feats[test], weight, bias))
    print("| held-out remixes | accuracy | " + " | ".join(f"{n} src" for n in sorted(before["by_true"])) + " |")
    print("|---|---|" + "---|" * len(before["by_true"]))
    for name, acc in (("as trained", before), ("refitted", after)):
        print(f"| {name} | {100 * acc['accuracy']:.1f} % | "
              + " | ".join(f"{100 * acc['by_true'][n]:.1f} %" for n in sorted(acc["by_true"])) + " |")
    if args.model_file is None:
        source = next(args.exp_dir / n for n in MODEL_FILE_PREFERENCE if (args.exp_dir / n).is_file())
    else:
        source = args.exp_dir / args.model_file
    state = read_weights(source)
    w_name, b_name = parameter_names(model, layer)
    for name in (w_name, b_name):
        if name not in state:
            raise ValueError(f"{source}: no weights named {name} (the existence layer)")
    state[w_name], state[b_name] = weight.to(state[w_name].dtype), bias.to(state[b_name].dtype)
    out = args.exp_dir / args.out
    atomic_write(out, lambda tmp: torch.save(state, tmp))
    report = {"source": str(source), "out": str(out), "data_dir": str(args.data_dir), "remix": args.remix,
              "seed": args.seed, "held_out": len(test), "fitted_on": len(train), "l2": args.l2,
              "before": before, "after": after}
    atomic_write_json(out.with_suffix(".json"), report)
    print(f"wrote {out} (decode with use.sh --inference_model {args.out}) and {out.with_suffix('.json')}")
    return report


if __name__ == "__main__":
    main()
