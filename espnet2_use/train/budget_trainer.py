"""ESPnet's trainer with a wall-clock budget: ``--train_budget_seconds``.

Systems compared "at the same budget" must stop after the same training time, not
the same number of epochs: a model whose step is twice as costly sees half the
data. ``BudgetTrainer`` ends the epoch that is running when the budget is used up
(the partial epoch is validated and saved as any other), then stops (through
ESPnet's early-stopping check, so its log says "[Early stopping]"). The time
already used is kept in ``<output_dir>/train_budget_used`` at every epoch start, so
a killed run resumed with ``--resume true`` continues with what is left; at the end
it holds the run's whole training time (with or without a budget).

Any ESPnet task gets it by naming it as its ``trainer`` (see
``espnet2_use.bin.budget_train`` for the stock ``enh`` and ``tse`` tasks).
"""
import argparse
import dataclasses
import logging
import time
from pathlib import Path
from typing import Iterator, Optional, Tuple

import torch

from espnet2.train.trainer import Trainer, TrainerOptions
from espnet2.utils.build_dataclass import build_dataclass
from espnet2.utils.types import float_or_none

USED_FILE = "train_budget_used"


@dataclasses.dataclass
class BudgetTrainerOptions(TrainerOptions):
    train_budget_seconds: Optional[float] = None


class BudgetTrainer(Trainer):
    """``Trainer`` that stops once ``train_budget_seconds`` of training have passed.

    The budget counts wall-clock time from the start of the first epoch (training
    and validation of every epoch included) over all resumed runs of one output
    directory. ``None`` (the default): ESPnet's trainer as it is.
    """

    _deadline: Optional[float] = None
    _output_dir: Optional[Path] = None
    _started: float = 0.0
    _used_before: float = 0.0

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("Training budget")
        group.add_argument(
            "--train_budget_seconds",
            type=float_or_none,
            default=None,
            help="Stop training after this many wall-clock seconds (the running epoch "
            "ends early and is validated and saved); None: train max_epoch epochs.",
        )

    @classmethod
    def build_options(cls, args: argparse.Namespace) -> BudgetTrainerOptions:
        return build_dataclass(BudgetTrainerOptions, args)

    @classmethod
    def run(cls, *args, **kwargs) -> None:
        options = kwargs.get("trainer_options")
        budget = getattr(options, "train_budget_seconds", None)
        if budget is not None and budget <= 0:
            raise ValueError(f"--train_budget_seconds must be positive, got {budget}")
        cls._output_dir = Path(options.output_dir) if options is not None else None
        cls._used_before = cls._read_used() if getattr(options, "resume", False) else 0.0
        cls._started = time.perf_counter()
        cls._deadline = None if budget is None else cls._started + budget - cls._used_before
        if budget is not None:
            logging.info(
                f"training budget: {budget:.0f} s ({cls._used_before:.0f} s used before)"
            )
        super().run(*args, **kwargs)
        cls._write_used()  # the total: what a same-budget comparison reads

    @classmethod
    def used_seconds(cls) -> float:
        """Training time used so far in this output directory."""
        return cls._used_before + time.perf_counter() - cls._started

    @classmethod
    def _read_used(cls) -> float:
        path = cls._output_dir / USED_FILE if cls._output_dir is not None else None
        if path is None or not path.exists():
            return 0.0
        try:
            return float(path.read_text().split()[0])
        except (ValueError, IndexError) as e:
            raise ValueError(f"{path}: expected the seconds used as a number") from e

    @staticmethod
    def _distributed() -> bool:
        return torch.distributed.is_available() and torch.distributed.is_initialized()

    @classmethod
    def _write_used(cls) -> None:
        # Data-parallel ranks share the output directory: rank 0 alone writes it.
        if cls._output_dir is None or (cls._distributed() and torch.distributed.get_rank() != 0):
            return
        cls._output_dir.mkdir(parents=True, exist_ok=True)
        tmp = cls._output_dir / f".{USED_FILE}.tmp"
        tmp.write_text(f"{cls.used_seconds():.1f}\n")
        tmp.replace(cls._output_dir / USED_FILE)

    @classmethod
    def _until_deadline(cls, iterator) -> "_UntilDeadline":
        return _UntilDeadline(iterator, cls)

    @classmethod
    def _past_deadline(cls) -> bool:
        """Whether the budget is used up; on data-parallel ranks, whether it is on any
        of them (the ranks' clocks differ by a little, their decision must not)."""
        past = cls._deadline is not None and time.perf_counter() >= cls._deadline
        if cls._deadline is not None and cls._distributed():
            flag = torch.tensor([int(past)])
            torch.distributed.all_reduce(flag, torch.distributed.ReduceOp.MAX)
            past = bool(flag.item())
        return past

    @classmethod
    def train_one_epoch(cls, model, iterator, *args, **kwargs) -> bool:
        cls._write_used()
        if cls._past_deadline():
            # ESPnet's loop stops after an epoch without a valid step.
            logging.info("training budget used up: stopping")
            return True
        invalid = super().train_one_epoch(model, cls._until_deadline(iterator), *args, **kwargs)
        options = kwargs.get("options")
        if cls._past_deadline() and options is not None:
            # This epoch is validated and saved as usual; then ESPnet's early-stopping
            # check (which runs after the saving) ends the loop: with patience -1 it
            # always stops, sparing a closing epoch that would only validate.
            options.patience = -1
        return invalid


class _UntilDeadline:
    """An epoch's batch iterator that ends at the trainer's deadline (keeps ``len``,
    which ESPnet's trainer reads for its log interval)."""

    def __init__(self, iterator, trainer: type):
        self.iterator = iterator
        self.trainer = trainer

    def __len__(self) -> int:
        return len(self.iterator)

    def __iter__(self) -> Iterator[Tuple]:
        for item in self.iterator:
            deadline = self.trainer._deadline
            if deadline is not None and time.perf_counter() >= deadline:
                logging.info(
                    f"training budget used up after {self.trainer.used_seconds():.0f} s: "
                    "this epoch ends here, and training stops after it"
                )
                return
            yield item
