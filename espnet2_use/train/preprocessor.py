"""Preprocessing of USE training and inference samples (one utterance at a time)."""
from typing import Dict, Optional, Union

import numpy as np

from espnet2.train.preprocessor import AbsPreprocessor
from espnet2_use.cue import build_cue_encoder, cue_encoder_choices
from espnet2_use.data.layout import REFERENCE, SOURCE_NAME, TEXT_CUE_NAME, cue_file
from espnet2_use.utils.audio import SILENCE_RMS, rms

# Raw cues read as text (``match(name)["modality"]``), from the layout table.
_CUE_NAME = TEXT_CUE_NAME
# Every per-source entry: references, cues (raw or cached), audio examples
# (``match(name)["prefix"]``, ``["k"]``).
_SOURCE_NAME = SOURCE_NAME
# extract() of a non-cached encoder needs no trained weights; the projection size
# of these throw-away instances is irrelevant.
_EXTRACTOR_DIM = 64


def source_activity(ref: np.ndarray, segment: int) -> np.ndarray:
    """Per frame of ``segment // 100`` samples: does the source sound (bool [F])?

    A frame sounds when its RMS exceeds FUSS's silence floor and lies within
    40 dB of the source's loudest frame (a fade's last samples do not).
    """
    hop = max(1, segment // 100)
    n = len(ref) // hop
    if n == 0:
        return np.zeros(0, dtype=bool)
    frames = ref[: n * hop].reshape(n, hop)
    energy = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
    return energy > max(SILENCE_RMS, 1e-2 * float(energy.max()))


class USEPreprocessor(AbsPreprocessor):
    """Turns raw cue text into model inputs and checks the audio of one utterance.

    Cues whose encoder is cheap (``cached = False``: sentencepiece ids of a caption,
    the id of a label) are converted here, in the data loader, with the encoder's own
    ``extract``; cached features (``*_emb_spk{k}``) and audio pass through.

    With ``segment`` (training only), a mixture longer than ``segment`` samples is
    cropped at random with its references, and the count is made true of the crop.
    A source *counts* in a crop when it sounds there for at least ``min_active`` of
    the crop (or, for a source shorter than that, for half of its own sounding time);
    the rest are dropped and the kept ones renumbered 1..n', together with their
    cues, and ``num_src`` becomes n'. A dropped source that still sounds a little in
    the crop (a sliver at its edge: too short to hear, let alone count) is taken
    out of the crop's mixture too, so that the mixture stays the sum of the
    references and the count label is never a source nobody could hear. Of up to
    ten random crops the one keeping the most sources (then the fewest slivers) is
    used, so crops keep the corpus's count distribution. Long recordings then train
    in bounded memory.

    Args:
        train: training mode.
        cue_encoders: the task's ``cue_encoders`` section.
        sample_rate: the task's sampling rate (for messages).
        segment: crop length in samples (None: whole mixtures).
        min_active: share of the crop a source must sound in to count.
    """

    def __init__(
        self,
        train: bool,
        cue_encoders: Optional[Dict[str, Dict]] = None,
        sample_rate: Optional[int] = None,
        segment: Optional[int] = None,
        min_active: float = 0.125,
    ):
        super().__init__(train)
        if segment is not None and segment <= 0:
            raise ValueError(f"--speech_segment must be a positive number of samples, got {segment}")
        if not 0.0 <= min_active <= 1.0:
            raise ValueError(f"min_active must lie in [0, 1], got {min_active}")
        self.segment = segment
        self.min_active = min_active
        self.extractors = {}
        for modality, spec in (cue_encoders or {}).items():
            cls = cue_encoder_choices.get(spec.get("type"))
            if cls is None or cls.cached:
                continue
            self.extractors[modality] = build_cue_encoder(
                spec["type"], _EXTRACTOR_DIM, dict(spec.get("conf") or {}), sample_rate
            )
        # Cues read off each source's reference (layout rows marked derived: the span).
        self.derived = {
            m: e for m, e in self.extractors.items() if cue_file(m, False).derived
        }
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
        if self.train and self.segment is not None:
            data = self._crop(data)
        return self._derive(data)

    def _derive(self, data: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Derived cues of every source from its reference (after the crop). In training
        always, with jitter (a file's spans would be stale after a crop); otherwise
        where the data has none."""
        for modality, encoder in self.derived.items():
            row = cue_file(modality, False)
            for name in [n for n in data if n.startswith(REFERENCE.name_prefix)]:
                match = _SOURCE_NAME.match(name)
                if match is None or match["row"] is not REFERENCE:
                    continue
                target = row.name(int(match["k"]))
                if self.train or target not in data:
                    data[target] = encoder.derive(data[name], jitter=self.train)
        return data

    def _activity(self, ref: np.ndarray) -> np.ndarray:
        return source_activity(ref, self.segment)

    def _crop(self, data: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """A random ``segment`` of the mixture and references, sources recounted."""
        mix = data["speech_mix"]
        if len(mix) <= self.segment:
            return data
        per_source: Dict[str, list] = {}  # prefix -> source indices present
        for name in data:
            match = _SOURCE_NAME.match(name)
            if match:
                per_source.setdefault(match["prefix"], []).append(int(match["k"]))
        refs = sorted(per_source.get("speech_ref", []))
        if "num_src" in data:
            count = int(data["num_src"][0])
        else:
            count = sum(len(data[f"speech_ref{k}"]) > 0 for k in refs)
        hop = max(1, self.segment // 100)
        activity = {k: self._activity(data[f"speech_ref{k}"]) for k in range(1, count + 1)}
        # Frames a source must sound in to count: min_active of the crop, or half of
        # its own sounding time when it is shorter than that.
        need = {
            k: max(1, min(int(self.min_active * self.segment / hop), int(act.sum()) // 2))
            for k, act in activity.items()
        }
        best = None
        for _ in range(10):
            start = np.random.randint(0, len(mix) - self.segment + 1)
            window = slice(start, start + self.segment)
            first, last = -(-start // hop), (start + self.segment) // hop  # frames inside
            kept, slivers = [], []
            for k in range(1, count + 1):
                if int(activity[k][first:last].sum()) >= need[k]:
                    kept.append(k)
                elif rms(data[f"speech_ref{k}"][window]) > SILENCE_RMS:
                    slivers.append(k)
            if best is None or (len(kept), -len(slivers)) > (len(best[1]), -len(best[2])):
                best = (window, kept, slivers)
            if len(kept) == count:
                break
        window, active, slivers = best
        if not active:
            # Sparse sources (short events in a long recording): no random crop caught
            # one, so the utterance trains whole rather than with zero sources.
            return data
        out = {name: value for name, value in data.items() if not _SOURCE_NAME.match(name)}
        for prefix, ks in per_source.items():
            for new_k in ks:
                old = data[f"{prefix}{active[new_k - 1]}"] if new_k <= len(active) else None
                if old is None:  # beyond the new count: absent, an empty entry as in the data
                    out[f"{prefix}{new_k}"] = data[f"{prefix}{new_k}"][:0]
                else:
                    out[f"{prefix}{new_k}"] = old[window] if prefix == "speech_ref" else old
        out["speech_mix"] = mix[window]
        for k in slivers:
            out["speech_mix"] = out["speech_mix"] - data[f"speech_ref{k}"][window]
        out["num_src"] = np.array([len(active)], dtype=np.int64)
        return out
