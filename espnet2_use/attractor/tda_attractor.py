"""Transformer-decoder attractors (SepTDA): learned queries that look at every frame."""
from typing import Optional, Tuple

import torch

from espnet2.diar.attractor.abs_attractor import AbsAttractor
from espnet2_use.utils.attention import padding_attn_mask

COUNT_RULES = ("threshold", "head")


class TDAAttractor(AbsAttractor):
    """Attractors decoded by learned queries that cross-attend to the frame embeddings.

    Where the EDA (``EDAAttractor``) summarises the frames into one LSTM state and
    decodes every attractor from it, here ``num_queries`` learned query vectors pass
    through transformer decoder layers: self-attention among the queries (so they
    share the sources out among themselves), cross-attention to all valid frame
    embeddings (so each attractor reads the frames directly), a feed-forward block. The
    existence logit of each attractor is a linear read-out of its decoded query. All
    queries are decoded at once and the first ``num_attractors`` returned, so the
    number asked for does not change them.

    With ``count_head``, the number of sources is also classified: one more learned
    query (the count query) is decoded over the frames by the same layers and a linear
    layer gives the logits of counts 0 .. num_queries - 1 (``count_logits``); it is
    trained with cross-entropy beside the existence BCE (the model's ``count_weight``).
    ``count_rule`` says which one counts at inference: ``threshold`` (the attractors
    before the first existence probability below ``threshold``, as the EDA) or
    ``head`` (the count head's most likely count). Both are logged in training.

    Args:
        input_dim: size D of the frame embeddings and the attractors.
        num_queries: learned queries, the most attractors decoded (>= max count + 1).
        num_layers: transformer decoder layers.
        num_heads: attention heads (``input_dim`` divisible by it).
        ff_dim: feed-forward size (default 2 * D).
        dropout: dropout in the layers.
        threshold: an attractor exists while its probability is >= this.
        count_head: add the count query and its classifier.
        count_rule: ``threshold`` or ``head`` (``head`` needs ``count_head``).

    References:
        S. Lee et al., "Boosting unknown-number speaker separation with transformer
        decoder-based attractor", ICASSP 2024 (SepTDA); N. Carion et al., "End-to-end
        object detection with transformers", ECCV 2020 (learned object queries);
        USE, arXiv 2512.21215.
    """

    def __init__(
        self,
        input_dim: int,
        num_queries: int = 4,
        num_layers: int = 2,
        num_heads: int = 4,
        ff_dim: Optional[int] = None,
        dropout: float = 0.0,
        threshold: float = 0.5,
        count_head: bool = False,
        count_rule: str = "threshold",
    ):
        super().__init__()
        where = "separator_conf.attractor_conf"
        if input_dim < 1:
            raise ValueError(f"{where}: input_dim must be positive, got {input_dim}")
        if num_queries < 2:
            raise ValueError(f"{where}.num_queries must be >= 2 (one source and the stop), got {num_queries}")
        if num_layers < 1:
            raise ValueError(f"{where}.num_layers must be >= 1, got {num_layers}")
        if num_heads < 1 or input_dim % num_heads:
            raise ValueError(f"{where}: input_dim={input_dim} must be divisible by num_heads={num_heads}")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"{where}.threshold must lie in (0, 1), got {threshold}")
        if count_rule not in COUNT_RULES:
            raise ValueError(f"{where}.count_rule must be one of {COUNT_RULES}, got {count_rule!r}")
        if count_rule == "head" and not count_head:
            raise ValueError(f"{where}.count_rule 'head' needs count_head: true")
        self.input_dim = input_dim
        self.num_queries = num_queries
        self.num_heads = num_heads
        self.threshold = threshold
        self.count_rule = count_rule
        # Distinct starting points: identical queries would decode identical attractors.
        self.queries = torch.nn.Parameter(torch.randn(num_queries, input_dim) / input_dim ** 0.5)
        layer = torch.nn.TransformerDecoderLayer(
            d_model=input_dim, nhead=num_heads, dim_feedforward=ff_dim or 2 * input_dim,
            dropout=dropout, batch_first=True, norm_first=True,
        )
        self.decoder = torch.nn.TransformerDecoder(layer, num_layers=num_layers)
        self.norm = torch.nn.LayerNorm(input_dim)
        self.exist = torch.nn.Linear(input_dim, 1)
        self.count_query = None
        if count_head:
            self.count_query = torch.nn.Parameter(torch.randn(1, input_dim) / input_dim ** 0.5)
            self.count_out = torch.nn.Linear(input_dim, num_queries)  # counts 0 .. Q - 1

    @property
    def has_count_head(self) -> bool:
        return self.count_query is not None

    def _decode(self, queries: torch.Tensor, emb: torch.Tensor, emb_lens: torch.Tensor) -> torch.Tensor:
        """Queries [Q, D] decoded over each utterance's valid frames -> [B, Q, D]."""
        assert emb.dim() == 3 and emb.size(-1) == self.input_dim, emb.shape
        B, L, _ = emb.shape
        pad = torch.arange(L, device=emb.device)[None, :] >= emb_lens[:, None]  # [B, L]
        memory_mask = padding_attn_mask(pad, self.num_heads, queries.size(0), emb.dtype)  # [B*H, Q, L]
        tgt = queries[None].expand(B, -1, -1)  # [B, Q, D]
        return self.norm(self.decoder(tgt, emb, memory_mask=memory_mask))

    def forward(
        self, emb: torch.Tensor, emb_lens: torch.Tensor, num_attractors: int
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Decode attractors.

        Args:
            emb: frame embeddings [B, L, D].
            emb_lens: valid frames [B] (>= 1).
            num_attractors: how many to return (<= ``num_queries``).

        Returns:
            attractors [B, num_attractors, D] and existence logits [B, num_attractors].
        """
        if not 1 <= num_attractors <= self.num_queries:
            raise ValueError(
                f"{num_attractors} attractors asked of a TDA attractor with num_queries="
                f"{self.num_queries}: raise separator_conf.attractor_conf.num_queries to at "
                "least the largest count + 1"
            )
        decoded = self._decode(self.queries, emb, emb_lens)[:, :num_attractors]  # [B, A, D]
        return decoded, self.exist(decoded).squeeze(-1)

    def count_logits(self, emb: torch.Tensor, emb_lens: torch.Tensor) -> torch.Tensor:
        """Logits [B, num_queries] of counts 0 .. num_queries - 1 (needs ``count_head``)."""
        if self.count_query is None:
            raise ValueError("this TDA attractor has no count head (attractor_conf.count_head: false)")
        return self.count_out(self._decode(self.count_query, emb, emb_lens)[:, 0])

    def count(
        self, logits: torch.Tensor, max_num_src: Optional[int] = None, min_num_src: int = 0
    ) -> torch.Tensor:
        """Number of attractors before the first probability below the threshold.

        Args:
            logits: existence logits [B, S].
            max_num_src: cap on the count (default: S).
            min_num_src: floor on the count.

        Returns:
            counts [B] (long).
        """
        exists = torch.sigmoid(logits) >= self.threshold  # [B, S]
        counts = exists.long().cumprod(dim=1).sum(dim=1)
        if max_num_src is not None:
            counts = counts.clamp(max=max_num_src)
        return counts.clamp(min=min_num_src)

    @staticmethod
    def count_from_head(
        count_logits: torch.Tensor, max_num_src: Optional[int] = None, min_num_src: int = 0
    ) -> torch.Tensor:
        """The most likely count [B] among ``min_num_src`` .. ``max_num_src``."""
        logits = count_logits.clone()
        C = logits.size(1)
        allowed = torch.arange(C, device=logits.device)
        hidden = (allowed < min_num_src) | (allowed > (C - 1 if max_num_src is None else max_num_src))
        return logits.masked_fill(hidden[None, :], float("-inf")).argmax(dim=1)
