"""The ``use`` task: training and inference of USEModel on ESPnet's trainer."""
import argparse
from typing import Callable, Collection, Dict, List, Optional, Tuple

import numpy as np
import torch
from typeguard import typechecked

from espnet2.tasks.abs_task import AbsTask
from espnet2.tasks.enh import decoder_choices, encoder_choices
from espnet2.train.class_choices import ClassChoices
from espnet2.train.collate_fn import CommonCollateFn
from espnet2.utils.get_default_kwargs import get_default_kwargs
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import int_or_none, str2bool, str_or_none
from espnet2_use.data.layout import REFERENCE, SOURCE_FILES
from espnet2_use.espnet_model import USEModel
from espnet2_use.model_builder import SEPARATORS, build_use_model
from espnet2_use.model_builder import separator_conf_with_rate  # noqa: F401 (its old home)
from espnet2_use.separator.use_separator import USESeparator
from espnet2_use.train.budget_trainer import BudgetTrainer
from espnet2_use.train.preprocessor import USEPreprocessor

# The USE model needs USE's separator (trunk / attractors / mask head), so this
# task offers only that one; ESPnet's enh task lists it among all others.
use_separator_choices = ClassChoices(
    name="separator",
    classes=dict(SEPARATORS),
    type_check=USESeparator,
    default="use",
)

MAX_SOURCES = 16


class USETask(AbsTask):
    """Sound separation with an unknown count and multimodal target extraction (USE).

    Data names: ``speech_mix`` (wav.scp), ``num_src`` (utt2num_src, ``text_int``), and
    per source k the batch names of the layout table (``espnet2_use.data.layout``):
    ``speech_ref{k}`` (spk{k}.scp; an absent source is a zero-length wav) and the cues,
    e.g. ``text_spk{k}`` (captions; spm text encoder), ``text_emb_spk{k}`` /
    ``video_emb_spk{k}`` (cached frozen-encoder features), ``label_spk{k}`` (class
    names), ``enroll_ref{k}`` (audio examples).
    """

    num_optimizers: int = 1
    class_choices_list = [encoder_choices, use_separator_choices, decoder_choices]
    # ESPnet's trainer, plus --train_budget_seconds (same-budget comparisons).
    trainer = BudgetTrainer

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group(description="Task related")
        group.add_argument(
            "--init",
            type=lambda x: str_or_none(x.lower()),
            default=None,
            help="The initialization method",
            choices=["chainer", "xavier_uniform", "xavier_normal", "kaiming_uniform",
                     "kaiming_normal", None],
        )
        group.add_argument(
            "--model_conf",
            action=NestedDictAction,
            default=get_default_kwargs(USEModel),
            help="The keyword arguments for the model class (USEModel).",
        )
        group.add_argument(
            "--cue_encoders",
            action=NestedDictAction,
            default=dict(),
            help="Cue encoders per modality: {text: {type: hf|spm, conf: {...}}, label: "
            "{type: embedding, conf: {label_list: ...}}, video: {type: timm, conf: {...}}, "
            "example: {type: audio}}. Empty: no cue network (separation only, training stage 1).",
        )
        group.add_argument(
            "--cue_example",
            type=str2bool,
            default=False,
            help="Shorthand of cue_encoders.example: {type: audio} (an audio example, "
            "enroll_ref{k}, is a cue modality).",
        )
        group.add_argument(
            "--cue_fusion_conf",
            action=NestedDictAction,
            default=dict(),
            help="Keyword arguments of CueFusion (num_heads, dropout, modality_dropout).",
        )
        group = parser.add_argument_group(description="Preprocess related")
        group.add_argument(
            "--sample_rate", type=int, default=8000, help="Sampling rate of the data (Hz)."
        )
        group.add_argument(
            "--speech_segment",
            type=int_or_none,
            default=None,
            help="Train on random crops of this many samples (sources that do not sound "
            "in a crop are dropped and the count recomputed); None: whole mixtures.",
        )
        group.add_argument(
            "--crop_min_active",
            type=float,
            default=0.125,
            help="With --speech_segment: a source counts in a crop when it sounds in at "
            "least this share of it; a shorter sliver is taken out of the crop's mixture "
            "too (0: any sound counts).",
        )
        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)

    @classmethod
    @typechecked
    def build_collate_fn(cls, args: argparse.Namespace, train: bool) -> Callable[
        [Collection[Tuple[str, Dict[str, np.ndarray]]]],
        Tuple[List[str], Dict[str, torch.Tensor]],
    ]:
        # Ids are padded with 0: padding is masked by lengths, and 0 is a valid
        # embedding row where -1 would not be.
        return CommonCollateFn(float_pad_value=0.0, int_pad_value=0, not_sequence=["num_src"])

    @classmethod
    @typechecked
    def build_preprocess_fn(
        cls, args: argparse.Namespace, train: bool
    ) -> Optional[Callable[[str, Dict[str, np.array]], Dict[str, np.ndarray]]]:
        return USEPreprocessor(
            train=train,
            cue_encoders=getattr(args, "cue_encoders", None) or {},
            sample_rate=getattr(args, "sample_rate", None),
            segment=getattr(args, "speech_segment", None),
            min_active=getattr(args, "crop_min_active", 0.125),
        )

    @classmethod
    def required_data_names(
        cls, train: bool = True, inference: bool = False
    ) -> Tuple[str, ...]:
        return ("speech_mix",) if inference else ("speech_mix", "speech_ref1")

    @classmethod
    def optional_data_names(
        cls, train: bool = True, inference: bool = False
    ) -> Tuple[str, ...]:
        names = [REFERENCE.name(k) for k in range(2, MAX_SOURCES + 1)]
        names += ["num_src", REFERENCE.name(1)]
        for k in range(1, MAX_SOURCES + 1):
            names += [row.name(k) for row in SOURCE_FILES if row is not REFERENCE]
        return tuple(names)

    @classmethod
    @typechecked
    def build_model(cls, args: argparse.Namespace) -> USEModel:
        # One builder for training and inference (espnet2_use.model_builder).
        return build_use_model(args)
