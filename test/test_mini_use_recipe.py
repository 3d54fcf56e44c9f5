"""The mini_use recipe end to end at a tiny size: every stage, re-runs, a killed
stage, and a corrupted data directory stopped by validation."""
import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import soundfile as sf
import yaml

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "egs2" / "mini_use" / "use1"
TEMPLATE = REPO / "egs2" / "TEMPLATE" / "use1"
TINY_CORPUS = ("--num_train 16 --num_valid 6 --num_test_ss 6 --num_test_tse 6 "
               "--num_pool_train 2 --num_pool_valid 2 --num_pool_test 2")
TINY = ["--stage1_config", "conf/tuning/train_use_s_tiny_stage1.yaml",
        "--stage2_config", "conf/tuning/train_use_s_tiny_stage2.yaml",
        "--local_data_opts", TINY_CORPUS, "--num_plots", "1"]
FINAL = "exp/train_use_s_tiny_stage2"


def run(recipe: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(["./run.sh", *TINY, *args], cwd=recipe, capture_output=True, text=True,
                         env=env, timeout=timeout)
    if check:
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    return res


def digest(paths) -> dict:
    """Content hashes; a wav's samples and rate (libsndfile stamps float wavs' PEAK
    chunk with the time of writing, so their bytes differ between runs)."""
    out = {}
    for p in paths:
        if p.suffix == ".wav":
            wav, fs = sf.read(p, dtype="float32")
            out[str(p)] = (fs, hashlib.sha256(wav.tobytes()).hexdigest())
        elif p.name == "scores.json":  # the same scores; only the time of scoring differs
            scores = json.loads(p.read_text())
            scores["meta"].pop("created")
            out[str(p)] = scores
        else:
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def decode_files(recipe: Path) -> dict:
    out = recipe / FINAL / "decode_test_ss"
    files = sorted(p for p in out.glob("*/*") if p.is_file() and p.suffix not in (".png", ".log") and p.name != ".done")
    files += sorted((out / "ss" / "wavs").iterdir()) if (out / "ss" / "wavs").is_dir() else []
    files += sorted(p for p in out.glob("logs/out.*/*/wavs/*.wav"))
    return digest(files)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """A copy of the recipe folder (links to the real scripts) run once, stages 1-8."""
    root = tmp_path_factory.mktemp("mini_use") / "egs2" / "mini_use" / "use1"
    root.mkdir(parents=True)
    for name in ("use.sh", "utils", "cmd.sh", "path.sh"):
        (root / name).symlink_to(TEMPLATE / name)
    for name in ("local", "conf", "run.sh"):
        (root / name).symlink_to(RECIPE / name)
    start = time.time()
    run(root)
    return root, time.time() - start


def test_every_stage_runs_and_writes_results_and_a_packed_model(recipe):
    root, seconds = recipe
    times = (root / "exp" / "stage_times.txt").read_text()
    for n in range(1, 9):
        assert f"stage {n} " in times, times
    results = (root / "RESULTS.md").read_text()
    assert "SI-SNRi" in results and "label+text+video" in results
    decode = root / FINAL / "decode_test_ss"
    for task in ("ss", "ss_oracle"):
        scp = (decode / task / "spk1.scp").read_text().splitlines()
        assert len(scp) == 6
        wav, fs = sf.read(root / scp[0].split(maxsplit=1)[1])  # paths relative to the recipe
        assert fs == 8000 and wav.ndim == 1 and len(wav) > 8000
        assert list((decode / task / "plots").glob("*.png"))
    oracle_counts = (decode / "ss_oracle" / "utt2num_src").read_text()
    assert oracle_counts == (root / "data" / "test_ss" / "utt2num_src").read_text()
    tse = root / FINAL / "decode_test_tse"
    for combo in ("label", "text", "video", "label_text", "label_video", "text_video", "label_text_video"):
        assert len((tse / f"tse_{combo}" / "spk1.scp").read_text().splitlines()) == 6
    from espnet2_use import USE

    use = USE.from_packed(root / FINAL / "use_model.zip")
    mixture = (root / "data" / "test_ss" / "wav.scp").read_text().split()[1]
    result = use.separate(root / mixture)
    assert result.sources.shape[1] == sf.info(str(root / mixture)).frames
    print(f"tiny recipe, stages 1-8: {seconds:.0f} s")


def test_rerunning_finished_stages_does_nothing(recipe):
    root, _ = recipe
    watched = [root / "dump/raw/train/.done", root / "exp/train_use_s_tiny_stage1/1epoch.pth",
               root / FINAL / "1epoch.pth", root / FINAL / "decode_test_ss/ss/spk1.scp",
               root / "dump/raw/test_tse/text_emb_spk1.scp"]
    before = {p: p.stat().st_mtime_ns for p in watched}
    res = run(root, "--stage", "1", "--stop_stage", "6")
    assert {p: p.stat().st_mtime_ns for p in watched} == before
    for what in ("statistics are done", "training is done", "decoding of test_ss is done"):
        assert what in res.stderr


def test_a_killed_decoding_stage_rerun_gives_the_same_outputs(recipe):
    root, _ = recipe
    reference = decode_files(root)
    decode_dir = root / FINAL / "decode_test_ss"
    subprocess.run(["rm", "-rf", str(decode_dir)], check=True)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(["./run.sh", *TINY, "--stage", "6", "--stop_stage", "6"], cwd=root,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list(decode_dir.glob("logs/out.*/ss*/wavs/*.wav")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list(decode_dir.glob("*/.done"))
    run(root, "--stage", "6", "--stop_stage", "7")  # decoding again, and its scores
    assert decode_files(root) == reference


def test_the_same_budget_comparison_runs_every_system_and_writes_both_tables(recipe):
    """local/run_compare.sh --tiny true on the finished tiny recipe: every system trains,
    decodes and is scored; RESULTS.json and RESULTS.md carry the tables; a re-run
    finds every step done."""
    root, _ = recipe
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = time.time()
    res = subprocess.run(["./local/run_compare.sh", "--tiny", "true", "--nj", "2"], cwd=root, capture_output=True,
                         text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    seconds = time.time() - start
    result = json.loads((root / "RESULTS.json").read_text())
    assert result["commit"] and result["budget_seconds"] > 0
    systems = result["systems"]
    for name in ("use_s_eda_count", "use_s_true_count", "use_s_stage1_eda_count", "use_s_align0_eda_count",
                 "use_s_example", "use_b_eda_count", "tcn", "dprnn", "tfgridnetv2", "tcn_unknown",
                 "dprnn_unknown", "td_speakerbeam", "mixture", "oracle_irm"):
        assert name in systems, sorted(systems)
    kinds = {"use_s_eda_count": "use", "tcn": "fixed_count_peer", "tcn_unknown": "unknown_count_peer",
             "td_speakerbeam": "tse_peer", "mixture": "reference"}
    assert {name: systems[name]["kind"] for name in kinds} == kinds
    for name in ("tcn_unknown", "dprnn_unknown"):
        row = systems[name]
        assert row["knows_count"] is False and 0.0 <= row["count_acc"] <= 1.0
        assert isinstance(row["si_snri_2src"], float) and 0.0 <= row["surplus_rate"] <= 1.0
        assert row["si_snri_strict_2src"] <= row["si_snri_2src"] + 1e-9 or row["si_snri_2src"] < 0
        threshold = json.loads((root / "exp/compare" / name / "energy_count.json").read_text())
        assert threshold["num_utts"] > 0 and -40.0 <= threshold["threshold_db"] <= 0.0
    for row in systems.values():
        assert {"kind", "seeds", "si_snri_2src_ci", "si_snri_3src_ci", "steps", "surplus_rate"} <= set(row)
        ci = row["si_snri_2src_ci"]
        if ci is not None and row["si_snri_2src"] is not None:
            assert ci[0] <= row["si_snri_2src"] <= ci[1], (row["name"], ci)
    # --tiny: seeds 0 and 1 for USE-S and the best peer of each kind (by seed 0)
    assert systems["use_s_eda_count"]["seeds"] == 2
    assert sorted(r["seeds"] for r in systems.values() if r["kind"] == "fixed_count_peer") == [1, 1, 2]
    assert sorted(r["seeds"] for r in systems.values() if r["kind"] == "unknown_count_peer") == [1, 2]
    assert all(d["seeds"] == [2, 2] for d in result["differences"]
               if d["metric"] not in ("tse_si_snri", "count_acc"))
    # the count peer (issue 24): counts only, trained for the whole budget, beside USE-S's counting
    peer = systems["count_peer"]
    assert peer["kind"] == "count_peer" and peer["knows_count"] is False and 0.0 <= peer["count_acc"] <= 1.0
    assert set(peer["count_acc_by_true"]) <= {"1", "2", "3"} and peer["si_snri_2src"] is None
    assert float((root / "exp/compare/count_peer/train/train_budget_used").read_text()) >= result["budget_seconds"]
    assert ("use_s_eda_count", "count_peer", "count_acc") in {(d["a"], d["b"], d["metric"]) for d in result["differences"]}
    # the sweep: every system, the tiny run's two peak rates, trained with its best
    sweep = result["sweep"]
    assert sorted(sweep) == sorted(["use_s", "use_b", "tcn", "dprnn", "tfgridnetv2", "tcn_unknown",
                                    "dprnn_unknown", "td_speakerbeam"])
    for name, v in sweep.items():
        assert sorted(v["losses"]) == ["0.001", "0.004"] and v["best"] in v["losses"], (name, v)
        assert v["losses"][v["best"]] == min(x for x in v["losses"].values() if x is not None)
    best_conf = yaml.safe_load((root / "exp/compare/sweep/tcn/config_best.yaml").read_text())
    assert best_conf["optim_conf"]["lr"] == float(sweep["tcn"]["best"]) and best_conf["scheduler"] == "warmuplr"
    tcn_conf = yaml.safe_load((root / "exp/compare/tcn/k2/config.yaml").read_text())
    assert tcn_conf["optim_conf"]["lr"] == float(sweep["tcn"]["best"]), "the peer trains at its best rate"
    retrained = sweep["use_s"]["best"] != "0.002"  # the tiny USE-S config's own rate
    assert (systems["use_s_eda_count"]["note"] == "its best rate of the sweep") == retrained
    # the learning curve: USE-S and the best fixed-count peer at B/2, B and 2B
    curve = result["curve"]
    assert len(curve) == 2 and len(curve["use_s"]) == 3, curve
    for points in curve.values():
        assert len(points) == 3 and all(isinstance(p["si_snri_2src"], float) for p in points), curve
        trained = [p["seconds"] for p in points]
        assert trained == sorted(trained) and trained[-1] > trained[0], trained
    assert (root / "compare_curve.png").stat().st_size > 0
    metrics = {(d["b"], d["metric"]) for d in result["differences"]}
    assert {d["a"] for d in result["differences"]} >= {"use_s_eda_count"}
    assert {m for _, m in metrics} >= {"si_snri_2src", "si_snri_3src", "tse_si_snri"}
    for d in result["differences"]:
        assert d["ci"][0] <= d["mean"] <= d["ci"][1] and d["above_zero"] == (d["ci"][0] > 0)
    for row in systems.values():
        assert isinstance(row["knows_count"], bool)
        for key in ("si_snri_2src", "si_snri_3src", "count_acc", "match_acc", "tse_snri_all"):
            assert key in row
        for key in ("count_acc", "match_acc"):
            assert row[key] is None or 0.0 <= row[key] <= 1.0
    for name in ("tcn", "dprnn", "tfgridnetv2", "use_s_eda_count", "use_b_eda_count", "oracle_irm"):
        assert isinstance(systems[name]["si_snri_2src"], float), name
        assert isinstance(systems[name]["si_snri_3src"], float), name
    # The mixture returned as every source scores 0 dB: the scorer's floor.
    assert abs(systems["mixture"]["si_snri_2src"]) < 1e-3 and abs(systems["mixture"]["si_snri_3src"]) < 1e-3
    assert systems["use_s_eda_count"]["count_acc"] is not None and systems["use_s_true_count"]["count_acc"] is None
    assert systems["td_speakerbeam"]["tse_snri"]["example"] is not None
    assert systems["use_s_example"]["tse_snri"]["example"] is not None
    # Every model trains for the whole budget: each count model of a fixed-count peer, and
    # the unknown-count peers (the trainer stops at the first epoch end past the budget).
    budget = result["budget_seconds"]
    models = [root / "exp/compare" / peer / f"k{n}" for peer in ("tcn", "dprnn", "tfgridnetv2") for n in (2, 3)]
    models += [root / "exp/compare" / f"{peer}_unknown" / "train" for peer in ("tcn", "dprnn")]
    for model in models:
        used = float((model / "train_budget_used").read_text())
        assert used >= budget, (model, used, budget)
    md = (root / "RESULTS.md").read_text()
    assert "Same-budget comparison" in md and "The paper's findings, measured here" in md
    assert md.count("<!-- run_compare: begin") == 1
    print(f"tiny comparison: {seconds:.0f} s")
    again = subprocess.run(["./local/run_compare.sh", "--tiny", "true", "--nj", "2"], cwd=root, capture_output=True,
                           text=True, env=env, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (root / "RESULTS.md").read_text().count("<!-- run_compare: begin") == 1


def test_corrupted_data_dir_stops_at_validation_naming_file_and_line(recipe):
    root, _ = recipe
    counts = root / "data" / "valid" / "utt2num_src"
    original = counts.read_text()
    lines = original.splitlines()
    utt, n = lines[1].split()
    lines[1] = f"{utt} {3 if n != '3' else 1}"
    counts.write_text("\n".join(lines) + "\n")
    try:
        res = run(root, "--stage", "1", "--stop_stage", "1", check=False)
    finally:
        counts.write_text(original)
    assert res.returncode != 0
    assert "data/valid" in res.stderr and "line 2" in res.stderr and utt in res.stderr
