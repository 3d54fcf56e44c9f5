"""USE separator family, EDA attractor and the shared mask head."""
import pytest
import torch

import espnet2_use  # noqa: F401  (registration)
from espnet2.enh.encoder.conv_encoder import ConvEncoder
from espnet2.enh.encoder.stft_encoder import STFTEncoder
from espnet2_use.attractor.eda_attractor import EDAAttractor
from espnet2_use.separator.use_separator import USESeparator

TINY = {
    "use_s": dict(latent_dim=16, emb_dim=16, chunk_size=10, num_heads=2, ffn_dim=32,
                  num_pre_blocks=1, num_post_blocks=1),
    "use_b": dict(latent_dim=8, emb_dim=16, num_bands=6, num_pre_blocks=1, num_post_blocks=1),
}


def encoded(backbone: str, batch: int = 2, samples: int = 1600):
    torch.manual_seed(0)
    encoder = ConvEncoder(16, 16, 8) if backbone == "use_s" else STFTEncoder(64, 64, 16)
    wav = torch.randn(batch, samples)
    lengths = torch.tensor([samples, samples * 3 // 4])[:batch]
    feats, flens = encoder(wav, lengths)
    return feats, flens, encoder.output_dim


@pytest.mark.parametrize("backbone", ["use_s", "use_b"])
@pytest.mark.parametrize("num_spk", [1, 2, 3, 4])
def test_forward_backward_each_count(backbone, num_spk):
    feats, flens, dim = encoded(backbone)
    sep = USESeparator(dim, backbone, TINY[backbone], num_spk=num_spk)
    masked, olens, others = sep(feats, flens)
    assert len(masked) == num_spk
    for m in masked:
        assert m.shape == feats.shape and m.dtype == feats.dtype
    assert others["existence_prob"].shape == (feats.size(0), num_spk + 1)
    assert others["attractors"].shape == (feats.size(0), num_spk, 16)
    loss = sum(m.abs().mean() for m in masked) + others["existence_prob"].sum()
    loss.backward()
    grads = [p.grad for p in sep.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("backbone", ["use_s", "use_b"])
def test_additional_num_spk_overrides_the_configured_count(backbone):
    feats, flens, dim = encoded(backbone)
    sep = USESeparator(dim, backbone, TINY[backbone], num_spk=2)
    masked, _, _ = sep(feats, flens, {"num_spk": 3})
    assert len(masked) == 3


def test_mask_head_is_shared_by_attractors_and_any_query():
    feats, flens, dim = encoded("use_s")
    sep = USESeparator(dim, "use_s", TINY["use_s"]).eval()
    trunk = sep.encode(feats, flens)
    attractors, _ = sep.attractors(trunk, 3)
    index = torch.tensor([0, 0, 1])
    queries = attractors[index, torch.tensor([0, 1, 0])]
    out = sep.mask(trunk, feats, queries, index)
    assert out.shape == (3,) + feats.shape[1:]
    # The same query for the same row gives the same output, whatever other mixtures
    # are batched (queries of one mixture do see each other: the inter-source path).
    alone = sep.mask(trunk, feats, queries[2:3], index[2:3])
    torch.testing.assert_close(out[2:3], alone, rtol=1e-4, atol=1e-5)
    # Different queries give different outputs: the head is conditioned.
    assert not torch.allclose(out[0], out[1])


def test_eda_decodes_the_forced_number_and_counts_by_threshold():
    eda = EDAAttractor(8).eval()
    emb = torch.randn(3, 12, 8)
    lens = torch.tensor([12, 7, 1])
    for n in (1, 2, 5):
        att, logits = eda(emb, lens, n)
        assert att.shape == (3, n, 8) and logits.shape == (3, n)
    # Decoding more attractors never changes the earlier ones (zero decoder inputs).
    a2, _ = eda(emb, lens, 2)
    a5, _ = eda(emb, lens, 5)
    torch.testing.assert_close(a2, a5[:, :2])
    probs_to_logits = lambda p: torch.logit(torch.tensor(p))  # noqa: E731
    logits = torch.stack([probs_to_logits([0.9, 0.8, 0.2, 0.9]),
                          probs_to_logits([0.1, 0.9, 0.9, 0.9]),
                          probs_to_logits([0.9, 0.9, 0.9, 0.9])])
    assert eda.count(logits).tolist() == [2, 0, 4]
    assert eda.count(logits, max_num_src=3).tolist() == [2, 0, 3]
    assert eda.count(logits, max_num_src=3, min_num_src=1).tolist() == [2, 1, 3]


def test_eda_shuffles_only_valid_frames():
    emb = torch.arange(10, dtype=torch.float32).view(1, 10, 1).repeat(2, 1, 1)
    lens = torch.tensor([10, 4])
    out = EDAAttractor._shuffle(emb, lens)
    assert sorted(out[0, :, 0].tolist()) == list(range(10))
    assert sorted(out[1, :4, 0].tolist()) == [0, 1, 2, 3]
    assert out[1, 4:, 0].tolist() == [4, 5, 6, 7, 8, 9]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(backbone="sepformer"), "backbone must be one of"),
        (dict(backbone="use_s", backbone_conf=dict(latent_dim=-8)), "'latent_dim' must be positive"),
        (dict(backbone="use_b", backbone_conf=dict(num_bands=-2)), "'num_bands' must be positive"),
        (dict(backbone="use_s", backbone_conf=dict(chunk_size=7)), "chunk_size must be even"),
        (dict(num_spk=0), "num_spk must be >= 1"),
        (dict(attractor_conf=dict(threshold=1.5)), "threshold must lie in"),
    ],
)
def test_bad_configs_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        USESeparator(16 if kwargs.get("backbone") != "use_b" else 33, **kwargs)


def test_registered_into_espnet_choices():
    from espnet2.tasks.enh import separator_choices
    from espnet2.tasks.enh_tse import extractor_choices
    from espnet2_use.extractor.use_extractor import USEExtractor

    assert separator_choices.get_class("use") is USESeparator
    assert extractor_choices.get_class("use") is USEExtractor
    espnet2_use.register()  # idempotent
    assert separator_choices.get_class("use") is USESeparator
