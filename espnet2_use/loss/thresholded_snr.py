"""FUSS's loss for a separator with a fixed number of outputs and a varying number of
sources, inside ESPnet's ``enh`` task: the peer that USE's paper beats.

A stock separator (Conv-TasNet, DPRNN) with M outputs learns mixtures of 1..M sources
when the references are padded with silence to M and each (reference, output) pair is
scored by FUSS's baseline loss (Wisdom et al. 2021): for an active reference s, the
negative SNR with a soft threshold, ``10 log10(||s - y||^2 + tau ||s||^2) - 10 log10
||s||^2`` (no gain once the error is 30 dB below the source); for a silent reference, the
output's power against the mixture's, ``10 log10(||y||^2 + tau ||x||^2) - 10 log10
||x||^2`` (an output pays for what it emits where nothing sounds, down to 30 dB below
the mixture). ``tau = 10^(-max_snr_db / 10)``. The permutation is the best of all M!
pairings, as FUSS's baseline trains. The mixture is the sum of the references (FUSS's and
mini_use's mixtures are). In a config::

    separator: tcn
    separator_conf: {num_spk: 3, ...}
    criterions:
      - name: use_thresholded_snr
        conf: {max_snr_db: 30.0}
        wrapper: use_silence_pit
        wrapper_conf: {weight: 1.0}

Both are registered in ``espnet2.tasks.enh`` (``espnet2_use.espnet_hooks``). The stats
are ``thresholded_snr`` (the loss) and ``silent_output_db`` (the mean power of the
outputs paired with silent references, dB below the mixture).

References:
    S. Wisdom et al., "What's all the FUSS about free universal sound separation
    data?", ICASSP 2021.
"""
import itertools
import math
from typing import Dict, List, Tuple

import torch

from espnet2.enh.loss.criterions.time_domain import TimeDomainLoss
from espnet2.enh.loss.wrappers.abs_wrapper import AbsLossWrapper

# A reference with mean power at or below this is silent (FUSS: RMS <= 1e-8).
SILENT_POWER = 1e-16


class ThresholdedSNRLoss(TimeDomainLoss):
    """FUSS's soft-thresholded SNR loss of one (reference, output) pair, per utterance.

    Args:
        max_snr_db: the SNR beyond which an active pair gains nothing, and the depth
            below the mixture beyond which a silent pair's output costs nothing.
        eps: added inside the logarithms.
        name: stats key.
        only_for_test: compute it only in validation.
    """

    def __init__(self, max_snr_db: float = 30.0, eps: float = 1e-8,
                 name: str = "thresholded_snr", only_for_test: bool = False):
        super().__init__(name, only_for_test=only_for_test)
        if max_snr_db <= 0:
            raise ValueError(f"use_thresholded_snr: max_snr_db must be > 0, got {max_snr_db}")
        self.tau = 10.0 ** (-max_snr_db / 10.0)
        self.eps = eps

    def forward(self, ref: torch.Tensor, inf: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
        """Loss [B] of estimates ``inf`` [B, T] against ``ref`` [B, T] (silent or not)."""
        if not ref.shape == inf.shape == mixture.shape or ref.dim() != 2:
            raise ValueError(
                f"{self.name}: needs ref, inf and mixture [B, T] alike, got "
                f"{tuple(ref.shape)}, {tuple(inf.shape)}, {tuple(mixture.shape)}"
            )
        ref_power = ref.pow(2).sum(-1)  # [B]
        mix_power = mixture.pow(2).sum(-1)  # [B]
        active = ref_power > SILENT_POWER * ref.size(-1)  # [B]
        err_active = (ref - inf).pow(2).sum(-1) + self.tau * ref_power  # [B]
        err_silent = inf.pow(2).sum(-1) + self.tau * mix_power  # [B]
        loss_active = 10 * torch.log10(err_active + self.eps) - 10 * torch.log10(ref_power + self.eps)
        loss_silent = 10 * torch.log10(err_silent + self.eps) - 10 * torch.log10(mix_power + self.eps)
        return torch.where(active, loss_active, loss_silent)


class SilencePITSolver(AbsLossWrapper):
    """Permutation-invariant training over all M! pairings with silent references allowed.

    Args:
        criterion: a :class:`ThresholdedSNRLoss`.
        weight: weight of this loss in the sum of ESPnet's criterions.
    """

    def __init__(self, criterion: ThresholdedSNRLoss, weight: float = 1.0):
        super().__init__()
        if not isinstance(criterion, ThresholdedSNRLoss):
            raise TypeError("wrapper use_silence_pit needs the criterion use_thresholded_snr, "
                            f"got {type(criterion).__name__}")
        self.criterion = criterion
        self.weight = weight

    def forward(
        self, ref: List[torch.Tensor], inf: List[torch.Tensor], others: Dict
    ) -> Tuple[torch.Tensor, Dict, Dict]:
        """Loss of the best pairing per utterance, averaged over outputs and the batch.

        Args:
            ref: M references [B, T] (silent ones padded in).
            inf: M outputs [B, T].
            others: unused.

        Returns:
            loss, stats (``thresholded_snr``, ``silent_output_db``), ``{"perm": [B, M]}``.
        """
        if len(ref) != len(inf):
            raise ValueError(f"use_silence_pit: {len(ref)} references and {len(inf)} outputs; "
                             "pad the references with silence to the number of outputs")
        num = len(ref)
        mixture = torch.stack(ref).sum(0)  # [B, T]
        pair = torch.stack([
            torch.stack([self.criterion(ref[r], inf[e], mixture) for e in range(num)], dim=-1)
            for r in range(num)
        ], dim=1)  # [B, R, E]
        perms = torch.tensor(list(itertools.permutations(range(num))), device=pair.device)  # [P, M]
        rows = torch.arange(num, device=pair.device)
        per_perm = pair[:, rows, perms].mean(-1)  # [B, P]
        best, index = per_perm.min(dim=1)  # [B]
        loss = best.mean()
        perm = perms[index]  # [B, M]: output paired with reference r
        with torch.no_grad():
            silent = torch.stack([r.pow(2).sum(-1) <= SILENT_POWER * r.size(-1) for r in ref], 1)  # [B, M]
            outputs = torch.stack(inf, 1).gather(1, perm[..., None].expand(-1, -1, inf[0].size(-1)))
            power_db = 10 * torch.log10(outputs.pow(2).sum(-1) + 1e-12) - 10 * torch.log10(
                mixture.pow(2).sum(-1, keepdim=True) + 1e-12)  # [B, M]
            silent_db = power_db[silent].mean() if silent.any() else torch.tensor(math.nan)
        stats = {self.criterion.name: loss.detach(), "silent_output_db": silent_db}
        return loss, stats, {"perm": perm}
