"""Preprocessing of USE training and inference samples (one utterance at a time)."""
import re
from typing import Dict, Optional, Union

import numpy as np

from espnet2.train.preprocessor import AbsPreprocessor
from espnet2_use.cue import cue_encoder_choices

_CUE_NAME = re.compile(r"^(?P<modality>[a-z]+)_spk(?P<k>\d+)$")
# extract() of a non-cached encoder needs no trained weights; the projection size
# of these throw-away instances is irrelevant.
_EXTRACTOR_DIM = 64


class USEPreprocessor(AbsPreprocessor):
    """Turns raw cue text into model inputs and checks the audio of one utterance.

    Cues whose encoder is cheap (``cached = False``: sentencepiece ids of a caption,
    the id of a label) are converted here, in the data loader, with the encoder's own
    ``extract``; cached features (``*_emb_spk{k}``) and audio pass through.

    Args:
        train: training mode (ESPnet's convention; nothing random happens here).
        cue_encoders: the task's ``cue_encoders`` section.
        sample_rate: the task's sampling rate (for messages).
    """

    def __init__(
        self,
        train: bool,
        cue_encoders: Optional[Dict[str, Dict]] = None,
        sample_rate: Optional[int] = None,
    ):
        super().__init__(train)
        self.extractors = {}
        for modality, spec in (cue_encoders or {}).items():
            cls = cue_encoder_choices.get(spec.get("type"))
            if cls is None or cls.cached:
                continue
            self.extractors[modality] = cls(output_dim=_EXTRACTOR_DIM, **dict(spec.get("conf") or {}))
        self.sample_rate = sample_rate

    def __call__(
        self, uid: str, data: Dict[str, Union[str, np.ndarray]]
    ) -> Dict[str, np.ndarray]:
        for name, value in list(data.items()):
            match = _CUE_NAME.match(name)
            if match and isinstance(value, str):
                extractor = self.extractors.get(match["modality"])
                if extractor is None:
                    raise ValueError(
                        f"utterance {uid}: '{name}' holds text but the config has no "
                        f"cue encoder for '{match['modality']}' cues (cue_encoders)"
                    )
                try:
                    data[name] = extractor.extract(value.strip())
                except ValueError as e:
                    raise ValueError(f"utterance {uid}: {name}: {e}") from e
            elif (name.startswith("speech_") or name.startswith("enroll_ref")) and isinstance(
                value, np.ndarray
            ):
                if value.ndim != 1:
                    raise ValueError(
                        f"utterance {uid}: {name} has shape {value.shape}; USE expects "
                        "mono audio (downmix multichannel files first)"
                    )
                data[name] = value.astype(np.float32, copy=False)
        return data
