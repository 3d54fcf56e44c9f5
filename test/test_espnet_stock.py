"""USE inside stock ESPnet entry points, run as ESPnet's enh.sh runs them.

Every step is a plain subprocess ``espnet2-use-python -m espnet2.bin.<step> ...``
(what ``enh.sh --python espnet2-use-python`` executes); nothing of USE is imported
by the test process first. Training goes through ``espnet2.bin.launch`` with the
project's local runner (Kaldi's run.pl convention), as stage 6 of enh.sh does.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import pytest
import soundfile as sf
import yaml

from tiny_data import LABELS, tone, write_set

BIN = Path(sys.executable).parent
PYTHON = str(BIN / "espnet2-use-python")
REPO = Path(__file__).resolve().parents[1]
RUNNER = REPO / "egs2" / "TEMPLATE" / "use1" / "utils" / "run.py"
FS = 8000
MAX_SPK = 3
BACKBONE = dict(latent_dim=16, emb_dim=16, chunk_size=20, num_heads=2, ffn_dim=32,
                num_pre_blocks=1, num_post_blocks=1)
COMMON = dict(
    encoder="conv", encoder_conf=dict(channel=16, kernel_size=16, stride=8),
    decoder="conv", decoder_conf=dict(channel=16, kernel_size=16, stride=8),
    optim="adam", optim_conf=dict(lr=5e-3), batch_type="unsorted", batch_size=1,
    num_workers=0, num_att_plot=0, use_tensorboard=False, seed=0, max_epoch=1,
)


def run(args: Sequence[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a command as a recipe would; fail with its output when it fails."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(list(map(str, args)), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, args))}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


def write_flexible_set(root: Path, name: str, counts: Sequence[int], seed: int) -> Path:
    """A data dir in ESPnet's flexible-count layout.

    ``spk1.scp`` lists all sources of an utterance on its line (loaded as
    ``variable_columns_sound``, split by ESPnet's enh preprocessor); ``ref{k}.scp``
    lists the k-th source of the utterances that have one (what ``enh_scoring
    --flexible_numspk true`` reads); ``utt2num_src`` the true counts.
    """
    rng = np.random.default_rng(seed)
    d = root / name
    (d / "wav").mkdir(parents=True, exist_ok=True)
    files: Dict[str, List[str]] = {"wav.scp": [], "spk1.scp": [], "utt2num_src": [], "keys": []}
    files.update({f"ref{k}.scp": [] for k in range(1, MAX_SPK + 1)})
    n_samples = FS // 2
    for i, n in enumerate(counts):
        utt = f"{name}_{i:03d}"
        labels = rng.permutation(LABELS)[:n]
        paths, sources = [], []
        for k, label in enumerate(labels, start=1):
            src = tone(label, n_samples, FS, rng)
            path = d / "wav" / f"{utt}_s{k}.wav"
            sf.write(path, src, FS, subtype="FLOAT")
            paths.append(str(path))
            sources.append(src)
            files[f"ref{k}.scp"].append(f"{utt} {path}")
        mix = d / "wav" / f"{utt}_mix.wav"
        sf.write(mix, np.sum(sources, axis=0), FS, subtype="FLOAT")
        files["wav.scp"].append(f"{utt} {mix}")
        files["spk1.scp"].append(f"{utt} {' '.join(paths)}")
        files["utt2num_src"].append(f"{utt} {n}")
        files["keys"].append(f"{utt} {n_samples}")
    for key, lines in files.items():
        (d / key).write_text("".join(line + "\n" for line in sorted(lines)))
    return d


def read_scp(path: Path) -> Dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        key, value = line.split(maxsplit=1)
        out[key] = value
    return out


@pytest.fixture(scope="module")
def enh(tmp_path_factory):
    """Flexible-count data, and ``separator: use`` trained 1 epoch through launch."""
    root = tmp_path_factory.mktemp("stock_enh")
    train = write_flexible_set(root, "train", [1, 2, 3] * 16, seed=1)
    valid = write_flexible_set(root, "valid", [1, 2, 3], seed=2)
    test = write_flexible_set(root, "test", [1, 2, 3, 1, 2, 3], seed=3)
    conf = root / "use_flexible.yaml"
    conf.write_text(yaml.safe_dump(dict(
        COMMON,
        separator="use",
        separator_conf=dict(num_spk=MAX_SPK, backbone="use_s", backbone_conf=BACKBONE,
                            attractor_conf=dict(threshold=0.5)),
        flexible_numspk=True,  # the preprocessor splits spk1.scp's columns
        model_conf=dict(flexible_numspk=True),  # the model takes the batch's count
        preprocessor="enh",
        criterions=[
            dict(name="si_snr", conf=dict(eps=1.0e-7), wrapper="pit",
                 wrapper_conf=dict(weight=1.0, independent_perm=True, flexible_numspk=True)),
            dict(name="use_existence", wrapper="use_existence", wrapper_conf=dict(weight=1.0)),
        ],
        log_interval=16,
    )))
    exp = root / "exp"
    data = []
    for mode, d in (("train", train), ("valid", valid)):
        data += [f"--{mode}_data_path_and_name_and_type", f"{d / 'wav.scp'},speech_mix,sound",
                 f"--{mode}_data_path_and_name_and_type",
                 f"{d / 'spk1.scp'},speech_ref1,variable_columns_sound",
                 f"--{mode}_shape_file", str(d / "keys")]
    launch = run([PYTHON, "-m", "espnet2.bin.launch", "--cmd", RUNNER, "--log", exp / "train.log",
                  "--ngpu", 0, "--num_nodes", 1, "--init_file_prefix", exp / ".dist_init_",
                  "--multiprocessing_distributed", "true", "--",
                  PYTHON, "-m", "espnet2.bin.enh_train", *data,
                  "--resume", "true", "--output_dir", exp, "--config", conf], cwd=root)
    return dict(root=root, train=train, valid=valid, test=test, exp=exp, conf=conf, launch=launch)


def test_plain_python_and_import_espnet2_use_stay_light(tmp_path):
    """Plain python gets no USE hook; importing espnet2_use imports neither torch nor ESPnet."""
    code = ("import sys; assert not [m for m in sys.modules if m.startswith('espnet2')], "
            "sorted(m for m in sys.modules if m.startswith('espnet2'))")
    run([sys.executable, "-c", code], cwd=tmp_path)
    code = ("import sys, espnet2_use; heavy = [m for m in ('torch', 'espnet2', 'espnet2.tasks.enh', 'nltk') "
            "if m in sys.modules]; assert not heavy, heavy; assert espnet2_use.__version__")
    run([sys.executable, "-c", code], cwd=tmp_path)


def test_interpreter_behaves_like_python(tmp_path):
    script = tmp_path / "show.py"
    script.write_text("import sys\nprint('script', sys.argv[1:], sys.path[0])\n")
    out = run([PYTHON, script, "a", "--b"], cwd=tmp_path).stdout
    assert f"script ['a', '--b'] {tmp_path}" in out
    out = run([PYTHON, "-c", "import sys; print('cmd', sys.argv, __name__)", "x"], cwd=tmp_path).stdout
    assert "cmd ['-c', 'x'] __main__" in out
    out = run([PYTHON, "-u", "-c", "import sys; print('unbuffered', sys.stdout.write_through)"],
              cwd=tmp_path).stdout
    assert "unbuffered True" in out
    proc = subprocess.run([PYTHON, "-m", "json.tool"], input='{"b": 1}', capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0 and '"b": 1' in proc.stdout
    proc = subprocess.run([PYTHON, "-c", "raise SystemExit(3)"], capture_output=True, cwd=tmp_path)
    assert proc.returncode == 3
    proc = subprocess.run([PYTHON, "-Z"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "Unknown option: -Z" in proc.stderr
    # multiprocessing's spawned children run through the interpreter too (torch's
    # multi-GPU launch spawns): they have USE's hook before unpickling anything.
    code = ("import multiprocessing as mp\n"
            "if __name__ == '__main__':\n"
            "    with mp.get_context('spawn').Pool(1) as pool:\n"
            "        print('child', pool.apply(eval, (\"'espnet2_use' in __import__('sys').modules\",)))\n")
    (tmp_path / "spawn.py").write_text(code)
    assert "child True" in run([PYTHON, tmp_path / "spawn.py"], cwd=tmp_path).stdout


def existence_by_interval(log: str) -> List[float]:
    return [float(v) for v in re.findall(r"\d+epoch:train:\d+-\d+batch:.*?\bexistence=([0-9.]+)", log)]


@pytest.mark.slow
def test_enh_train_through_launch_learns_existence(enh):
    log = (enh["exp"] / "train.log").read_text()
    assert "# Accounting:" in log, "the local runner wrote the log"
    values = existence_by_interval(log)
    assert len(values) >= 2, log[-3000:]
    assert values[-1] < values[0], f"existence loss per interval: {values}"
    assert (enh["exp"] / "1epoch.pth").exists()
    config = yaml.safe_load((enh["exp"] / "config.yaml").read_text())
    assert config["separator"] == "use" and config["model_conf"]["flexible_numspk"] is True


def eda_existence(exp: Path, wavs: Dict[str, str]) -> Dict[str, np.ndarray]:
    """Existence probabilities [num_spk + 1] per utterance, from the trained model in-process."""
    import torch

    import espnet2_use  # noqa: F401  (after the subprocesses: they had nothing of this)
    from espnet2.tasks.enh import EnhancementTask

    model, _ = EnhancementTask.build_model_from_file(exp / "config.yaml", exp / "1epoch.pth", "cpu")
    model.eval()
    out = {}
    with torch.no_grad():
        for key, path in wavs.items():
            wav, _ = sf.read(path, dtype="float32")
            x = torch.from_numpy(wav)[None]
            feats, flens = model.encoder(x, torch.tensor([x.size(1)]))
            out[key] = model.separator(feats, flens)[2]["existence_prob"][0].numpy()
    return out


@pytest.mark.slow
def test_enh_inference_writes_the_counted_sources_and_use_scoring_scores_them(enh):
    """enh_inference writes, per utterance, the sources its EDA counts; use_scoring scores them.

    One epoch on tiny data does not teach the EDA to count tones, so the count rule's
    threshold is set, through ESPnet's own ``--inference_config``, between the
    utterances' second existence probabilities: the counts then differ between
    utterances, and each written count must be the EDA's (computed here in-process).
    """
    root, test, exp = enh["root"], enh["test"], enh["exp"]
    wavs = read_scp(test / "wav.scp")
    keys = sorted(wavs)
    probs = eda_existence(exp, wavs)
    second = np.sort([p[1] for p in probs.values()])
    gap = int(np.argmax(np.diff(second)))
    threshold = float((second[gap] + second[gap + 1]) / 2)
    expected = {}
    for key, p in probs.items():
        exists = np.cumprod(p >= threshold)
        expected[key] = int(min(max(exists.sum(), 1), MAX_SPK))
    assert len(set(expected.values())) > 1, (threshold, probs)
    inference_config = root / "inference.yaml"
    inference_config.write_text(yaml.safe_dump(dict(
        separator_conf=dict(attractor_conf=dict(threshold=threshold)))))

    out = root / "enhanced"
    run([PYTHON, "-m", "espnet2.bin.enh_inference", "--ngpu", 0, "--fs", FS,
         "--data_path_and_name_and_type", f"{test / 'wav.scp'},speech_mix,sound",
         "--key_file", test / "wav.scp", "--train_config", exp / "config.yaml",
         "--inference_config", inference_config,
         "--model_file", exp / "1epoch.pth", "--output_dir", out,
         "--normalize_output_wav", "true"], cwd=root)
    written = [read_scp(out / f"spk{k}.scp") for k in range(1, MAX_SPK + 1)]
    counts = {key: sum(key in w for w in written) for key in keys}
    assert counts == expected, (counts, expected, threshold)
    for key, n in counts.items():
        # sources 1..n, no gaps: the k-th file lists an utterance only when k <= count
        assert all(key in written[k] for k in range(n)), (key, n)
        for k in range(n):
            wav, fs = sf.read(written[k][key])
            assert fs == FS and np.isfinite(wav).all() and np.abs(wav).max() > 0

    # USE's scorer reads this layout (the sources as columns of spk1.scp) and scores every
    # utterance; ESPnet's enh_scoring --flexible_numspk stops with a KeyError at the first
    # one counted below its true count (README, "An unknown number of sources").
    run([PYTHON, "-m", "espnet2_use.bin.use_scoring", "--mode", "ss", "--ref_dir", test,
         "--est_dir", out], cwd=root)
    result = json.loads((out / "scores.json").read_text())
    truth = {k: int(v) for k, v in read_scp(test / "utt2num_src").items()}
    assert result["meta"]["num_scored"] == len(keys)
    scored = result["utterances"]
    assert sorted(scored) == keys
    for key in keys:
        assert scored[key]["num_src"] == truth[key]
        assert scored[key]["est_count"] == counts[key], (key, scored[key])
    # the case ESPnet's scorer cannot take is among them (the run is deterministic)
    assert any(counts[k] < truth[k] for k in keys), (counts, truth)


