"""Stage 1 (local/data.sh) of the LibriMix, FUSS, AudioSet and VGGSound recipes.

Each recipe's stage 1 runs on a miniature tree in the corpus's real layout
(test/corpus_trees.py); the data directories it writes are checked against the
contract (espnet2_use.data.validate.validate_data_dir) and for what the corpus
implies (counts, ids, sources, cues, labels). Every broken corpus (missing root, CSV,
column, listed file) must stop with a message naming the path and leave no data
directory behind. The shared pieces of espnet2_use/data/corpus.py are tested
directly at the end.

A data.sh parses its options, checks the corpus root and hands every option to
local/prepare_<corpus>.py, which does everything else (reading, checking, staging and
moving the sets into place). Run as a script, a prepare_<corpus>.py imports no ESPnet
module and touches no network (``test_data_preparation_imports_no_espnet_and_stays_offline``
runs all four in a fresh process to show it). ``bash local/data.sh`` runs where the
shell layer is the behaviour: one happy-path run per corpus (``shell_runs``, shared by
several tests), ``--help``, the option checks and the missing root. Everything else
calls ``prepare_<corpus>.main`` in this process (``prepare``), from the recipe folder
as data.sh does.

The miniature trees follow the corpora as users have them: FUSS's official dev data
and its augmentation output (no eval split), AudioSet's segment lists with AudioCaps'
clips in the unbalanced list only, VGGSound's archives and the audiosetdl downloader's
names with audio-only copies.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import numpy as np
import pytest
import soundfile

import corpus_trees as ct
from background_runs import BackgroundRuns
from espnet2_use.data.corpus import (
    Clip,
    CorpusError,
    MixtureRenderer,
    StagedOutput,
    Utterance,
    loudest_window,
    plan_mixtures,
    write_data_dir,
    write_lines,
)
from espnet2_use.data.kaldi_dir import read_kaldi_text
from espnet2_use.data.validate import validate_data_dir

REPO = Path(__file__).resolve().parents[1]
CORPORA = ("librimix", "fuss", "audioset", "vggsound")


def recipe_dir(corpus: str) -> Path:
    """egs2/<corpus>/use1, the folder run.sh and data.sh run from."""
    return REPO / "egs2" / corpus / "use1"


# The Python side of each data.sh, imported from its local/ folder as data.sh runs it.
for _corpus in CORPORA:
    sys.path.insert(0, str(recipe_dir(_corpus) / "local"))
import prepare_audioset  # noqa: E402
import prepare_fuss  # noqa: E402
import prepare_librimix  # noqa: E402
import prepare_vggsound  # noqa: E402

PREPARE_MAIN: Dict[str, Callable[[Sequence[str]], int]] = {
    "librimix": prepare_librimix.main,
    "fuss": prepare_fuss.main,
    "audioset": prepare_audioset.main,
    "vggsound": prepare_vggsound.main,
}


def _data_sh_command(corpus: str, args: Sequence[object]) -> Dict[str, object]:
    """subprocess.run/Popen arguments for egs2/<corpus>/use1/local/data.sh, run as run.sh does."""
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return dict(args=["bash", "local/data.sh", *map(str, args)], cwd=recipe_dir(corpus), env=env)


def run_data_sh(corpus: str, args: Sequence[object]) -> subprocess.CompletedProcess:
    """Run egs2/<corpus>/use1/local/data.sh from its recipe folder and wait for it."""
    return subprocess.run(**_data_sh_command(corpus, args), capture_output=True, text=True,
                          timeout=300)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.fixture
def prepare(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
            ) -> Callable[[str, Sequence[object]], subprocess.CompletedProcess]:
    """``prepare(corpus, args)``: local/prepare_<corpus>.py's main in this process.

    It runs from the recipe folder, as data.sh runs it, and returns the exit status and
    what it printed in the shape of a finished subprocess.
    """
    def run(corpus: str, args: Sequence[object]) -> subprocess.CompletedProcess:
        monkeypatch.chdir(recipe_dir(corpus))
        capsys.readouterr()  # drop what earlier steps of the test printed
        argv = [str(a) for a in args]
        status = PREPARE_MAIN[corpus](argv)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess([f"prepare_{corpus}.py", *argv], status, out, err)

    return run


class ShellRuns(BackgroundRuns):
    """The one real ``bash local/data.sh`` run of each corpus, all started at once.

    ``runs(corpus)`` waits for that corpus's run, checks that it succeeded and returns
    its data directory.

    Args:
        base: Folder for the data directories (``<base>/<corpus>/data``) and logs.
        args_of: Per corpus, the data.sh options given the data directory.
    """

    def __init__(self, base: Path, args_of: Dict[str, Callable[[Path], List[object]]]) -> None:
        super().__init__()
        self._data: Dict[str, Path] = {}
        for corpus, make_args in args_of.items():
            (base / corpus).mkdir(parents=True)
            self._data[corpus] = base / corpus / "data"
            self.start(corpus, base / corpus, **_data_sh_command(corpus, make_args(self._data[corpus])))

    def __call__(self, corpus: str) -> Path:
        ok(self.wait(corpus, timeout=300))
        return self._data[corpus]


def kaldi(path: Path) -> Dict[str, str]:
    return read_kaldi_text(path)


def assert_valid(set_dir: Path, num_spk: int, fs: int, labels: Path = None) -> None:
    problems = validate_data_dir(set_dir, max_num_src=num_spk, fs=fs, label_list=labels,
                                 num_workers=1)
    assert problems == [], "\n".join(problems)


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> Dict[str, object]:
    """The four miniature corpora, built once for the module."""
    base = tmp_path_factory.mktemp("corpora")
    audioset = ct.make_audioset(base / "audioset")
    return {
        # The metadata names another machine's paths, as a copied LibriMix does.
        "librimix": ct.make_librimix(base / "librimix", listed_root=Path("/old/machine/storage")),
        "fuss": ct.make_fuss(base / "fuss"),
        "audioset": audioset,
        "vggsound": ct.make_vggsound(base / "vggsound"),
    }


# The options of each corpus's data.sh run; the tests with the same options use its output.
LIBRIMIX_VIA_SHELL = ("3", "noisy")  # (--num_src, --condition), neither the default
FUSS_VIA_SHELL = "dry"  # --variant, not the default


@pytest.fixture(scope="module")
def shell_runs(trees, tmp_path_factory) -> ShellRuns:
    runs = ShellRuns(tmp_path_factory.mktemp("data_sh"), {
        "librimix": lambda data: librimix_args(trees["librimix"], data, *LIBRIMIX_VIA_SHELL),
        "fuss": lambda data: ["--fuss_dir", trees["fuss"], "--data_dir", data,
                              "--variant", FUSS_VIA_SHELL],
        # Two jobs here, one in the in-process run it is compared with.
        "audioset": lambda data: audioset_args(trees["audioset"], data) + ["--nj", 2],
        "vggsound": lambda data: vggsound_args(trees["vggsound"], data),
    })
    yield runs
    runs.close()


# --------------------------------------------------------------------------
# The shell layer of every data.sh
# --------------------------------------------------------------------------


@pytest.mark.parametrize("corpus", CORPORA)
def test_data_sh_help_and_option_checks_answer_before_python(corpus, tmp_path):
    proc = ok(run_data_sh(corpus, ["--help"]))
    assert proc.stdout.startswith(f"Usage: local/data.sh --{corpus}_dir <dir>")
    assert "--data_dir <dir>" in proc.stdout and not proc.stderr
    data = tmp_path / "data"
    proc = run_data_sh(corpus, ["--data_dir", data])
    assert proc.returncode != 0 and f"--{corpus}_dir is required" in proc.stderr
    proc = run_data_sh(corpus, [f"--{corpus}_dir", tmp_path, "--no_such_option", "1"])
    assert proc.returncode != 0 and "--no_such_option" in proc.stderr
    proc = run_data_sh(corpus, [f"--{corpus}_dir", tmp_path, "--data_dir"])
    assert proc.returncode != 0 and "--data_dir needs a value" in proc.stderr
    assert not data.exists()


# --------------------------------------------------------------------------
# LibriMix
# --------------------------------------------------------------------------


def librimix_args(root: Path, data: Path, num_src: str, condition: str) -> List[object]:
    return ["--librimix_dir", root, "--data_dir", data, "--num_src", num_src,
            "--condition", condition]


@pytest.mark.parametrize("num_src,condition", [("2", "clean"), ("3", "noisy"), ("both", "clean")])
def test_librimix_data_dirs(trees, tmp_path, prepare, shell_runs, num_src, condition):
    if (num_src, condition) == LIBRIMIX_VIA_SHELL:
        data = shell_runs("librimix")
    else:
        data = tmp_path / "data"
        ok(prepare("librimix", librimix_args(trees["librimix"], data, num_src, condition)))
    counts = {"2": [2], "3": [3], "both": [2, 3]}[num_src]
    num_spk = max(counts)
    mix_dir = {"clean": "mix_clean", "noisy": "mix_both"}[condition]
    assert sorted(p.name for p in data.iterdir()) == ["dev", "test", "train"]
    for set_name, subset, per_count in (("train", "train-360", 3), ("dev", "dev", 2), ("test", "test", 2)):
        d = data / set_name
        assert_valid(d, num_spk, fs=8000)
        wav = kaldi(d / "wav.scp")
        assert len(wav) == per_count * len(counts)
        n_src = {u: int(v) for u, v in kaldi(d / "utt2num_src").items()}
        assert sorted(set(n_src.values())) == counts
        category = kaldi(d / "utt2category")
        for utt, path in wav.items():
            n = utt.count("_") + 1  # a LibriMix id joins one LibriSpeech id per speaker
            assert n_src[utt] == n and category[utt] == f"{n}mix"
            # Re-rooted from the CSV's /old/machine/... to the tree given.
            assert path == str(trees["librimix"] / f"Libri{n}Mix/wav8k/min/{subset}/{mix_dir}/{utt}.wav")
            for k in range(1, num_spk + 1):
                ref = kaldi(d / f"spk{k}.scp")[utt]
                if k <= n:
                    assert ref.endswith(f"Libri{n}Mix/wav8k/min/{subset}/s{k}/{utt}.wav")
                else:
                    assert ref == str(d / "silence.wav") and soundfile.info(ref).frames == 0
        # Speech separation only: no cues, no label vocabulary.
        assert not list(d.glob("*_spk*")) and not (data / "token_list").exists()


def test_librimix_reads_the_older_csv_without_original_mixture_id(tmp_path, prepare):
    root = ct.make_librimix(tmp_path / "librimix", counts=(2,), with_original_id=False,
                            splits={"train-100": 2, "dev": 1, "test": 1})
    data = tmp_path / "data"
    ok(prepare("librimix", ["--librimix_dir", root, "--data_dir", data,
                            "--train_subsets", "train-100"]))
    assert len(kaldi(data / "train" / "wav.scp")) == 2
    assert_valid(data / "dev", 2, fs=8000)


def test_librimix_rerun_replaces_sets_and_a_failed_run_keeps_them(trees, tmp_path, prepare):
    # Staging and the final move are prepare_librimix.py's (StagedOutput), so in-process.
    data = tmp_path / "data"
    ok(prepare("librimix", ["--librimix_dir", trees["librimix"], "--data_dir", data,
                            "--num_src", "both"]))
    assert (data / "train" / "spk3.scp").exists()
    ok(prepare("librimix", ["--librimix_dir", trees["librimix"], "--data_dir", data]))
    assert not (data / "train" / "spk3.scp").exists()  # the whole set was replaced
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    proc = prepare("librimix", ["--librimix_dir", trees["librimix"], "--data_dir", data,
                                "--sample_rate", "16k"])  # the tree has no wav16k
    assert proc.returncode != 0 and "wav16k" in proc.stderr
    after = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    assert after == before  # untouched, and no staging folder left behind


# --------------------------------------------------------------------------
# FUSS
# --------------------------------------------------------------------------


@pytest.mark.parametrize("variant,folder", [("reverb", "ssdata_reverb"), ("dry", "ssdata")])
def test_fuss_data_dirs(trees, tmp_path, prepare, shell_runs, variant, folder):
    if variant == FUSS_VIA_SHELL:
        data = shell_runs("fuss")
    else:
        data = tmp_path / "data"
        ok(prepare("fuss", ["--fuss_dir", trees["fuss"], "--data_dir", data, "--variant", variant]))
    assert sorted(p.name for p in data.iterdir()) == ["dev", "test", "train"]
    for set_name, split, count in (("train", "train", 4), ("dev", "validation", 2), ("test", "eval", 3)):
        d = data / set_name
        assert_valid(d, 4, fs=16000)
        wav = kaldi(d / "wav.scp")
        digits = ct.FUSS_DIGITS[split]
        assert sorted(wav) == [f"{split}_example{i:0{digits}d}" for i in range(count)]
        n_src = kaldi(d / "utt2num_src")
        for i in range(count):
            utt = f"{split}_example{i:0{digits}d}"
            src_dir = trees["fuss"] / folder / split / f"example{i:0{digits}d}_sources"
            n = len(list(src_dir.glob("*.wav")))  # the tree cycles 1..4 sources
            assert n_src[utt] == str(n) == str(i % 4 + 1)
            assert kaldi(d / "spk1.scp")[utt] == str(src_dir / "background0_sound.wav")
            for k in range(2, 5):
                expected = src_dir / f"foreground{k - 2}_sound.wav" if k <= n else d / "silence.wav"
                assert kaldi(d / f"spk{k}.scp")[utt] == str(expected)
        assert not list(d.glob("label_spk*")) and not (data / "token_list").exists()


# --------------------------------------------------------------------------
# AudioSet
# --------------------------------------------------------------------------

AUDIOSET_ARGS = ["--num_train_mix", 4, "--num_dev_mix", 2, "--num_test_mix", 3,
                 "--dev_fraction", 0.3, "--segment_sec", 0.5, "--seed", 3]


def audioset_args(tree: Dict[str, object], data: Path) -> List[object]:
    return ["--audioset_dir", tree["root"], "--audiocaps_dir", tree["audiocaps"],
            "--unseen_classes", tree["unseen"], "--data_dir", data] + AUDIOSET_ARGS


def check_simulated_set(d: Path, num_spk: int, fs: int, seconds: float, labels: Path,
                        categories: Sequence[str]) -> Dict[str, List[str]]:
    """Contract, mixture == sum of references, cues where they belong; returns labels per utt."""
    assert_valid(d, num_spk, fs=fs, labels=labels)
    wav = kaldi(d / "wav.scp")
    n_src = {u: int(v) for u, v in kaldi(d / "utt2num_src").items()}
    category = kaldi(d / "utt2category")
    labels_of = {}
    for utt, mix_path in wav.items():
        mix, rate = soundfile.read(mix_path, dtype="int16")
        assert rate == fs and len(mix) == int(round(seconds * fs))
        refs = [soundfile.read(kaldi(d / f"spk{k}.scp")[utt], dtype="int16")[0].astype(int)
                for k in range(1, n_src[utt] + 1)]
        np.testing.assert_array_equal(mix, np.sum(refs, axis=0))  # exactly the sum on disk
        if category[utt] == "tse":
            assert 2 <= n_src[utt] <= 3
        else:
            assert category[utt] == f"{n_src[utt]}mix"
        # Only cued sources have a label: all of a 2mix/3mix, the target (spk1) of a tse.
        cued = 1 if category[utt] == "tse" else n_src[utt]
        utt_labels = [kaldi(d / f"label_spk{k}")[utt] for k in range(1, num_spk + 1)]
        assert all(utt_labels[:cued]) and not any(utt_labels[cued:])
        for kind in ("text_spk{k}", "video_spk{k}.scp"):
            assert not any(kaldi(d / kind.format(k=k))[utt] for k in range(cued + 1, num_spk + 1))
        assert len(set(utt_labels[:cued])) == cued  # sources of different classes
        labels_of[utt] = utt_labels[:cued]
    assert sorted(set(category.values())) == sorted(categories)
    return labels_of


def test_audioset_data_dirs(trees, shell_runs):
    data = shell_runs("audioset")  # audioset_args(trees["audioset"], data), through data.sh
    sets = ["dev", "local", "test_seen", "test_seen_tse", "test_unseen", "test_unseen_tse",
            "token_list", "train"]
    assert sorted(p.name for p in data.iterdir()) == sets
    labels_txt = data / "token_list" / "labels.txt"
    assert labels_txt.read_text().splitlines() == [n for _, n in ct.AUDIOSET_CLASSES]
    assert (data / "local" / "missing_clips.txt").read_text() == ""
    unseen = {"Car", "Wind", "Gunshot, gunfire"}
    assert set((data / "local" / "unseen_classes.txt").read_text().splitlines()) == unseen
    counts = {"train": 12, "dev": 6, "test_seen": 6, "test_unseen": 6,
              "test_seen_tse": 3, "test_unseen_tse": 3}
    for set_name, count in counts.items():
        cats = ["tse"] if set_name.endswith("tse") else (
            ["2mix", "3mix"] if set_name.startswith("test") else ["2mix", "3mix", "tse"])
        labels = check_simulated_set(data / set_name, 3, 16000, 0.5, labels_txt, cats)
        assert len(labels) == count
        used = {lab for labs in labels.values() for lab in labs}
        if "unseen" in set_name:
            assert used <= unseen
        else:
            assert not used & unseen  # training and seen tests never see an unseen class
        # "Animal" is a parent of Dog and Cat: the rarer, more specific label is used.
        assert "Animal" not in used
    # Clips covered by AudioCaps (all from the unbalanced list) carry their caption,
    # Dog clips their mp4.
    captions = audiocaps_first_captions(trees["audioset"])
    for set_name in counts:
        texts = {v for k in (1, 2, 3) for v in kaldi(data / set_name / f"text_spk{k}").values() if v}
        assert texts <= captions["test" if set_name.startswith("test") else "train"]
    texts = [v for k in (1, 2, 3) for v in kaldi(data / "train" / f"text_spk{k}").values() if v]
    assert texts
    videos = {v for s in counts for k in (1, 2, 3)
              for v in kaldi(data / s / f"video_spk{k}.scp").values() if v}
    assert videos and all(v.endswith(".mp4") and Path(v).is_file() for v in videos)


def audiocaps_first_captions(tree: Dict[str, object]) -> Dict[str, set]:
    """The caption each AudioCaps clip on disk gets, by pool: AudioCaps' train and val
    clips join the training clips, its test clips the test clips."""
    out: Dict[str, set] = {"train": set(), "test": set()}
    for _, _, _, split, on_disk, caps in tree["audiocaps_rows"]:
        if on_disk:
            out["test" if split == "test" else "train"].add(caps[0])
    return out


def test_audioset_captions_come_from_audiocaps_clips_of_the_unbalanced_list(trees, tmp_path,
                                                                            prepare):
    tree = trees["audioset"]
    caps = tree["audiocaps_rows"]
    # As in the real corpora: AudioCaps' clips are in none of the balanced/eval lists.
    listed = {r[0] for r in tree["train_rows"] + tree["test_rows"]}
    assert not listed & {r[0] for r in caps}
    data = tmp_path / "data"
    proc = ok(prepare("audioset", audioset_args(tree, data)))
    sets = ("train", "dev", "test_seen", "test_unseen", "test_seen_tse", "test_unseen_tse")
    texts = {s: {k: kaldi(data / s / f"text_spk{k}") for k in (1, 2, 3)} for s in sets}
    # Training and test mixtures both get captions, each from its own AudioCaps split.
    captions = audiocaps_first_captions(tree)
    for pool in ("train", "test"):
        got = {v for s in sets if s.startswith("test") == (pool == "test")
               for k in (1, 2, 3) for v in texts[s][k].values() if v}
        assert got and got <= captions[pool], pool
    # The log says where AudioCaps' clips were found and, per set, how many mixtures
    # got a caption.
    on_disk = [r for r in caps if r[4]]
    assert (f"AudioCaps: {len(caps)} captioned clips in {tree['audiocaps']}; {len(on_disk)} "
            f"clips on disk have a caption; {len(caps)} listed in "
            f"{tree['root'] / 'unbalanced_train_segments.csv'}, {len(caps) - len(on_disk)} of "
            f"them without a file (skipped)") in proc.stdout
    for s in sets:
        n_mix = len(kaldi(data / s / "wav.scp"))
        n_captioned = sum(1 for u in texts[s][1] if any(texts[s][k][u] for k in (1, 2, 3)))
        assert re.search(rf"{re.escape(str(data / s))}: {n_mix} mixtures \(.*\); "
                         rf"{n_captioned} of {n_mix} mixtures with a caption", proc.stdout), s


@pytest.mark.parametrize("fraction", ["0.3", "0"])
def test_audioset_seeded_unseen_classes(trees, tmp_path, prepare, fraction):
    tree = trees["audioset"]
    data = tmp_path / "data"
    ok(prepare("audioset", ["--audioset_dir", tree["root"], "--data_dir", data,
                            "--unseen_fraction", fraction, "--categories", "2mix tse"]
               + AUDIOSET_ARGS))
    unseen = set((data / "local" / "unseen_classes.txt").read_text().splitlines())
    name_of = dict(ct.AUDIOSET_CLASSES)
    # Candidates are the test clips' own (most specific) classes, never the parent Animal.
    test_classes = {name_of[m] for r in tree["test_rows"] for m in r[2]} - {"Animal"}
    if fraction == "0":
        assert unseen == set() and not (data / "test_unseen").exists()
        return
    assert len(unseen) == 3 and unseen <= test_classes
    for set_name in ("train", "dev", "test_seen", "test_seen_tse"):
        for k in (1, 2, 3):
            assert not set(kaldi(data / set_name / f"label_spk{k}").values()) & unseen
    assert set(kaldi(data / "test_unseen" / "label_spk1").values()) <= unseen


def test_audioset_is_deterministic_whatever_the_number_of_jobs(trees, tmp_path, prepare,
                                                               shell_runs):
    # --nj 2 through data.sh against --nj 1 in-process: equal bytes also show that data.sh
    # hands every option on and that its defaults are prepare_audioset.py's.
    nj1 = tmp_path / "nj1" / "data"
    ok(prepare("audioset", audioset_args(trees["audioset"], nj1) + ["--nj", 1]))
    outputs = []
    for data in (nj1, shell_runs("audioset")):
        outputs.append({p.relative_to(data): p.read_bytes().replace(str(data).encode(), b"DATA")
                        for p in sorted(data.rglob("*")) if p.is_file()})
    assert outputs[0] == outputs[1]


# --------------------------------------------------------------------------
# VGGSound
# --------------------------------------------------------------------------


def vggsound_args(tree: Dict[str, object], data: Path) -> List[object]:
    return ["--vggsound_dir", tree["root"], "--data_dir", data, "--num_train_mix", 4,
            "--num_dev_mix", 2, "--num_test_mix", 3, "--dev_fraction", 0.34,
            "--segment_sec", 0.5, "--fs", 8000]


def test_vggsound_data_dirs(trees, shell_runs):
    tree = trees["vggsound"]
    data = shell_runs("vggsound")  # vggsound_args(tree, data), through data.sh
    assert sorted(p.name for p in data.iterdir()) == ["dev", "local", "test", "test_tse",
                                                      "token_list", "train"]
    assert (data / "local" / "missing_clips.txt").read_text() == ""
    labels_txt = data / "token_list" / "labels.txt"
    assert labels_txt.read_text().splitlines() == sorted(ct.VGGSOUND_LABELS)
    split_of = {f"{y}_{s:06d}": (label, split) for y, s, label, split in tree["rows"]}
    for set_name, count in (("train", 12), ("dev", 6), ("test", 6), ("test_tse", 3)):
        d = data / set_name
        cats = {"test": ["2mix", "3mix"], "test_tse": ["tse"]}.get(set_name, ["2mix", "3mix", "tse"])
        labels = check_simulated_set(d, 3, 8000, 0.5, labels_txt, cats)
        assert len(labels) == count
        for k in (1, 2, 3):
            label_k, text_k = kaldi(d / f"label_spk{k}"), kaldi(d / f"text_spk{k}")
            for utt, video in kaldi(d / f"video_spk{k}.scp").items():
                if not video:
                    continue
                # The cue video is the clip of that source, from the CSV's split.
                label, split = split_of[Path(video).stem]
                assert split == ("test" if set_name.startswith("test") else "train")
                assert label_k[utt] == label and text_k[utt] == f"the sound of {label}"


def test_vggsound_finds_audiosetdl_names_and_audio_only_copies(tmp_path, prepare):
    tree = ct.make_vggsound(tmp_path / "vggsound", layout="audiosetdl")
    data = tmp_path / "data"
    # The mp4s beside a flac/wav have no sound: taking the audio from them would fail.
    proc = ok(prepare("vggsound", vggsound_args(tree, data)))
    files = prepare_vggsound.ClipFiles(tree["root"])
    for (ytid, start), (audio, video) in tree["files"].items():
        assert files.find(ytid, start) == (str(audio), None if video is None else str(video))
    found = list(tree["files"].values())
    assert (f"{len(found)} clips on disk: {sum(1 for _, v in found if v)} with an mp4 (video "
            f"cue), {sum(1 for a, v in found if a != v)} with their audio from a flac/wav"
            ) in proc.stdout
    assert (data / "local" / "missing_clips.txt").read_text() == ""
    mp4s = {str(v) for _, v in found if v}
    labels_txt = data / "token_list" / "labels.txt"
    with_video = without_video = 0
    for set_name, cats in (("train", ["2mix", "3mix", "tse"]), ("test", ["2mix", "3mix"]),
                           ("test_tse", ["tse"])):
        d = data / set_name
        check_simulated_set(d, 3, 8000, 0.5, labels_txt, cats)
        for k in (1, 2, 3):
            videos = kaldi(d / f"video_spk{k}.scp")
            for utt, label in kaldi(d / f"label_spk{k}").items():
                if label:  # a cued source: its clip's mp4, or none for an audio-only copy
                    with_video += bool(videos[utt])
                    without_video += not videos[utt]
                    assert not videos[utt] or videos[utt] in mp4s
    assert with_video and without_video


# --------------------------------------------------------------------------
# FUSS's augmentation output (no eval split)
# --------------------------------------------------------------------------


def fuss_set_roots(data: Path) -> Dict[str, set]:
    """Per set, the folders its mixtures are in."""
    return {s: {str(Path(p).parent) for p in kaldi(data / s / "wav.scp").values()}
            for s in ("train", "dev", "test")}


def test_fuss_augmented_tree_takes_the_eval_split_from_the_official_dev_data(tmp_path, prepare):
    # FUSS's setup.sh: <ROOT_DIR>/fuss_dev (get_dev_data.sh) and
    # <ROOT_DIR>/fuss_augment_<seed> (run_data_augmentation.sh, no eval split).
    base = tmp_path / "fuss_root"
    dev = ct.make_fuss(base / "fuss_dev")
    aug = ct.make_fuss(base / "fuss_augment_2020", augmented=True)
    assert not (aug / "ssdata_reverb" / "eval_example_list.txt").exists()
    data = tmp_path / "data"
    proc = ok(prepare("fuss", ["--fuss_dir", aug, "--data_dir", data]))
    assert fuss_set_roots(data) == {"train": {str(aug / "ssdata_reverb" / "train")},
                                    "dev": {str(aug / "ssdata_reverb" / "validation")},
                                    "test": {str(dev / "ssdata_reverb" / "eval")}}
    assert sorted(kaldi(data / "train" / "wav.scp")) == [f"train_example{i:05d}" for i in range(5)]
    assert sorted(kaldi(data / "test" / "wav.scp")) == [f"eval_example{i:04d}" for i in range(3)]
    assert f"3 mixtures (FUSS eval, {dev / 'ssdata_reverb'})" in proc.stdout
    for set_name in ("train", "dev", "test"):
        assert_valid(data / set_name, 4, fs=16000)

    # Through data.sh, from a dev tree elsewhere (dry variant, eval split only).
    other = ct.make_fuss(tmp_path / "elsewhere", splits={"eval": 2}, variants=("ssdata",))
    data2 = tmp_path / "data2"
    ok(run_data_sh("fuss", ["--fuss_dir", aug, "--fuss_dev_dir", other, "--variant", "dry",
                            "--data_dir", data2]))
    assert fuss_set_roots(data2)["test"] == {str(other / "ssdata" / "eval")}
    assert len(kaldi(data2 / "test" / "wav.scp")) == 2

    # Without the official dev data: a message naming both places and the option.
    shutil.rmtree(dev)
    data3 = tmp_path / "data3"
    proc = prepare("fuss", ["--fuss_dir", aug, "--data_dir", data3])
    assert proc.returncode == 1 and not data3.exists()
    for text in (f"{aug}/ssdata_reverb/eval_example_list.txt does not exist",
                 f"{base}/fuss_dev/ssdata_reverb/eval_example_list.txt", "--fuss_dev_dir",
                 "no eval split"):
        assert text in proc.stderr, proc.stderr


# --------------------------------------------------------------------------
# Offline and without ESPnet: data preparation as data.sh runs it
# --------------------------------------------------------------------------

# Runs local/prepare_<corpus>.py files as data.sh does (as __main__), with the network
# refused, then reports what was imported and which connections were tried.
OFFLINE_RUNNER = r"""
import json, runpy, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[1:]))
    raise OSError("no network during data preparation")
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = refuse
status = {}
for script, argv in json.loads(sys.argv[1]):
    sys.argv = [script] + argv
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        status[script] = e.code
heavy = sorted(m for m in sys.modules
               if m.split(".")[0] in ("espnet", "espnet2", "nltk", "torch", "transformers"))
print(json.dumps({"status": status, "heavy": heavy, "attempts": attempts}))
"""


def test_data_preparation_imports_no_espnet_and_stays_offline(trees, tmp_path):
    runs = [
        ("librimix", librimix_args(trees["librimix"], tmp_path / "l", "2", "clean")),
        ("fuss", ["--fuss_dir", trees["fuss"], "--data_dir", tmp_path / "f"]),
        ("audioset", audioset_args(trees["audioset"], tmp_path / "a")),
        ("vggsound", vggsound_args(trees["vggsound"], tmp_path / "v")),
    ]
    jobs = [(str(recipe_dir(c) / "local" / f"prepare_{c}.py"), [str(a) for a in args])
            for c, args in runs]
    proc = ok(subprocess.run([sys.executable, "-c", OFFLINE_RUNNER, json.dumps(jobs)],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300,
                             env=dict(os.environ, OMP_NUM_THREADS="1")))
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["status"] == {script: 0 for script, _ in jobs}, proc.stderr
    assert report["heavy"] == [] and report["attempts"] == []
    assert "nltk" not in proc.stderr
    for corpus, args in runs:
        assert (Path(args[args.index("--data_dir") + 1]) / "train" / "wav.scp").is_file()


# --------------------------------------------------------------------------
# Broken corpora: a message naming the path, and no data directory
# --------------------------------------------------------------------------

LM = Path("Libri2Mix/wav8k/min")


def _rewrite(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


def _first_line_with(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def librimix_case(mutate: Callable[[Path], List[str]]):
    def run(trees, root: Path) -> List[str]:
        shutil.copytree(trees["librimix"], root)
        return ["--librimix_dir", root] + mutate(root)
    return "librimix", run


def fuss_case(mutate):
    def run(trees, root):
        shutil.copytree(trees["fuss"], root)
        return ["--fuss_dir", root] + mutate(root)
    return "fuss", run


def audioset_case(mutate):
    def run(trees, root):
        shutil.copytree(trees["audioset"]["root"], root)
        return ["--audioset_dir", root, "--unseen_classes", root / "unseen_classes.txt"] \
            + AUDIOSET_ARGS + mutate(root)
    return "audioset", run


def vggsound_case(mutate):
    def run(trees, root):
        shutil.copytree(trees["vggsound"]["root"], root)
        return ["--vggsound_dir", root, "--num_train_mix", 2, "--num_dev_mix", 1,
                "--num_test_mix", 1, "--dev_fraction", 0.34, "--segment_sec", 0.5] + mutate(root)
    return "vggsound", run


def _delete(rel: str, *expected: str):
    def mutate(root: Path) -> List[str]:
        (root / rel).unlink() if (root / rel).is_file() else shutil.rmtree(root / rel)
        return []
    return mutate, [rel, *expected]


def _lm_delete_listed(root: Path) -> List[str]:
    victim = sorted((root / LM / "train-360" / "s2").glob("*.wav"))[0]
    victim.unlink()
    return []


def _fuss_bad_line(root: Path) -> List[str]:
    lst = root / "ssdata_reverb" / "eval_example_list.txt"
    lst.write_text(lst.read_text() + "\t".join(["eval/example0000.wav"] * 6) + "\n")
    return []


def _as_unknown_mid(root: Path) -> List[str]:
    _rewrite(root / "eval_segments.csv", '"/m/09x0r"', '"/m/0xxxxx"')
    return []


def _as_delete_clip(root: Path) -> List[str]:
    sorted((root / "eval_segments").glob("*.wav"))[0].unlink()
    return []


def _as_no_unbalanced_list(root: Path) -> List[str]:
    (root / "unbalanced_train_segments.csv").unlink()
    return ["--audiocaps_dir", root / "audiocaps" / "dataset"]


def _vgg_bad_split(root: Path) -> List[str]:
    csv_path = root / "vggsound.csv"
    lines = csv_path.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",val"
    csv_path.write_text("\n".join(lines) + "\n")
    return []


def _vgg_three_fields(root: Path) -> List[str]:
    csv_path = root / "vggsound.csv"
    lines = csv_path.read_text().splitlines()
    lines[4] = lines[4].rsplit(",", 1)[0]
    csv_path.write_text("\n".join(lines) + "\n")
    return []


def _vgg_delete_video(root: Path) -> List[str]:
    sorted((root / "scratch" / "VGGSound" / "video").glob("*.mp4"))[0].unlink()
    return []


BAD_CASES = {
    "librimix-no-root": (librimix_case(lambda r: shutil.rmtree(r) or []), ["does not exist"]),
    "librimix-no-csv": (librimix_case(_delete(str(LM / "metadata/mixture_dev_mix_clean.csv"))[0]),
                        [str(LM / "metadata/mixture_dev_mix_clean.csv"), "does not exist"]),
    "librimix-bad-columns": (
        librimix_case(lambda r: _rewrite(r / LM / "metadata/mixture_test_mix_clean.csv",
                                         "source_2_path", "source_2") or []),
        [str(LM / "metadata/mixture_test_mix_clean.csv"), "line 1", "source_2_path"]),
    "librimix-listed-file-missing": (librimix_case(_lm_delete_listed),
                                     ["mixture_train-360_mix_clean.csv", "line", "source_2_path",
                                      "/s2/", "does not exist"]),
    "fuss-no-root": (fuss_case(lambda r: shutil.rmtree(r) or []), ["does not exist"]),
    "fuss-no-variant": (fuss_case(_delete("ssdata_reverb")[0]), ["ssdata_reverb", "does not exist"]),
    "fuss-no-list": (fuss_case(_delete("ssdata_reverb/eval_example_list.txt")[0]),
                     ["ssdata_reverb/eval_example_list.txt", "does not exist",
                      "fuss_dev/ssdata_reverb/eval_example_list.txt", "--fuss_dev_dir"]),
    "fuss-no-train-list": (fuss_case(_delete("ssdata_reverb/train_example_list.txt")[0]),
                           ["ssdata_reverb/train_example_list.txt", "does not exist"]),
    "fuss-dev-dir-missing": (fuss_case(lambda r: ["--fuss_dev_dir", r / "no_such_dev"]),
                             ["no_such_dev", "does not exist", "dev data"]),
    "fuss-bad-line": (fuss_case(_fuss_bad_line),
                      ["eval_example_list.txt: line 4", "6 tab-separated field(s)"]),
    "fuss-listed-file-missing": (
        fuss_case(_delete("ssdata_reverb/train/example00003_sources/foreground2_sound.wav")[0]),
        ["train_example_list.txt: line 4", "example00003_sources/foreground2_sound.wav",
         "does not exist"]),
    "audioset-no-root": (audioset_case(lambda r: shutil.rmtree(r) or []), ["does not exist"]),
    "audioset-no-class-csv": (audioset_case(_delete("class_labels_indices.csv")[0]),
                              ["class_labels_indices.csv", "does not exist"]),
    "audioset-bad-class-columns": (
        audioset_case(lambda r: _rewrite(r / "class_labels_indices.csv", "display_name", "name") or []),
        ["class_labels_indices.csv: line 1", "display_name"]),
    "audioset-no-segment-header": (
        audioset_case(lambda r: _rewrite(r / "eval_segments.csv", "# YTID, start_seconds", "# id, start") or []),
        ["eval_segments.csv", "YTID, start_seconds, end_seconds, positive_labels"]),
    "audioset-unknown-label": (audioset_case(_as_unknown_mid),
                               ["eval_segments.csv: line", "/m/0xxxxx", "class_labels_indices.csv"]),
    "audioset-clip-missing": (audioset_case(_as_delete_clip),
                              ["eval_segments.csv: line", "1 listed segment(s)", "--allow_missing true"]),
    "audioset-audiocaps-without-unbalanced-list": (
        audioset_case(_as_no_unbalanced_list),
        ["audiocaps/dataset", "no clip on disk has an AudioCaps caption",
         "no unbalanced_train_segments.csv in --meta_dir", "--unbalanced_csv"]),
    "audioset-unbalanced-csv-missing": (
        audioset_case(lambda r: ["--audiocaps_dir", r / "audiocaps" / "dataset",
                                 "--unbalanced_csv", "unbal_segments.csv"]),
        ["unbal_segments.csv", "does not exist", "--unbalanced_csv"]),
    "vggsound-no-root": (vggsound_case(lambda r: shutil.rmtree(r) or []), ["does not exist"]),
    "vggsound-no-csv": (vggsound_case(_delete("vggsound.csv")[0]), ["vggsound.csv", "does not exist"]),
    "vggsound-bad-split": (vggsound_case(_vgg_bad_split),
                           ["vggsound.csv: line 3", "'val'", "train or test"]),
    "vggsound-three-fields": (vggsound_case(_vgg_three_fields),
                              ["vggsound.csv: line 5", "3 fields", "expected 4"]),
    "vggsound-clip-missing": (vggsound_case(_vgg_delete_video),
                              ["vggsound.csv: line", "1 listed clip(s)", ".mp4", "--allow_missing true"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_broken_corpus_stops_with_a_message_and_writes_nothing(trees, tmp_path, prepare, case):
    (corpus, build), expected = BAD_CASES[case]
    root = tmp_path / "corpus"
    args = build(trees, root)
    data = tmp_path / "data"
    # data.sh checks the root itself before Python starts; prepare_<corpus>.py all the rest
    # (and writes, through its staging folder, only once every check has passed).
    run = run_data_sh if case.endswith("no-root") else prepare
    proc = run(corpus, args + ["--data_dir", data])
    assert proc.returncode != 0
    message = proc.stderr.replace(str(root) + "/", "")
    for text in expected:
        assert text in message, f"{text!r} not in:\n{proc.stderr}"
    if case.endswith("no-root"):
        assert str(root) in proc.stderr
    assert not data.exists()


@pytest.mark.parametrize("corpus", ["audioset", "vggsound"])
def test_allow_missing_skips_and_lists_clips_not_downloaded(trees, tmp_path, prepare, corpus):
    build = {"audioset": audioset_case(_as_delete_clip),
             "vggsound": vggsound_case(_vgg_delete_video)}[corpus][1]
    data = tmp_path / "data"
    ok(prepare(corpus, build(trees, tmp_path / "corpus")
               + ["--data_dir", data, "--allow_missing", "true"]))
    missing = (data / "local" / "missing_clips.txt").read_text().splitlines()
    assert len(missing) == 1 and "line" in missing[0]
    assert (data / "train" / "wav.scp").is_file()


# --------------------------------------------------------------------------
# Shared pieces (espnet2_use/data/corpus.py)
# --------------------------------------------------------------------------


def _clips(tmp_path: Path, labels: Sequence[Sequence[str]], fs: int = 8000) -> List[Clip]:
    clips = []
    for i, labs in enumerate(labels):
        path = tmp_path / f"clip{i}.wav"
        ct.write_wav(path, ct.tone(0.5, fs, seed=i), fs)
        clips.append(Clip(f"c{i}", str(path), tuple(labs), caption=f"cap {i}"))
    return clips


def test_plan_mixtures_is_seeded_and_keeps_labels_apart(tmp_path):
    clips = _clips(tmp_path, [["a"], ["b", "x"], ["c", "x"], ["d"], ["a"], ["e"]])
    rng = lambda: np.random.default_rng(5)  # noqa: E731
    plans = plan_mixtures(clips, "3mix", 20, rng(), "p", 5.0)
    assert plans == plan_mixtures(clips, "3mix", 20, rng(), "p", 5.0)
    for p in plans:
        labels = [lab for c in p.clips for lab in c.labels]
        assert len(labels) == len(set(labels)) and len(p.clips) == 3 and all(p.cued)
        assert all(-5 <= g <= 5 for g in p.gains_db)
    tse = plan_mixtures(clips, "tse", 20, rng(), "p", 5.0, max_interferers=2)
    assert {len(p.clips) for p in tse} == {2, 3}
    assert all(p.cued == (True,) + (False,) * (len(p.clips) - 1) for p in tse)
    with pytest.raises(CorpusError, match="at least 3 different classes"):
        plan_mixtures(clips[:2], "3mix", 1, rng(), "p", 5.0, pool_name="tiny pool")


def test_renderer_writes_consistent_mixtures_and_drops_silent_clips(tmp_path):
    clips = _clips(tmp_path, [["a"], ["b"]])
    silent = tmp_path / "silent.wav"
    ct.write_wav(silent, np.zeros(4000, dtype=np.float32), 8000)
    renderer = MixtureRenderer(fs=8000, segment_sec=0.25)
    plan = plan_mixtures(clips, "2mix", 1, np.random.default_rng(0), "r", 5.0)[0]
    utt = renderer.render(plan, tmp_path / "stage", "final")
    assert utt.mixture == "final/audio/mix/r_2mix_000000.wav" and len(utt.sources) == 2
    mix, _ = soundfile.read(tmp_path / "stage/audio/mix/r_2mix_000000.wav", dtype="int16")
    refs = [soundfile.read(tmp_path / f"stage/audio/s{k}/r_2mix_000000.wav", dtype="int16")[0]
            .astype(int) for k in (1, 2)]
    assert mix.shape == (2000,)
    np.testing.assert_array_equal(mix, refs[0] + refs[1])
    level = 20 * np.log10(np.std(refs[0]) / np.std(refs[1]))
    assert abs(level - (plan.gains_db[0] - plan.gains_db[1])) < 0.1
    silent_plan = dataclasses.replace(plan, clips=(clips[0], Clip("s", str(silent), ("z",))))
    assert renderer.render(silent_plan, tmp_path / "stage", "final") is None


def test_loudest_window_finds_the_event():
    x = np.zeros(1000, dtype=np.float32)
    x[620:700] = 1.0
    w = loudest_window(x, 200, 10)
    assert w.shape == (200,) and w.sum() == 80.0
    assert loudest_window(x[:50], 200, 10).shape == (200,)  # short clips are padded


def test_write_data_dir_contract_and_duplicate_ids(tmp_path):
    silence = tmp_path / "silence.wav"
    ct.write_wav(silence, np.zeros(0, dtype=np.float32), 8000)
    a = tmp_path / "a.wav"
    ct.write_wav(a, ct.tone(0.1, 8000, 1), 8000)
    utts = [Utterance("u2", str(a), [str(a)], "tse", labels=["dog"], texts=["a  dog\nbarks"]),
            Utterance("u1", str(a), [str(a), str(a)], "2mix", labels=["cat", None])]
    write_data_dir(tmp_path / "set", utts, 2, silence=str(silence), cue_kinds=("text", "label"))
    assert (tmp_path / "set/label_spk1").read_text() == "u1 cat\nu2 dog\n"
    assert (tmp_path / "set/label_spk2").read_text() == "u1\nu2\n"
    assert (tmp_path / "set/text_spk1").read_text() == "u1\nu2 a dog barks\n"
    assert kaldi(tmp_path / "set/spk2.scp") == {"u1": str(a), "u2": str(silence)}
    write_lines(tmp_path / "labels.txt", ["cat", "dog"])
    assert_valid(tmp_path / "set", 2, fs=8000, labels=tmp_path / "labels.txt")
    with pytest.raises(CorpusError, match="u1 occurs twice"):
        write_data_dir(tmp_path / "dup", utts + utts[1:], 2, silence=str(silence))


def test_staged_output_moves_all_or_nothing(tmp_path):
    data = tmp_path / "data"
    with pytest.raises(RuntimeError):
        with StagedOutput(data) as out:
            write_lines(out.stage("train") / "wav.scp", ["u1 x"])
            raise RuntimeError("fails half-way")
    assert not data.exists()
    write_lines(data / "token_list" / "bpe.model", ["kept"])
    write_lines(data / "train" / "old_file", ["replaced"])
    with StagedOutput(data) as out:
        write_lines(out.stage("train") / "wav.scp", ["u1 x"])
        write_lines(out.stage("token_list/labels.txt"), ["dog"])
        assert out.final("train") == str(data / "train")
    assert sorted(p.name for p in data.iterdir()) == ["token_list", "train"]
    assert sorted(p.name for p in (data / "train").iterdir()) == ["wav.scp"]
    assert sorted(p.name for p in (data / "token_list").iterdir()) == ["bpe.model", "labels.txt"]
