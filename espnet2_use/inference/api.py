"""Using a trained USE model: ``USE.from_packed(path).separate(audio)`` / ``.extract(...)``.

Audio may be a file path, a numpy array or a tensor; arrays and tensors carry their
rate in ``fs`` (default: the model's). The model resamples to its own rate and
downmixes multichannel input to mono, with a warning. Audio longer than the chunk
length is processed in overlapping chunks and stitched by overlap-add; in
separation, each source keeps its identity across chunks (see ``_SourceTracker``).
"""
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import yaml

from espnet2_use.inference.chunking import _SourceTracker, chunk_starts, chunk_windows
from espnet2_use.inference.packing import MODEL_FILE_PREFERENCE, PACK_CONFIG, PACK_MODEL, recipe_root, unpack
from espnet2_use.model.inference import EXTRACT_LEVELS, USEInference
from espnet2_use.model_builder import build_use_model, conf_from_weights, load_weights, read_weights
from espnet2_use.utils.audio import SILENCE_RMS, read_audio, resample, rms

AudioLike = Union[str, os.PathLike, np.ndarray, torch.Tensor]


# --------------------------------------------------------------------------- audio
def prepare_audio(
    audio: AudioLike, fs: Optional[int], target_fs: int, name: Optional[str] = None
) -> np.ndarray:
    """Any audio input -> float32 mono [T] at ``target_fs``, or a clear error."""
    if isinstance(audio, (str, os.PathLike)):
        name = name or str(audio)
        wav, fs = read_audio(audio)
    else:
        name = name or "audio"
        wav = audio.detach().cpu().numpy() if torch.is_tensor(audio) else np.asarray(audio)
        wav = wav.astype(np.float32, copy=False)
        if wav.ndim == 1:
            wav = wav[:, None]
        elif wav.ndim == 2:
            # Accept [C, T] as well as [T, C]: channels are the short axis.
            wav = wav.T if wav.shape[0] < wav.shape[1] else wav
        else:
            raise ValueError(f"{name}: expected a waveform [T] or [T, C], got shape {wav.shape}")
        fs = target_fs if fs is None else fs
    if wav.shape[0] == 0:
        raise ValueError(f"{name}: empty audio (0 samples)")
    bad = int(np.size(wav) - np.isfinite(wav).sum())
    if bad:
        raise ValueError(f"{name}: {bad} NaN or Inf samples; expected finite audio")
    if not isinstance(fs, (int, np.integer)) or fs < 1000:
        raise ValueError(f"{name}: unsupported sample rate {fs!r}; expected an integer >= 1000 Hz")
    if wav.shape[1] > 1:
        warnings.warn(f"{name}: {wav.shape[1]} channels downmixed to mono", stacklevel=3)
    wav = wav[:, 0] if wav.shape[1] == 1 else wav.mean(axis=1)
    if fs != target_fs:
        logging.info("%s: resampling %d Hz -> %d Hz", name, fs, target_fs)
        wav = resample(wav, int(fs), target_fs)
    return np.ascontiguousarray(wav, dtype=np.float32)


@dataclass
class SeparationResult:
    """Separated sources [S, T] at ``fs``, one name and existence probability each.

    ``label_scores`` [S, V]: each source's cosine score against every label of the model
    (``USE._labels()``, averaged over the chunks it was found in; NaN where none scored
    it), the scores its name was chosen from; None when the model has no label encoder.
    """

    sources: np.ndarray
    fs: int
    existence_prob: List[float] = field(default_factory=list)
    names: List[str] = field(default_factory=list)
    name_scores: List[float] = field(default_factory=list)
    label_scores: Optional[np.ndarray] = None

    @property
    def count(self) -> int:
        return int(self.sources.shape[0])


@dataclass
class ExtractionResult:
    """The extracted target [T] and the residual [T] at ``fs``.

    ``residual`` is the input less the target, at the input's level: the recording with
    the described sound removed (``target + residual`` is the input).
    """

    target: np.ndarray
    fs: int
    residual: np.ndarray


# -------------------------------------------------------------------------- the API
class USE:
    """A trained USE model, ready to separate and extract from any audio.

    Build it with ``USE.from_packed(path)`` (the recipe's stage-8 file),
    ``USE.from_exp(exp_dir)`` (a training directory) or ``USE(model, fs)``.

    Args:
        model: the trained model (a USEModel; inference uses its USEInference part).
        fs: the model's sample rate.
        device: where to run.
        name_threshold: a separated source is named by the label whose cue vector is
            most similar to its attractor, and called ``unknown`` when that cosine
            score (in [-1, 1]) is below this. The default 0.3 was set by hand when this
            API was written, not chosen on data: no trained model's scores were looked
            at. ``egs2/mini_use/use1/local/choose_name_threshold.py`` chooses it for a
            model on a validation set (the score that maximises right decisions: a
            right name shown, or ``unknown`` in place of a wrong one); set the
            attribute (or ``use-separate --name-threshold``) to what it prints.
    """

    def __init__(
        self, model: USEInference, fs: int, device: str = "cpu", name_threshold: float = 0.3
    ):
        self.model = model.to(device).eval()
        self.fs = int(fs)
        self.device = device
        self.name_threshold = name_threshold

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_files(
        cls,
        config: Union[str, Path],
        model_file: Union[str, Path],
        device: str = "cpu",
        root: Optional[Union[str, Path]] = None,
        overrides: Optional[Dict[str, Dict]] = None,
    ) -> "USE":
        """Build from a training config and weights.

        Relative paths inside the config (label list, bpe model, encoder folders) are
        taken relative to ``root`` (default: the current folder, as in recipes);
        ``overrides`` replaces cue-encoder conf entries, e.g.
        ``{"text": {"model_path": "/models/distilbert"}}``.
        """
        config, model_file = Path(config), Path(model_file)
        for path, what in ((config, "training config"), (model_file, "model weights")):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such {what} file")
        with open(config, encoding="utf-8") as f:
            conf = yaml.safe_load(f)
        if not isinstance(conf, dict) or "separator_conf" not in conf:
            raise ValueError(f"{config}: not a USE training config (no separator_conf)")
        root = Path(root) if root is not None else Path.cwd()
        for modality, spec in (conf.get("cue_encoders") or {}).items():
            spec_conf = spec.setdefault("conf", {})
            spec_conf.update((overrides or {}).get(modality, {}))
            for key in ("label_list", "bpemodel", "model_path", "weights"):
                value = spec_conf.get(key)
                if isinstance(value, str) and value and not os.path.isabs(value):
                    spec_conf[key] = str(root / value)
        # The model's own classes only, never ESPnet's task (see model_builder). The
        # config as read: the order of its cue_encoders is the fusion's modality order,
        # as in training (a YAML round trip with sorted keys would reorder them).
        state = read_weights(model_file, device)
        model = build_use_model(conf_from_weights(conf, state), initialize=False)
        if device != "mps":  # as ESPnet: the model on the device before loading
            model.to(device)
        if conf.get("use_adapter"):
            from espnet2.layers.create_adapter import create_adapter

            create_adapter(model, conf.get("adapter"), conf.get("adapter_conf"))
        load_weights(model, state, model_file)
        return cls(model, fs=conf.get("sample_rate") or 8000, device=device)

    @classmethod
    def from_exp(
        cls, exp_dir: Union[str, Path], model_file: Optional[str] = None, device: str = "cpu",
        overrides: Optional[Dict[str, Dict]] = None,
    ) -> "USE":
        """Build from a training directory (``exp/<name>``): its config.yaml and the
        first of valid.loss.ave.pth / valid.loss.best.pth / latest.pth (or
        ``model_file``). Paths in the config are relative to the recipe folder
        (``recipe_root``)."""
        exp_dir = Path(exp_dir)
        if model_file is None:
            found = [exp_dir / n for n in MODEL_FILE_PREFERENCE if (exp_dir / n).is_file()]
            if not found:
                raise FileNotFoundError(
                    f"{exp_dir}: no model file (looked for {', '.join(MODEL_FILE_PREFERENCE)})"
                )
            model_path = found[0]
        else:
            model_path = exp_dir / model_file
        return cls.from_files(exp_dir / "config.yaml", model_path, device,
                              root=recipe_root(exp_dir), overrides=overrides)

    @classmethod
    def from_packed(
        cls, path: Union[str, Path], device: str = "cpu",
        overrides: Optional[Dict[str, Dict]] = None,
        cache_dir: Optional[Union[str, Path]] = None,
    ) -> "USE":
        """Build from a packed model (``use_pack``'s zip file).

        Frozen pretrained cue encoders (HF text model, timm weights) are not inside
        the pack; their recorded paths are used unless ``overrides`` gives others.
        The pack's files go to ``cache_dir`` (kept), else to a temporary folder that
        is removed with the model.
        """
        unpacked = None
        if cache_dir is None:
            # Removed with the model (or at exit): a cue encoder may read its packed
            # file (the sentencepiece model) only on its first cue.
            unpacked = tempfile.TemporaryDirectory(prefix="use_model_")
            cache_dir = unpacked.name
        target, meta = unpack(path, cache_dir)
        use = cls.from_files(target / PACK_CONFIG, target / PACK_MODEL, device, root=target,
                             overrides=overrides)
        use.meta = meta
        use._unpacked = unpacked
        return use

    # ------------------------------------------------------------------ helpers
    def _tensor(self, wav: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(wav).to(self.device)[None]

    def _labels(self) -> Optional[List[str]]:
        net = self.model.cue_network
        if net is None or "label" not in net.encoders:
            return None
        return list(net.encoders["label"].labels)

    def _chunking(self, num_samples: int, chunk_seconds: Optional[float],
                  overlap_seconds: Optional[float]) -> Tuple[int, int]:
        if chunk_seconds is None or chunk_seconds * self.fs >= num_samples:
            return num_samples, 0
        chunk = int(chunk_seconds * self.fs)
        overlap = int((overlap_seconds if overlap_seconds is not None else chunk_seconds / 4) * self.fs)
        if not 0 <= overlap < chunk:
            raise ValueError(f"overlap ({overlap_seconds} s) must be shorter than the chunk ({chunk_seconds} s)")
        return chunk, overlap

    # --------------------------------------------------------------- separation
    @torch.no_grad()
    def separate(
        self,
        audio: AudioLike,
        fs: Optional[int] = None,
        num_sources: Optional[int] = None,
        chunk_seconds: Optional[float] = 10.0,
        overlap_seconds: Optional[float] = None,
    ) -> SeparationResult:
        """Separate a recording; the model counts the sources unless ``num_sources``."""
        wav = prepare_audio(audio, fs, self.fs)
        labels = self._labels()
        if rms(wav) <= SILENCE_RMS:
            none = None if labels is None else np.zeros((0, len(labels)), np.float32)
            return SeparationResult(np.zeros((0, len(wav)), np.float32), self.fs, label_scores=none)
        chunk, overlap = self._chunking(len(wav), chunk_seconds, overlap_seconds)
        starts = chunk_starts(len(wav), chunk, overlap)
        windows = chunk_windows(starts, chunk, len(wav))
        tracker = _SourceTracker(len(wav), max_sources=num_sources)
        for start, window in zip(starts, windows):
            piece = wav[start : start + chunk]
            if rms(piece) <= SILENCE_RMS:
                continue
            out = self.model.separate(self._tensor(piece), num_src=num_sources,
                                      name_sources=labels is not None)
            n = int(out["counts"][0])
            est = out["sources"][0, :n].cpu().numpy()
            att = out["attractors"][0, :n].cpu().numpy()
            probs = out["existence_prob"][0, :n].cpu().numpy()
            scores = out["label_scores"][0, :n].cpu().numpy() if labels is not None else None
            tracker.add(start, est, att, probs, scores, window)
        names, name_scores = [], []
        label_scores = None if labels is None else np.full((len(tracker.outputs), len(labels)), np.nan, np.float32)
        for g in range(len(tracker.outputs)):
            if labels is None or not tracker.label_scores[g]:
                names.append("unknown")
                name_scores.append(float("nan"))
                continue
            mean = np.mean(tracker.label_scores[g], axis=0)
            label_scores[g] = mean
            best = int(mean.argmax())
            names.append(labels[best] if mean[best] >= self.name_threshold else "unknown")
            name_scores.append(float(mean[best]))
        sources = np.stack(tracker.outputs) if tracker.outputs else np.zeros((0, len(wav)), np.float32)
        probs = [float(np.mean(p)) for p in tracker.probs]
        return SeparationResult(sources, self.fs, probs, names, name_scores, label_scores)

    # --------------------------------------------------------------- extraction
    def cue_inputs(
        self,
        text: Optional[str] = None,
        label: Optional[str] = None,
        image: Optional[Union[str, os.PathLike]] = None,
        video: Optional[Union[str, os.PathLike]] = None,
        example: Optional[AudioLike] = None,
        example_fs: Optional[int] = None,
        **cues: Any,
    ) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
        """Raw cues -> the model's cue inputs (frozen encoders run here, on the fly).

        ``cues``: any other cue modality of the model by name, in its encoder's Python
        form (``span=[(1.2, 2.0)]``, or its data-file text ``span="1.2-2.0"``).
        """
        net = self.model.cue_network
        if net is None:
            raise ValueError("this model has no cue network: it was trained for separation only")
        given = {"text": text, "label": label, "video": video if video is not None else image}
        given.update({m: v for m, v in cues.items() if v is not None})
        if video is not None and image is not None:
            raise ValueError("give either image= or video=, not both: both are the video cue")
        inputs = {}
        for modality, raw in given.items():
            if raw is None:
                continue
            if modality not in net.encoders:
                raise ValueError(
                    f"this model has no {modality} cue encoder; its cues are {net.modalities}"
                )
            encoder = net.encoders[modality]
            x = encoder.extract(encoder.to_raw(raw))
            if x.shape[0] == 0:
                raise ValueError(f"the {modality} cue {raw!r} is empty")
            x = torch.from_numpy(x).to(self.device)[None]
            inputs[modality] = (x, torch.tensor([x.size(1)], device=self.device))
        if example is not None:
            if "example" not in net.modalities:
                raise ValueError(f"this model takes no audio example; its cues are {net.modalities}")
            ex = prepare_audio(example, example_fs, self.fs, name=None)
            inputs["example"] = (self._tensor(ex), torch.tensor([len(ex)], device=self.device))
        if not inputs:
            raise ValueError(f"give at least one cue: {net.modalities} (image= for a picture)")
        return inputs

    @torch.no_grad()
    def extract(
        self,
        audio: AudioLike,
        fs: Optional[int] = None,
        text: Optional[str] = None,
        label: Optional[str] = None,
        image: Optional[Union[str, os.PathLike]] = None,
        video: Optional[Union[str, os.PathLike]] = None,
        example: Optional[AudioLike] = None,
        example_fs: Optional[int] = None,
        chunk_seconds: Optional[float] = 10.0,
        overlap_seconds: Optional[float] = None,
        level: str = "separation",
        **cues: Any,
    ) -> ExtractionResult:
        """Extract the sound the given cues describe (any subset of them), and remove it.

        Returns the target and the residual (the input less the target, at the input's
        level: everything but the described sound). ``cues``: other cue modalities of
        the model by name, e.g. ``span=[(1.2, 2.0)]`` (seconds of the input when the
        sound is active).

        ``level`` sets the target's level (``USEInference.extract``): ``separation`` takes
        it from the separated source the target most resembles, ``mixture`` projects
        the mixture onto the target (cheaper, louder by what leaks in).
        """
        if level not in EXTRACT_LEVELS:
            raise ValueError(f"level must be one of {EXTRACT_LEVELS}, got {level!r}")
        inputs = self.cue_inputs(text, label, image, video, example, example_fs, **cues)
        wav = prepare_audio(audio, fs, self.fs)
        out = np.zeros(len(wav), dtype=np.float32)
        chunk, overlap = self._chunking(len(wav), chunk_seconds, overlap_seconds)
        starts = chunk_starts(len(wav), chunk, overlap)
        encoders = self.model.cue_network.encoders
        for start, window in zip(starts, chunk_windows(starts, chunk, len(wav))):
            piece = wav[start : start + chunk]
            if rms(piece) <= SILENCE_RMS:
                continue
            here = dict(inputs)
            for modality in inputs:
                if encoders[modality].aligned:  # a time track: on this chunk's clock
                    here[modality] = encoders[modality].window(
                        *inputs[modality], start / self.fs, (start + len(piece)) / self.fs
                    )
            if all(int(lens[0]) == 0 for _, lens in here.values()):
                continue  # the only cue is a span outside this chunk: nothing to extract here
            target = self.model.extract(self._tensor(piece), None, here, level=level)["target"][0].cpu().numpy()
            out[start : start + len(piece)] += window * target
        # The residual of the whole, not of the chunks: target + residual is the input.
        return ExtractionResult(out, self.fs, residual=wav - out)
