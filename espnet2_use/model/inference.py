"""USEInference: what a trained USE network does for users (separate, extract)."""
from typing import Dict, Optional, Tuple

import torch

from espnet2_use.layers.abs_use_backbone import BackboneOutput
from espnet2_use.model.batch import Batch, full_lengths, scatter
from espnet2_use.model.network import USENetwork

EXTRACT_LEVELS = ("separation", "mixture")


class USEInference(USENetwork):
    """Separation with an unknown count and cue-driven extraction, at the mixture's scale.

    SI-SNR training leaves the level of every output free; the rules here set it:
    separated sources are fitted to their mixture together (``fit_to_mixture``), an
    extracted target takes the level of the separated source it most resembles
    (``level="separation"``) or of its projection of the mixture (``"mixture"``).
    Nothing of training (losses, branches, batch references) is used here.
    """

    @torch.no_grad()
    def separate(
        self,
        speech: torch.Tensor,
        lengths: Optional[torch.Tensor] = None,
        num_src: Optional[torch.Tensor] = None,
        cue_batch: Optional[Batch] = None,
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
        lengths = full_lengths(speech, lengths)
        T = speech.size(1)
        speech, scale = self.normalize(speech, lengths)
        feats, flens, trunk = self.forward_encoder(speech, lengths)
        num_att = self.max_num_src + 1
        counts = None
        if num_src is not None:
            counts = torch.as_tensor(num_src, device=speech.device).long().view(-1)
            counts = counts.expand(speech.size(0)) if counts.numel() == 1 else counts
            num_att = max(num_att, int(counts.max()) + 1)
        attractors, logits, counts, est, index = self._separated(feats, trunk, counts, num_att, speech, lengths, flens)
        S = max(int(counts.max()), 1)
        sources = speech.new_zeros(speech.size(0), S, T)
        if index.numel() > 0:
            sources = scatter(est * scale[index, None], counts, sources.shape)
        out = dict(
            sources=sources, counts=counts, existence_prob=torch.sigmoid(logits),
            attractors=attractors,
        )
        unit_att = torch.nn.functional.normalize(attractors, dim=-1)  # [B, A, D]
        if cue_batch is not None and self.cue_network is not None:
            cues, valid, _ = self.forward_cues(trunk, cue_batch, self.max_num_src, lengths)
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
            vec, _ = self.cue_network(query, torch.full_like(ones, n), {"label": (ids, ones)})
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
            cue_inputs: modality -> (model input, lengths), as
                ``espnet2_use.model.batch.cue_inputs`` builds them (an ``example``
                entry holds audio examples [B, T_e], a ``span`` entry intervals [B, N, 2]
                in seconds).
            level: ``separation`` or ``mixture``.

        Returns:
            dict with ``target`` [B, T], ``residual`` [B, T] (the mixture less the
            target, at the mixture's scale: everything but the described sound; zeros
            beyond each length) and ``cue`` vectors [B, D].
        """
        if self.cue_network is None:
            raise ValueError("this model has no cue network: it was trained for separation only")
        if level not in EXTRACT_LEVELS:
            raise ValueError(f"level must be one of {EXTRACT_LEVELS}, got {level!r}")
        lengths = full_lengths(speech, lengths)
        mixture = speech
        speech, scale = self.normalize(speech, lengths)
        feats, flens, trunk = self.forward_encoder(speech, lengths)
        cues, frames = self.cue_network(trunk.emb, trunk.emb_lens, cue_inputs, lengths)  # [B, D], [B, L, D]
        index = torch.arange(speech.size(0), device=speech.device)
        masked = self.forward_extract(feats, trunk, cues, index, frames)
        target = self.forward_decoder(masked, lengths, speech.size(1))
        fitted = self.fit_to_mixture(target, index, speech, lengths)
        if level == "separation":
            fitted = self._level_from_separation(target, fitted, feats, trunk, speech, lengths, flens)
        target = fitted * scale[:, None]
        valid = torch.arange(mixture.size(1), device=mixture.device)[None, :] < lengths[:, None]
        return dict(target=target, residual=(mixture - target) * valid, cue=cues)

    def _separated(
        self,
        feats: torch.Tensor,
        trunk: BackboneOutput,
        counts: Optional[torch.Tensor],
        num_attractors: int,
        speech: torch.Tensor,
        lengths: torch.Tensor,
        flens: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``forward_separate``, then the waveforms [M, T], fitted to their mixtures together
        (normalised scale), in place of the masked features."""
        attractors, logits, counts, masked, index = self.forward_separate(feats, trunk, counts, num_attractors, flens, speech, lengths)
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
        flens: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Targets [B, T] scaled to the separated source each correlates with most.

        Rows the EDA finds no source in (``min_num_src`` 0) keep ``fallback``.
        """
        _, _, _, est, index = self._separated(feats, trunk, None, self.max_num_src + 1, speech, lengths, flens)
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
