"""The USE task's preprocessor: cue text to ids, mono audio, random crops that recount."""
import numpy as np
import pytest

from espnet2_use.train.preprocessor import USEPreprocessor

LABELS = ["hum", "beep", "hiss"]
CUES = {"label": {"type": "embedding", "conf": {"label_list": LABELS}}}


def sample(n: int = 4000):
    t = np.arange(n)
    ref1 = np.where(t < 1500, 0.5, 0.0).astype(np.float32) * np.sin(t / 3.0).astype(np.float32)
    ref2 = (0.3 * np.sin(t / 7.0)).astype(np.float32)
    return {
        "speech_mix": ref1 + ref2,
        "speech_ref1": ref1, "speech_ref2": ref2, "speech_ref3": np.zeros(0, np.float32),
        "num_src": np.array([2]),
        "label_spk1": "hum", "label_spk2": "beep", "label_spk3": "",
    }


def test_labels_become_ids_and_absent_cues_empty():
    out = USEPreprocessor(train=False, cue_encoders=CUES)("u1", sample())
    assert out["label_spk1"].tolist() == [0] and out["label_spk2"].tolist() == [1]
    assert out["label_spk3"].shape == (0,)


def test_unknown_label_names_the_utterance_and_entry():
    data = sample()
    data["label_spk2"] = "beeep"
    with pytest.raises(ValueError, match="utterance u7: label_spk2: .*beeep"):
        USEPreprocessor(train=False, cue_encoders=CUES)("u7", data)


def test_multichannel_audio_is_refused():
    data = sample()
    data["speech_mix"] = np.stack([data["speech_mix"]] * 2, axis=1)
    with pytest.raises(ValueError, match="utterance u2: speech_mix has shape .* mono"):
        USEPreprocessor(train=False)("u2", data)


def test_random_crops_recount_sources_and_keep_cues_with_their_source():
    pre = USEPreprocessor(train=True, cue_encoders=CUES, segment=1000)
    np.random.seed(0)
    for _ in range(40):
        out = pre("u1", sample())
        n = int(out["num_src"][0])
        assert len(out["speech_mix"]) == 1000
        refs = [out[f"speech_ref{k}"] for k in (1, 2, 3)]
        # The crop's references still sum to its mixture, and only 1..n are non-empty.
        np.testing.assert_allclose(sum(r for r in refs if len(r)), out["speech_mix"], atol=1e-6)
        assert [len(r) > 0 for r in refs] == [k < n for k in range(3)]
        # A label moves with its source: "beep" is the always-on quieter source.
        for k in range(1, n + 1):
            label = LABELS[int(out[f"label_spk{k}"][0])]
            assert (label == "beep") == bool(np.abs(refs[k - 1]).max() < 0.31)
        for k in range(n + 1, 4):
            assert out[f"label_spk{k}"].shape == (0,)


def crop_at(monkeypatch, starts, data=None, **kwargs):
    """The preprocessor's crop with the random starts given, in order."""
    starts = list(starts)
    monkeypatch.setattr(np.random, "randint", lambda lo, hi: starts.pop(0) if len(starts) > 1 else starts[0])
    return USEPreprocessor(train=True, cue_encoders=CUES, segment=1000, **kwargs)("u1", data or sample())


def test_a_source_that_only_slivers_into_the_crop_is_dropped_from_count_and_mixture(monkeypatch):
    # Source 1 sounds for t < 1500: a crop from 1400 holds 100 of its samples (10 %).
    data = sample()
    out = crop_at(monkeypatch, [1400])
    assert int(out["num_src"][0]) == 1
    assert LABELS[int(out["label_spk1"][0])] == "beep"
    np.testing.assert_allclose(out["speech_mix"], data["speech_ref2"][1400:2400], atol=1e-6)
    np.testing.assert_allclose(out["speech_ref1"], data["speech_ref2"][1400:2400])
    assert len(out["speech_ref2"]) == 0
    # 300 samples (30 % of the crop) count.
    out = crop_at(monkeypatch, [1200])
    assert int(out["num_src"][0]) == 2
    np.testing.assert_allclose(out["speech_mix"], data["speech_mix"][1200:2200])
    # With min_active 0 any sound counts, as FUSS's silence rule alone would have it.
    out = crop_at(monkeypatch, [1400], min_active=0.0)
    assert int(out["num_src"][0]) == 2


def test_the_crop_keeping_most_sources_is_chosen(monkeypatch):
    # The first draw (from 3000) holds source 2 only; the second (from 100) both.
    out = crop_at(monkeypatch, [3000, 100])
    assert int(out["num_src"][0]) == 2
    np.testing.assert_allclose(out["speech_mix"], sample()["speech_mix"][100:1100])
    with pytest.raises(ValueError, match="min_active must lie in"):
        USEPreprocessor(train=True, segment=1000, min_active=1.5)


def test_no_crop_in_evaluation_or_for_short_mixtures():
    data = sample(800)
    out = USEPreprocessor(train=True, cue_encoders=CUES, segment=1000)("u1", data)
    assert len(out["speech_mix"]) == 800 and int(out["num_src"][0]) == 2
    out = USEPreprocessor(train=False, cue_encoders=CUES, segment=1000)("u1", sample())
    assert len(out["speech_mix"]) == 4000
    with pytest.raises(ValueError, match="must be a positive number of samples"):
        USEPreprocessor(train=True, segment=0)
