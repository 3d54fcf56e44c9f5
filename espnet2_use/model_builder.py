"""How a USEModel is built from its config: the one place, for training and inference.

``USETask.build_model`` (training, through ESPnet's task) and ``USE.from_files``
(inference) both call :func:`build_use_model`. It imports only the classes the config
names, by module path, and nothing of ESPnet's task modules: those pull in the
training collate function, the preprocessor, tokenizers, g2p and transformers'
wav2vec2 (about 10 s of start-up), none of which a trained model needs to run.

ESPnet's encoders and decoders are named here as ``"module:Class"`` strings; a test
(``test/test_light_inference.py``) checks the tables against ESPnet's own
``encoder_choices`` / ``decoder_choices``, so they cannot drift apart.
"""
import argparse
import importlib
import inspect
import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import torch

from espnet2_use.cue import cue_encoder_choices, cue_encoder_specs
from espnet2_use.cue.cue_network import USECueNetwork
from espnet2_use.espnet_model import USEModel
from espnet2_use.separator.use_separator import USESeparator, backbone_choices

# ESPnet's enh task's encoder_choices / decoder_choices, by name -> "module:Class".
ENCODERS: Dict[str, str] = {
    "stft": "espnet2.enh.encoder.stft_encoder:STFTEncoder",
    "conv": "espnet2.enh.encoder.conv_encoder:ConvEncoder",
    "same": "espnet2.enh.encoder.null_encoder:NullEncoder",
}
DECODERS: Dict[str, str] = {
    "stft": "espnet2.enh.decoder.stft_decoder:STFTDecoder",
    "conv": "espnet2.enh.decoder.conv_decoder:ConvDecoder",
    "same": "espnet2.enh.decoder.null_decoder:NullDecoder",
}
# The USE model needs USE's separator (trunk / attractors / mask head).
SEPARATORS: Dict[str, type] = {"use": USESeparator}
DEFAULTS = {"encoder": "stft", "decoder": "stft", "separator": "use"}  # the task's defaults


def _import_class(kind: str, name: Optional[str], table: Mapping[str, Any]) -> type:
    if not isinstance(name, str) or name.lower() not in table:
        raise ValueError(f"{kind}: {name!r} is not one of {', '.join(sorted(table))}")
    target = table[name.lower()]
    if not isinstance(target, str):
        return target
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def _conf(args: Union[argparse.Namespace, Mapping], key: str, default: Any = None) -> Any:
    value = args.get(key, default) if isinstance(args, Mapping) else getattr(args, key, default)
    return default if value is None else value


def separator_conf_with_rate(args: Union[argparse.Namespace, Mapping]) -> Dict:
    """``separator_conf`` with the task's ``sample_rate`` handed to a backbone that takes one.

    The sample rate is set once, as ``sample_rate``; a backbone that lays out its
    bands by frequency (``use_b``: ``fs``) gets it from there. A ``backbone_conf.fs``
    in the config must equal it.
    """
    conf = dict(_conf(args, "separator_conf", {}))
    name = conf.get("backbone", inspect.signature(USESeparator).parameters["backbone"].default)
    backbone = backbone_choices.get(name)
    if backbone is None or "fs" not in inspect.signature(backbone).parameters:
        return conf
    rate = _conf(args, "sample_rate")
    backbone_conf = dict(conf.get("backbone_conf") or {})
    given = backbone_conf.get("fs")
    if rate is None:
        return conf
    if given is not None and int(given) != int(rate):
        raise ValueError(
            f"separator_conf.backbone_conf.fs {given} differs from sample_rate {rate}: the "
            "sample rate is set once, as sample_rate (drop backbone_conf.fs)"
        )
    backbone_conf["fs"] = int(rate)
    conf["backbone_conf"] = backbone_conf
    return conf


def build_use_model(
    args: Union[argparse.Namespace, Mapping], initialize: bool = True
) -> USEModel:
    """A USEModel from a training config (the task's namespace, or its YAML as a dict).

    Args:
        args: ``encoder`` / ``separator`` / ``decoder`` and their ``*_conf``,
            ``cue_encoders``, ``cue_example``, ``cue_fusion_conf``, ``sample_rate``,
            ``model_conf``, ``init``.
        initialize: apply ``init`` (ESPnet's weight initialisation). Inference skips
            it: the trained weights are loaded over every parameter.
    """
    encoder_cls = _import_class("encoder", _conf(args, "encoder", DEFAULTS["encoder"]), ENCODERS)
    encoder = encoder_cls(**_conf(args, "encoder_conf", {}))
    separator_cls = _import_class("separator", _conf(args, "separator", DEFAULTS["separator"]), SEPARATORS)
    separator = separator_cls(encoder.output_dim, **separator_conf_with_rate(args))
    decoder_cls = _import_class("decoder", _conf(args, "decoder", DEFAULTS["decoder"]), DECODERS)
    decoder = decoder_cls(**_conf(args, "decoder_conf", {}))
    cue_encoders = cue_encoder_specs(_conf(args, "cue_encoders"), _conf(args, "cue_example", False))
    cue_network = None
    if cue_encoders:
        cue_network = USECueNetwork(
            separator.emb_dim,
            encoders=cue_encoders,
            fusion_conf=_conf(args, "cue_fusion_conf"),
            sample_rate=_conf(args, "sample_rate"),
        )
    model = USEModel(
        encoder=encoder,
        separator=separator,
        decoder=decoder,
        cue_network=cue_network,
        **_conf(args, "model_conf", {}),
    )
    init = _conf(args, "init")
    if initialize and init is not None:
        from espnet2.torch_utils.initialize import initialize as espnet_initialize

        espnet_initialize(model, init)
    return model


def read_weights(model_file: Union[str, Path], device: str = "cpu") -> Dict[str, torch.Tensor]:
    """A trained state dict, read as ESPnet's ``build_model_from_file`` reads it.

    As there: ``map_location`` is the device ("cuda": the current CUDA device; "mps":
    the CPU), and a DeepSpeed checkpoint's ``module`` entry is unwrapped. Unlike there,
    the file is read with ``weights_only=True``: a state dict is tensors only, and a
    packed model from elsewhere then cannot run code when it is opened.

    Raises:
        ValueError: the file is not a state dict (naming the file).
    """
    if device == "cuda":
        device = f"cuda:{torch.cuda.current_device()}"
    try:
        state = torch.load(model_file, map_location="cpu" if device == "mps" else device,
                           weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        raise ValueError(f"{model_file}: cannot load the model weights ({e})") from e
    if isinstance(state, Mapping) and "module" in state:
        state = state["module"]
    if not isinstance(state, Mapping):
        raise ValueError(f"{model_file}: cannot load the model weights (not a state dict: "
                         f"{type(state).__name__})")
    return dict(state)


def conf_from_weights(conf: Mapping, state: Mapping[str, torch.Tensor]) -> Dict:
    """The config with what the weights show filled into its cue encoders' confs
    (``AbsCueEncoder.conf_from_weights``: a frozen network's feature size, a
    tokenizer's piece count), so that building the model for inference loads no
    frozen network or tokenizer. The config itself is not changed."""
    conf = dict(conf)
    specs = {}
    for modality, spec in (conf.get("cue_encoders") or {}).items():
        cls = cue_encoder_choices.get(str(spec.get("type")).lower()) if isinstance(spec, dict) else None
        if cls is not None:
            prefix = f"cue_network.encoders.{modality}."  # USEModel.cue_network.encoders
            spec = dict(spec, conf=cls.conf_from_weights(dict(spec.get("conf") or {}), state, prefix))
        specs[modality] = spec  # a malformed spec is reported by the builder
    if specs:
        conf["cue_encoders"] = specs
    return conf


def load_weights(model: torch.nn.Module, state: Mapping[str, torch.Tensor],
                 model_file: Union[str, Path]) -> None:
    """Load ``read_weights``'s state dict into ``model``, as ESPnet does: keys are
    matched non-strictly (missing and unexpected ones are logged here, by name), and
    a tensor of the wrong shape is an error.

    Raises:
        ValueError: the weights do not fit the model (naming the file).
    """
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise ValueError(f"{model_file}: cannot load the model weights ({e})") from e
    if result.missing_keys:
        logging.warning("%s: no weights for %s (left as built)", model_file, ", ".join(result.missing_keys))
    if result.unexpected_keys:
        logging.warning("%s: weights not in the model, ignored: %s", model_file,
                        ", ".join(result.unexpected_keys))
