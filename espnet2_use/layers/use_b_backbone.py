"""USE-B: the band-split, TF-domain, BSRNN-like backbone."""
from typing import Any, Optional, Sequence, Tuple

import torch

from espnet2.enh.layers.bsrnn import (
    BandSplit,
    MaskDecoder,
    get_erb_subbands,
    get_mel_subbands,
)
from espnet2_use.layers.abs_use_backbone import AbsUSEBackbone, BackboneOutput
from espnet2_use.layers.band_split_rnn_block import BandSplitRNNBlock
from espnet2_use.layers.inter_source import InterSourceBlock


def as_complex(spec: torch.Tensor) -> torch.Tensor:
    """ESPnet's STFT encoder yields torch complex tensors or torch_complex ones."""
    if torch.is_tensor(spec) and torch.is_complex(spec):
        return spec
    return torch.complex(spec.real, spec.imag)


def make_subbands(
    n_freq: int, fs: int, num_bands: int, band_type: str
) -> Tuple[Tuple[int, int], ...]:
    """Subband (start, end) bin indices covering ``n_freq`` bins at rate ``fs``."""
    if band_type == "erb":
        # Many ERB bands over few bins repeat the lowest bins; those then become
        # one-bin bands of their own (ESPnet's min_freq_idx), keeping num_bands bands.
        for low in range(num_bands):
            try:
                bands = get_erb_subbands(
                    n_freq, min_freq_idx=low, n_erbs=num_bands - low, target_fs=fs
                )
                break
            except (ValueError, AssertionError):
                continue
        else:
            raise ValueError(f"cannot lay {num_bands} ERB bands over {n_freq} bins")
    elif band_type == "mel":
        bands = get_mel_subbands(n_freq, n_mels=num_bands, target_fs=fs)
    else:
        raise ValueError(f"band_type must be 'erb' or 'mel', got {band_type!r}")
    return tuple((int(st), int(et)) for st, et in bands)


class USEBBackbone(AbsUSEBackbone):
    """Band-split RNN over the STFT (USE-B).

    Reuses ESPnet's ``BandSplit`` (per-band projection) and ``MaskDecoder`` (complex
    mask and residual per band, here with one output per query). The trunk
    (``num_pre_blocks`` band/time layers) runs once per mixture; the tail
    (``num_post_blocks``) and the mask decoder run once per query.

    Args:
        input_dim: STFT bins F (n_fft // 2 + 1), odd.
        fs: sampling rate the subbands are laid out for.
        latent_dim: embedding size N of each (frame, band) cell.
        emb_dim: size D of the shared attractor/cue space.
        num_bands: number of subbands (ERB or mel spaced).
        band_type: ``erb`` (non-overlapping) or ``mel`` (overlapping).
        subbands: explicit (start, end) bin pairs; overrides num_bands/band_type.
        emb_stride: frames averaged into one frame embedding (the EDA's LSTM and the
            cue attention then run over T / emb_stride steps).
        num_pre_blocks: band/time layers before the conditioning point.
        num_post_blocks: layers after it (run per query).
        norm_type: ESPnet normalisation name.
        causal: LSTM over time instead of BLSTM.
        inter_source: after the tail, attention across the queries of one mixture in
            every (frame, band) cell (``InterSourceBlock``), so that sources see each other.
        inter_source_heads: attention heads of that layer (``latent_dim`` divisible).

    References:
        J. Yu, Y. Luo, "Efficient monaural speech enhancement with universal sample
        rate band-split RNN", ICASSP 2023; USE, arXiv 2512.21215 (USE-B).
    """

    def __init__(
        self,
        input_dim: int,
        fs: int = 8000,
        latent_dim: int = 32,
        emb_dim: int = 64,
        num_bands: int = 16,
        band_type: str = "erb",
        subbands: Optional[Sequence[Sequence[int]]] = None,
        emb_stride: int = 4,
        num_pre_blocks: int = 2,
        num_post_blocks: int = 1,
        norm_type: str = "GN",
        causal: bool = False,
        inter_source: bool = True,
        inter_source_heads: int = 4,
    ):
        super().__init__()
        if input_dim % 2 != 1:
            raise ValueError(f"input_dim must be n_fft // 2 + 1 (odd), got {input_dim}")
        if subbands is None:
            subbands = make_subbands(input_dim, fs, num_bands, band_type)
        subbands = tuple((int(st), int(et)) for st, et in subbands)
        self._latent_dim = latent_dim
        self._emb_dim = emb_dim
        self.emb_stride = emb_stride
        norm1d = "cLN" if norm_type == "cfLN" else norm_type
        self.band_split = BandSplit(
            input_dim, target_fs=fs, subbands=subbands, channels=latent_dim,
            norm_type=norm1d,
        )
        self.pre_blocks = torch.nn.ModuleList(
            BandSplitRNNBlock(latent_dim, norm_type, causal) for _ in range(num_pre_blocks)
        )
        # Normalised first: the residual stream grows, and the EDA's LSTM gates
        # saturate on large inputs.
        self.to_emb = torch.nn.Sequential(
            torch.nn.LayerNorm(latent_dim), torch.nn.Linear(latent_dim, emb_dim)
        )
        self.post_blocks = torch.nn.ModuleList(
            BandSplitRNNBlock(latent_dim, norm_type, causal) for _ in range(num_post_blocks)
        )
        self.inter_source = (
            InterSourceBlock(latent_dim, inter_source_heads) if inter_source else None
        )
        self.mask_decoder = MaskDecoder(
            input_dim, subbands, channels=latent_dim, num_spk=1, norm_type=norm1d
        )

    @property
    def latent_dim(self) -> int:
        return self._latent_dim

    @property
    def emb_dim(self) -> int:
        return self._emb_dim

    def encode(self, feats: torch.Tensor, flens: torch.Tensor) -> BackboneOutput:
        spec = torch.view_as_real(as_complex(feats))  # [B, T, F, 2]
        latent = self.band_split(spec)  # [B, N, T, K]
        for block in self.pre_blocks:
            latent = block(latent)
        pooled = torch.nn.functional.avg_pool1d(
            latent.mean(dim=-1), self.emb_stride, ceil_mode=True
        )  # [B, N, T / stride]
        emb = self.to_emb(pooled.transpose(1, 2))  # [B, L, D]
        emb_lens = torch.div(flens + self.emb_stride - 1, self.emb_stride, rounding_mode="floor")
        return BackboneOutput(latent=latent, emb=emb, emb_lens=emb_lens.clamp(min=1, max=emb.size(1)))

    def expand_frames(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """[M, N, L] -> [M, N, T, 1]: a frame embedding pools ``emb_stride`` frames."""
        T = latent.size(2)
        assert x.size(-1) == -(-T // self.emb_stride), (x.shape, latent.shape)
        return x.repeat_interleave(self.emb_stride, dim=2)[:, :, :T, None]

    def decode(
        self, latent: torch.Tensor, feats: torch.Tensor, aux: Any, index: torch.Tensor
    ) -> torch.Tensor:
        for block in self.post_blocks:
            latent = block(latent)  # [M, N, T, K]
        if self.inter_source is not None:
            latent = self.inter_source(latent, index)
        mask, residual = self.mask_decoder(latent)  # [M, 1, T, F, 2] each
        mask = torch.view_as_complex(mask[:, 0].contiguous())  # [M, T, F]
        residual = torch.view_as_complex(residual[:, 0].contiguous())
        return mask * as_complex(feats) + residual  # [M, T, F]
