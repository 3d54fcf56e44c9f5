"""A log-mel CNN that counts the sounds of a mixture and tags their classes."""
from typing import Dict, Sequence

import torch
import torchaudio


class LogMelCNNCounter(torch.nn.Module):
    """Log-mel spectrogram -> 2-D CNN -> pooled over time -> count and tag heads.

    The spectrogram is compressed by log and taken relative to its peak (a mixture's
    level does not change its count); each conv block is conv 3x3, batch norm, ReLU and 2x2
    max-pooling, so a pattern is recognised wherever it lies in time and frequency.
    The blocks' output is averaged over frequency and pooled over time by mean and max
    (a short event still counts). The count head classifies the number of sources
    (``1 .. max_num_src``, class c meaning c + 1 sources); the tag head is a
    multi-label classifier of the sound classes that sound in the mixture, an auxiliary
    task that makes the features class-aware.

    Args:
        sample_rate: of the input waveforms.
        num_tags: size of the class vocabulary of the tag head (0: no tag head).
        max_num_src: the largest count (the count head has that many classes).
        n_mels: mel bands.
        win_ms: STFT window in ms (the FFT size is the next power of two).
        hop_ms: STFT hop in ms.
        channels: output channels of the conv blocks (one block each).
        dropout: before the heads.

    References:
        The count peer of issue 24 (a standalone study of mini_use's NOTEBOOK.md: 0.1 M
        parameters, 85 % counting after 900 s); F.-R. Stöter et al., "CountNet:
        Estimating the number of concurrent speakers using supervised learning",
        IEEE/ACM TASLP 2019 (counting as classification over a spectrogram CNN).
    """

    TOP_DB = 80.0

    def __init__(
        self,
        sample_rate: int,
        num_tags: int,
        max_num_src: int = 3,
        n_mels: int = 64,
        win_ms: float = 32.0,
        hop_ms: float = 8.0,
        channels: Sequence[int] = (16, 32, 64, 128),
        dropout: float = 0.1,
    ):
        super().__init__()
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if max_num_src < 1:
            raise ValueError(f"max_num_src must be >= 1, got {max_num_src}")
        if num_tags < 0:
            raise ValueError(f"num_tags must be >= 0, got {num_tags}")
        if not channels or any(int(c) < 1 for c in channels):
            raise ValueError(f"channels must be a non-empty list of positive ints, got {channels}")
        if n_mels < 2 ** len(channels):
            raise ValueError(
                f"n_mels={n_mels} is too few for {len(channels)} blocks that each halve the "
                f"bands (need >= {2 ** len(channels)})"
            )
        self.sample_rate = sample_rate
        self.max_num_src = max_num_src
        self.num_tags = num_tags
        win = int(round(sample_rate * win_ms / 1000))
        hop = int(round(sample_rate * hop_ms / 1000))
        if win < 2 or hop < 1:
            raise ValueError(f"win_ms={win_ms} / hop_ms={hop_ms} give {win} / {hop} samples at {sample_rate} Hz")
        n_fft = 1 << (win - 1).bit_length()
        self.hop = hop
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, win_length=win, hop_length=hop,
            n_mels=n_mels, power=2.0, center=True,
        )
        blocks = []
        prev = 1
        for c in channels:
            blocks += [
                torch.nn.Conv2d(prev, int(c), 3, padding=1, bias=False),
                torch.nn.BatchNorm2d(int(c)),
                torch.nn.ReLU(),
                torch.nn.MaxPool2d(2, ceil_mode=True),
            ]
            prev = int(c)
        self.cnn = torch.nn.Sequential(*blocks)
        self.dropout = torch.nn.Dropout(dropout)
        self.count_head = torch.nn.Linear(2 * prev, max_num_src)
        self.tag_head = torch.nn.Linear(2 * prev, num_tags) if num_tags else None

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """Log-mel spectrogram [B, 1, frames, n_mels] of waveforms [B, T], in dB below
        each utterance's loudest bin, floored ``TOP_DB`` below it, divided by 20.

        Relative to the peak, the features do not move with the mixture's level nor with
        how much of it is silence (a mean over the utterance would: a crop that sounds
        throughout and a whole mixture with silent stretches would be centred apart).
        """
        assert wav.dim() == 2, wav.shape
        spec = 10.0 * self.mel(wav).clamp(min=1e-20).log10()  # [B, n_mels, frames] dB
        peak = spec.amax(dim=(1, 2), keepdim=True)
        spec = torch.maximum(spec, peak - self.TOP_DB) - peak
        return (spec / 20.0).transpose(1, 2).unsqueeze(1)

    def forward(self, wav: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Count and tag logits of waveforms [B, T] of one length (training crops, or
        one whole mixture at a time at inference: padding would change the centring).

        Returns:
            ``count_logits`` [B, max_num_src] and, with a tag head, ``tag_logits``
            [B, num_tags].
        """
        x = self.cnn(self.features(wav))  # [B, C, frames', bands']
        x = x.mean(dim=3)  # [B, C, frames']
        pooled = self.dropout(torch.cat([x.mean(2), x.amax(2)], dim=1))  # [B, 2C]
        out = {"count_logits": self.count_head(pooled)}
        if self.tag_head is not None:
            out["tag_logits"] = self.tag_head(pooled)
        return out

    @torch.no_grad()
    def count(self, wav: torch.Tensor) -> torch.Tensor:
        """Counts [B] (long, 1 .. max_num_src): the count head's most likely class."""
        return self.forward(wav)["count_logits"].argmax(-1) + 1
