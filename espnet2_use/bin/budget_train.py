#!/usr/bin/env python3
"""ESPnet's stock ``enh`` or ``tse`` training, with a wall-clock budget.

    python -m espnet2_use.bin.budget_train enh --train_budget_seconds 600 ARGS...
    python -m espnet2_use.bin.budget_train tse --train_budget_seconds 600 ARGS...

ARGS are those of ``espnet2.bin.enh_train`` / ``espnet2.bin.enh_tse_train``; the task
is ESPnet's own, with ``espnet2_use.train.budget_trainer.BudgetTrainer`` as its
trainer. Used by the same-budget comparisons of the recipes (``local/run_compare.sh``).
"""
import sys
from typing import List, Optional

TASKS = ("enh", "tse")


def budget_task(name: str):
    """ESPnet's task class ``name`` with the budget trainer."""
    from espnet2_use.train.budget_trainer import BudgetTrainer

    if name == "enh":
        from espnet2.tasks.enh import EnhancementTask as Base
    elif name == "tse":
        from espnet2.tasks.enh_tse import TargetSpeakerExtractionTask as Base
    else:
        raise ValueError(f"task must be one of {TASKS}, got {name!r}")
    return type(f"Budget{Base.__name__}", (Base,), {"trainer": BudgetTrainer})


def main(cmd: Optional[List[str]] = None) -> None:
    cmd = list(sys.argv[1:] if cmd is None else cmd)
    if not cmd or cmd[0] not in TASKS:
        sys.exit(f"usage: python -m espnet2_use.bin.budget_train {{{','.join(TASKS)}}} ARGS...")
    budget_task(cmd[0]).main(cmd=cmd[1:])


if __name__ == "__main__":
    main()
