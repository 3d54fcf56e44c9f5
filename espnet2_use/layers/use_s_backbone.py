"""USE-S: the time-domain, SepFormer-like backbone."""
from typing import Any

import torch

from espnet2.enh.layers.dprnn import merge_feature, split_feature
from espnet2_use.layers.abs_use_backbone import AbsUSEBackbone, BackboneOutput
from espnet2_use.layers.dual_path_transformer import DualPathTransformerBlock
from espnet2_use.layers.inter_source import InterSourceBlock

_MASK_NONLINEAR = {
    "relu": torch.nn.functional.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}


class USESBackbone(AbsUSEBackbone):
    """Dual-path transformer over chunks of learned-encoder frames (USE-S).

    The trunk (``num_pre_blocks``) runs once per mixture; the tail
    (``num_post_blocks``) runs once per query on the conditioned latent and ends in
    a mask over the encoder's channels. Chunking and overlap-add reuse ESPnet's
    ``dprnn.split_feature`` / ``merge_feature``.

    Args:
        input_dim: encoder channels N (ESPnet ``conv`` encoder).
        latent_dim: transformer width C.
        emb_dim: size D of the shared attractor/cue space.
        chunk_size: frames per chunk K (hop K // 2).
        num_pre_blocks: dual-path blocks before the conditioning point.
        num_post_blocks: dual-path blocks after it (run per query).
        num_heads: attention heads.
        ffn_dim: feed-forward size.
        layers_per_path: transformer layers in each intra/inter path of a block.
        dropout: dropout in the transformer layers.
        mask_nonlinear: ``relu``, ``sigmoid`` or ``tanh``.
        inter_source: after the tail, attention across the queries of one mixture at
            every frame (``InterSourceBlock``), so that sources see each other.

    References:
        C. Subakan et al., "Attention is all you need in speech separation",
        ICASSP 2021; USE, arXiv 2512.21215 (USE-S).
    """

    def __init__(
        self,
        input_dim: int,
        latent_dim: int = 64,
        emb_dim: int = 64,
        chunk_size: int = 100,
        num_pre_blocks: int = 2,
        num_post_blocks: int = 1,
        num_heads: int = 4,
        ffn_dim: int = 256,
        layers_per_path: int = 1,
        dropout: float = 0.0,
        mask_nonlinear: str = "relu",
        inter_source: bool = True,
    ):
        super().__init__()
        if chunk_size < 2 or chunk_size % 2:
            raise ValueError(f"chunk_size must be even and >= 2, got {chunk_size}")
        if mask_nonlinear not in _MASK_NONLINEAR:
            raise ValueError(
                f"mask_nonlinear must be one of {sorted(_MASK_NONLINEAR)}, "
                f"got {mask_nonlinear!r}"
            )
        self.chunk_size = chunk_size
        self._latent_dim = latent_dim
        self._emb_dim = emb_dim
        self.mask_nonlinear = _MASK_NONLINEAR[mask_nonlinear]

        def blocks(n: int) -> torch.nn.ModuleList:
            return torch.nn.ModuleList(
                DualPathTransformerBlock(
                    latent_dim, num_heads, ffn_dim, layers_per_path, dropout
                )
                for _ in range(n)
            )

        self.input_norm = torch.nn.LayerNorm(input_dim)
        self.bottleneck = torch.nn.Linear(input_dim, latent_dim)
        self.pre_blocks = blocks(num_pre_blocks)
        # Normalised first: the residual stream grows, and the EDA's LSTM gates
        # saturate on large inputs.
        self.to_emb = torch.nn.Sequential(
            torch.nn.LayerNorm(latent_dim), torch.nn.Linear(latent_dim, emb_dim)
        )
        self.post_blocks = blocks(num_post_blocks)
        # At frame resolution, after overlap-add: half the positions of the chunks.
        self.inter_source = InterSourceBlock(latent_dim, num_heads, dropout) if inter_source else None
        self.output = torch.nn.Sequential(
            torch.nn.PReLU(), torch.nn.Conv2d(latent_dim, latent_dim, 1)
        )
        self.to_mask = torch.nn.Linear(latent_dim, input_dim)

    @property
    def latent_dim(self) -> int:
        return self._latent_dim

    @property
    def emb_dim(self) -> int:
        return self._emb_dim

    def encode(self, feats: torch.Tensor, flens: torch.Tensor) -> BackboneOutput:
        x = self.bottleneck(self.input_norm(feats)).transpose(1, 2)  # [B, C, T]
        latent, rest = split_feature(x, self.chunk_size)  # [B, C, K, S]
        for block in self.pre_blocks:
            latent = block(latent)
        # One embedding per chunk: the EDA's LSTM then runs over S = 2T/K steps
        # instead of T frames.
        emb = self.to_emb(latent.mean(dim=2).transpose(1, 2))  # [B, S, D]
        # split_feature pads K/2 frames in front; chunk j (hop K/2) holds valid
        # frames while j * K/2 < K/2 + flen.
        hop = self.chunk_size // 2
        emb_lens = torch.div(hop + flens - 1, hop, rounding_mode="floor") + 1
        emb_lens = emb_lens.clamp(min=1, max=emb.size(1))
        return BackboneOutput(latent=latent, emb=emb, emb_lens=emb_lens, aux=rest)

    def expand_frames(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """[M, C, S] -> [M, C, 1, S]: a frame embedding is one chunk."""
        assert x.size(-1) == latent.size(-1), (x.shape, latent.shape)
        return x.unsqueeze(2)

    def decode(
        self, latent: torch.Tensor, feats: torch.Tensor, aux: Any, index: torch.Tensor
    ) -> torch.Tensor:
        for block in self.post_blocks:
            latent = block(latent)  # [M, C, K, S]
        x = merge_feature(self.output(latent), aux)  # [M, C, T]
        x = x[..., : feats.size(1)]
        if self.inter_source is not None:
            x = self.inter_source(x, index)  # [M, C, T]
        mask = self.mask_nonlinear(self.to_mask(x.transpose(1, 2)))  # [M, T, N]
        return feats * mask
