"""Time-span cue encoder: when the wanted sound is active, as a frame-level track."""
import re
from typing import Any, Optional, Tuple

import numpy as np
import torch

from espnet2_use.cue.abs_cue_encoder import AbsCueEncoder, FrameGrid, check_batch, length_mask
from espnet2_use.utils.audio import SILENCE_RMS

_SECONDS = r"(\d+(?:\.\d*)?|\.\d+)"
_INTERVAL = re.compile(rf"^{_SECONDS}-{_SECONDS}$")


class SpanCueEncoder(AbsCueEncoder):
    """Intervals ``(start, end)`` in seconds -> an activity track over the mixture's frames.

    Raw form (``span_spk{k}``, ``--span``): intervals ``start-end`` in seconds, separated
    by spaces or commas (``1.2-2.0 3.5-4``). ``extract`` parses them into float32
    ``[N, 2]``; ``forward`` turns them into the share of each mixture frame that the
    intervals cover, ``a`` in [0, 1], embedded as ``a * w + b`` (one token per frame).
    The cue is ``aligned``: the fusion adds the track to the mixture's frames (so the
    attention reads what sounds inside the span) and the mask head is modulated per
    frame by it.

    In training the span is read off the target's reference (``derive``): the runs of
    10 ms frames within 40 dB of its loudest one (above FUSS's silence floor), gaps
    shorter than ``min_gap`` seconds closed, every edge moved by up to ``jitter``
    seconds at random, as a user pointing in a waveform editor would.

    Args:
        output_dim: D, the shared cue space.
        sample_rate: the task's sampling rate (seconds -> samples).
        jitter: largest random shift of an edge in training, seconds.
        min_gap: gaps between active runs shorter than this are closed, seconds.
    """

    modality = "span"
    cached = False
    aligned = True

    def __init__(self, output_dim: int, sample_rate: int = 8000, jitter: float = 0.1,
                 min_gap: float = 0.2):
        super().__init__()
        if output_dim <= 0:
            raise ValueError(f"output_dim must be > 0, got {output_dim}")
        if sample_rate <= 0:
            raise ValueError(f"cue_encoders.span: sample_rate must be > 0 Hz, got {sample_rate}")
        if jitter < 0 or min_gap < 0:
            raise ValueError(f"cue_encoders.span: jitter and min_gap must be >= 0 s, got {jitter}, {min_gap}")
        self._output_dim = output_dim
        self.sample_rate = int(sample_rate)
        self.jitter = float(jitter)
        self.min_gap = float(min_gap)
        self.proj = torch.nn.Linear(1, output_dim)  # activity -> a * w + b

    @property
    def output_dim(self) -> int:
        return self._output_dim

    @property
    def input_dim(self) -> int:
        return 2

    def to_raw(self, value: Any) -> str:
        """``[(1.2, 2.0), ...]`` (or a string as in a data file) -> ``"1.2-2.0 ..."``."""
        if isinstance(value, str):
            return value
        try:
            pairs = [(float(s), float(e)) for s, e in value]
        except (TypeError, ValueError):
            raise ValueError(f"span={value!r}: expected a list of (start, end) pairs in seconds, "
                             "e.g. [(1.2, 2.0)]") from None
        return " ".join(f"{s:g}-{e:g}" for s, e in pairs)

    def extract(self, raw: str) -> np.ndarray:
        """``"1.2-2.0 3-3.5"`` -> float32 ``[N, 2]`` (start, end) in seconds; "" -> ``[0, 2]``."""
        spans = []
        for token in raw.replace(",", " ").split():
            found = _INTERVAL.match(token)
            if found is None:
                raise ValueError(f"span {token!r}: expected start-end in seconds, e.g. 1.2-2.0")
            start, end = float(found[1]), float(found[2])
            if not start < end:
                raise ValueError(f"span {token!r}: the start must be before the end")
            spans.append((start, end))
        return np.asarray(spans, dtype=np.float32).reshape(-1, 2)

    def derive(self, ref: np.ndarray, jitter: bool) -> Optional[np.ndarray]:
        """The intervals where ``ref`` sounds, ``[N, 2]`` seconds (``[0, 2]`` when silent)."""
        hop = max(1, self.sample_rate // 100)
        n = len(ref) // hop
        if n == 0:
            return np.zeros((0, 2), dtype=np.float32)
        energy = np.sqrt(np.mean(np.square(ref[: n * hop].reshape(n, hop), dtype=np.float64), axis=1))
        active = energy > max(SILENCE_RMS, 1e-2 * float(energy.max()))
        edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
        runs = [[a * hop / self.sample_rate, b * hop / self.sample_rate] for a, b in edges.reshape(-1, 2)]
        merged = []
        for run in runs:
            if merged and run[0] - merged[-1][1] < self.min_gap:
                merged[-1][1] = run[1]
            else:
                merged.append(run)
        duration = len(ref) / self.sample_rate
        out = []
        for start, end in merged:
            if jitter and self.jitter > 0:
                start += np.random.uniform(-self.jitter, self.jitter)
                end += np.random.uniform(-self.jitter, self.jitter)
            start, end = max(0.0, start), min(duration, end)
            if start < end:
                out.append((start, end))
        return np.asarray(out, dtype=np.float32).reshape(-1, 2)

    def window(
        self, x: torch.Tensor, x_lens: torch.Tensor, start: float, end: float
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Intervals ``[B, N, 2]`` cut to ``[start, end)`` seconds, shifted to start at 0;
        the ones outside the window are dropped (a row may be left with none)."""
        cut = (x - start).clamp(min=0.0, max=end - start)
        keep = (cut[..., 1] > cut[..., 0]) & length_mask(x_lens, x.size(1))  # [B, N]
        order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)  # kept ones first
        cut = torch.gather(cut, 1, order[..., None].expand_as(cut))
        return cut, keep.sum(1)

    def activity(self, x: torch.Tensor, x_lens: torch.Tensor, grid: FrameGrid) -> torch.Tensor:
        """Share of each mixture frame the intervals cover, ``[B, L]`` (0 beyond the frames)."""
        seconds = grid.num_samples.to(x.dtype) / grid.frames.clamp(min=1).to(x.dtype) / self.sample_rate  # [B]
        j = torch.arange(grid.num_frames, device=x.device, dtype=x.dtype)
        start = j[None, :] * seconds[:, None]  # [B, L]
        end = start + seconds[:, None]
        overlap = (torch.minimum(end[..., None], x[:, None, :, 1])
                   - torch.maximum(start[..., None], x[:, None, :, 0])).clamp(min=0)  # [B, L, N]
        overlap = overlap * length_mask(x_lens, x.size(1))[:, None, :]
        cover = (overlap.sum(-1) / seconds[:, None].clamp(min=1e-12)).clamp(max=1.0)  # [B, L]
        return cover * length_mask(grid.frames, grid.num_frames)

    def forward(
        self, x: torch.Tensor, x_lens: torch.Tensor, grid: Optional[FrameGrid] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Intervals ``[B, N, 2]`` -> the track ``[B, L, D]`` and its lengths ``[B]``
        (the valid frames; 0 for an absent span)."""
        if grid is None:
            raise ValueError("the span cue is a time track: its encoder needs the mixture's FrameGrid")
        check_batch(x, x_lens, 3, type(self).__name__)
        present = x_lens > 0
        act = self.activity(x.float(), x_lens, grid)  # [B, L]
        track = self.proj(act[..., None])  # [B, L, D]
        keep = length_mask(grid.frames, grid.num_frames) & present[:, None]  # [B, L]
        lens = torch.where(present, grid.frames, torch.zeros_like(grid.frames))
        return track * keep[..., None].to(track.dtype), lens

