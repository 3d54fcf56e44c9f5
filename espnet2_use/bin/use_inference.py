"""Decoding of a data directory with a trained USE model (recipe stage 6).

One run loads the model and the data once and decodes several *tasks*, each into
its own folder ``<output_dir>/<task>/`` in the layout of
egs2/TEMPLATE/use1/README.md ("Decoding output"):

- ``ss``: separation, the EDA counts the sources (unknown count);
- ``ss_oracle``: separation with the true count (utt2num_src);
- ``tse:<cues>``: extraction of every source that has one of the cues, with the
  cue modalities joined by ``+`` (``tse:label``, ``tse:text+video``, ...).

Cue inputs are read from the data directory: labels (``label_spk{k}``) and spm
captions (``text_spk{k}``) through the model's own encoders, cached features of
frozen encoders (``text_emb_spk{k}.scp``, ``video_emb_spk{k}.scp``) with kaldiio,
audio examples from ``enroll_spk{k}.scp``. A derived cue (the span, ``span_spk{k}``)
without its file is read off the reference ``spk{k}.scp`` (without jitter: the span
a user would point at).

Example:
    python -m espnet2_use.bin.use_inference --exp_dir exp/use_stage2 \\
        --data_dir dump/raw/test_ss --output_dir exp/use_stage2/decode_test_ss \\
        --tasks ss ss_oracle --key_file split/keys.1
"""
import argparse
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import kaldiio
import numpy as np
import torch
from tqdm import tqdm

from espnet2_use.data.kaldi_dir import read_kaldi_text, write_kaldi_text
from espnet2_use.data.layout import REFERENCE, cue_file
from espnet2_use.model.inference import EXTRACT_LEVELS
from espnet2_use.inference import USE, prepare_audio
from espnet2_use.scoring.plot import plot_decoding_dir
from espnet2_use.utils.audio import read_audio
from espnet2_use.utils.fileio import atomic_write_text, atomic_write_wav


def parse_task(task: str) -> Tuple[str, Tuple[str, ...]]:
    """``ss`` / ``ss_oracle`` / ``tse:a+b`` -> (kind, cue modalities)."""
    if task in ("ss", "ss_oracle"):
        return task, ()
    if task.startswith("tse:") and len(task) > 4:
        return "tse", tuple(task[4:].split("+"))
    raise ValueError(f"unknown task {task!r}: expected ss, ss_oracle or tse:<cue>[+<cue>...]")


def task_dir_name(task: str) -> str:
    return task.replace(":", "_").replace("+", "_")


class CueReader:
    """Reads the cues of source k of an utterance from a data directory as model inputs."""

    def __init__(self, use: USE, data_dir: Path, max_num_src: int):
        self.net = use.model.cue_network
        self.use = use
        self.files: Dict[Tuple[str, int], Dict[str, str]] = {}
        self.derived: Dict[Tuple[str, int], Dict[str, str]] = {}  # (modality, k) -> references
        if self.net is None:
            return
        for modality in self.net.modalities:
            for k in range(1, max_num_src + 1):
                cached = self.net.encoders[modality].cached
                row = cue_file(modality, cached)
                path = data_dir / row.file_name(k)
                ref = data_dir / REFERENCE.file_name(k)
                if path.is_file():
                    self.files[(modality, k)] = read_kaldi_text(path)
                elif row.derived and ref.is_file():
                    self.derived[(modality, k)] = read_kaldi_text(ref)

    def modalities_present(self) -> List[str]:
        return sorted({m for m, _ in self.files} | {m for m, _ in self.derived})

    def read(self, utt: str, k: int, modalities: Sequence[str]) -> Dict[str, np.ndarray]:
        """modality -> model input (absent cues are left out)."""
        out = {}
        for modality in modalities:
            encoder = self.net.encoders[modality]
            if (modality, k) in self.derived:
                ref = self.derived[(modality, k)].get(utt, "")
                if not ref:
                    continue
                wav, fs = read_audio(ref)
                if wav.shape[0] == 0:  # an absent source's silence entry
                    continue
                x = encoder.derive(prepare_audio(wav, fs, self.use.fs, name=ref), jitter=False)
                if x.shape[0]:
                    out[modality] = x
                continue
            value = self.files.get((modality, k), {}).get(utt, "")
            if not value:
                continue
            x = kaldiio.load_mat(value) if encoder.cached else encoder.extract(value)
            if x.shape[0]:  # an absent source's cue (an empty value, the silence entry)
                out[modality] = x
        return out

    def batch(self, utt: str, k: int, modalities: Sequence[str]) -> Dict[str, torch.Tensor]:
        """Source k's cues as training-style batch entries (batch of one)."""
        entries = {}
        for modality, x in self.read(utt, k, modalities).items():
            name = self.net.data_name(modality, k)
            tensor = torch.from_numpy(np.array(x)).to(self.use.device)[None]  # a writable copy
            entries[name] = tensor
            entries[f"{name}_lengths"] = torch.tensor([tensor.size(1)], device=self.use.device)
        return entries


class TaskWriter:
    """Collects one task's outputs; writes its text files whole at the end."""

    def __init__(self, out_dir: Path, fs: int):
        self.out_dir = out_dir
        self.wav_dir = out_dir / "wavs"
        self.wav_dir.mkdir(parents=True, exist_ok=True)
        self.fs = fs
        self.scp: Dict[int, Dict[str, str]] = {}
        self.texts: Dict[str, Dict[str, str]] = {}
        self.lines: Dict[str, List[str]] = {}

    def wav(self, utt: str, k: int, signal: np.ndarray) -> None:
        path = self.wav_dir / f"{utt}_spk{k}.wav"
        atomic_write_wav(path, signal, self.fs)
        self.scp.setdefault(k, {})[utt] = str(path)

    def text(self, name: str, utt: str, value: str) -> None:
        self.texts.setdefault(name, {})[utt] = value

    def line(self, name: str, line: str) -> None:
        """A free-form line (several per utterance), written sorted."""
        self.lines.setdefault(name, []).append(line)

    def close(self) -> None:
        for k, mapping in self.scp.items():
            write_kaldi_text(self.out_dir / REFERENCE.file_name(k), mapping)
        for name, mapping in self.texts.items():
            write_kaldi_text(self.out_dir / name, mapping)
        for name, lines in self.lines.items():
            atomic_write_text(self.out_dir / name, "".join(x + "\n" for x in sorted(lines)))


def decode(
    use: USE,
    data_dir: Path,
    output_dir: Path,
    tasks: Sequence[str],
    keys: Optional[Sequence[str]] = None,
    num_plots: int = 0,
    tse_level: str = "separation",
) -> None:
    """Decode ``data_dir`` for every task into ``output_dir/<task>/``; with
    ``num_plots``, also draw spectrograms of the first decoded utterances into
    ``output_dir/<task>/plots/``. ``tse_level`` sets the level of extracted
    targets (``USEInference.extract``)."""
    parsed = [(task, *parse_task(task)) for task in tasks]
    wavs = read_kaldi_text(data_dir / "wav.scp")
    keys = list(keys) if keys is not None else sorted(wavs)
    missing = [k for k in keys if k not in wavs]
    if missing:
        raise ValueError(f"{data_dir}/wav.scp lacks {len(missing)} listed utterances, e.g. {missing[0]}")
    counts_file = data_dir / "utt2num_src"
    counts = {u: int(v) for u, v in read_kaldi_text(counts_file).items()} if counts_file.is_file() else {}
    K = use.model.max_num_src
    reader = CueReader(use, data_dir, K)
    cue_modalities = reader.modalities_present()
    writers = {task: TaskWriter(output_dir / task_dir_name(task), use.fs) for task in tasks}
    for task, kind, modalities in parsed:
        if kind == "ss_oracle" and not counts:
            raise ValueError(f"task ss_oracle needs {counts_file}")
        unknown = [m for m in modalities if m not in (use.model.cue_network.modalities if use.model.cue_network else [])]
        if unknown:
            raise ValueError(f"task {task}: the model has no {unknown} cue encoder")

    for utt in tqdm(keys, desc=f"decode {data_dir.name}", mininterval=5):
        wav = prepare_audio(wavs[utt], None, use.fs)
        speech = torch.from_numpy(wav).to(use.device)[None]
        for task, kind, modalities in parsed:
            writer = writers[task]
            if kind in ("ss", "ss_oracle"):
                cue_batch = {}
                for k in range(1, counts.get(utt, K) + 1):  # the sources that exist
                    cue_batch.update(reader.batch(utt, k, cue_modalities))
                out = use.model.separate(
                    speech, num_src=counts[utt] if kind == "ss_oracle" else None,
                    cue_batch=cue_batch or None,
                )
                n = int(out["counts"][0])
                for s in range(n):
                    writer.wav(utt, s + 1, out["sources"][0, s].cpu().numpy())
                writer.text("utt2num_src", utt, str(n))
                probs = out["existence_prob"][0].cpu().numpy()
                writer.text("utt2exist_prob", utt, " ".join(f"{p:.4f}" for p in probs))
                if "cue_similarity" in out and n > 0:
                    sims = out["cue_similarity"][0, :, :n].cpu().numpy()  # [K, n]
                    for k in out["cue_valid"][0].nonzero().flatten().tolist():
                        values = " ".join(f"{v:.4f}" for v in sims[k])
                        writer.line("cue_similarity", f"{utt} {k + 1} {values}")
            else:
                for k in range(1, K + 1):
                    inputs = reader.read(utt, k, modalities)
                    if not inputs:
                        continue
                    tensors = {}
                    for modality, x in inputs.items():
                        t = torch.from_numpy(np.asarray(x)).to(use.device)[None]
                        tensors[modality] = (t, torch.tensor([t.size(1)], device=use.device))
                    target = use.model.extract(speech, None, tensors, level=tse_level)["target"][0].cpu().numpy()
                    writer.wav(utt, k, target)
    for task, writer in writers.items():
        writer.close()
        if num_plots > 0 and writer.scp:
            plot_decoding_dir(data_dir, writer.out_dir, writer.out_dir / "plots", num=num_plots,
                              mode=parse_task(task)[0].replace("_oracle", ""), fs=use.fs)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--exp_dir", help="training directory (config.yaml + weights)")
    model.add_argument("--packed_model", help="a packed model (use_pack's zip file)")
    parser.add_argument("--model_file", default=None, help="weights file name inside --exp_dir")
    parser.add_argument("--data_dir", required=True, type=Path)
    parser.add_argument("--output_dir", required=True, type=Path)
    parser.add_argument("--tasks", nargs="+", required=True,
                        help="ss, ss_oracle, tse:<cue>[+<cue>...] (cues: text label video example span)")
    parser.add_argument("--key_file", default=None, help="decode only these utterances (one id per line)")
    parser.add_argument("--tse_level", default="separation", choices=EXTRACT_LEVELS,
                        help="how an extracted target's level is set: from the separated source "
                        "it most resembles, or by projecting the mixture onto it")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num_plots", type=int, default=0,
                        help="spectrogram PNGs of the first N utterances per task")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    args = get_parser().parse_args(cmd)
    for task in args.tasks:
        parse_task(task)
    if args.exp_dir:
        use = USE.from_exp(args.exp_dir, model_file=args.model_file, device=args.device)
    else:
        use = USE.from_packed(args.packed_model, device=args.device)
    keys = None
    if args.key_file:
        with open(args.key_file, encoding="utf-8") as f:
            keys = [line.split()[0] for line in f if line.strip()]
    # No gradients while decoding, and only while decoding: a caller that trains after
    # (compare.py runs several systems in one process) gets its autograd back.
    with torch.no_grad():
        decode(use, args.data_dir, args.output_dir, args.tasks, keys, args.num_plots, args.tse_level)


if __name__ == "__main__":
    main()
