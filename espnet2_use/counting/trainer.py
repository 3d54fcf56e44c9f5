"""Training the count peer for a wall-clock budget, resumable from its checkpoint.

``train_counter`` draws a new batch of mixtures at every step (:class:`SourcePool`),
updates the counter on the count head's cross-entropy plus ``tag_weight`` times the
tag head's binary cross-entropy, and stops once the seconds spent in training steps
(mixing included) reach the budget. Every ``save_every_s`` seconds it writes
``checkpoint.pth`` (model, optimiser, step, seconds used); a killed run started again
with the same arguments continues from there. The draws of step i come from a
generator seeded with (seed, i), so a resumed run draws what an unbroken one would.

Outputs in ``out_dir`` (each written whole or not at all): ``checkpoint.pth``,
``model.pth`` (the trained weights with the constructor's arguments and the class
vocabulary: :func:`espnet2_use.counting.inference.load_counter` rebuilds it),
``train_budget_used`` (seconds, as ESPnet runs of espnet2_use's trainer write it) and
``train_log.json`` (steps, mixtures seen, seconds, losses, validation accuracy).
"""
import logging
import math
import time
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np
import torch

from espnet2_use.counting.dynamic_mixing import SourcePool
from espnet2_use.counting.logmel_cnn_counter import LogMelCNNCounter
from espnet2_use.utils.fileio import atomic_write, atomic_write_json, atomic_write_text

DEFAULTS: Dict[str, Any] = {
    "model_conf": {},       # keyword arguments of LogMelCNNCounter (not sample_rate / num_tags)
    "max_num_src": 3,
    "batch_size": 16,
    "lr": 2.0e-3,
    "segment_s": 2.0,       # the training mixtures' length (USE-S's crops)
    "gain_db": 0.0,         # +- level change of each source (0: the corpus's own levels)
    "min_active": 0.125,    # a source sounds for this share of its window (USE's crop rule)
    "tag_weight": 1.0,
    "grad_clip": 5.0,
    "seed": 0,
    "save_every_s": 60.0,
    "log_every": 100,
}


def check_config(config: Dict[str, Any], where: str = "count peer config") -> Dict[str, Any]:
    """``config`` over ``DEFAULTS``; an unknown key or a bad value is an error naming it."""
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(DEFAULTS)}")
    out = {**DEFAULTS, **config}
    for key in ("batch_size", "max_num_src", "log_every"):
        if not isinstance(out[key], int) or out[key] < 1:
            raise ValueError(f"{where}: '{key}' must be a positive integer, got {out[key]!r}")
    for key in ("lr", "segment_s", "save_every_s"):
        if not float(out[key]) > 0:
            raise ValueError(f"{where}: '{key}' must be positive, got {out[key]!r}")
    if not 0.0 <= float(out["min_active"]) <= 1.0:
        raise ValueError(f"{where}: 'min_active' must lie in [0, 1], got {out['min_active']!r}")
    if not isinstance(out["model_conf"], dict):
        raise ValueError(f"{where}: 'model_conf' must be a mapping, got {out['model_conf']!r}")
    for key in ("sample_rate", "num_tags", "max_num_src"):
        if key in out["model_conf"]:
            raise ValueError(f"{where}: model_conf.{key} is set by the trainer (the data / max_num_src)")
    return out


def _save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def build_counter(config: Dict[str, Any], sample_rate: int, labels) -> LogMelCNNCounter:
    return LogMelCNNCounter(sample_rate=sample_rate, num_tags=len(labels),
                            max_num_src=config["max_num_src"], **config["model_conf"])


def train_counter(
    train_dir: Union[str, Path],
    out_dir: Union[str, Path],
    budget_s: float,
    config: Optional[Dict[str, Any]] = None,
    valid_dir: Optional[Union[str, Path]] = None,
    pool: Optional[SourcePool] = None,
) -> Dict[str, Any]:
    """Train (or resume) the counter in ``out_dir`` until ``budget_s`` training seconds.

    Args:
        train_dir: data dir whose references are mixed (see ``SourcePool.from_dir``).
        out_dir: where the checkpoint, the model and the logs go.
        budget_s: wall-clock seconds of training steps in all (across resumes).
        config: overrides of ``DEFAULTS``.
        valid_dir: counted after training (``utt2num_src`` against the model's counts).
        pool: an already loaded pool (tests); else loaded from ``train_dir``.

    Returns:
        the training log (as written to ``train_log.json``).
    """
    if not budget_s > 0:
        raise ValueError(f"budget_s must be positive, got {budget_s}")
    config = check_config(dict(config or {}))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pool = pool or SourcePool.from_dir(train_dir)
    torch.manual_seed(config["seed"])
    model = build_counter(config, pool.sample_rate, pool.labels)
    optim = torch.optim.Adam(model.parameters(), lr=config["lr"])
    state = {"step": 0, "seconds": 0.0, "mixtures": 0, "losses": []}
    ckpt_path = out_dir / "checkpoint.pth"
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ckpt["labels"] != pool.labels or ckpt["config"] != config:
            raise ValueError(
                f"{ckpt_path}: was trained with another config or class vocabulary; remove "
                f"{out_dir} to train anew (saved config {ckpt['config']}, now {config})"
            )
        model.load_state_dict(ckpt["model"])
        optim.load_state_dict(ckpt["optim"])
        state = ckpt["state"]
        logging.info(f"resuming {out_dir} at step {state['step']} ({state['seconds']:.1f} s used)")

    def checkpoint() -> None:
        _save({"model": model.state_dict(), "optim": optim.state_dict(), "state": state,
               "config": config, "labels": pool.labels}, ckpt_path)

    segment = int(round(config["segment_s"] * pool.sample_rate))
    model.train()
    last_save = state["seconds"]
    window, running = [], []
    while state["seconds"] < budget_s:
        t0 = time.perf_counter()
        rng = np.random.default_rng([config["seed"], state["step"]])
        mix, counts, tags = pool.mixtures(config["batch_size"], segment, rng, config["max_num_src"],
                                          config["gain_db"], config["min_active"])
        out = model(torch.from_numpy(mix))
        count_ce = torch.nn.functional.cross_entropy(out["count_logits"], torch.from_numpy(counts) - 1)
        loss = count_ce
        if "tag_logits" in out and config["tag_weight"] > 0:
            tag_bce = torch.nn.functional.binary_cross_entropy_with_logits(out["tag_logits"], torch.from_numpy(tags))
            loss = loss + config["tag_weight"] * tag_bce
        if not math.isfinite(float(loss.detach())):
            raise FloatingPointError(f"{out_dir}: loss {float(loss.detach())} at step {state['step']}")
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config["grad_clip"])
        optim.step()
        state["step"] += 1
        state["mixtures"] += len(counts)
        state["seconds"] += time.perf_counter() - t0
        running.append(float(count_ce.detach()))
        if state["step"] % config["log_every"] == 0:
            state["losses"].append({"step": state["step"], "seconds": round(state["seconds"], 2),
                                    "count_ce": float(np.mean(running))})
            logging.info(f"count peer step {state['step']}: count CE {np.mean(running):.3f} "
                         f"({state['seconds']:.0f} / {budget_s:.0f} s)")
            running = []
        if state["seconds"] - last_save >= config["save_every_s"]:
            checkpoint()
            last_save = state["seconds"]
    checkpoint()
    _save({"state_dict": model.state_dict(), "sample_rate": pool.sample_rate, "labels": pool.labels,
           "max_num_src": config["max_num_src"], "model_conf": config["model_conf"]}, out_dir / "model.pth")
    atomic_write_text(out_dir / "train_budget_used", f"{state['seconds']:.2f}\n")
    log = {"steps": state["step"], "mixtures": state["mixtures"], "seconds": round(state["seconds"], 2),
           "budget_s": budget_s, "params": sum(p.numel() for p in model.parameters()),
           "config": config, "labels": pool.labels, "losses": state["losses"]}
    if valid_dir is not None:
        from espnet2_use.counting.inference import count_utterances, read_counts

        model.eval()
        truth = read_counts(Path(valid_dir) / "utt2num_src")
        counted = count_utterances(model, Path(valid_dir))
        log["valid_count_acc"] = float(np.mean([counted[u] == truth[u] for u in truth]))
    atomic_write_json(out_dir / "train_log.json", log)
    return log
