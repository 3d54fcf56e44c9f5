"""The USE separator: backbone trunk, EDA attractors, query-conditioned mask head."""
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

from espnet2.enh.separator.abs_separator import AbsSeparator
from espnet2_use.attractor.eda_attractor import EDAAttractor
from espnet2_use.attractor.tda_attractor import TDAAttractor
from espnet2_use.layers.abs_use_backbone import AbsUSEBackbone, BackboneOutput
from espnet2_use.layers.use_b_backbone import USEBBackbone
from espnet2_use.layers.use_s_backbone import USESBackbone

backbone_choices = {"use_s": USESBackbone, "use_b": USEBBackbone}
# The attractor type (separator_conf.attractor): the paper's LSTM EDA, or SepTDA's
# transformer decoder whose learned queries read every frame (issue 24).
attractor_choices = {"eda": EDAAttractor, "tda": TDAAttractor}


def _check_sizes(conf: Dict, where: str) -> None:
    for key, value in conf.items():
        if isinstance(value, bool) or not isinstance(value, int):
            continue
        if value < 0 or (value == 0 and (key.endswith("_dim") or key.endswith("_size"))):
            raise ValueError(f"{where}: '{key}' must be positive, got {value}")


class USESeparator(AbsSeparator):
    """USE's separator: one trunk, attractors that count, one mask head for all queries.

    A mixture's encoder features go through the backbone trunk once; the EDA decodes
    attractors a_1..a_{S+1} from the trunk's frame embeddings; every query vector
    (an attractor for separation, a cue vector for extraction) modulates the trunk's
    latent by FiLM and the backbone's tail turns it into one masked feature map. SS
    and TSE differ only in where the queries come from.

    In ESPnet's ``enh`` task (``separator: use``) the count is fixed to ``num_spk``
    (or ``additional["num_spk"]``) and ``forward`` returns that many outputs; the
    ``use`` task calls ``encode`` / ``attractors`` / ``mask`` itself to handle an
    unknown count and cue queries.

    Args:
        input_dim: encoder output size (channels for ``conv``, bins for ``stft``).
        backbone: ``use_s`` (time domain, SepFormer-like) or ``use_b`` (band-split).
        backbone_conf: keyword arguments of the backbone class.
        attractor_conf: keyword arguments of the attractor class.
        num_spk: outputs of ``forward`` (fixed-count use in the ``enh`` task).
        attractor: ``eda`` (``EDAAttractor``, the paper's) or ``tda``
            (``TDAAttractor``: learned queries, optionally a count head).

    References:
        USE: "A Unified Model for Universal Sound Separation and Extraction",
        AAAI 2026, arXiv 2512.21215.
    """

    def __init__(
        self,
        input_dim: int,
        backbone: str = "use_s",
        backbone_conf: Optional[Dict] = None,
        attractor_conf: Optional[Dict] = None,
        num_spk: int = 2,
        attractor: str = "eda",
    ):
        super().__init__()
        if backbone not in backbone_choices:
            raise ValueError(
                f"separator_conf.backbone must be one of {sorted(backbone_choices)}, "
                f"got {backbone!r}"
            )
        if num_spk < 1:
            raise ValueError(f"separator_conf.num_spk must be >= 1, got {num_spk}")
        backbone_conf = dict(backbone_conf or {})
        _check_sizes(backbone_conf, "separator_conf.backbone_conf")
        self.backbone: AbsUSEBackbone = backbone_choices[backbone](
            input_dim, **backbone_conf
        )
        if attractor not in attractor_choices:
            raise ValueError(
                f"separator_conf.attractor must be one of {sorted(attractor_choices)}, "
                f"got {attractor!r}"
            )
        try:
            self.attractor = attractor_choices[attractor](self.backbone.emb_dim, **(attractor_conf or {}))
        except TypeError as e:  # an argument the attractor type does not take
            raise ValueError(f"separator_conf.attractor_conf (attractor: {attractor}): {e}") from None
        # FiLM: each query scales and shifts the trunk latent's channels.
        self.film = torch.nn.Linear(self.backbone.emb_dim, 2 * self.backbone.latent_dim)
        self._num_spk = num_spk

    @property
    def num_spk(self) -> int:
        return self._num_spk

    @property
    def emb_dim(self) -> int:
        return self.backbone.emb_dim

    def encode(self, feats: torch.Tensor, flens: torch.Tensor) -> BackboneOutput:
        """Encoder features [B, T, N] -> trunk latent and frame embeddings [B, L, D]."""
        return self.backbone.encode(feats, flens)

    def attractors(
        self, trunk: BackboneOutput, num_attractors: int
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Attractors [B, num_attractors, D] and existence logits [B, num_attractors]."""
        return self.attractor(trunk.emb, trunk.emb_lens, num_attractors)

    def count(
        self, logits: torch.Tensor, max_num_src: Optional[int] = None, min_num_src: int = 0
    ) -> torch.Tensor:
        """Source counts [B] from existence logits [B, A] (the EDA's count rule)."""
        return self.attractor.count(logits, max_num_src=max_num_src, min_num_src=min_num_src)

    @property
    def has_count_head(self) -> bool:
        """Whether the attractor also classifies the count (``tda`` with ``count_head``)."""
        return bool(getattr(self.attractor, "has_count_head", False))

    def count_logits(self, trunk: BackboneOutput) -> torch.Tensor:
        """The count head's logits [B, C] of counts 0 .. C - 1."""
        return self.attractor.count_logits(trunk.emb, trunk.emb_lens)

    def estimate_count(
        self,
        trunk: BackboneOutput,
        logits: torch.Tensor,
        max_num_src: Optional[int] = None,
        min_num_src: int = 0,
    ) -> torch.Tensor:
        """Source counts [B] by the attractor's ``count_rule``: the existence threshold
        (``count``; every EDA) or the count head's most likely count."""
        if getattr(self.attractor, "count_rule", "threshold") == "head":
            return self.attractor.count_from_head(self.count_logits(trunk), max_num_src, min_num_src)
        return self.count(logits, max_num_src=max_num_src, min_num_src=min_num_src)

    def mask(
        self,
        trunk: BackboneOutput,
        feats: torch.Tensor,
        queries: torch.Tensor,
        index: torch.Tensor,
        frames: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """The shared mask head: one masked feature map per query.

        Args:
            trunk: ``encode``'s output for the batch.
            feats: encoder features of the batch [B, T, N].
            queries: query vectors [M, D] (attractors or cue vectors).
            index: batch row of each query [M].
            frames: a frame condition per query [M, L, D] (a time-aligned cue's track,
                L = trunk.emb.size(1)), added to the query frame by frame, so that the
                FiLM varies over time; None: one FiLM for all frames.

        Returns:
            masked encoder features [M, T, N].
        """
        assert queries.dim() == 2 and queries.size(1) == self.emb_dim, queries.shape
        latent = trunk.latent.index_select(0, index)  # [M, C, ...]
        if frames is None:
            gamma, beta = self.film(queries).chunk(2, dim=-1)  # [M, C] each
            shape = gamma.shape + (1,) * (latent.dim() - 2)
            gamma, beta = gamma.view(shape), beta.view(shape)
        else:
            assert frames.shape == (queries.size(0), trunk.emb.size(1), self.emb_dim), frames.shape
            film = self.film(queries[:, None, :] + frames).transpose(1, 2)  # [M, 2C, L]
            gamma, beta = (self.backbone.expand_frames(x, latent) for x in film.chunk(2, dim=1))
        latent = latent * (1.0 + gamma) + beta
        return self.backbone.decode(latent, feats.index_select(0, index), trunk.aux, index)

    def forward(
        self,
        input: torch.Tensor,
        ilens: torch.Tensor,
        additional: Optional[Dict] = None,
    ) -> Tuple[List[torch.Tensor], torch.Tensor, OrderedDict]:
        """Separation as ESPnet's ``enh`` task calls separators.

        With ``additional["num_spk"]`` (ESPnet passes the batch's reference count
        when ``flexible_numspk: true``) or in training, the count is given: that
        many outputs. In evaluation without it, a separator whose ``count_sources``
        is set (ESPnet's ``EnhancementTask`` sets it for ``flexible_numspk: true``
        models, see ``espnet2_use.espnet_hooks``) counts with the EDA: it still
        returns ``num_spk`` outputs, as ESPnet's inference expects, but those past
        each utterance's count are zeros and are not computed.

        Args:
            input: encoder features [B, T, N].
            ilens: feature lengths [B].
            additional: ``num_spk`` overrides the configured count.

        Returns:
            masked features (list of ``num`` tensors [B, T, N]), ilens, and
            others: ``existence_logits`` and ``existence_prob`` [B, num + 1],
            ``attractors`` [B, num, D], and when counting ``num_sources`` [B].
        """
        given = (additional or {}).get("num_spk")
        num = given or self.num_spk
        counting = (
            given is None and not self.training and getattr(self, "count_sources", False)
        )
        trunk = self.encode(input, ilens)
        attractors, logits = self.attractors(trunk, num + 1)
        B = input.size(0)
        if counting:
            counts = self.estimate_count(trunk, logits, max_num_src=num, min_num_src=1)
        else:
            counts = torch.full((B,), num, dtype=torch.long, device=input.device)
        keep = torch.arange(num, device=input.device)[None, :] < counts[:, None]
        index, slot = keep.nonzero(as_tuple=True)  # counted (utterance, source) pairs
        masked = self.mask(trunk, input, attractors[index, slot], index)  # [M, T, N]
        if counting:
            out = masked.new_zeros(B, num, *masked.shape[1:])
            out[index, slot] = masked
            masked = out
        else:
            masked = masked.view(B, num, *masked.shape[1:])  # [B, num, T, N]
        others = OrderedDict(
            existence_logits=logits,
            existence_prob=torch.sigmoid(logits),
            attractors=attractors[:, :num],
        )
        if counting:
            others["num_sources"] = counts
        return list(masked.unbind(dim=1)), ilens, others
