"""The count branch (issue 24): a light counter over the encoder's frames (or a 2-D CNN
over the waveform's log-mel spectrogram) that learns from mixtures made afresh from the
batch's references at every step, and the model's count rule (attractor, branch, or
both)."""
import json
import math

import numpy as np
import pytest
import torch
import yaml

import espnet2_use  # noqa: F401
from espnet2_use.counting.feature_counter import (
    FeatureCounter, LogMelCounter, existence_count_log_posterior, remix,
)
from espnet2_use.model_builder import build_use_model

SEP_CONF = {"backbone": "use_s", "backbone_conf": {"latent_dim": 16, "emb_dim": 16, "chunk_size": 10,
                                                   "num_heads": 2, "ffn_dim": 32}}
FS = 8000
FRAMES = {"channels": [16]}
LOGMEL = {"type": "logmel", "sample_rate": FS, "n_mels": 16, "channels": [8, 16], "dropout": 0.0}


def tiny_config(**model_conf):
    return {
        "encoder": "conv", "encoder_conf": {"channel": 16, "kernel_size": 16, "stride": 8},
        "decoder": "conv", "decoder_conf": {"channel": 16, "kernel_size": 16, "stride": 8},
        "separator": "use", "separator_conf": dict(SEP_CONF),
        "model_conf": {"max_num_src": 3, **model_conf},
    }


def bursts(counts, T=FS, burst=800, seed=0):
    """References whose count is plain: each source a 0.1 s noise burst, the bursts of
    one mixture side by side (never overlapping), so the share of sounding frames is
    proportional to the count."""
    g = torch.Generator().manual_seed(seed)
    B = len(counts)
    refs = torch.zeros(B, 3, T)
    for b, n in enumerate(counts):
        slots = torch.randperm(T // burst, generator=g)[:n]
        for k, s in enumerate(slots.tolist()):
            refs[b, k, s * burst:(s + 1) * burst] = torch.randn(burst, generator=g)
    return refs


def batch_of(refs, counts):
    counts_t = torch.tensor(counts)
    T = refs.size(-1)
    batch = dict(speech_mix=refs.sum(1), speech_mix_lengths=torch.full((len(counts),), T), num_src=counts_t[:, None])
    for k in range(refs.size(1)):
        batch[f"speech_ref{k + 1}"] = refs[:, k]
        batch[f"speech_ref{k + 1}_lengths"] = torch.where(counts_t > k, T, 0)
    return batch


def test_remix_sums_distinct_counted_sounding_sources_at_bounded_gains():
    refs = torch.randn(3, 3, 50)
    refs[1, 1] = 0.0  # counted but silent: never drawn
    counts = torch.tensor([1, 2, 3])  # refs[0, 1:] and refs[1, 2] are past the counts
    pool = torch.stack([refs[0, 0], refs[1, 0], refs[2, 0], refs[2, 1], refs[2, 2]])
    mixes, n = remix(refs, counts, 40, 3, gain_db=5.0, generator=torch.Generator().manual_seed(0))
    assert mixes.shape == (40, 50) and n.dtype == torch.long and set(n.tolist()) <= {1, 2, 3}
    assert len(set(n.tolist())) == 3, "every count 1..3 is drawn"
    # Each mixture is a non-negative combination of the pool with n gains in [-5, +5] dB.
    weights = torch.linalg.lstsq(pool.T, mixes.T).solution.T  # [40, 5]
    for w, k in zip(weights, n.tolist()):
        used = w[w.abs() > 1e-4]
        assert len(used) == k
        assert bool((used >= 10 ** (-5 / 20) - 1e-4).all() and (used <= 10 ** (5 / 20) + 1e-4).all())
    again, n2 = remix(refs, counts, 40, 3, gain_db=5.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, mixes) and torch.equal(n2, n), "the same seed draws the same mixtures"
    few, n3 = remix(refs[:1], counts[:1], 10, 3, generator=torch.Generator().manual_seed(1))
    assert set(n3.tolist()) == {1}, "no more sources than the batch holds"
    assert remix(torch.zeros(2, 3, 50), torch.tensor([2, 1]), 8, 3) == (None, None)


def test_existence_posterior_reads_the_attractors_in_order():
    big = 30.0
    logits = torch.tensor([[big, big, -big, -big], [big, -big, big, big], [-big, big, big, big]])
    logp = existence_count_log_posterior(logits, 3)
    assert logp.shape == (3, 4)
    assert logp.argmax(1).tolist() == [2, 1, 0]  # the first attractor that does not exist stops the count
    even = existence_count_log_posterior(torch.zeros(1, 4), 3).exp()[0]
    assert torch.allclose(even, torch.tensor([0.5, 0.25, 0.125, 0.0625]))  # P(n) = 0.5^(n+1)
    with pytest.raises(ValueError, match="3 existence logits cannot score counts up to 3"):
        existence_count_log_posterior(torch.zeros(1, 3), 3)


def test_feature_counter_pools_only_valid_frames_and_takes_complex_features():
    torch.manual_seed(0)
    counter = FeatureCounter(8, 4, channels=(6,), kernel_size=3).eval()
    feats = torch.rand(2, 20, 8)
    flens = torch.tensor([20, 12])
    padded = feats.clone()
    padded[1, 12:] = 100.0  # what lies past a length is not read...
    a, b = counter(feats, flens), counter(padded, flens)
    assert a.shape == (2, 4) and torch.allclose(a, b)
    assert not torch.allclose(counter(padded, None)[1], a[1])  # ...unless no lengths are given
    spec = torch.polar(feats, torch.rand(2, 20, 8))  # an stft encoder's complex bins
    assert torch.allclose(counter(spec, flens), a, atol=1e-5)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        FeatureCounter(8, 4, kernel_size=4)


def test_logmel_counter_pools_only_valid_frames():
    torch.manual_seed(0)
    counter = LogMelCounter(4, FS, n_mels=16, channels=(4, 8)).eval()
    wav = torch.randn(2, FS)
    lengths = torch.tensor([FS, 3000])
    padded = wav.clone()
    padded[1, 3000:] = 100.0  # loud padding: neither the peak nor the pooling reads it
    a, b = counter(wav, lengths), counter(padded, lengths)
    assert a.shape == (2, 4) and torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(counter(padded)[1], a[1], atol=1e-3)  # ...unless no lengths are given
    # Frames past a length pool nothing: the short one's logits do not hear its silent tail.
    alone = counter(wav[1:, :3000], lengths[1:])
    assert torch.allclose(alone, a[1:], atol=0.3), (alone, a[1:])


def test_config_chooses_the_branch_type_and_errors_name_the_key():
    assert isinstance(build_use_model(tiny_config(count_branch_conf=dict(FRAMES))).count_branch, FeatureCounter)
    assert isinstance(build_use_model(tiny_config(count_branch_conf=dict(LOGMEL))).count_branch, LogMelCounter)
    with pytest.raises(ValueError, match=r"count_branch_conf.type must be one of .*'mel'"):
        build_use_model(tiny_config(count_branch_conf={"type": "mel"}))
    with pytest.raises(ValueError, match=r"count_branch_conf: type logmel needs sample_rate"):
        build_use_model(tiny_config(count_branch_conf={"type": "logmel"}))
    with pytest.raises(ValueError, match=r"count_branch_conf: n_mels=4 is too few"):
        build_use_model(tiny_config(count_branch_conf={**LOGMEL, "n_mels": 4, "channels": [4, 4, 4]}))


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match=r"model_conf.count_rule 'branch' needs a count branch"):
        build_use_model(tiny_config(count_rule="branch"))
    with pytest.raises(ValueError, match=r"model_conf.count_rule must be one of .*'eda'"):
        build_use_model(tiny_config(count_rule="eda", count_branch_conf={}))
    with pytest.raises(ValueError, match=r"model_conf.count_branch_conf: .*'layers'"):
        build_use_model(tiny_config(count_branch_conf={"layers": 2}))
    assert build_use_model(tiny_config()).count_branch is None, "no branch unless configured"


@pytest.mark.parametrize("conf", [FRAMES, LOGMEL], ids=["frames", "logmel"])
def test_the_branch_trains_on_batch_and_remixes_and_teaches_the_encoder_nothing(conf):
    counts = [1, 2, 3, 2]
    model = build_use_model(tiny_config(count_branch_conf=dict(conf), count_remixes=16))
    model.train()
    loss, stats, _ = model(**batch_of(bursts(counts), counts))
    for key in ("count_branch_ce", "branch_count_acc", "remix_count_acc", "count_acc", "si_snr"):
        assert math.isfinite(float(stats[key])), key
    # The branch's own loss reaches the branch and never the encoder.
    model.zero_grad()
    batch = batch_of(bursts(counts), counts)
    speech, lengths, refs, counts_t = model.prepare_batch(batch["speech_mix"], batch["speech_mix_lengths"], batch)
    feats, flens, _ = model.forward_encoder(speech, lengths)
    branch_loss, _ = model.forward_loss_count_branch(feats, flens, refs, counts_t, speech, lengths)
    branch_loss.backward()
    assert all(p.grad is not None for p in model.count_branch.parameters())
    assert all(p.grad is None for p in model.encoder.parameters())
    model.eval()
    _, stats, _ = model(**batch)
    assert math.isnan(float(stats["remix_count_acc"])), "validation scores the batch alone"


@pytest.mark.parametrize("conf", [FRAMES, LOGMEL], ids=["frames", "logmel"])
def test_the_branch_learns_a_plain_count_from_remixes_and_the_model_counts_by_it(conf):
    """Bursts side by side: the count is the share of sounding frames. Trained on remixes
    of a few batches' references only, the branch counts held-out mixtures, and
    count_rule branch makes separation count by it."""
    torch.manual_seed(0)
    model = build_use_model(tiny_config(count_branch_conf=dict(conf), count_remixes=48, count_rule="branch"))
    opt = torch.optim.Adam(model.count_branch.parameters(), lr=1e-2)
    model.train()
    first = last = None
    for step in range(80):
        counts = [1, 2, 3, 3]
        batch = batch_of(bursts(counts, seed=step), counts)
        speech, lengths, refs, counts_t = model.prepare_batch(batch["speech_mix"], batch["speech_mix_lengths"], batch)
        model.num_updates += 1
        feats, flens, _ = model.forward_encoder(speech, lengths)
        loss, _ = model.forward_loss_count_branch(feats, flens, refs, counts_t, speech, lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
        last = float(loss.detach())
        first = last if first is None else first
    assert last < 0.5 * first, (first, last)
    model.eval()
    held_out = [1, 2, 3] * 10
    mixes = bursts(held_out, seed=999).sum(1)
    with torch.no_grad():
        counted = model.separate(mixes)["counts"]
    accuracy = float((counted == torch.tensor(held_out)).float().mean())
    assert accuracy >= 0.9, (accuracy, counted.tolist())
    # The product rule weighs the attractors in: an EDA sure of one source moves it.
    model.count_rule = "product"
    lengths = torch.full((30,), FS)
    with torch.no_grad():
        speech = model.normalize(mixes, lengths)[0]
        feats, flens, trunk = model.forward_encoder(speech, lengths)
        sure = model.estimate_count(feats, flens, trunk, torch.tensor([[30.0, -30.0, -30.0, -30.0]]).expand(30, 4),
                                    speech, lengths)
    assert sure.tolist() == [1] * 30


def test_calibration_search_finds_the_bias_that_undoes_a_known_offset():
    """The branch knows the count but adds 1.5 to count 2: the plain rule says 2 for
    every mixture; a bias of -0.75 on count 2 (the smallest on the grid that is
    enough) gives every count back."""
    from espnet2_use.bin.use_count_calibrate import accuracies, decide, search

    true = np.repeat([1, 2, 3], 20)
    branch = np.eye(4)[true] + np.array([0.0, 0.0, 1.5, 0.0])
    attractors = np.zeros_like(branch)
    plain = accuracies(true, decide(branch, attractors, 1.0, [0.0] * 4, 1, 3))
    assert plain["by_true"] == {1: 0.0, 2: 1.0, 3: 0.0}
    best = search(true, branch, attractors, 1, 3)
    assert best["accuracy"] == best["balanced"] == 1.0
    assert best["bias"] == [0.0, 0.0, -0.75, 0.0] and best["weight"] == 1.0
    # The attractors' view, weighed in, can fix what the branch gets wrong alone.
    swapped = np.eye(4)[np.where(true == 3, 2, true)]  # the branch says 2 for the 3-source ones
    sure = np.log(np.eye(4)[true] * 0.98 + 0.005)
    best = search(true, swapped, sure, 1, 3)
    assert best["accuracy"] == 1.0 and best["weight"] > 0
    with pytest.raises(ValueError, match="no utterances"):
        search(np.zeros(0, int), np.zeros((0, 4)), np.zeros((0, 4)), 1, 3)


def test_the_model_counts_by_the_weighted_rule_as_the_calibration_decides():
    from espnet2_use.bin.use_count_calibrate import decide

    torch.manual_seed(0)
    model = build_use_model(tiny_config(count_branch_conf=dict(LOGMEL), count_rule="product",
                                        count_attractor_weight=0.5, count_bias=[0.0, 0.0, -0.3, 0.4]))
    branch, attractors = torch.randn(50, 4), torch.randn(50, 4)
    mine = model.count_from_scores(branch, attractors, 0.5, model.count_bias)
    assert mine.tolist() == decide(branch.numpy(), attractors.numpy(), 0.5, [0, 0, -0.3, 0.4], 1, 3).tolist()
    assert set(mine.tolist()) <= {1, 2, 3}
    with pytest.raises(ValueError, match=r"count_bias must hold max_num_src \+ 1 = 4 values"):
        build_use_model(tiny_config(count_branch_conf=dict(LOGMEL), count_bias=[0.0, 1.0]))
    with pytest.raises(ValueError, match="count_attractor_weight must be >= 0"):
        build_use_model(tiny_config(count_branch_conf=dict(LOGMEL), count_attractor_weight=-1))


def test_calibrate_tool_writes_the_choice_into_the_config_and_the_model_loads_it(tmp_path):
    from espnet2_use import USE
    from espnet2_use.bin import use_count_calibrate
    from tiny_data import write_set

    torch.manual_seed(0)
    conf = dict(tiny_config(count_branch_conf=dict(LOGMEL), count_rule="branch"), sample_rate=FS)
    exp = tmp_path / "exp" / "model"
    exp.mkdir(parents=True)
    (exp / "config.yaml").write_text(yaml.safe_dump(conf, sort_keys=False))
    torch.save(build_use_model(conf).state_dict(), exp / "valid.loss.best.pth")
    valid = write_set(tmp_path, "valid", [1, 2, 3, 1, 2, 3], cues=False)
    report = use_count_calibrate.main(["--exp_dir", str(exp), "--data_dir", str(valid),
                                       "--weights", "0", "1", "--biases", "-1", "0", "1"])
    assert report["utterances"] == 6
    assert report["after"]["balanced"] >= report["before"]["balanced"]
    written = yaml.safe_load((exp / "config.yaml").read_text())["model_conf"]
    assert written["count_rule"] == "product"
    assert written["count_attractor_weight"] == report["after"]["weight"]
    assert written["count_bias"] == report["after"]["bias"]
    assert yaml.safe_load((exp / "config.uncalibrated.yaml").read_text())["model_conf"]["count_rule"] == "branch"
    saved = json.loads((exp / "count_calibration.json").read_text())["after"]
    assert (saved["weight"], saved["bias"], saved["accuracy"]) == (
        report["after"]["weight"], report["after"]["bias"], report["after"]["accuracy"])
    model = USE.from_exp(exp).model
    assert model.count_rule == "product" and model.count_bias == written["count_bias"]
    # Bad input names the file; a model without a branch has nothing to weigh.
    (valid / "utt2num_src").unlink()
    with pytest.raises(FileNotFoundError, match="utt2num_src: needed to calibrate"):
        use_count_calibrate.main(["--exp_dir", str(exp), "--data_dir", str(valid)])
    (exp / "config.yaml").write_text(yaml.safe_dump(dict(tiny_config(), sample_rate=FS)))
    torch.save(build_use_model(tiny_config()).state_dict(), exp / "valid.loss.best.pth")
    with pytest.raises(ValueError, match="no count branch"):
        use_count_calibrate.main(["--exp_dir", str(exp), "--data_dir", str(valid)])


def test_calibration_on_remixes_of_the_valid_references(tmp_path):
    """--remix N: N new mixtures from the valid set's references, the counts balanced,
    the same ones for a seed; the report says so and the choice is written as before."""
    from espnet2_use.bin import use_count_calibrate
    from tiny_data import write_set

    valid = write_set(tmp_path, "valid", [1, 2, 3, 2, 3, 1], cues=True)
    first = list(use_count_calibrate.remixed_mixtures(valid, FS, 30, 3, seed=4, seconds=(0.3, 0.6)))
    again = list(use_count_calibrate.remixed_mixtures(valid, FS, 30, 3, seed=4, seconds=(0.3, 0.6)))
    assert len(first) == 30 and {n for _, _, n in first} == {1, 2, 3}
    assert all(0.3 * FS <= len(w) <= 0.6 * FS and np.abs(w).max() > 0 for _, w, _ in first)
    assert [(k, n) for k, _, n in first] == [(k, n) for k, _, n in again]
    assert all(np.array_equal(a, b) for (_, a, _), (_, b, _) in zip(first, again))
    other = list(use_count_calibrate.remixed_mixtures(valid, FS, 30, 3, seed=5, seconds=(0.3, 0.6)))
    assert [n for _, _, n in other] != [n for _, _, n in first]
    with pytest.raises(ValueError, match="at 8000 Hz, the model at 16000 Hz"):
        next(use_count_calibrate.remixed_mixtures(valid, 16000, 3, 3))

    torch.manual_seed(0)
    conf = dict(tiny_config(count_branch_conf=dict(LOGMEL), count_rule="product"), sample_rate=FS)
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump(conf, sort_keys=False))
    torch.save(build_use_model(conf).state_dict(), exp / "valid.loss.best.pth")
    report = use_count_calibrate.main(["--exp_dir", str(exp), "--data_dir", str(valid), "--remix", "9",
                                       "--weights", "0", "1", "--biases", "0", "1"])
    assert report["utterances"] == 9 and report["remix"] == 9 and report["remix_seed"] == 0
    written = yaml.safe_load((exp / "config.yaml").read_text())["model_conf"]
    assert written["count_bias"] == report["after"]["bias"]
    (valid / "label_spk1").unlink()
    with pytest.raises(FileNotFoundError, match="label_spk1: missing"):
        use_count_calibrate.main(["--exp_dir", str(exp), "--data_dir", str(valid), "--remix", "3"])


# ---------------------------------------------------- the existence layer refitted
def test_existence_refit_learns_the_count_from_the_features_it_is_given():
    """Attractor s of an n-source mixture carries +1 in its first feature when s < n,
    -1 otherwise; a head that starts by ignoring that feature counts nothing right,
    the fitted one counts every mixture."""
    from espnet2_use.bin.use_existence_refit import counts_of, fit

    torch.manual_seed(0)
    model = build_use_model(tiny_config())
    counts = torch.tensor([1, 2, 3] * 20)
    feats = 0.3 * torch.randn(60, 4, 5)
    feats[..., 0] = torch.where(torch.arange(4)[None, :] < counts[:, None], 1.0, -1.0)
    w0, b0 = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0]]), torch.tensor([-5.0])
    assert (counts_of(model, feats, w0, b0) == counts.numpy()).mean() < 0.5
    w, b = fit(feats, counts, w0, b0, l2=1e-4)
    assert (counts_of(model, feats, w, b) == counts.numpy()).all()
    assert w[0, 0] > 1.0


@pytest.mark.parametrize("attractor_conf", [{}, {"refine_layers": 1, "refine_heads": 2}])
def test_existence_refit_tool_changes_that_layer_only_and_the_model_loads(tmp_path, attractor_conf):
    from espnet2_use import USE
    from espnet2_use.bin import use_existence_refit
    from tiny_data import write_set

    torch.manual_seed(0)
    conf = dict(tiny_config(), sample_rate=FS)
    conf["separator_conf"] = dict(conf["separator_conf"], attractor_conf=attractor_conf)
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump(conf, sort_keys=False))
    model = build_use_model(conf)
    torch.save(model.state_dict(), exp / "valid.loss.best.pth")
    valid = write_set(tmp_path, "valid", [1, 2, 3, 2, 3, 1], cues=True)
    report = use_existence_refit.main(["--exp_dir", str(exp), "--data_dir", str(valid), "--remix", "20"])
    assert (report["fitted_on"], report["held_out"]) == (16, 4)
    assert set(report["after"]["by_true"]) <= {1, 2, 3}
    before = torch.load(exp / "valid.loss.best.pth", weights_only=True)
    after = torch.load(exp / "existence_refit.pth", weights_only=True)
    layer = use_existence_refit.existence_layer(model.separator.attractor)
    w_name, b_name = use_existence_refit.parameter_names(model, layer)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= {w_name, b_name}
    refit = use_existence_refit.existence_layer(USE.from_exp(exp, "existence_refit.pth").model.separator.attractor)
    assert torch.equal(refit.weight, after[w_name]) and torch.equal(refit.bias, after[b_name])
    assert json.loads((exp / "existence_refit.json").read_text())["remix"] == 20
    with pytest.raises(ValueError, match="cannot be split"):
        use_existence_refit.main(["--exp_dir", str(exp), "--data_dir", str(valid), "--remix", "2"])
