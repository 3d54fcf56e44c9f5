"""Sound-label cue encoder: a learned embedding per class (not cached)."""
import difflib
import os
from typing import List, Sequence, Tuple, Union

import numpy as np
import torch

from espnet2_use.cue.abs_cue_encoder import AbsCueEncoder, check_batch, length_mask


def read_label_list(path: str) -> List[str]:
    """Read ``labels.txt``: one class name per line, id = 0-based line number.

    Args:
        path: the vocabulary file.

    Returns:
        The class names (surrounding whitespace stripped; inner spaces kept).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"label list {path!r} does not exist")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    # A trailing blank line is harmless; a blank line inside would shift ids.
    while lines and not lines[-1].strip():
        lines.pop()
    labels = []
    for lineno, line in enumerate(lines, 1):
        name = line.strip()
        if not name:
            raise ValueError(
                f"{path}:{lineno}: empty line; expected one class name per line "
                "(a label's id is its line number, so blank lines are not allowed)"
            )
        labels.append(name)
    return labels


class LabelCueEncoder(AbsCueEncoder):
    """Class name -> id -> learned embedding (one cue token).

    Args:
        output_dim: D, the shared cue space.
        label_list: path of ``labels.txt`` (one class name per line; names may
            contain spaces) or the list of names itself.
    """

    modality = "label"
    cached = False

    def __init__(self, output_dim: int, label_list: Union[str, Sequence[str]]):
        super().__init__()
        if output_dim <= 0:
            raise ValueError(f"output_dim must be > 0, got {output_dim}")
        if isinstance(label_list, (str, os.PathLike)):
            self.label_source = str(label_list)
            labels = read_label_list(self.label_source)
        else:
            self.label_source = "the label_list given in the config"
            labels = [str(name).strip() for name in label_list]
        if not labels:
            raise ValueError(f"{self.label_source}: the label vocabulary is empty")
        seen = {}
        for i, name in enumerate(labels):
            if name in seen:
                raise ValueError(
                    f"{self.label_source}: label {name!r} appears twice (ids "
                    f"{seen[name]} and {i}); class names must be unique"
                )
            seen[name] = i
        self._labels = labels
        self._label_to_id = seen
        self._output_dim = output_dim
        self.embed = torch.nn.Embedding(len(labels), output_dim)

    @property
    def output_dim(self) -> int:
        return self._output_dim

    @property
    def input_dim(self) -> int:
        return 1

    @property
    def labels(self) -> List[str]:
        """Class names, index = id."""
        return list(self._labels)

    def label_embeddings(self) -> torch.Tensor:
        """Cue vectors of every class, ``[V, D]`` (names in :attr:`labels`)."""
        return self.embed.weight

    def extract(self, raw: str) -> np.ndarray:
        """Look up a class name.

        Args:
            raw: class name as in the vocabulary; "" is an absent cue.

        Returns:
            int64 ``[1]`` id, or ``[0]`` (zero-length) when absent.
        """
        name = raw.strip()
        if not name:
            return np.zeros(0, dtype=np.int64)
        idx = self._label_to_id.get(name)
        if idx is None:
            close = difflib.get_close_matches(name, self._labels, n=3, cutoff=0.6)
            hint = (
                f"; close matches: {', '.join(repr(c) for c in close)}"
                if close
                else "; no close match"
            )
            raise ValueError(
                f"unknown label {name!r}: not in the vocabulary {self.label_source} "
                f"({len(self._labels)} classes){hint}"
            )
        return np.asarray([idx], dtype=np.int64)

    def forward(
        self, x: torch.Tensor, x_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Embed padded label ids.

        Args:
            x: ``[B, L]`` int64 ids (L is 1, or 0 when every label is absent),
                padded with any value.
            x_lens: ``[B]`` 1 for a label, 0 for an absent one.

        Returns:
            tokens ``[B, L, D]`` (zero for absent labels) and lengths ``[B]``.
        """
        check_batch(x, x_lens, 2, type(self).__name__)
        mask = length_mask(x_lens, x.shape[1])  # [B, L]
        tokens = self.embed(x.masked_fill(~mask, 0))  # [B, L, D]
        return tokens * mask.unsqueeze(-1).to(tokens.dtype), x_lens
