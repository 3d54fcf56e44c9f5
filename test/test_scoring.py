"""Scoring: metrics with known answers, FUSS rules, the use_scoring CLI, oracle IRM, plots."""
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest
import soundfile
import torch

from espnet2_use.bin import oracle_mask, use_scoring
from espnet2_use.scoring import metrics as M
from espnet2_use.data.kaldi_dir import DataDirError
from espnet2_use.scoring.report import SECTION_BEGIN, SECTION_END, render, summarize_ss
from espnet2_use.scoring import plot

FS = 8000
T = 4000  # 0.5 s


def tone(freq: float, amp: float = 0.3, length: int = T) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(length) / FS)


def noise(seed: int, amp: float = 0.1, length: int = T) -> np.ndarray:
    return amp * np.random.default_rng(seed).standard_normal(length)


@pytest.fixture
def sources() -> List[np.ndarray]:
    return [tone(300.0), noise(1, 0.2), tone(2100.0, 0.15)]


# --- metrics ---------------------------------------------------------------

def test_snr_and_si_snr_known_values():
    ref = tone(440.0)
    err = noise(2, 1.0)
    # Scale the error so that the plain SNR is exactly 20 dB.
    err *= np.sqrt(np.sum(ref**2) / np.sum(err**2) / 100.0)
    assert M.snr(ref, ref + err) == pytest.approx(20.0, abs=1e-9)
    # SI-SNR ignores the estimate's gain; plain SNR does not.
    assert M.si_snr(ref, 3.0 * ref) == pytest.approx(80.0)
    assert M.snr(ref, 3.0 * ref) == pytest.approx(-20 * np.log10(2.0), abs=1e-9)
    assert M.si_snr(ref, np.zeros(T)) == pytest.approx(-80.0)
    assert M.sdr(ref, np.zeros(T)) == pytest.approx(-80.0)
    # torch input and float32 give the same numbers as float64 numpy.
    est = ref + err
    assert M.si_snr(torch.tensor(ref, dtype=torch.float32), torch.tensor(est)) == pytest.approx(
        M.si_snr(ref, est), abs=1e-3)
    mix = ref + tone(1000.0)
    assert M.si_snr_improvement(ref, est, mix) == pytest.approx(
        M.si_snr(ref, est) - M.si_snr(ref, mix))
    assert M.sdr_improvement(ref, est, mix) > 10.0


def test_sdr_known_value_forgives_a_short_filter_and_si_snr_does_not():
    """BSS Eval's SDR lets a 512-tap filter of the reference count as target: a 3-tap
    filtered reference plus white noise 20 dB below it scores 20 dB (up to the noise
    the filter can fit, 512 of 32000 dimensions: < 0.1 dB); SI-SNR charges the filter."""
    L = 32000
    ref = noise(5, 1.0, L)
    filtered = np.convolve(ref, [1.0, 0.5, -0.25])[:L]
    err = noise(6, 1.0, L)
    err *= np.sqrt(np.sum(filtered**2) / np.sum(err**2) / 100.0)
    assert M.sdr(ref, filtered + err) == pytest.approx(20.0, abs=0.15)
    # The filter's other taps are error to SI-SNR, with the noise:
    # 10 log10(1 / (0.5^2 + 0.25^2 + 1.3125 / 100)) = 4.87 dB.
    assert M.si_snr(ref, filtered + err) == pytest.approx(4.87, abs=0.1)


def test_tse_scores_are_consistent():
    ref, other = tone(500.0), tone(1700.0)
    mix = ref + other
    scores = M.score_tse(mix, ref, ref + 0.1 * other)
    assert scores["snr_mixture"] == pytest.approx(0.0, abs=1e-6)  # equal-power tones
    assert scores["snr"] == pytest.approx(20.0, abs=1e-6)
    assert scores["snri"] == pytest.approx(20.0, abs=1e-6)
    assert scores["si_snri"] == pytest.approx(scores["si_snr"] - scores["si_snr_mixture"])
    with pytest.raises(ValueError, match="samples"):
        M.score_tse(mix, ref, ref[:-10])


def test_perfect_estimates_in_shuffled_order(sources):
    mix = np.sum(sources, axis=0)
    order = [2, 0, 1]
    ests = [sources[i] + noise(10 + i, 1e-4) for i in order]
    score = M.score_ss_utterance(mix, sources, ests)
    # reference r is found in estimate slot order.index(r)
    assert score.assignment.tolist() == [order.index(r) for r in range(3)]
    assert np.all(score.si_snri > 30.0)
    assert np.all(score.sdri > 30.0)
    assert score.separation == "equal"
    assert score.pair_active.all()
    assert (score.num_ref_active, score.num_est_active) == (3, 3)


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_swapped_estimates_are_recovered(order):
    refs = [tone(300.0), tone(2500.0)]
    mix = refs[0] + refs[1]
    # Imperfect estimates: each leaks 10% of the other source.
    ests = [refs[i] + 0.1 * refs[1 - i] for i in order]
    score = M.score_ss_utterance(mix, refs, ests)
    assert score.assignment.tolist() == [order.index(0), order.index(1)]
    assert np.allclose(score.si_snr, 20.0, atol=0.1)


def test_silent_extra_estimate_is_not_active(sources):
    refs = sources[:2]
    mix = refs[0] + refs[1]
    quietest = min(np.mean(r**2) for r in refs)
    faint = noise(5, 1.0)
    faint *= np.sqrt(0.005 * quietest / np.mean(faint**2))  # 0.5% < 1% of the quietest
    score = M.score_ss_utterance(mix, refs, [refs[1], faint, refs[0]])
    assert score.est_active.tolist() == [True, False, True]
    assert score.separation == "equal"
    assert score.assignment.tolist() == [2, 0]


def test_loud_extra_estimate_is_over_separation(sources):
    refs = sources[:2]
    score = M.score_ss_utterance(refs[0] + refs[1], refs, [refs[0], refs[1], noise(6, 0.2)])
    assert score.num_est_active == 3
    assert score.separation == "over"
    assert score.assignment.tolist() == [0, 1]


def test_missing_estimate_is_under_separation(sources):
    refs = sources[:2]
    score = M.score_ss_utterance(refs[0] + refs[1], refs, [refs[1]])
    assert score.assignment.tolist() == [-1, 0]
    assert score.separation == "under"
    assert score.pair_active.tolist() == [False, True]
    # The unmatched reference is scored against a zero estimate: the floor.
    assert score.si_snr[0] == pytest.approx(-80.0)


def test_silent_reference_is_inactive_and_all_silent_raises(sources):
    refs = [sources[0], np.zeros(T)]
    score = M.score_ss_utterance(sources[0], refs, [sources[0]])
    assert score.ref_active.tolist() == [True, False]
    assert score.assignment.tolist() == [0, -1]
    assert np.isnan(score.si_snr[1])
    assert score.separation == "equal"
    with pytest.raises(M.NoActiveReferenceError):
        M.score_ss_utterance(np.zeros(T), [np.zeros(T)], [sources[0]])


# --- every-reference headline vs FUSS rule, 1-source rows -------------------

def _record(mixture, refs, ests, est_count: int, **kw) -> Dict:
    """A per-utterance record as use_scoring writes it, from signals."""
    score = M.score_ss_utterance(mixture, refs, ests, **kw)
    return {"num_src": len(refs), "num_estimates": len(ests), "est_count": est_count,
            **score.to_dict()}


@pytest.fixture
def two_tones():
    # Whole numbers of cycles in T samples: orthogonal, zero mean, equal power,
    # so a + 0.1 b has SI-SNR 20 dB against a, and the mixture a + b has 0 dB.
    return tone(300.0), tone(2100.0)


def test_every_reference_improvement_rule():
    vals = [12.0, -70.0, 5.0, None, float("nan")]
    ref_active = [True, True, False, True, True]
    pair_active = [True, False, False, False, True]
    # pair kept; miss -> 0; inactive reference -> None; not computed -> None
    assert M.every_reference_improvement(vals, ref_active, pair_active) == [
        12.0, 0.0, None, None, None]
    with pytest.raises(ValueError, match="one each per reference"):
        M.every_reference_improvement([1.0], [True, True], [True, True])


def test_missed_reference_is_zero_in_headline_and_absent_from_fuss_mean(two_tones):
    a, b = two_tones
    mix = a + b
    good = [a + 0.1 * b, b + 0.1 * a]
    score = M.score_ss_utterance(mix, [a, b], [a + 0.1 * b])  # b gets no estimate
    assert score.assignment.tolist() == [0, -1]
    assert score.si_snri[0] == pytest.approx(20.0, abs=1e-6)
    assert score.si_snri[1] == pytest.approx(-80.0, abs=1e-6)  # zero estimate vs 0 dB mixture
    assert score.si_snri_all_refs.tolist() == [pytest.approx(20.0, abs=1e-6), 0.0]
    assert score.sdri_all_refs[1] == 0.0
    # The assigned estimate exists but is inactive (1e-3 of the power < 1%): also a miss.
    faint = M.score_ss_utterance(mix, [a, b], [a + 0.1 * b, 0.03 * b])
    assert faint.assignment.tolist() == [0, 1] and faint.pair_active.tolist() == [True, False]
    assert faint.si_snri[1] == pytest.approx(80.0, abs=1e-6)  # a perfect but silent estimate
    assert faint.si_snri_all_refs[1] == 0.0

    recs = {
        "u1": _record(mix, [a, b], good, 2),
        "u2": _record(mix, [a, b], [a + 0.1 * b], 1),           # b missed
        "u3": _record(mix, [a, b], good + [noise(7, 0.2)], 3),   # an extra active estimate
    }
    summ = summarize_ss(recs)
    row = summ["by_num_sources"]["2"]
    assert (row["num_utts"], row["num_refs"], row["num_pairs"], row["num_missed"]) == (3, 6, 5, 1)
    # Headline: 20, 20, 20, 0 (missed), 20, 20 over 6 references.
    assert row["si_snri_all_refs"]["count"] == 6
    assert row["si_snri_all_refs"]["mean"] == pytest.approx(100.0 / 6, abs=1e-5)
    # FUSS rule: the 5 active pairs only.
    assert row["si_snri"]["count"] == 5
    assert row["si_snri"]["mean"] == pytest.approx(20.0, abs=1e-6)
    assert row["sdri_all_refs"]["count"] == 6 and row["sdri"]["count"] == 5
    assert row["sdri_all_refs"]["mean"] == pytest.approx(row["sdri"]["mean"] * 5 / 6)
    assert summ["by_num_sources"]["2+"]["si_snri_all_refs"] == row["si_snri_all_refs"]
    # The extra active estimate is over-separation; it changes neither mean.
    assert recs["u3"]["separation"] == "over" and recs["u3"]["num_est_active"] == 3
    assert recs["u3"]["si_snri_all_refs"] == recs["u1"]["si_snri_all_refs"]
    assert summ["separation"]["over"] == pytest.approx(1 / 3)
    assert summ["separation"]["under"] == pytest.approx(1 / 3)


def test_sdri_headline_is_empty_when_sdr_is_off(two_tones):
    a, b = two_tones
    rec = _record(a + b, [a, b], [a + 0.1 * b], 1, compute_sdr=False)
    assert rec["sdri_all_refs"] == [None, None]
    row = summarize_ss({"u": rec})["by_num_sources"]["2"]
    assert row["sdri_all_refs"] == {"mean": None, "std": None, "count": 0}
    assert row["si_snri_all_refs"]["mean"] == pytest.approx(10.0, abs=1e-6)


def test_one_source_rows_carry_no_improvement(two_tones):
    a, b = two_tones
    recs = {
        # 1 source: the mixture is the source; SI-SNR of a + 0.1 b is 20 dB.
        "s1": _record(a, [a], [a + 0.1 * b], 1),
        "s2": _record(a, [a], [a + 0.1 * b, b], 2),  # counted 2: over-separation
        "s3": _record(b, [b], [b + 0.1 * a], 1),
        "s4": _record(b, [b], [b], 1),              # perfect: SI-SNR clamped to 80
        "m1": _record(a + b, [a, b], [a + 0.1 * b, b + 0.1 * a], 2),
    }
    assert recs["s1"]["si_snri"][0] == pytest.approx(-60.0, abs=1e-6)  # the clamp's number
    summ = summarize_ss(recs)
    assert list(summ["by_num_sources"]) == ["1", "2", "2+", "all"]
    one = summ["by_num_sources"]["1"]
    assert one["count_one_rate"] == pytest.approx(0.75)
    assert one["si_snr"]["count"] == 4
    assert one["si_snr"]["mean"] == pytest.approx((20.0 * 3 + 80.0) / 4, abs=1e-6)
    for key in ("1", "all"):
        for m in ("si_snri", "sdri", "si_snri_all_refs", "sdri_all_refs"):
            assert summ["by_num_sources"][key][m] == {"mean": None, "std": None, "count": 0}
    assert "count_one_rate" not in summ["by_num_sources"]["2"]
    assert summ["by_num_sources"]["2+"]["si_snri"]["mean"] == pytest.approx(20.0, abs=1e-6)
    assert summ["by_num_sources"]["2"]["si_snri_all_refs"]["mean"] == pytest.approx(
        20.0, abs=1e-6)

    result = {"format": "use_scoring/1", "mode": "ss", "summary": summ, "meta": {
        "est_dir": "exp/x/ss", "ref_dir": "data/test", "num_ref_utts": 5, "num_scored": 5,
        "fs": FS, "metric": {"implementation": "fast_bss_eval", "sdr_filter_length": 512,
                             "clamp_db": 80.0, "length_tolerance": 256}}}
    md = render(result)
    rows = {line.split(" | ")[0][2:]: line.strip("| ").split(" | ")
            for line in md.splitlines() if line.startswith("| ")}
    header = rows["active references"]
    col = header.index
    one_row, all_row, two_row = rows["1 source"], rows["all"], rows["2 sources"]
    for m in ("SI-SNRi, every reference (missed = 0 dB)", "SDRi, every reference (missed = 0 dB)",
              "SI-SNRi, FUSS rule (pairs both active)", "SDRi, FUSS rule"):
        assert one_row[col(m)] == "-" and all_row[col(m)] == "-"
    assert one_row[col("SI-SNR, FUSS rule")] == "35.00"
    assert one_row[col("1 source: estimated count = 1")] == "75.00%"
    assert two_row[col("1 source: estimated count = 1")] == "-"
    assert two_row[col("SI-SNRi, every reference (missed = 0 dB)")] == "20.00"
    assert "-60" not in md and "-64" not in md


def test_plot_titles_give_si_snr_for_one_source(two_tones):
    a, b = two_tones
    _, _, titles = plot._ss_rows(a, [a], {1: a + 0.1 * b}, "u1")
    assert titles == ["u1", "reference 1", "spk1 (SI-SNR 20.0 dB)"]
    ests = {1: b + 0.1 * a, 2: a + 0.1 * b, 3: noise(8, 1e-3)}
    _, _, titles = plot._ss_rows(a + b, [a, b], ests, "u2")
    assert titles == ["u2", "reference 1", "reference 2", "",
                      "spk2 (SI-SNRi 20.0 dB)", "spk1 (SI-SNRi 20.0 dB)", "spk3 (unassigned)"]
    _, _, titles = plot._ss_rows(a + b, [a, b], {1: a + 0.1 * b, 2: 0.03 * b}, "u3")
    assert titles[3:] == ["spk1 (SI-SNRi 20.0 dB)", "spk2 (inactive: missed)"]


def test_counting_confusion_on_hand_made_set():
    summary = M.counting_summary([1, 2, 2, 3, 3], [1, 2, 3, 2, 3])
    assert summary["accuracy"] == pytest.approx(3 / 5)
    assert summary["confusion"] == {1: {1: 1}, 2: {2: 1, 3: 1}, 3: {2: 1, 3: 1}}
    assert (summary["under"], summary["equal"], summary["over"]) == pytest.approx((0.2, 0.6, 0.2))


def test_matching_accuracy_on_hand_built_case():
    sims = [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.1]]
    # cue 3's best attractor is 0 but PIT gave its source estimate 1;
    # cue 4's source got no estimate.
    assert M.matching_accuracy(sims, [0, 1, 1, -1]) == pytest.approx(0.5)
    assert M.cue_matches([0.1, 0.5, 0.2], 1)
    with pytest.raises(ValueError, match="out of range"):
        M.cue_matches([0.1, 0.5], 2)


# --- data/decoding dirs ----------------------------------------------------

def write_wav(path: Path, data: np.ndarray, fs: int = FS) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.asarray(data, dtype=np.float32), fs, subtype="FLOAT")
    return str(path)


def write_lines(path: Path, lines: Dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{u} {v}".rstrip() + "\n" for u, v in sorted(lines.items())))


def make_ref_dir(root: Path, utts: Dict[str, List[np.ndarray]], kmax: int = 3) -> Path:
    """A reference set in the documented layout; absent sources are zero-length wavs."""
    d = root / "data" / "test"
    silence = write_wav(d / "silence.wav", np.zeros(0))
    wav, num = {}, {}
    spk: Dict[int, Dict[str, str]] = {k: {} for k in range(1, kmax + 1)}
    for utt, srcs in utts.items():
        wav[utt] = write_wav(root / "audio" / f"{utt}_mix.wav", np.sum(srcs, axis=0))
        num[utt] = str(len(srcs))
        for k in range(1, kmax + 1):
            spk[k][utt] = (write_wav(root / "audio" / f"{utt}_s{k}.wav", srcs[k - 1])
                           if k <= len(srcs) else silence)
    write_lines(d / "wav.scp", wav)
    write_lines(d / "utt2num_src", num)
    for k, m in spk.items():
        write_lines(d / f"spk{k}.scp", m)
    return d


def make_est_dir(root: Path, name: str, utts: Dict[str, List[np.ndarray]],
                 counts: Optional[Dict[str, int]] = None, fs: int = FS) -> Path:
    d = root / "exp" / name
    spk: Dict[int, Dict[str, str]] = {}
    for utt, ests in utts.items():
        for k, est in enumerate(ests, 1):
            spk.setdefault(k, {})[utt] = write_wav(d / "wavs" / f"{utt}_{k}.wav", est, fs)
    for k, m in spk.items():
        write_lines(d / f"spk{k}.scp", m)
    if counts is not None:
        write_lines(d / "utt2num_src", {u: str(c) for u, c in counts.items()})
    return d


@pytest.fixture
def ss_case(tmp_path):
    a, b, c = tone(300.0), noise(1, 0.2), tone(2100.0, 0.15)
    d = tone(900.0, 0.2)
    refs = {"utt1": [a, b], "utt2": [c, d], "utt3": [a, c, d]}
    ref_dir = make_ref_dir(tmp_path, refs)
    ests = {
        "utt1": [b + noise(20, 1e-3), a + noise(21, 1e-3)],  # swapped order
        "utt2": [c + noise(22, 1e-3), d + noise(23, 1e-3)],
        "utt3": [d + noise(24, 1e-3), a + noise(25, 1e-3)],  # source c missed
    }
    est_dir = make_est_dir(tmp_path, "decode_test_ss", ests,
                           counts={"utt1": 2, "utt2": 3, "utt3": 2})
    # cue k's similarity to attractors (= estimates); utt1 cue 1 (source a)
    # is matched by estimate 2 (index 1); utt2 cue 2's best attractor is wrong.
    (est_dir / "cue_similarity").write_text(
        "utt1 1 0.1 0.9\nutt1 2 0.8 0.2\nutt2 1 0.9 0.1\nutt2 2 0.7 0.3\n"
    )
    return tmp_path, ref_dir, est_dir


def test_cli_ss_end_to_end(ss_case):
    root, ref_dir, est_dir = ss_case
    out_json = root / "scores.json"
    out_md = root / "scores.md"
    use_scoring.main(["--mode", "ss", "--ref_dir", str(ref_dir), "--est_dir", str(est_dir),
                      "--out_json", str(out_json), "--out_md", str(out_md), "--fs", str(FS),
                      "--no_progress"])
    res = json.loads(out_json.read_text())
    assert res["format"] == "use_scoring/1" and res["mode"] == "ss"
    assert res["meta"]["num_ref_utts"] == 3 and res["meta"]["fs"] == FS
    assert "fast_bss_eval" in res["meta"]["metric"]["implementation"]
    summ = res["summary"]
    assert list(summ["by_num_sources"]) == ["2", "3", "2+", "all"]
    assert summ["by_num_sources"]["all"]["num_pairs"] == 6
    assert summ["by_num_sources"]["3"]["num_missed"] == 1
    assert summ["by_num_sources"]["2"]["si_snri"]["mean"] > 20.0
    assert summ["by_num_sources"]["2+"]["sdri"]["count"] == 6
    # utt3's missed source c counts 0 dB in the headline, nothing in the FUSS mean.
    utt3 = res["utterances"]["utt3"]
    assert utt3["si_snri_all_refs"][1] == 0.0 and utt3["pair_active"][1] is False
    three = summ["by_num_sources"]["3"]
    pairs = [utt3["si_snri"][0], utt3["si_snri"][2]]
    assert three["si_snri"]["count"] == 2 and three["si_snri_all_refs"]["count"] == 3
    assert three["si_snri"]["mean"] == pytest.approx(sum(pairs) / 2)
    assert three["si_snri_all_refs"]["mean"] == pytest.approx(sum(pairs) / 3)
    assert three["num_refs"] == 3
    # The "all" row mixes counts: no improvement there.
    for m in ("si_snri", "sdri", "si_snri_all_refs", "sdri_all_refs"):
        assert summ["by_num_sources"]["all"][m] == {"mean": None, "std": None, "count": 0}
    # Counting: utt2 over-estimated (3 for 2), utt3 under (2 for 3).
    assert summ["counting"]["accuracy"] == pytest.approx(1 / 3)
    assert summ["counting"]["confusion"] == {"2": {"2": 1, "3": 1}, "3": {"2": 1}}
    # FUSS active counts: only utt3 under-separated.
    assert summ["separation"]["under"] == pytest.approx(1 / 3)
    assert summ["separation"]["over"] == 0.0
    assert res["utterances"]["utt1"]["assignment"] == [1, 0]
    assert res["utterances"]["utt3"]["assignment"] == [1, -1, 0]
    assert summ["matching"]["num_cues"] == 4
    assert summ["matching"]["accuracy"] == pytest.approx(0.75)
    md = out_md.read_text()
    assert "SI-SNRi" in md and "2+ sources" in md and "Matching accuracy" in md
    header = next(line for line in md.splitlines() if line.startswith("| active references"))
    assert header.index("SI-SNRi, every reference (missed = 0 dB)") < header.index(
        "SI-SNRi, FUSS rule")
    assert "**Every reference** (the headline)" in md and "**FUSS rule**" in md
    assert "1 source: estimated count = 1" not in md  # no 1-source row here

    # Collect into a RESULTS.md that already holds other text; twice.
    results_md = root / "RESULTS.md"
    results_md.write_text("# Results\n\npaper rows\n")
    for _ in range(2):
        use_scoring.main(["--collect", str(out_json),
                          "--out_md", str(results_md)])
    text = results_md.read_text()
    assert text.startswith("# Results\n\npaper rows\n")
    assert text.count(SECTION_BEGIN) == 1 and text.count(SECTION_END) == 1
    assert "decode_test_ss" in text and "| 2+ sources |" in text


def test_cli_ss_default_outputs_and_sdr_off(ss_case):
    _, ref_dir, est_dir = ss_case
    res = use_scoring.main(["--mode", "ss", "--ref_dir", str(ref_dir), "--est_dir",
                            str(est_dir), "--compute_sdr", "false", "--no_progress"])
    assert (est_dir / "scores.json").is_file() and (est_dir / "scores.md").is_file()
    assert res["summary"]["by_num_sources"]["all"]["sdr"]["mean"] is None


def test_cli_tse_end_to_end_and_collect(tmp_path):
    a, b = tone(300.0), tone(2100.0)
    ref_dir = make_ref_dir(tmp_path, {"u1": [a, b], "u2": [b, a]}, kmax=2)
    est_dir = make_est_dir(tmp_path, "decode_test_tse_text", {"u1": [a + 0.1 * b]})
    # u2: only source 2 extracted.
    write_lines(est_dir / "spk2.scp",
                {"u2": write_wav(est_dir / "wavs" / "u2_2.wav", a + 0.1 * b)})
    res = use_scoring.main(["--mode", "tse", "--cue_combination", "text+label", "--ref_dir",
                            str(ref_dir), "--est_dir", str(est_dir), "--no_progress"])
    assert res["meta"]["num_targets"] == 2
    assert [(t["utt"], t["k"]) for t in res["targets"]] == [("u1", 1), ("u2", 2)]
    assert res["summary"]["all"]["snri"]["mean"] == pytest.approx(20.0, abs=0.01)
    assert "text+label" in (est_dir / "scores.md").read_text()
    section = use_scoring.main(["--collect", str(est_dir / "scores.json"),
                                "--out_md", str(tmp_path / "RESULTS.md")])["section"]
    assert "TSE per cue combination" in section and "text+label" in section


def test_length_tolerance_crops_and_pads(ss_case):
    root, ref_dir, est_dir = ss_case
    est_file = est_dir / "wavs" / "utt1_1.wav"
    data, _ = soundfile.read(est_file)
    write_wav(est_file, data[:-3])
    res = use_scoring.main(["--mode", "ss", "--ref_dir", str(ref_dir), "--est_dir",
                            str(est_dir), "--no_progress", "--compute_sdr", "false"])
    assert res["meta"]["num_length_fixed"] == 1
    assert res["utterances"]["utt1"]["length_changes"] == {1: -3}
    write_wav(est_file, data[:-300])
    with pytest.raises(DataDirError, match=r"spk1\.scp line 1 \(utt utt1\).*exceeds the tolerance"):
        use_scoring.main(["--mode", "ss", "--ref_dir", str(ref_dir), "--est_dir",
                          str(est_dir), "--no_progress"])


def test_errors_name_the_file_and_utterance(ss_case):
    root, ref_dir, est_dir = ss_case
    args = ["--mode", "ss", "--ref_dir", str(ref_dir), "--est_dir", str(est_dir), "--no_progress"]
    scp, scp1 = est_dir / "spk2.scp", est_dir / "spk1.scp"
    original, original1 = scp.read_text(), scp1.read_text()

    scp.write_text(original.replace("utt3_2.wav", "gone.wav"))
    with pytest.raises(DataDirError,
                       match=r"spk2\.scp line 3 \(utt utt3\).*gone\.wav does not exist"):
        use_scoring.main(args)

    scp.write_text(original + f"utt9 {est_dir / 'wavs' / 'utt1_1.wav'}\n")
    with pytest.raises(DataDirError,
                       match=r"spk2\.scp line 4: utterance 'utt9' is not in the refer"):
        use_scoring.main(args)

    scp.write_text(original)
    write_wav(est_dir / "wavs" / "utt2_2.wav", tone(300.0, length=T // 2), fs=FS // 2)
    with pytest.raises(DataDirError,
                       match=r"spk2\.scp line 2 \(utt utt2\).*4000 Hz, expected 8000"):
        use_scoring.main(args)

    scp.write_text("\n".join(original.splitlines()[:2]) + "\n")  # utt3 lost estimate 2
    write_wav(est_dir / "wavs" / "utt2_2.wav", tone(900.0, 0.2))
    use_scoring.main(args)  # a shorter list of estimates is fine ...
    scp1.write_text("".join(original1.splitlines(keepends=True)[:2]))
    with pytest.raises(DataDirError, match=r"utterance 'utt3' of .*wav\.scp has no estimate"):
        use_scoring.main(args)  # ... but an utterance with none is an incomplete decoding

    scp.write_text(original)
    scp1.write_text(original1 + "utt1 x.wav\n")
    with pytest.raises(DataDirError, match=r"spk1\.scp line 4: duplicate utt 'utt1'"):
        use_scoring.main(args)

    scp1.write_text(original1)
    (est_dir / "cue_similarity").write_text("utt1 1 0.1 0.9 0.0\n")
    with pytest.raises(DataDirError, match=r"cue_similarity line 1: 3 similarities for "
                       r"utterance 'utt1', expected one per estimated attractor \(2"):
        use_scoring.main(args)

    with pytest.raises(DataDirError, match="no scores.json|not found"):
        use_scoring.main(["--collect", str(root / "nowhere"), "--out_md", str(root / "R.md")])


def test_reference_length_mismatch_is_an_error(tmp_path):
    ref_dir = make_ref_dir(tmp_path, {"u1": [tone(300.0), tone(900.0)]}, kmax=2)
    write_wav(tmp_path / "audio" / "u1_s2.wav", tone(900.0, length=T - 5))
    est_dir = make_est_dir(tmp_path, "dec", {"u1": [tone(300.0), tone(900.0)]})
    with pytest.raises(DataDirError,
                       match=r"spk2\.scp line 1 \(utt u1\).*3995 samples, the mixture 4000"):
        use_scoring.main(["--mode", "ss", "--ref_dir", str(ref_dir), "--est_dir",
                          str(est_dir), "--no_progress"])


# --- oracle IRM ------------------------------------------------------------

def test_oracle_mask_decoding_dir_scores_high(tmp_path):
    refs = {"u1": [tone(300.0), tone(2500.0, 0.2)], "u2": [tone(700.0, 0.25), tone(3100.0)]}
    ref_dir = make_ref_dir(tmp_path, refs, kmax=2)
    out_dir = tmp_path / "exp" / "oracle" / "decode_test_ss"
    for _ in range(2):  # a rerun replaces the dir whole
        oracle_mask.main(["--ref_dir", str(ref_dir), "--out_dir", str(out_dir), "--no_progress"])
    assert sorted(p.name for p in out_dir.iterdir()) == ["spk1.scp", "spk2.scp", "utt2num_src",
                                                        "wavs"]
    assert (out_dir / "utt2num_src").read_text() == "u1 2\nu2 2\n"
    assert len(list((out_dir / "wavs").iterdir())) == 4
    assert not [p for p in out_dir.parent.iterdir() if p.name.startswith(".")]
    res = use_scoring.score_ss_dir(ref_dir, out_dir, progress=False)
    assert res["summary"]["by_num_sources"]["2"]["si_snri_all_refs"]["mean"] > 10.0
    assert res["summary"]["counting"]["accuracy"] == 1.0
    assert res["summary"]["separation"]["equal"] == 1.0


def test_oracle_irm_sums_to_mixture():
    refs = [tone(300.0), noise(3, 0.1)]
    mix = refs[0] + refs[1]
    est = oracle_mask.oracle_irm(mix, refs, n_fft=256, hop_length=64)
    assert est.shape == (2, T)
    # Ratio masks sum to one, so the estimates add back up to the mixture.
    assert np.allclose(est.sum(axis=0), mix, atol=1e-6)


# --- plots -----------------------------------------------------------------

def test_plot_spectrograms_writes_png(tmp_path):
    from PIL import Image

    a, b = tone(300.0), tone(2500.0)
    path = plot.plot_spectrograms(a + b, [a, b], [b, a, 0.01 * a], FS, tmp_path / "p" / "x.png")
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] > 100 and img.size[1] > 100
    with pytest.raises(ValueError, match="titles"):
        plot.plot_spectrograms(a + b, [a], [b], FS, tmp_path / "y.png", titles=["only one"])


def test_plot_cli_draws_first_utterances(ss_case):
    root, ref_dir, est_dir = ss_case
    paths = plot.main(["--ref_dir", str(ref_dir), "--est_dir", str(est_dir),
                       "--out_dir", str(root / "plots"), "--num", "2"])
    assert [p.name for p in paths] == ["utt1.png", "utt2.png"]
    assert all(p.stat().st_size > 0 for p in paths)


def test_match_by_extraction_study_on_hand_made_case(tmp_path):
    """local/match_by_extraction.py: the attractors' pick and the extraction's pick are each
    checked against PIT's assignment, and what each returns is scored against the target."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "egs2" / "mini_use" / "use1" / "local"))
    import match_by_extraction as study_mod

    a, b, c = tone(300.0), noise(1, 0.2), tone(2100.0, 0.15)
    ref_dir = make_ref_dir(tmp_path, {"u1": [a, b], "u2": [c, b]}, kmax=2)
    # Separated sources: u1 in swapped order, u2 in order.
    ss_dir = make_est_dir(tmp_path, "ss", {"u1": [b + noise(20, 1e-3), a + noise(21, 1e-3)],
                                           "u2": [c + noise(22, 1e-3), b + noise(23, 1e-3)]},
                          counts={"u1": 2, "u2": 2})
    # The target (source 1) of u1: its cue is most similar to the wrong attractor (index 0);
    # u2's cue picks the right one.
    (ss_dir / "cue_similarity").write_text("u1 1 0.9 0.1\nu2 1 0.8 0.2\n")
    use_scoring.main(["--mode", "ss", "--ref_dir", str(ref_dir), "--est_dir", str(ss_dir),
                      "--no_progress", "--compute_sdr", "false"])
    # The extractions resemble the targets (u1's a, u2's c) with some of the other source left.
    tse_dir = make_est_dir(tmp_path, "tse", {"u1": [a + 0.3 * b], "u2": [c + 0.3 * b]})
    out = study_mod.study(ref_dir, ss_dir, tse_dir)
    rows = {r["utt"]: r for r in out["rows"]}
    assert rows["u1"]["assigned"] == 1 and rows["u1"]["by_attractor"] == 0 and rows["u1"]["by_extraction"] == 1
    assert not rows["u1"]["attractor_right"] and rows["u1"]["extraction_right"]
    assert rows["u2"]["attractor_right"] and rows["u2"]["extraction_right"]
    assert out["matching_attractor"]["mean"] == pytest.approx(50.0)
    assert out["matching_extraction"]["mean"] == pytest.approx(100.0)
    # u1's wrong pick returns source b: far below the right pick, which the extraction found.
    assert rows["u1"]["si_snri_attractor_pick"] < 0 < rows["u1"]["si_snri_extraction_pick"]
    assert rows["u2"]["si_snri_attractor_pick"] == pytest.approx(rows["u2"]["si_snri_extraction_pick"])
    # The extraction keeps 0.3 b: better than the mixture, worse than the clean picks.
    assert 0 < rows["u2"]["si_snri_extracted"] < rows["u2"]["si_snri_extraction_pick"]
    (ss_dir / "scores.json").unlink()
    with pytest.raises(DataDirError, match=r"ss/scores\.json: missing"):
        study_mod.study(ref_dir, ss_dir, tse_dir)
