"""USEModel, the trainable ESPnet model of USE: a batch in, the losses out.

Training only: the network's parts and shared steps are ``espnet2_use.model.network``,
what a trained model does for users is ``espnet2_use.model.inference``, batch reading
is ``espnet2_use.model.batch``.
"""
import random
from typing import Dict, List, Optional, Tuple

import torch

from espnet2.enh.decoder.abs_decoder import AbsDecoder
from espnet2.enh.encoder.abs_encoder import AbsEncoder
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2_use.counting.feature_counter import remix
from espnet2_use.cue.cue_network import USECueNetwork
from espnet2_use.layers.abs_use_backbone import BackboneOutput
from espnet2_use.loss.alignment_loss import AttractorCueAlignment
from espnet2_use.loss.variable_pit import VariablePITSISNR, existence_bce, si_snr
from espnet2_use.model.batch import (
    Batch,
    full_lengths,
    pick_targets,
    references,
    scatter,
    source_classes,
)
from espnet2_use.model.inference import USEInference
from espnet2_use.separator.use_separator import USESeparator

TSE_TARGETS = ("one", "all")
STAT_KEYS = (
    "si_snr", "exist_bce", "count_acc", "tse_si_snr", "align_mse", "align_nce", "match_acc",
    "tag_bce", "att_tag_ce", "count_ce", "count_head_acc",
    "count_branch_ce", "branch_count_acc", "remix_count_acc",
)


class USEModel(USEInference, AbsESPnetModel):
    """USE: separation of an unknown number of sources and cue-driven extraction.

    The trainable model: ``forward`` reads a batch and returns the loss, in named
    steps, so that training stage 1 (SS + EDA) and stage 2 (both branches, alignment)
    differ only by configuration:

    1. ``prepare_batch``: the mixtures, references and counts, normalised.
    2. ``forward_encoder``: waveforms -> encoder features -> trunk (``USENetwork``).
    3. ``draw_branches``: the branch(es) this batch runs.
    4. ``forward_batch_cues``: cue vectors of the sources that have cues.
    5. ``forward_loss_tag``: the sound-tag loss (optional).
    5b. ``forward_loss_count_branch``: the count branch's loss (optional).
    6. per branch, ``forward_ss_branch`` (``forward_separate`` -> ``forward_decoder``
       -> ``forward_loss_ss``) or ``forward_tse_branch`` (``forward_extract`` ->
       ``forward_decoder`` -> ``forward_loss_tse``).

    What a trained model does at inference (``separate``, ``extract``) lives in
    ``espnet2_use.model.inference``; batch reading in ``espnet2_use.model.batch``.

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
        count_weight: weight of the count head's cross-entropy (EDA branch; only for an
            attractor with a count head, ``attractor: tda`` with ``count_head: true``).
            Its accuracy is logged as ``count_head_acc`` beside the threshold's
            ``count_acc``.
        count_branch_conf: the count branch (``espnet2_use.counting.feature_counter``), a
            light counter over the encoder's frames, detached from them (it teaches the
            encoder nothing; ``type: frames``), or over the waveform's log-mel
            spectrogram (``type: logmel``); None: none. It learns the count (0 .. K,
            cross-entropy) of the batch's mixtures and of ``count_remixes`` mixtures
            made afresh from the batch's references at every training step.
        count_rule: who counts at inference: ``attractor``, ``branch`` or ``product``
            (``USENetwork``).
        count_attractor_weight, count_bias: how the ``product`` and ``branch`` rules
            weigh the two views of the count (``USENetwork``; chosen on a validation
            set by ``espnet2_use.bin.use_count_calibrate``).
        count_branch_weight: weight of the count branch's cross-entropy.
        count_remixes: mixtures made from the batch's references per training step for
            the count branch (0: the batch alone).
        count_remix_gain_db: each remixed source's random gain range, +- dB.
        si_snr_clamp_db: clamp of the SI-SNR terms (None: none).
        normalize_variance: divide the mixture (and references) by its std first,
            and scale estimates back at inference.
        branch_seed: seed of the branch stream (and of the remixes).
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
        count_weight: float = 1.0,
        count_branch_conf: Optional[Dict] = None,
        count_rule: str = "attractor",
        count_attractor_weight: float = 1.0,
        count_bias: Optional[List[float]] = None,
        count_branch_weight: float = 1.0,
        count_remixes: int = 32,
        count_remix_gain_db: float = 5.0,
        si_snr_clamp_db: Optional[float] = None,
        normalize_variance: bool = True,
        branch_seed: int = 0,
        extract_feats_in_collect_stats: bool = False,
    ):
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
        if count_remixes < 0:
            raise ValueError(f"model_conf.count_remixes must be >= 0, got {count_remixes}")
        super().__init__(
            encoder, separator, decoder, cue_network=cue_network, max_num_src=max_num_src,
            min_num_src=min_num_src, normalize_variance=normalize_variance,
            count_branch_conf=count_branch_conf, count_rule=count_rule,
            count_attractor_weight=count_attractor_weight, count_bias=count_bias,
        )
        self.count_branch_weight = count_branch_weight
        self.count_remixes = count_remixes
        self.count_remix_gain_db = count_remix_gain_db
        self.cue_branch_ratio = cue_branch_ratio
        self.exist_weight = exist_weight
        self.tse_weight = tse_weight
        self.tse_targets = tse_targets
        self.align_weight = align_weight
        self.pit = VariablePITSISNR(clamp_db=si_snr_clamp_db)
        self.align = AttractorCueAlignment(**(align_conf or {}))
        self.tag_weight = tag_weight
        self.attractor_tag_weight = attractor_tag_weight
        self.count_weight = count_weight
        self.tag_head = None
        if tags:
            num_tags = len(cue_network.encoders["label"].labels)
            self.tag_head = torch.nn.Linear(separator.emb_dim, num_tags)
        self.si_snr_clamp_db = si_snr_clamp_db
        self.branch_seed = branch_seed
        self.extract_feats_in_collect_stats = extract_feats_in_collect_stats
        # Update counter: keys the branch stream, saved with checkpoints.
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

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
        speech_mix, lengths, refs, counts = self.prepare_batch(speech_mix, speech_mix_lengths, kwargs)
        feats, flens, trunk = self.forward_encoder(speech_mix, lengths)
        branches = self.draw_branches()
        cues, cue_valid, cue_frames, branches = self.forward_batch_cues(
            trunk, kwargs, lengths, counts, refs.size(1), branches
        )
        classes = None
        if self.tag_head is not None or cues is not None:
            classes = source_classes(kwargs, counts, refs.size(1), self.cue_network)

        total = speech_mix.new_tensor(0.0)
        stats = self._stats(speech_mix)
        if self.tag_weight > 0:  # the tag head and the classes exist (a label encoder does)
            total, s = self.forward_loss_tag(trunk, classes, counts)
            stats.update({k: v for k, v in s.items() if not torch.isnan(v)})
        if self.count_branch is not None:
            loss, s = self.forward_loss_count_branch(feats, flens, refs, counts, speech_mix, lengths)
            total = total + loss
            stats.update({k: v for k, v in s.items() if not torch.isnan(v)})
        for branch in branches:
            if branch == "ss":
                loss, s = self.forward_ss_branch(feats, trunk, lengths, refs, counts, cues, cue_valid, classes)
            else:
                loss, s = self.forward_tse_branch(feats, trunk, lengths, refs, cues, cue_valid, cue_frames)
            total = total + loss
            stats.update({k: v for k, v in s.items() if not torch.isnan(v)})
        stats["loss"] = total.detach()
        loss, stats, weight = force_gatherable((total, stats, B), total.device)
        return loss, stats, weight

    def prepare_batch(
        self, speech_mix: torch.Tensor, speech_mix_lengths: Optional[torch.Tensor], batch: Batch
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mixtures cut to the longest [B, T], lengths [B], references [B, K, T] and
        counts [B]; mixtures and references divided by the mixture's std."""
        lengths = full_lengths(speech_mix, speech_mix_lengths)
        speech_mix = speech_mix[:, : int(lengths.max())]
        refs, counts = references(batch, speech_mix.size(1), speech_mix.size(0), self.max_num_src)
        speech_mix, scale = self.normalize(speech_mix, lengths)
        return speech_mix, lengths, refs / scale[:, None, None], counts

    def draw_branches(self) -> List[str]:
        """Training: one branch from the seeded stream; validation: both (if cues train)."""
        if self.training:
            return [self._draw_branch()]
        return ["ss", "tse"] if self.cue_network is not None and self.cue_branch_ratio > 0 else ["ss"]

    def forward_batch_cues(
        self,
        trunk: BackboneOutput,
        batch: Batch,
        lengths: torch.Tensor,
        counts: torch.Tensor,
        K: int,
        branches: List[str],
    ) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor], Optional[torch.Tensor], List[str]]:
        """Cue vectors [B, K, D], validity [B, K] and frame conditions [B, K, L, D] (None
        without time-aligned cues) of the counted sources with cues, when a branch needs
        them (None otherwise); the branches, with the cue branch dropped when no source
        has a cue."""
        if self.cue_network is None or ("tse" not in branches and self.align_weight <= 0):
            return None, None, None, branches
        cues, cue_valid, frames = self.forward_cues(trunk, batch, K, lengths)
        cue_valid = cue_valid & (torch.arange(K, device=counts.device)[None, :] < counts[:, None])
        if not bool(cue_valid.any()):
            return None, None, None, ["ss"]
        return cues, cue_valid, frames, branches

    def forward_ss_branch(
        self,
        feats: torch.Tensor,
        trunk: BackboneOutput,
        lengths: torch.Tensor,
        refs: torch.Tensor,
        counts: torch.Tensor,
        cues: Optional[torch.Tensor],
        cue_valid: Optional[torch.Tensor],
        classes: Optional[torch.Tensor],
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """EDA branch: separate the true count of sources, then ``forward_loss_ss``."""
        attractors, logits, _, masked, index = self.forward_separate(feats, trunk, counts, refs.size(1) + 1)
        est = self.forward_decoder(masked, lengths[index], refs.size(2))
        est = scatter(est, counts, refs.shape)  # [B, K, T]
        loss, stats = self.forward_loss_ss(
            refs, counts, est, logits, attractors, cues=cues, cue_valid=cue_valid, classes=classes,
        )
        if self.separator.has_count_head:
            count_loss, count_stats = self.forward_loss_count(trunk, counts)
            loss = loss + count_loss
            stats.update({k: v for k, v in count_stats.items() if not torch.isnan(v)})
        return loss, stats

    def forward_tse_branch(
        self,
        feats: torch.Tensor,
        trunk: BackboneOutput,
        lengths: torch.Tensor,
        refs: torch.Tensor,
        cues: torch.Tensor,
        cue_valid: torch.Tensor,
        cue_frames: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Cue branch: extract the picked targets, then ``forward_loss_tse``."""
        rows, targets = pick_targets(cue_valid, self.training, self.tse_targets == "all")
        frames = None if cue_frames is None else cue_frames[rows, targets]
        masked = self._extract_alone(feats, trunk, cues[rows, targets], rows, frames)
        tse_est = self.forward_decoder(masked, lengths[rows], refs.size(2))
        return self.forward_loss_tse(tse_est, refs[rows, targets])

    def _extract_alone(
        self, feats: torch.Tensor, trunk: BackboneOutput, cues: torch.Tensor, rows: torch.Tensor,
        frames: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """``forward_extract`` for cue vectors [M, D] (frame conditions [M, L, D]) whose
        batch rows [M] may repeat.

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
            parts.append(self.forward_extract(
                feats, trunk, cues[sel], rows[sel], None if frames is None else frames[sel]
            ))
        return torch.cat(parts)[torch.argsort(torch.cat(picked))]

    def _draw_branch(self) -> str:
        """'tse' with probability cue_branch_ratio, from a stream keyed on the update count."""
        step = int(self.num_updates)
        self.num_updates += 1
        if self.cue_branch_ratio <= 0:
            return "ss"
        u = random.Random(self.branch_seed * 1_000_003 + step).random()
        return "tse" if u < self.cue_branch_ratio else "ss"

    # ----------------------------------------------------------------- losses
    def _stats(self, like: torch.Tensor) -> Dict[str, torch.Tensor]:
        nan = like.new_tensor(float("nan"))
        return {key: nan for key in STAT_KEYS}

    def forward_loss_count_branch(
        self,
        feats: torch.Tensor,
        flens: torch.Tensor,
        refs: torch.Tensor,
        counts: torch.Tensor,
        speech: Optional[torch.Tensor] = None,
        lengths: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """``count_branch_weight`` * the count branch's cross-entropy on the batch's
        mixtures and, in training, on ``count_remixes`` mixtures of its references.

        ``speech`` and ``lengths`` (the normalised mixtures) are what a ``logmel``
        branch reads; a ``frames`` branch reads the (detached) features."""
        stats = self._stats(feats.real if feats.is_complex() else feats)
        feats, B = feats.detach(), counts.size(0)
        labels = counts
        if self.training and self.count_remixes > 0:
            # Keyed on the update count (drawn in draw_branches): resumed runs draw alike.
            generator = torch.Generator().manual_seed(self.branch_seed * 1_000_003 + int(self.num_updates) + 7919)
            mixes, mix_counts = remix(refs, counts, self.count_remixes, self.max_num_src,
                                      self.count_remix_gain_db, generator)
            if mixes is not None:  # one pass over the batch and its remixes (one set of batch statistics)
                with torch.no_grad():  # the encoder learns from separation alone
                    mix_lengths = torch.full((mixes.size(0),), mixes.size(1), dtype=torch.long, device=mixes.device)
                    mixes, _ = self.normalize(mixes, mix_lengths)
                    if self.count_branch.reads == "features":
                        rfeats, rflens = self.encoder(mixes, mix_lengths)
                        feats, flens = torch.cat([feats, rfeats]), torch.cat([flens, rflens])
                if speech is not None:
                    speech, lengths = torch.cat([speech, mixes]), torch.cat([lengths, mix_lengths])
                labels = torch.cat([counts, mix_counts])
        logits = self.count_branch_logits(feats, flens, speech, lengths)
        ce = torch.nn.functional.cross_entropy(logits[:B], counts)
        right = (logits.argmax(-1) == labels).float()
        stats["branch_count_acc"] = right[:B].mean()
        if labels.size(0) > B:
            ce = ce + torch.nn.functional.cross_entropy(logits[B:], labels[B:])
            stats["remix_count_acc"] = right[B:].mean()
        stats["count_branch_ce"] = ce.detach()
        return self.count_branch_weight * ce, stats

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

    def forward_loss_count(
        self, trunk: BackboneOutput, counts: torch.Tensor
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """``count_weight`` * cross-entropy of the count head, and its accuracy."""
        stats = self._stats(trunk.emb)
        count_logits = self.separator.count_logits(trunk)  # [B, C]
        if int(counts.max()) >= count_logits.size(1):
            raise ValueError(
                f"a batch holds {int(counts.max())} sources but the count head classifies "
                f"0 .. {count_logits.size(1) - 1}: raise separator_conf.attractor_conf.num_queries"
            )
        ce = torch.nn.functional.cross_entropy(count_logits, counts)
        stats["count_ce"] = ce.detach()
        estimated = self.separator.attractor.count_from_head(
            count_logits.detach(), self.max_num_src, self.min_num_src
        )
        stats["count_head_acc"] = (estimated == counts).float().mean()
        return self.count_weight * ce, stats

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

    def collect_feats(
        self, speech_mix: torch.Tensor, speech_mix_lengths: torch.Tensor, **kwargs
    ) -> Dict[str, torch.Tensor]:
        speech_mix = speech_mix[:, : speech_mix_lengths.max()]
        return {"feats": speech_mix, "feats_lengths": speech_mix_lengths}
