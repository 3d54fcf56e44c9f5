"""The LibriMix, FUSS, AudioSet and VGGSound recipes (egs2/<corpus>/use1): run.sh, configs.

Each recipe runs once, from a temporary copy of its folder (links to the real scripts and
configs, so that its outputs land in tmp), on a miniature corpus in the real layout
(test/corpus_trees.py), with the recipe's tiny configs: stages 1-3 (data preparation,
formatting and frozen cue embeddings, statistics) for all four, and stage 4 (one epoch of
training stage 1) for LibriMix and AudioSet. The four runs start together and go on in
the background while the in-process tests (every config of every recipe builds its
model; the paper-size ones have the paper's schedule and the size tools/bench_model.py
timed for RESULTS.md) use this process.

Every Python process of a recipe pays ESPnet's import (about 10 s of CPU), which makes
the recipe runs most of this file's time.
"""
from __future__ import annotations

import importlib.util
import io
import os
import subprocess
from pathlib import Path
from typing import Callable, Dict, List

import kaldiio
import numpy as np
import pytest
import torch
import yaml

import corpus_trees as ct
from background_runs import BackgroundRuns
from espnet2_use.tasks.use import USETask

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "egs2" / "TEMPLATE" / "use1"
CORPORA = ("librimix", "fuss", "audioset", "vggsound")
TINY_TEXT_DIM = 32  # the stand-in DistilBERT's width (tiny stage-2 configs' feature_dim)


def recipe_dir(corpus: str) -> Path:
    return REPO / "egs2" / corpus / "use1"


def configs(corpus: str) -> List[Path]:
    return sorted((recipe_dir(corpus) / "conf" / "tuning").glob("*.yaml"))


def recipe_copy(corpus: str, base: Path) -> Path:
    """``<base>/egs2/<corpus>/use1`` whose scripts and configs link to the real ones."""
    root = base / "egs2" / corpus / "use1"
    root.mkdir(parents=True)
    for name in ("use.sh", "utils", "cmd.sh", "path.sh"):
        (root / name).symlink_to(TEMPLATE / name)
    for name in ("local", "conf", "run.sh"):
        (root / name).symlink_to(recipe_dir(corpus) / name)
    return root


# --------------------------------------------------------------------------
# Stand-ins for the frozen encoders the user provides (DistilBERT, Swin-T)
# --------------------------------------------------------------------------


def write_tiny_distilbert(folder: Path) -> None:
    """A 1-layer, 32-wide DistilBERT with its tokenizer: the code path of the real one."""
    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words += ("the sound of a an recording number test caption clip dog barking people "
              "marching speech music rain car wind").split()
    words += list("abcdefghijklmnopqrstuvwxyz0123456789,")
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = DistilBertTokenizer(str(folder / "vocab.txt"))
    torch.manual_seed(0)
    model = DistilBertModel(DistilBertConfig(
        vocab_size=len(words), dim=TINY_TEXT_DIM, n_layers=1, n_heads=2, hidden_dim=64,
        max_position_embeddings=64))
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))


def write_tiny_timm_weights(path: Path) -> None:
    """Weights of timm's test_efficientnet in timm's own format (what Swin-T's are in)."""
    import timm

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(timm.create_model("test_efficientnet", pretrained=False).state_dict(), path)


# --------------------------------------------------------------------------
# The four recipe runs
# --------------------------------------------------------------------------

# What each run does: tiny configs, one CPU job at a time; stage 4 for two of them.
COMMON = ["--ngpu", "0", "--nj", "1", "--decode_nj", "1", "--train_threads", "1"]
SIMULATION = ["--num_train_mix", "4", "--num_dev_mix", "2", "--num_test_mix", "3",
              "--segment_sec", "0.5"]


def run_args(corpus: str, tree: Dict[str, object]) -> List[str]:
    """run.sh's options for ``corpus`` on its miniature tree."""
    if corpus == "librimix":
        return ["--librimix_dir", str(tree["root"]), "--num_src", "both",
                "--stage", "1", "--stop_stage", "4",
                "--stage1_config", "conf/tuning/train_use_b_tiny_stage1.yaml"]
    if corpus == "fuss":
        return ["--fuss_dir", str(tree["root"]), "--stage", "1", "--stop_stage", "3",
                "--stage1_config", "conf/tuning/train_use_b_tiny_stage1.yaml"]
    tiny_cues = ["--stage1_config", "conf/tuning/train_use_s_tiny_stage1.yaml",
                 "--stage2_config", "conf/tuning/train_use_s_tiny_stage2.yaml"]
    if corpus == "audioset":
        return ["--audioset_dir", str(tree["root"]), "--audiocaps_dir", str(tree["audiocaps"]),
                "--local_data_opts", " ".join(["--unseen_classes", str(tree["unseen"]),
                                               "--dev_fraction", "0.3", "--seed", "3"] + SIMULATION),
                "--stage", "1", "--stop_stage", "4"] + tiny_cues
    return ["--vggsound_dir", str(tree["root"]),
            "--local_data_opts", " ".join(["--dev_fraction", "0.34"] + SIMULATION),
            "--stage", "1", "--stop_stage", "3"] + tiny_cues


class RecipeRuns(BackgroundRuns):
    """One ``./run.sh`` of each recipe from a temporary copy of its folder, all started at once.

    ``runs(corpus)`` waits for that run, checks that it succeeded and returns its folder.
    """

    def __init__(self, base: Path) -> None:
        super().__init__()
        self.dirs: Dict[str, Path] = {}
        trees = {
            "librimix": {"root": ct.make_librimix(base / "corpora" / "librimix")},
            "fuss": {"root": ct.make_fuss(base / "corpora" / "fuss")},
            "audioset": ct.make_audioset(base / "corpora" / "audioset"),
            "vggsound": ct.make_vggsound(base / "corpora" / "vggsound"),
        }
        for corpus in CORPORA:
            root = recipe_copy(corpus, base / corpus)
            if corpus in ("audioset", "vggsound"):
                write_tiny_distilbert(root / "pretrained" / "tiny-distilbert")
                write_tiny_timm_weights(root / "pretrained" / "test_efficientnet.pth")
            self.dirs[corpus] = root
            self.start(corpus, root, args=["./run.sh", *COMMON, *run_args(corpus, trees[corpus])],
                       cwd=root, env=dict(os.environ, OMP_NUM_THREADS="1"))

    def __call__(self, corpus: str) -> Path:
        res = self.wait(corpus, timeout=900)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-6000:]
        return self.dirs[corpus]


@pytest.fixture(scope="module")
def recipe_runs(tmp_path_factory) -> RecipeRuns:
    """The four recipe runs, started by the first test that asks for them."""
    runs = RecipeRuns(tmp_path_factory.mktemp("recipes"))
    yield runs
    runs.close()


def lines(path: Path) -> List[str]:
    return path.read_text(encoding="utf-8").splitlines()


def utt_ids(path: Path) -> List[str]:
    return [line.split(maxsplit=1)[0] for line in lines(path)]


# --------------------------------------------------------------------------
# run.sh --help, without a corpus
# --------------------------------------------------------------------------

RECIPE_OPTIONS = {
    "librimix": ["--librimix_dir", "--num_src", "--local_data_opts"],
    "fuss": ["--fuss_dir", "--local_data_opts"],
    "audioset": ["--audioset_dir", "--audiocaps_dir", "--local_data_opts"],
    "vggsound": ["--vggsound_dir", "--local_data_opts"],
}


@pytest.mark.parametrize("corpus", CORPORA)
def test_run_sh_help_lists_recipe_and_use_sh_options(corpus, tmp_path):
    root = recipe_copy(corpus, tmp_path)
    res = subprocess.run(["./run.sh", "--help"], cwd=root, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"Usage: ./run.sh --{corpus}_dir")
    for option in RECIPE_OPTIONS[corpus]:
        assert f"\n  {option} " in res.stdout, option
    # use.sh's help follows, with the values run.sh chose.
    assert "Stages:" in res.stdout and "\n  --stage1_config conf/train_stage1" in res.stdout
    # The sample rate and the largest count are the training config's (use_config_values).
    assert "\n  --fs ''\n" in res.stdout and "\n  --max_num_src ''\n" in res.stdout
    if corpus in ("librimix", "fuss"):
        assert "\n  --stage2_config ''\n" in res.stdout  # SS only: no stage 5, no TSE
    else:
        assert "\n  --stage2_config conf/train_stage2.yaml\n" in res.stdout
    # Nothing was run: no data, dump or exp folder appeared.
    assert sorted(p.name for p in root.iterdir()) == sorted(
        ["use.sh", "utils", "cmd.sh", "path.sh", "local", "conf", "run.sh"])


def test_librimix_num_src_picks_the_setup_and_rejects_other_values(tmp_path):
    root = recipe_copy("librimix", tmp_path)

    def values(*args: str) -> Dict[str, str]:
        res = subprocess.run(["./run.sh", *args, "--help"], cwd=root, capture_output=True,
                             text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        out = res.stdout.split("Options (current values):")[1]
        return dict(line.strip()[2:].split(" ", 1) for line in out.splitlines() if line.strip())

    two = values()
    assert two["stage1_config"] == "conf/train_stage1.yaml"
    assert two["expdir"] == "exp/libri2mix" and two["results_md"] == "RESULTS_libri2mix.md"
    both = values("--num_src", "both", "--librimix_dir", "/data/LibriMix")
    assert both["stage1_config"] == "conf/train_stage1_k3.yaml"
    assert both["dumpdir"] == "dump/libri2mix_libri3mix"
    assert both["local_data_opts"].startswith(r"--librimix_dir\ /data/LibriMix\ --num_src\ both")
    # An option of use.sh given on the command line wins over run.sh's choice.
    assert values("--expdir", "exp/mine")["expdir"] == "exp/mine"
    res = subprocess.run(["./run.sh", "--num_src", "4"], cwd=root, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode != 0 and "--num_src must be 2, 3 or both, got '4'" in res.stderr


# --------------------------------------------------------------------------
# Every config builds its model
# --------------------------------------------------------------------------

ALL_CONFIGS = [(c, p.name) for c in CORPORA for p in configs(c)]


def parse_config(corpus: str, name: str):
    return USETask.get_parser().parse_args(
        ["--config", str(recipe_dir(corpus) / "conf" / "tuning" / name)])


@pytest.fixture
def label_list_cwd(tmp_path, monkeypatch) -> Path:
    """A working folder with data/token_list/labels.txt (the label cue encoder reads it)."""
    labels = tmp_path / "data" / "token_list" / "labels.txt"
    labels.parent.mkdir(parents=True)
    labels.write_text("\n".join(ct.VGGSOUND_LABELS) + "\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def dummy_batch(model, fs: int, with_cues: bool, seconds: float = 0.5) -> Dict[str, torch.Tensor]:
    """Batch 1: two sources, and the cues of source 1 as training sees them."""
    torch.manual_seed(0)
    T = int(fs * seconds)
    refs = torch.randn(2, T)
    batch = {"speech_mix": refs.sum(0, keepdim=True), "speech_mix_lengths": torch.tensor([T]),
             "num_src": torch.tensor([[2]])}
    for k in (1, 2):
        batch[f"speech_ref{k}"] = refs[k - 1:k]
        batch[f"speech_ref{k}_lengths"] = torch.tensor([T])
    if with_cues:
        encoders = model.cue_network.encoders
        cached = {"text": 5, "video": encoders["video"].num_frames}
        for modality, length in cached.items():
            batch[f"{modality}_emb_spk1"] = torch.randn(1, length, encoders[modality].input_dim)
            batch[f"{modality}_emb_spk1_lengths"] = torch.tensor([length])
        batch["label_spk1"] = torch.tensor([[1]])
        batch["label_spk1_lengths"] = torch.tensor([1])
    return batch


@pytest.mark.usefixtures("recipe_runs")  # started here, they run while these tests do
@pytest.mark.parametrize("corpus,name", ALL_CONFIGS)
def test_every_config_builds_its_model(corpus, name, label_list_cwd):
    args = parse_config(corpus, name)
    model = USETask.build_model(args)
    assert model.separator.emb_dim == args.separator_conf["backbone_conf"]["emb_dim"]
    assert args.sample_rate == (8000 if corpus == "librimix" else 16000)
    stage2 = "stage2" in name
    assert (model.cue_network is not None) == stage2
    if stage2:
        assert sorted(model.cue_network.encoders) == ["label", "text", "video"]
        assert args.unused_parameters is True
    if "tiny" not in name:
        return
    # Tiny configs: one forward, both branches where there are cues, and a backward.
    assert args.max_epoch == 1
    model.eval()  # a validation step runs every branch the model has
    loss, stats, weight = model(**dummy_batch(model, args.sample_rate, stage2))
    assert torch.isfinite(loss) and int(weight) == 1
    assert np.isfinite(float(stats["si_snr"]))
    if stage2:
        assert np.isfinite(float(stats["tse_si_snr"])) and np.isfinite(float(stats["align_mse"]))
    loss.backward()
    assert model.separator.film.weight.grad is not None


@pytest.mark.parametrize("corpus,name", ALL_CONFIGS)
def test_print_config_accepts_every_config(corpus, name, monkeypatch):
    # ESPnet's print_config binds sys.stdout when espnet2 is imported, out of capsys' reach:
    # its output is caught by handing it a buffer instead.
    printed = io.StringIO()
    original = USETask.print_config.__func__
    monkeypatch.setattr(USETask, "print_config",
                        classmethod(lambda cls, file=None: original(cls, file=printed)))
    path = recipe_dir(corpus) / "conf" / "tuning" / name
    with pytest.raises(SystemExit) as stop:
        USETask.main(cmd=["--config", str(path), "--print_config"])
    assert stop.value.code == 0
    config = yaml.safe_load(printed.getvalue())
    assert config["separator"] == "use" and "model_conf" in config and "cue_encoders" in config


def load_bench() -> Callable:
    """tools/bench_model.py's ``build`` (the models whose timings RESULTS.md uses)."""
    spec = importlib.util.spec_from_file_location("bench_model", REPO / "tools" / "bench_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build


# Paper-size configs: (corpus, stage-1 config, stage-2 config or None, bench model or None).
PAPER = [
    ("librimix", "train_use_b_k2_stage1.yaml", None, "use_b_paper"),
    ("librimix", "train_use_b_k3_stage1.yaml", None, "use_b_paper"),
    ("fuss", "train_use_b_stage1.yaml", None, None),
    ("audioset", "train_use_s_stage1.yaml", "train_use_s_stage2.yaml", "use_s_paper"),
    ("vggsound", "train_use_s_stage1.yaml", "train_use_s_stage2.yaml", "use_s_paper"),
]


@pytest.mark.parametrize("corpus,stage1,stage2,bench", PAPER)
def test_paper_configs_have_the_paper_schedule_and_the_timed_size(corpus, stage1, stage2, bench,
                                                                  label_list_cwd):
    """The paper's schedule and size, stage 2 loads stage 1, and both models run forward."""
    conf = recipe_dir(corpus) / "conf"
    assert (conf / "train_stage1.yaml").resolve().parent == conf / "tuning"
    args1 = parse_config(corpus, stage1)
    assert (args1.max_epoch, args1.optim, args1.optim_conf["lr"]) == (70, "adam", 1.0e-4)
    assert not args1.cue_encoders and args1.model_conf.get("cue_branch_ratio", 0.0) == 0.0
    model1 = USETask.build_model(args1)
    run_forward(model1, args1, stage2=False)
    if bench is not None:
        # The very model tools/bench_model.py timed (RESULTS.md's GPU-hour estimate).
        timed = sum(p.numel() for m in load_bench()(bench) for p in m.parameters())
        ours = sum(p.numel() for m in (model1.encoder, model1.separator, model1.decoder)
                   for p in m.parameters())
        assert ours == timed
    if stage2 is None:
        assert not (conf / "train_stage2.yaml").exists()
        return
    assert (conf / "train_stage2.yaml").resolve() == conf / "tuning" / stage2
    args2 = parse_config(corpus, stage2)
    assert (args2.max_epoch, args2.optim, args2.optim_conf["lr"]) == (30, "adam", 3.0e-5)
    assert args2.model_conf["cue_branch_ratio"] == 0.7 and args2.model_conf["align_weight"] == 1.0
    cue_conf = args2.cue_encoders
    assert cue_conf["text"]["conf"]["model_path"] == "pretrained/distilbert-base-uncased"
    assert cue_conf["text"]["conf"]["feature_dim"] == 768
    assert cue_conf["video"]["conf"]["model_name"] == "swin_tiny_patch4_window7_224"
    # Stage 2 starts from stage 1's weights (--init_param): every stage-1 tensor has its place.
    model2 = USETask.build_model(args2)
    run_forward(model2, args2, stage2=True)
    shapes2 = {k: v.shape for k, v in model2.state_dict().items()}
    for key, value in model1.state_dict().items():
        assert shapes2.get(key) == value.shape, key


def run_forward(model, args, stage2: bool) -> None:
    """A paper-size model runs (forward only, no gradients) on a short mixture: its
    validation forward, which separates and, with cues, extracts (both branches)."""
    model.eval()
    with torch.no_grad():
        loss, stats, _ = model(**dummy_batch(model, args.sample_rate, stage2, seconds=0.05))
    assert torch.isfinite(loss) and np.isfinite(float(stats["si_snr"])), stats
    if stage2:
        assert np.isfinite(float(stats["tse_si_snr"])), stats


def test_swin_t_runs_as_the_video_cue_encoder(tmp_path):
    """Swin-T (the paper configs' video encoder) through the cue encoder on a picture:
    random weights saved as a user's checkpoint, at its fixed 224 x 224 input."""
    import timm
    from PIL import Image

    from espnet2_use.cue.timm_video_cue_encoder import TimmVideoCueEncoder

    video = parse_config("vggsound", "train_use_s_stage2.yaml").cue_encoders["video"]["conf"]
    torch.manual_seed(0)
    swin = timm.create_model(video["model_name"], pretrained=False, num_classes=0)
    weights = tmp_path / "swin.pth"
    torch.save(swin.state_dict(), weights)
    del swin
    picture = tmp_path / "picture.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(picture)
    encoder = TimmVideoCueEncoder(output_dim=16, model_name=video["model_name"], weights=str(weights),
                                  num_frames=1, image_size=video["image_size"],
                                  feature_dim=video["feature_dim"])
    feats = encoder.extract(str(picture))
    assert feats.shape == (1, video["feature_dim"]) and np.isfinite(feats).all() and feats.std() > 0


def test_swin_config_matches_the_timm_architecture():
    """feature_dim 768 (written out so that no weights are needed to build) is Swin-T's."""
    import timm

    args = parse_config("vggsound", "train_use_s_stage2.yaml")
    video = args.cue_encoders["video"]["conf"]
    model = timm.create_model(video["model_name"], pretrained=False, num_classes=0)
    assert model.num_features == video["feature_dim"]
    assert model.pretrained_cfg["input_size"][-1] == video["image_size"]


# --------------------------------------------------------------------------
# The recipe runs: stages 1-3 (and 4)
# --------------------------------------------------------------------------

# Per corpus: (dump dir, exp dir, fs, K, sets).
LAYOUT = {
    "librimix": ("dump/libri2mix_libri3mix", "exp/libri2mix_libri3mix", 8000, 3,
                 ["train", "dev", "test"]),
    "fuss": ("dump", "exp", 16000, 4, ["train", "dev", "test"]),
    "audioset": ("dump", "exp", 16000, 3, ["train", "dev", "test_seen", "test_unseen",
                                           "test_seen_tse", "test_unseen_tse"]),
    "vggsound": ("dump", "exp", 16000, 3, ["train", "dev", "test", "test_tse"]),
}


@pytest.mark.parametrize("corpus", CORPORA)
def test_recipe_formats_every_set_and_collects_statistics(corpus, recipe_runs):
    root = recipe_runs(corpus)
    dump, exp, fs, K, sets = LAYOUT[corpus]
    for name in sets:
        data, raw = root / "data" / name, root / dump / "raw" / name
        ids = utt_ids(data / "wav.scp")
        assert ids and utt_ids(raw / "wav.scp") == ids, name
        for k in range(1, K + 1):
            assert utt_ids(raw / f"spk{k}.scp") == ids, (name, k)
        assert not (raw / f"spk{K + 1}.scp").exists()
    for mode, name in (("train", "train"), ("valid", "dev")):
        shape_file = root / exp / f"stats_{fs}" / mode / "speech_mix_shape"
        shapes = dict(line.split() for line in lines(shape_file))
        assert sorted(shapes) == sorted(utt_ids(root / "data" / name / "wav.scp"))
        if corpus in ("audioset", "vggsound"):  # every mixture is 0.5 s long
            assert set(shapes.values()) == {str(fs // 2)}
    times = (root / exp / "stage_times.txt").read_text()
    for n in (1, 2, 3):
        assert f"stage {n} " in times
    print(f"{corpus}: {recipe_runs.seconds[corpus]:.0f} s")


def test_librimix_pools_both_counts_with_k_3(recipe_runs):
    root = recipe_runs("librimix")
    counts = [line.split()[1] for line in lines(root / "data" / "train" / "utt2num_src")]
    assert sorted(set(counts)) == ["2", "3"]


@pytest.mark.parametrize("corpus", ["audioset", "vggsound"])
def test_cue_embeddings_of_the_frozen_encoders_are_cached(corpus, recipe_runs, monkeypatch):
    root = recipe_runs(corpus)
    monkeypatch.chdir(root)  # the scp files name their arks relative to the recipe folder
    raw = Path("dump") / "raw"
    texts = dict(kaldiio.load_scp(str(raw / "train" / "text_emb_spk1.scp")))
    # Only some AudioSet clips have a video: look at every source of every set.
    videos = {(name, k, utt): v for name in LAYOUT[corpus][4] for k in (1, 2, 3) for utt, v in
              kaldiio.load_scp(str(raw / name / f"video_emb_spk{k}.scp")).items()}
    captions = {line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1:] for line in
                lines(Path("data") / "train" / "text_spk1")}
    assert sorted(texts) == sorted(captions)
    for utt, caption in captions.items():
        if caption:  # [CLS] + tokens + [SEP] of the stand-in DistilBERT
            assert texts[utt].shape[0] >= 3 and texts[utt].shape[1] == TINY_TEXT_DIM
        else:
            assert texts[utt].shape == (0, TINY_TEXT_DIM)
    present = [v for v in videos.values() if v.shape[0]]
    assert present and all(v.shape == (2, 256) for v in present)  # num_frames x features
    if corpus == "vggsound":  # every target (spk1) has its clip's caption and video
        assert all(captions.values())
        assert all(v.shape == (2, 256) for (name, k, _), v in videos.items()
                   if name == "train" and k == 1)


@pytest.mark.parametrize("corpus,tag", [("librimix", "train_use_b_tiny_stage1"),
                                        ("audioset", "train_use_s_tiny_stage1")])
def test_training_stage_1_leaves_a_checkpoint_that_loads(corpus, tag, recipe_runs,
                                                         label_list_cwd):
    root = recipe_runs(corpus)
    exp = root / LAYOUT[corpus][1] / tag
    assert (exp / ".done").exists() and (exp / "1epoch.pth").exists()
    state = torch.load(exp / "valid.loss.best.pth", map_location="cpu", weights_only=True)
    model = USETask.build_model(parse_config(corpus, f"{tag}.yaml"))
    model.load_state_dict(state)
    assert "stage 4 " in (root / LAYOUT[corpus][1] / "stage_times.txt").read_text()
