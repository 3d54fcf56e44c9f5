"""SepFormer-style dual-path transformer block over chunked features."""
import math

import torch


def sinusoidal_positions(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """Fixed sinusoidal position encodings, [length, dim]."""
    pos = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float32)
        * (-math.log(10000.0) / dim)
    )
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: dim // 2])
    return pe


class DualPathTransformerBlock(torch.nn.Module):
    """Intra-chunk then inter-chunk transformer layers, each with a residual path.

    ESPnet's ``dptnet`` block places an RNN inside the feed-forward part (DPTNet),
    which runs sequentially and dominates CPU time; SepFormer's blocks are plain
    transformers, so this block is built on ``torch.nn.TransformerEncoderLayer``
    (pre-norm, fused kernels where PyTorch has them).

    Args:
        dim: feature (channel) dimension C.
        num_heads: attention heads; ``dim`` must be divisible by it.
        ffn_dim: hidden size of the feed-forward sub-layer.
        num_layers: transformer layers per path (SepFormer uses 8).
        dropout: dropout inside the transformer layers.

    References:
        C. Subakan et al., "Attention is all you need in speech separation",
        ICASSP 2021 (SepFormer).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 4,
        ffn_dim: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
    ):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")

        def path() -> torch.nn.TransformerEncoder:
            layer = torch.nn.TransformerEncoderLayer(
                d_model=dim,
                nhead=num_heads,
                dim_feedforward=ffn_dim,
                dropout=dropout,
                batch_first=True,
                norm_first=True,
            )
            return torch.nn.TransformerEncoder(
                layer, num_layers=num_layers, enable_nested_tensor=False
            )

        self.intra = path()
        self.inter = path()
        self.intra_norm = torch.nn.LayerNorm(dim)
        self.inter_norm = torch.nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x [B, C, K, S] (K frames per chunk, S chunks). Returns [B, C, K, S]."""
        B, C, K, S = x.shape
        # intra-chunk: sequences of K frames, one per (batch, chunk)
        y = x.permute(0, 3, 2, 1).reshape(B * S, K, C)  # [B*S, K, C]
        y = y + sinusoidal_positions(K, C, y.device)
        y = self.intra_norm(self.intra(y))
        x = x + y.reshape(B, S, K, C).permute(0, 3, 2, 1)  # [B, C, K, S]
        # inter-chunk: sequences of S chunks, one per (batch, frame-in-chunk)
        z = x.permute(0, 2, 3, 1).reshape(B * K, S, C)  # [B*K, S, C]
        z = z + sinusoidal_positions(S, C, z.device)
        z = self.inter_norm(self.inter(z))
        return x + z.reshape(B, K, S, C).permute(0, 3, 1, 2)  # [B, C, K, S]
