"""Running a trained count peer over a data dir: its ``utt2num_src``."""
from pathlib import Path
from typing import Dict, Union

import soundfile as sf
import torch

from espnet2_use.counting.dynamic_mixing import _read_map
from espnet2_use.counting.logmel_cnn_counter import LogMelCNNCounter
from espnet2_use.utils.fileio import atomic_write_text


def load_counter(path: Union[str, Path]) -> LogMelCNNCounter:
    """The counter saved by the trainer as ``model.pth``, in evaluation mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no trained count peer here (train_counter writes model.pth)")
    saved = torch.load(path, map_location="cpu", weights_only=False)
    model = LogMelCNNCounter(sample_rate=saved["sample_rate"], num_tags=len(saved["labels"]),
                             max_num_src=saved["max_num_src"], **saved["model_conf"])
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def read_counts(path: Path) -> Dict[str, int]:
    out = {}
    for utt, n in _read_map(path).items():
        try:
            out[utt] = int(n)
        except ValueError:
            raise ValueError(f"{path}: utterance {utt!r} has count {n!r}, not an integer") from None
    return out


@torch.no_grad()
def count_utterances(model: LogMelCNNCounter, data_dir: Path) -> Dict[str, int]:
    """The count of every mixture of ``data_dir/wav.scp`` (whole, one at a time)."""
    scp = data_dir / "wav.scp"
    if not scp.is_file():
        raise FileNotFoundError(f"{scp}: missing (the mixtures to count)")
    counts = {}
    for utt, path in sorted(_read_map(scp).items()):
        wav, fs = sf.read(path, dtype="float32", always_2d=False)
        if fs != model.sample_rate:
            raise ValueError(f"{scp}: {utt!r} ({path}) has rate {fs}, the counter {model.sample_rate}")
        if wav.ndim != 1:
            raise ValueError(f"{scp}: {utt!r} ({path}) is not mono")
        counts[utt] = int(model.count(torch.from_numpy(wav)[None])[0])
    return counts


def count_dir(model_path: Union[str, Path], data_dir: Union[str, Path], out_dir: Union[str, Path]) -> Dict[str, int]:
    """Count ``data_dir``'s mixtures with the counter at ``model_path``; writes
    ``out_dir/utt2num_src`` (atomically) and returns the counts."""
    model = load_counter(model_path)
    counts = count_utterances(model, Path(data_dir))
    atomic_write_text(Path(out_dir) / "utt2num_src", "".join(f"{u} {n}\n" for u, n in sorted(counts.items())))
    return counts
