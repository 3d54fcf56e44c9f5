"""USE as an extractor of ESPnet's ``enh_tse`` task (the cue is an audio example)."""
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch

from espnet2.enh.extractor.abs_extractor import AbsExtractor
from espnet2_use.cue import EXAMPLE_SPEC
from espnet2_use.cue.cue_network import USECueNetwork
from espnet2_use.separator.use_separator import USESeparator


class USEExtractor(AbsExtractor):
    """Target sound extraction from an enrollment (audio example) with USE's parts.

    What ESPnet's ``tse`` task can carry to an extractor is one enrollment per
    target (``enroll_ref{k}``: audio, or a fixed vector loaded from ``.npy`` with
    ``load_spk_embedding``) and ``additional`` (only ``num_spk``); other data keys
    never reach the extractor. So here the cue is an audio example; label, text,
    image and video cues need the ``use`` task (``espnet2_use.tasks.use``).

    ESPnet's ``enh_tse`` task passes the encoded mixture and the encoded enrollment.
    The enrollment is the cue of USE's audio-example cue encoder, bound here to the
    same trunk and EDA as a mixture goes through: its first attractor, which lives in
    the shared space, is the example's cue token; the cue fusion attends from the
    mixture's frames to it, and the shared mask head extracts the target. So a stock TSE recipe can name ``extractor: use``, and a model trained
    this way has the same separator, attractor and fusion parameters as USEModel.

    Args:
        input_dim: encoder output size.
        backbone: ``use_s`` or ``use_b``.
        backbone_conf: keyword arguments of the backbone.
        attractor_conf: keyword arguments of ``EDAAttractor``.
        fusion_conf: keyword arguments of ``CueFusion``.

    References:
        USE, arXiv 2512.21215.
    """

    def __init__(
        self,
        input_dim: int,
        backbone: str = "use_s",
        backbone_conf: Optional[Dict] = None,
        attractor_conf: Optional[Dict] = None,
        fusion_conf: Optional[Dict] = None,
    ):
        super().__init__()
        self.separator = USESeparator(
            input_dim, backbone, backbone_conf, attractor_conf, num_spk=1
        )
        self.cue_network = USECueNetwork(
            self.separator.emb_dim, encoders={"example": EXAMPLE_SPEC}, fusion_conf=fusion_conf
        )
        self.cue_network.bind(self.embed_example)

    def embed_example(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Encoded enrollments [R, T_e, N] -> their first attractor [R, D]."""
        attractors, _ = self.separator.attractors(self.separator.encode(feats, lengths), 1)
        return attractors[:, 0]

    def forward(
        self,
        input: torch.Tensor,
        ilens: torch.Tensor,
        input_aux: torch.Tensor,
        ilens_aux: torch.Tensor,
        suffix_tag: str = "",
        additional: Optional[Dict] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, OrderedDict]:
        """Extract the target.

        Args:
            input: encoded mixture [B, T, N].
            ilens: [B].
            input_aux: encoded enrollment [B, T_e, N].
            ilens_aux: [B].
            suffix_tag: suffix of the keys in ``others``.
            additional: unused.

        Returns:
            masked features [B, T, N], ilens, and ``others`` with the cue vector.
        """
        if input_aux.dim() != 3 or input_aux.size(-1) != input.size(-1):
            raise ValueError(
                "extractor: use takes the enrollment as encoded audio [B, T_e, "
                f"{input.size(-1)}], got {tuple(input_aux.shape)}: keep ESPnet's "
                "model_conf.share_encoder: true (the default) and give enroll_ref* as "
                "audio, not as embeddings (preprocessor_conf.load_spk_embedding)"
            )
        trunk = self.separator.encode(input, ilens)
        cue, _ = self.cue_network(trunk.emb, trunk.emb_lens, {"example": (input_aux, ilens_aux)})
        index = torch.arange(input.size(0), device=input.device)
        masked = self.separator.mask(trunk, input, cue, index)
        return masked, ilens, OrderedDict({f"cue{suffix_tag}": cue.detach()})
