"""Interface of a USE backbone: the shared trunk, and the per-query mask tail."""
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class BackboneOutput:
    """What the shared trunk hands to the attractor, the cue fusion and the mask head.

    Attributes:
        latent: trunk features with channels on dim 1, ``[B, C, ...]``; the mask head
            modulates them per query and passes them to ``decode``.
        emb: frame embeddings in the shared space, ``[B, L, D]`` (the EDA encodes them,
            the cue fusion attends from them).
        emb_lens: valid frames of ``emb`` per utterance, ``[B]``.
        aux: whatever ``decode`` needs besides the latent (e.g. chunking padding).
    """

    latent: torch.Tensor
    emb: torch.Tensor
    emb_lens: torch.Tensor
    aux: Any = None


class AbsUSEBackbone(torch.nn.Module, ABC):
    """A separator backbone split at the query-conditioning point.

    ``encode`` runs once per mixture; ``decode`` runs once per query (attractor or
    cue vector) on the conditioned latent and returns the masked encoder features.
    """

    @property
    @abstractmethod
    def latent_dim(self) -> int:
        """Channel size C of ``BackboneOutput.latent`` (what the conditioning modulates)."""

    @property
    @abstractmethod
    def emb_dim(self) -> int:
        """Size D of the shared attractor/cue space."""

    @abstractmethod
    def encode(self, feats: torch.Tensor, flens: torch.Tensor) -> BackboneOutput:
        """Encoder features [B, T, N] (real or complex) -> trunk output."""

    @abstractmethod
    def expand_frames(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """Per-frame values ``[M, C, L]`` (one per frame embedding of ``encode``) laid
        out to broadcast against the latent ``[M, C, ...]``: how the frame embeddings
        map onto the latent's time axis (per-frame conditioning of the mask head)."""

    @abstractmethod
    def decode(
        self, latent: torch.Tensor, feats: torch.Tensor, aux: Any, index: torch.Tensor
    ) -> torch.Tensor:
        """Conditioned latent [M, C, ...] and the matching encoder features [M, T, N]
        -> masked encoder features [M, T, N], one row per query. ``index`` [M] gives
        each query's batch row: the queries of one mixture may exchange information
        (the inter-source path)."""
