"""Cue encoders (text, label, video) of USE and their registry."""
from typing import Dict, Type

from espnet2_use.cue.abs_cue_encoder import AbsCueEncoder
from espnet2_use.cue.hf_text_cue_encoder import HFTextCueEncoder
from espnet2_use.cue.label_cue_encoder import LabelCueEncoder
from espnet2_use.cue.spm_text_cue_encoder import SPMTextCueEncoder
from espnet2_use.cue.timm_video_cue_encoder import TimmVideoCueEncoder

cue_encoder_choices: Dict[str, Type[AbsCueEncoder]] = {
    "hf": HFTextCueEncoder,
    "spm": SPMTextCueEncoder,
    "embedding": LabelCueEncoder,
    "timm": TimmVideoCueEncoder,
}


def build_cue_encoder(kind: str, output_dim: int, conf: dict) -> AbsCueEncoder:
    """Build a cue encoder as ``cls(output_dim=D, **conf)``.

    Args:
        kind: key of :data:`cue_encoder_choices` ("hf", "spm", "embedding", "timm").
        output_dim: D, the shared cue space.
        conf: the encoder's keyword arguments (the config's ``conf:`` mapping).

    Returns:
        The encoder.
    """
    cls = cue_encoder_choices.get(str(kind).lower())
    if cls is None:
        raise ValueError(
            f"unknown cue encoder type {kind!r}; choices: "
            f"{', '.join(sorted(cue_encoder_choices))}"
        )
    try:
        return cls(output_dim=output_dim, **(conf or {}))
    except TypeError as e:
        # A misspelt conf key surfaces here; name the encoder type in the message.
        raise TypeError(f"cue encoder {kind!r} ({cls.__name__}): {e}") from e


__all__ = [
    "AbsCueEncoder",
    "HFTextCueEncoder",
    "LabelCueEncoder",
    "SPMTextCueEncoder",
    "TimmVideoCueEncoder",
    "build_cue_encoder",
    "cue_encoder_choices",
]
