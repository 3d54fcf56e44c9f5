#!/usr/bin/env python3
"""Benchmark USE-S / USE-B against ESPnet separators on the CPU.

For each model: parameters, forward and forward+backward time per second of audio,
peak extra memory of one forward+backward, and for USE the share of forward time
spent in the EDA attractor (target: <= 10 % of the backbone's time).

Each configuration runs in a forked child, so its peak memory (VmHWM minus the
resident size at the fork) is its own. Timings are medians over ``--repeats`` runs
after one warm-up.

Usage:
    python tools/bench_model.py [--seconds 4] [--fs 8000] [--repeats 3] [--threads 2]
        [--only use_s_small,tcn_small] [--out bench.json]
"""
import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch
import yaml

import espnet2_use  # noqa: F401  (registers separator "use")
from espnet2.tasks.enh import decoder_choices, encoder_choices, separator_choices

NUM_SPK = 2
REPO = Path(__file__).resolve().parents[1]

# name: (encoder, encoder_conf, separator, separator_conf, decoder, decoder_conf)
CONV = lambda n: dict(channel=n, kernel_size=16, stride=8)  # noqa: E731
STFT = lambda n_fft, hop: dict(n_fft=n_fft, hop_length=hop)  # noqa: E731
CONFIGS: Dict[str, tuple] = {
    "use_s_tiny": ("conv", CONV(32), "use", dict(backbone="use_s", backbone_conf=dict(
        latent_dim=32, emb_dim=32, chunk_size=100, num_heads=4, ffn_dim=64,
        num_pre_blocks=1, num_post_blocks=1)), "conv", CONV(32)),
    "use_s_small": ("conv", CONV(64), "use", dict(backbone="use_s", backbone_conf=dict(
        latent_dim=64, emb_dim=64, chunk_size=100, num_heads=4, ffn_dim=256,
        num_pre_blocks=2, num_post_blocks=1)), "conv", CONV(64)),
    "use_b_tiny": ("stft", STFT(256, 64), "use", dict(backbone="use_b", backbone_conf=dict(
        fs=8000, latent_dim=16, emb_dim=32, num_bands=12, num_pre_blocks=1,
        num_post_blocks=1)), "stft", STFT(256, 64)),
    "use_b_small": ("stft", STFT(256, 64), "use", dict(backbone="use_b", backbone_conf=dict(
        fs=8000, latent_dim=32, emb_dim=64, num_bands=16, num_pre_blocks=3,
        num_post_blocks=1)), "stft", STFT(256, 64)),
    # ESPnet separators at sizes comparable to USE small / paper
    "tcn_small": ("conv", CONV(64), "tcn", dict(layer=8, stack=2, bottleneck_dim=64,
                  hidden_dim=128, kernel=3, num_spk=NUM_SPK), "conv", CONV(64)),
    "tcn_paper": ("conv", CONV(512), "tcn", dict(layer=8, stack=3, bottleneck_dim=128,
                  hidden_dim=512, kernel=3, num_spk=NUM_SPK), "conv", CONV(512)),
    "dprnn_small": ("conv", CONV(64), "dprnn", dict(rnn_type="lstm", layer=3, unit=64,
                    segment_size=100, num_spk=NUM_SPK), "conv", CONV(64)),
    "dprnn_paper": ("conv", CONV(64), "dprnn", dict(rnn_type="lstm", layer=6, unit=128,
                    segment_size=100, num_spk=NUM_SPK), "conv", CONV(64)),
    # TF-GridNetV2 runs its own STFT: ESPnet pairs it with the "same" encoder/decoder.
    "tfgridnetv2_small": ("same", {}, "tfgridnetv2", dict(
        n_srcs=NUM_SPK, n_fft=128, stride=64, emb_dim=16, lstm_hidden_units=32,
        n_layers=2, attn_n_head=2), "same", {}),
    "tfgridnetv2_paper": ("same", {}, "tfgridnetv2", dict(
        n_srcs=NUM_SPK, n_fft=128, stride=64, emb_dim=48, lstm_hidden_units=192,
        n_layers=4, attn_n_head=4), "same", {}),
}


# Paper sizes: the recipes' own training configs, so that the timed model is the trained one.
RECIPE_CONFIGS = {
    "use_s_paper": REPO / "egs2/audioset/use1/conf/tuning/train_use_s_stage1.yaml",
    "use_b_paper": REPO / "egs2/librimix/use1/conf/tuning/train_use_b_k2_stage1.yaml",
}


def from_recipe(path: Path) -> tuple:
    """A CONFIGS entry from a recipe's training config (the task hands it sample_rate)."""
    from espnet2_use.tasks.use import separator_conf_with_rate

    with open(path, encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    args = argparse.Namespace(separator_conf=conf["separator_conf"],
                              sample_rate=conf.get("sample_rate"))
    return (conf["encoder"], conf["encoder_conf"], conf["separator"],
            separator_conf_with_rate(args), conf["decoder"], conf["decoder_conf"])


CONFIGS.update({name: from_recipe(path) for name, path in RECIPE_CONFIGS.items()})


def build(name: str):
    enc, enc_conf, sep, sep_conf, dec, dec_conf = CONFIGS[name]
    encoder = encoder_choices.get_class(enc)(**enc_conf)
    separator = separator_choices.get_class(sep)(encoder.output_dim, **sep_conf)
    decoder = decoder_choices.get_class(dec)(**dec_conf)
    return encoder, separator, decoder


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def measure(name: str, seconds: float, fs: int, repeats: int, threads: int, queue) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    base_rss = rss_kb("VmRSS")
    encoder, separator, decoder = build(name)
    params = sum(p.numel() for m in (encoder, separator, decoder) for p in m.parameters())
    wav = torch.randn(1, int(seconds * fs))
    lens = torch.tensor([wav.size(1)])

    def forward():
        feats, flens = encoder(wav, lens)
        masked, _, _ = separator(feats, flens, {"num_spk": NUM_SPK} if name.startswith("use") else None)
        return [decoder(m, lens)[0] for m in masked]

    def forward_backward():
        out = forward()
        sum(o.pow(2).mean() for o in out).backward()

    with torch.no_grad():
        t_fwd = median_time(forward, repeats)
    t_fb = median_time(forward_backward, repeats)
    result = dict(model=name, params_M=params / 1e6, fwd_s_per_audio_s=t_fwd / seconds,
                  fwd_bwd_s_per_audio_s=t_fb / seconds,
                  peak_extra_MB=(rss_kb("VmHWM") - base_rss) / 1024)
    if name.startswith("use"):
        # Time the separator's parts: trunk, EDA, mask head (+ backbone tail).
        with torch.no_grad():
            feats, flens = encoder(wav, lens)
            trunk = separator.encode(feats, flens)
            t_trunk = median_time(lambda: separator.encode(feats, flens), repeats)
            t_eda = median_time(lambda: separator.attractors(trunk, NUM_SPK + 1), repeats)
            att, _ = separator.attractors(trunk, NUM_SPK + 1)
            index = torch.zeros(NUM_SPK, dtype=torch.long)
            t_mask = median_time(lambda: separator.mask(trunk, feats, att[0, :NUM_SPK], index), repeats)
        result.update(eda_frames=int(trunk.emb_lens[0]),
                      eda_share_of_backbone=t_eda / (t_trunk + t_mask))
    queue.put(result)


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--fs", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="", help="comma-separated config names")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(CONFIGS)
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown configs {unknown}; choose from {list(CONFIGS)}")
    ctx = mp.get_context("fork")
    rows = []
    print(f"{args.seconds:g} s of {args.fs} Hz audio, batch 1, {NUM_SPK} outputs, "
          f"{args.threads} threads, CPU ({torch.__version__})", flush=True)
    header = f"{'model':<20}{'params(M)':>10}{'fwd s/s':>10}{'fwd+bwd s/s':>13}{'peak MB':>9}{'EDA share':>11}"
    print(header)
    for name in names:
        queue = ctx.Queue()
        proc = ctx.Process(target=measure, args=(name, args.seconds, args.fs, args.repeats, args.threads, queue))
        proc.start()
        proc.join()
        if proc.exitcode != 0 or queue.empty():
            print(f"{name:<20} failed (exit code {proc.exitcode}); see the traceback above", flush=True)
            continue
        row = queue.get()
        rows.append(row)
        eda = f"{100 * row['eda_share_of_backbone']:.1f}%" if "eda_share_of_backbone" in row else "-"
        print(f"{name:<20}{row['params_M']:>10.2f}{row['fwd_s_per_audio_s']:>10.3f}"
              f"{row['fwd_bwd_s_per_audio_s']:>13.3f}{row['peak_extra_MB']:>9.0f}{eda:>11}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1:])
