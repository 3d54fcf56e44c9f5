"""README's `enh.sh` commands, run as the Python steps enh.sh makes of them.

``egs2/TEMPLATE/enh1_use/check_enh_sh.py --emulate`` reads the three ``./enh.sh``
commands of README's section "Use USE in your ESPnet recipe" (and the scoring command
after the unknown-count one), writes the config each names, at test size, and tiny
data in the layout stages 3-4 leave, then runs stages 5-8's Python steps for those
flags: stats, training through ``espnet2.bin.launch``, inference in three jobs,
ESPnet's scoring where the README keeps stage 8, README's own commands after. A README
flag or config that stops working fails here. The three runs start together in the
background and each test waits for its own.
"""
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import soundfile as sf
import yaml

from background_runs import BackgroundRuns

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
CHECK = REPO / "egs2" / "TEMPLATE" / "enh1_use" / "check_enh_sh.py"
sys.path.insert(0, str(CHECK.parent))
import check_enh_sh  # noqa: E402

NAMES = ("use_fixed", "use_flexible", "use_tse")
TIMEOUT = 900


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("enh_recipe")
    background = BackgroundRuns()
    for name in NAMES:
        logs = base / "logs" / name
        logs.mkdir(parents=True)
        background.start(name, logs, args=[sys.executable, str(CHECK), "--emulate", "--workdir",
                                            str(base), "--only", name], cwd=base)

    def finished(name: str) -> Path:
        proc = background.wait(name, TIMEOUT)
        assert proc.returncode == 0, f"{name}\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        assert f"[check_enh_sh] {name}: ok" in proc.stdout
        return base / name

    yield finished
    background.close()


def read_scp(path: Path) -> Dict[str, List[str]]:
    return {line.split()[0]: line.split()[1:] for line in path.read_text().splitlines() if line.strip()}


def test_readme_gives_one_enh_sh_command_per_config_file():
    runs = check_enh_sh.readme_runs()
    confs = sorted(p.stem for p in (CHECK.parent / "conf").glob("*.yaml"))
    assert sorted(runs) == confs == sorted(NAMES)
    for name, run in runs.items():
        assert run.enh_sh[:3] == ["./enh.sh", "--python", "espnet2-use-python"], run.enh_sh
        assert run.flag("enh_config") == f"conf/{name}.yaml"
    flexible = runs["use_flexible"]
    assert flexible.flag("variable_num_refs") == "true" and flexible.flag("ref_num") == "1"
    assert int(flexible.flag("stop_stage")) == 7, "stock stage 8 cannot score a varying count"
    assert [c[:3] for c in flexible.after] == [["espnet2-use-python", "-m", "espnet2_use.bin.use_scoring"]]
    assert runs["use_tse"].flag("is_tse_task") == "true"


@pytest.mark.parametrize("name", NAMES)
def test_config_numbers_agree_with_the_readme_flags(name):
    """The counts enh.sh passes (--ref_num, --inf_num) are those the config expects."""
    run = check_enh_sh.readme_runs()[name]
    conf = yaml.safe_load((CHECK.parent / "conf" / f"{name}.yaml").read_text())
    if name == "use_tse":
        assert conf["num_spk"] == conf["model_conf"]["num_spk"] == int(run.flag("ref_num"))
    elif name == "use_flexible":
        assert conf["separator_conf"]["num_spk"] == int(run.flag("inf_num"))
    else:
        assert conf["separator_conf"]["num_spk"] == int(run.flag("ref_num"))


def test_fixed_count_runs_stages_5_to_8(runs):
    recipe = runs("use_fixed")
    out = recipe / "exp" / "enh_use_fixed_raw" / "enhanced_test"
    test_utts = set(read_scp(recipe / "dump" / "raw" / "test" / "wav.scp"))
    for k in (1, 2):
        assert set(read_scp(out / f"spk{k}.scp")) == test_utts
    scores = read_scp(out / "scoring" / "SI_SNR_spk1")
    assert set(scores) == test_utts and all(np.isfinite(float(v[0])) for v in scores.values())


def test_unknown_count_every_test_mixture_is_scored(runs):
    """enh_inference writes each mixture's counted sources, in three jobs whose spk{k}.scp
    stage 7 concatenates, and USE's scorer reads enh.sh's layout and scores every mixture,
    including those counted below their true count."""
    recipe = runs("use_flexible")
    test = recipe / "dump" / "raw" / "test"
    out = recipe / "exp" / "enh_use_flexible_raw" / "enhanced_test"
    jobs = sorted((out / "logdir").glob("output.*"))
    assert len(jobs) == 3
    written = [read_scp(out / f"spk{k}.scp") for k in (1, 2, 3)]
    truth = {u: len(v) for u, v in read_scp(test / "spk1.scp").items()}
    for utt in truth:
        count = sum(utt in w for w in written)
        assert 1 <= count <= 3 and all(utt in written[k] for k in range(count)), (utt, count)
    result = json.loads((out / "scores.json").read_text())
    assert result["meta"]["num_scored"] == result["meta"]["num_ref_utts"] == len(truth)
    assert {"1", "2", "3"} <= set(result["summary"]["by_num_sources"])


def loss_by_interval(log: str, key: str) -> List[float]:
    return [float(v) for v in re.findall(rf"\d+epoch:train:\d+-\d+batch:.*?\b{key}=(-?[0-9.]+)", log)]


def test_tse_trains_extracts_and_scores_every_target(runs):
    """ESPnet's TSE task with extractor: use learns (its SI-SNR loss falls over the epoch's
    intervals), enh_tse_inference extracts every target as its cue says, and stage 8
    scores each."""
    recipe = runs("use_tse")
    exp = recipe / "exp" / "enh_use_tse_raw"
    assert yaml.safe_load((exp / "config.yaml").read_text())["extractor"] == "use"
    losses = loss_by_interval((exp / "train.log").read_text(), "si_snr_loss")
    assert len(losses) >= 3 and losses[-1] < losses[0] - 1.0, losses
    out = exp / "enhanced_test"
    test_utts = set(read_scp(recipe / "dump" / "raw" / "test" / "wav.scp"))
    extracted = {}
    for k in (1, 2):
        paths = read_scp(out / f"spk{k}.scp")
        assert set(paths) == test_utts
        for utt, (path,) in paths.items():
            wav, fs = sf.read(path)
            assert fs == check_enh_sh.FS and np.isfinite(wav).all() and np.abs(wav).max() > 0
            extracted[utt, k] = wav
        scores = read_scp(out / "scoring" / f"SI_SNR_spk{k}")
        assert set(scores) == test_utts
    # the cue decides what comes out: the two sources of a mixture, asked for by their
    # examples, give different outputs (a cue-blind extractor would give one twice)
    for utt in test_utts:
        a, b = extracted[utt, 1], extracted[utt, 2]
        assert np.abs(a - b).max() > 1e-3 * np.abs(a).max(), utt


def test_check_script_refuses_without_a_mode():
    proc = subprocess.run([sys.executable, str(CHECK)], capture_output=True, text=True)
    assert proc.returncode == 2 and "--espnet_root or --emulate" in proc.stderr


@pytest.mark.parametrize("counting", [True, False])
def test_enh_inference_of_a_counting_model_leaves_every_spk_scp(tmp_path, counting):
    """A decoding job whose mixtures all have fewer sources than num_spk still leaves
    spk1.scp .. spk{num_spk}.scp (enh.sh's stage 7 concatenates them); other models'
    outputs are left as ESPnet writes them."""
    from espnet2_use.espnet_hooks import every_output_list

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(dict(separator="use", separator_conf=dict(num_spk=3),
                                          model_conf=dict(flexible_numspk=counting))))
    out = tmp_path / "output.1"

    def inference(output_dir, train_config, **kwargs):
        Path(output_dir).mkdir()
        (Path(output_dir) / "spk1.scp").write_text("utt1 a.wav\n")
        return "done"

    wrapped = every_output_list(inference)
    assert wrapped(output_dir=str(out), train_config=str(config), fs=8000) == "done"
    assert (out / "spk1.scp").read_text() == "utt1 a.wav\n"
    for k in (2, 3):
        assert (out / f"spk{k}.scp").exists() == counting
        if counting:
            assert (out / f"spk{k}.scp").read_text() == ""
    assert every_output_list(wrapped) is wrapped
