"""What a fair comparison reads its claims from: bootstrap intervals over mixtures and
seeds, paired differences, and the strict score that charges surplus outputs."""
import numpy as np
import pytest

from espnet2_use.scoring.bootstrap import bootstrap_mean, paired_difference
from espnet2_use.scoring.metrics import score_ss_utterance, strict_improvement, surplus_estimates
from espnet2_use.scoring.report import summarize_ss


# ------------------------------------------------------------------- bootstrap
def test_interval_of_a_mean_matches_the_normal_theory():
    """400 draws of N(3, 1): the 95 % interval is about 3 +- 1.96 / 20."""
    values = np.random.default_rng(1).normal(3.0, 1.0, 400)
    out = bootstrap_mean(values, num_resamples=4000)
    half = (out["ci"][1] - out["ci"][0]) / 2
    assert out["mean"] == pytest.approx(values.mean())
    assert half == pytest.approx(1.96 * values.std() / 20, rel=0.1)
    assert out["ci"][0] < out["mean"] < out["ci"][1]
    assert (out["seeds"], out["mixtures"]) == (1, 400)


def test_seeds_that_disagree_widen_the_interval():
    rng = np.random.default_rng(2)
    mixtures = rng.normal(5.0, 1.0, 200)
    agree = np.stack([mixtures, mixtures, mixtures])
    disagree = np.stack([mixtures - 2.0, mixtures, mixtures + 2.0])
    narrow, wide = bootstrap_mean(agree, 2000), bootstrap_mean(disagree, 2000)
    assert narrow["mean"] == pytest.approx(wide["mean"])
    assert wide["ci"][1] - wide["ci"][0] > 3 * (narrow["ci"][1] - narrow["ci"][0])


def test_a_constant_difference_has_a_zero_width_interval():
    a = np.random.default_rng(3).normal(0, 5, 50)
    out = paired_difference(a, a - 1.0, num_resamples=500)
    assert out["mean"] == pytest.approx(1.0)
    assert out["ci"] == pytest.approx([1.0, 1.0])
    assert out["above_zero"]


def test_pairing_cancels_what_the_mixtures_share():
    """B is A plus 0.3 dB on every mixture, mixtures vary by 10 dB: paired, the gain is
    clear; the two systems' own intervals overlap entirely."""
    rng = np.random.default_rng(4)
    a = rng.normal(0, 10, 300)
    b = a + 0.3 + rng.normal(0, 0.1, 300)
    diff = paired_difference(b, a, num_resamples=2000)
    assert diff["above_zero"] and diff["ci"][0] == pytest.approx(0.3, abs=0.05)
    own_a, own_b = bootstrap_mean(a, 2000), bootstrap_mean(b, 2000)
    assert own_b["ci"][0] < own_a["ci"][1], "unpaired, the gain would not show"
    worse = paired_difference(a, b, num_resamples=2000)
    assert not worse["above_zero"] and worse["ci"][1] < 0


def test_bad_scores_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_mean([1.0, float("nan")])
    with pytest.raises(ValueError, match="same test mixtures"):
        paired_difference(np.zeros((1, 5)), np.zeros((1, 6)))
    with pytest.raises(ValueError, match="shape"):
        bootstrap_mean(np.zeros((2, 2, 2)))


def test_the_interval_is_reproducible():
    values = np.random.default_rng(5).normal(0, 1, (3, 40))
    assert bootstrap_mean(values, 500, seed=7) == bootstrap_mean(values, 500, seed=7)


# ------------------------------------------------------------ surplus outputs
def _sources(n: int, length: int = 4000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length) / 8000
    return np.stack([np.sin(2 * np.pi * (300 + 500 * k) * t) * (0.5 + 0.2 * rng.random())
                     for k in range(n)])


def test_surplus_counts_active_outputs_that_stand_for_nothing():
    assert surplus_estimates([True, True, True], [0, 1], [True, True]) == 1
    assert surplus_estimates([True, True, False], [0, 1], [True, True]) == 0
    # a reference left without an active pair claims nothing
    assert surplus_estimates([True, True, True], [2, -1], [True, False]) == 2


def test_strict_score_charges_a_surplus_output_as_a_miss():
    values = strict_improvement([10.0, 20.0], [True, True], [True, True],
                                [True, True, True], [0, 1])
    assert values == [10.0, 20.0, 0.0]
    missed = strict_improvement([10.0, 20.0], [True, True], [True, False], [True, False], [0, 1])
    assert missed == [10.0, 0.0], "a miss is 0 dB already, and no surplus"
    assert strict_improvement([None, None], [True, True], [True, True], [True, True, True],
                              [0, 1]) == [None, None], "nothing computed, nothing charged"


def test_an_over_counting_system_loses_in_the_strict_score_only():
    """Two sources; system A returns them, system B returns them plus a copy of the
    first at half level. The honest headline cannot tell them apart; the strict one can."""
    refs = _sources(2)
    mix = refs.sum(0)
    exact = score_ss_utterance(mix, refs, refs, compute_sdr=False).to_dict()
    extra = score_ss_utterance(mix, refs, np.concatenate([refs, refs[:1] * 0.5]),
                               compute_sdr=False).to_dict()
    for rec in (exact, extra):
        rec.update(num_src=2, est_count=len(rec["est_active"]))
    a = summarize_ss({"u": exact})["by_num_sources"]["2"]
    b = summarize_ss({"u": extra})["by_num_sources"]["2"]
    assert a["si_snri_all_refs"]["mean"] == pytest.approx(b["si_snri_all_refs"]["mean"])
    assert a["si_snri_strict"]["mean"] == pytest.approx(a["si_snri_all_refs"]["mean"])
    assert b["si_snri_strict"]["mean"] == pytest.approx(b["si_snri_all_refs"]["mean"] * 2 / 3)
    assert (a["num_surplus"], a["surplus_rate"]) == (0, 0.0)
    assert (b["num_surplus"], b["surplus_rate"]) == (1, 1.0)


# ----------------------------------------------- the unknown-count peer's loss
def test_thresholded_snr_on_hand_made_cases():
    import torch

    from espnet2_use.loss.thresholded_snr import ThresholdedSNRLoss

    loss = ThresholdedSNRLoss(max_snr_db=30.0, eps=0.0)
    src = torch.from_numpy(_sources(1)[0])[None].float()  # [1, T]
    mix = 2 * src
    # a perfect estimate of an active source gains nothing past 30 dB
    assert loss(src, src, mix).item() == pytest.approx(-30.0, abs=1e-3)
    # an estimate at half the level: error power 1/4 of the source's -> about -6 dB
    assert loss(src, 0.5 * src, mix).item() == pytest.approx(10 * np.log10(0.25 + 1e-3), abs=1e-3)
    silent = torch.zeros_like(src)
    # a silent reference: a silent output costs the floor, 30 dB below the mixture
    assert loss(silent, silent, mix).item() == pytest.approx(-30.0, abs=1e-3)
    # ... an output as loud as the mixture costs about 0 dB
    assert loss(silent, mix, mix).item() == pytest.approx(10 * np.log10(1 + 1e-3), abs=1e-3)
    with pytest.raises(ValueError, match="max_snr_db"):
        ThresholdedSNRLoss(max_snr_db=0)


def test_silence_pit_finds_the_pairing_and_is_registered_in_enh():
    """Through ESPnet's own registry (as a config names them): 3 outputs, 2 sources and a
    silent reference, outputs in another order: the best pairing is found, and a quiet
    output on the silent reference is cheaper than a loud one."""
    import torch

    import espnet2_use  # noqa: F401  (the hook registers the names when the task loads)
    from espnet2.tasks.enh import criterion_choices, loss_wrapper_choices

    criterion = criterion_choices.get_class("use_thresholded_snr")(max_snr_db=30.0)
    solver = loss_wrapper_choices.get_class("use_silence_pit")(criterion=criterion, weight=1.0)
    s = torch.from_numpy(_sources(2)).float()  # [2, T]
    refs = [s[0][None], s[1][None], torch.zeros_like(s[0])[None]]
    quiet = [x.clone().requires_grad_() for x in (s[1][None], 1e-3 * s[0][None], s[0][None])]
    loud = [s[1][None], 0.5 * s[0][None], s[0][None]]
    loss_q, stats, others = solver(refs, quiet, {})
    loss_l, _, _ = solver(refs, loud, {})
    assert others["perm"].tolist() == [[2, 0, 1]]
    assert loss_q < loss_l
    assert stats["silent_output_db"].item() == pytest.approx(
        10 * np.log10(np.mean((1e-3 * s[0].numpy()) ** 2) / np.mean(s.sum(0).numpy() ** 2)), abs=0.01)
    loss_q.backward()
    assert all(x.grad is not None and torch.isfinite(x.grad).all() for x in quiet)
    with pytest.raises(ValueError, match="pad the references"):
        solver(refs[:2], quiet, {})


def test_energy_count_threshold_is_chosen_on_validation():
    from espnet2_use.scoring.energy_count import (
        choose_threshold,
        energy_count,
        kept_outputs,
        output_levels_db,
    )

    src = _sources(3)
    mix = src[:2].sum(0)
    outputs = np.stack([src[0], src[1], 1e-3 * src[2]])
    levels = output_levels_db(mix, outputs)
    assert levels[2] < -50 < levels[0]
    assert energy_count(levels, -20.0) == 2 and kept_outputs(levels, -20.0) == [0, 1]
    assert energy_count([-60.0, -70.0], -20.0) == 1 and kept_outputs([-60.0, -50.0], -20.0) == [1]
    # validation: true sources at -3 dB, silent outputs at -45 dB: a threshold between wins
    val_levels = [[-3.0, -45.0, -45.0], [-3.0, -3.0, -45.0], [-3.0, -3.0, -3.0]]
    choice = choose_threshold(val_levels, [1, 2, 3])
    assert choice["accuracy"] == 1.0 and -45.0 < choice["threshold_db"] < -3.0
    with pytest.raises(ValueError, match="one count per"):
        choose_threshold(val_levels, [1, 2])
    with pytest.raises(ValueError, match="silent"):
        output_levels_db(np.zeros(10), np.ones((2, 10)))


# ------------------------------------------- the fixed-count peers' training crops
def _event(length: int, start: int, stop: int, hz: float) -> np.ndarray:
    t = np.arange(length) / 8000
    out = np.zeros(length, np.float32)
    out[start:stop] = 0.3 * np.sin(2 * np.pi * hz * t[start:stop])
    return out


def _crop_preprocessor(tmp_path, min_active: float = 0.25):
    """What budget_train's enh task builds from a peer's config with USE's crop rule."""
    import yaml

    from espnet2_use.bin.budget_train import budget_task

    conf = tmp_path / "peer.yaml"
    conf.write_text(yaml.safe_dump(dict(
        preprocessor="enh", speech_segment=8000, num_spk=2, sample_rate=8000,
        preprocessor_conf={"active_crop_min_active": min_active})))
    task = budget_task("enh")
    return task.build_preprocess_fn(task.get_parser().parse_args(["--config", str(conf)]), True)


@pytest.mark.parametrize("late_start,min_crops", [(18000, 10), (23800, 0)])
def test_active_crop_keeps_every_reference_sounding(tmp_path, late_start, min_crops):
    """3 s mixtures, 1 s crops, a second source only at the end. A crop holds a quarter of a
    crop of it, or half of it when it is shorter than that (USE's rule); when ten draws find
    no such window, the mixture stays whole, never a crop where it is missing (a 25 ms
    source: nearly always)."""
    pre = _crop_preprocessor(tmp_path)
    s1, s2 = _event(24000, 0, 24000, 440.0), _event(24000, late_start, 24000, 1200.0)
    need = min(0.25 * 8000, (24000 - late_start) / 2) - 80  # one 10 ms frame of slack
    np.random.seed(0)
    lengths = []
    for _ in range(20):
        out = pre("utt", {"speech_mix": s1 + s2, "speech_ref1": s1.copy(), "speech_ref2": s2.copy()})
        ref2 = out["speech_ref2"]
        lengths.append(len(ref2))
        assert len(out["speech_mix"]) == len(out["speech_ref1"]) == len(ref2)
        assert len(ref2) in (8000, 24000)
        assert np.sum(np.abs(ref2) > 0) >= need, (len(ref2), np.sum(np.abs(ref2) > 0), need)
    assert lengths.count(8000) >= min_crops, lengths


def test_active_crop_trains_whole_when_no_window_keeps_both(tmp_path):
    """Two sources at opposite ends, a 1 s crop cannot hold both: the mixture stays whole;
    a bad share is refused."""
    pre = _crop_preprocessor(tmp_path)
    s1, s2 = _event(24000, 0, 4000, 440.0), _event(24000, 20000, 24000, 1200.0)
    np.random.seed(0)
    out = pre("utt", {"speech_mix": s1 + s2, "speech_ref1": s1.copy(), "speech_ref2": s2.copy()})
    assert len(out["speech_mix"]) == 24000
    with pytest.raises(ValueError, match="active_crop_min_active"):
        _crop_preprocessor(tmp_path, min_active=1.5)


# ------------------------------------------------ two models' decodings over seeds
def _scores(records):
    """A stage-7 scores.json of (num_src, est_count, [si_snri per reference], [match per cue])."""
    return {"summary": {}, "utterances": {
        f"u{i:02d}": {"num_src": n, "num_ref_active": n, "est_count": est, "si_snri_all_refs": si,
                      "matching": [{"k": k + 1, "match": m} for k, m in enumerate(ms)]}
        for i, (n, est, si, ms) in enumerate(records)}}


def test_compare_decodings_reads_the_paired_differences_over_seeds(tmp_path, capsys):
    """System A counts every mixture right and separates 1 dB better than B on each;
    B misses every 3-source count. The tool's differences say exactly that."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "egs2" / "mini_use" / "use1" / "local"))
    import compare_decodings

    base = [(n, n, [float(i % 5)] * n, [True] * n) for i, n in enumerate([1, 2, 3] * 10)]
    a = _scores([(n, est, [v + 1.0 for v in si], ms) for n, est, si, ms in base])
    b = _scores([(n, 2 if n == 3 else est, si, [k != 0 for k in range(n)]) for n, est, si, ms in base])
    paths = []
    for name, sc in (("a0", a), ("a1", a), ("b0", b)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "scores.json").write_text(json.dumps(sc))
        paths.append(str(tmp_path / name))
    out = tmp_path / "diff.json"
    assert compare_decodings.main(["--a", ",".join(paths[:2]), "--b", paths[2], "--out_json", str(out)]) == 0
    report = json.loads(out.read_text())["metrics"]
    two = report["honest SI-SNRi, 2 sources (dB)"]["difference"]
    assert two["mean"] == pytest.approx(1.0) and two["ci"] == pytest.approx([1.0, 1.0])
    assert two["seeds"] == [2, 1] and two["mixtures"] == 10
    assert report["counting, 3 sources (%)"]["difference"]["mean"] == pytest.approx(100.0)
    assert report["counting, 2 sources (%)"]["difference"]["mean"] == pytest.approx(0.0)
    assert report["counting, all (%)"]["b"] == pytest.approx(100 * 2 / 3)
    assert report["matching (%)"]["difference"]["mean"] == pytest.approx(50.0)  # B misses one cue of each
    assert "| counting, 3 sources (%) | 100.00" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="no scores"):
        compare_decodings.main(["--a", str(tmp_path / "missing"), "--b", paths[2]])
