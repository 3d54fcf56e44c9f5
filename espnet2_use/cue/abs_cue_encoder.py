"""Interface of the cue encoders: one per cue modality (text, label, video, example).

A cue encoder has two halves:

- ``extract(raw)`` turns a raw cue (caption, label name, path of a picture or
  video) into the model's input array. For ``cached`` encoders this runs a
  frozen pretrained network whose output the recipe stores once in ``dump/``;
  for the others it is cheap (token ids, a label id) and runs in the data
  loader's preprocessor.
- ``forward(x, x_lens)`` maps a padded batch of ``extract()`` outputs to
  tokens in the model's shared D-dim cue space; this half is trained with the
  model.

Both the recipe's cache (``espnet2_use.bin.use_extract_cues``) and on-the-fly
inference call the same ``extract``/``extract_batch``, so a cached cue and a
cue given at inference go through one code path.
"""
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch


@dataclass
class FrameGrid:
    """The mixture's frame embeddings on the time axis, for ``aligned`` cue encoders.

    Frame ``j`` of row ``b`` covers samples ``[j, j + 1) * num_samples[b] / frames[b]``.

    Attributes:
        num_samples: valid samples of each mixture ``[B]``.
        frames: valid frame embeddings of each mixture ``[B]``.
        num_frames: L, the padded frame count (the track's length).
    """

    num_samples: torch.Tensor
    frames: torch.Tensor
    num_frames: int

    def select(self, rows: torch.Tensor) -> "FrameGrid":
        return FrameGrid(self.num_samples.index_select(0, rows), self.frames.index_select(0, rows),
                         self.num_frames)


class AbsCueEncoder(torch.nn.Module, ABC):
    """Encoder of one cue modality into the shared cue space.

    Subclasses are built as ``cls(output_dim=D, **conf)`` and set the class
    attributes ``modality`` ("text" | "label" | "video" | "example") and ``cached``.
    """

    # Which cue files of a data dir the encoder reads (see egs2/TEMPLATE/use1/README.md).
    modality: str = ""
    # True: extract() runs a frozen network and its output is cached in dump/.
    # False: extract() is cheap and runs in the data loader's preprocessor.
    cached: bool = False
    # True: the cue is a time track of the mixture. forward() then takes a third
    # argument, the mixture's FrameGrid, and returns one token per mixture frame
    # [B, L, D] (lengths: the valid frames, 0 for an absent cue); the fusion adds the
    # track to the mixture's frames and hands it to the mask head (per-frame FiLM).
    aligned: bool = False

    @property
    @abstractmethod
    def output_dim(self) -> int:
        """D, the dimension of the shared cue space."""
        raise NotImplementedError

    @property
    @abstractmethod
    def input_dim(self) -> int:
        """Last dim of extract()'s array (1 for id sequences)."""
        raise NotImplementedError

    @abstractmethod
    def extract(self, raw: str) -> np.ndarray:
        """Turn one raw cue into the model's input.

        Args:
            raw: caption text, label name, or path of a video / picture / audio
                example. An empty string is an absent cue.

        Returns:
            float32 ``[L, input_dim]`` features for cached encoders, int64
            ``[L]`` ids for the others (float32 samples ``[T]`` for an audio
            example); ``L == 0`` for an absent cue.
        """
        raise NotImplementedError

    def to_raw(self, value: Any) -> str:
        """A cue given in Python (API keyword) -> its raw text form (as in a data file)."""
        return str(value)

    def derive(self, ref: np.ndarray, jitter: bool) -> Optional[np.ndarray]:
        """The cue read off the source's own reference ``[T]``, as ``extract`` returns it,
        or None when this kind cannot be (the default). ``jitter``: perturb it at random
        (training). Used for rows marked ``derived`` in the layout table."""
        return None

    def window(
        self, x: torch.Tensor, x_lens: torch.Tensor, start: float, end: float
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """An aligned cue's inputs cut to the seconds ``[start, end)`` of the mixture,
        on that window's clock (long recordings are processed in chunks)."""
        raise NotImplementedError(f"{type(self).__name__} is aligned but cannot cut its cue to a window")

    def extract_batch(self, raws: List[str]) -> List[np.ndarray]:
        """Run :meth:`extract` over several cues (encoders override to batch).

        Args:
            raws: raw cues, "" for absent ones.

        Returns:
            One array per raw cue, in order.
        """
        return [self.extract(raw) for raw in raws]

    @classmethod
    def conf_from_weights(
        cls, conf: Dict, state: Mapping[str, torch.Tensor], prefix: str
    ) -> Dict:
        """``conf`` completed from trained weights (``prefix``: this encoder's keys).

        Building an encoder to run a trained model should not load a frozen network
        only to learn a size that the weights already show; encoders with such a size
        fill it in here. The default: ``conf`` as it is.
        """
        return conf

    def bind(self, embed) -> None:
        """Take the host model's audio embedding function (see ``USECueNetwork.bind``).

        An encoder that encodes with its host's own parts (the audio example) keeps
        it; one with a network of its own ignores it.
        """

    @abstractmethod
    def forward(
        self, x: torch.Tensor, x_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Map a padded batch of extract() outputs to cue tokens.

        Args:
            x: ``[B, L, input_dim]`` float or ``[B, L]`` int64 (``[B, T]`` float
                waveforms for an audio example), padded.
            x_lens: ``[B]`` valid lengths (0 for an absent cue).

        Returns:
            tokens ``[B, L', D]`` (zero beyond each length) and token
            lengths ``[B]`` (0 for an absent cue: its tokens are ignored).
        """
        raise NotImplementedError


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Boolean mask of valid positions.

    Args:
        lengths: ``[B]`` valid lengths.
        max_len: padded length L.

    Returns:
        ``[B, L]`` bool, True where the position index < length.
    """
    positions = torch.arange(max_len, device=lengths.device)  # [L]
    return positions[None, :] < lengths[:, None]  # [B, L]


def check_batch(
    x: torch.Tensor, x_lens: torch.Tensor, ndim: int, name: str
) -> None:
    """Check the shapes of a padded cue batch and raise a readable error.

    Args:
        x: padded batch.
        x_lens: ``[B]`` lengths.
        ndim: expected ``x.dim()`` (2 for ids, 3 for features).
        name: encoder name for the message.
    """
    if x.dim() != ndim:
        raise ValueError(
            f"{name}: expected a {ndim}-d padded batch, got shape {tuple(x.shape)}"
        )
    if x_lens.dim() != 1 or x_lens.shape[0] != x.shape[0]:
        raise ValueError(
            f"{name}: x_lens must be [B={x.shape[0]}], got {tuple(x_lens.shape)}"
        )
    if x.shape[0] > 0 and int(x_lens.max()) > x.shape[1]:
        raise ValueError(
            f"{name}: a length {int(x_lens.max())} exceeds the padded length "
            f"{x.shape[1]}"
        )


def proj_feature_dim(conf: Dict, state: Mapping[str, torch.Tensor], prefix: str) -> Dict:
    """``conf`` with ``feature_dim`` (when unset) read from the input width of the
    trained ``proj`` layer: the frozen network's feature size."""
    weight = state.get(prefix + "proj.weight")
    if conf.get("feature_dim") is not None or weight is None:
        return conf
    return dict(conf, feature_dim=int(weight.shape[1]))  # proj: [D, feature_dim]
