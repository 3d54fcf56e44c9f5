"""Long recordings: overlapping chunks stitched by overlap-add, and the tracking
that keeps each separated source's identity across chunks."""
from typing import List, Optional

import numpy as np


def chunk_starts(num_samples: int, chunk: int, overlap: int) -> List[int]:
    """Start of every chunk: a hop of ``chunk - overlap``; the last chunk ends at the
    end of the audio and is shorter when it must be (always longer than ``overlap``),
    so that every sample lies in at most two chunks."""
    if num_samples <= chunk:
        return [0]
    return list(range(0, num_samples - overlap, chunk - overlap))


def chunk_windows(starts: List[int], chunk: int, num_samples: int) -> List[np.ndarray]:
    """Crossfade window of every chunk (its length: min(chunk, what is left))."""
    windows = []
    for i, start in enumerate(starts):
        length = min(chunk, num_samples - start)
        fade_in = 0 if i == 0 else starts[i - 1] + chunk - start
        fade_out = 0 if i == len(starts) - 1 else start + length - starts[i + 1]
        windows.append(crossfade(length, fade_in, fade_out))
    return windows


def crossfade(length: int, fade_in: int, fade_out: int) -> np.ndarray:
    """A window of ones with linear ramps; overlapping ramps of neighbours sum to one."""
    w = np.ones(length, dtype=np.float32)
    if fade_in:
        w[:fade_in] = (np.arange(fade_in, dtype=np.float32) + 0.5) / fade_in
    if fade_out:
        w[length - fade_out:] = np.minimum(
            w[length - fade_out:], (np.arange(fade_out, 0, -1, dtype=np.float32) - 0.5) / fade_out
        )
    return w


# -------------------------------------------------------------------------- results


class _SourceTracker:
    """Keeps each separated source's identity across chunks of a long recording.

    A chunk's estimates are matched to the sources found so far by the cosine of
    their attractors (the model's summary of *which* sound it is) plus the
    correlation of their samples where the chunk overlaps the previous one (the same
    sound must continue there); the Hungarian algorithm picks the best assignment,
    and an estimate that fits no known source (score below ``new_source_score``)
    starts a new one. Stitching is overlap-add with linear crossfades, into one
    output buffer per source; only those buffers grow with the file.

    With ``max_sources`` (a forced count), once that many sources are known every
    estimate joins one of them, however poorly it fits: the file gets as many outputs
    as the user asked for, not one per chunk whose attractors drift.
    """

    def __init__(
        self, num_samples: int, new_source_score: float = 0.5, max_sources: Optional[int] = None
    ):
        self.num_samples = num_samples
        self.new_source_score = new_source_score
        self.max_sources = max_sources
        self.attractors: List[np.ndarray] = []
        # Each source's estimate in the previous chunk (None if absent there): its
        # samples that overlap the next chunk are compared with that chunk's.
        self.previous: List[Optional[np.ndarray]] = []
        self.previous_start = 0
        self.outputs: List[np.ndarray] = []
        self.probs: List[List[float]] = []
        self.label_scores: List[List[np.ndarray]] = []

    def _score(self, att: np.ndarray, est: np.ndarray, start: int) -> np.ndarray:
        scores = np.zeros((len(att), len(self.attractors)), dtype=np.float64)
        for g, (a_g, prev) in enumerate(zip(self.attractors, self.previous)):
            scores[:, g] = att @ a_g / (np.linalg.norm(att, axis=1) * np.linalg.norm(a_g) + 1e-8)
            if prev is None:
                continue
            tail = prev[start - self.previous_start :]  # the samples both chunks cover
            if len(tail) == 0:
                continue
            head = est[:, : len(tail)]
            h = head - head.mean(1, keepdims=True)
            t = tail - tail.mean()
            scores[:, g] += h @ t / (np.linalg.norm(h, axis=1) * np.linalg.norm(t) + 1e-8)
        return scores

    def add(
        self,
        start: int,
        est: np.ndarray,
        att: np.ndarray,
        probs: np.ndarray,
        label_scores: Optional[np.ndarray],
        window: np.ndarray,
    ) -> None:
        """Add chunk estimates [S, L] (attractors [S, D]) that start at ``start``."""
        length = est.shape[1]
        owner = [-1] * len(est)
        if self.attractors and len(est):
            scores = self._score(att, est, start)
            # scipy.optimize costs 0.3 s to import: paid by long recordings only.
            from scipy.optimize import linear_sum_assignment

            rows, cols = linear_sum_assignment(-scores)
            full = self.max_sources is not None and len(self.attractors) >= self.max_sources
            for s, g in zip(rows, cols):
                if full or scores[s, g] >= self.new_source_score:
                    owner[s] = int(g)
        current: List[Optional[np.ndarray]] = [None] * len(self.attractors)
        for s in range(len(est)):
            g = owner[s]
            if g < 0:
                g = len(self.attractors)
                self.attractors.append(att[s].copy())
                current.append(None)
                self.outputs.append(np.zeros(self.num_samples, dtype=np.float32))
                self.probs.append([])
                self.label_scores.append([])
            else:
                # Running mean of the attractor: the summary of the sound so far.
                n = len(self.probs[g])
                self.attractors[g] = (self.attractors[g] * n + att[s]) / (n + 1)
            self.outputs[g][start : start + length] += window * est[s]
            self.probs[g].append(float(probs[s]))
            if label_scores is not None:
                self.label_scores[g].append(label_scores[s])
            current[g] = est[s]
        self.previous = current
        self.previous_start = start
