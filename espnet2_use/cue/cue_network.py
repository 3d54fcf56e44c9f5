"""USE's multimodal cue network: per-modality encoders and their fusion."""
from typing import Dict, Optional, Tuple

import torch

from espnet2_use.cue import build_cue_encoder
from espnet2_use.cue.abs_cue_encoder import AbsCueEncoder, FrameGrid
from espnet2_use.cue.audio_example_cue_encoder import AudioEmbedder
from espnet2_use.cue.cue_fusion import CueFusion
from espnet2_use.data.layout import cue_file


class USECueNetwork(torch.nn.Module):
    """Turns the cues of a source into tokens, and tokens into one cue vector.

    Each modality named in ``encoders`` gets an encoder from
    ``espnet2_use.cue.cue_encoder_choices``. An audio example of the wanted sound
    (``example: {type: audio}``) is one of them: it encodes with the host model's own
    encoder, trunk and EDA, which the host hands over with :meth:`bind`.

    Data names per source k (what the ``use`` task loads) are the layout table's
    (``espnet2_use.data.layout``): an encoder whose ``extract`` runs a frozen network
    reads its modality's cached row (``text_emb_spk1``, ``video_emb_spk1``); the others
    read the raw row (``text_spk1`` for spm ids, ``label_spk1``, ``enroll_ref1``,
    ``span_spk1``). An ``aligned`` encoder (the span) is handed the mixture's frame grid
    and returns a track over its frames; the network returns the tracks' sum beside the
    cue vector, and the mask head conditions on both (``USESeparator.mask``).

    Args:
        dim: size D of the shared space (the separator's ``emb_dim``).
        encoders: modality -> ``{"type": <choice>, "conf": {...}}``.
        fusion_conf: keyword arguments of ``CueFusion``.
        sample_rate: the task's sampling rate, for encoders that take one.
    """

    def __init__(
        self,
        dim: int,
        encoders: Optional[Dict[str, Dict]] = None,
        fusion_conf: Optional[Dict] = None,
        sample_rate: Optional[int] = None,
    ):
        super().__init__()
        encoders = encoders or {}
        built = {}
        for modality, spec in encoders.items():
            if not isinstance(spec, dict) or "type" not in spec:
                raise ValueError(
                    f"cue_encoders.{modality} must be {{type: ..., conf: {{...}}}}, got {spec!r}"
                )
            encoder = build_cue_encoder(spec["type"], dim, dict(spec.get("conf") or {}), sample_rate)
            if encoder.modality != modality:
                raise ValueError(
                    f"cue_encoders.{modality}: type '{spec['type']}' encodes "
                    f"'{encoder.modality}' cues, not '{modality}'"
                )
            built[modality] = encoder
        if not built:
            raise ValueError("the cue network needs at least one cue encoder (cue_encoders)")
        self.encoders = torch.nn.ModuleDict(built)
        self.fusion = CueFusion(dim, list(built), **(fusion_conf or {}))
        self.dim = dim

    @property
    def modalities(self):
        return list(self.fusion.modalities)

    def bind(self, embed: AudioEmbedder) -> None:
        """Hand the host's audio embedding (waveforms -> first attractor) to the encoders."""
        for encoder in self.encoders.values():
            encoder.bind(embed)

    def data_name(self, modality: str, k: int) -> str:
        """Name of the batch entry that holds source k's cue of this modality."""
        encoder: AbsCueEncoder = self.encoders[modality]
        return cue_file(modality, encoder.cached).name(k)

    @property
    def aligned(self):
        """The modalities whose encoders return tracks over the mixture's frames."""
        return [m for m, encoder in self.encoders.items() if encoder.aligned]

    def encode_tokens(
        self, inputs: Dict[str, Tuple[torch.Tensor, torch.Tensor]], grid: Optional[FrameGrid] = None
    ) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
        """modality -> (model inputs, lengths) -> modality -> (tokens [B, L, D], lengths)."""
        tokens = {}
        for modality, (x, x_lens) in inputs.items():
            if modality not in self.encoders:
                raise ValueError(
                    f"no encoder for cue modality '{modality}'; this model has "
                    f"{self.modalities}"
                )
            encoder = self.encoders[modality]
            if encoder.aligned:
                if grid is None:
                    raise ValueError(
                        f"the {modality} cue is a time track: the cue network needs the "
                        "mixtures' lengths in samples (num_samples)"
                    )
                tokens[modality] = encoder(x, x_lens, grid)
            else:
                tokens[modality] = encoder(x, x_lens)
        return tokens

    def forward(
        self,
        query: torch.Tensor,
        query_lens: torch.Tensor,
        inputs: Dict[str, Tuple[torch.Tensor, torch.Tensor]],
        num_samples: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Cue vectors [B, D] and the frame condition [B, L, D] (None without an aligned
        cue) from the mixture's frame embeddings [B, L, D] and the cue inputs;
        ``num_samples`` [B]: the mixtures' valid samples (needed by aligned cues)."""
        grid = None
        if num_samples is not None:
            grid = FrameGrid(num_samples, query_lens, query.size(1))
        return self.fusion(query, query_lens, self.encode_tokens(inputs, grid), self.aligned)
