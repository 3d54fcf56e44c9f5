"""Audio I/O: reading any file (soundfile, else PyAV), resampling, loudness."""
import math
import os
from typing import List, Tuple, Union

import numpy as np
import soundfile

PathLike = Union[str, os.PathLike]
SILENCE_RMS = 1e-8  # FUSS's rule: quieter than this is no source at all


def rms(x: np.ndarray) -> float:
    """RMS without a float64 copy of the signal (long recordings stay in memory once)."""
    return float(np.linalg.norm(x)) / np.sqrt(max(len(x), 1))


class _NoAudioStream(ValueError):
    """A container PyAV opened that holds no audio (its message is already final)."""


def _decode_with_av(path: str) -> Tuple[np.ndarray, int]:
    """The first audio stream of any container (mp3, m4a, mp4, ...) as float32 [T, C]."""
    import av  # PyAV: only files soundfile cannot read need it

    chunks: List[np.ndarray] = []
    with av.open(path) as container:
        if not container.streams.audio:
            raise _NoAudioStream(f"{path}: has no audio stream; expected an audio file or a video with sound")
        stream = container.streams.audio[0]
        fs = stream.rate
        # Planar float output whatever the codec's sample format: frames are [C, n].
        resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=fs)
        for frame in container.decode(stream):
            chunks += [out.to_ndarray() for out in resampler.resample(frame)]
        chunks += [out.to_ndarray() for out in resampler.resample(None)]  # flush
    if not chunks:
        return np.zeros((0, 1), dtype=np.float32), int(fs)
    return np.concatenate(chunks, axis=1).T.astype(np.float32), int(fs)  # [T, C]


def read_audio(path: PathLike, dtype: str = "float32") -> Tuple[np.ndarray, int]:
    """Read a file's audio as [T, C] (float32, or ``dtype``) and its sample rate.

    This is the package's one audio reader: wav/flac/... through soundfile, any other
    container (mp3, m4a, mp4 videos) through PyAV.

    Raises:
        FileNotFoundError: no such file.
        ValueError: neither soundfile nor PyAV can decode it (the message names it).
    """
    path = str(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such audio file")
    try:
        wav, fs = soundfile.read(path, dtype=dtype, always_2d=True)
        return wav, int(fs)
    except (RuntimeError, soundfile.LibsndfileError):
        pass
    try:
        wav, fs = _decode_with_av(path)
        return wav.astype(dtype, copy=False), fs
    except _NoAudioStream:
        raise
    except Exception as e:  # PyAV raises many kinds (some subclass ValueError); all mean "cannot decode"
        raise ValueError(f"{path}: not an audio file that soundfile or PyAV can decode ({e})") from None


def resample(x: np.ndarray, orig_fs: int, new_fs: int) -> np.ndarray:
    """Polyphase resampling along the first axis ([T] or [T, C]), float32."""
    if orig_fs == new_fs:
        return x
    from scipy.signal import resample_poly

    g = math.gcd(int(orig_fs), int(new_fs))
    return resample_poly(x, int(new_fs) // g, int(orig_fs) // g, axis=0).astype(np.float32)


def load_mono(path: PathLike, fs: int) -> np.ndarray:
    """A file's audio as mono float32 [T] at ``fs`` (channels averaged)."""
    wav, orig_fs = read_audio(path)
    return resample(wav.mean(axis=1), orig_fs, fs)
