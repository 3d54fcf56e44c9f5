"""USE's rule for training crops, for the fixed-count peers of a comparison.

ESPnet's crop (``speech_segment`` of its ``enh`` preprocessor) draws a random window
and, with ``avoid_allzero_segment``, tries again a few times while a reference is all
zero; a source that sounds for a sliver of the window stays a reference that SI-SNR must
score, and one silent there gives a loss of tens of dB for nothing. USE's own crops
(``USEPreprocessor``) count a source only where it sounds for ``min_active`` of the crop
and drop the rest. A fixed-count model cannot drop a source, so :class:`ActiveCrop`
draws up to ten windows, as USE's does, and takes the first in which every reference
sounds for ``min_active`` of the window (or half of its own sounding time, when it is
shorter); when none does, the mixture trains whole. It crops, then hands the utterance
to ESPnet's own preprocessor (built without a crop) for the rest.

Configs ask for it with ``preprocessor: enh``, ``speech_segment: N`` and
``preprocessor_conf: {active_crop_min_active: 0.125}``, trained through
``espnet2_use.bin.budget_train enh`` (ESPnet's ``enh`` task builds only its own
preprocessors, by name).
"""
import re
from typing import Callable, Dict, Tuple

import numpy as np

from espnet2.train.preprocessor import AbsPreprocessor
from espnet2_use.train.preprocessor import source_activity

TRIALS = 10
CONF_KEY = "active_crop_min_active"
_REFERENCE = re.compile(r"speech_ref\d+$")


def active_window(refs: list, segment: int, min_active: float) -> Tuple[int, int]:
    """(start, end) of a window where every reference sounds enough, or the whole."""
    length = refs[0].shape[0]
    if length <= segment:
        return 0, length
    hop = max(1, segment // 100)
    activity = [source_activity(ref, segment) for ref in refs]
    need = [max(1, min(int(min_active * segment / hop), int(act.sum()) // 2)) for act in activity]
    for _ in range(TRIALS):
        start = np.random.randint(0, length - segment + 1)
        first, last = -(-start // hop), (start + segment) // hop  # frames inside
        if all(int(act[first:last].sum()) >= n for act, n in zip(activity, need)):
            return start, start + segment
    return 0, length


class ActiveCrop(AbsPreprocessor):
    """Crop with USE's rule, then ESPnet's preprocessor.

    Args:
        inner: ESPnet's preprocessor, built without ``speech_segment``.
        segment: crop length in samples.
        min_active: share of the crop every reference must sound in.
        train: training mode (validation and inference are not cropped).
    """

    def __init__(self, inner: Callable, segment: int, min_active: float, train: bool):
        super().__init__(train)
        if not 0.0 <= min_active <= 1.0:
            raise ValueError(f"preprocessor_conf.{CONF_KEY} must lie in [0, 1], got {min_active}")
        if segment is None or segment <= 0:
            raise ValueError(f"preprocessor_conf.{CONF_KEY} needs --speech_segment > 0, got {segment}")
        self.inner = inner
        self.segment = int(segment)
        self.min_active = min_active

    def __call__(self, uid: str, data: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        if self.train and isinstance(data.get("speech_mix"), np.ndarray):
            names = sorted((n for n in data if _REFERENCE.match(n)), key=lambda n: int(n[10:]))
            start, end = active_window([data[n] for n in names], self.segment, self.min_active)
            data = dict(data)
            for name in ["speech_mix", *names]:
                data[name] = data[name][start:end]
        return self.inner(uid, data)
