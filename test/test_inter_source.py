"""The mask head's inter-source path and the EDA's transformer refinement."""
import pytest
import torch

from espnet2.enh.encoder.conv_encoder import ConvEncoder
from espnet2.enh.encoder.stft_encoder import STFTEncoder
from espnet2_use.attractor.eda_attractor import EDAAttractor
from espnet2_use.layers.inter_source import InterSourceBlock, group_slots
from espnet2_use.loss.variable_pit import existence_bce
from espnet2_use.separator.use_separator import USESeparator

TINY = {
    "use_s": dict(latent_dim=16, emb_dim=16, chunk_size=10, num_heads=2, ffn_dim=32,
                  num_pre_blocks=1, num_post_blocks=1),
    "use_b": dict(latent_dim=8, emb_dim=16, num_bands=6, num_pre_blocks=1, num_post_blocks=1,
                  inter_source_heads=2),
}


def test_group_slots_numbers_the_queries_of_each_mixture():
    group, slot, sizes, num = group_slots(torch.tensor([2, 0, 2, 1, 0, 2]))
    assert num == 3
    assert group.tolist() == [2, 0, 2, 1, 0, 2]
    assert slot.tolist() == [0, 0, 1, 0, 1, 2]
    assert sizes.tolist() == [2, 1, 3]


def test_inter_source_block_is_permutation_equivariant_and_mixtures_stay_apart():
    torch.manual_seed(0)
    block = InterSourceBlock(16, num_heads=2).eval()
    index = torch.tensor([0, 0, 1, 2, 2, 2])
    x = torch.randn(6, 16, 4, 5)
    y = block(x, index)
    assert y.shape == x.shape
    perm = torch.tensor([1, 0, 2, 5, 3, 4])  # within each mixture
    assert torch.allclose(block(x[perm], index), y[perm], atol=1e-5)
    # A query alone in its mixture gives the same output whatever the other mixtures hold.
    assert torch.allclose(block(x[2:3], torch.tensor([7])), y[2:3], atol=1e-5)
    # Changing the second source of mixture 0 changes its first source's output, and
    # nothing in the other mixtures.
    x2 = x.clone()
    x2[1] = torch.randn(16, 4, 5)
    d = block(x2, index) - y
    assert d[0].abs().max() > 1e-3
    assert d[2:].abs().max() == 0


def test_inter_source_block_rejects_heads_that_do_not_divide_the_width():
    with pytest.raises(ValueError, match="divisible"):
        InterSourceBlock(10, num_heads=4)


@pytest.mark.parametrize("backbone", ["use_s", "use_b"])
def test_a_second_source_changes_the_first_sources_mask(backbone):
    """With the inter-source path the queries of one mixture see each other; without
    it, each query's output depends on its own query only."""
    torch.manual_seed(0)
    wav = torch.randn(1, 1600)
    lengths = torch.tensor([1600])
    encoder = ConvEncoder(16, 16, 8) if backbone == "use_s" else STFTEncoder(64, 64, 16)
    feats, flens = encoder(wav, lengths)
    for inter, changes in ((True, True), (False, False)):
        sep = USESeparator(encoder.output_dim, backbone, dict(TINY[backbone], inter_source=inter)).eval()
        trunk = sep.encode(feats, flens)
        q = torch.randn(2, 16)
        alone = sep.mask(trunk, feats, q[:1], torch.tensor([0]))
        pair = sep.mask(trunk, feats, q, torch.tensor([0, 0]))
        diff = (pair[0] - alone[0]).abs().max().item()
        assert (diff > 1e-4) == changes, (backbone, inter, diff)


def test_refined_attractors_keep_the_prefix_property_and_shapes():
    torch.manual_seed(0)
    eda = EDAAttractor(16, refine_layers=2).eval()
    emb, lens = torch.randn(3, 20, 16), torch.tensor([20, 10, 5])
    att4, logit4 = eda(emb, lens, 4)
    att2, logit2 = eda(emb, lens, 2)
    assert att4.shape == (3, 4, 16) and logit4.shape == (3, 4)
    # Attractor s does not depend on how many follow it (causal self-attention).
    assert torch.allclose(att4[:, :2], att2, atol=1e-5)
    assert torch.allclose(logit4[:, :2], logit2, atol=1e-5)
    # Padding frames are ignored.
    att_short, _ = eda(emb[1:2, :10], lens[1:2], 4)
    assert torch.allclose(att_short, att4[1:2], atol=1e-5)


def _count_batch(protos: torch.Tensor, size: int):
    """Frames drawn from ``count`` of the prototypes: the count is in the frames."""
    counts = torch.randint(1, 4, (size,))
    emb = torch.stack([protos[torch.randint(0, int(c), (12,))] for c in counts])  # [B, 12, D]
    return emb + 0.05 * torch.randn_like(emb), counts


def test_refined_eda_learns_to_count():
    """Trained on frames whose count of distinct sounds is 1-3, the refined EDA counts
    held-out mixtures (all of them after 100 steps, for seeds 0-3; a third by chance,
    which is what it scores when it cannot see the frames)."""
    torch.manual_seed(0)
    eda = EDAAttractor(16, refine_layers=1)
    protos = torch.randn(4, 16)
    opt = torch.optim.Adam(eda.parameters(), lr=3e-3)
    for _ in range(100):
        emb, counts = _count_batch(protos, 16)
        _, logits = eda(emb, torch.full((16,), 12), 4)
        loss = existence_bce(logits, counts)
        opt.zero_grad()
        loss.backward()
        opt.step()
    eda.eval()
    with torch.no_grad():
        emb, counts = _count_batch(protos, 200)
        _, logits = eda(emb, torch.full((200,), 12), 4)
        estimated = eda.count(logits, max_num_src=3)
    accuracy = (estimated == counts).float().mean().item()
    assert accuracy >= 0.9, (accuracy, torch.bincount(estimated, minlength=4).tolist())


def test_refine_options_are_checked():
    with pytest.raises(ValueError, match="refine_layers"):
        EDAAttractor(16, refine_layers=-1)
    with pytest.raises(ValueError, match="divisible"):
        EDAAttractor(10, refine_layers=1, refine_heads=4)
