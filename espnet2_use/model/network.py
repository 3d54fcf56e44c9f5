"""USENetwork: USE's parts and the named steps that training and inference share."""
from typing import Dict, Optional, Sequence, Tuple

import torch

from espnet2.enh.decoder.abs_decoder import AbsDecoder
from espnet2.enh.encoder.abs_encoder import AbsEncoder
from espnet2_use.counting.feature_counter import (
    build_count_branch, existence_count_log_posterior, weighted_count,
)
from espnet2_use.cue.cue_network import USECueNetwork
from espnet2_use.layers.abs_use_backbone import BackboneOutput
from espnet2_use.model.batch import Batch, cue_inputs, pairs
from espnet2_use.separator.use_separator import USESeparator

EPS = 1e-8
# Who counts at inference (model_conf.count_rule): the attractors (their own rule: the
# existence threshold, or a TDA's count head), the count branch, or both (the branch's
# posterior times the attractors' existence posterior).
COUNT_RULES = ("attractor", "branch", "product")


class USENetwork(torch.nn.Module):
    """Encoder, USE separator, decoder and cue network, run in named steps.

    ``forward_encoder`` (waveform -> encoder features -> trunk), ``forward_separate``
    (EDA attractors -> shared mask head -> one output per attractor),
    ``forward_extract`` (cue vectors -> the same mask head), ``forward_decoder``
    (features -> waveforms) and ``forward_cues`` (a batch's cue entries -> cue
    vectors). Training (``espnet2_use.espnet_model``) and inference
    (``espnet2_use.model.inference``) are built from these steps.

    Args:
        encoder: ESPnet encoder (``conv`` for USE-S, ``stft`` for USE-B).
        separator: the USE separator.
        decoder: ESPnet decoder matching the encoder.
        cue_network: the multimodal cue network (None: separation only).
        max_num_src: the largest count K (the EDA decodes K + 1 attractors).
        min_num_src: the smallest count inference returns (see ``USEModel``).
        normalize_variance: divide the mixture (and references) by its std first,
            and scale estimates back at inference.
        count_branch_conf: the count branch (``espnet2_use.counting.feature_counter``:
            ``type`` ``frames``, a light counter over the encoder's frames, with
            ``channels``, ``kernel_size``; or ``logmel``, a 2-D CNN over the waveform's
            log-mel spectrogram, with ``sample_rate`` and the spectrogram's and CNN's
            sizes); None (default): none.
        count_rule: who counts when the count is not given: ``attractor`` (default),
            ``branch`` or ``product`` (both need ``count_branch_conf``).
        count_attractor_weight: the weight of the attractors' log-posterior in the
            ``product`` rule (1: the plain product).
        count_bias: K + 1 log-odds added to the score of each count 0 .. K by the
            ``branch`` and ``product`` rules (None: zeros). ``use_count_calibrate``
            chooses them and the weight on a validation set.

    References:
        USE: "A Unified Model for Universal Sound Separation and Extraction",
        AAAI 2026, arXiv 2512.21215.
    """

    def __init__(
        self,
        encoder: AbsEncoder,
        separator: USESeparator,
        decoder: AbsDecoder,
        cue_network: Optional[USECueNetwork] = None,
        max_num_src: int = 3,
        min_num_src: int = 1,
        normalize_variance: bool = True,
        count_branch_conf: Optional[Dict] = None,
        count_rule: str = "attractor",
        count_attractor_weight: float = 1.0,
        count_bias: Optional[Sequence[float]] = None,
    ):
        super().__init__()
        if max_num_src < 1:
            raise ValueError(f"model_conf.max_num_src must be >= 1, got {max_num_src}")
        if not 0 <= min_num_src <= max_num_src:
            raise ValueError(
                f"model_conf.min_num_src must lie in [0, max_num_src={max_num_src}], got {min_num_src}"
            )
        if cue_network is not None and cue_network.dim != separator.emb_dim:
            raise ValueError(
                f"the cue network's dim {cue_network.dim} must equal the separator's "
                f"emb_dim {separator.emb_dim}: cues and attractors share one space"
            )
        self.encoder = encoder
        self.separator = separator
        self.decoder = decoder
        self.cue_network = cue_network
        if cue_network is not None:
            # An audio-example cue encodes with this model's encoder, trunk and EDA.
            cue_network.bind(self.embed_example)
        self.max_num_src = max_num_src
        self.min_num_src = min_num_src
        self.num_spk = max_num_src  # ESPnet tools read this
        self.normalize_variance = normalize_variance
        if count_rule not in COUNT_RULES:
            raise ValueError(f"model_conf.count_rule must be one of {COUNT_RULES}, got {count_rule!r}")
        if count_rule != "attractor" and count_branch_conf is None:
            raise ValueError(f"model_conf.count_rule {count_rule!r} needs a count branch (model_conf.count_branch_conf)")
        if count_bias is not None and len(count_bias) != max_num_src + 1:
            raise ValueError(
                f"model_conf.count_bias must hold max_num_src + 1 = {max_num_src + 1} values "
                f"(counts 0 .. {max_num_src}), got {len(count_bias)}"
            )
        if count_attractor_weight < 0:
            raise ValueError(f"model_conf.count_attractor_weight must be >= 0, got {count_attractor_weight}")
        self.count_rule = count_rule
        self.count_attractor_weight = float(count_attractor_weight)
        self.count_bias = [float(b) for b in count_bias] if count_bias is not None else [0.0] * (max_num_src + 1)
        self.count_branch = None
        if count_branch_conf is not None:
            self.count_branch = build_count_branch(count_branch_conf, encoder.output_dim, max_num_src + 1)

    def forward_encoder(
        self, speech: torch.Tensor, lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, BackboneOutput]:
        """Waveforms [B, T] -> encoder features [B, T', N], their lengths, trunk output."""
        feats, flens = self.encoder(speech, lengths)
        return feats, flens, self.separator.encode(feats, flens)

    def forward_separate(
        self,
        feats: torch.Tensor,
        trunk: BackboneOutput,
        counts: Optional[torch.Tensor],
        num_attractors: int,
        flens: Optional[torch.Tensor] = None,
        speech: Optional[torch.Tensor] = None,
        lengths: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Attractors, existence logits and one masked feature map per counted source.

        Args:
            feats: encoder features [B, T', N].
            trunk: the trunk output.
            counts: sources to separate per utterance [B] (0 allowed); None: the model
                counts (``count_rule``; between ``min_num_src`` and ``max_num_src``).
            num_attractors: attractors to decode (>= counts.max() + 1).
            flens: the features' lengths [B] (the count branch pools over them; None:
                every frame).
            speech, lengths: the (normalised) mixtures [B, T] and their lengths [B],
                which a count branch of type ``logmel`` reads.

        Returns:
            attractors [B, A, D], logits [B, A], counts [B], masked features [M, T', N]
            for the M = counts.sum() (utterance, source) pairs, and their batch index [M].
        """
        attractors, logits = self.separator.attractors(trunk, num_attractors)
        if counts is None:
            counts = self.estimate_count(feats, flens, trunk, logits, speech, lengths)
        index, slot = pairs(counts)
        if index.numel() == 0:  # nothing counted (min_num_src 0)
            return attractors, logits, counts, feats.new_zeros(0, *feats.shape[1:]), index
        masked = self.separator.mask(trunk, feats, attractors[index, slot], index)
        return attractors, logits, counts, masked, index

    def estimate_count(
        self,
        feats: torch.Tensor,
        flens: Optional[torch.Tensor],
        trunk: BackboneOutput,
        logits: torch.Tensor,
        speech: Optional[torch.Tensor] = None,
        lengths: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Source counts [B] in [min_num_src, max_num_src] by ``count_rule``."""
        if self.count_rule == "attractor":
            return self.separator.estimate_count(trunk, logits, self.max_num_src, self.min_num_src)
        branch, attractors = self.count_log_posteriors(feats, flens, logits, speech, lengths)
        weight = self.count_attractor_weight if self.count_rule == "product" else 0.0
        return self.count_from_scores(branch, attractors, weight, self.count_bias)

    def count_log_posteriors(
        self,
        feats: torch.Tensor,
        flens: Optional[torch.Tensor],
        logits: torch.Tensor,
        speech: Optional[torch.Tensor] = None,
        lengths: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The two views of the count [B, K + 1] that the rules combine: the count
        branch's log-posterior and the attractors' (existence logits read in order)."""
        branch = torch.log_softmax(self.count_branch_logits(feats, flens, speech, lengths), dim=-1)
        return branch, existence_count_log_posterior(logits, self.max_num_src)

    def count_from_scores(
        self, branch: torch.Tensor, attractors: torch.Tensor, weight: float, bias: Sequence[float]
    ) -> torch.Tensor:
        """``weighted_count`` between this model's ``min_num_src`` and ``max_num_src``."""
        return weighted_count(branch, attractors, weight, bias, self.min_num_src, self.max_num_src)

    def count_branch_logits(
        self,
        feats: torch.Tensor,
        flens: Optional[torch.Tensor],
        speech: Optional[torch.Tensor],
        lengths: Optional[torch.Tensor],
    ) -> torch.Tensor:
        """The count branch's logits [B, K + 1], from what it reads: the encoder's
        features or the (normalised) waveforms."""
        if self.count_branch.reads == "waveform":
            if speech is None:
                raise ValueError("the logmel count branch needs the mixtures' waveforms (speech)")
            return self.count_branch(speech, lengths)
        return self.count_branch(feats, flens)

    def forward_extract(
        self,
        feats: torch.Tensor,
        trunk: BackboneOutput,
        cues: torch.Tensor,
        index: torch.Tensor,
        frames: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Masked feature maps [M, T', N] for cue vectors [M, D] of batch rows ``index``
        (and their frame conditions [M, L, D], from time-aligned cues)."""
        return self.separator.mask(trunk, feats, cues, index, frames)

    def forward_decoder(self, masked: torch.Tensor, lengths: torch.Tensor, num_samples: int) -> torch.Tensor:
        """Masked features [M, T', N] -> waveforms [M, num_samples]."""
        wav, _ = self.decoder(masked, lengths)
        if wav.size(1) < num_samples:
            wav = torch.nn.functional.pad(wav, (0, num_samples - wav.size(1)))
        return wav[:, :num_samples]

    def forward_cues(
        self,
        trunk: BackboneOutput,
        batch: Batch,
        num_sources: int,
        lengths: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """Cue vectors of every source that has a cue.

        Args:
            lengths: the mixtures' valid samples [B] (time-aligned cues need them).

        Returns:
            cue vectors [B, K, D] (zeros where absent), validity [B, K] (bool), and the
            frame conditions of time-aligned cues [B, K, L, D] (zeros where absent;
            None when no source has one).
        """
        B = trunk.emb.size(0)
        D = self.separator.emb_dim
        cues = trunk.emb.new_zeros(B, num_sources, D)
        valid = torch.zeros(B, num_sources, dtype=torch.bool, device=trunk.emb.device)
        frames = None
        for k in range(num_sources):
            inputs = cue_inputs(batch, k + 1, self.cue_network)
            if not inputs:
                continue
            present = torch.stack([lens > 0 for _, lens in inputs.values()], 1).any(1)  # [B]
            if not bool(present.any()):
                continue
            rows = present.nonzero().flatten()
            sub = {m: (x.index_select(0, rows), lens.index_select(0, rows)) for m, (x, lens) in inputs.items()}
            vec, track = self.cue_network(
                trunk.emb.index_select(0, rows), trunk.emb_lens.index_select(0, rows), sub,
                None if lengths is None else lengths.index_select(0, rows),
            )  # [R, D], [R, L, D] or None
            cues = cues.index_put((rows, torch.full_like(rows, k)), vec)
            if track is not None:
                if frames is None:
                    frames = trunk.emb.new_zeros(B, num_sources, *track.shape[1:])
                frames = frames.index_put((rows, torch.full_like(rows, k)), track)
            valid[rows, k] = True
        return cues, valid, frames

    def embed_example(self, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Audio examples [R, T] (none empty) -> their first attractor [R, D].

        The audio-example cue encoder's embedding (``USECueNetwork.bind``): an example
        is encoded as a mixture of one source would be.
        """
        wav, _ = self.normalize(wav, lengths)
        _, _, trunk = self.forward_encoder(wav, lengths)
        attractors, _ = self.separator.attractors(trunk, 1)
        return attractors[:, 0]

    def normalize(
        self, speech: torch.Tensor, lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Divide each waveform by its std over its valid samples; returns the scales [B]."""
        if not self.normalize_variance:
            return speech, speech.new_ones(speech.size(0))
        valid = torch.arange(speech.size(1), device=speech.device)[None, :] < lengths[:, None]
        n = valid.sum(1).clamp(min=1)
        mean = (speech * valid).sum(1) / n
        var = (((speech - mean[:, None]) * valid) ** 2).sum(1) / n
        scale = var.sqrt() + EPS
        return speech / scale[:, None], scale
