"""Permutation-invariant SI-SNR over a different number of sources per utterance."""
from typing import Optional, Tuple

import torch


def si_snr(est: torch.Tensor, ref: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant SNR in dB along the last axis (zero-mean), [...]."""
    est = est - est.mean(dim=-1, keepdim=True)
    ref = ref - ref.mean(dim=-1, keepdim=True)
    scale = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    target = scale * ref
    noise = est - target
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


class VariablePITSISNR(torch.nn.Module):
    """PIT SI-SNR loss where each utterance has its own number of sources.

    ESPnet's ``PITSolver`` needs one count for the whole batch (its
    ``flexible_numspk`` too), so it cannot serve mixtures of 1, 2 and 3 sources in
    one batch. Here the SI-SNR of every (estimate, reference) pair *within* an
    utterance is computed in one vectorised call (padded rows never enter a
    computation, so they cannot produce NaN gradients), and each utterance's
    assignment is solved exactly with the Hungarian algorithm (scipy), which for
    n <= 3 returns the same permutation as trying all of them.

    References that are silent (RMS <= ``silence_rms``, FUSS's rule) take part in the
    assignment with a neutral score but not in the loss.

    Args:
        clamp_db: clamp each SI-SNR to at most this (None: no clamp), so that solved
            sources stop dominating the gradient.
        silence_rms: references at or below this RMS count as inactive.
    """

    def __init__(self, clamp_db: Optional[float] = None, silence_rms: float = 1e-8):
        super().__init__()
        self.clamp_db = clamp_db
        self.silence_rms = silence_rms

    def forward(
        self, est: torch.Tensor, ref: torch.Tensor, counts: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Compute the loss.

        Args:
            est: estimates [B, S, T]; rows >= counts[b] are ignored.
            ref: references [B, S, T]; rows >= counts[b] are ignored.
            counts: sources per utterance [B], 1 <= counts[b] <= S.

        Returns:
            loss (negative mean SI-SNR over active references, per utterance then
            over the batch), mean SI-SNR in dB (detached), and ``perm`` [B, S]:
            ``perm[b, j]`` = the estimate assigned to reference j (-1 beyond the count).
        """
        assert est.shape == ref.shape and est.dim() == 3, (est.shape, ref.shape)
        B, S, _ = est.shape
        counts_list = counts.tolist()
        if min(counts_list) < 1 or max(counts_list) > S:
            raise ValueError(f"counts must lie in 1..{S}, got {counts_list}")
        # All (b, i, j) with i, j < n_b: estimate i against reference j.
        pairs = [(b, i, j) for b, n in enumerate(counts_list) for i in range(n) for j in range(n)]
        b_idx, i_idx, j_idx = (torch.tensor(v, device=est.device) for v in zip(*pairs))
        scores = si_snr(est[b_idx, i_idx], ref[b_idx, j_idx])  # [P]
        if self.clamp_db is not None:
            scores = scores.clamp(max=self.clamp_db)
        matrix = scores.new_full((B, S, S), float("-inf"))
        matrix[b_idx, i_idx, j_idx] = scores

        ref_rms = ref.pow(2).mean(-1).sqrt()  # [B, S]
        active = ref_rms > self.silence_rms
        matrix_np = matrix.detach().cpu().numpy()
        active_np = active.cpu().numpy()
        perm = torch.full((B, S), -1, dtype=torch.long)
        # scipy.optimize costs 0.3 s to import; inference (which imports this module
        # with the model) never needs it.
        from scipy.optimize import linear_sum_assignment

        for b, n in enumerate(counts_list):
            cost = matrix_np[b, :n, :n].copy()
            cost[:, ~active_np[b, :n]] = 0.0  # silent references: any estimate will do
            est_for, ref_for = linear_sum_assignment(cost, maximize=True)
            perm[b, ref_for] = torch.as_tensor(est_for)
        perm = perm.to(est.device)

        valid = (torch.arange(S, device=est.device)[None, :] < counts[:, None]) & active
        chosen = matrix.gather(1, perm.clamp(min=0)[:, None, :]).squeeze(1)  # [B, S]
        chosen = torch.where(valid, chosen, torch.zeros_like(chosen))
        n_active = valid.sum(1)  # [B]
        has_active = n_active > 0
        per_utt = chosen.sum(1)[has_active] / n_active[has_active]
        if per_utt.numel() == 0:
            # Every reference in the batch is silent: nothing to learn here.
            zero = est.sum() * 0.0
            return zero, torch.full_like(zero, float("nan")), perm
        mean_si_snr = per_utt.mean()
        return -mean_si_snr, mean_si_snr.detach(), perm


def existence_bce(logits: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """BCE of the existence head: 1 for attractors 1..n, 0 for attractor n+1.

    Args:
        logits: existence logits [B, S + 1] (S = the largest count).
        counts: true counts [B].
    """
    idx = torch.arange(logits.size(1), device=logits.device)[None, :]  # [1, S+1]
    target = (idx < counts[:, None]).float()
    weight = (idx <= counts[:, None]).float()  # attractors after n+1 are not judged
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, target, weight=weight, reduction="sum"
    )
    return loss / weight.sum()

