"""USE joins ESPnet's own tasks when ESPnet loads them, not before.

``import espnet2_use`` calls :func:`install`, which costs a dictionary and one entry
in ``sys.meta_path`` and imports nothing of ESPnet. From then on, in that process:

- when ``espnet2.tasks.enh`` finishes loading, ``separator: use`` joins its
  ``separator_choices``, the existence loss joins ``criterion_choices``
  (``use_existence``) and ``loss_wrapper_choices`` (``use_existence``), FUSS's loss
  for a fixed number of outputs and silent references (the unknown-count peer of
  ``local/compare.py``) joins them as ``use_thresholded_snr`` / ``use_silence_pit``, and models
  built by ``EnhancementTask.build_model`` with ``flexible_numspk: true`` count
  their sources at inference (``USESeparator.count_sources``);
- when ``espnet2.tasks.enh_tse`` finishes loading, ``extractor: use`` joins its
  ``extractor_choices``;
- when ``espnet2.bin.enh_inference`` finishes loading, ``SeparateSpeech`` returns
  only the counted sources of a counting USE model, so that ``enh_inference``
  writes ``spk{k}.scp`` entries for the sources the EDA counted and no others (the
  layout ``enh_scoring --flexible_numspk true`` reads), and its ``inference`` leaves
  ``spk1.scp`` .. ``spk{num_spk}.scp`` in the output folder (empty where no utterance
  had that many), which ``enh.sh``'s stage 7 concatenates;
- while ``g2p_en`` loads (ESPnet's phoneme tokenizer imports it), NLTK's downloader
  is not called: on an offline machine it prints connection errors on every start.
  USE never tokenizes phonemes; a program that does gets NLTK's own ``LookupError``
  naming the missing resource when it first uses ``g2p_en``. Set
  ``ESPNET2_USE_NLTK_DOWNLOAD=1`` to let the download happen.

Modules already loaded when :func:`install` runs get the same treatment at once.
Programs that never import ``espnet2_use`` (plain ``python``) are not touched.
"""
import contextlib
import functools
import importlib.abc
import os
import sys
import threading
from types import ModuleType
from typing import Any, Callable, Dict, Iterator, Optional

NAME = "use"
EXISTENCE = "use_existence"
THRESHOLDED_SNR = "use_thresholded_snr"
SILENCE_PIT = "use_silence_pit"
NLTK_ENV = "ESPNET2_USE_NLTK_DOWNLOAD"

_lock = threading.RLock()
_done: set = set()


def _add(choices: Any, name: str, cls: type) -> None:
    registered = choices.classes.get(name)
    if registered is not None and registered is not cls:
        raise RuntimeError(
            f"--{choices.name} {name} is already registered to {registered}; "
            f"cannot register {cls}"
        )
    choices.classes[name] = cls


def _after_enh(module: ModuleType) -> None:
    from espnet2_use.loss.existence import USEExistenceLoss, USEExistenceSolver
    from espnet2_use.loss.thresholded_snr import SilencePITSolver, ThresholdedSNRLoss
    from espnet2_use.separator.use_separator import USESeparator

    _add(module.separator_choices, NAME, USESeparator)
    _add(module.criterion_choices, EXISTENCE, USEExistenceLoss)
    _add(module.loss_wrapper_choices, EXISTENCE, USEExistenceSolver)
    _add(module.criterion_choices, THRESHOLDED_SNR, ThresholdedSNRLoss)
    _add(module.loss_wrapper_choices, SILENCE_PIT, SilencePITSolver)
    task = module.EnhancementTask
    if getattr(task.build_model, "_use_counting", False):
        return
    build = task.build_model.__func__

    @functools.wraps(build)
    def build_model(cls, args):
        model = build(cls, args)
        separator = getattr(model, "separator", None)
        if isinstance(separator, USESeparator):
            # flexible_numspk: the count varies, so inference counts with the EDA.
            separator.count_sources = bool(getattr(model, "flexible_numspk", False))
        return model

    build_model._use_counting = True
    task.build_model = classmethod(build_model)


def _after_enh_tse(module: ModuleType) -> None:
    from espnet2_use.extractor.use_extractor import USEExtractor

    _add(module.extractor_choices, NAME, USEExtractor)


def counted_sources(call: Callable) -> Callable:
    """Wrap ``SeparateSpeech.__call__``: a counting USE model returns its counted sources.

    The separator zeroes the outputs past each utterance's count; this keeps the
    first ``max(count)`` outputs of the batch (``enh_inference`` decodes one
    utterance at a time, so exactly its count). Other models are unaffected.

    Args:
        call: the original ``SeparateSpeech.__call__``.
    """
    if getattr(call, "_use_counting", False):
        return call

    @functools.wraps(call)
    def __call__(self, *args, **kwargs):
        from espnet2_use.separator.use_separator import USESeparator

        separator = getattr(self.enh_model, "separator", None)
        if not (isinstance(separator, USESeparator) and getattr(separator, "count_sources", False)):
            return call(self, *args, **kwargs)
        seen = []

        def record(module, inputs, output):
            counts = output[2].get("num_sources")
            if counts is not None:
                seen.append(int(counts.max()))

        handle = separator.register_forward_hook(record)
        try:
            waves = call(self, *args, **kwargs)
        finally:
            handle.remove()
        return list(waves[: max(seen)]) if seen else waves

    __call__._use_counting = True
    return __call__


def every_output_list(inference: Callable) -> Callable:
    """Wrap ``enh_inference.inference``: a counting USE model leaves ``spk1.scp`` ..
    ``spk{num_spk}.scp`` in its output folder, empty where no utterance of the job had
    that many sources.

    ESPnet writes a ``spk{k}.scp`` when its first line comes; ``enh.sh``'s stage 7 then
    concatenates ``spk1.scp`` .. ``spk{inf_num}.scp`` of every job and stops at a missing
    one, which a job of few utterances (or one, as stage 7 splits small sets) often has.

    Args:
        inference: the original ``espnet2.bin.enh_inference.inference``.
    """
    if getattr(inference, "_use_counting", False):
        return inference

    @functools.wraps(inference)
    def wrapped(*args, **kwargs):
        result = inference(*args, **kwargs)
        output_dir, train_config = kwargs.get("output_dir"), kwargs.get("train_config")
        if output_dir is None or train_config is None:
            return result
        import yaml

        with open(train_config, encoding="utf-8") as f:
            conf = yaml.safe_load(f) or {}
        counting = conf.get("separator") == NAME and (conf.get("model_conf") or {}).get("flexible_numspk")
        if counting:
            for k in range(1, int((conf.get("separator_conf") or {}).get("num_spk", 2)) + 1):
                scp = os.path.join(output_dir, f"spk{k}.scp")
                if not os.path.exists(scp):
                    open(scp, "a").close()
        return result

    wrapped._use_counting = True
    return wrapped


def _after_enh_inference(module: ModuleType) -> None:
    module.SeparateSpeech.__call__ = counted_sources(module.SeparateSpeech.__call__)
    module.inference = every_output_list(module.inference)


@contextlib.contextmanager
def _no_nltk_download() -> Iterator[None]:
    if os.environ.get(NLTK_ENV, "") not in ("", "0"):
        yield
        return
    try:
        import nltk
    except ImportError:  # g2p_en will say so itself
        yield
        return
    download = nltk.download

    def skipped(*args, **kwargs) -> bool:
        return False

    nltk.download = skipped
    try:
        yield
    finally:
        if nltk.download is skipped:
            nltk.download = download


_AFTER: Dict[str, Callable[[ModuleType], None]] = {
    "espnet2.tasks.enh": _after_enh,
    "espnet2.tasks.enh_tse": _after_enh_tse,
    "espnet2.bin.enh_inference": _after_enh_inference,
}
_AROUND: Dict[str, Callable[[], Any]] = {"g2p_en": _no_nltk_download}


def _apply(name: str, module: ModuleType) -> None:
    with _lock:
        key = (name, id(module))
        if key in _done:
            return
        _AFTER[name](module)
        _done.add(key)


class _HookedLoader(importlib.abc.Loader):
    """Delegates to the real loader; runs USE's step around ``exec_module``."""

    def __init__(self, loader: Any, name: str):
        self._loader = loader
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._loader, attr)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        around = _AROUND.get(self._name)
        with around() if around is not None else contextlib.nullcontext():
            self._loader.exec_module(module)
        if self._name in _AFTER:
            _apply(self._name, module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of the few modules USE hooks."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname not in _AFTER and fullname not in _AROUND:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and not isinstance(spec.loader, _HookedLoader):
            spec.loader = _HookedLoader(spec.loader, fullname)
        return spec


_finder: Optional[_Finder] = None


def install() -> None:
    """Put USE's finder first on ``sys.meta_path`` (idempotent, imports nothing)."""
    global _finder
    with _lock:
        if _finder is None:
            _finder = _Finder()
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)
    for name in _AFTER:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__spec__", None) is not None:
            _apply(name, module)


def installed() -> bool:
    """Whether :func:`install` has run in this process."""
    return _finder is not None and _finder in sys.meta_path
