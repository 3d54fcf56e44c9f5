"""Attractor-cue alignment: one semantic space for separation and extraction."""
from typing import Optional, Tuple

import torch


class AttractorCueAlignment(torch.nn.Module):
    """L_align = MSE(a_pi(k), c_k) + InfoNCE(attractors, cues), and matching accuracy.

    pi is the permutation PIT chose for the separation loss: ``perm[b, k]`` is the
    attractor (estimate) assigned to source k of utterance b. Every cue c_k is pulled
    towards its assigned attractor (MSE) and contrasted against every other
    attractor of the batch (InfoNCE on cosine similarity / temperature), so that the
    attractors of other sounds, in the same mixture or in others, are negatives.
    When the sources' classes are known (their label cues), an attractor assigned
    to a source of the cue's own class in another mixture is no negative: it is the
    same kind of sound, and pushing it away would tear the class apart in the
    shared space. It leaves the softmax's denominator.

    Args:
        temperature: InfoNCE temperature.
        mse_weight: weight of the MSE term.
        nce_weight: weight of the InfoNCE term.
        within_weight: weight of a cross-entropy over the attractors of the cue's own
            mixture only (the decision that matching accuracy scores); 0: none.

    References:
        USE, arXiv 2512.21215; A. van den Oord et al., "Representation learning with
        contrastive predictive coding", 2018 (InfoNCE).
    """

    def __init__(
        self,
        temperature: float = 0.1,
        mse_weight: float = 1.0,
        nce_weight: float = 1.0,
        within_weight: float = 0.0,
    ):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if within_weight < 0:
            raise ValueError(f"within_weight must be >= 0, got {within_weight}")
        self.temperature = temperature
        self.mse_weight = mse_weight
        self.nce_weight = nce_weight
        self.within_weight = within_weight

    def forward(
        self,
        attractors: torch.Tensor,
        counts: torch.Tensor,
        cues: torch.Tensor,
        cue_valid: torch.Tensor,
        perm: torch.Tensor,
        classes: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Compute the alignment terms.

        Args:
            attractors: [B, S, D] (rows >= counts[b] are not attractors of b).
            counts: [B] number of sources (= attractors used) per utterance.
            cues: cue vectors of the sources [B, S, D].
            cue_valid: [B, S] whether source k has a cue.
            perm: [B, S] attractor assigned to source k (-1 beyond the count).
            classes: [B, S] class id of source k (-1: unknown), or None.

        Returns:
            loss (weighted sum), mse, nce, matching accuracy (all scalars; the last
            three detached; NaN where no cue is valid).
        """
        B, S, D = attractors.shape
        valid_cue = cue_valid & (perm >= 0)  # [B, S]
        if not bool(valid_cue.any()):
            nan = attractors.new_tensor(float("nan"))
            return attractors.sum() * 0.0, nan, nan, nan
        b_idx, k_idx = valid_cue.nonzero(as_tuple=True)  # [P]
        c = cues[b_idx, k_idx]  # [P, D]
        target_att = perm[b_idx, k_idx]  # [P]
        a_pos = attractors[b_idx, target_att]  # [P, D]
        mse = (a_pos - c).pow(2).mean()

        att_valid = torch.arange(S, device=counts.device)[None, :] < counts[:, None]  # [B, S]
        flat_att = torch.nn.functional.normalize(attractors.reshape(B * S, D), dim=-1)
        sim = torch.nn.functional.normalize(c, dim=-1) @ flat_att.t()  # [P, B*S]
        sim = sim.masked_fill(~att_valid.reshape(1, B * S), float("-inf"))
        target = b_idx * S + target_att  # [P]
        if classes is not None:
            # Class of each attractor: that of the source PIT assigned it.
            att_class = classes.new_full((B, S), -1)
            assigned = perm >= 0
            att_class[assigned.nonzero(as_tuple=True)[0], perm[assigned]] = classes[assigned]
            cue_class = classes[b_idx, k_idx]  # [P]
            same = (cue_class[:, None] == att_class.reshape(1, B * S)) & (cue_class[:, None] >= 0)
            same[torch.arange(target.numel(), device=sim.device), target] = False
            sim_nce = sim.masked_fill(same, float("-inf"))
        else:
            sim_nce = sim
        nce = torch.nn.functional.cross_entropy(sim_nce / self.temperature, target)

        # Matching accuracy: among the attractors of the cue's own mixture.
        own = sim.view(-1, B, S)[torch.arange(b_idx.numel(), device=sim.device), b_idx]  # [P, S]
        match = (own.argmax(dim=-1) == target_att).float().mean()
        loss = self.mse_weight * mse + self.nce_weight * nce
        if self.within_weight > 0:
            # The matching decision itself: the cue against its own mixture's attractors.
            within = torch.nn.functional.cross_entropy(own / self.temperature, target_att)
            loss = loss + self.within_weight * within
        return loss, mse.detach(), nce.detach(), match.detach()
