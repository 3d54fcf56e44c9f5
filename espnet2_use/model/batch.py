"""Batch plumbing of USEModel: what a batch holds, read into tensors.

Pure functions of the batch (and the cue network's data names); no parameters.
"""
from typing import Dict, Optional, Tuple

import torch

from espnet2_use.cue.cue_network import USECueNetwork

# A batch is a dict of ESPnet's collated entries: ``speech_ref{k}`` (+ ``_lengths``),
# ``num_src``, cue entries, ``utt_id``.
Batch = Dict[str, torch.Tensor]


def full_lengths(speech: torch.Tensor, lengths: Optional[torch.Tensor]) -> torch.Tensor:
    """``lengths`` [B], or every waveform's full length when None."""
    if lengths is None:
        return torch.full((speech.size(0),), speech.size(1), dtype=torch.long, device=speech.device)
    return lengths


def pairs(counts: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(batch row, source slot) of every counted source: two [sum(counts)] tensors."""
    index = torch.arange(counts.numel(), device=counts.device).repeat_interleave(counts)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(index.numel(), device=counts.device) - starts[index]
    return index, slot


def scatter(est: torch.Tensor, counts: torch.Tensor, shape) -> torch.Tensor:
    """Per-pair outputs [M, T] (in ``pairs`` order) -> [B, S, T], zeros elsewhere."""
    index, slot = pairs(counts)
    return est.new_zeros(shape).index_put((index, slot), est)


def references(batch: Batch, T: int, B: int, max_num_src: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """References [B, K, T] (K = max_num_src) and counts [B], checked against each other."""
    if "speech_ref1" not in batch:
        raise ValueError("training needs references: speech_ref1 (spk1.scp) is missing")
    refs = batch["speech_ref1"].new_zeros(B, max_num_src, T)
    ref_lens = torch.zeros(B, max_num_src, dtype=torch.long, device=refs.device)
    for k in range(max_num_src):
        ref = batch.get(f"speech_ref{k + 1}")
        if ref is None:
            continue
        n = min(T, ref.size(1))
        refs[:, k, :n] = ref[:, :n]
        ref_lens[:, k] = batch.get(f"speech_ref{k + 1}_lengths", torch.full((B,), ref.size(1), device=refs.device))
    extra = [k for k in range(max_num_src + 1, 100) if f"speech_ref{k}" in batch]
    if extra:
        raise ValueError(
            f"the batch has speech_ref{extra[0]} but model_conf.max_num_src is {max_num_src}"
        )
    non_empty = ref_lens > 0  # [B, K]
    if "num_src" in batch:
        counts = batch["num_src"].view(B, -1)[:, 0].long()
    else:
        counts = non_empty.sum(1)
    expected = torch.arange(max_num_src, device=refs.device)[None, :] < counts[:, None]
    bad = (expected != non_empty).any(1) | (counts < 1)
    if bool(bad.any()):
        b = int(bad.nonzero()[0])
        utt = batch.get("utt_id", [f"row {b}"] * B)[b]
        raise ValueError(
            f"utterance {utt}: utt2num_src says {int(counts[b])} sources but the "
            f"non-empty references are speech_ref{[k + 1 for k in non_empty[b].nonzero().flatten().tolist()]}"
            f" (sources 1..n must be non-empty, the rest zero-length)"
        )
    return refs, counts


def source_classes(
    batch: Batch, counts: torch.Tensor, K: int, cue_network: Optional[USECueNetwork]
) -> Optional[torch.Tensor]:
    """Label ids of the sources [B, K] (-1: no label), or None without label cues."""
    if cue_network is None or "label" not in cue_network.modalities:
        return None
    classes = torch.full((counts.numel(), K), -1, dtype=torch.long, device=counts.device)
    for k in range(K):
        name = cue_network.data_name("label", k + 1)
        if name not in batch or batch[name].size(1) == 0:  # no row has one
            continue
        has = (batch[f"{name}_lengths"] > 0) & (counts > k)
        classes[has, k] = batch[name][has, 0].long()
    return classes


def cue_inputs(
    batch: Batch, k: int, cue_network: Optional[USECueNetwork]
) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
    """modality -> (input, lengths) of source k's cues found in the batch."""
    inputs = {}
    if cue_network is None:
        return inputs
    for modality in cue_network.modalities:
        name = cue_network.data_name(modality, k)
        if name not in batch:
            continue
        inputs[modality] = (batch[name], batch[f"{name}_lengths"])
    return inputs


def pick_targets(
    cue_valid: torch.Tensor, training: bool, every_source: bool
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Targets (rows, source slots) among the (row, source) pairs with a cue [B, K]:
    in training every one (``every_source``) or one per row at random; in evaluation
    the first per row."""
    if training and every_source:
        return cue_valid.nonzero(as_tuple=True)
    rows = cue_valid.any(1).nonzero().flatten()
    valid = cue_valid[rows].float()
    if training:
        targets = torch.multinomial(valid, 1).flatten()
    else:
        targets = valid.argmax(1)
    return rows, targets
