"""The recipe shell utilities of egs2/TEMPLATE/use1: job runners (local and Slurm), option
parsing, scp splitting, the data-directory checker and its readers/writer.

utils/validate_data_dir.py needs espnet2_use, whose import loads ESPnet (about 10 s per
process): one test runs it as a command, the others call its main() in this process."""
import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import pytest
import soundfile

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "egs2" / "TEMPLATE" / "use1"
UTILS = TEMPLATE / "utils"
sys.path.insert(0, str(UTILS))

import validate_data_dir  # noqa: E402  (utils/validate_data_dir.py)
from espnet2_use.data import kaldi_dir, validate  # noqa: E402


def run_cmd(
    argv: Sequence[str], cwd: Path, env: Optional[Dict[str, str]] = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --------------------------------------------------------------------------------------------
# utils/run.py
# --------------------------------------------------------------------------------------------


def test_run_py_runs_jobs_in_parallel_with_job_substituted_and_logged(tmp_path: Path) -> None:
    # Each job waits until all three have started: run one after another, job 1 would time out.
    barrier = (
        "touch started.JOB; for i in $(seq 200); do "
        "[ $(ls started.* | wc -l) -ge 3 ] && break; sleep 0.05; done; "
        "[ $(ls started.* | wc -l) -ge 3 ] && echo done JOB > out.JOB"
    )
    result = run_cmd(
        [UTILS / "run.py", "--mem", "4G", "--max_jobs_run", "3", "JOB=1:3", "--num_threads",
         "2", "exp/log/deep/task.JOB.log", "bash", "-c", barrier],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    for job in (1, 2, 3):
        assert (tmp_path / f"out.{job}").read_text() == f"done {job}\n"
        log = (tmp_path / f"exp/log/deep/task.{job}.log").read_text().splitlines()
        assert log[0].startswith("# bash -c ") and f"started.{job}" in log[0]
        assert "JOB" not in log[0]
        assert log[1].startswith("# Started at ")
        assert log[-2].startswith("# Accounting: time=") and log[-2].endswith(" threads=2")
        assert log[-1].startswith("# Ended (code 0) at ")


def test_run_py_honours_max_jobs_run(tmp_path: Path) -> None:
    result = run_cmd(
        [UTILS / "run.py", "--max-jobs-run", "1", "JOB=1:3", "log/x.JOB.log",
         "echo", "start", "JOB", ">>", "trace", "&&", "sleep", "0.2", "&&",
         "echo", "end", "JOB", ">>", "trace"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    trace = (tmp_path / "trace").read_text().split("\n")[:-1]
    # One job at a time: every start is followed by its own end.
    assert [line.split()[0] for line in trace] == ["start", "end"] * 3
    assert all(trace[i].split()[1] == trace[i + 1].split()[1] for i in range(0, 6, 2))


def test_run_py_quotes_words_with_spaces_and_keeps_shell_words(tmp_path: Path) -> None:
    result = run_cmd(
        [UTILS / "run.py", "log/q.log", "echo", "a  b", "|", "tr", "a-z", "A-Z"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    # Split into two words, echo would print "A B".
    assert "A  B\n" in (tmp_path / "log/q.log").read_text().splitlines(keepends=True)


def test_run_py_failing_job_gives_nonzero_and_names_its_log(tmp_path: Path) -> None:
    result = run_cmd(
        [UTILS / "run.py", "JOB=1:3", "log/f.JOB.log", "echo", "hi", "&&", "test", "JOB",
         "-ne", "2"],
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "log/f.2.log" in result.stderr
    assert "log/f.1.log" not in result.stderr and "log/f.3.log" not in result.stderr
    assert "1 / 3" in result.stderr
    assert (tmp_path / "log/f.2.log").read_text().splitlines()[-1].startswith("# Ended (code 1)")
    assert (tmp_path / "log/f.1.log").read_text().splitlines()[-1].startswith("# Ended (code 0)")


def test_run_py_sigterm_ends_running_jobs_and_closes_their_logs(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(UTILS / "run.py"), "JOB=1:2", "log/s.JOB.log",
         "echo", "$$", ">", "pid.JOB", "&&", "exec", "sleep", "60"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid_files = [tmp_path / f"pid.{job}" for job in (1, 2)]
    for _ in range(200):
        if all(p.exists() and p.read_text().strip() for p in pid_files):
            break
        time.sleep(0.05)
    proc.terminate()
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert "interrupted" in stderr
    for job, pid_file in zip((1, 2), pid_files):
        log = (tmp_path / f"log/s.{job}.log").read_text().splitlines()
        assert log[-1].startswith("# Ended (code 143; signal 15)")
        with pytest.raises(ProcessLookupError):  # the job's sleep is gone
            os.kill(int(pid_file.read_text()), 0)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["JOB=2:1", "l.JOB.log", "true"], "invalid job range"),
        (["JOB=1:2", "one.log", "true"], "put JOB in its name"),
        (["--mem"], "needs a value"),
        (["--max_jobs_run", "zero", "l.log", "true"], "expects an integer"),
        (["l.log"], "expected a log file and a command"),
    ],
)
def test_run_py_rejects_malformed_command_lines(
    tmp_path: Path, argv: List[str], message: str
) -> None:
    result = run_cmd([UTILS / "run.py"] + argv, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr


# --------------------------------------------------------------------------------------------
# utils/slurm.py with a fake sbatch
# --------------------------------------------------------------------------------------------

FAKE_SBATCH = r'''#!/usr/bin/env python3
"""Fake sbatch: records its arguments, runs each array task of the job script locally."""
import json, os, subprocess, sys
args = sys.argv[1:]
with open(os.environ["FAKE_SBATCH_RECORD"], "a") as f:
    f.write(json.dumps(args) + "\n")
opts, script = args[:-1], args[-1]
value = lambda name: next(a.split("=", 1)[1] for a in opts if a.startswith(name + "="))
first, last = map(int, value("--array").split("%")[0].split("-"))
if "--parsable" in opts:
    print("4242", flush=True)
killed = set(os.environ.get("FAKE_SBATCH_KILL", "").split(","))
worst = 0
for task in range(first, last + 1):
    out_path = value("--output").replace("%a", str(task)).replace("%A", "4242")
    with open(out_path, "w") as out:
        if str(task) in killed:  # as Slurm does on out-of-memory: no footer in the log
            out.write("slurmstepd: error: Detected 1 oom_kill event\n")
            worst = 1
            continue
        env = dict(os.environ, SLURM_ARRAY_TASK_ID=str(task), SLURM_JOB_ID="4242")
        worst = max(worst, subprocess.call(["bash", script], env=env, stdout=out,
                                           stderr=subprocess.STDOUT))
sys.exit(1 if worst else 0)
'''


@pytest.fixture
def fake_slurm(tmp_path: Path) -> Dict[str, object]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(FAKE_SBATCH)
    sbatch.chmod(sbatch.stat().st_mode | stat.S_IXUSR)
    record = tmp_path / "sbatch_calls.jsonl"
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_SBATCH_RECORD=str(record))

    def calls() -> List[List[str]]:
        return [json.loads(line) for line in record.read_text().splitlines()]

    return {"env": env, "recipe": recipe, "calls": calls}


def test_slurm_py_submits_one_array_with_mapped_options(fake_slurm: Dict[str, object]) -> None:
    recipe: Path = fake_slurm["recipe"]
    (recipe / "conf").mkdir()
    (recipe / "conf/slurm.conf").write_text(
        textwrap.dedent(
            """\
            # test cluster
            command sbatch --account test-acct
            option name=* --job-name $0
            option mem=* --mem $0
            option num_threads=* --cpus-per-task $0
            default gpu=0
            option gpu=0 -p cpu   # no GPU: the cpu partition
            option gpu=* -p gpu --gres=gpu:$0
            """
        )
    )
    (recipe / "path.sh").write_text("export FROM_PATH_SH=sourced\n")
    result = run_cmd(
        [UTILS / "slurm.py", "--mem", "4G", "--num-threads", "2", "--gpu", "1",
         "--max_jobs_run", "2", "JOB=1:3", "exp/log/dec.JOB.log",
         "echo", "job", "JOB", "$FROM_PATH_SH", "a  b", ">", "out.JOB"],
        cwd=recipe,
        env=fake_slurm["env"],
    )
    assert result.returncode == 0, result.stderr
    (call,) = fake_slurm["calls"]()
    assert call[:2] == ["--account", "test-acct"]
    joined = " ".join(call)
    for expected in ("--mem 4G", "--cpus-per-task 2", "-p gpu --gres=gpu:1",
                     "--job-name dec.JOB", "--array=1-3%2", "--parsable", "--wait"):
        assert expected in joined, joined
    assert "-p cpu" not in joined
    script = Path(call[-1])
    assert script == recipe / "exp/log/q/dec.JOB.sh" and os.access(script, os.X_OK)
    assert f"--output={recipe / 'exp/log/q/dec.%a.out'}" in call
    for job in (1, 2, 3):
        # JOB substituted per job; ./path.sh sourced by the job; quotes kept through bash.
        assert (recipe / f"out.{job}").read_text() == f"job {job} sourced a  b\n"
        log = (recipe / f"exp/log/dec.{job}.log").read_text().splitlines()
        assert log[0] == f"# echo job {job} $FROM_PATH_SH 'a  b' > out.{job}"
        assert log[1].startswith("# Running on ") and log[2].startswith("# Started at ")
        assert log[-2].startswith("# Accounting: time=") and log[-2].endswith("threads=2")
        assert log[-1].startswith("# Ended (code 0) at ")


def test_slurm_py_template_config_and_failures(fake_slurm: Dict[str, object]) -> None:
    recipe: Path = fake_slurm["recipe"]
    env = dict(fake_slurm["env"], FAKE_SBATCH_KILL="3")
    result = run_cmd(
        [UTILS / "slurm.py", "--config", TEMPLATE / "conf/slurm.conf", "--mem", "0",
         "--log_wait", "0", "JOB=1:3", "log/t.JOB.log", "test", "JOB", "-ne", "2"],
        cwd=recipe,
        env=env,
    )
    assert result.returncode == 1
    (call,) = fake_slurm["calls"]()
    joined = " ".join(call)
    assert "-p cpu" in joined and "--export=ALL" in joined
    assert "--mem" not in joined  # `option mem=0` adds nothing
    # Job 2 exited 1; job 3 was killed by "Slurm" and never wrote its footer.
    assert "2 / 3 jobs failed" in result.stderr
    assert "log/t.2.log" in result.stderr and "log/t.1.log" not in result.stderr
    assert "log/t.3.log has no exit status" in result.stderr
    assert str(recipe / "log/q/t.3.out") in result.stderr
    assert (recipe / "log/t.2.log").read_text().splitlines()[-1].startswith("# Ended (code 1)")


def test_slurm_py_rejects_an_option_the_config_does_not_describe(
    fake_slurm: Dict[str, object]
) -> None:
    recipe: Path = fake_slurm["recipe"]
    result = run_cmd(
        [UTILS / "slurm.py", "--partition_x", "big", "log/a.log", "true"],
        cwd=recipe,
        env=fake_slurm["env"],
    )
    assert result.returncode == 2
    assert "--partition_x big is not described in the built-in configuration" in result.stderr
    assert not (recipe / "sbatch_calls.jsonl").exists()

    (recipe / "bad.conf").write_text("command sbatch\noption mem --mem $0\n")
    result = run_cmd(
        [UTILS / "slurm.py", "--config", "bad.conf", "log/a.log", "true"],
        cwd=recipe,
        env=fake_slurm["env"],
    )
    assert result.returncode == 2
    assert "bad.conf line 2" in result.stderr


# --------------------------------------------------------------------------------------------
# utils/parse_options.sh
# --------------------------------------------------------------------------------------------

OPTION_SCRIPT = """\
#!/usr/bin/env bash
set -euo pipefail
stage=1
stop_stage=100
use_gpu=false
inference_args=
PATH_LIKE=x
help_message="Usage: $0 [options] <data-dir>"
. {parse_options}
echo "stage=${{stage}} stop_stage=${{stop_stage}} use_gpu=${{use_gpu}}"
echo "inference_args=${{inference_args}}"
echo "positional=$*"
"""


@pytest.fixture
def option_script(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    script = tmp_path / "script.sh"
    script.write_text(OPTION_SCRIPT.format(parse_options=UTILS / "parse_options.sh"))

    def call(*args: str) -> subprocess.CompletedProcess:
        return run_cmd(["bash", script, *args], cwd=tmp_path)

    return call


def test_parse_options_sets_known_options_in_every_form(option_script: Callable) -> None:
    result = option_script(
        "--stage", "3", "--stop-stage=5", "--use_gpu", "true", "--inference_args",
        "--beam 4 --x", "data/a", "b c",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "stage=3 stop_stage=5 use_gpu=true",
        "inference_args=--beam 4 --x",
        "positional=data/a b c",
    ]
    # `--` ends the options.
    result = option_script("--stage", "2", "--", "--stage", "9")
    assert result.stdout.splitlines()[0].startswith("stage=2 ")
    assert result.stdout.splitlines()[-1] == "positional=--stage 9"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--no_such", "1"], "unknown option '--no_such'"),
        (["--no-such=1"], "unknown option '--no-such'"),
        (["--use_gpu", "yes"], "option --use_gpu expects true or false, got 'yes'"),
        (["--stage"], "option --stage needs a value"),
    ],
)
def test_parse_options_rejects_bad_options(
    option_script: Callable, args: List[str], message: str
) -> None:
    result = option_script(*args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "known options: --stage --stop_stage --use_gpu --inference_args" in result.stderr
    assert "stage=" not in result.stdout


def test_parse_options_help_prints_message_and_current_values(option_script: Callable) -> None:
    result = option_script("--stage", "4", "--help")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Usage: ") and lines[0].endswith("[options] <data-dir>")
    assert "  --stage 4" in lines and "  --stop_stage 100" in lines
    assert "  --use_gpu false" in lines and "  --inference_args ''" in lines
    assert not any("PATH_LIKE" in line or "help_message" in line for line in lines)


# --------------------------------------------------------------------------------------------
# utils/split_scp.py
# --------------------------------------------------------------------------------------------


def test_split_scp_round_trip(tmp_path: Path) -> None:
    lines = [f"utt{i:02d} /data/wav/utt{i:02d}.wav\n" for i in range(10)]
    (tmp_path / "wav.scp").write_text("".join(lines))
    outs = [tmp_path / f"keys.{i}.scp" for i in (1, 2, 3)]
    result = run_cmd([UTILS / "split_scp.py", "wav.scp", *outs], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    parts = [out.read_text().splitlines(keepends=True) for out in outs]
    assert [len(p) for p in parts] == [4, 3, 3]
    assert sum(parts, []) == lines  # contiguous, in order, nothing lost
    assert all(part == sorted(part) for part in parts)

    result = run_cmd([UTILS / "split_scp.py", "wav.scp"] + [f"o.{i}" for i in range(11)],
                     cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot split 10 line(s) into 11" in result.stderr


def test_split_scp_to_dir_splits_several_files_alike(tmp_path: Path) -> None:
    keys = [f"u{i}" for i in range(5)]
    (tmp_path / "wav.scp").write_text("".join(f"{k} {k}.wav\n" for k in keys))
    (tmp_path / "text_spk1").write_text("".join(f"{k} a dog {k}\n" for k in keys))
    result = run_cmd(
        [UTILS / "split_scp.py", "--num_splits", "2", "--out_dir", "split2", "wav.scp",
         "text_spk1"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    for name in ("wav.scp", "text_spk1"):
        first = (tmp_path / "split2/1" / name).read_text().splitlines()
        second = (tmp_path / "split2/2" / name).read_text().splitlines()
        assert [line.split()[0] for line in first] == keys[:3]
        assert [line.split()[0] for line in second] == keys[3:]
    assert (tmp_path / "split2/1/text_spk1").read_text().splitlines()[0] == "u0 a dog u0"

    (tmp_path / "text_spk1").write_text("u0 x\nu1 x\nu9 x\nu3 x\nu4 x\n")
    result = run_cmd(
        [UTILS / "split_scp.py", "--num_splits", "2", "--out_dir", "split2", "wav.scp",
         "text_spk1"],
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "text_spk1 line 3: utt 'u9'" in result.stderr


# --------------------------------------------------------------------------------------------
# espnet2_use/data/validate.py, data/kaldi_dir.py and utils/validate_data_dir.py
# --------------------------------------------------------------------------------------------

FS = 8000
LABELS = ["dog", "church bell", "speech"]


def _wav(path: Path, num_samples: int, channels: int = 1, fs: int = FS) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(num_samples)
    data = 0.1 * rng.standard_normal((num_samples, channels)).astype(np.float32)
    soundfile.write(str(path), data if channels > 1 else data[:, 0], fs)
    return str(path)


def _write(path: Path, rows: Dict[str, str]) -> None:
    path.write_text("".join(f"{k} {v}".rstrip() + "\n" for k, v in rows.items()))


@pytest.fixture
def good_dir(tmp_path: Path) -> Path:
    """data/dev with u1 (1 source), u2 and u3 (2 sources), K = 2; paths relative to tmp_path."""
    d = tmp_path / "data" / "dev"
    d.mkdir(parents=True)
    _wav(tmp_path / "data/dev/silence.wav", 0)
    wav, spk1, spk2, count = {}, {}, {}, {}
    for utt, n in (("u1", 1), ("u2", 2), ("u3", 2)):
        _wav(tmp_path / f"wav/{utt}_mix.wav", 800)
        wav[utt] = f"wav/{utt}_mix.wav"
        for k, refs in ((1, spk1), (2, spk2)):
            if k <= n:
                _wav(tmp_path / f"wav/{utt}_s{k}.wav", 800)
                refs[utt] = f"wav/{utt}_s{k}.wav"
            else:
                refs[utt] = "data/dev/silence.wav"
        count[utt] = str(n)
    _write(d / "wav.scp", wav)
    _write(d / "spk1.scp", spk1)
    _write(d / "spk2.scp", spk2)
    _write(d / "utt2num_src", count)
    _write(d / "utt2category", {"u1": "1mix", "u2": "2mix", "u3": "tse"})
    _write(d / "text_spk1", {"u1": "a dog barks", "u2": "", "u3": "bells ring at noon"})
    _write(d / "text_spk2", {"u1": "", "u2": "someone talks", "u3": ""})
    _write(d / "label_spk1", {"u1": "dog", "u2": "", "u3": "church bell"})
    _write(d / "label_spk2", {"u1": "", "u2": "speech", "u3": ""})
    (tmp_path / "video").mkdir()
    (tmp_path / "video/u3_s1.png").write_bytes(b"\x89PNG fake")
    _write(d / "video_spk1.scp", {"u1": "", "u2": "", "u3": "video/u3_s1.png"})
    _wav(tmp_path / "enroll/dog.wav", 400)
    _write(d / "enroll_spk1.scp", {"u1": "enroll/dog.wav", "u2": "", "u3": ""})
    (tmp_path / "data/token_list").mkdir()
    (tmp_path / "data/token_list/labels.txt").write_text("".join(f"{x}\n" for x in LABELS))
    return d


def _validate(d: Path, **kwargs: object) -> List[str]:
    root = d.parents[1]
    kwargs.setdefault("label_list", root / "data/token_list/labels.txt")
    kwargs.setdefault("max_num_src", 2)
    return validate.validate_data_dir(d, base_dir=root, fs=FS, **kwargs)


def _replace_line(path: Path, lineno: int, text: Optional[str]) -> None:
    lines = path.read_text().splitlines(keepends=True)
    if text is None:
        del lines[lineno - 1]
    else:
        lines[lineno - 1] = text + "\n"
    path.write_text("".join(lines))


def test_validate_good_dir_function_and_cli(good_dir: Path) -> None:
    assert _validate(good_dir) == []
    assert kaldi_dir.source_count_histogram(good_dir) == {1: 1, 2: 2}
    result = run_cmd(
        [sys.executable, UTILS / "validate_data_dir.py", "--fs", "8k", "--label_list",
         "data/token_list/labels.txt", "data/dev"],
        cwd=good_dir.parents[1],
    )
    assert result.returncode == 0, result.stderr
    # (ESPnet prints a flash-attention notice on import; the verdict is the last line.)
    assert result.stdout.strip().splitlines()[-1] == "OK: data/dev (3 utterances, sources: {1: 1, 2: 2})"


def _corrupt(d: Path, name: str) -> None:
    root = d.parents[1]
    if name == "missing_file":
        (d / "spk2.scp").unlink()
    elif name == "malformed_line":
        _replace_line(d / "wav.scp", 2, "  u2 wav/u2_mix.wav")
    elif name == "bad_count_value":
        _replace_line(d / "utt2num_src", 2, "u2 two")
    elif name == "unsorted":
        lines = (d / "spk1.scp").read_text().splitlines(keepends=True)
        (d / "spk1.scp").write_text("".join([lines[1], lines[0], lines[2]]))
    elif name == "missing_utt":
        _replace_line(d / "text_spk1", 3, None)
    elif name == "extra_utt":
        (d / "label_spk1").write_text((d / "label_spk1").read_text() + "u4 dog\n")
    elif name == "duplicate_utt":
        _replace_line(d / "utt2category", 3, "u2 tse")
    elif name == "count_2_but_spk2_empty":
        _replace_line(d / "utt2num_src", 1, "u1 2")
    elif name == "count_1_but_spk2_has_audio":
        _replace_line(d / "utt2num_src", 2, "u2 1")
    elif name == "count_beyond_k":
        _replace_line(d / "utt2num_src", 3, "u3 3")
    elif name == "unknown_label":
        _replace_line(d / "label_spk1", 1, "u1 dgo")
    elif name == "missing_video":
        _replace_line(d / "video_spk1.scp", 3, "u3 video/nope.png")
    elif name == "missing_audio":
        _replace_line(d / "spk1.scp", 3, "u3 wav/gone.wav")
    elif name == "reference_too_long":
        _wav(root / "wav/u2_s1.wav", 900)
    elif name == "stereo_wrong_rate_mixture":
        _wav(root / "wav/u3_mix.wav", 1600, channels=2, fs=16000)
    elif name == "cue_for_absent_source":
        _replace_line(d / "text_spk2", 1, "u1 a ghost")
    elif name == "source_beyond_k":
        _write(d / "spk3.scp", {"u1": "x", "u2": "x", "u3": "x"})
    else:
        raise ValueError(name)


CORRUPTIONS = {
    "missing_file": ["data/dev/spk2.scp: missing"],
    "malformed_line": [
        "data/dev/wav.scp line 2: malformed (line starts with a blank",
        "'  u2 wav/u2_mix.wav'",
    ],
    "bad_count_value": [
        "data/dev/utt2num_src line 2: utt 'u2': expected a number of sources, got 'two'"
    ],
    "unsorted": ["data/dev/spk1.scp line 2: utt 'u1' comes after 'u2' (line 1)"],
    "missing_utt": ["data/dev/text_spk1: utt 'u3' is missing (it is in wav.scp line 3)"],
    "extra_utt": ["data/dev/label_spk1 line 4: utt 'u4' is not in wav.scp"],
    "duplicate_utt": ["data/dev/utt2category line 3: duplicate utt 'u2' (first on line 2)"],
    "count_2_but_spk2_empty": [
        "data/dev/spk2.scp line 1: utt 'u1' has 2 sources (utt2num_src line 1) but source 2 "
        "'data/dev/silence.wav' is empty (0 samples)"
    ],
    "count_1_but_spk2_has_audio": [
        "data/dev/spk2.scp line 2: utt 'u2' has 1 source (utt2num_src line 2) but source 2 "
        "'wav/u2_s2.wav' has 800 samples",
        "data/dev/text_spk2 line 2: utt 'u2' has 1 source (utt2num_src line 2) but a cue for "
        "source 2",
    ],
    "count_beyond_k": ["data/dev/utt2num_src line 3: utt 'u3': count 3 is outside 1..2"],
    "unknown_label": [
        "data/dev/label_spk1 line 1: utt 'u1': label 'dgo' is not in",
        "close matches: 'dog'",
    ],
    "missing_video": [
        "data/dev/video_spk1.scp line 3: utt 'u3': video or picture 'video/nope.png' does not "
        "exist"
    ],
    "missing_audio": [
        "data/dev/spk1.scp line 3: utt 'u3': audio file 'wav/gone.wav' does not exist"
    ],
    "reference_too_long": [
        "data/dev/spk1.scp line 2: utt 'u2': reference 'wav/u2_s1.wav' has 900 samples",
        "the mixture (wav.scp line 2) 800 samples",
    ],
    "stereo_wrong_rate_mixture": [
        "data/dev/wav.scp line 3: utt 'u3': 'wav/u3_mix.wav' has 2 channels, expected mono",
        "data/dev/wav.scp line 3: utt 'u3': 'wav/u3_mix.wav' has sample rate 16000, expected "
        "--fs 8000",
    ],
    "cue_for_absent_source": [
        "data/dev/text_spk2 line 1: utt 'u1' has 1 source (utt2num_src line 1) but a cue for "
        "source 2; the cue of an absent source must be empty"
    ],
    "source_beyond_k": ["data/dev/spk3.scp: source 3 is beyond the largest count K = 2"],
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_validate_reports_each_corruption_with_file_and_line(
    good_dir: Path, corruption: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _corrupt(good_dir, corruption)
    # Messages show the data directory as given: run from the recipe folder, as recipes do.
    monkeypatch.chdir(good_dir.parents[1])
    problems = _validate(Path("data/dev"))
    for expected in CORRUPTIONS[corruption]:
        assert any(expected in p for p in problems), (expected, problems)


def test_validate_cli_fails_and_prints_problems(
    good_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    _corrupt(good_dir, "missing_video")
    _corrupt(good_dir, "count_2_but_spk2_empty")
    monkeypatch.chdir(good_dir.parents[1])
    status = validate_data_dir.main(["--max_num_src", "2", "data/dev"])
    stdout, stderr = capsys.readouterr()
    assert status == 1
    assert "OK:" not in stdout
    assert "video_spk1.scp line 3: utt 'u3'" in stderr
    assert "spk2.scp line 1: utt 'u1' has 2 sources" in stderr
    assert "FAILED: data/dev" in stderr


def test_validate_cli_rejects_a_malformed_sample_rate(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        validate_data_dir.main(["--fs", "16q", "data/dev"])
    assert exit_info.value.code == 2
    assert "argument --fs: expected a sample rate such as 16000 or 16k, got '16q'" in (
        capsys.readouterr().err
    )


def test_validate_without_audio_check_only_checks_existence(good_dir: Path) -> None:
    _corrupt(good_dir, "count_2_but_spk2_empty")  # needs the audio opened to be seen
    assert _validate(good_dir, check_audio=False) == []
    _corrupt(good_dir, "missing_audio")
    (problem,) = _validate(good_dir, check_audio=False)
    assert "spk1.scp line 3: utt 'u3': audio file 'wav/gone.wav' does not exist" in problem


def test_validate_limits_the_number_of_problems(good_dir: Path) -> None:
    _write(good_dir / "wav.scp", {f"x{i:03d}": "nope.wav" for i in range(50)})
    problems = _validate(good_dir, max_problems=10)
    assert len(problems) == 12
    assert problems[-2].startswith("... and ") and "more problem(s) not shown" in problems[-2]
    assert problems[-1].startswith("audio files not checked")


def test_read_and_write_kaldi_text(tmp_path: Path) -> None:
    path = tmp_path / "label_spk1"
    kaldi_dir.write_kaldi_text(path, {"u2": "church bell", "u1": "", "u10": "dog"})
    assert path.read_text() == "u1\nu10 dog\nu2 church bell\n"
    assert kaldi_dir.read_kaldi_text(path) == {"u1": "", "u10": "dog", "u2": "church bell"}
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind

    path.write_text("u1 a\nu2 b\nu1 c\n\n")
    with pytest.raises(ValueError) as error:
        kaldi_dir.read_kaldi_text(path)
    assert "line 3: duplicate utt 'u1' (first on line 1)" in str(error.value)
    assert "line 4: malformed (empty line" in str(error.value)

    with pytest.raises(ValueError, match="contains whitespace"):
        kaldi_dir.write_kaldi_text(tmp_path / "x", {"u 1": "a"})
    with pytest.raises(ValueError, match="line break"):
        kaldi_dir.write_kaldi_text(tmp_path / "x", {"u1": "a\nb"})
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("text, rate", [("16000", 16000), ("16k", 16000), ("44.1k", 44100)])
def test_parse_sample_rate(text: str, rate: int) -> None:
    assert kaldi_dir.parse_sample_rate(text) == rate


# --------------------------------------------------------------------------------------------
# cmd.sh and --help of every script
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend, expected",
    [("", "utils/run.py"), ("slurm", "utils/slurm.py --config conf/slurm.conf")],
)
def test_cmd_sh_selects_the_runner(tmp_path: Path, backend: str, expected: str) -> None:
    env = dict(os.environ)
    env.pop("cmd_backend", None)
    if backend:
        env["cmd_backend"] = backend
    result = run_cmd(
        ["bash", "-c", f". {TEMPLATE / 'cmd.sh'} && echo \"$train_cmd|$cuda_cmd|$decode_cmd\""],
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "|".join([expected] * 3)

    env["cmd_backend"] = "pbs"
    result = run_cmd(["bash", "-c", f". {TEMPLATE / 'cmd.sh'}"], cwd=tmp_path, env=env)
    assert result.returncode != 0 and "unknown cmd_backend='pbs'" in result.stderr


@pytest.mark.parametrize(
    "script, expected",
    [
        ("run.py", "utils/run.py [options] [JOB=1:N] LOGFILE command..."),
        ("slurm.py", "utils/slurm.py [options] [JOB=1:N] LOGFILE command..."),
        ("split_scp.py", "utils/split_scp.py in.scp out.1.scp ... out.N.scp"),
        ("validate_data_dir.py", "utils/validate_data_dir.py [options] data/<set> [data/<set2> ...]"),
        ("parse_options.sh", "--name value, --name=value"),
    ],
)
def test_scripts_are_executable_with_help(tmp_path: Path, script: str, expected: str) -> None:
    path = UTILS / script
    assert os.access(path, os.X_OK)
    # The venv's python first, for validate_data_dir.py's soundfile.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    result = run_cmd([path, "--help"], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
