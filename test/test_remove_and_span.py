"""Issue 26: removing a sound (target and residual) and the time-span cue.

Tiny models with random weights: these check the inference and data code's promises
(target + residual is the mixture; a span becomes a frame track that changes the mask
head's output; spans are read off references with jitter), not learning.
"""
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from espnet2_use import USE
from espnet2_use.bin import use_pack, use_separate
from test_inference_promises import FS, tiny_config, write_exp
from tiny_data import LABELS, tone, write_labels


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A packed tiny model with label and span cues, and a half-second two-tone mixture."""
    root = tmp_path_factory.mktemp("remove_span")
    labels = write_labels(root / "token_list" / "labels.txt")
    exp = write_exp(root / "exp" / "tiny", tiny_config(labels, span=dict(type="span")))
    pack = use_pack.pack(exp, root / "use_model.zip", root=root)
    rng = np.random.default_rng(0)
    mixture = tone(LABELS[0], FS // 2, FS, rng) + tone(LABELS[2], FS // 2, FS, rng)
    sf.write(root / "mix.wav", mixture, FS, subtype="FLOAT")
    return dict(root=root, pack=pack, mixture=mixture, mix_path=root / "mix.wav")


@pytest.fixture(scope="module")
def use(model):
    return USE.from_packed(model["pack"])


# ------------------------------------------------------------------------ remove
@pytest.mark.parametrize("level", ["separation", "mixture"])
def test_target_plus_residual_is_the_mixture(use, model, level):
    x = model["mixture"]
    out = use.extract(x, label=LABELS[0], level=level)
    assert out.residual.shape == x.shape and np.abs(out.target).max() > 0
    np.testing.assert_allclose(out.target + out.residual, x, rtol=0, atol=1e-6)
    # The model's own residual, at the mixture's scale (not the normalised one).
    speech = torch.from_numpy(3 * x)[None]
    inputs = use.cue_inputs(label=LABELS[0])
    res = use.model.extract(speech, None, inputs, level=level)
    torch.testing.assert_close(res["target"] + res["residual"], speech, rtol=0, atol=1e-5)


def test_a_silent_target_gives_the_mixture_back(use, model, monkeypatch):
    x = model["mixture"]
    net = use.model
    monkeypatch.setattr(net, "forward_decoder", lambda masked, lengths, n: masked.new_zeros(masked.size(0), n))
    for level in ("separation", "mixture"):
        out = use.extract(x, label=LABELS[0], level=level)
        assert not np.abs(out.target).any()
        np.testing.assert_array_equal(out.residual, x)


def test_cli_remove_writes_the_residual_as_its_main_output(model, tmp_path):
    base = ["--model", str(model["pack"]), str(model["mix_path"])]
    assert use_separate.main(base + ["--outdir", str(tmp_path / "r"), "--remove", "--label", LABELS[0]]) == 0
    manifest = json.loads((tmp_path / "r" / "mix" / "manifest.json").read_text())
    assert manifest["mode"] == "remove" and manifest["output_is"] == "residual"
    assert manifest["output"] == manifest["residual"] != manifest["target"]
    target, _ = sf.read(manifest["target"], dtype="float32")
    residual, _ = sf.read(manifest["residual"], dtype="float32")
    np.testing.assert_allclose(target + residual, model["mixture"], atol=1e-5)
    assert use_separate.main(base + ["--outdir", str(tmp_path / "e"), "--label", LABELS[0]]) == 0
    manifest = json.loads((tmp_path / "e" / "mix" / "manifest.json").read_text())
    assert manifest["mode"] == "extract" and manifest["output"] == manifest["target"]
    with pytest.raises(SystemExit, match="--remove needs a cue"):
        use_separate.main(base + ["--outdir", str(tmp_path / "x"), "--remove"])


def test_cli_remove_with_a_caption_needs_a_text_encoder(model, tmp_path):
    """--remove CAPTION is the text cue; this model has none, and the input fails by name."""
    base = ["--model", str(model["pack"]), str(model["mix_path"]), "--outdir", str(tmp_path)]
    assert use_separate.main(base + ["--remove", "a low humming tone"]) == 1
    with pytest.raises(SystemExit, match="give it or --text, not both"):
        use_separate.main(base + ["--remove", "a dog", "--text", "a cat"])


# -------------------------------------------------------------------------- span
def _span_encoder(**conf):
    from espnet2_use.cue import build_cue_encoder

    return build_cue_encoder("span", 16, conf, sample_rate=FS)


def test_span_text_parses_and_bad_spans_name_the_interval():
    enc = _span_encoder()
    np.testing.assert_allclose(enc.extract("1.2-2.0, 3-3.5"), [[1.2, 2.0], [3.0, 3.5]])
    assert enc.extract("").shape == (0, 2)
    assert enc.to_raw([(1.2, 2.0), (3, 3.5)]) == "1.2-2 3-3.5"
    np.testing.assert_allclose(enc.extract(enc.to_raw([(1.2, 2.0), (3, 3.5)])), [[1.2, 2.0], [3.0, 3.5]])
    with pytest.raises(ValueError, match=r"span '2.0-1.2': the start must be before the end"):
        enc.extract("2.0-1.2")
    with pytest.raises(ValueError, match=r"span '1.2': expected start-end in seconds"):
        enc.extract("1.2")
    with pytest.raises(ValueError, match=r"expected a list of \(start, end\) pairs"):
        enc.to_raw([1.2, 2.0])


def test_span_is_read_off_the_reference_with_jitter_in_training():
    enc = _span_encoder(jitter=0.05)
    ref = np.zeros(FS, dtype=np.float32)
    ref[2000:5200] = tone(LABELS[1], 3200, FS, np.random.default_rng(0))  # 0.25 s .. 0.65 s
    exact = enc.derive(ref, jitter=False)
    np.testing.assert_allclose(exact, [[0.25, 0.65]], atol=0.021)
    np.random.seed(0)
    jittered = [enc.derive(ref, jitter=True) for _ in range(5)]
    assert all(j.shape == (1, 2) and np.abs(j - exact).max() <= 0.05 + 1e-6 for j in jittered)
    assert len({tuple(j.ravel().round(5)) for j in jittered}) == 5
    assert enc.derive(np.zeros(FS, np.float32), jitter=True).shape == (0, 2)


def test_span_track_covers_its_frames_and_is_cut_to_a_window():
    from espnet2_use.cue.abs_cue_encoder import FrameGrid

    enc = _span_encoder()
    x = torch.tensor([[[0.25, 0.5], [0.0, 0.0]], [[0.0, 1.0], [0.0, 0.0]]])
    lens = torch.tensor([1, 0])
    grid = FrameGrid(torch.tensor([FS, FS]), torch.tensor([4, 3]), 4)  # 0.25 s frames (row 0)
    act = enc.activity(x, lens, grid)
    torch.testing.assert_close(act[0], torch.tensor([0.0, 1.0, 0.0, 0.0]))
    assert not act[1].any()  # an absent span
    track, track_lens = enc(x, lens, grid)
    assert track.shape == (2, 4, 16) and track_lens.tolist() == [4, 0] and not track[1].any()
    cut, cut_lens = enc.window(torch.tensor([[[0.2, 0.6], [1.5, 2.5]]]), torch.tensor([2]), 0.5, 2.0)
    assert cut_lens.tolist() == [2]
    torch.testing.assert_close(cut[0], torch.tensor([[0.0, 0.1], [1.0, 1.5]]))
    _, none = enc.window(torch.tensor([[[0.2, 0.4]]]), torch.tensor([1]), 0.5, 2.0)
    assert none.tolist() == [0]


def test_span_conditions_the_mask_head_frame_by_frame(use, model):
    x = model["mixture"]
    early = use.extract(x, span=[(0.0, 0.2)], level="mixture").target
    late = use.extract(x, span=[(0.3, 0.5)], level="mixture").target
    assert not np.allclose(early, late)
    with_label = use.extract(x, label=LABELS[0], span="0-0.2", level="mixture").target
    assert not np.allclose(with_label, early)
    # a chunk outside the span, the span the only cue: nothing extracted there
    long = np.concatenate([x, x])
    out = use.extract(long, span=[(0.0, 0.4)], chunk_seconds=0.5, overlap_seconds=0.0)
    assert np.abs(out.target[: FS // 2]).max() > 0 and not np.abs(out.target[FS // 2:]).any()
    np.testing.assert_allclose(out.target + out.residual, long, atol=1e-6)


@pytest.mark.parametrize("backbone", ["use_s", "use_b"])
def test_span_trains_in_the_cue_branch_with_gradients_to_its_encoder(backbone):
    from test_use_model import build, toy_batch
    from espnet2_use.cue.cue_network import USECueNetwork

    model = build(backbone, cues=True, cue_branch_ratio=1.0)
    model.cue_network = USECueNetwork(32, encoders={
        "label": {"type": "embedding", "conf": {"label_list": ["low", "mid", "high", "buzz"]}},
        "span": {"type": "span"}}, sample_rate=8000)
    model.cue_network.bind(model.embed_example)
    batch = toy_batch()
    enc = model.cue_network.encoders["span"]
    for k in range(1, 4):
        spans = [enc.derive(batch[f"speech_ref{k}"][b].numpy(), jitter=True) for b in range(4)]
        n = max(len(s) for s in spans)
        padded = np.zeros((4, n, 2), np.float32)
        for b, s in enumerate(spans):
            padded[b, : len(s)] = s
        batch[f"span_spk{k}"] = torch.from_numpy(padded)
        batch[f"span_spk{k}_lengths"] = torch.tensor([len(s) for s in spans])
        batch.pop(f"label_spk{k}")  # the span alone
        batch.pop(f"label_spk{k}_lengths")
    model.train()
    loss, stats, _ = model(**batch)
    assert torch.isfinite(stats["tse_si_snr"])
    loss.backward()
    assert enc.proj.weight.grad is not None and enc.proj.weight.grad.abs().sum() > 0


def test_preprocessor_derives_spans_after_the_crop():
    from espnet2_use.train.preprocessor import USEPreprocessor

    ref1 = np.zeros(FS, np.float32)
    ref1[:4000] = tone(LABELS[0], 4000, FS, np.random.default_rng(1))
    ref2 = tone(LABELS[2], FS, FS, np.random.default_rng(2))
    data = dict(speech_mix=ref1 + ref2, speech_ref1=ref1, speech_ref2=ref2,
                speech_ref3=np.zeros(0, np.float32), num_src=np.array([2]))
    spec = {"span": {"type": "span", "conf": {"jitter": 0.05}}}
    valid = USEPreprocessor(False, spec, sample_rate=FS)("u", dict(data))
    np.testing.assert_allclose(valid["span_spk1"], [[0.0, 0.5]], atol=0.021)
    np.testing.assert_allclose(valid["span_spk2"], [[0.0, 1.0]], atol=0.021)
    assert valid["span_spk3"].shape == (0, 2)
    given = USEPreprocessor(False, spec, sample_rate=FS)("u", dict(data, span_spk1="0.1-0.2"))
    np.testing.assert_allclose(given["span_spk1"], [[0.1, 0.2]])  # a data file's span wins
    np.random.seed(3)
    train = USEPreprocessor(True, spec, sample_rate=FS, segment=FS // 2)("u", dict(data, span_spk1="0.1-0.2"))
    assert len(train["speech_mix"]) == FS // 2
    for k in range(1, int(train["num_src"][0]) + 1):
        span = train["span_spk%d" % k]
        assert span.shape[1] == 2 and len(span) >= 1 and span.max() <= 0.5 + 1e-6  # the crop's clock


def test_recipe_tse_table_has_span_rows(model, tmp_path):
    """Decoding (stage 6) of tse:span and tse:label+span with spans read off the
    references, scoring (stage 7) per cue combination, and the RESULTS table."""
    from espnet2_use.bin import use_inference, use_scoring
    from tiny_data import write_set

    data = write_set(tmp_path, "test_tse", [1, 2, 3], seed=4)
    tasks = ["tse:label", "tse:span", "tse:label+span"]
    out = tmp_path / "decode"
    use_inference.main(["--packed_model", str(model["pack"]), "--data_dir", str(data),
                        "--output_dir", str(out), "--tasks", *tasks])
    # Decoding leaves autograd as it found it: compare.py trains after decoding in one process.
    assert torch.is_grad_enabled()
    dirs = [out / use_inference.task_dir_name(t) for t in tasks]
    for d in dirs:
        assert len((d / "spk1.scp").read_text().splitlines()) == 3
    use_scoring.main(["--mode", "tse", "--ref_dir", str(data), "--est_dir", *map(str, dirs),
                      "--fs", str(FS), "--no_progress"])
    results = tmp_path / "RESULTS.md"
    use_scoring.main(["--collect", *map(str, dirs), "--out_md", str(results)])
    rows = [line for line in results.read_text().splitlines() if line.startswith("| ")]
    for combo in ("label", "span", "label+span"):
        assert any(line.startswith(f"| {combo} |") and "| all |" in line for line in rows), combo


def test_training_data_arguments_leave_an_absent_span_file_to_the_preprocessor(tmp_path):
    """A stage-2 config with a span encoder trains on a data dir without span_spk{k}
    (use.sh's stage 5): the preprocessor reads the spans off the references; a span file
    that is there is read, and a missing label file still stops with its path."""
    from espnet2_use.bin.use_data_args import data_args

    config = {"cue_encoders": {"label": {"type": "embedding", "conf": {"label_list": "labels.txt"}},
                               "span": {"type": "span"}}}
    for name in ["wav.scp", "utt2num_src"] + [f"{f}_spk{k}" for f in ("label",) for k in (1, 2)]:
        (tmp_path / name).write_text("u1 x\n")
    for k in (1, 2):
        (tmp_path / f"spk{k}.scp").write_text("u1 x\n")
    args = data_args(config, "train", tmp_path, 2)
    names = [a.split(",")[1] for a in args if "," in a]
    assert "label_spk2" in names and not any(n.startswith("span_") for n in names), names
    (tmp_path / "span_spk1").write_text("u1 0.1-0.5\n")
    names = [a.split(",")[1] for a in data_args(config, "train", tmp_path, 2) if "," in a]
    assert "span_spk1" in names and "span_spk2" not in names
    (tmp_path / "label_spk2").unlink()
    with pytest.raises(FileNotFoundError, match="label_spk2"):
        data_args(config, "train", tmp_path, 2)
