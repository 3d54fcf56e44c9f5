"""The transformer-decoder attractor (SepTDA, issue 24 point 2): shapes and counts, a
counting loss that falls on a toy set whose count is plain (and an attractor blind to
its frames cannot pass), the count head beside the existence threshold, and the
attractor type chosen in the config."""
import pytest
import torch

import espnet2_use  # noqa: F401
from espnet2_use.attractor.eda_attractor import EDAAttractor
from espnet2_use.attractor.tda_attractor import TDAAttractor
from espnet2_use.loss.variable_pit import existence_bce
from espnet2_use.model_builder import build_use_model
from espnet2_use.separator.use_separator import USESeparator

D = 16


@pytest.mark.parametrize("num_queries, num_layers, count_head", [(4, 1, False), (5, 2, True)])
def test_shapes_forward_backward_and_padding_is_not_read(num_queries, num_layers, count_head):
    torch.manual_seed(0)
    tda = TDAAttractor(D, num_queries=num_queries, num_layers=num_layers, count_head=count_head)
    emb, lens = torch.randn(2, 10, D), torch.tensor([10, 6])
    att, logits = tda(emb, lens, 3)
    assert att.shape == (2, 3, D) and logits.shape == (2, 3)
    loss = att.sum() + logits.sum()
    if count_head:
        count_logits = tda.count_logits(emb, lens)
        assert count_logits.shape == (2, num_queries)
        loss = loss + count_logits.sum()
    loss.backward()
    assert all(p.grad is not None for p in tda.parameters())
    # the first attractors do not depend on how many are asked for
    more, more_logits = tda(emb, lens, num_queries)
    assert torch.allclose(more[:, :3], att, atol=1e-6) and torch.allclose(more_logits[:, :3], logits, atol=1e-6)
    # what lies past an utterance's length is not read
    changed = emb.clone()
    changed[1, 6:] = 100.0
    assert torch.allclose(tda(changed, lens, 3)[0][1], att[1], atol=1e-5)
    with pytest.raises(ValueError, match="num_queries"):
        tda(emb, lens, num_queries + 1)


def test_counts_by_threshold_and_by_head():
    tda = TDAAttractor(D, num_queries=4, count_head=True)
    logits = torch.tensor([[3.0, 2.0, -1.0, 5.0], [-2.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    assert tda.count(logits).tolist() == [2, 0, 4]
    assert tda.count(logits, max_num_src=3, min_num_src=1).tolist() == [2, 1, 3]
    head = torch.tensor([[0.0, 5.0, 1.0, 0.0], [9.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 7.0]])
    assert tda.count_from_head(head).tolist() == [1, 0, 3]
    assert tda.count_from_head(head, max_num_src=2, min_num_src=1).tolist() == [1, 1, 2]


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_queries=1), "num_queries"), (dict(num_heads=3), "divisible"),
    (dict(threshold=1.0), "threshold"), (dict(count_rule="vote"), "count_rule"),
    (dict(count_rule="head"), "count_head"),
])
def test_bad_arguments_name_the_key(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TDAAttractor(D, **kwargs)


def toy(num: int, generator: torch.Generator, L: int = 12):
    """Frames that each show one of the mixture's sources: a class prototype (6 classes)
    plus noise. The count is the number of distinct prototypes among the frames."""
    protos = torch.nn.functional.normalize(torch.randn(6, D, generator=torch.Generator().manual_seed(7)), dim=-1) * 3
    counts = torch.randint(1, 4, (num,), generator=generator)
    emb = torch.zeros(num, L, D)
    for b, n in enumerate(counts.tolist()):
        classes = torch.randperm(6, generator=generator)[:n]
        which = torch.cat([torch.arange(n), torch.randint(0, n, (L - n,), generator=generator)])
        emb[b] = protos[classes[which]] + 0.3 * torch.randn(L, D, generator=generator)
    return emb, torch.full((num,), L), counts


def train_toy(blind: bool, steps: int = 150):
    """Existence BCE + count-head CE on the toy set; ``blind``: the frames are zeros."""
    torch.manual_seed(0)
    tda = TDAAttractor(D, num_queries=4, num_layers=2, count_head=True)
    opt = torch.optim.Adam(tda.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(steps):
        emb, lens, counts = toy(32, gen)
        if blind:
            emb = torch.zeros_like(emb)
        _, logits = tda(emb, lens, 4)
        loss = existence_bce(logits, counts) + torch.nn.functional.cross_entropy(tda.count_logits(emb, lens), counts)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    tda.eval()
    emb, lens, counts = toy(300, torch.Generator().manual_seed(99))
    if blind:
        emb = torch.zeros_like(emb)
    with torch.no_grad():
        _, logits = tda(emb, lens, 4)
        by_threshold = (tda.count(logits, 3, 1) == counts).float().mean().item()
        by_head = (tda.count_from_head(tda.count_logits(emb, lens), 3, 1) == counts).float().mean().item()
    return losses, by_threshold, by_head


def test_counting_loss_falls_on_a_toy_set_whose_count_is_plain_and_both_rules_count():
    torch.set_num_threads(1)
    losses, by_threshold, by_head = train_toy(blind=False)
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.4 * first, (first, last)
    assert by_threshold >= 0.85 and by_head >= 0.85, (by_threshold, by_head)  # chance: 1/3


def test_an_attractor_blind_to_its_frames_cannot_count_the_toy_set():
    """The control of the test above: the same training with the frames zeroed counts
    no better than the commonest count, so that test measures reading the frames."""
    torch.set_num_threads(1)
    _, by_threshold, by_head = train_toy(blind=True, steps=60)
    assert by_threshold < 0.5 and by_head < 0.5, (by_threshold, by_head)


# ------------------------------------------------------------------ config
SEP_CONF = dict(backbone="use_s", backbone_conf=dict(latent_dim=16, emb_dim=16, chunk_size=10, num_heads=2,
                                                    ffn_dim=32))


def test_the_config_names_the_attractor_type_and_eda_stays_the_default():
    assert isinstance(USESeparator(16, **SEP_CONF).attractor, EDAAttractor)
    sep = USESeparator(16, **SEP_CONF, attractor="tda", attractor_conf=dict(num_queries=5, num_heads=2))
    assert isinstance(sep.attractor, TDAAttractor) and sep.attractor.num_queries == 5
    with pytest.raises(ValueError, match=r"separator_conf.attractor must be one of \['eda', 'tda'\].*'lstm'"):
        USESeparator(16, **SEP_CONF, attractor="lstm")
    with pytest.raises(ValueError, match=r"separator_conf.attractor_conf \(attractor: tda\).*refine_layers"):
        USESeparator(16, **SEP_CONF, attractor="tda", attractor_conf=dict(refine_layers=1))


def tiny_config(**attractor_conf):
    return {
        "encoder": "conv", "encoder_conf": {"channel": 16, "kernel_size": 16, "stride": 8},
        "decoder": "conv", "decoder_conf": {"channel": 16, "kernel_size": 16, "stride": 8},
        "separator": "use", "separator_conf": {**SEP_CONF, "attractor": "tda", "attractor_conf": attractor_conf},
        "model_conf": {"max_num_src": 3, "count_weight": 1.0},
    }


def toy_batch(counts=(1, 2, 3, 2), T=2000):
    torch.manual_seed(1)
    B = len(counts)
    refs = torch.randn(B, 3, T) * (torch.arange(3)[None, :, None] < torch.tensor(counts)[:, None, None])
    counts_t = torch.tensor(counts)
    batch = dict(speech_mix=refs.sum(1), speech_mix_lengths=torch.full((B,), T), num_src=counts_t[:, None])
    for k in range(3):
        batch[f"speech_ref{k + 1}"] = refs[:, k]
        batch[f"speech_ref{k + 1}_lengths"] = torch.where(counts_t > k, T, 0)
    return batch


def test_a_config_with_tda_and_a_count_head_trains_both_counts_and_infers_by_its_rule():
    model = build_use_model(tiny_config(num_queries=4, num_heads=2, count_head=True, count_rule="head"))
    assert isinstance(model.separator.attractor, TDAAttractor) and model.separator.has_count_head
    loss, stats, _ = model(**toy_batch())
    loss.backward()
    assert torch.isfinite(loss)
    for key in ("exist_bce", "count_acc", "count_ce", "count_head_acc"):
        assert torch.isfinite(stats[key]), key
    assert model.separator.attractor.count_out.weight.grad is not None
    model.eval()
    with torch.no_grad():  # inference counts by the head: force it to say 2
        model.separator.attractor.count_out.weight.zero_()
        model.separator.attractor.count_out.bias.copy_(torch.tensor([0.0, 0.0, 9.0, 0.0]))
        out = model.separate(toy_batch()["speech_mix"])
    assert out["counts"].tolist() == [2, 2, 2, 2]


def test_a_tda_without_a_count_head_logs_no_count_head_stats():
    model = build_use_model(tiny_config(num_queries=4, num_heads=2))
    _, stats, _ = model(**toy_batch())
    assert torch.isnan(stats["count_ce"]) and torch.isfinite(stats["count_acc"])
