"""The count peer of the comparison (issue 24): espnet2_use/counting and compare.py count-peer.

A toy corpus of tones (one frequency per class, so a mixture's count is plain to see)
in the recipe's data layout: the counter's shapes, the dynamic mixer's draws, the
budgeted, resumable trainer (its count loss falls and it counts the toy valid set), the
count-peer step (decoding dir, the scorer's counting, a rerun that does nothing and
imports no torch) and the table's row.
"""
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import soundfile as sf
import torch

from espnet2_use.counting.dynamic_mixing import SourcePool
from espnet2_use.counting.inference import count_dir, load_counter
from espnet2_use.counting.logmel_cnn_counter import LogMelCNNCounter
from espnet2_use.counting.trainer import check_config, train_counter

LOCAL = Path(__file__).resolve().parents[1] / "egs2" / "mini_use" / "use1" / "local"
sys.path.insert(0, str(LOCAL))
import compare  # noqa: E402

FS = 8000
TONES = {"low": 300.0, "mid": 800.0, "high": 1800.0, "top": 3000.0}
# Windows as long as the toy mixtures: so tiny a CNN learns the toy's length too (its
# zero-padded edges are a quarter of a 0.5 s window), and counts 1 s mixtures worse.
TINY = {"model_conf": {"n_mels": 16, "channels": [4, 8], "dropout": 0.0}, "batch_size": 8,
        "segment_s": 1.0, "lr": 1e-2, "log_every": 5, "save_every_s": 0.5}


def make_dir(path: Path, num: int, seed: int, length: float = 1.0, relative_to: Path = None) -> Path:
    """A data dir of ``num`` mixtures of 1-3 tones of distinct classes (silence entries
    for absent sources), with wav.scp, spk{k}.scp, label_spk{k}, utt2num_src."""
    rng = np.random.default_rng(seed)
    n_samples = int(length * FS)
    (path / "wav").mkdir(parents=True, exist_ok=True)
    silence = path / "silence.wav"
    sf.write(silence, np.zeros(n_samples, dtype=np.float32), FS)
    files: Dict[str, list] = {"wav.scp": [], "utt2num_src": []}
    for k in range(1, 4):
        files[f"spk{k}.scp"], files[f"label_spk{k}"] = [], []

    def entry(p: Path) -> str:
        return str(p.relative_to(relative_to)) if relative_to is not None else str(p)

    for i in range(num):
        utt = f"{path.name}_{i:03d}"
        n = int(rng.integers(1, 4))
        labels = rng.choice(sorted(TONES), size=n, replace=False)
        mix = np.zeros(n_samples, dtype=np.float32)
        t = np.arange(n_samples) / FS
        for k in range(1, 4):
            if k <= n:
                ref = np.zeros(n_samples, dtype=np.float32)
                start = int(rng.integers(0, n_samples // 4))
                ref[start:] = 0.2 * np.sin(2 * np.pi * TONES[labels[k - 1]] * t[start:])
                ref_path = path / "wav" / f"{utt}_spk{k}.wav"
                sf.write(ref_path, ref, FS)
                mix += ref
                files[f"spk{k}.scp"].append(f"{utt} {entry(ref_path)}")
                files[f"label_spk{k}"].append(f"{utt} {labels[k - 1]}")
            else:
                files[f"spk{k}.scp"].append(f"{utt} {entry(silence)}")
                files[f"label_spk{k}"].append(f"{utt} ")
        mix_path = path / "wav" / f"{utt}.wav"
        sf.write(mix_path, mix, FS)
        files["wav.scp"].append(f"{utt} {entry(mix_path)}")
        files["utt2num_src"].append(f"{utt} {n}")
    for name, lines in files.items():
        (path / name).write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy")
    make_dir(root / "train", 24, 0)
    make_dir(root / "valid", 30, 1)
    make_dir(root / "test", 12, 2)
    return root


# ------------------------------------------------------------------ the network
@pytest.mark.parametrize("channels, n_mels, tags, max_num_src", [([4], 8, 5, 3), ([4, 8], 16, 0, 4)])
def test_counter_shapes_forward_and_backward(channels, n_mels, tags, max_num_src):
    model = LogMelCNNCounter(FS, num_tags=tags, max_num_src=max_num_src, n_mels=n_mels, channels=channels)
    out = model(torch.randn(3, 4000))
    assert out["count_logits"].shape == (3, max_num_src)
    assert ("tag_logits" in out) == bool(tags)
    if tags:
        assert out["tag_logits"].shape == (3, tags)
    sum(v.sum() for v in out.values()).backward()
    assert all(p.grad is not None for p in model.parameters())
    counts = model.eval().count(torch.randn(2, 3000))
    assert counts.dtype == torch.long and ((counts >= 1) & (counts <= max_num_src)).all()


@pytest.mark.parametrize("kwargs, message", [
    (dict(channels=[]), "channels"), (dict(n_mels=4, channels=[4, 8, 8]), "n_mels"),
    (dict(max_num_src=0), "max_num_src"), (dict(hop_ms=0.01), "hop_ms"),
])
def test_counter_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LogMelCNNCounter(FS, num_tags=3, **kwargs)


def test_counter_ignores_the_level_of_its_input():
    model = LogMelCNNCounter(FS, num_tags=2, n_mels=16, channels=[4, 8]).eval()
    wav = torch.randn(1, 4000)
    assert torch.allclose(model(wav)["count_logits"], model(10.0 * wav)["count_logits"], atol=1e-4)


# ------------------------------------------------------------------ dynamic mixing
def test_pool_mixes_distinct_sounding_classes_and_says_how_many(corpus):
    pool = SourcePool.from_dir(corpus / "train")
    assert pool.labels == sorted(TONES) and pool.sample_rate == FS
    rng = np.random.default_rng(0)
    mix, counts, tags = pool.mixtures(64, 4000, rng, max_num_src=3)
    assert mix.shape == (64, 4000) and set(counts.tolist()) == {1, 2, 3}
    assert (tags.sum(1) == counts).all()  # distinct classes, one tag each
    # every drawn tone sounds in the window: its frequency's energy is there
    spectrum = np.abs(np.fft.rfft(mix, axis=1))
    freqs = np.fft.rfftfreq(4000, 1 / FS)
    for b in range(64):
        for label, f in TONES.items():
            peak = spectrum[b, np.abs(freqs - f) < 20].max()
            assert (peak > 50.0) == bool(tags[b, pool.index[label]]), (b, label, peak)
    again = pool.mixtures(64, 4000, np.random.default_rng(0), max_num_src=3)
    assert np.array_equal(again[0], mix), "the same generator draws the same mixtures"


def test_pool_window_finds_a_short_burst_in_a_long_source():
    from espnet2_use.counting.dynamic_mixing import Source

    wav = np.zeros(40000, dtype=np.float32)
    wav[0] = 1e-3  # trimming keeps the span from the first to the last nonzero sample
    wav[30000:31000] = 0.5
    wav[-1] = 1e-3
    pool = SourcePool([Source("u", "a", wav)], FS)
    for seed in range(5):
        window = pool._window(pool.by_class["a"][0].wav, 8000, np.random.default_rng(seed), 0.125)
        assert np.abs(window).max() == pytest.approx(0.5)


def test_pool_reads_relative_paths_from_root_and_names_missing_files(tmp_path):
    make_dir(tmp_path / "rel", 4, 3, relative_to=tmp_path)
    assert len(SourcePool.from_dir(tmp_path / "rel", root=tmp_path).labels) >= 1
    (tmp_path / "rel" / "label_spk2").unlink()
    with pytest.raises(FileNotFoundError, match="label_spk2"):
        SourcePool.from_dir(tmp_path / "rel", root=tmp_path)


# ------------------------------------------------------------------ training
def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="unknown key.*'bogus'"):
        check_config({"bogus": 1})
    with pytest.raises(ValueError, match="'batch_size'"):
        check_config({"batch_size": 0})
    with pytest.raises(ValueError, match="model_conf.num_tags"):
        check_config({"model_conf": {"num_tags": 3}})


def test_trainer_learns_to_count_within_its_budget_and_resumes(corpus, tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "counter"
    first = train_counter(corpus / "train", out, 3.0, TINY)
    assert first["seconds"] >= 3.0 and float((out / "train_budget_used").read_text()) >= 3.0
    assert first["mixtures"] == first["steps"] * TINY["batch_size"]
    second = train_counter(corpus / "train", out, 9.0, TINY, valid_dir=corpus / "valid")
    assert second["steps"] > first["steps"] and second["seconds"] >= 9.0  # resumed, not restarted
    assert second["losses"][: len(first["losses"])] == first["losses"]
    losses = [x["count_ce"] for x in second["losses"]]
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses
    assert second["valid_count_acc"] >= 0.8, second["valid_count_acc"]  # chance: 1/3
    with pytest.raises(ValueError, match="another config"):
        train_counter(corpus / "train", out, 10.0, {**TINY, "lr": 1e-3})
    counts = count_dir(out / "model.pth", corpus / "test", tmp_path / "dec")
    written = dict(line.split() for line in (tmp_path / "dec" / "utt2num_src").read_text().splitlines())
    assert {u: int(n) for u, n in written.items()} == counts and len(counts) == 12
    assert load_counter(out / "model.pth").training is False


# ------------------------------------------------------------------ compare.py
def test_count_peer_step_scores_counting_and_a_rerun_does_nothing(corpus, tmp_path):
    out = tmp_path / "count_peer"
    args = ["count-peer", "--config", str(LOCAL.parent / "conf" / "compare" / "count_peer.yaml"),
            "--out", str(out), "--budget", "2", "--train_dir", str(corpus / "train"),
            "--valid_dir", str(corpus / "valid"), "--test_dir", str(corpus / "test"),
            "--set", "model_conf.n_mels=16", "model_conf.channels=[4, 8]", "batch_size=4", "segment_s=0.5"]
    compare.main(args)
    decode = out / "decode_test" / "ss"
    scores = json.loads((decode / "scores.json").read_text())
    counts = {u: int(n) for u, n in (line.split() for line in (decode / "utt2num_src").read_text().splitlines())}
    truth = {u: int(n) for u, n in (line.split() for line in (corpus / "test" / "utt2num_src").read_text().splitlines())}
    expected = np.mean([counts[u] == truth[u] for u in truth])
    assert scores["summary"]["counting"]["accuracy"] == pytest.approx(expected)
    assert json.loads((out / "train" / ".done").read_text())["seconds"] >= 2.0
    config = json.loads((out / "train" / "train_log.json").read_text())["config"]
    assert config["model_conf"]["channels"] == [4, 8] and config["model_conf"]["win_ms"] == 32.0
    stamp = (decode / "scores.json").stat().st_mtime_ns
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import compare; compare.main(sys.argv[2:]); "
            "print('torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code, str(LOCAL), *args], capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "False", "a finished count peer imports no torch"
    assert (decode / "scores.json").stat().st_mtime_ns == stamp


def test_count_peer_row_renders_and_its_counting_difference_has_the_known_answer():
    peer = dict(name="count_peer", system="counter", kind="count_peer", knows_count=False, seeds=1,
                si_snri_2src=None, si_snri_3src=None, si_snri_2src_ci=None, si_snri_3src_ci=None,
                si_snri_strict_2src=None, si_snri_strict_3src=None, surplus_rate=None,
                fuss_si_snri_2src=None, fuss_si_snri_3src=None, count_acc=0.25,
                count_acc_by_true={"1": 1.0, "2": 0.0, "3": 0.0}, match_acc=None, tse_snri_all=None,
                tse_si_snri_all=None, tse_snri=None, params=100000, steps=10, train_seconds=5.0, rtf=None,
                note="", _counts={f"u{i}": float(i % 4 == 0) for i in range(40)})
    records = {f"u{i}": {"est_count": 2, "num_src": 2} for i in range(40)}
    use = dict(peer, name="use_s_eda_count", kind="use", count_acc=1.0, _counts=None, _count_records=records,
               _mixtures={2: [], 3: []})
    diffs = [d for d in compare.bar_differences([use, peer]) if d["metric"] == "count_acc"]
    assert len(diffs) == 1 and diffs[0]["b"] == "count_peer"
    assert diffs[0]["mean"] == pytest.approx(0.75) and diffs[0]["above_zero"]
    result = {"commit": "x", "machine": "m", "budget_seconds": 5.0, "differences": diffs, "findings": [],
              "systems": {"count_peer": peer}}
    line = next(l for l in compare.render(result).splitlines() if l.startswith("| counter"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1] == "count_peer" and cells[2] == "no" and cells[3] == "-" and cells[4] == "-"
    assert cells[10] == "25.0 % (100.0 % / 0.0 % / 0.0 %)"
