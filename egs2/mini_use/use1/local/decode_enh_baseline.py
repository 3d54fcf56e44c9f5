#!/usr/bin/env python3
"""Decode a data directory with an ESPnet enh model (the Conv-TasNet baseline) into the
decoding layout of egs2/TEMPLATE/use1/README.md, so that use_scoring scores it like USE.

Usage: local/decode_enh_baseline.py --exp_dir exp/tcn_baseline --data_dir dump/raw/test_ss_2src \
           --output_dir exp/tcn_baseline/decode_test_ss_2src/ss
"""
import argparse
import sys
from pathlib import Path

import soundfile as sf
import torch
from tqdm import tqdm

from espnet2.bin.enh_inference import SeparateSpeech
from espnet2_use.data.kaldi_dir import read_kaldi_text, write_kaldi_text
from espnet2_use.utils.fileio import atomic_write_wav


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, required=True)
    parser.add_argument("--model_file", default="valid.loss.best.pth")
    parser.add_argument("--data_dir", type=Path, required=True)
    parser.add_argument("--output_dir", type=Path, required=True)
    args = parser.parse_args(argv)
    separate = SeparateSpeech(args.exp_dir / "config.yaml", args.exp_dir / args.model_file,
                              normalize_output_wav=False, device="cpu")
    wavs = read_kaldi_text(args.data_dir / "wav.scp")
    (args.output_dir / "wavs").mkdir(parents=True, exist_ok=True)
    scp, counts = {}, {}
    with torch.no_grad():
        for utt, path in tqdm(sorted(wavs.items()), desc="decode", mininterval=5):
            mix, fs = sf.read(path, dtype="float32")
            outputs = separate(mix[None], fs=fs)
            for k, est in enumerate(outputs, 1):
                out = args.output_dir / "wavs" / f"{utt}_spk{k}.wav"
                atomic_write_wav(out, est[0], fs)
                scp.setdefault(k, {})[utt] = str(out)
            counts[utt] = str(len(outputs))
    for k, mapping in scp.items():
        write_kaldi_text(args.output_dir / f"spk{k}.scp", mapping)
    write_kaldi_text(args.output_dir / "utt2num_src", counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
