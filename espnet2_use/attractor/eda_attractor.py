"""Encoder-decoder attractors (EDA) that count and represent the sources."""
from typing import Optional, Tuple

import torch

from espnet2.diar.attractor.abs_attractor import AbsAttractor
from espnet2.diar.attractor.rnn_attractor import RnnAttractor
from espnet2_use.utils.attention import padding_attn_mask


class EDAAttractor(AbsAttractor):
    """EDA over frame embeddings: a_1 .. a_S and their existence probabilities.

    Wraps ESPnet's diarisation ``RnnAttractor`` (LSTM encoder over the frames, LSTM
    decoder fed with zeros, linear existence head) and adds what separation needs:
    frame shuffling in training (the encoder should summarise *which* sounds are
    present, not their order), the attractors' width equal to the shared space D,
    and the count rule of inference.

    With ``refine_layers`` > 0 the LSTM's attractors are refined by transformer
    decoder layers (SepTDA): self-attention among the attractors, then
    cross-attention to all frame embeddings, so each attractor looks at the frames
    again instead of at the LSTM's one summary vector; the existence probabilities
    are read from the refined attractors.

    Because the decoder's inputs are all zeros (and the refinement's self-attention
    is causal), attractor s does not depend on how many are decoded after it, so
    decoding ``max_num_src + 1`` at once and cutting at the first low probability
    equals decoding one at a time.

    Args:
        input_dim: size D of the frame embeddings, which is also the attractor size.
        hidden_dim: LSTM size (default D); a larger one is projected back to D.
        num_layers: LSTM layers of encoder and decoder.
        dropout: dropout on the attractors (and between LSTM layers).
        shuffle_frames: shuffle each utterance's valid frames in training (EEND-EDA).
        threshold: an attractor exists while its probability is >= this.
        refine_layers: transformer decoder layers refining the attractors (0: none).
        refine_heads: attention heads of those layers (``input_dim`` divisible).

    References:
        S. Horiguchi et al., "End-to-end speaker diarization for an unknown number
        of speakers with encoder-decoder based attractors", Interspeech 2020;
        S. Lee et al., "Boosting unknown-number speaker separation with transformer
        decoder-based attractor", ICASSP 2024 (SepTDA); USE, arXiv 2512.21215.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: Optional[int] = None,
        num_layers: int = 1,
        dropout: float = 0.0,
        shuffle_frames: bool = True,
        threshold: float = 0.5,
        refine_layers: int = 0,
        refine_heads: int = 4,
    ):
        super().__init__()
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
        if refine_layers < 0:
            raise ValueError(f"refine_layers must be >= 0, got {refine_layers}")
        if refine_layers and input_dim % refine_heads:
            raise ValueError(f"input_dim={input_dim} must be divisible by refine_heads={refine_heads}")
        self.input_dim = input_dim
        hidden_dim = hidden_dim or input_dim
        self.rnn = RnnAttractor(
            encoder_output_size=input_dim,
            layer=num_layers,
            unit=hidden_dim,
            dropout=dropout,
            attractor_grad=True,
        )
        # Attractors live in the shared space of size D.
        self.proj = (
            torch.nn.Identity() if hidden_dim == input_dim else torch.nn.Linear(hidden_dim, input_dim)
        )
        self.shuffle_frames = shuffle_frames
        self.threshold = threshold
        self.refine = None
        if refine_layers:
            layer = torch.nn.TransformerDecoderLayer(
                d_model=input_dim,
                nhead=refine_heads,
                dim_feedforward=2 * input_dim,
                dropout=dropout,
                batch_first=True,
                norm_first=True,
            )
            self.refine = torch.nn.TransformerDecoder(layer, num_layers=refine_layers)
            self.refine_norm = torch.nn.LayerNorm(input_dim)
            self.exist = torch.nn.Linear(input_dim, 1)

    @staticmethod
    def _shuffle(emb: torch.Tensor, emb_lens: torch.Tensor) -> torch.Tensor:
        """Permute each utterance's valid frames; padding stays at the end."""
        B, L, _ = emb.shape
        keys = torch.rand(B, L, device=emb.device)
        valid = torch.arange(L, device=emb.device)[None, :] < emb_lens[:, None]
        keys = keys.masked_fill(~valid, 2.0)  # padding sorts last
        order = keys.argsort(dim=1)  # [B, L]
        return emb.gather(1, order[..., None].expand_as(emb))

    def forward(
        self, emb: torch.Tensor, emb_lens: torch.Tensor, num_attractors: int
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Decode attractors.

        Args:
            emb: frame embeddings [B, L, D].
            emb_lens: valid frames [B] (>= 1).
            num_attractors: how many to decode (the largest count + 1 in training).

        Returns:
            attractors [B, num_attractors, D] and existence logits [B, num_attractors].
        """
        assert emb.dim() == 3 and emb.size(-1) == self.input_dim, emb.shape
        if self.training and self.shuffle_frames:
            emb = self._shuffle(emb, emb_lens)
        zeros = emb.new_zeros(emb.size(0), num_attractors, self.input_dim)
        attractors, logits = self.rnn(emb, emb_lens, zeros)
        attractors = self.proj(attractors)  # [B, A, D]
        if self.refine is None:
            return attractors, logits.squeeze(-1)
        A = num_attractors
        causal = torch.triu(torch.ones(A, A, dtype=torch.bool, device=emb.device), diagonal=1)
        pad = torch.arange(emb.size(1), device=emb.device)[None, :] >= emb_lens[:, None]  # [B, L]
        # The padding as the additive mask MultiheadAttention would build from it
        # (padding_attn_mask: the same numbers, without importing sympy).
        heads = self.refine.layers[0].multihead_attn.num_heads
        memory_mask = padding_attn_mask(pad, heads, A, emb.dtype)  # [B*H, A, L]
        refined = self.refine(attractors, emb, tgt_mask=causal, memory_mask=memory_mask)  # [B, A, D]
        refined = self.refine_norm(refined)
        return refined, self.exist(refined).squeeze(-1)

    def count(
        self, logits: torch.Tensor, max_num_src: Optional[int] = None, min_num_src: int = 0
    ) -> torch.Tensor:
        """Number of attractors before the first probability below the threshold.

        Args:
            logits: existence logits [B, S].
            max_num_src: cap on the count (default: S).
            min_num_src: floor on the count (1: a sounding mixture holds a source).

        Returns:
            counts [B] (long).
        """
        exists = torch.sigmoid(logits) >= self.threshold  # [B, S]
        counts = exists.long().cumprod(dim=1).sum(dim=1)
        if max_num_src is not None:
            counts = counts.clamp(max=max_num_src)
        return counts.clamp(min=min_num_src)
