"""The mini_use corpus generator (egs2/mini_use/use1/local/): layout, audio, cues, media,
held-out variants, determinism and data.sh's marker logic, on a tiny corpus."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
LOCAL = REPO / "egs2" / "mini_use" / "use1" / "local"
DATA_SH = LOCAL / "data.sh"
sys.path.insert(0, str(LOCAL))
sys.path.insert(0, str(REPO / "egs2" / "TEMPLATE" / "use1" / "utils"))

import synth_corpus  # noqa: E402
import validate_data_dir  # noqa: E402  (the template's utils/validate_data_dir.py)
from sound_classes import LABELS, SOUND_CLASSES, U_SPLIT  # noqa: E402

FS = 8000
K = 3
SETS = {"train": 6, "valid": 3, "test_ss": 6, "test_tse": 4}
POOL = {"train": 2, "valid": 2, "test": 2}
TINY = [f"--num_{name}={num}" for name, num in SETS.items()] + [f"--num_pool_{name}={num}" for name, num in POOL.items()]
DEFAULTS = synth_corpus.get_parser().parse_args([])


def run_data_sh(cwd: Path, *opts: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = ["bash", str(DATA_SH), "--python", sys.executable, "--nj", "2", *opts]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)


def read_kaldi(path: Path) -> Dict[str, str]:
    """utt -> value ('' when the line holds the utt id alone); asserts sorted unique ids."""
    out: Dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    ids = [line.split(" ", 1)[0] for line in lines]
    assert ids == sorted(ids), f"{path} is not sorted"
    assert len(set(ids)) == len(ids), f"{path} repeats an utterance"
    for line in lines:
        utt, _, value = line.partition(" ")
        out[utt] = value
    return out


def read_jsonl(path: Path) -> List[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def tree_digest(root: Path) -> Dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A tiny corpus made by data.sh with a relative --out, as the recipe does."""
    workdir = tmp_path_factory.mktemp("mini_use_a")
    res = run_data_sh(workdir, *TINY)
    assert res.returncode == 0, res.stderr
    return workdir


def test_layout_every_file_lists_every_utterance(corpus: Path):
    data = corpus / "data"
    assert (data / "token_list" / "labels.txt").read_text().splitlines() == list(LABELS)
    for set_name, num in SETS.items():
        set_dir = data / set_name
        wav = read_kaldi(set_dir / "wav.scp")
        assert len(wav) == num
        names = ["wav.scp", "utt2num_src", "utt2category", "utt2dur"] + [
            f"{stem}{k}{ext}" for k in range(1, K + 1)
            for stem, ext in [("spk", ".scp"), ("text_spk", ""), ("label_spk", ""), ("video_spk", ".scp"), ("enroll_spk", ".scp")]
        ]
        for name in names:
            assert set(read_kaldi(set_dir / name)) == set(wav), f"{set_name}/{name} does not list every utterance"
        num_src = read_kaldi(set_dir / "utt2num_src")
        category = read_kaldi(set_dir / "utt2category")
        silence = f"data/{set_name}/silence.wav"
        assert sf.info(str(corpus / silence)).frames == 0
        for utt, path in wav.items():
            assert path == f"data/{set_name}/wav/mix/{utt}.wav" and (corpus / path).is_file()
            refs = [read_kaldi(set_dir / f"spk{k}.scp")[utt] for k in range(1, K + 1)]
            present = [r for r in refs if r != silence]
            n = int(num_src[utt])
            # Present sources come first; the rest point to the shared silence file.
            assert refs[:n] == present and all(r == silence for r in refs[n:])
            assert all((corpus / r).is_file() for r in refs)
            if set_name == "test_tse":
                assert category[utt] == "tse" and n in (2, 3)
            else:
                assert category[utt] == f"{n}src" and 1 <= n <= K
    # Source counts are balanced in SS sets.
    counts = [int(v) for v in read_kaldi(data / "test_ss" / "utt2num_src").values()]
    assert sorted(counts) == [1, 1, 2, 2, 3, 3]


def test_mixture_is_sum_of_references_with_configured_levels(corpus: Path):
    data = corpus / "data"
    range_db, ref_db = DEFAULTS.level_range_db, DEFAULTS.ref_level_db
    for set_name in SETS:
        pool = "test" if set_name.startswith("test") else set_name
        clip_len = {c["clip_id"]: c["num_samples"] for c in read_jsonl(data / "pool" / pool / "clips.jsonl")}
        dur = read_kaldi(data / set_name / "utt2dur")
        plans = {p["utt_id"]: p for p in read_jsonl(data / "local" / f"{set_name}.jsonl")}
        assert set(plans) == set(dur)
        for utt, plan in plans.items():
            mix, fs = sf.read(str(data / set_name / "wav" / "mix" / f"{utt}.wav"))
            assert fs == FS and sf.info(str(data / set_name / "wav" / "mix" / f"{utt}.wav")).subtype == "PCM_16"
            assert len(mix) == plan["num_samples"] == round(float(dur[utt]) * FS)
            assert DEFAULTS.min_dur <= len(mix) / FS <= DEFAULTS.max_dur
            refs = np.stack([sf.read(str(data / set_name / "wav" / f"spk{k + 1}" / f"{utt}.wav"))[0] for k in range(len(plan["sources"]))])
            assert refs.shape == (len(plan["sources"]), len(mix))
            assert np.max(np.abs(mix - refs.sum(axis=0))) <= 1e-4
            assert np.max(np.abs(mix)) <= 0.99 + 1e-4 and 0 < plan["scale"] <= 1.0
            levels = []
            for ref, src in zip(refs, plan["sources"]):
                a, b = src["onset"], src["onset"] + src["length"]
                assert not ref[:a].any() and not ref[b:].any(), f"{utt}: reference sounds outside its window"
                # A window spans at least max(min_src_dur, half the mixture), or the whole clip.
                shortest = min(clip_len[src["clip_id"]], max(round(DEFAULTS.min_src_dur * FS), len(ref) // 2))
                assert shortest <= src["length"] <= min(clip_len[src["clip_id"]], len(ref))
                level = 20 * np.log10(np.sqrt(np.mean(ref[a:b] ** 2)))
                assert -range_db <= src["gain_db"] <= range_db
                assert level == pytest.approx(ref_db + src["gain_db"] + 20 * np.log10(plan["scale"]), abs=0.05), utt
                levels.append(level)
            assert max(levels) - min(levels) <= 2 * range_db + 0.1
            labels = [s["clip_id"].rsplit("_", 1)[0] for s in plan["sources"]]
            assert len(set(labels)) == len(labels), f"{utt}: two sources of one class"


def test_cues_on_all_sources_in_ss_sets_and_on_spk1_only_in_tse(corpus: Path):
    data = corpus / "data"
    labels = set(LABELS)
    for set_name in SETS:
        set_dir = data / set_name
        num_src = read_kaldi(set_dir / "utt2num_src")
        plans = {p["utt_id"]: p for p in read_jsonl(data / "local" / f"{set_name}.jsonl")}
        for k in range(1, K + 1):
            text = read_kaldi(set_dir / f"text_spk{k}")
            label = read_kaldi(set_dir / f"label_spk{k}")
            video = read_kaldi(set_dir / f"video_spk{k}.scp")
            enroll = read_kaldi(set_dir / f"enroll_spk{k}.scp")
            for utt, n in num_src.items():
                cued = k <= int(n) and (set_name != "test_tse" or k == 1)
                cues = [text[utt], label[utt], video[utt], enroll[utt]]
                if not cued:
                    assert cues == ["", "", "", ""], f"{set_name}/{utt} spk{k} should have no cues"
                    continue
                assert all(cues), f"{set_name}/{utt} spk{k} lacks a cue"
                src = plans[utt]["sources"][k - 1]
                assert label[utt] in labels and src["clip_id"].startswith(label[utt] + "_")
                assert video[utt].endswith(f"/{src['clip_id']}.mp4") and (corpus / video[utt]).is_file()
                enroll_clip = Path(enroll[utt]).stem
                assert enroll_clip != src["clip_id"] and enroll_clip.rsplit("_", 1)[0] == label[utt]
                assert (corpus / enroll[utt]).is_file()
                pool = "test" if set_name.startswith("test") else set_name
                assert enroll[utt].startswith(f"data/pool/{pool}/")


def test_classes_captions_and_pool_clips(corpus: Path):
    assert len(SOUND_CLASSES) >= 16 and len(set(LABELS)) == len(LABELS)
    assert all(" " not in name for name in LABELS)
    rng = np.random.default_rng(0)
    for sound in SOUND_CLASSES:
        assert len(sound.templates) >= 3, sound.name
        wave, slots = sound.synth(rng, 0.3, FS, FS)
        assert wave.shape == (FS,) and np.isfinite(wave).all() and 0.5 < np.max(np.abs(wave)) <= 0.9 + 1e-9
        for template in sound.templates:
            caption = template.format(**slots)
            assert "{" not in caption and caption.strip(), (sound.name, template)
    for split, per_class in POOL.items():
        clips = read_jsonl(corpus / "data" / "pool" / split / "clips.jsonl")
        assert len(clips) == per_class * len(LABELS)
        assert {c["label"] for c in clips} == set(LABELS)
        for c in clips:
            assert c["caption"] and "{" not in c["caption"]
            samples, fs = sf.read(str(corpus / "data" / c["wav"]))
            assert fs == FS and len(samples) == c["num_samples"]
            assert DEFAULTS.min_clip_dur * FS <= len(samples) <= DEFAULTS.max_dur * FS


def test_pictures_and_videos_decode(corpus: Path):
    size, frames = DEFAULTS.image_size, DEFAULTS.video_frames
    clips = read_jsonl(corpus / "data" / "pool" / "test" / "clips.jsonl")
    animated = 0
    for c in clips:
        with Image.open(corpus / "data" / c["png"]) as img:
            assert img.mode == "RGB" and img.size == (size, size)
        with av.open(str(corpus / "data" / c["mp4"])) as container:
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
            assert container.streams.video[0].average_rate == DEFAULTS.video_fps
        assert len(decoded) == frames and decoded[0].shape == (size, size, 3)
        animated += max(np.abs(f.astype(int) - decoded[0]).max() for f in decoded) > 16
    # The animation follows the loudness, so clips with events change over the
    # frames (steady sounds such as a held tone may not).
    assert animated >= len(clips) // 2


def test_test_pool_holds_out_variants(corpus: Path):
    digests = {}
    for split in POOL:
        for c in read_jsonl(corpus / "data" / "pool" / split / "clips.jsonl"):
            held = [0.4 <= c[key] < 0.6 for key in ("u", "colour_u")]
            assert held == [split == "test"] * 2, (split, c["clip_id"], c["u"], c["colour_u"])
            digests[hashlib.sha256((corpus / "data" / c["wav"]).read_bytes()).hexdigest()] = split
    # Disjoint seeds: no clip is repeated across pools.
    assert len(digests) == sum(POOL.values()) * len(LABELS)
    assert 0.4 < U_SPLIT < 0.6


def test_mixing_scales_loud_sources_together():
    loud = np.round(0.9 * 32768 * np.sin(np.arange(FS) * 0.3)).astype(np.int16)
    quiet = np.round(0.2 * 32768 * np.sin(np.arange(FS) * 0.05)).astype(np.int16)
    audio = {"a_0000": loud, "b_0000": quiet}
    plan = synth_corpus.MixturePlan("u1", FS + 100, "2src", [
        synth_corpus.SourcePlan("a_0000", 0, FS, 50, 5.0, True, None),
        synth_corpus.SourcePlan("b_0000", 0, FS // 2, 0, -5.0, True, None),
    ])
    refs, mix, scale = synth_corpus.mix_sources(plan, audio, FS, ref_level_db=-2.0)
    assert refs.shape == (2, FS + 100) and mix.shape == (FS + 100,)
    assert scale < 1.0 and np.max(np.abs(mix)) <= round(0.99 * 32768) + 2
    assert np.array_equal(mix.astype(np.int32), refs.astype(np.int32).sum(axis=0))
    rms = [np.sqrt(np.mean((r[s.onset : s.onset + s.length] / 32768.0) ** 2)) for r, s in zip(refs, plan.sources)]
    assert 20 * np.log10(rms[0] / rms[1]) == pytest.approx(10.0, abs=0.05)


def test_deterministic_rerun_is_noop_and_option_change_regenerates(corpus: Path, tmp_path: Path):
    res = run_data_sh(tmp_path, *TINY)
    assert res.returncode == 0, res.stderr
    first = tree_digest(corpus / "data")
    assert tree_digest(tmp_path / "data") == first
    assert (tmp_path / "data" / ".mini_use_done").is_file()
    assert not list(tmp_path.glob("data.tmp.*")) and not list(tmp_path.glob("data.old.*"))

    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "data").rglob("*")}
    res = run_data_sh(tmp_path, *TINY)
    assert res.returncode == 0 and "nothing to do" in res.stderr
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "data").rglob("*")} == stamps

    res = run_data_sh(tmp_path, *TINY, "--num_test_tse", "5")
    assert res.returncode == 0, res.stderr
    assert len(read_kaldi(tmp_path / "data" / "test_tse" / "wav.scp")) == 5
    assert tree_digest(tmp_path / "data") != first
    assert not list(tmp_path.glob("data.tmp.*")) and not list(tmp_path.glob("data.old.*"))


def test_absolute_out_writes_absolute_paths(tmp_path: Path):
    out = tmp_path / "corpus"
    synth_corpus.main([
        "--out", str(out), "--nj", "1", "--num_train", "2", "--num_valid", "1", "--num_test_ss", "1",
        "--num_test_tse", "1", "--num_pool_train", "2", "--num_pool_valid", "2", "--num_pool_test", "2",
    ])
    for set_name in SETS:
        for name in ("wav.scp", "spk1.scp", "video_spk1.scp", "enroll_spk1.scp"):
            for value in read_kaldi(out / set_name / name).values():
                assert os.path.isabs(value) and os.path.isfile(value), (name, value)


def test_data_sh_help_and_bad_options(tmp_path: Path):
    res = run_data_sh(tmp_path, "--help")
    assert res.returncode == 0 and "--num_test_tse" in res.stdout and "--seed" in res.stdout
    res = run_data_sh(tmp_path, "--no_such_option", "1")
    assert res.returncode != 0 and "--no_such_option" in res.stderr
    res = run_data_sh(tmp_path, "--num_train", "many")
    assert res.returncode != 0 and "--num_train" in res.stderr
    foreign = tmp_path / "data"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("not a corpus")
    res = run_data_sh(tmp_path, *TINY)
    assert res.returncode != 0 and "not a mini_use corpus" in res.stderr
    assert (foreign / "keep.txt").read_text() == "not a corpus"
    assert not list(tmp_path.glob("data.tmp.*"))


@pytest.mark.parametrize("opts, key", [
    (["--num_pool_test", "1"], "--num_pool_test"),
    (["--max_sources", "1"], "--max_sources"),
    (["--min_dur", "5"], "--min_dur"),
    (["--image_size", "95"], "--image_size"),
])
def test_generator_rejects_invalid_options(opts: List[str], key: str):
    args = synth_corpus.get_parser().parse_args(opts)
    with pytest.raises(ValueError, match=key):
        synth_corpus.check_args(args)


def test_sets_pass_the_template_validator(corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    # In this process: each run of the validator as a command would pay ESPnet's import
    # (test_recipe_utils.py runs it as a command once).
    monkeypatch.chdir(corpus)  # the recipe folder: the sets' relative paths start there
    for set_name in SETS:
        status = validate_data_dir.main(
            ["--label_list", "data/token_list/labels.txt", "--fs", str(FS), f"data/{set_name}"])
        out, err = capsys.readouterr()
        assert status == 0, out + err
        # (ESPnet prints a flash-attention notice on import; the verdict is the last line.)
        verdict = out.strip().splitlines()[-1]
        assert verdict.startswith(f"OK: data/{set_name} ({SETS[set_name]} utterances"), out
