#!/usr/bin/env python3
"""ESPnet's stock ``enh`` or ``tse`` training, with a wall-clock budget.

    python -m espnet2_use.bin.budget_train enh --train_budget_seconds 600 ARGS...
    python -m espnet2_use.bin.budget_train tse --train_budget_seconds 600 ARGS...

ARGS are those of ``espnet2.bin.enh_train`` / ``espnet2.bin.enh_tse_train``; the task
is ESPnet's own, with ``espnet2_use.train.budget_trainer.BudgetTrainer`` as its
trainer. Used by the same-budget comparisons of the recipes (``local/run_compare.sh``).
"""
import argparse
import sys
from typing import List, Optional

TASKS = ("enh", "tse")


def budget_task(name: str):
    """ESPnet's task class ``name`` with the budget trainer; the ``enh`` one also takes
    ``preprocessor_conf.active_crop_min_active`` (USE's crop rule,
    ``espnet2_use.train.active_crop``)."""
    from espnet2_use.train.budget_trainer import BudgetTrainer

    if name == "enh":
        from espnet2.tasks.enh import EnhancementTask as Base
    elif name == "tse":
        from espnet2.tasks.enh_tse import TargetSpeakerExtractionTask as Base
    else:
        raise ValueError(f"task must be one of {TASKS}, got {name!r}")

    class BudgetTask(Base):
        trainer = BudgetTrainer

        @classmethod
        def build_preprocess_fn(cls, args, train):
            from espnet2_use.train.active_crop import CONF_KEY, ActiveCrop

            conf = dict(getattr(args, "preprocessor_conf", None) or {})
            if name != "enh" or CONF_KEY not in conf:
                return super().build_preprocess_fn(args, train)
            min_active = conf.pop(CONF_KEY)
            inner_args = argparse.Namespace(**vars(args))
            inner_args.preprocessor_conf, inner_args.speech_segment = conf, None
            inner = super().build_preprocess_fn(inner_args, train)
            return ActiveCrop(inner, getattr(args, "speech_segment", None), min_active, train)

    BudgetTask.__name__ = BudgetTask.__qualname__ = f"Budget{Base.__name__}"
    return BudgetTask


def main(cmd: Optional[List[str]] = None) -> None:
    cmd = list(sys.argv[1:] if cmd is None else cmd)
    if not cmd or cmd[0] not in TASKS:
        sys.exit(f"usage: python -m espnet2_use.bin.budget_train {{{','.join(TASKS)}}} ARGS...")
    budget_task(cmd[0]).main(cmd=cmd[1:])


if __name__ == "__main__":
    main()
