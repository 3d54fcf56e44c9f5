"""The pinned stack loads as one: ESPnet's tasks, the torch family, timm, transformers,
kaldiio, and a clean `pip check`."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def test_espnet_enh_and_tse_tasks_import():
    from espnet2.tasks.enh import EnhancementTask, separator_choices
    from espnet2.tasks.enh_tse import TargetSpeakerExtractionTask, extractor_choices

    assert "tcn" in separator_choices.classes
    assert "td_speakerbeam" in extractor_choices.classes
    assert EnhancementTask.num_optimizers == 1
    assert TargetSpeakerExtractionTask.num_optimizers == 1


def test_torch_family_runs_together():
    import torchaudio
    import torchvision

    # torchvision's C++ ops are the first thing a mismatched torch breaks.
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.9]])
    keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8]), 0.5)
    assert keep.tolist() == [0]
    wav = torch.randn(1, 16000)
    assert torchaudio.functional.resample(wav, 16000, 8000).shape == (1, 8000)
    assert torch.__version__.split("+")[0] == torchaudio.__version__.split("+")[0]


def test_timm_and_transformers_build_and_run():
    import timm
    from transformers import BertConfig, BertModel

    net = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0)
    feats = net(torch.randn(1, 3, 64, 64))
    assert feats.shape == (1, net.num_features)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=32)
    out = BertModel(cfg)(input_ids=torch.tensor([[1, 2, 3]])).last_hidden_state
    assert out.shape == (1, 3, 16)


def test_kaldiio_round_trips_ark_scp(tmp_path):
    import kaldiio

    arrays = {"utt1": np.random.randn(7, 4).astype(np.float32),
              "utt2": np.random.randn(3, 4).astype(np.float32)}
    ark, scp = tmp_path / "feats.ark", tmp_path / "feats.scp"
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as writer:
        for key, value in arrays.items():
            writer(key, value)
    loaded = kaldiio.load_scp(str(scp))
    assert sorted(loaded) == sorted(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(loaded[key], value)


def test_pip_check_is_clean():
    res = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.skipif(sys.prefix != str(REPO / "tools" / "venv"),
                    reason="runs only inside the venv that tools/setup.sh built")
def test_setup_rerun_is_a_no_op():
    res = subprocess.run(["bash", str(REPO / "tools" / "setup.sh")], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "up to date" in res.stderr
