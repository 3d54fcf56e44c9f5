"""Audio-example cue encoder: a recording of the wanted sound, encoded by the model itself."""
from typing import Callable, Optional, Tuple

import numpy as np
import torch

from espnet2_use.cue.abs_cue_encoder import AbsCueEncoder, check_batch
from espnet2_use.utils.audio import read_audio, resample

# (waveforms [R, T] or encoder features [R, T', N], lengths [R]) -> one vector per
# example [R, D] in the shared space.
AudioEmbedder = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class AudioExampleCueEncoder(AbsCueEncoder):
    """An audio example of the wanted sound -> one cue token: its first attractor.

    The example goes through its host model's own encoder, trunk and EDA, as a
    mixture of one source would; its first attractor lives in the shared space by
    construction, with no weights of this encoder's own. The host (``USEModel``,
    ``USEExtractor``) hands its embedding function over with :meth:`bind` (through
    ``USECueNetwork.bind``) when it is built; until then ``forward`` raises.

    ``extract`` reads an audio file (mono float32 at ``sample_rate``); in training the
    data loader reads the examples (``enroll_spk{k}.scp``, ESPnet's ``sound`` type)
    and they reach ``forward`` as padded waveforms.

    Args:
        output_dim: D, the shared cue space (the host's ``emb_dim``).
        sample_rate: the model's sampling rate; ``extract`` resamples other rates to
            it (None: files are taken at their own rate).
    """

    modality = "example"
    cached = False

    def __init__(self, output_dim: int, sample_rate: Optional[int] = None):
        super().__init__()
        if output_dim <= 0:
            raise ValueError(f"output_dim must be > 0, got {output_dim}")
        self._output_dim = output_dim
        self.sample_rate = sample_rate
        self._embed: Optional[AudioEmbedder] = None

    @property
    def output_dim(self) -> int:
        return self._output_dim

    @property
    def input_dim(self) -> int:
        return 1

    def bind(self, embed: AudioEmbedder) -> None:
        # A plain attribute, not a submodule: the host's parts stay registered once,
        # in the host (state_dict, .to(), DDP see them there).
        object.__setattr__(self, "_embed", embed)

    def extract(self, raw: str) -> np.ndarray:
        """Path of an audio file -> float32 mono [T] ([0] for "" or an empty file)."""
        if not raw:
            return np.zeros(0, dtype=np.float32)
        wav, fs = read_audio(raw)
        if wav.ndim == 2:
            wav = wav.mean(axis=1)
        if wav.size and self.sample_rate is not None and fs != self.sample_rate:
            wav = resample(wav, int(fs), int(self.sample_rate))
        return np.ascontiguousarray(wav, dtype=np.float32)

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Padded waveforms [B, T] -> one token each [B, 1, D] (zeros where absent).

        A host that encodes its audio before the cue network (``USEExtractor``) passes
        encoder features [B, T', N] instead; the bound function knows which.
        """
        if x.dim() not in (2, 3):
            raise ValueError(
                f"AudioExampleCueEncoder: expected waveforms [B, T] or encoder features "
                f"[B, T, N], got shape {tuple(x.shape)}"
            )
        check_batch(x, x_lens, x.dim(), "AudioExampleCueEncoder")
        if self._embed is None:
            raise RuntimeError(
                "the audio-example cue encoder is not bound to a model: it encodes with "
                "its host's trunk and EDA (USECueNetwork.bind)"
            )
        present = x_lens > 0
        tokens = x.new_zeros(x.size(0), 1, self._output_dim)
        if bool(present.any()):
            rows = present.nonzero().flatten()
            wav, wav_lens = x.index_select(0, rows), x_lens.index_select(0, rows)
            vectors = self._embed(wav[:, : int(wav_lens.max())], wav_lens)  # [R, D]
            tokens = tokens.index_put((rows,), vectors[:, None, :])
        return tokens, present.long()
