"""The existence loss of USE's EDA inside ESPnet's ``enh`` task.

ESPnet's enhancement model sums the losses of its ``criterions`` list; each entry
is a criterion wrapped by a loss wrapper that receives the references, the estimates
and the separator's ``others`` dict. ``separator: use`` puts its existence logits in
``others``; this wrapper turns the batch's reference count (with
``flexible_numspk: true``, the number of ``speech_ref*`` of the batch) into the
EDA's targets (1 for attractors 1..n, 0 for attractor n+1) and the criterion
scores them with binary cross-entropy, as USE's own task does. In a config::

    criterions:
      - name: si_snr
        conf: {eps: 1.0e-7}
        wrapper: pit
        wrapper_conf: {weight: 1.0, independent_perm: true, flexible_numspk: true}
      - name: use_existence
        wrapper: use_existence
        wrapper_conf: {weight: 1.0}

Both are registered in ``espnet2.tasks.enh`` under ``use_existence`` (see
``espnet2_use.espnet_hooks``). The stats are ``existence`` (the BCE) and
``count_acc`` (the share of utterances whose EDA count equals the reference count).
"""
from typing import Dict, List, Tuple

import torch

from espnet2.enh.loss.criterions.time_domain import TimeDomainLoss
from espnet2.enh.loss.wrappers.abs_wrapper import AbsLossWrapper
from espnet2_use.loss.variable_pit import existence_bce


class USEExistenceLoss(TimeDomainLoss):
    """Binary cross-entropy of existence logits against the true count.

    A time-domain criterion only by ESPnet's dispatch (it is called through
    :class:`USEExistenceSolver`, which hands it logits and counts, not signals).

    Args:
        name: stats key of the loss.
        only_for_test: compute it only in validation.
    """

    def __init__(self, name: str = "existence", only_for_test: bool = False):
        super().__init__(name, only_for_test=only_for_test)

    def forward(self, logits: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Mean BCE over attractors 1..n+1 of each utterance.

        Args:
            logits: existence logits [B, A] with A >= max(counts) + 1.
            counts: true counts [B] (long).

        Returns:
            the loss, a scalar.
        """
        if logits.dim() != 2 or logits.size(1) < int(counts.max()) + 1:
            raise ValueError(
                f"{self.name}: needs existence logits [B, >= count + 1], got "
                f"{tuple(logits.shape)} for counts up to {int(counts.max())}"
            )
        return existence_bce(logits, counts)


class USEExistenceSolver(AbsLossWrapper):
    """Loss wrapper that reads ``existence_logits`` from the separator's ``others``.

    Args:
        criterion: a :class:`USEExistenceLoss`.
        weight: weight of this loss in the sum of ESPnet's criterions.
    """

    def __init__(self, criterion: USEExistenceLoss, weight: float = 1.0):
        super().__init__()
        if not isinstance(criterion, USEExistenceLoss):
            raise TypeError(
                "wrapper use_existence needs the criterion use_existence, got "
                f"{type(criterion).__name__}"
            )
        self.criterion = criterion
        self.weight = weight

    def forward(
        self, ref: List[torch.Tensor], inf: List[torch.Tensor], others: Dict
    ) -> Tuple[torch.Tensor, Dict, Dict]:
        """Existence loss of the batch.

        Args:
            ref: references, one tensor [B, ...] per source of the batch.
            inf: estimates (unused: their number is the separator's, not the truth).
            others: the separator's extra outputs, with ``existence_logits``.

        Returns:
            loss, stats (``existence``, ``count_acc``) and an empty dict.
        """
        logits = others.get("existence_logits")
        if logits is None:
            raise ValueError(
                "criterion use_existence needs a separator that returns "
                "'existence_logits' in its others (separator: use); got keys "
                f"{sorted(others)}"
            )
        counts = torch.full(
            (logits.size(0),), len(ref), dtype=torch.long, device=logits.device
        )
        loss = self.criterion(logits, counts)
        with torch.no_grad():
            exists = torch.sigmoid(logits) >= 0.5
            counted = exists.long().cumprod(dim=1).sum(dim=1)
            count_acc = (counted == counts).float().mean()
        stats = {self.criterion.name: loss.detach(), "count_acc": count_acc}
        return loss, stats, {}
