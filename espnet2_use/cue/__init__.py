"""Cue encoders (text, label, video, audio example, time span) of USE and their registry."""
import inspect
from typing import Dict, Optional, Type

from espnet2_use.cue.abs_cue_encoder import AbsCueEncoder
from espnet2_use.cue.audio_example_cue_encoder import AudioExampleCueEncoder
from espnet2_use.cue.hf_text_cue_encoder import HFTextCueEncoder
from espnet2_use.cue.label_cue_encoder import LabelCueEncoder
from espnet2_use.cue.span_cue_encoder import SpanCueEncoder
from espnet2_use.cue.spm_text_cue_encoder import SPMTextCueEncoder
from espnet2_use.cue.timm_video_cue_encoder import TimmVideoCueEncoder

cue_encoder_choices: Dict[str, Type[AbsCueEncoder]] = {
    "hf": HFTextCueEncoder,
    "spm": SPMTextCueEncoder,
    "embedding": LabelCueEncoder,
    "timm": TimmVideoCueEncoder,
    "audio": AudioExampleCueEncoder,
    "span": SpanCueEncoder,
}

EXAMPLE_SPEC = {"type": "audio", "conf": {}}


def cue_encoder_specs(cue_encoders: Optional[Dict], cue_example: bool = False) -> Dict[str, Dict]:
    """The config's ``cue_encoders``, with ``cue_example: true`` read as its shorthand.

    ``cue_example: true`` (the older spelling) means ``cue_encoders.example: {type:
    audio}``; an ``example`` entry of ``cue_encoders`` itself is kept as it is.
    """
    specs = dict(cue_encoders or {})
    if cue_example:
        specs.setdefault("example", dict(EXAMPLE_SPEC))
    return specs


def build_cue_encoder(
    kind: str, output_dim: int, conf: dict, sample_rate: Optional[int] = None
) -> AbsCueEncoder:
    """Build a cue encoder as ``cls(output_dim=D, **conf)``.

    Args:
        kind: key of :data:`cue_encoder_choices` ("hf", "spm", "embedding", "timm",
            "audio", "span").
        output_dim: D, the shared cue space.
        conf: the encoder's keyword arguments (the config's ``conf:`` mapping).
        sample_rate: the task's sampling rate, handed to an encoder that takes one
            (unless its ``conf`` sets it).

    Returns:
        The encoder.
    """
    cls = cue_encoder_choices.get(str(kind).lower())
    if cls is None:
        raise ValueError(
            f"unknown cue encoder type {kind!r}; choices: "
            f"{', '.join(sorted(cue_encoder_choices))}"
        )
    conf = dict(conf or {})
    if sample_rate is not None and "sample_rate" in inspect.signature(cls).parameters:
        conf.setdefault("sample_rate", int(sample_rate))
    try:
        return cls(output_dim=output_dim, **conf)
    except TypeError as e:
        # A misspelt conf key surfaces here; name the encoder type in the message.
        raise TypeError(f"cue encoder {kind!r} ({cls.__name__}): {e}") from e


__all__ = [
    "AbsCueEncoder",
    "AudioExampleCueEncoder",
    "HFTextCueEncoder",
    "LabelCueEncoder",
    "SPMTextCueEncoder",
    "SpanCueEncoder",
    "TimmVideoCueEncoder",
    "build_cue_encoder",
    "cue_encoder_choices",
    "cue_encoder_specs",
]
