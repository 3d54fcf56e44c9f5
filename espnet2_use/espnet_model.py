"""USEModel: one network for sound separation (unknown count) and target extraction."""
import random
from typing import Dict, Optional, Tuple

import torch

from espnet2.enh.decoder.abs_decoder import AbsDecoder
from espnet2.enh.encoder.abs_encoder import AbsEncoder
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2_use.cue.cue_network import USECueNetwork
from espnet2_use.layers.abs_use_backbone import BackboneOutput
from espnet2_use.loss.alignment_loss import AttractorCueAlignment
from espnet2_use.loss.variable_pit import VariablePITSISNR, existence_bce, si_snr
from espnet2_use.separator.use_separator import USESeparator

EPS = 1e-8
EXTRACT_LEVELS = ("separation", "mixture")
TSE_TARGETS = ("one", "all")
STAT_KEYS = (
    "si_snr", "exist_bce", "count_acc", "tse_si_snr", "align_mse", "align_nce", "match_acc",
    "tag_bce", "att_tag_ce",
)


class USEModel(AbsESPnetModel):
    """USE: separation of an unknown number of sources and cue-driven extraction.

    The forward pass is split into named steps, so that training stage 1 (SS + EDA)
    and stage 2 (both branches, alignment) differ only by configuration:
    ``forward_encoder`` (waveform -> encoder features -> trunk), ``forward_separate``
    (EDA attractors -> shared mask head -> one output per attractor),
    ``forward_extract`` (cue vectors -> the same mask head), ``forward_decoder``
    (features -> waveforms) and the losses ``forward_loss_ss`` /
    ``forward_loss_tse`` / ``forward_loss_exist``.

    Training batches hold ``speech_mix``, ``speech_ref1..K`` (a zero-length reference
    is an absent source), ``num_src`` (optional; else the non-empty references are
    counted) and, for extraction, the cue entries named by
    ``USECueNetwork.data_name``. Each training batch runs one branch, drawn from a
    seeded stream keyed on the update count (identical on every data-parallel rank,
    and resumed with the checkpoint): the cue branch with probability
    ``cue_branch_ratio``, else the EDA branch. Validation runs both.

    Losses: EDA branch: PIT SI-SNR over the true sources + ``exist_weight`` * BCE on
    existence (+ ``align_weight`` * L_align when the batch has cues). Cue branch:
    ``tse_weight`` * negative SI-SNR of the extracted targets (one per mixture, or
    every source with a cue: ``tse_targets``). Both branches, with
    ``tag_weight`` > 0: + ``tag_weight`` * multi-label BCE of the trunk's sound tags
    (which classes of the label vocabulary sound in the mixture; the EDA reads the
    same embeddings to count).

    Args:
        encoder: ESPnet encoder (``conv`` for USE-S, ``stft`` for USE-B).
        separator: the USE separator.
        decoder: ESPnet decoder matching the encoder.
        cue_network: the multimodal cue network (None: separation only, stage 1).
        max_num_src: the largest count K (the EDA decodes K + 1 attractors).
        min_num_src: the smallest count inference returns. 1 (default): a mixture
            that is not silent holds at least one source, so the first attractor is
            kept even when its probability is low (silent inputs are caught before
            the model). 0: the EDA's count as it is.
        cue_branch_ratio: share of training batches that run the cue branch.
        exist_weight: weight of the existence BCE. The SI-SNR terms are in dB (tens),
            the BCE in nats (below one); with weight 1 the count is learned far later
            than the separation, hence the default of 10.
        tse_weight: weight of the extraction loss.
        tse_targets: which sources a cue-branch batch extracts in training. ``one``: one
            source with a cue per mixture, drawn at random. ``all``: every source with a
            cue, each alone in the mask head as at inference (one pass of the mask head
            per source rank); the trunk runs once for all of them. Validation extracts
            the first source with a cue either way.
        align_weight: weight of the attractor-cue alignment loss.
        align_conf: keyword arguments of ``AttractorCueAlignment``.
        tag_weight: weight of the tagging loss (needs a label cue encoder: its
            vocabulary is the tag set, and the batch's ``label_spk{k}`` the targets).
        attractor_tag_weight: weight of the attractors' classification (EDA branch):
            the same tag head names the class of the source PIT assigned to each
            attractor (cross-entropy), so attractors are class-discriminative from
            stage 1 on.
        si_snr_clamp_db: clamp of the SI-SNR terms (None: none).
        normalize_variance: divide the mixture (and references) by its std first,
            and scale estimates back at inference.
        branch_seed: seed of the branch stream.
        extract_feats_in_collect_stats: ESPnet's collect-stats switch.

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
        cue_branch_ratio: float = 0.0,
        exist_weight: float = 10.0,
        tse_weight: float = 1.0,
        tse_targets: str = "one",
        align_weight: float = 0.0,
        align_conf: Optional[Dict] = None,
        tag_weight: float = 0.0,
        attractor_tag_weight: float = 0.0,
        si_snr_clamp_db: Optional[float] = None,
        normalize_variance: bool = True,
        branch_seed: int = 0,
        extract_feats_in_collect_stats: bool = False,
    ):
        super().__init__()
        if max_num_src < 1:
            raise ValueError(f"model_conf.max_num_src must be >= 1, got {max_num_src}")
        if not 0 <= min_num_src <= max_num_src:
            raise ValueError(
                f"model_conf.min_num_src must lie in [0, max_num_src={max_num_src}], got {min_num_src}"
            )
        if not 0.0 <= cue_branch_ratio <= 1.0:
            raise ValueError(f"model_conf.cue_branch_ratio must lie in [0, 1], got {cue_branch_ratio}")
        if cue_network is None and (cue_branch_ratio > 0 or align_weight > 0):
            raise ValueError(
                "model_conf.cue_branch_ratio / align_weight > 0 need a cue network "
                "(set cue_encoders in the config)"
            )
        if tse_targets not in TSE_TARGETS:
            raise ValueError(f"model_conf.tse_targets must be one of {TSE_TARGETS}, got {tse_targets!r}")
        tags = tag_weight > 0 or attractor_tag_weight > 0
        if tags and (cue_network is None or "label" not in cue_network.encoders):
            raise ValueError(
                "model_conf.tag_weight / attractor_tag_weight > 0 need a label cue encoder "
                "(cue_encoders.label): its label list is the tag vocabulary"
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
        self.cue_branch_ratio = cue_branch_ratio
        self.exist_weight = exist_weight
        self.tse_weight = tse_weight
        self.tse_targets = tse_targets
        self.align_weight = align_weight
        self.pit = VariablePITSISNR(clamp_db=si_snr_clamp_db)
        self.align = AttractorCueAlignment(**(align_conf or {}))
        self.tag_weight = tag_weight
        self.attractor_tag_weight = attractor_tag_weight
        self.tag_head = None
        if tags:
            num_tags = len(cue_network.encoders["label"].labels)
            self.tag_head = torch.nn.Linear(separator.emb_dim, num_tags)
        self.si_snr_clamp_db = si_snr_clamp_db
        self.normalize_variance = normalize_variance
        self.branch_seed = branch_seed
        self.extract_feats_in_collect_stats = extract_feats_in_collect_stats
        # Update counter: keys the branch stream, saved with checkpoints.
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    # ------------------------------------------------------------------ steps
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
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Attractors, existence logits and one masked feature map per counted source.

        Args:
            feats: encoder features [B, T', N].
            trunk: the trunk output.
            counts: sources to separate per utterance [B] (0 allowed); None: the EDA
                counts (between ``min_num_src`` and ``max_num_src``).
            num_attractors: attractors to decode (>= counts.max() + 1).

        Returns:
            attractors [B, A, D], logits [B, A], counts [B], masked features [M, T', N]
            for the M = counts.sum() (utterance, source) pairs, and their batch index [M].
        """
        attractors, logits = self.separator.attractors(trunk, num_attractors)
        if counts is None:
            counts = self.separator.count(logits, self.max_num_src, self.min_num_src)
        index, slot = self._pairs(counts)
        if index.numel() == 0:  # nothing counted (min_num_src 0)
            return attractors, logits, counts, feats.new_zeros(0, *feats.shape[1:]), index
        masked = self.separator.mask(trunk, feats, attractors[index, slot], index)
        return attractors, logits, counts, masked, index

    def forward_extract(
        self,
        feats: torch.Tensor,
        trunk: BackboneOutput,
        cues: torch.Tensor,
        index: torch.Tensor,
    ) -> torch.Tensor:
        """Masked feature maps [M, T', N] for cue vectors [M, D] of batch rows ``index``."""
        return self.separator.mask(trunk, feats, cues, index)

    def _extract_alone(
        self, feats: torch.Tensor, trunk: BackboneOutput, cues: torch.Tensor, rows: torch.Tensor
    ) -> torch.Tensor:
        """``forward_extract`` for cue vectors [M, D] whose batch rows [M] may repeat.

        The mask head's inter-source path joins the queries of one row; cues of one
        mixture must not see each other (at inference each is extracted alone), so
        the mask head runs once per rank: the first cue of every row, then the second...
        """
        order = torch.argsort(rows, stable=True)
        sorted_rows = rows[order]
        starts = torch.searchsorted(sorted_rows, sorted_rows)  # first place of each row
        rank = torch.empty_like(rows)
        rank[order] = torch.arange(rows.numel(), device=rows.device) - starts
        picked, parts = [], []
        for r in range(int(rank.max()) + 1):
            sel = (rank == r).nonzero().flatten()
            picked.append(sel)
            parts.append(self.forward_extract(feats, trunk, cues[sel], rows[sel]))
        return torch.cat(parts)[torch.argsort(torch.cat(picked))]

    def forward_decoder(self, masked: torch.Tensor, lengths: torch.Tensor, num_samples: int) -> torch.Tensor:
        """Masked features [M, T', N] -> waveforms [M, num_samples]."""
        wav, _ = self.decoder(masked, lengths)
        if wav.size(1) < num_samples:
            wav = torch.nn.functional.pad(wav, (0, num_samples - wav.size(1)))
        return wav[:, :num_samples]

    def forward_cues(
        self,
        trunk: BackboneOutput,
        batch: Dict[str, torch.Tensor],
        num_sources: int,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Cue vectors of every source that has a cue.

        Returns:
            cue vectors [B, K, D] (zeros where absent) and validity [B, K] (bool).
        """
        B = trunk.emb.size(0)
        D = self.separator.emb_dim
        cues = trunk.emb.new_zeros(B, num_sources, D)
        valid = torch.zeros(B, num_sources, dtype=torch.bool, device=trunk.emb.device)
        for k in range(num_sources):
            inputs = self.cue_inputs(batch, k + 1)
            if not inputs:
                continue
            present = torch.stack([lens > 0 for _, lens in inputs.values()], 1).any(1)  # [B]
            if not bool(present.any()):
                continue
            rows = present.nonzero().flatten()
            sub = {m: (x.index_select(0, rows), lens.index_select(0, rows)) for m, (x, lens) in inputs.items()}
            vec = self.cue_network(
                trunk.emb.index_select(0, rows), trunk.emb_lens.index_select(0, rows), sub
            )  # [R, D]
            cues = cues.index_put((rows, torch.full_like(rows, k)), vec)
            valid[rows, k] = True
        return cues, valid

    def cue_inputs(
        self, batch: Dict[str, torch.Tensor], k: int
    ) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
        """modality -> (input, lengths) of source k's cues found in the batch."""
        inputs = {}
        if self.cue_network is None:
            return inputs
        for modality in self.cue_network.modalities:
            name = self.cue_network.data_name(modality, k)
            if name not in batch:
                continue
            inputs[modality] = (batch[name], batch[f"{name}_lengths"])
        return inputs

    def embed_example(self, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Audio examples [R, T] (none empty) -> their first attractor [R, D].

        The audio-example cue encoder's embedding (``USECueNetwork.bind``): an example
        is encoded as a mixture of one source would be.
        """
        wav, _ = self._normalize(wav, lengths)
        _, _, trunk = self.forward_encoder(wav, lengths)
        attractors, _ = self.separator.attractors(trunk, 1)
        return attractors[:, 0]

    def _stats(self, like: torch.Tensor) -> Dict[str, torch.Tensor]:
        nan = like.new_tensor(float("nan"))
        return {key: nan for key in STAT_KEYS}

    def forward_loss_exist(
        self, logits: torch.Tensor, counts: torch.Tensor
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """``exist_weight`` * existence BCE, and counting accuracy."""
        stats = self._stats(logits)
        exist = existence_bce(logits, counts)
        stats["exist_bce"] = exist.detach()
        estimated = self.separator.count(logits, self.max_num_src, self.min_num_src)
        stats["count_acc"] = (estimated == counts).float().mean()
        return self.exist_weight * exist, stats

    def forward_loss_ss(
        self,
        refs: torch.Tensor,
        counts: torch.Tensor,
        est: torch.Tensor,
        logits: torch.Tensor,
        attractors: torch.Tensor,
        cues: Optional[torch.Tensor] = None,
        cue_valid: Optional[torch.Tensor] = None,
        classes: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Separation branch: PIT SI-SNR + existence (+ alignment with the PIT permutation;
        ``classes`` [B, K], the sources' label ids or -1, keep same-class attractors of
        other mixtures out of InfoNCE's negatives)."""
        loss, stats = self.forward_loss_exist(logits, counts)
        pit, stats["si_snr"], perm = self.pit(est, refs, counts)
        loss = loss + pit
        if classes is not None and self.attractor_tag_weight > 0:
            named = (perm >= 0) & (classes >= 0)  # [B, K]
            if bool(named.any()):
                rows, slots = named.nonzero(as_tuple=True)
                att_logits = self.tag_head(attractors[rows, perm[rows, slots]])  # [P, V]
                ce = torch.nn.functional.cross_entropy(att_logits, classes[rows, slots])
                stats["att_tag_ce"] = ce.detach()
                loss = loss + self.attractor_tag_weight * ce
        if cues is not None and cue_valid is not None and self.align_weight > 0:
            align, stats["align_mse"], stats["align_nce"], stats["match_acc"] = self.align(
                attractors[:, : refs.size(1)], counts, cues, cue_valid, perm, classes
            )
            loss = loss + self.align_weight * align
        return loss, stats

    def forward_loss_tag(
        self, trunk: BackboneOutput, classes: torch.Tensor, counts: torch.Tensor
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """``tag_weight`` * multi-label BCE of the mixture's sound classes.

        Per-chunk tag logits of the trunk embeddings are pooled over the valid chunks
        by log-mean-exp (between mean and max: a short event still tags its mixture).
        Rows with a source of unknown class (-1) are left out.

        Args:
            trunk: the trunk output (``emb`` [B, S, D], ``emb_lens`` [B]).
            classes: label ids of the sources [B, K] (-1: no source, or no label).
            counts: sources per mixture [B].
        """
        stats = self._stats(trunk.emb)
        logits = self.tag_head(trunk.emb)  # [B, S, V]
        S = logits.size(1)
        valid = torch.arange(S, device=logits.device)[None, :] < trunk.emb_lens[:, None]
        logits = logits.masked_fill(~valid[..., None], float("-inf"))
        pooled = torch.logsumexp(logits, dim=1) - trunk.emb_lens.clamp(min=1).log()[:, None]
        targets = torch.zeros_like(pooled)
        rows, slots = (classes >= 0).nonzero(as_tuple=True)
        targets[rows, classes[rows, slots]] = 1.0
        # A source without a label would be a false negative: its mixture is left out.
        beyond = torch.arange(classes.size(1), device=classes.device)[None, :] >= counts[:, None]
        known = ((classes >= 0) | beyond).all(1) & (counts > 0)
        if not bool(known.any()):
            return pooled.new_tensor(0.0), stats
        bce = torch.nn.functional.binary_cross_entropy_with_logits(pooled[known], targets[known])
        stats["tag_bce"] = bce.detach()
        return self.tag_weight * bce, stats

    def forward_loss_tse(
        self, tse_est: torch.Tensor, targets: torch.Tensor
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Cue branch: ``tse_weight`` * negative SI-SNR of the extracted targets [R, T]."""
        stats = self._stats(tse_est)
        scores = si_snr(tse_est, targets)  # [R]
        if self.si_snr_clamp_db is not None:
            scores = scores.clamp(max=self.si_snr_clamp_db)
        stats["tse_si_snr"] = scores.mean().detach()
        return -self.tse_weight * scores.mean(), stats

    # ---------------------------------------------------------------- forward
    def forward(
        self,
        speech_mix: torch.Tensor,
        speech_mix_lengths: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """Training / validation step.

        Args:
            speech_mix: mixtures [B, T].
            speech_mix_lengths: [B].
            kwargs: ``speech_ref{k}`` [B, T_k] (+ ``_lengths``), ``num_src`` [B, 1],
                cue entries, ``utt_id``.
        """
        B = speech_mix.size(0)
        lengths = self._lengths(speech_mix, speech_mix_lengths)
        speech_mix = speech_mix[:, : int(lengths.max())]
        T = speech_mix.size(1)
        refs, counts = self._references(kwargs, T, B)
        speech_mix, scale = self._normalize(speech_mix, lengths)
        refs = refs / scale[:, None, None]

        feats, flens, trunk = self.forward_encoder(speech_mix, lengths)
        has_cues = self.cue_network is not None
        if self.training:
            branches = [self._draw_branch()]
        else:
            branches = ["ss", "tse"] if has_cues and self.cue_branch_ratio > 0 else ["ss"]

        cues = cue_valid = None
        if has_cues and ("tse" in branches or self.align_weight > 0):
            cues, cue_valid = self.forward_cues(trunk, kwargs, refs.size(1))
            cue_valid = cue_valid & (
                torch.arange(refs.size(1), device=counts.device)[None, :] < counts[:, None]
            )
            if not bool(cue_valid.any()):
                cues = cue_valid = None
                branches = ["ss"]

        classes = None
        if self.tag_head is not None or cues is not None:
            classes = self._classes(kwargs, counts, refs.size(1))
        total = speech_mix.new_tensor(0.0)
        stats = {key: speech_mix.new_tensor(float("nan")) for key in STAT_KEYS}
        if self.tag_weight > 0:  # the tag head and the classes exist (a label encoder does)
            total, s = self.forward_loss_tag(trunk, classes, counts)
            stats.update({k: v for k, v in s.items() if not torch.isnan(v)})
        for branch in branches:
            if branch == "ss":
                attractors, logits, _, masked, index = self.forward_separate(
                    feats, trunk, counts, refs.size(1) + 1
                )
                est = self.forward_decoder(masked, lengths[index], T)
                est = self._scatter(est, counts, refs.shape)  # [B, K, T]
                loss, s = self.forward_loss_ss(
                    refs, counts, est, logits, attractors, cues=cues, cue_valid=cue_valid,
                    classes=classes,
                )
            else:
                rows, targets = self._pick_targets(cue_valid)
                masked = self._extract_alone(feats, trunk, cues[rows, targets], rows)
                tse_est = self.forward_decoder(masked, lengths[rows], T)
                loss, s = self.forward_loss_tse(tse_est, refs[rows, targets])
            total = total + loss
            stats.update({k: v for k, v in s.items() if not torch.isnan(v)})
        stats["loss"] = total.detach()
        loss, stats, weight = force_gatherable((total, stats, B), total.device)
        return loss, stats, weight

    # -------------------------------------------------------------- inference
    @torch.no_grad()
    def separate(
        self,
        speech: torch.Tensor,
        lengths: Optional[torch.Tensor] = None,
        num_src: Optional[torch.Tensor] = None,
        cue_batch: Optional[Dict[str, torch.Tensor]] = None,
        name_sources: bool = False,
    ) -> Dict[str, torch.Tensor]:
        """Separate mixtures; the EDA counts the sources unless ``num_src`` is given.

        Args:
            speech: mixtures [B, T].
            lengths: [B] (default: all T).
            num_src: forced counts [B] or one int (or None).
            cue_batch: batch entries with the sources' cues (as in training); when
                given, the cosine similarity of every source's cue vector to every
                attractor is returned (for matching accuracy).
            name_sources: score every attractor against the cue vector of every label
                of the label encoder (they share one space).

        Returns:
            dict with ``sources`` [B, S, T] (S = the largest count, at least 1; rows
            beyond an utterance's count are zeros), ``counts`` [B], ``existence_prob``
            [B, A] and ``attractors`` [B, A, D] (A = max(max_num_src, S) + 1); with
            ``cue_batch``: ``cue_similarity`` [B, K, A] and ``cue_valid`` [B, K]; with
            ``name_sources``: ``label_scores`` [B, A, V].
        """
        lengths = self._lengths(speech, lengths)
        T = speech.size(1)
        speech, scale = self._normalize(speech, lengths)
        feats, flens, trunk = self.forward_encoder(speech, lengths)
        num_att = self.max_num_src + 1
        counts = None
        if num_src is not None:
            counts = torch.as_tensor(num_src, device=speech.device).long().view(-1)
            counts = counts.expand(speech.size(0)) if counts.numel() == 1 else counts
            num_att = max(num_att, int(counts.max()) + 1)
        attractors, logits, counts, est, index = self._separated(feats, trunk, counts, num_att, speech, lengths)
        S = max(int(counts.max()), 1)
        sources = speech.new_zeros(speech.size(0), S, T)
        if index.numel() > 0:
            sources = self._scatter(est * scale[index, None], counts, sources.shape)
        out = dict(
            sources=sources, counts=counts, existence_prob=torch.sigmoid(logits),
            attractors=attractors,
        )
        unit_att = torch.nn.functional.normalize(attractors, dim=-1)  # [B, A, D]
        if cue_batch is not None and self.cue_network is not None:
            cues, valid = self.forward_cues(trunk, cue_batch, self.max_num_src)
            unit_cue = torch.nn.functional.normalize(cues, dim=-1)  # [B, K, D]
            out["cue_similarity"] = unit_cue @ unit_att.transpose(1, 2)  # [B, K, A]
            out["cue_valid"] = valid
        if name_sources:
            out["label_scores"] = self.label_scores(trunk) @ unit_att.transpose(1, 2)
            out["label_scores"] = out["label_scores"].transpose(1, 2)  # [B, A, V]
        return out

    def label_scores(self, trunk: BackboneOutput) -> torch.Tensor:
        """Unit cue vectors of every label for each mixture, [B, V, D].

        The label's cue vector depends on the mixture (the fusion attends from its
        frames), so it is computed per mixture, all labels in one batch.
        """
        if self.cue_network is None or "label" not in self.cue_network.encoders:
            raise ValueError("this model has no label encoder: it cannot name sources")
        encoder = self.cue_network.encoders["label"]
        V = len(encoder.labels)
        ids = torch.arange(V, device=trunk.emb.device)[:, None]  # [V, 1]
        ones = torch.ones(V, dtype=torch.long, device=trunk.emb.device)
        rows = []
        for b in range(trunk.emb.size(0)):
            n = int(trunk.emb_lens[b])
            query = trunk.emb[b : b + 1, :n].expand(V, n, -1)
            vec = self.cue_network(query, torch.full_like(ones, n), {"label": (ids, ones)})
            rows.append(torch.nn.functional.normalize(vec, dim=-1))
        return torch.stack(rows)  # [B, V, D]

    @torch.no_grad()
    def extract(
        self,
        speech: torch.Tensor,
        lengths: Optional[torch.Tensor],
        cue_inputs: Dict[str, Tuple[torch.Tensor, torch.Tensor]],
        level: str = "separation",
    ) -> Dict[str, torch.Tensor]:
        """Extract the sound the cues describe.

        SI-SNR training leaves the level of the output free; ``level`` says how
        inference sets it:

        - ``separation`` (default): from the separated source that the target most
          resembles. The EDA separates the mixture, the separated sources are fitted
          to the mixture together (``fit_to_mixture``: the sources share the mixture
          out among themselves), and the target takes the gain that brings it closest
          to the one it correlates with most. Costs one separation more.
        - ``mixture``: the projection of the mixture onto the target. The other sounds
          that leak into the target inflate it (on mini_use's validation set the
          level of least error lay a median 2.8 dB below it).

        Args:
            speech: mixtures [B, T].
            lengths: [B] (or None).
            cue_inputs: modality -> (model input, lengths), as ``cue_inputs`` builds
                them (an ``example`` entry holds audio examples [B, T_e]).
            level: ``separation`` or ``mixture``.

        Returns:
            dict with ``target`` [B, T] and ``cue`` vectors [B, D].
        """
        if self.cue_network is None:
            raise ValueError("this model has no cue network: it was trained for separation only")
        if level not in EXTRACT_LEVELS:
            raise ValueError(f"level must be one of {EXTRACT_LEVELS}, got {level!r}")
        lengths = self._lengths(speech, lengths)
        speech, scale = self._normalize(speech, lengths)
        feats, flens, trunk = self.forward_encoder(speech, lengths)
        cues = self.cue_network(trunk.emb, trunk.emb_lens, cue_inputs)  # [B, D]
        index = torch.arange(speech.size(0), device=speech.device)
        masked = self.forward_extract(feats, trunk, cues, index)
        target = self.forward_decoder(masked, lengths, speech.size(1))
        fitted = self.fit_to_mixture(target, index, speech, lengths)
        if level == "separation":
            fitted = self._level_from_separation(target, fitted, feats, trunk, speech, lengths)
        return dict(target=fitted * scale[:, None], cue=cues)

    def _separated(
        self,
        feats: torch.Tensor,
        trunk: BackboneOutput,
        counts: Optional[torch.Tensor],
        num_attractors: int,
        speech: torch.Tensor,
        lengths: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``forward_separate``, then the waveforms [M, T], fitted to their mixtures together
        (normalised scale), in place of the masked features."""
        attractors, logits, counts, masked, index = self.forward_separate(feats, trunk, counts, num_attractors)
        est = masked.new_zeros(0, speech.size(1))
        if index.numel() > 0:
            est = self.forward_decoder(masked, lengths[index], speech.size(1))
            est = self.fit_to_mixture(est, index, speech, lengths)
        return attractors, logits, counts, est, index

    def _level_from_separation(
        self,
        target: torch.Tensor,
        fallback: torch.Tensor,
        feats: torch.Tensor,
        trunk: BackboneOutput,
        speech: torch.Tensor,
        lengths: torch.Tensor,
    ) -> torch.Tensor:
        """Targets [B, T] scaled to the separated source each correlates with most.

        Rows the EDA finds no source in (``min_num_src`` 0) keep ``fallback``.
        """
        _, _, _, est, index = self._separated(feats, trunk, None, self.max_num_src + 1, speech, lengths)
        out = fallback.clone()
        for b in index.unique().tolist():
            n = int(lengths[b])
            t = target[b, :n].double()
            if float(t @ t) <= 0.0:  # a silent target stays silent
                continue
            sources = est[index == b, :n].double()  # [S, n]
            cos = (sources @ t).abs() / (sources.norm(dim=1) * t.norm()).clamp(min=1e-12)
            match = sources[int(cos.argmax())]
            out[b] = target[b] * float((t @ match) / (t @ t))
        return out

    @staticmethod
    def fit_to_mixture(
        est: torch.Tensor,
        index: torch.Tensor,
        speech: torch.Tensor,
        lengths: torch.Tensor,
        ridge: float = 1e-3,
    ) -> torch.Tensor:
        """Scale estimates by the gains that best rebuild their mixture from them.

        SI-SNR training leaves each output's scale free; at inference the gains g
        minimising ||mixture - sum_s g_s est_s||^2 (least squares, lightly ridged) set
        it. For one extracted target this is its projection onto the mixture, which
        recovers the target's level when the other sounds are uncorrelated with it.

        Args:
            est: estimates [M, T] of the mixtures ``index`` [M].
            speech: mixtures [B, T]; lengths [B].
        """
        out = est.clone()
        for b in index.unique().tolist():
            rows = (index == b).nonzero().flatten()
            n = int(lengths[b])
            E = est[rows, :n].double()  # [S, n]
            gram = E @ E.t()
            gram = gram + ridge * gram.diagonal().mean().clamp(min=1e-12) * torch.eye(
                len(rows), dtype=gram.dtype, device=gram.device
            )
            gains = torch.linalg.solve(gram, E @ speech[b, :n].double())  # [S]
            out[rows] = est[rows] * gains.to(est.dtype)[:, None]
        return out

    def collect_feats(
        self, speech_mix: torch.Tensor, speech_mix_lengths: torch.Tensor, **kwargs
    ) -> Dict[str, torch.Tensor]:
        speech_mix = speech_mix[:, : speech_mix_lengths.max()]
        return {"feats": speech_mix, "feats_lengths": speech_mix_lengths}

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _lengths(speech: torch.Tensor, lengths: Optional[torch.Tensor]) -> torch.Tensor:
        if lengths is None:
            return torch.full((speech.size(0),), speech.size(1), dtype=torch.long, device=speech.device)
        return lengths

    @classmethod
    def _scatter(cls, est: torch.Tensor, counts: torch.Tensor, shape) -> torch.Tensor:
        """Per-pair outputs [M, T] (in ``_pairs`` order) -> [B, S, T], zeros elsewhere."""
        index, slot = cls._pairs(counts)
        return est.new_zeros(shape).index_put((index, slot), est)

    @staticmethod
    def _pairs(counts: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(batch row, source slot) of every counted source: two [sum(counts)] tensors."""
        index = torch.arange(counts.numel(), device=counts.device).repeat_interleave(counts)
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(index.numel(), device=counts.device) - starts[index]
        return index, slot

    def _normalize(
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

    def _references(
        self, batch: Dict[str, torch.Tensor], T: int, B: int
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """References [B, K, T] (K = max_num_src) and counts [B], checked against each other."""
        if "speech_ref1" not in batch:
            raise ValueError("training needs references: speech_ref1 (spk1.scp) is missing")
        refs = batch["speech_ref1"].new_zeros(B, self.max_num_src, T)
        ref_lens = torch.zeros(B, self.max_num_src, dtype=torch.long, device=refs.device)
        for k in range(self.max_num_src):
            ref = batch.get(f"speech_ref{k + 1}")
            if ref is None:
                continue
            n = min(T, ref.size(1))
            refs[:, k, :n] = ref[:, :n]
            ref_lens[:, k] = batch.get(f"speech_ref{k + 1}_lengths", torch.full((B,), ref.size(1), device=refs.device))
        extra = [k for k in range(self.max_num_src + 1, 100) if f"speech_ref{k}" in batch]
        if extra:
            raise ValueError(
                f"the batch has speech_ref{extra[0]} but model_conf.max_num_src is {self.max_num_src}"
            )
        non_empty = ref_lens > 0  # [B, K]
        if "num_src" in batch:
            counts = batch["num_src"].view(B, -1)[:, 0].long()
        else:
            counts = non_empty.sum(1)
        expected = torch.arange(self.max_num_src, device=refs.device)[None, :] < counts[:, None]
        bad = (expected != non_empty).any(1) | (counts < 1)
        if bool(bad.any()):
            b = int(bad.nonzero()[0])
            utt = batch.get("utt_id", [f"row {b}"] * B)[b]
            raise ValueError(
                f"utterance {utt}: utt2num_src says {int(counts[b])} sources but the "
                f"non-empty references are speech_ref{[k + 1 for k in non_empty[b].nonzero().flatten().tolist()]}"
                f" (sources 1..n must be non-empty, the rest zero-length)"
            )
        return refs, counts

    def _classes(
        self, batch: Dict[str, torch.Tensor], counts: torch.Tensor, K: int
    ) -> Optional[torch.Tensor]:
        """Label ids of the sources [B, K] (-1: no label), or None without label cues."""
        if self.cue_network is None or "label" not in self.cue_network.modalities:
            return None
        classes = torch.full((counts.numel(), K), -1, dtype=torch.long, device=counts.device)
        for k in range(K):
            name = self.cue_network.data_name("label", k + 1)
            if name not in batch or batch[name].size(1) == 0:  # no row has one
                continue
            has = (batch[f"{name}_lengths"] > 0) & (counts > k)
            classes[has, k] = batch[name][has, 0].long()
        return classes

    def _draw_branch(self) -> str:
        """'tse' with probability cue_branch_ratio, from a stream keyed on the update count."""
        step = int(self.num_updates)
        self.num_updates += 1
        if self.cue_branch_ratio <= 0:
            return "ss"
        u = random.Random(self.branch_seed * 1_000_003 + step).random()
        return "tse" if u < self.cue_branch_ratio else "ss"

    def _pick_targets(self, cue_valid: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Targets (rows, source slots): in training every (row, source) with a cue
        (``tse_targets`` ``all``) or one per row at random; in evaluation the first
        per row."""
        if self.training and self.tse_targets == "all":
            return cue_valid.nonzero(as_tuple=True)
        rows = cue_valid.any(1).nonzero().flatten()
        valid = cue_valid[rows].float()
        if self.training:
            targets = torch.multinomial(valid, 1).flatten()
        else:
            targets = valid.argmax(1)
        return rows, targets
