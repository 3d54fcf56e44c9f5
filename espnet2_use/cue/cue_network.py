"""USE's multimodal cue network: per-modality encoders and their fusion."""
from typing import Dict, Optional, Tuple

import torch

from espnet2_use.cue import build_cue_encoder
from espnet2_use.cue.abs_cue_encoder import AbsCueEncoder
from espnet2_use.cue.cue_fusion import CueFusion
from espnet2_use.data.layout import EXAMPLE, cue_file


class USECueNetwork(torch.nn.Module):
    """Turns the cues of a source into tokens, and tokens into one cue vector.

    Each modality named in ``encoders`` gets an encoder from
    ``espnet2_use.cue.cue_encoder_choices``; with ``example: true`` an audio example
    of the wanted sound is a modality too: the model encodes it with its own encoder,
    trunk and EDA into an attractor, which already lives in the shared space, and
    hands it over as a one-token modality.

    Data names per source k (what the ``use`` task loads) are the layout table's
    (``espnet2_use.data.layout``): an encoder whose ``extract`` runs a frozen network
    reads its modality's cached row (``text_emb_spk1``, ``video_emb_spk1``); the others
    read the raw row (``text_spk1`` for spm ids, ``label_spk1``); the example reads
    ``enroll_ref{k}``.

    Args:
        dim: size D of the shared space (the separator's ``emb_dim``).
        encoders: modality -> ``{"type": <choice>, "conf": {...}}``.
        example: whether an audio example is a cue modality.
        fusion_conf: keyword arguments of ``CueFusion``.
    """

    def __init__(
        self,
        dim: int,
        encoders: Optional[Dict[str, Dict]] = None,
        example: bool = False,
        fusion_conf: Optional[Dict] = None,
    ):
        super().__init__()
        encoders = encoders or {}
        if EXAMPLE in encoders:
            raise ValueError(f"'{EXAMPLE}' is set with example: true, not as an encoder")
        built = {}
        for modality, spec in encoders.items():
            if not isinstance(spec, dict) or "type" not in spec:
                raise ValueError(
                    f"cue_encoders.{modality} must be {{type: ..., conf: {{...}}}}, got {spec!r}"
                )
            encoder = build_cue_encoder(spec["type"], dim, dict(spec.get("conf") or {}))
            if encoder.modality != modality:
                raise ValueError(
                    f"cue_encoders.{modality}: type '{spec['type']}' encodes "
                    f"'{encoder.modality}' cues, not '{modality}'"
                )
            built[modality] = encoder
        self.encoders = torch.nn.ModuleDict(built)
        self.example = example
        modalities = list(built) + ([EXAMPLE] if example else [])
        if not modalities:
            raise ValueError("the cue network needs at least one cue encoder or example: true")
        self.fusion = CueFusion(dim, modalities, **(fusion_conf or {}))
        self.dim = dim

    @property
    def modalities(self):
        return list(self.fusion.modalities)

    def data_name(self, modality: str, k: int) -> str:
        """Name of the batch entry that holds source k's cue of this modality."""
        if modality == EXAMPLE:
            return cue_file(EXAMPLE, cached=False).name(k)
        encoder: AbsCueEncoder = self.encoders[modality]
        return cue_file(modality, encoder.cached).name(k)

    def encode_tokens(
        self, inputs: Dict[str, Tuple[torch.Tensor, torch.Tensor]]
    ) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
        """modality -> (model inputs, lengths) -> modality -> (tokens [B, L, D], lengths).

        The example modality is passed through: its input already is an attractor.
        """
        tokens = {}
        for modality, (x, x_lens) in inputs.items():
            if modality == EXAMPLE:
                tokens[modality] = (x, x_lens)
            elif modality not in self.encoders:
                raise ValueError(
                    f"no encoder for cue modality '{modality}'; this model has "
                    f"{self.modalities}"
                )
            else:
                tokens[modality] = self.encoders[modality](x, x_lens)
        return tokens

    def forward(
        self,
        query: torch.Tensor,
        query_lens: torch.Tensor,
        inputs: Dict[str, Tuple[torch.Tensor, torch.Tensor]],
    ) -> torch.Tensor:
        """Cue vectors [B, D] from the mixture's frame embeddings and the cue inputs."""
        return self.fusion(query, query_lens, self.encode_tokens(inputs))
