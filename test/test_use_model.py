"""USEModel: variable-count training step, counting, the two branches, inference calls."""
import math

import pytest
import torch

import espnet2_use  # noqa: F401
from espnet2.enh.decoder.conv_decoder import ConvDecoder
from espnet2.enh.decoder.stft_decoder import STFTDecoder
from espnet2.enh.encoder.conv_encoder import ConvEncoder
from espnet2.enh.encoder.stft_encoder import STFTEncoder
from espnet2_use.cue.cue_network import USECueNetwork
from espnet2_use.espnet_model import STAT_KEYS, USEModel
from espnet2_use.separator.use_separator import USESeparator

LABELS = ["low", "mid", "high", "buzz"]
FREQS = {"low": 250.0, "mid": 800.0, "high": 2000.0, "buzz": 1300.0}


def build(backbone="use_s", cues=False, example=False, **model_conf):
    torch.manual_seed(0)
    if backbone == "use_s":
        enc, dec = ConvEncoder(32, 16, 8), ConvDecoder(32, 16, 8)
        conf = dict(latent_dim=32, emb_dim=32, chunk_size=20, num_heads=4, ffn_dim=64)
        sep = USESeparator(32, "use_s", conf)
    else:
        enc, dec = STFTEncoder(128, 128, 32), STFTDecoder(128, 128, 32)
        conf = dict(latent_dim=16, emb_dim=32, num_bands=8, num_pre_blocks=1, num_post_blocks=1)
        sep = USESeparator(65, "use_b", conf)
    cue_net = None
    if cues or example:
        encoders = {"label": {"type": "embedding", "conf": {"label_list": LABELS}}} if cues else {}
        if example:
            encoders["example"] = {"type": "audio"}
        cue_net = USECueNetwork(32, encoders=encoders)
    model_conf.setdefault("max_num_src", 3)
    return USEModel(enc, sep, dec, cue_network=cue_net, **model_conf)


def toy_batch(counts=(1, 2, 3, 2), T=4000, labels=True):
    """Tone mixtures; source k of row b is the class LABELS[(b + k) % 4]."""
    t = torch.arange(T) / 8000
    B = len(counts)
    refs = torch.zeros(B, 3, T)
    names = [[""] * 3 for _ in range(B)]
    for b, n in enumerate(counts):
        for k in range(n):
            name = LABELS[(b + k) % len(LABELS)]
            refs[b, k] = 0.3 * torch.sin(2 * math.pi * FREQS[name] * t)
            names[b][k] = name
    counts_t = torch.tensor(counts)
    batch = dict(speech_mix=refs.sum(1), speech_mix_lengths=torch.full((B,), T),
                 num_src=counts_t[:, None], utt_id=[f"utt{b}" for b in range(B)])
    for k in range(3):
        batch[f"speech_ref{k + 1}"] = refs[:, k]
        batch[f"speech_ref{k + 1}_lengths"] = torch.where(counts_t > k, T, 0)
        if labels:
            ids = [LABELS.index(names[b][k]) if names[b][k] else 0 for b in range(B)]
            batch[f"label_spk{k + 1}"] = torch.tensor(ids)[:, None]
            batch[f"label_spk{k + 1}_lengths"] = (counts_t > k).long()
    return batch


@pytest.mark.parametrize("backbone", ["use_s", "use_b"])
def test_variable_counts_in_one_batch_give_finite_loss_and_gradients(backbone):
    model = build(backbone)
    loss, stats, weight = model(**toy_batch())
    assert torch.isfinite(loss) and weight == 4
    assert set(stats) == set(STAT_KEYS) | {"loss"}
    for key in ("si_snr", "exist_bce", "count_acc"):
        assert torch.isfinite(stats[key])
    for key in ("tse_si_snr", "align_mse", "match_acc"):
        assert torch.isnan(stats[key])  # stage 1 has no cue branch
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.slow  # forty training steps
def test_a_few_dozen_steps_make_the_loss_fall_and_the_eda_learn_the_count():
    model = build()
    batch = toy_batch(labels=False)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    first = None
    for _ in range(40):
        loss, stats, _ = model(**batch)
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < first - 10
    model.eval()
    out = model.separate(batch["speech_mix"])
    assert out["counts"].tolist() == [1, 2, 3, 2]
    assert out["sources"].shape == (4, 3, 4000)
    # Sources beyond a row's count are silent.
    assert out["sources"][0, 1:].abs().max() == 0


def test_separate_with_a_forced_count_and_zero_sources_for_silence():
    model = build().eval()
    mix = toy_batch()["speech_mix"]
    out = model.separate(mix, num_src=2)
    assert out["counts"].tolist() == [2, 2, 2, 2] and out["sources"].shape == (4, 2, 4000)
    out = model.separate(mix, num_src=torch.tensor([1, 0, 3, 1]))
    assert out["counts"].tolist() == [1, 0, 3, 1]
    assert out["sources"][1].abs().max() == 0
    assert out["existence_prob"].shape == (4, 4)


def test_a_sounding_mixture_gets_at_least_min_num_src_sources():
    mix = toy_batch()["speech_mix"]
    for min_num_src, expected in ((1, [1, 1, 1, 1]), (0, [0, 0, 0, 0])):
        model = build(min_num_src=min_num_src).eval()
        # An EDA that says "no source" for everything (bias of the existence layer).
        torch.nn.init.constant_(model.separator.attractor.rnn.linear_projection.bias, -50.0)
        out = model.separate(mix)
        assert out["counts"].tolist() == expected
        assert out["sources"].shape == (4, 1, 4000)
        assert (out["sources"][:, 0].abs().amax(dim=-1) > 0).tolist() == [bool(e) for e in expected]


def test_count_that_disagrees_with_references_names_the_utterance():
    model = build()
    batch = toy_batch()
    batch["num_src"] = torch.tensor([[1], [3], [3], [2]])  # utt1 has only 2 references
    with pytest.raises(ValueError, match="utterance utt1: utt2num_src says 3"):
        model(**batch)


@pytest.mark.slow  # forty training steps
@pytest.mark.parametrize("tse_targets", ["one", "all"])
def test_stage_two_trains_both_branches_and_tse_and_alignment_losses_fall(tse_targets):
    torch.manual_seed(0)
    model = build(cues=True, cue_branch_ratio=0.5, align_weight=1.0, tse_targets=tse_targets)
    batch = toy_batch()
    model.eval()
    with torch.no_grad():
        _, before, _ = model(**batch)
    assert all(torch.isfinite(before[k]) for k in ("tse_si_snr", "align_mse", "align_nce", "match_acc"))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    branches = []
    for _ in range(40):
        model.train()
        loss, stats, _ = model(**batch)
        branches.append("tse" if torch.isfinite(stats["tse_si_snr"]) else "ss")
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert {"ss", "tse"} <= set(branches)
    model.eval()
    with torch.no_grad():
        _, after, _ = model(**batch)
    assert after["tse_si_snr"] > before["tse_si_snr"] + 3
    assert after["align_mse"] + after["align_nce"] < before["align_mse"] + before["align_nce"]


@pytest.mark.parametrize("backbone", ["use_s", "use_b"])
def test_the_cue_branch_extracts_every_source_with_a_cue_each_alone(backbone):
    model = build(backbone, cues=True, cue_branch_ratio=1.0, tse_targets="all")
    batch = toy_batch()  # 1 + 2 + 3 + 2 sources, every one with a label cue
    calls = []
    extract = model.forward_extract

    def spy(feats, trunk, cues, index, frames=None):
        calls.append(index.clone())
        return extract(feats, trunk, cues, index, frames)

    model.forward_extract = spy
    model.train()
    loss, stats, _ = model(**batch)
    assert torch.isfinite(loss) and torch.isfinite(stats["tse_si_snr"])
    assert sorted(torch.cat(calls).tolist()) == [0, 1, 1, 2, 2, 2, 3, 3]
    # Two cues of one mixture never share a pass: the inter-source path would join them.
    assert all(c.unique().numel() == c.numel() for c in calls)
    model.eval()
    with torch.no_grad():
        feats, _, trunk = model.forward_encoder(batch["speech_mix"], batch["speech_mix_lengths"])
        rows = torch.tensor([2, 0, 2, 1, 2])
        cues = torch.randn(5, 32)
        together = model._extract_alone(feats, trunk, cues, rows)
        for i in range(5):  # as if each were extracted by itself, in the order given
            alone = extract(feats, trunk, cues[i : i + 1], rows[i : i + 1])[0]
            assert torch.allclose(together[i], alone, atol=1e-5)
        # Validation keeps one target per mixture (the first with a cue).
        calls.clear()
        model(**batch)
        assert sorted(torch.cat(calls).tolist()) == [0, 1, 2, 3]


def test_alignment_with_a_cue_slot_that_no_row_of_the_batch_has():
    # ESPnet pads label_spk3 to [B, 0] when every mixture has at most two sources.
    model = build(cues=True, cue_branch_ratio=0.5, align_weight=1.0)
    batch = toy_batch(counts=(1, 2, 2, 1))
    batch["label_spk3"] = torch.zeros(4, 0, dtype=torch.long)
    model.eval()
    with torch.no_grad():
        _, stats, _ = model(**batch)
    assert torch.isfinite(stats["align_nce"]) and torch.isfinite(stats["match_acc"])


def test_branch_stream_is_reproducible_and_resumes_with_the_update_count():
    a = build(cues=True, cue_branch_ratio=0.7)
    b = build(cues=True, cue_branch_ratio=0.7)
    seq_a = [a._draw_branch() for _ in range(50)]
    seq_b = [b._draw_branch() for _ in range(25)]
    state = b.state_dict()
    c = build(cues=True, cue_branch_ratio=0.7)
    c.load_state_dict(state)  # a resumed run continues the same stream
    seq_b += [c._draw_branch() for _ in range(25)]
    assert seq_a == seq_b
    assert 0.5 < seq_a.count("tse") / 50 < 0.9


def test_extract_with_labels_and_with_an_audio_example():
    model = build(cues=True, example=True).eval()
    batch = toy_batch()
    out = model.extract(batch["speech_mix"], None,
                        {"label": (batch["label_spk1"], batch["label_spk1_lengths"])})
    assert out["target"].shape == (4, 4000) and out["cue"].shape == (4, 32)
    example = batch["speech_ref1"]
    out2 = model.extract(batch["speech_mix"], None,
                         {"example": (example, torch.full((4,), 4000))})
    assert out2["target"].shape == (4, 4000)
    with pytest.raises(ValueError, match="have no cue"):
        model.extract(batch["speech_mix"], None,
                      {"label": (batch["label_spk3"], batch["label_spk3_lengths"])})


def test_extract_takes_the_level_of_the_separated_source_the_target_resembles():
    model = build(cues=True).eval()
    batch = toy_batch()
    mix = batch["speech_mix"] * torch.tensor([1.0, 0.5, 2.0, 1.0])[:, None]
    cue = {"label": (batch["label_spk1"], batch["label_spk1_lengths"])}
    by_sep = model.extract(mix, None, cue)["target"]  # the default
    by_mix = model.extract(mix, None, cue, level="mixture")["target"]
    sep = model.separate(mix)
    for b in range(4):
        t = by_mix[b].double()
        sources = sep["sources"][b, : int(sep["counts"][b])].double()
        cos = (sources @ t).abs() / (sources.norm(dim=1) * t.norm())
        match = sources[int(cos.argmax())]
        expected = t * (t @ match) / (t @ t)  # the least-error copy of the matching source
        assert torch.allclose(by_sep[b].double(), expected, rtol=1e-4, atol=1e-6)
        assert not torch.allclose(by_sep[b], by_mix[b])  # the two rules differ
    with pytest.raises(ValueError, match="level must be one of"):
        model.extract(mix, None, cue, level="loudest")


@pytest.mark.slow  # forty training steps
def test_tagging_losses_fall_and_the_tags_name_the_classes_of_the_mixture():
    # Stage 1 with a label encoder for the tag vocabulary only: no cue branch.
    model = build(cues=True, tag_weight=1.0, attractor_tag_weight=1.0)
    batch = toy_batch()
    model.eval()
    with torch.no_grad():
        _, before, _ = model(**batch)
    assert torch.isfinite(before["tag_bce"]) and torch.isfinite(before["att_tag_ce"])
    assert torch.isnan(before["tse_si_snr"])  # the cue branch is not trained, not validated
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(40):
        loss, stats, _ = model(**batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        _, after, _ = model(**batch)
        trunk = model.forward_encoder(*model.normalize(batch["speech_mix"], torch.full((4,), 4000)))[2]
        tags = torch.sigmoid(model.tag_head(trunk.emb).mean(1))  # [B, V]
    assert after["tag_bce"] < before["tag_bce"] - 0.2
    assert after["att_tag_ce"] < before["att_tag_ce"] - 0.3
    # Row b holds the classes LABELS[(b + k) % 4], k < count: those tags rank first.
    for b, n in enumerate((1, 2, 3, 2)):
        expected = {(b + k) % 4 for k in range(n)}
        assert set(tags[b].topk(n).indices.tolist()) == expected
    # A mixture with an unlabelled source leaves the tagging loss (no false negative).
    classes = torch.tensor([[0, -1, -1], [1, -1, -1]])
    loss_one, _ = model.forward_loss_tag(trunk, torch.cat([classes, classes]), torch.tensor([1, 2, 1, 1]))
    loss_all, _ = model.forward_loss_tag(trunk, torch.cat([classes, classes]), torch.tensor([1, 1, 1, 1]))
    rows = [0, 2, 3]
    sub = type(trunk)(latent=None, emb=trunk.emb[rows], emb_lens=trunk.emb_lens[rows], aux=None)
    loss_sub, _ = model.forward_loss_tag(sub, torch.cat([classes, classes])[rows], torch.tensor([1, 1, 1]))
    assert torch.allclose(loss_one, loss_sub) and not torch.allclose(loss_one, loss_all)


def test_the_audio_example_is_an_ordinary_cue_encoder_bound_to_the_models_trunk():
    model = build(cues=True, example=True, cue_branch_ratio=1.0).eval()
    encoder = model.cue_network.encoders["example"]
    batch = toy_batch()
    example, lens = batch["speech_ref2"], batch["speech_ref2_lengths"]  # rows 0: absent
    tokens, token_lens = encoder(example, lens)
    assert tokens.shape == (4, 1, 32) and token_lens.tolist() == [0, 1, 1, 1]
    assert tokens[0].abs().max() == 0
    # The token is the example's first attractor, as the model's own EDA gives it.
    wav, _ = model.normalize(example[1:], lens[1:])
    attractors, _ = model.separator.attractors(model.forward_encoder(wav, lens[1:])[2], 1)
    assert torch.allclose(tokens[1:, 0], attractors[:, 0], atol=1e-5)
    assert not any(n.startswith("cue_network.encoders.example") for n in model.state_dict())
    # Trained through the cue branch, the example's gradient reaches the shared trunk.
    model.train()
    batch = {k: v for k, v in batch.items() if not k.startswith("label_spk")}
    for k in (1, 2, 3):
        batch[f"enroll_ref{k}"] = batch[f"speech_ref{k}"]
        batch[f"enroll_ref{k}_lengths"] = batch[f"speech_ref{k}_lengths"]
    loss, stats, _ = model(**batch)
    assert torch.isfinite(stats["tse_si_snr"])
    trunk_weight = model.separator.backbone.bottleneck.weight
    grad_of_example = torch.autograd.grad(loss, trunk_weight)[0]
    assert grad_of_example.abs().sum() > 0


def test_an_unbound_audio_example_encoder_says_so():
    from espnet2_use.cue import build_cue_encoder

    encoder = build_cue_encoder("audio", 32, {}, sample_rate=8000)
    assert encoder.sample_rate == 8000
    with pytest.raises(RuntimeError, match="not bound to a model"):
        encoder(torch.zeros(2, 100), torch.tensor([100, 0]))


def test_model_conf_errors():
    with pytest.raises(ValueError, match="need a label cue encoder"):
        build(tag_weight=1.0)
    with pytest.raises(ValueError, match="need a label cue encoder"):
        build(example=True, attractor_tag_weight=1.0)
    with pytest.raises(ValueError, match="need a cue network"):
        build(cue_branch_ratio=0.5)
    with pytest.raises(ValueError, match="max_num_src must be >= 1"):
        build(max_num_src=0)
    with pytest.raises(ValueError, match="min_num_src must lie in"):
        build(max_num_src=2, min_num_src=3)
    with pytest.raises(ValueError, match="tse_targets must be one of"):
        build(cues=True, tse_targets="every")


@pytest.mark.parametrize("stage2_tags", [True, False])
def test_stage_two_starts_from_a_tagging_stage_one_without_its_cue_network(tmp_path, stage2_tags):
    import yaml
    from espnet2.torch_utils.load_pretrained_model import load_pretrained_model
    from espnet2_use.bin.use_config_values import stage2_init_param

    stage1 = build(cues=True, tag_weight=1.0)  # label encoder for the tag vocabulary only
    with torch.no_grad():
        for p in stage1.parameters():
            p.add_(1.0)  # unlike a fresh model's
    torch.save(stage1.state_dict(), tmp_path / "stage1.pth")
    conf = {"model_conf": {"tag_weight": 1.0 if stage2_tags else 0.0}}
    (tmp_path / "stage2.yaml").write_text(yaml.safe_dump(conf))
    # Stage 2 has more cue modalities: the fusion's shapes differ from stage 1's.
    stage2 = build(cues=True, example=True, tag_weight=conf["model_conf"]["tag_weight"])
    init = stage2_init_param(tmp_path / "stage1.pth", tmp_path / "stage2.yaml")
    load_pretrained_model(init, stage2, ignore_init_mismatch=False, map_location="cpu")
    assert torch.equal(stage2.separator.state_dict()["backbone.bottleneck.weight"],
                       stage1.separator.state_dict()["backbone.bottleneck.weight"])
    label_emb = [k for k in stage2.state_dict() if k.startswith("cue_network.encoders.label")][0]
    assert not torch.equal(stage2.state_dict()[label_emb], stage1.state_dict()[label_emb])
    if stage2_tags:
        assert torch.equal(stage2.tag_head.weight, stage1.tag_head.weight)
    else:
        assert stage2.tag_head is None
