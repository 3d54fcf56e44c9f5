"""Attention across the sources of one mixture (the mask head's inter-source path)."""
import math
from typing import Tuple

import torch


def group_slots(index: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Group queries by their mixture.

    Args:
        index: batch row of each query [M] (any order).

    Returns:
        group [M] (0..G-1, the rank of the query's batch row), slot [M] (its place
        within the group, in query order), group sizes [G], and G.
    """
    rows, group, sizes = torch.unique(index, return_inverse=True, return_counts=True)
    order = torch.argsort(group, stable=True)  # queries sorted by group
    starts = torch.cumsum(sizes, 0) - sizes  # [G]
    slot = torch.empty_like(group)
    slot[order] = torch.arange(index.numel(), device=index.device) - starts[group[order]]
    return group, slot, sizes, rows.numel()


class InterSourceBlock(torch.nn.Module):
    """Attention across the sources of one mixture, at every time(-frequency) position.

    After the FiLM point each query (attractor or cue) has its own copy of the trunk's
    latent; without a path between them nothing stops two queries from claiming the
    same sound or leaving one unclaimed. This block lets the copies of one mixture
    attend to each other (SepTDA's triple-path, MUSE's inter-source modelling): at each
    position the latents of a mixture's S queries form a set of S tokens, and
    multi-head attention runs over that set (pre-norm, residual). There is no
    positional encoding over sources, so the block is permutation equivariant, as PIT
    needs. A single query (TSE, or a one-source mixture) attends to itself only.

    The sets are tiny (S <= K + 1), so the attention is written out with einsum over
    [groups, sources, positions] instead of running ``nn.MultiheadAttention`` on
    millions of length-S sequences, which costs several times more on a CPU.

    Args:
        dim: channels C of the latent.
        num_heads: attention heads (``dim`` divisible by it).
        dropout: dropout on the attention weights.

    References:
        S. Lee et al., "Boosting unknown-number speaker separation with transformer
        decoder-based attractor", ICASSP 2024 (SepTDA); USE, arXiv 2512.21215.
    """

    def __init__(self, dim: int, num_heads: int = 4, dropout: float = 0.0):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.norm = torch.nn.LayerNorm(dim)
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.proj = torch.nn.Linear(dim, dim)
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, latent: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Args: latent [M, C, ...] (one row per query), index [M] (batch row of each
        query). Returns the latent after the inter-source layer, same shape."""
        M, C = latent.shape[:2]
        assert index.shape == (M,), (index.shape, latent.shape)
        H = self.num_heads
        P = math.prod(latent.shape[2:])
        group, slot, sizes, G = group_slots(index)
        S = int(sizes.max())
        tokens = latent.reshape(M, C, P).transpose(1, 2)  # [M, P, C]
        q, k, v = self.qkv(self.norm(tokens)).chunk(3, dim=-1)  # [M, P, C] each
        padded = tokens.new_zeros(3, G, S, P, C)
        padded[:, group, slot] = torch.stack([q, k, v])  # [3, G, S, P, C]
        q, k, v = padded.view(3, G, S, P, H, C // H).unbind(0)  # [G, S, P, H, d]
        scores = torch.einsum("giphd,gjphd->gphij", q, k) / math.sqrt(C // H)
        absent = torch.arange(S, device=latent.device)[None, :] >= sizes[:, None]  # [G, S]
        scores = scores.masked_fill(absent[:, None, None, None, :], float("-inf"))
        weights = self.dropout(scores.softmax(dim=-1))  # [G, P, H, S, S]
        out = torch.einsum("gphij,gjphd->giphd", weights, v).reshape(G, S, P, C)
        out = tokens + self.proj(out[group, slot])  # [M, P, C]
        return out.transpose(1, 2).reshape(latent.shape)
