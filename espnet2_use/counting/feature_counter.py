"""USE's count branch: a light counter, trained on many mixtures made afresh from the
batch's references at every step (issue 24).

The EDA learns the count from one mixture per example, through the whole trunk; the
dedicated log-mel CNN counter of the comparison (``espnet2_use.counting``), trained on
mixtures drawn afresh at every step, counts better at the same budget. The count branch
brings that into the model: :class:`FeatureCounter` reads the (detached) encoder
features of a mixture and classifies its count 0 .. K; :func:`remix` sums random
subsets of a batch's reference sources into extra mixtures whose counts are known, so
that the branch sees many mixtures per step while the separator sees its batch. Only
the encoder (one convolution) and the branch run on the remixes.

At inference the model's ``count_rule`` says who counts (``espnet2_use.model.network``):
the attractors (``attractor``), the branch (``branch``) or both (``product``: the
branch's posterior times the attractors' existence posterior, see
:func:`existence_count_log_posterior`).
"""
from typing import Dict, Optional, Sequence, Tuple

import torch

from espnet2_use.counting.logmel_cnn_counter import LogMelCNNCounter


class FeatureCounter(torch.nn.Module):
    """Counts the sources of mixtures from their encoder features.

    Log-compressed magnitudes of the features go through 1-D convolutions over frames
    (each followed by a layer norm over channels, frame by frame, and a PReLU), a mean
    and a max over each mixture's valid frames, and a linear layer: logits of the
    counts 0 .. ``num_classes`` - 1. Frames past a mixture's length are zeroed before
    every convolution, so padding never reaches the count.

    Args:
        input_dim: encoder output size (channels of ``conv``, bins of ``stft``).
        num_classes: counts classified (the model's ``max_num_src`` + 1).
        channels: output channels of each convolution.
        kernel_size: frames each convolution sees (odd).
    """

    reads = "features"

    def __init__(self, input_dim: int, num_classes: int, channels: Sequence[int] = (64, 64),
                 kernel_size: int = 3):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"count branch: num_classes must be >= 2, got {num_classes}")
        if not channels or any(int(c) < 1 for c in channels):
            raise ValueError(f"model_conf.count_branch_conf.channels must be positive sizes, got {list(channels)}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"model_conf.count_branch_conf.kernel_size must be odd and positive, got {kernel_size}")
        self.convs, self.norms, self.acts = torch.nn.ModuleList(), torch.nn.ModuleList(), torch.nn.ModuleList()
        c_in = input_dim
        for c in channels:
            self.convs.append(torch.nn.Conv1d(c_in, int(c), kernel_size, padding=kernel_size // 2))
            self.norms.append(torch.nn.LayerNorm(int(c)))
            self.acts.append(torch.nn.PReLU())
            c_in = int(c)
        self.out = torch.nn.Linear(2 * c_in, num_classes)
        self.num_classes = num_classes

    def forward(self, feats: torch.Tensor, flens: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Encoder features [B, T, N] (real or complex) and their lengths [B] -> count
        logits [B, num_classes]."""
        x = feats.abs() if feats.is_complex() else feats.clamp(min=0)
        if x.dim() == 4:  # [B, T, F, C]-shaped features: fold the trailing axes
            x = x.flatten(2)
        x = torch.log1p(x).transpose(1, 2)  # [B, N, T]
        T = x.size(-1)
        if flens is None:
            valid = torch.ones(x.size(0), 1, T, dtype=torch.bool, device=x.device)
        else:
            valid = (torch.arange(T, device=x.device)[None, :] < flens.to(x.device)[:, None])[:, None, :]
        for conv, norm, act in zip(self.convs, self.norms, self.acts):
            x = act(norm(conv(x * valid).transpose(1, 2)).transpose(1, 2))  # [B, C, T]
        n = valid.sum(-1).clamp(min=1)
        mean = (x * valid).sum(-1) / n
        peak = x.masked_fill(~valid, float("-inf")).amax(-1)
        peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
        return self.out(torch.cat([mean, peak], dim=-1))


class LogMelCounter(torch.nn.Module):
    """Counts the sources of mixtures from a log-mel spectrogram of their waveforms.

    The layers of the count peer (:class:`LogMelCNNCounter`: log-mel in dB below the
    utterance's peak, conv 3x3 blocks with batch norm, ReLU and 2x2 max-pooling, an
    average over bands), pooled by mean and max over each mixture's valid frames only
    (padding, zeroed first, reaches the count only through the windows of a mixture's
    last frames), and a linear layer: logits of the counts 0 .. ``num_classes`` - 1.

    Args:
        num_classes: counts classified (the model's ``max_num_src`` + 1).
        sample_rate: of the model's waveforms (the mel filterbank needs it).
        n_mels, win_ms, hop_ms, channels, dropout: as :class:`LogMelCNNCounter`'s.
            ``dropout`` defaults to 0 here: its masks draw from torch's global random
            stream, which the separator draws from too (the EDA's frame shuffling), so
            a branch with dropout trains the separator on other random draws than the
            same model without the branch, and a side-by-side try no longer isolates
            the branch (mini_use NOTEBOOK.md).
    """

    reads = "waveform"

    def __init__(self, num_classes: int, sample_rate: int, n_mels: int = 64, win_ms: float = 32.0,
                 hop_ms: float = 16.0, channels: Sequence[int] = (16, 32, 64, 128), dropout: float = 0.0):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"count branch: num_classes must be >= 2, got {num_classes}")
        # Its count head (``max_num_src`` outputs there) gives the logits of 0 .. num_classes - 1 here.
        self.net = LogMelCNNCounter(sample_rate, num_tags=0, max_num_src=num_classes, n_mels=n_mels,
                                    win_ms=win_ms, hop_ms=hop_ms, channels=channels, dropout=dropout)
        self.num_classes = num_classes
        self.pools = len(channels)

    def forward(self, wav: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Waveforms [B, T] and their lengths [B] -> count logits [B, num_classes]."""
        if lengths is not None:  # padding is silence: it never sets an utterance's peak
            wav = wav * (torch.arange(wav.size(1), device=wav.device)[None, :] < lengths[:, None])
        x = self.net.cnn(self.net.features(wav)).mean(dim=3)  # [B, C, frames']
        F = x.size(-1)
        if lengths is None:
            valid = torch.ones(x.size(0), 1, F, dtype=torch.bool, device=x.device)
        else:
            n = torch.div(lengths.to(x.device), self.net.hop, rounding_mode="floor") + 1  # centred STFT frames
            for _ in range(self.pools):  # each block's pooling halves them, rounding up
                n = torch.div(n + 1, 2, rounding_mode="floor")
            valid = (torch.arange(F, device=x.device)[None, :] < n[:, None])[:, None, :]
        mean = (x * valid).sum(-1) / valid.sum(-1).clamp(min=1)
        peak = x.masked_fill(~valid, float("-inf")).amax(-1)
        pooled = self.net.dropout(torch.cat([mean, peak], dim=1))
        return self.net.count_head(pooled)


BRANCH_TYPES = ("frames", "logmel")


def build_count_branch(conf: Dict, input_dim: int, num_classes: int) -> torch.nn.Module:
    """The count branch of ``model_conf.count_branch_conf``: ``type`` ``frames``
    (default, :class:`FeatureCounter` over the encoder's ``input_dim`` channels) or
    ``logmel`` (:class:`LogMelCounter`, which needs ``sample_rate``); the other keys go
    to its constructor. Errors name the key."""
    conf = dict(conf)
    kind = conf.pop("type", "frames")
    if kind not in BRANCH_TYPES:
        raise ValueError(f"model_conf.count_branch_conf.type must be one of {BRANCH_TYPES}, got {kind!r}")
    if kind == "logmel" and "sample_rate" not in conf:
        raise ValueError("model_conf.count_branch_conf: type logmel needs sample_rate (the waveforms' rate)")
    try:
        if kind == "logmel":
            return LogMelCounter(num_classes, **conf)
        return FeatureCounter(input_dim, num_classes, **conf)
    except (TypeError, ValueError) as e:  # a key the branch does not take, or a bad value
        msg = str(e)
        raise ValueError(msg if msg.startswith("model_conf.") else f"model_conf.count_branch_conf: {msg}") from None


def remix(
    refs: torch.Tensor,
    counts: torch.Tensor,
    num_mixtures: int,
    max_num_src: int,
    gain_db: float = 5.0,
    generator: Optional[torch.Generator] = None,
) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    """Mixtures of random subsets of a batch's counted reference sources.

    Each of ``num_mixtures`` mixtures draws its count n uniformly from 1 .. K (K the
    smaller of ``max_num_src`` and the sources available), then n distinct sources from
    the whole batch, each at a random gain of +-``gain_db`` dB, and sums them. Counted
    sources that are silent in the batch are not drawn.

    Args:
        refs: references [B, K_ref, T] (the batch's, scaled as the model sees them).
        counts: sources of each example [B]; references past them are not drawn.
        num_mixtures: mixtures to make.
        max_num_src: the largest count to draw.
        gain_db: the gain range in dB.
        generator: a seeded CPU generator (the model keys it on its update count).

    Returns:
        mixtures [num_mixtures, T] and their counts [num_mixtures] (long), or
        (None, None) when the batch has no sounding source.
    """
    B, K_ref, T = refs.shape
    slots = torch.arange(K_ref, device=refs.device)[None, :] < counts[:, None]
    sounding = slots & (refs.abs().amax(-1) > 0)
    pool = refs[sounding]  # [P, T]
    P = pool.size(0)
    if P == 0 or num_mixtures <= 0:
        return None, None
    top = min(max_num_src, P)
    n = torch.randint(1, top + 1, (num_mixtures,), generator=generator)
    order = torch.rand(num_mixtures, P, generator=generator).argsort(dim=1)  # a random permutation per mixture
    chosen = torch.arange(P)[None, :] < n[:, None]  # the first n of each permutation
    gains = 10.0 ** ((torch.rand(num_mixtures, P, generator=generator) * 2.0 - 1.0) * gain_db / 20.0)
    weights = torch.zeros(num_mixtures, P)
    weights.scatter_(1, order, chosen.float() * gains)
    mixtures = weights.to(pool.dtype).to(pool.device) @ pool  # [num_mixtures, T]
    return mixtures, n.to(refs.device)


def existence_count_log_posterior(logits: torch.Tensor, max_num_src: int) -> torch.Tensor:
    """Log-probability of each count 0 .. K from the attractors' existence logits.

    The attractors are read in order, as the count rule reads them: n sources when the
    first n exist and the (n + 1)-th does not, log P(n) = sum_{i<n} log p_i + log(1 - p_n)
    (EEND-EDA's stopping rule as a distribution).

    Args:
        logits: existence logits [B, A], A >= K + 1.
        max_num_src: K.

    Returns:
        [B, K + 1] (not renormalised over 0 .. K).
    """
    if logits.size(1) < max_num_src + 1:
        raise ValueError(f"{logits.size(1)} existence logits cannot score counts up to {max_num_src}")
    lg = logits[:, : max_num_src + 1]
    exists = torch.nn.functional.logsigmoid(lg)
    stops = torch.nn.functional.logsigmoid(-lg)
    before = torch.cat([lg.new_zeros(lg.size(0), 1), exists.cumsum(1)[:, :-1]], dim=1)
    return before + stops


def weighted_count(
    branch: torch.Tensor,
    attractors: torch.Tensor,
    weight: float,
    bias: Sequence[float],
    min_num_src: int,
    max_num_src: int,
) -> torch.Tensor:
    """Counts [B]: argmax over n in [min_num_src, max_num_src] of
    ``branch[n] + weight * attractors[n] + bias[n]`` (log-posteriors [B, K + 1] each,
    bias [K + 1]); the ``branch`` and ``product`` rules, and what
    ``use_count_calibrate`` searches over."""
    score = branch + torch.as_tensor(bias, dtype=branch.dtype, device=branch.device)[None, :]
    if weight:
        score = score + weight * attractors
    n = torch.arange(score.size(1), device=score.device)
    allowed = (n >= min_num_src) & (n <= max_num_src)
    return score.masked_fill(~allowed[None, :], float("-inf")).argmax(dim=-1)
