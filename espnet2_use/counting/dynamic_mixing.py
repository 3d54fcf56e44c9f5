"""Mixtures made afresh at every step from a data dir's separate sources.

A recipe's ``dump/raw/train`` holds each mixture's references (``spk{k}.scp``) and
their class names (``label_spk{k}``); ``utt2num_src`` says how many are real (the rest
are silence entries). :class:`SourcePool` loads every real reference once, trimmed to
where it sounds, and :meth:`SourcePool.mixtures` draws new mixtures from them: a count
uniform over ``1 .. max_num_src``, that many *distinct* classes, one recording of each,
a window of each that sounds, summed. So the counter sees a new mixture at every
step instead of the corpus's fixed few thousand.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import soundfile as sf

SILENCE_RMS = 1e-8  # FUSS's floor: a reference with less is absent


def _read_map(path: Path) -> Dict[str, str]:
    """A Kaldi-style ``utt value`` file (an empty value allowed) as a dict."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            utt, _, value = line.partition(" ")
            if utt in out:
                raise ValueError(f"{path}:{no}: utterance {utt!r} given twice")
            out[utt] = value.strip()
    return out


def frame_activity(wav: np.ndarray, hop: int) -> np.ndarray:
    """Per frame of ``hop`` samples, does the source sound (bool [F])? A frame sounds
    when its RMS is above FUSS's floor and within 40 dB of the loudest frame (the rule
    of USE's own crops, ``espnet2_use.train.preprocessor.source_activity``)."""
    n = len(wav) // hop
    if n == 0:
        return np.zeros(0, dtype=bool)
    energy = np.sqrt(np.mean(np.square(wav[: n * hop].reshape(n, hop), dtype=np.float64), axis=1))
    return energy > max(SILENCE_RMS, 1e-2 * float(energy.max()))


@dataclass
class Source:
    utt: str
    label: str
    wav: np.ndarray  # float32, trimmed to its first and last sounding samples


class SourcePool:
    """Every real reference of a data dir, by class.

    Args:
        sources: the references.
        sample_rate: their rate.
        labels: the class vocabulary (sorted; the tag head's order).
    """

    def __init__(self, sources: Sequence[Source], sample_rate: int, labels: Optional[Sequence[str]] = None):
        if not sources:
            raise ValueError("the source pool is empty")
        self.sample_rate = sample_rate
        self.labels = sorted(set(labels if labels is not None else (s.label for s in sources)))
        self.index = {label: i for i, label in enumerate(self.labels)}
        self.by_class: Dict[str, List[Source]] = {}
        for s in sources:
            if s.label not in self.index:
                raise ValueError(f"source {s.utt}: class {s.label!r} is not in the vocabulary")
            self.by_class.setdefault(s.label, []).append(s)
        self.classes = sorted(self.by_class)

    @classmethod
    def from_dir(cls, data_dir: Union[str, Path], root: Optional[Union[str, Path]] = None) -> "SourcePool":
        """Load ``data_dir``'s real references (``spk{k}.scp`` for k <= ``utt2num_src``)
        and their classes (``label_spk{k}``); relative paths are read from ``root``
        (default: the working directory, as ESPnet's recipes run)."""
        data_dir = Path(data_dir)
        root = Path(root) if root is not None else Path.cwd()
        counts_path = data_dir / "utt2num_src"
        if not counts_path.is_file():
            raise FileNotFoundError(f"{counts_path}: missing (the count of each mixture)")
        counts = {}
        for utt, n in _read_map(counts_path).items():
            try:
                counts[utt] = int(n)
            except ValueError:
                raise ValueError(f"{counts_path}: utterance {utt!r} has count {n!r}, not an integer") from None
        sources, rate = [], None
        for k in range(1, max(counts.values()) + 1):
            scp, labels = data_dir / f"spk{k}.scp", data_dir / f"label_spk{k}"
            for path in (scp, labels):
                if not path.is_file():
                    raise FileNotFoundError(f"{path}: missing (source {k} of the mixtures with {k}+ sources)")
            wavs, names = _read_map(scp), _read_map(labels)
            for utt, n in sorted(counts.items()):
                if k > n:
                    continue
                if not wavs.get(utt):
                    raise ValueError(f"{scp}: no reference for {utt!r}, whose count is {n}")
                if not names.get(utt):
                    raise ValueError(f"{labels}: no class for source {k} of {utt!r}")
                path = Path(wavs[utt])
                wav, fs = sf.read(path if path.is_absolute() else root / path, dtype="float32", always_2d=False)
                if wav.ndim != 1:
                    raise ValueError(f"{scp}: {utt!r}'s reference {path} is not mono")
                if rate is None:
                    rate = fs
                elif fs != rate:
                    raise ValueError(f"{scp}: {utt!r}'s reference {path} has rate {fs}, others {rate}")
                loud = np.flatnonzero(np.abs(wav) > 0)
                if loud.size == 0 or np.sqrt(np.mean(np.square(wav, dtype=np.float64))) <= SILENCE_RMS:
                    continue  # silent reference: nothing to mix
                sources.append(Source(utt, names[utt], wav[loud[0] : loud[-1] + 1].copy()))
        if not sources:
            raise ValueError(f"{data_dir}: no sounding reference to mix")
        return cls(sources, rate)

    def _window(self, wav: np.ndarray, segment: int, rng: np.random.Generator, min_active: float) -> np.ndarray:
        """A ``segment``-long window of a source in which it sounds for ``min_active``
        of the window (or half its own sounding time), tried up to ten times; a shorter
        source is placed at a random offset in silence."""
        if len(wav) <= segment:
            out = np.zeros(segment, dtype=np.float32)
            start = int(rng.integers(0, segment - len(wav) + 1))
            out[start : start + len(wav)] = wav
            return out
        hop = max(1, segment // 100)
        active = frame_activity(wav, hop)
        width = segment // hop
        need = max(1, min(int(min_active * width), int(active.sum()) // 2))
        sums = np.concatenate([[0], np.cumsum(active)])
        start = 0
        for _ in range(10):
            start = int(rng.integers(0, len(wav) - segment + 1))
            first = start // hop
            if sums[min(first + width, len(active))] - sums[min(first, len(active))] >= need:
                break
        return wav[start : start + segment]

    def mixtures(
        self,
        batch_size: int,
        segment: int,
        rng: np.random.Generator,
        max_num_src: int = 3,
        gain_db: float = 0.0,
        min_active: float = 0.125,
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``batch_size`` new mixtures of ``segment`` samples.

        Args:
            rng: the draws' generator (a trainer seeds one per step).
            max_num_src: counts are uniform over 1 .. min(max_num_src, classes).
            gain_db: each source's level moves by a gain uniform in +-gain_db dB.
            min_active: a window must hold this share of the source's sound.

        Returns:
            mixtures [B, segment] (float32), counts [B] (int64) and tag targets
            [B, len(labels)] (float32, 1 for each class in the mixture).
        """
        top = min(max_num_src, len(self.classes))
        mix = np.zeros((batch_size, segment), dtype=np.float32)
        counts = rng.integers(1, top + 1, size=batch_size)
        tags = np.zeros((batch_size, len(self.labels)), dtype=np.float32)
        for b, n in enumerate(counts):
            for label in rng.choice(self.classes, size=int(n), replace=False):
                pool = self.by_class[label]
                source = pool[int(rng.integers(0, len(pool)))]
                gain = 10.0 ** (rng.uniform(-gain_db, gain_db) / 20.0) if gain_db > 0 else 1.0
                mix[b] += gain * self._window(source.wav, segment, rng, min_active)
                tags[b, self.index[label]] = 1.0
        return mix, counts.astype(np.int64), tags
