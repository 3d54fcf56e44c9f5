"""Text cue encoder over sentencepiece tokens, trained with the model (not cached)."""
import math
import os
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
import torch

from espnet2_use.cue.abs_cue_encoder import AbsCueEncoder, check_batch, length_mask


class SPMTextCueEncoder(AbsCueEncoder):
    """Caption -> sentencepiece ids -> small Transformer encoder -> cue tokens.

    For corpora or machines without a pretrained text model: the tokenizer is
    trained in a recipe stage (``espnet2_use.bin.use_train_spm``) and the
    encoder is trained with the model. ``extract()`` is cheap and runs in the
    data loader's preprocessor.

    Args:
        output_dim: D, the shared cue space (also the Transformer width).
        bpemodel: path of the sentencepiece model (``bpe.model``).
        num_layers: Transformer encoder layers.
        num_heads: attention heads (must divide output_dim).
        hidden_dim: feed-forward width, 4 * output_dim when None.
        dropout: dropout of the Transformer layers.
        max_length: captions are truncated to this many pieces.
        vocab_size: number of pieces (rows of the embedding). None: read from
            ``bpemodel`` when the encoder is built. Given (at inference, from the
            trained weights), sentencepiece is loaded on the first caption instead,
            and the model's piece count must equal it.
    """

    modality = "text"
    cached = False

    def __init__(
        self,
        output_dim: int,
        bpemodel: str,
        num_layers: int = 2,
        num_heads: int = 4,
        hidden_dim: Optional[int] = None,
        dropout: float = 0.1,
        max_length: int = 64,
        vocab_size: Optional[int] = None,
    ):
        super().__init__()
        if output_dim <= 0 or output_dim % num_heads != 0:
            raise ValueError(
                f"output_dim ({output_dim}) must be > 0 and divisible by "
                f"num_heads ({num_heads})"
            )
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        self.bpemodel = str(bpemodel)
        self.max_length = max_length
        self._output_dim = output_dim
        self._sp = None  # sentencepiece processor, not a Module: never in state_dict
        if vocab_size is None:
            vocab_size = self._processor().GetPieceSize()

        self.embed = torch.nn.Embedding(vocab_size, output_dim)
        layer = torch.nn.TransformerEncoderLayer(
            d_model=output_dim,
            nhead=num_heads,
            dim_feedforward=hidden_dim or 4 * output_dim,
            dropout=dropout,
            batch_first=True,
            norm_first=True,
        )
        # enable_nested_tensor=False: the nested fast path in eval mode would
        # trim the output to max(x_lens), changing L' with the batch.
        self.encoder = torch.nn.TransformerEncoder(
            layer,
            num_layers=num_layers,
            norm=torch.nn.LayerNorm(output_dim),
            enable_nested_tensor=False,
        )

    @classmethod
    def conf_from_weights(
        cls, conf: Dict, state: Mapping[str, torch.Tensor], prefix: str
    ) -> Dict:
        # The piece count from the weights: sentencepiece loads on the first caption.
        weight = state.get(prefix + "embed.weight")
        if conf.get("vocab_size") is not None or weight is None:
            return conf
        return dict(conf, vocab_size=int(weight.shape[0]))  # embed: [vocab, D]

    @property
    def output_dim(self) -> int:
        return self._output_dim

    @property
    def input_dim(self) -> int:
        return 1

    @property
    def vocab_size(self) -> int:
        """Number of sentencepiece pieces (rows of the embedding)."""
        return self.embed.num_embeddings

    def __getstate__(self) -> Dict[str, Any]:
        # The SWIG processor does not pickle on every sentencepiece version;
        # it is reloaded from bpemodel on demand.
        state = self.__dict__.copy()
        state["_sp"] = None
        return state

    def _processor(self):
        """The sentencepiece processor, loaded once from bpemodel."""
        if self._sp is None:
            if not os.path.isfile(self.bpemodel):
                raise FileNotFoundError(
                    f"sentencepiece model {self.bpemodel!r} does not exist (train it "
                    "with: python -m espnet2_use.bin.use_train_spm)"
                )
            import sentencepiece as spm

            sp = spm.SentencePieceProcessor()
            try:
                sp.Load(self.bpemodel)
            except (OSError, RuntimeError) as e:
                raise ValueError(
                    f"{self.bpemodel!r} is not a sentencepiece model: {e}"
                ) from e
            # (Built without vocab_size, the embedding takes its size from here.)
            if "embed" in self._modules and sp.GetPieceSize() != self.vocab_size:
                raise ValueError(
                    f"{self.bpemodel!r} has {sp.GetPieceSize()} pieces, the encoder's "
                    f"embedding {self.vocab_size}: not the tokenizer it was trained with"
                )
            self._sp = sp
        return self._sp

    def extract(self, raw: str) -> np.ndarray:
        """Tokenize one caption.

        Args:
            raw: caption text; "" (or whitespace) is an absent cue.

        Returns:
            int64 ``[L]`` piece ids (L <= max_length), ``[0]`` when absent.
        """
        text = raw.strip()
        if not text:
            return np.zeros(0, dtype=np.int64)
        ids = self._processor().EncodeAsIds(text)[: self.max_length]
        return np.asarray(ids, dtype=np.int64)

    def decode(self, ids: np.ndarray) -> str:
        """Turn ids from :meth:`extract` back into text (for logs and tests)."""
        return self._processor().DecodeIds([int(i) for i in ids])

    def forward(
        self, x: torch.Tensor, x_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encode padded piece ids.

        Args:
            x: ``[B, L]`` int64 ids, padded with any value (ESPnet pads ids
                with -1).
            x_lens: ``[B]`` piece counts (0 for an absent caption).

        Returns:
            tokens ``[B, L, D]`` (zero at padding) and lengths ``[B]``.
        """
        check_batch(x, x_lens, 2, type(self).__name__)
        bsz, length = x.shape
        if length == 0:
            return x.new_zeros((bsz, 0, self._output_dim), dtype=torch.float), x_lens
        mask = length_mask(x_lens, length)  # [B, L]
        ids = x.masked_fill(~mask, 0)  # [B, L]
        h = self.embed(ids) * math.sqrt(self._output_dim)  # [B, L, D]
        h = h + _sinusoid(length, self._output_dim, h.device, h.dtype)  # [B, L, D]
        # An absent caption has no valid key; let it attend to position 0 so the
        # softmax stays finite, its output is zeroed below.
        pad = ~mask  # [B, L]
        pad[:, 0] = False
        h = self.encoder(h, src_key_padding_mask=pad)  # [B, L, D]
        return h * mask.unsqueeze(-1).to(h.dtype), x_lens


def _sinusoid(
    length: int, dim: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Sinusoidal positions (Vaswani et al. 2017), any length, no parameters.

    Returns:
        ``[1, length, dim]``.
    """
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]  # [L, 1]
    i = torch.arange(0, dim, 2, device=device, dtype=torch.float32)  # [D/2]
    angle = pos / (10000.0 ** (i / dim))  # [L, D/2]
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return pe.unsqueeze(0).to(dtype)  # [1, L, D]
