"""Fusion of any subset of cue modalities into one cue vector in the shared space."""
from typing import Dict, Optional, Sequence, Tuple

import torch

from espnet2_use.utils.attention import padding_attn_mask


class CueFusion(torch.nn.Module):
    """Attention from the mixture's frames to the tokens of the present cues.

    The tokens of every modality (text, label, video, audio example, ...) are
    concatenated along time, each marked by a learned modality-type embedding;
    key-padding masks hide absent modalities and padding, so one, several or all
    modalities work alike. Multi-head attention with the separator's frame
    embeddings as query asks "which of the described sounds is in this mixture";
    its output, pooled over the valid frames, together with the pooled cue tokens,
    gives the cue vector. A ``tanh`` keeps it in the range of the EDA's LSTM
    attractors, so the two share one space and drive the same mask head.

    A time-aligned modality (the span: one token per mixture frame, a track) is
    added to the mixture's frames, both to the query and as its own keys (the
    mixture's frames marked by the track), so the attention reads what sounds where
    the track says; the sum of the present tracks is returned too, for the mask head.

    In training, modality dropout removes each present modality with probability
    ``modality_dropout`` (never all of them), so every combination is learned.

    Args:
        dim: size D of the shared space.
        modalities: names of the modalities this fusion knows, in a fixed order.
        num_heads: attention heads.
        dropout: attention dropout.
        modality_dropout: probability of hiding a present modality in training.

    References:
        USE, arXiv 2512.21215.
    """

    def __init__(
        self,
        dim: int,
        modalities: Sequence[str],
        num_heads: int = 4,
        dropout: float = 0.0,
        modality_dropout: float = 0.0,
    ):
        super().__init__()
        if len(modalities) == 0:
            raise ValueError("CueFusion needs at least one modality")
        if not 0.0 <= modality_dropout < 1.0:
            raise ValueError(f"modality_dropout must lie in [0, 1), got {modality_dropout}")
        self.modalities = list(modalities)
        self.type_emb = torch.nn.Embedding(len(self.modalities), dim)
        self.query_norm = torch.nn.LayerNorm(dim)
        self.token_norm = torch.nn.LayerNorm(dim)
        self.attn = torch.nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.out = torch.nn.Linear(2 * dim, dim)
        self.modality_dropout = modality_dropout

    def _drop_modalities(self, present: torch.Tensor) -> torch.Tensor:
        """Hide present modalities at random, keeping at least one per row. [B, M] bool."""
        drop = (torch.rand(present.shape, device=present.device) < self.modality_dropout) & present
        kept = present & ~drop
        lost_all = present.any(1) & ~kept.any(1)
        if bool(lost_all.any()):
            # Give such rows back one of their modalities, chosen at random.
            keys = torch.rand(present.shape, device=present.device).masked_fill(~present, -1.0)
            rescue = torch.nn.functional.one_hot(keys.argmax(1), present.size(1)).bool()
            kept = kept | (rescue & lost_all[:, None])
        return kept

    def forward(
        self,
        query: torch.Tensor,
        query_lens: torch.Tensor,
        tokens: Dict[str, Tuple[torch.Tensor, torch.Tensor]],
        aligned: Sequence[str] = (),
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Fuse the cues.

        Args:
            query: the mixture's frame embeddings [B, L, D].
            query_lens: valid frames [B].
            tokens: modality -> (tokens [B, L_m, D], token lengths [B]); a length of 0
                marks the modality absent for that row.
            aligned: the modalities whose tokens are tracks over the query's frames
                (L_m = L).

        Returns:
            cue vectors [B, D], and the frame condition [B, L, D] (the sum of the present
            tracks) or None when no aligned modality is given.
        """
        unknown = set(tokens) - set(self.modalities)
        if unknown:
            raise ValueError(
                f"unknown cue modalities {sorted(unknown)}; this model knows {self.modalities}"
            )
        names = [m for m in self.modalities if m in tokens]
        if not names:
            raise ValueError(f"no cue given: give at least one of {self.modalities}")
        B = query.size(0)
        lens = torch.stack([tokens[m][1].to(query.device) for m in names], dim=1)  # [B, M]
        present = lens > 0
        if not bool(present.any(1).all()):
            rows = (~present.any(1)).nonzero().flatten().tolist()
            raise ValueError(
                f"batch rows {rows} have no cue: each needs at least one of {names} "
                "with a non-empty value"
            )
        if self.training and self.modality_dropout > 0:
            lens = lens * self._drop_modalities(present)

        keys, pads = [], []
        frames = None
        for m_idx, name in enumerate(names):
            tok = tokens[name][0]  # [B, L_m, D]
            if name in aligned:
                assert tok.shape == query.shape, (name, tok.shape, query.shape)
                shown = (lens[:, m_idx] > 0).to(tok.dtype)[:, None, None]  # absent or dropped: 0
                track = tok * shown  # [B, L, D]
                frames = track if frames is None else frames + track
                tok = query + track  # keys: the mixture's frames, marked by the track
            type_id = self.modalities.index(name)
            keys.append(tok + self.type_emb.weight[type_id])
            pos = torch.arange(tok.size(1), device=tok.device)[None, :]
            pads.append(pos >= lens[:, m_idx : m_idx + 1])  # [B, L_m] True = hidden
        keys = self.token_norm(torch.cat(keys, dim=1))  # [B, sum L_m, D]
        pad = torch.cat(pads, dim=1)  # [B, sum L_m]

        # The padding as the additive mask MultiheadAttention would build from it
        # (padding_attn_mask: the same numbers, without importing sympy).
        mask = padding_attn_mask(pad, self.attn.num_heads, query.size(1), keys.dtype)  # [B*H, L, S]
        marked = query if frames is None else query + frames  # [B, L, D]
        attended, _ = self.attn(self.query_norm(marked), keys, keys, attn_mask=mask)
        frame_valid = (
            torch.arange(query.size(1), device=query.device)[None, :] < query_lens[:, None]
        ).unsqueeze(-1)  # [B, L, 1]
        pooled_attn = (attended * frame_valid).sum(1) / frame_valid.sum(1).clamp(min=1)
        token_valid = (~pad).unsqueeze(-1)  # [B, sum L_m, 1]
        pooled_tokens = (keys * token_valid).sum(1) / token_valid.sum(1).clamp(min=1)
        assert pooled_attn.shape == (B, keys.size(-1)), pooled_attn.shape
        vector = torch.tanh(self.out(torch.cat([pooled_attn, pooled_tokens], dim=-1)))  # [B, D]
        return vector, frames
