"""Variable-count PIT, existence BCE, attractor-cue alignment and matching accuracy."""
import math

import pytest
import torch

from espnet2_use.loss.alignment_loss import AttractorCueAlignment
from espnet2_use.loss.variable_pit import VariablePITSISNR, existence_bce, si_snr


def tones(freqs, T=800, fs=8000):
    t = torch.arange(T) / fs
    return torch.stack([torch.sin(2 * math.pi * f * t) for f in freqs])


def test_si_snr_of_a_scaled_copy_is_high_and_of_noise_is_low():
    ref = tones([440.0])[0]
    assert si_snr(3.0 * ref, ref) > 60
    assert si_snr(torch.randn(800), ref) < 0


def test_pit_recovers_a_hand_built_permutation_with_variable_counts():
    refs = torch.zeros(3, 3, 800)
    refs[0, :1] = tones([300])
    refs[1, :2] = tones([300, 1100])
    refs[2, :3] = tones([300, 1100, 2500])
    counts = torch.tensor([1, 2, 3])
    est = torch.zeros_like(refs)
    est[0, 0] = refs[0, 0] + 0.01 * torch.randn(800)
    est[1, 0], est[1, 1] = refs[1, 1], refs[1, 0]  # swapped
    est[2, 0], est[2, 1], est[2, 2] = refs[2, 2], refs[2, 0], refs[2, 1]  # rotated
    est[2, 0] = est[2, 0] + 0.01 * torch.randn(800)
    est.requires_grad_(True)
    loss, mean_si_snr, perm = VariablePITSISNR()(est, refs, counts)
    assert perm.tolist() == [[0, -1, -1], [1, 0, -1], [1, 2, 0]]
    assert mean_si_snr > 30
    loss.backward()
    assert torch.isfinite(est.grad).all()
    # Rows beyond each count never receive gradient.
    assert est.grad[0, 1:].abs().sum() == 0 and est.grad[1, 2].abs().sum() == 0


def test_pit_beyond_three_sources_uses_the_exact_assignment():
    refs = tones([200, 600, 1300, 2100, 3100])[None]  # [1, 5, T]
    order = [3, 0, 4, 1, 2]
    est = refs[:, order] + 0.001 * torch.randn_like(refs)
    _, _, perm = VariablePITSISNR()(est, refs, torch.tensor([5]))
    # perm[j] = estimate holding reference j
    assert [order[i] for i in perm[0].tolist()] == [0, 1, 2, 3, 4]


def test_pit_ignores_silent_references_in_the_loss_and_rejects_bad_counts():
    refs = torch.zeros(1, 2, 800)
    refs[0, 0] = tones([500])[0]
    est = refs.clone()
    loss, mean_si_snr, perm = VariablePITSISNR()(est, refs, torch.tensor([2]))
    assert torch.isfinite(loss) and mean_si_snr > 60
    with pytest.raises(ValueError, match="counts must lie in 1..2"):
        VariablePITSISNR()(est, refs, torch.tensor([3]))


def test_existence_bce_targets_and_ignores_beyond_count_plus_one():
    counts = torch.tensor([1, 3])
    good = torch.tensor([[9.0, -9.0, 123.0, 123.0], [9.0, 9.0, 9.0, -9.0]])
    bad = torch.tensor([[-9.0, 9.0, 123.0, 123.0], [9.0, -9.0, 9.0, 9.0]])
    assert existence_bce(good, counts) < 1e-3
    assert existence_bce(bad, counts) > 3
    # The entries after the (n+1)-th attractor do not matter.
    other = good.clone()
    other[0, 2:] = -50.0
    assert torch.isclose(existence_bce(other, counts), existence_bce(good, counts))


def test_alignment_is_lowest_for_the_pit_permutation_and_matching_accuracy():
    torch.manual_seed(0)
    attractors = torch.nn.functional.normalize(torch.randn(2, 3, 8), dim=-1)
    counts = torch.tensor([3, 2])
    perm = torch.tensor([[2, 0, 1], [1, 0, -1]])
    cues = torch.zeros(2, 3, 8)
    for b in range(2):
        for k in range(counts[b]):
            cues[b, k] = attractors[b, perm[b, k]]
    valid = torch.tensor([[True, True, True], [True, True, False]])
    align = AttractorCueAlignment(temperature=0.1)
    aligned, mse, nce, match = align(attractors, counts, cues, valid, perm)
    assert mse < 1e-6 and match == 1.0
    wrong_perm = torch.tensor([[0, 1, 2], [0, 1, -1]])
    worse, _, _, wrong_match = align(attractors, counts, cues, valid, wrong_perm)
    assert worse > aligned
    assert wrong_match == 0.0
    # Hand-built matching accuracy: one of the five cues points at the wrong attractor.
    cues2 = cues.clone()
    cues2[1, 1] = attractors[1, 1]  # PIT assigned attractor 0 to source 2 of row 1
    _, _, _, match2 = align(attractors, counts, cues2, valid, perm)
    assert match2 == pytest.approx(4 / 5)
    # No valid cue: zero loss, NaN stats.
    loss, mse, _, match = align(attractors, counts, cues, torch.zeros_like(valid), perm)
    assert loss == 0 and torch.isnan(mse) and torch.isnan(match)


def test_same_class_attractors_of_other_mixtures_are_no_infonce_negatives():
    # Two mixtures, each with a "dog" (class 0) and a different second sound: the
    # dogs' attractors are alike, and each dog cue would treat the other mixture's
    # dog as a negative.
    dog, cat, car = torch.eye(3)
    attractors = torch.stack([torch.stack([dog, cat]), torch.stack([dog, car])])  # [2, 2, 3]
    cues = attractors.clone()
    counts = torch.tensor([2, 2])
    valid = torch.ones(2, 2, dtype=torch.bool)
    perm = torch.tensor([[0, 1], [0, 1]])
    align = AttractorCueAlignment(temperature=0.1, mse_weight=0.0)
    _, _, nce_plain, match = align(attractors, counts, cues, valid, perm)
    classes = torch.tensor([[0, 1], [0, 2]])
    _, _, nce_masked, match_masked = align(attractors, counts, cues, valid, perm, classes)
    # Without classes the two dog cues cannot tell their dog from the other: log 2 each.
    assert nce_plain.item() > 0.3
    assert nce_masked.item() < 1e-3
    assert match.item() == match_masked.item() == 1.0
    # Unknown classes (-1) mask nothing.
    _, _, nce_unknown, _ = align(attractors, counts, cues, valid, perm, torch.full((2, 2), -1))
    assert torch.isclose(nce_unknown, nce_plain)


def test_the_within_mixture_term_trains_the_matching_decision():
    # Row 0's cue lies between its own two attractors, nearer the wrong one; the batch's
    # other row makes InfoNCE's denominator mostly attractors of another mixture.
    a0, a1 = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.6, 0.8, 0.0])
    far = torch.tensor([0.0, 0.0, 1.0])
    attractors = torch.stack([torch.stack([a0, a1]), torch.stack([far, -far])])  # [2, 2, 3]
    cue = torch.nn.functional.normalize(0.45 * a0 + 0.55 * a1, dim=0).requires_grad_(True)
    counts = torch.tensor([2, 2])
    valid = torch.tensor([[True, False], [False, False]])
    perm = torch.tensor([[0, 1], [0, 1]])

    def loss_and_match(weight):
        align = AttractorCueAlignment(temperature=0.1, mse_weight=0.0, within_weight=weight)
        cues = torch.zeros(2, 2, 3)
        cues[0, 0] = cue
        loss, _, _, match = align(attractors, counts, cues, valid, perm)
        return loss, match

    plain, match = loss_and_match(0.0)
    within, _ = loss_and_match(1.0)
    assert match == 0.0  # the cue's nearest own attractor is the wrong one
    # The added term is the cross-entropy over the cue's own mixture only.
    own = torch.stack([cue @ a0, cue @ a1]) / (cue.norm() * 0.1)
    expected = torch.nn.functional.cross_entropy(own[None], torch.tensor([0]))
    torch.testing.assert_close(within - plain, expected)
    # Its gradient turns the cue towards its own attractor, away from the other.
    (grad,) = torch.autograd.grad(within - plain, cue)
    assert float(-grad @ (a0 - a1)) > 0
    with pytest.raises(ValueError, match="within_weight must be >= 0, got -1"):
        AttractorCueAlignment(within_weight=-1.0)
