"""USE on ESPnet's trainer: collect-stats, training, resume, init_param, DDP on CPU,
and ESPnet's own enh / tse tasks with ``separator: use`` / ``extractor: use``."""
import itertools
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
import yaml

import espnet2_use  # noqa: F401
from espnet2_use.tasks.use import USETask
from tiny_data import data_args, write_labels, write_set

pytestmark = pytest.mark.slow
BACKBONE = dict(latent_dim=16, emb_dim=16, chunk_size=20, num_heads=2, ffn_dim=32,
                num_pre_blocks=1, num_post_blocks=1)
COMMON = dict(
    encoder="conv", encoder_conf=dict(channel=16, kernel_size=16, stride=8),
    decoder="conv", decoder_conf=dict(channel=16, kernel_size=16, stride=8),
    optim="adam", optim_conf=dict(lr=1e-3), batch_type="unsorted", batch_size=3,
    num_workers=0, num_att_plot=0, use_tensorboard=False, seed=0,
)


def write_yaml(path: Path, conf: dict) -> Path:
    path.write_text(yaml.safe_dump(conf))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("use_train")
    train = write_set(root, "train", [1, 2, 3, 2, 1, 3], seed=1)
    valid = write_set(root, "valid", [2, 3, 1], seed=2)
    labels = write_labels(root / "token_list" / "labels.txt")
    stage1 = write_yaml(root / "stage1.yaml", dict(
        COMMON, separator="use", separator_conf=dict(backbone="use_s", backbone_conf=BACKBONE),
        model_conf=dict(max_num_src=3), max_epoch=1))
    stage2 = write_yaml(root / "stage2.yaml", dict(
        COMMON, separator="use", separator_conf=dict(backbone="use_s", backbone_conf=BACKBONE),
        cue_encoders=dict(label=dict(type="embedding", conf=dict(label_list=str(labels)))),
        cue_example=True, cue_fusion_conf=dict(modality_dropout=0.3), unused_parameters=True,
        model_conf=dict(max_num_src=3, cue_branch_ratio=0.7, align_weight=1.0), max_epoch=1))
    # collect-stats over the audio entries gives the shape files the sampler needs
    keys = {}
    for name, d in (("train", train), ("valid", valid)):
        keys[name] = root / f"{name}.keys"
        keys[name].write_text("".join(line.split()[0] + "\n" for line in (d / "wav.scp").read_text().splitlines()))
    USETask.main(cmd=["--config", str(stage1), "--collect_stats", "true", "--output_dir", str(root / "stats"),
                      "--train_shape_file", str(keys["train"]), "--valid_shape_file", str(keys["valid"])]
                 + data_args(train, "train") + data_args(valid, "valid"))
    return dict(root=root, train=train, valid=valid, stage1=stage1, stage2=stage2, labels=labels)


def train_cmd(tiny, config, out, stage2=False, extra=()):
    return (["--config", str(config), "--output_dir", str(out),
             "--train_shape_file", str(tiny["root"] / "stats/train/speech_mix_shape"),
             "--valid_shape_file", str(tiny["root"] / "stats/valid/speech_mix_shape")]
            + data_args(tiny["train"], "train", labels=stage2, example=stage2)
            + data_args(tiny["valid"], "valid", labels=stage2, example=stage2) + list(extra))


def test_collect_stats_writes_shape_files(tiny):
    shapes = (tiny["root"] / "stats/train/speech_mix_shape").read_text().split("\n")
    assert len([s for s in shapes if s]) == 6


def test_stage1_then_resume_is_identical_to_an_unbroken_run_and_stage2_initialises(tiny):
    root = tiny["root"]
    USETask.main(cmd=train_cmd(tiny, tiny["stage1"], root / "exp_a", extra=["--max_epoch", "2"]))
    USETask.main(cmd=train_cmd(tiny, tiny["stage1"], root / "exp_b", extra=["--max_epoch", "1"]))
    USETask.main(cmd=train_cmd(tiny, tiny["stage1"], root / "exp_b",
                               extra=["--max_epoch", "2", "--resume", "true"]))
    a = torch.load(root / "exp_a/2epoch.pth", map_location="cpu")
    b = torch.load(root / "exp_b/2epoch.pth", map_location="cpu")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key

    # Stage 2 starts from stage 1: every stage-1 tensor is loaded, the cue network is new.
    USETask.main(cmd=train_cmd(tiny, tiny["stage2"], root / "exp_s2", stage2=True,
                               extra=["--init_param", str(root / "exp_a/2epoch.pth")]))
    log = (root / "exp_s2/train.log").read_text() if (root / "exp_s2/train.log").exists() else ""
    s2 = torch.load(root / "exp_s2/1epoch.pth", map_location="cpu")
    assert any(k.startswith("cue_network.") for k in s2)
    assert set(a) <= set(s2), log


def test_torchrun_data_parallel_on_cpu(tiny):
    out = tiny["root"] / "exp_ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "-m", "espnet2_use.bin.use_train", "--dist_backend", "gloo", "--ngpu", "0"]
    # A budget it does not reach: the ranks take the deadline decision together, and
    # rank 0 alone writes the time used (both writing once raced and crashed a rank).
    cmd += train_cmd(tiny, tiny["stage2"], out, stage2=True, extra=["--train_budget_seconds", "3600"])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    # The first traceback names the root cause (the other rank then loses its peer).
    first = res.stderr.find("Traceback")
    assert res.returncode == 0, res.stderr[first:][:4000] if first >= 0 else res.stderr[-3000:]
    assert "world_size=2" in res.stderr or "[vm:0/2]" in res.stderr or ":0/2]" in res.stderr
    assert (out / "1epoch.pth").exists()
    assert float((out / "train_budget_used").read_text()) > 0
    assert not list(out.glob(".train_budget_used*"))  # no temp file left behind


def test_stock_espnet_enh_task_with_separator_use(tiny):
    from espnet2.tasks.enh import EnhancementTask

    root = tiny["root"]
    train = write_set(root, "enh_train", [2, 2, 2, 2], seed=3, cues=False)
    conf = write_yaml(root / "enh.yaml", dict(
        COMMON, separator="use",
        separator_conf=dict(num_spk=2, backbone="use_s", backbone_conf=BACKBONE),
        criterions=[dict(name="si_snr", conf=dict(eps=1e-7), wrapper="pit", wrapper_conf=dict(weight=1.0))],
        max_epoch=1))
    args = []
    for mode in ("train", "valid"):
        for name, f in (("speech_mix", "wav.scp"), ("speech_ref1", "spk1.scp"), ("speech_ref2", "spk2.scp")):
            args += [f"--{mode}_data_path_and_name_and_type", f"{train / f},{name},sound"]
    keys = root / "enh.keys"
    keys.write_text("".join(line.split()[0] + "\n" for line in (train / "wav.scp").read_text().splitlines()))
    EnhancementTask.main(cmd=["--config", str(conf), "--collect_stats", "true", "--output_dir",
                              str(root / "enh_stats"), "--train_shape_file", str(keys),
                              "--valid_shape_file", str(keys)] + args)
    EnhancementTask.main(cmd=["--config", str(conf), "--output_dir", str(root / "enh_exp"),
                              "--train_shape_file", str(root / "enh_stats/train/speech_mix_shape"),
                              "--valid_shape_file", str(root / "enh_stats/valid/speech_mix_shape")] + args)
    assert (root / "enh_exp/1epoch.pth").exists()


def test_stock_espnet_tse_task_with_extractor_use_and_enrollment(tiny):
    from espnet2.tasks.enh_tse import TargetSpeakerExtractionTask

    root = tiny["root"]
    d = tiny["train"]
    conf = write_yaml(root / "tse.yaml", dict(
        COMMON, extractor="use", extractor_conf=dict(backbone="use_s", backbone_conf=BACKBONE),
        criterions=[dict(name="si_snr", conf=dict(eps=1e-7), wrapper="fixed_order", wrapper_conf=dict(weight=1.0))],
        max_epoch=1))
    args = []
    for mode in ("train", "valid"):
        # ESPnet's TSE preprocessor reads the enrollment itself: the scp is loaded as text.
        for name, f, kind in (("speech_mix", "wav.scp", "sound"), ("enroll_ref1", "enroll_spk1.scp", "text"),
                              ("speech_ref1", "spk1.scp", "sound")):
            args += [f"--{mode}_data_path_and_name_and_type", f"{d / f},{name},{kind}"]
    keys = root / "train.keys"
    TargetSpeakerExtractionTask.main(cmd=["--config", str(conf), "--collect_stats", "true", "--output_dir",
                                          str(root / "tse_stats"), "--train_shape_file", str(keys),
                                          "--valid_shape_file", str(keys)] + args)
    TargetSpeakerExtractionTask.main(cmd=["--config", str(conf), "--output_dir", str(root / "tse_exp"),
                                          "--train_shape_file", str(root / "tse_stats/train/speech_mix_shape"),
                                          "--valid_shape_file", str(root / "tse_stats/valid/speech_mix_shape")] + args)
    state = torch.load(root / "tse_exp/1epoch.pth", map_location="cpu")
    assert any(k.startswith("extractor.separator.attractor.") for k in state)


def test_a_training_budget_ends_the_running_epoch_and_stops(tiny):
    """--train_budget_seconds: the epoch running at the deadline ends early, is validated
    and saved, and no epoch follows; the time used is recorded and resumes count it."""
    out = tiny["root"] / "exp_budget"
    USETask.main(cmd=train_cmd(tiny, tiny["stage1"], out,
                               extra=["--max_epoch", "50", "--train_budget_seconds", "0.01"]))
    assert (out / "1epoch.pth").is_file() and not (out / "2epoch.pth").exists()
    assert (out / "valid.loss.best.pth").exists()
    used = float((out / "train_budget_used").read_text())
    assert used > 0.01
    state = torch.load(out / "checkpoint.pth", map_location="cpu", weights_only=False)
    assert state["reporter"]["epoch"] == 1
    # A resumed run with the budget spent trains nothing more.
    USETask.main(cmd=train_cmd(tiny, tiny["stage1"], out, extra=[
        "--max_epoch", "50", "--train_budget_seconds", "0.01", "--resume", "true"]))
    assert not (out / "3epoch.pth").exists()
    assert float((out / "train_budget_used").read_text()) >= used


def test_a_budget_stops_training_after_the_epochs_it_pays_for(tiny, monkeypatch):
    """On a clock that advances one second at each reading, an 11 s budget pays for
    two of the eight epochs (each reads it five times: the time used, the deadline
    before the epoch, each of its two batches, the deadline after): the trainer goes on
    past the first epoch and stops before the last, and records the time it used."""
    from espnet2_use.train import budget_trainer

    ticks = itertools.count()
    monkeypatch.setattr(budget_trainer, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    out = tiny["root"] / "exp_budget_clock"
    USETask.main(cmd=train_cmd(tiny, tiny["stage1"], out,
                               extra=["--max_epoch", "8", "--train_budget_seconds", "11"]))
    state = torch.load(out / "checkpoint.pth", map_location="cpu", weights_only=False)
    assert 2 <= state["reporter"]["epoch"] <= 3, state["reporter"]["epoch"]
    assert (out / "2epoch.pth").is_file() and not (out / "4epoch.pth").exists()
    assert float((out / "train_budget_used").read_text()) >= 11


def test_the_budget_trainer_rejects_a_non_positive_budget(tiny):
    with pytest.raises(ValueError, match="train_budget_seconds must be positive"):
        USETask.main(cmd=train_cmd(tiny, tiny["stage1"], tiny["root"] / "exp_bad_budget",
                                   extra=["--train_budget_seconds", "0"]))
