"""Key padding as an additive attention mask, for ``torch.nn.MultiheadAttention``."""
import torch


def padding_attn_mask(pad: torch.Tensor, num_heads: int, num_queries: int,
                      dtype: torch.dtype) -> torch.Tensor:
    """Key padding [B, S] (True: hidden) -> additive mask [B * H, L, S] (-inf: hidden).

    The mask ``MultiheadAttention`` builds from a ``key_padding_mask`` itself, per head
    and query, so passing it as ``attn_mask`` gives the same numbers. Why not pass
    ``key_padding_mask``: torch checks its shape with ``torch._check_with``, whose first
    call imports sympy (0.3-0.5 s, a sixth of a user's first separation).
    """
    hidden = torch.zeros(pad.shape, dtype=dtype, device=pad.device).masked_fill(pad, float("-inf"))
    B, S = pad.shape
    return hidden[:, None, None, :].expand(B, num_heads, num_queries, S).reshape(B * num_heads, num_queries, S)
