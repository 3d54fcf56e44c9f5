"""mini_use's same-budget comparison (local/compare.py): the verdicts on the paper's
findings follow the numbers, and the rendered table puts each number in its column."""
import json
import shlex
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "egs2" / "mini_use" / "use1" / "local"))
import compare  # noqa: E402


def row(name: str, **values) -> Dict:
    """A row of compare.py's table with nothing measured but ``values``."""
    base = dict(
        name=name, system=name, knows_count=False, kind="use", seeds=1,
        si_snri_2src=None, si_snri_3src=None, fuss_si_snri_2src=None, fuss_si_snri_3src=None,
        count_acc=None, count_acc_by_true=None, match_acc=None, match_acc_by_num_src={},
        tse_snri=None, tse_snri_all=None, tse_si_snri_all=None, params=None,
        train_seconds=None, rtf=None, note="",
    )
    base.update(values)
    return base


def verdicts(rows: List[Dict]) -> Dict[str, str]:
    return {f["finding"]: f["verdict"] for f in compare.paper_findings(rows, None)}


def verdict(rows: List[Dict], claim: str) -> str:
    found = {k: v for k, v in verdicts(rows).items() if claim in k}
    assert len(found) == 1, (claim, verdicts(rows))
    return next(iter(found.values()))


USE = "use_s_eda_count"


@pytest.mark.parametrize("stage2, expected", [
    ((8.0, 6.0), "reproduced"), ((8.0, 4.0), "not reproduced"), ((6.0, 6.0), "not reproduced"),
])
def test_stage2_over_stage1_verdict(stage2, expected):
    rows = [row(USE, si_snri_2src=stage2[0], si_snri_3src=stage2[1]),
            row("use_s_stage1_eda_count", si_snri_2src=7.0, si_snri_3src=5.0)]
    assert verdict(rows, "stage 2") == expected


@pytest.mark.parametrize("oracle, expected", [(8.3, "reproduced"), (9.0, "not reproduced"), (7.0, "reproduced")])
def test_unknown_count_gap_verdict(oracle, expected):
    """EDA count 8.0 dB: a true-count row 0.3 dB above costs little, 1 dB above does not."""
    rows = [row(USE, si_snri_2src=8.0, si_snri_3src=6.0),
            row("use_s_true_count", knows_count=True, si_snri_2src=oracle, si_snri_3src=6.0)]
    assert verdict(rows, "unknown count costs little") == expected


@pytest.mark.parametrize("all_cues, expected", [(7.0, "reproduced"), (5.5, "not reproduced")])
def test_multimodal_cues_verdict(all_cues, expected):
    rows = [row(USE, tse_snri={"label": 5.0, "text": 6.0, "label+text": all_cues})]
    assert verdict(rows, "multimodal") == expected


@pytest.mark.parametrize("match2, expected", [(0.9, "reproduced"), (0.86, "reproduced"), (0.8, "not reproduced")])
def test_matching_accuracy_verdict(match2, expected):
    rows = [row(USE, match_acc=0.7, match_acc_by_num_src={"2": match2, "3": 0.5})]
    assert verdict(rows, "matching accuracy") == expected


@pytest.mark.parametrize("by_true, expected", [
    ({"1": 0.1, "2": 0.85, "3": 0.1}, "reproduced"), ({"1": 1.0, "2": 0.8, "3": 1.0}, "not reproduced"),
    ({"1": 1.0, "3": 1.0}, "not measured"),
])
def test_counting_accuracy_verdict_reads_the_two_source_mixtures(by_true, expected):
    rows = [row(USE, count_acc=0.5, count_acc_by_true=by_true)]
    assert verdict(rows, "counting accuracy") == expected


@pytest.mark.parametrize("with_align, expected", [(0.8, "reproduced"), (0.6, "not reproduced")])
def test_alignment_loss_verdict(with_align, expected):
    rows = [row(USE, match_acc=with_align), row("use_s_align0_eda_count", match_acc=0.7)]
    assert verdict(rows, "alignment loss") == expected


def test_no_finding_without_its_rows():
    assert compare.paper_findings([row("mixture", knows_count=True, si_snri_2src=0.0)], None) == []


def table(md: str, header_start: str) -> List[Dict[str, str]]:
    """The markdown table whose header starts with ``header_start``, as dicts."""
    lines = md.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(header_start))
    cells = lambda ln: [c.strip() for c in ln.strip().strip("|").split("|")]  # noqa: E731
    header = cells(lines[start])
    out = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        out.append(dict(zip(header, cells(ln))))
    return out


def test_render_puts_each_number_in_its_column_and_each_verdict_on_its_finding():
    rows = [
        row(USE, system="USE-S", si_snri_2src=8.123, si_snri_3src=5.5, fuss_si_snri_2src=9.0,
            fuss_si_snri_3src=7.25, count_acc=0.75, count_acc_by_true={"1": 1.0, "2": 0.5, "3": 0.75},
            match_acc=0.875, tse_snri={"label": 4.0, "label+text": 6.5}, tse_snri_all=6.5,
            tse_si_snri_all=5.75, params=1_234_567, train_seconds=99.6, rtf=0.0123),
        row("use_s_stage1_eda_count", system="stage 1", si_snri_2src=9.0, si_snri_3src=4.0),
        row("mixture", system="mixture (floor)", knows_count=True, si_snri_2src=0.0, si_snri_3src=0.0),
    ]
    findings = compare.paper_findings(rows, None)
    result = {"commit": "abc1234", "machine": "a test", "budget_seconds": 100.0,
              "systems": {r["name"]: r for r in rows}, "findings": findings, "tse_vs_ss": None}
    md = compare.render(result)
    systems = {r["system"]: r for r in table(md, "| system |")}

    def cell(system: str, column: str) -> str:
        """The cell of the column whose name starts with ``column`` (a column may name
        its interval too), up to an interval in brackets."""
        found = [v for k, v in systems[system].items() if k.startswith(column)]
        assert len(found) == 1, (column, list(systems[system]))
        return found[0].split(" [")[0]

    assert cell("USE-S", "knows count") == "no" and cell("mixture (floor)", "knows count") == "yes"
    assert (cell("USE-S", "SI-SNRi 2 src"), cell("USE-S", "SI-SNRi 3 src")) == ("8.12", "5.50")
    assert (cell("USE-S", "FUSS 2 src"), cell("USE-S", "FUSS 3 src")) == ("9.00", "7.25")
    assert cell("USE-S", "counting") == "75.0 % (100.0 % / 50.0 % / 75.0 %)"
    assert cell("USE-S", "matching") == "87.5 %"
    assert (cell("USE-S", "TSE SNRi"), cell("USE-S", "TSE SI-SNRi")) == ("6.50", "5.75")
    assert (cell("USE-S", "params"), cell("USE-S", "train s"), cell("USE-S", "RTF")) == ("1.23 M", "100", "0.01")
    assert cell("stage 1", "SI-SNRi 3 src") == "4.00" and cell("stage 1", "matching") == "-"
    rendered = {r["finding (paper)"]: r["verdict"] for r in table(md, "| finding (paper) |")}
    assert rendered == {f["finding"]: f["verdict"] for f in findings}
    # Stage 2 is below stage 1 on 2 sources, matching is 87.5 % over all counts but unknown on 2.
    assert verdict(rows, "stage 2") == "not reproduced"


def test_corpus_summary_keeps_what_the_corpus_is_made_of_and_names_a_bad_file(tmp_path):
    """A recorded corpus's RESULTS.json says its classes, clips and package versions
    (debian_sounds' data/corpus_stats.json); a stats file without them stops the table."""
    stats = {"classes": 29, "clips": 2800, "train_clips": 1930, "valid_clips": 300, "test_clips": 570,
             "packages": {"hydrogen-data": "1.2.0~beta1+dfsg-1"}, "per_class": {"speech": {"train": 3}}}
    good = tmp_path / "corpus_stats.json"
    good.write_text(json.dumps(stats))
    assert compare.corpus_summary(good) == {
        "classes": 29, "clips": 2800, "train_clips": 1930, "test_clips": 570,
        "packages": {"hydrogen-data": "1.2.0~beta1+dfsg-1"}}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({k: v for k, v in stats.items() if k != "packages"}))
    with pytest.raises(SystemExit, match=r"bad\.json lacks packages"):
        compare.corpus_summary(bad)
    with pytest.raises(SystemExit, match=r"cannot read the corpus statistics .*missing\.json"):
        compare.corpus_summary(tmp_path / "missing.json")


def test_batch_runs_queued_steps_in_one_process_logs_each_and_stops_at_a_failure(tmp_path):
    """run_compare.sh queues the systems' steps (shell-quoted lines) and runs them with
    ``compare.py batch``: each step runs in turn, is logged like the script's own steps
    and timed; a failing step stops the batch before the steps after it."""
    (tmp_path / "base.yaml").write_text("optim_conf:\n  lr: 0.001\n")
    (tmp_path / "sweep.json").write_text(json.dumps({"best": "0.004", "warmup_steps": 5}))
    out_a, out_b = tmp_path / "a b.yaml", tmp_path / "b.yaml"  # a space in a path survives the quoting
    batch = tmp_path / "batch.txt"
    batch.write_text(
        f"3 first tuned-config --config {tmp_path}/base.yaml --sweep {tmp_path}/sweep.json --out {tmp_path}/a\\ b.yaml\n"
        f"4 second tuned-config --config {tmp_path}/base.yaml --sweep {tmp_path}/sweep.json --out {out_b}\n")
    log, times = tmp_path / "progress.log", tmp_path / "step_times.txt"
    args = ["batch", "--file", str(batch), "--progress_log", str(log), "--step_times", str(times),
            "--total", "5", "--started", "0", "--steps", "x y first second table"]
    assert compare.main(args) == 0
    assert yaml.safe_load(out_a.read_text())["optim_conf"]["lr"] == 0.004 and out_b.is_file()
    lines = log.read_text().splitlines()
    assert "step 3/5 first" in lines[0] and "then: second table" in lines[0]
    assert "step 4/5 second" in lines[1] and "then: table" in lines[1]
    assert [ln.split()[0] for ln in times.read_text().splitlines()] == ["first", "second"]
    out_a.unlink(), out_b.unlink()
    batch.write_text(f"3 first tuned-config --config {tmp_path}/missing.yaml --sweep {tmp_path}/sweep.json --out {shlex.quote(str(out_a))}\n"
                     f"4 second tuned-config --config {tmp_path}/base.yaml --sweep {tmp_path}/sweep.json --out {out_b}\n")
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        compare.main(args)
    assert not out_b.exists(), "a step after a failed one ran"
