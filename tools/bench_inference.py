#!/usr/bin/env python3
"""Inference benchmark on the CPU: USE's separate() against ESPnet's SeparateSpeech.

In one run:
1. real-time factor (processing seconds per second of audio) of ``USE.separate`` for
   USE-S and USE-B (the mini_use size, randomly initialised: speed does not depend on
   the weights) and of ESPnet's ``SeparateSpeech`` with stock separators of matching
   size (Conv-TasNet ``tcn``, DPRNN), all on the same 60 s input, chunked alike
   (USE: --chunk s chunks with a quarter overlap; ESPnet: segment_size = chunk, the
   same hop);
2. peak extra memory (VmHWM minus the resident size before the call, in a forked
   child) of ``USE.separate`` on 1 min and 10 min inputs (target: 10 min <= 1.5x 1 min);
3. the cost of chunk stitching (source tracking and overlap-add) per minute of audio.

Usage: python tools/bench_inference.py [--chunk 10] [--threads 2] [--out bench.json]
"""
import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
import yaml

import espnet2_use  # noqa: F401
from bench_model import CONFIGS, NUM_SPK, build, rss_kb
from espnet2.bin.enh_inference import SeparateSpeech
from espnet2_use.espnet_model import USEModel
from espnet2_use.inference import USE, _SourceTracker, chunk_starts, chunk_windows

FS = 8000
USE_MODELS = ("use_s_small", "use_b_small")
ESPNET_MODELS = ("tcn_small", "dprnn_small")


def make_use(name: str) -> USE:
    encoder, separator, decoder = build(name)
    return USE(USEModel(encoder, separator, decoder, max_num_src=3), fs=FS)


def make_separate_speech(name: str, tmp: Path, chunk: float) -> SeparateSpeech:
    """A stock ESPnet enh model, saved and loaded the way SeparateSpeech loads models."""
    enc, enc_conf, sep, sep_conf, dec, dec_conf = CONFIGS[name]
    conf = dict(encoder=enc, encoder_conf=enc_conf, separator=sep, separator_conf=sep_conf,
                decoder=dec, decoder_conf=dec_conf, criterions=[dict(
                    name="si_snr", conf={}, wrapper="pit", wrapper_conf={})])
    from espnet2.tasks.enh import EnhancementTask

    args = EnhancementTask.get_parser().parse_args([])
    for key, value in conf.items():
        setattr(args, key, value)
    model = EnhancementTask.build_model(args)
    (tmp / "config.yaml").write_text(yaml.safe_dump(vars(args) | conf))
    torch.save(model.state_dict(), tmp / "model.pth")
    return SeparateSpeech(tmp / "config.yaml", tmp / "model.pth", segment_size=chunk,
                          hop_size=0.75 * chunk, normalize_segment_scale=False, device="cpu")


def rtf(fn, seconds: float) -> float:
    fn()  # warm-up on the same input
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) / seconds


def memory_child(name: str, minutes: float, chunk: float, threads: int, queue) -> None:
    torch.set_num_threads(threads)
    use = make_use(name)
    wav = np.random.default_rng(0).standard_normal(int(minutes * 60 * FS)).astype(np.float32) * 0.1
    base = rss_kb("VmRSS")
    t0 = time.perf_counter()
    use.separate(wav, fs=FS, num_sources=NUM_SPK, chunk_seconds=chunk)
    queue.put(dict(model=name, minutes=minutes, seconds=time.perf_counter() - t0,
                   peak_extra_MB=(rss_kb("VmHWM") - base) / 1024))


def stitching_cost(chunk: float, minutes: float = 1.0, sources: int = 3) -> float:
    """Seconds of tracking + overlap-add per minute of audio (model time excluded)."""
    n = int(minutes * 60 * FS)
    chunk_len, overlap = int(chunk * FS), int(chunk * FS / 4)
    starts = chunk_starts(n, chunk_len, overlap)
    rng = np.random.default_rng(0)
    pieces = [(s, rng.standard_normal((sources, len(w))).astype(np.float32),
               rng.standard_normal((sources, 64)).astype(np.float32), w)
              for s, w in zip(starts, chunk_windows(starts, chunk_len, n))]
    tracker = _SourceTracker(n)
    t0 = time.perf_counter()
    for s, est, att, w in pieces:
        tracker.add(s, est, att, np.ones(sources), None, w)
    return (time.perf_counter() - t0) / minutes


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunk", type=float, default=10.0, help="chunk length in seconds")
    parser.add_argument("--seconds", type=float, default=60.0, help="input length for the RTF")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    results: Dict[str, object] = {"threads": args.threads, "chunk_seconds": args.chunk}
    print(f"CPU, {args.threads} threads, torch {torch.__version__}; {args.chunk:g} s chunks, "
          f"{NUM_SPK} outputs; RTF on {args.seconds:g} s", flush=True)
    # Memory first: a child forked after the parent ran torch's thread pools can hang.
    ctx = mp.get_context("fork")
    memory = []
    print(f"{'model':<16}{'input':>8}{'time s':>9}{'peak extra MB':>15}")
    for name in USE_MODELS:
        for minutes in (1.0, 10.0):
            queue = ctx.Queue()
            proc = ctx.Process(target=memory_child, args=(name, minutes, args.chunk, args.threads, queue))
            proc.start()
            proc.join()
            if proc.exitcode != 0 or queue.empty():
                print(f"{name:<16}{minutes:>7g}m  failed (exit code {proc.exitcode})")
                continue
            row = queue.get()
            memory.append(row)
            print(f"{name:<16}{minutes:>7g}m{row['seconds']:>9.1f}{row['peak_extra_MB']:>15.0f}", flush=True)
        one, ten = [r["peak_extra_MB"] for r in memory if r["model"] == name][-2:]
        print(f"{name:<16} 10 min / 1 min peak memory: {ten / one:.2f}x (target <= 1.5x)")
    results["memory"] = memory

    torch.set_num_threads(args.threads)
    wav = np.random.default_rng(0).standard_normal(int(args.seconds * FS)).astype(np.float32) * 0.1
    print(f"\n{'model':<16}{'toolkit call':<34}{'RTF':>8}")
    rows = []
    with torch.no_grad():
        for name in USE_MODELS:
            use = make_use(name)
            value = rtf(lambda: use.separate(wav, fs=FS, num_sources=NUM_SPK, chunk_seconds=args.chunk),
                        args.seconds)
            rows.append(dict(model=name, call="espnet2_use USE.separate", rtf=value))
        with tempfile.TemporaryDirectory() as tmp:
            for name in ESPNET_MODELS:
                sub = Path(tmp) / name
                sub.mkdir()
                separate = make_separate_speech(name, sub, args.chunk)
                value = rtf(lambda: separate(wav[None], fs=FS), args.seconds)
                rows.append(dict(model=name, call="espnet2 SeparateSpeech", rtf=value))
    for row in rows:
        print(f"{row['model']:<16}{row['call']:<34}{row['rtf']:>8.3f}", flush=True)
    results["rtf"] = rows

    cost = stitching_cost(args.chunk)
    results["stitching_seconds_per_minute"] = cost
    print(f"\nchunk stitching (tracking + overlap-add, 3 sources): {cost * 1000:.1f} ms per minute of audio")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
