"""Text cue encoder over a frozen Hugging Face transformers model (cached)."""
import json
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from espnet2_use.cue.abs_cue_encoder import AbsCueEncoder, check_batch, length_mask, proj_feature_dim


class HFTextCueEncoder(AbsCueEncoder):
    """Caption -> token embeddings of a frozen pretrained text model -> cue tokens.

    ``extract()`` runs the frozen model (AutoTokenizer + AutoModel from a local
    folder, never the hub) and returns the last hidden state of the caption's
    real tokens (CLS/SEP included, padding dropped). The recipe caches these
    features in ``dump/``; ``forward()`` is the trainable part, a
    Linear(feature_dim -> D) + LayerNorm.

    The frozen model is kept outside ``torch.nn.Module`` registration and is
    loaded lazily on the first ``extract()``, because (1) checkpoints then hold
    only the small projection, (2) a model trained on cached features loads
    and trains without the HF folder, and (3) ``model.train()``, optimizers and
    ESPnet's parameter counting never touch the frozen network. It runs on the
    device of the projection's parameters, so ``encoder.to("cuda")`` also
    moves extraction to the GPU.

    Args:
        output_dim: D, the shared cue space.
        model_path: local folder of a transformers model and its tokenizer
            (e.g. DistilBERT as in the paper, or all-MiniLM-L6-v2).
        feature_dim: hidden size of the model. Read from the folder's config
            when it exists (and then checked against this value); required
            when the folder is not available (training from cached features).
        max_length: captions are truncated to this many tokens (CLS/SEP incl.).
        batch_size: captions per forward of the frozen model in
            ``extract_batch``. With 1, every caption goes through exactly the
            computation of ``extract()`` (bit-identical features); larger
            batches agree up to float rounding (~1e-6), because BLAS kernels
            depend on the batch shape. Captions are grouped by token count, so
            no caption is ever padded.

    References:
        USE: A Unified Model for Universal Sound Separation and Extraction,
        arXiv 2512.21215 (text cues from a frozen DistilBERT).
    """

    modality = "text"
    cached = True

    def __init__(
        self,
        output_dim: int,
        model_path: str,
        feature_dim: Optional[int] = None,
        max_length: int = 64,
        batch_size: int = 32,
    ):
        super().__init__()
        if output_dim <= 0:
            raise ValueError(f"output_dim must be > 0, got {output_dim}")
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2 (CLS and SEP), got {max_length}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_path = str(model_path)
        self.max_length = max_length
        self.batch_size = batch_size
        self._output_dim = output_dim
        self._frozen: Optional[Dict[str, Any]] = None  # plain dict: not registered

        config_dim = self._config_hidden_size()
        if feature_dim is None:
            if config_dim is None:
                raise FileNotFoundError(
                    f"HF text model folder {self.model_path!r} does not exist or has "
                    "no readable config.json, so its hidden size is unknown: give "
                    "feature_dim (e.g. 384 for all-MiniLM-L6-v2, 768 for DistilBERT) "
                    "to train from cached features"
                )
            feature_dim = config_dim
        elif config_dim is not None and config_dim != feature_dim:
            raise ValueError(
                f"feature_dim={feature_dim} does not match the hidden size "
                f"{config_dim} in {os.path.join(self.model_path, 'config.json')}"
            )
        self._feature_dim = int(feature_dim)

        self.proj = torch.nn.Linear(self._feature_dim, output_dim)
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
        # Pickling (DataLoader workers, deepcopy) must not copy the frozen
        # network; it is reloaded lazily from model_path when needed.
        state = self.__dict__.copy()
        state["_frozen"] = None
        return state

    def _config_hidden_size(self) -> Optional[int]:
        """Hidden size from the folder's config, None if the folder is absent."""
        path = os.path.join(self.model_path, "config.json")
        if not os.path.isfile(path):
            return None
        # Read the size from the JSON when it is written there under its own name:
        # building the encoder (e.g. to separate with a model that could take text
        # cues) then does not import transformers (about 1 s); AutoConfig resolves
        # the other spellings (DistilBERT's "dim").
        try:
            with open(path, encoding="utf-8") as f:
                raw = json.load(f)
        except (OSError, ValueError):
            raw = {}
        if isinstance(raw, dict):
            key = "d_model" if raw.get("is_encoder_decoder") else "hidden_size"
            if isinstance(raw.get(key), int):
                return int(raw[key])
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(self.model_path, local_files_only=True)
        if getattr(config, "is_encoder_decoder", False) and hasattr(
            config, "d_model"
        ):
            return int(config.d_model)
        size = getattr(config, "hidden_size", None)
        return None if size is None else int(size)

    def _load_frozen(self) -> Dict[str, Any]:
        """Load tokenizer + model once; move the model to the projection's device."""
        device = self.proj.weight.device
        if self._frozen is None:
            if not os.path.isdir(self.model_path):
                raise FileNotFoundError(
                    f"HF text model folder {self.model_path!r} does not exist "
                    "(needed to embed captions; expected a local folder with "
                    "config.json, the weights and the tokenizer files)"
                )
            from transformers import AutoModel, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(
                self.model_path, local_files_only=True
            )
            model = AutoModel.from_pretrained(self.model_path, local_files_only=True)
            # An encoder-decoder (T5, BART) embeds text with its encoder only.
            if getattr(model.config, "is_encoder_decoder", False):
                model = model.get_encoder()
            model.eval()
            model.requires_grad_(False)
            self._frozen = {"tokenizer": tokenizer, "model": model, "device": None}
        if self._frozen["device"] != device:
            self._frozen["model"].to(device)
            self._frozen["device"] = device
        return self._frozen

    def extract(self, raw: str) -> np.ndarray:
        """Embed one caption with the frozen model.

        Args:
            raw: caption text; "" (or whitespace) is an absent cue.

        Returns:
            float32 ``[L, feature_dim]`` last hidden states of the real tokens,
            ``[0, feature_dim]`` for an absent cue.
        """
        return self.extract_batch([raw])[0]

    def extract_batch(self, raws: List[str]) -> List[np.ndarray]:
        """Embed several captions; same-length captions share a forward.

        Args:
            raws: captions, "" for absent ones.

        Returns:
            One float32 ``[L_i, feature_dim]`` array per caption.
        """
        texts = [raw.strip() for raw in raws]
        out: List[Optional[np.ndarray]] = [None] * len(texts)
        unique = sorted({t for t in texts if t})
        if unique:
            frozen = self._load_frozen()
            tokenizer, model = frozen["tokenizer"], frozen["model"]
            encoded = tokenizer(
                unique, truncation=True, max_length=self.max_length
            )["input_ids"]
            # Group by token count: no padding, so no padding-dependent numerics.
            by_len: Dict[int, List[int]] = {}
            for i, ids in enumerate(encoded):
                by_len.setdefault(len(ids), []).append(i)
            feats: Dict[str, np.ndarray] = {}
            for idx in by_len.values():
                for start in range(0, len(idx), self.batch_size):
                    chunk = idx[start : start + self.batch_size]
                    batch = tokenizer(
                        [unique[i] for i in chunk],
                        truncation=True,
                        max_length=self.max_length,
                        return_tensors="pt",
                    ).to(frozen["device"])
                    with torch.inference_mode():
                        hidden = model(**batch).last_hidden_state  # [b, L, F]
                    if hidden.shape[-1] != self._feature_dim:
                        raise ValueError(
                            f"HF model {self.model_path!r} gives {hidden.shape[-1]}-d "
                            f"features, feature_dim is {self._feature_dim}"
                        )
                    hidden = hidden.float().cpu().numpy()
                    for row, i in enumerate(chunk):
                        feats[unique[i]] = np.ascontiguousarray(hidden[row])
            for j, text in enumerate(texts):
                if text:
                    out[j] = feats[text]
        empty = np.zeros((0, self._feature_dim), dtype=np.float32)
        return [empty.copy() if a is None else a.copy() for a in out]

    def forward(
        self, x: torch.Tensor, x_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Project cached token features into the cue space.

        Args:
            x: ``[B, L, feature_dim]`` padded extract() outputs.
            x_lens: ``[B]`` token counts (0 for an absent caption).

        Returns:
            tokens ``[B, L, D]`` (zero at padding) and lengths ``[B]``.
        """
        check_batch(x, x_lens, 3, type(self).__name__)
        if x.shape[-1] != self._feature_dim:
            raise ValueError(
                f"{type(self).__name__}: expected {self._feature_dim}-d features, "
                f"got shape {tuple(x.shape)}"
            )
        tokens = self.norm(self.proj(x))  # [B, L, D]
        mask = length_mask(x_lens, x.shape[1])  # [B, L]
        return tokens * mask.unsqueeze(-1).to(tokens.dtype), x_lens
