"""Reading, trimming, cutting and de-duplicating the recorded clips of debian_sounds.

- ``list_package_files``: every sound file of an unpacked package, as paths relative to
  the package root; the files inside a Qt resource bundle (``.rcc``, GCompris) are
  listed as ``<bundle path>!<path inside>`` and read from the bundle.
- ``read_audio``: ogg/oga/wav/flac of any rate and channel count -> mono float64 at
  ``fs`` (channels averaged, soxr's resampler: deterministic).
- ``trim``: cut to where it sounds: from the first to the last 10 ms frame whose level
  is within ``TRIM_RANGE_DB`` of the loudest frame and above ``SILENCE_DBFS``.
- ``cut_segments``: a recording longer than ``max_dur`` gives up to ``max_segments``
  segments of ``max_dur`` (evenly spread, each trimmed again, silent ones dropped); all
  segments of a recording share its recording id, so they are never split apart.
- ``fingerprint`` / ``is_near_duplicate``: a level-free, coarse log-spectrogram (24
  log-spaced bands x 16 time slices); two clips of one class whose fingerprints have a
  cosine similarity of at least ``DUP_COSINE`` and lengths within 20 % are near
  duplicates (the same sample at another velocity, another copy of a file).
"""
import io
import struct
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import scipy.io.wavfile
import soundfile as sf
import soxr

AUDIO_SUFFIXES = (".ogg", ".oga", ".wav", ".flac")
RCC_SEP = "!"
FRAME_S = 0.01
TRIM_RANGE_DB = 40.0
SILENCE_DBFS = -55.0
DUP_COSINE = 0.995
DUP_LENGTH_RATIO = 0.8


class ClipError(ValueError):
    """A file that is not the audio (or bundle) it was expected to be."""


# ----------------------------------------------------------------------------
# Qt resource bundles
# ----------------------------------------------------------------------------
def read_rcc(path: Path) -> Dict[str, bytes]:
    """The files of a Qt resource bundle (rcc format versions 1-3, zlib or uncompressed).

    Returns:
        path inside the bundle -> file bytes.

    Raises:
        ClipError: naming the bundle when it is not a readable rcc file.
    """
    data = Path(path).read_bytes()
    if data[:4] != b"qres" or len(data) < 20:
        raise ClipError(f"{path}: not a Qt resource bundle (expected the magic 'qres')")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    if version not in (1, 2, 3):
        raise ClipError(f"{path}: rcc format version {version}; expected 1, 2 or 3")
    entry_size = 14 if version == 1 else 22
    out: Dict[str, bytes] = {}

    def name_at(offset: int) -> str:
        (length,) = struct.unpack(">H", data[names + offset : names + offset + 2])
        return data[names + offset + 6 : names + offset + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str, depth: int) -> None:
        if depth > 64:
            raise ClipError(f"{path}: rcc tree deeper than 64 levels (corrupt?)")
        at = tree + index * entry_size
        name_offset, flags = struct.unpack(">IH", data[at : at + 6])
        name = name_at(name_offset) if index else ""
        if flags & 2:  # directory
            count, first = struct.unpack(">II", data[at + 6 : at + 14])
            for child in range(count):
                walk(first + child, f"{prefix}{name}/" if index else "", depth + 1)
            return
        (offset,) = struct.unpack(">I", data[at + 10 : at + 14])
        (size,) = struct.unpack(">I", data[payload + offset : payload + offset + 4])
        blob = data[payload + offset + 4 : payload + offset + 4 + size]
        if flags & 4:
            raise ClipError(f"{path}: {prefix}{name} is zstd-compressed; only zlib bundles are read")
        if flags & 1:  # qCompress: 4-byte length, then zlib
            blob = zlib.decompress(blob[4:])
        out[prefix + name] = blob

    try:
        walk(0, "", 0)
    except (struct.error, zlib.error, UnicodeDecodeError) as err:
        raise ClipError(f"{path}: corrupt Qt resource bundle ({err})") from err
    return out


class PackageFiles:
    """The sound files (and rcc-bundled files) of one unpacked package.

    Args:
        root: the package folder (``<cache>/<name>_<version>``).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._bundles: Dict[str, Dict[str, bytes]] = {}

    def _bundle(self, rel: str) -> Dict[str, bytes]:
        if rel not in self._bundles:
            self._bundles[rel] = read_rcc(self.root / rel)
        return self._bundles[rel]

    def list(self) -> List[str]:
        """Sorted relative paths of every sound file, bundled ones as ``bundle!inner``."""
        out = []
        for path in sorted(self.root.rglob("*")):
            if not path.is_file():
                continue
            rel = path.relative_to(self.root).as_posix()
            if path.suffix.lower() in AUDIO_SUFFIXES:
                out.append(rel)
            elif path.suffix.lower() == ".rcc":
                out.extend(f"{rel}{RCC_SEP}{inner}" for inner in sorted(self._bundle(rel)) if Path(inner).suffix.lower() in AUDIO_SUFFIXES)
        return out

    def exists(self, rel: str) -> bool:
        """Whether ``rel`` (possibly ``bundle!inner``) is in the package."""
        if RCC_SEP in rel:
            bundle, inner = rel.split(RCC_SEP, 1)
            return (self.root / bundle).is_file() and inner in self._bundle(bundle)
        return (self.root / rel).is_file()

    def read_bytes(self, rel: str) -> bytes:
        """The bytes of a (possibly bundled) file."""
        if RCC_SEP in rel:
            bundle, inner = rel.split(RCC_SEP, 1)
            return self._bundle(bundle)[inner]
        return (self.root / rel).read_bytes()


# ----------------------------------------------------------------------------
# Audio
# ----------------------------------------------------------------------------
def read_audio(data: bytes, fs: int, name: str) -> np.ndarray:
    """Decode ogg/wav/flac bytes to mono float64 [T] at ``fs``.

    Raises:
        ClipError: naming ``name`` when the bytes are no audio libsndfile reads.
    """
    try:
        wave, rate = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)  # [T, C]
    except (RuntimeError, sf.LibsndfileError) as err:
        # Some game WAVs have a 'fmt ' chunk libsndfile rejects (a wrong size field)
        # that scipy's plain PCM reader accepts.
        try:
            rate, raw = scipy.io.wavfile.read(io.BytesIO(data))
        except (ValueError, EOFError) as err2:
            raise ClipError(f"{name}: not a readable ogg/wav/flac file ({err}; as plain PCM wav: {err2})") from err
        wave = _pcm_to_float(np.asarray(raw)).reshape(len(raw), -1)  # [T, C]
    if wave.shape[0] == 0:
        raise ClipError(f"{name}: no samples")
    mono = wave.mean(axis=1)  # [T]
    if rate != fs:
        mono = soxr.resample(mono, rate, fs, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float64)


def _pcm_to_float(raw: np.ndarray) -> np.ndarray:
    """Integer PCM (u8, s16, s32) or float samples to float64 in [-1, 1]."""
    if raw.dtype == np.uint8:
        return (raw.astype(np.float64) - 128.0) / 128.0
    if np.issubdtype(raw.dtype, np.integer):
        return raw.astype(np.float64) / float(-np.iinfo(raw.dtype).min)
    return raw.astype(np.float64)


def frame_levels_db(wave: np.ndarray, fs: int) -> np.ndarray:
    """RMS level (dBFS) of each 10 ms frame [F]."""
    hop = max(1, int(round(FRAME_S * fs)))
    num = int(np.ceil(len(wave) / hop))
    padded = np.zeros(num * hop)
    padded[: len(wave)] = wave
    power = np.mean(padded.reshape(num, hop) ** 2, axis=1)  # [F]
    return 10.0 * np.log10(power + 1e-20)


def trim(wave: np.ndarray, fs: int) -> Optional[Tuple[int, int]]:
    """Bounds ``(start, stop)`` in samples of where ``wave`` sounds; None when silent."""
    levels = frame_levels_db(wave, fs)
    peak = float(levels.max()) if len(levels) else -200.0
    if peak < SILENCE_DBFS:
        return None
    active = np.flatnonzero(levels >= max(peak - TRIM_RANGE_DB, SILENCE_DBFS))
    hop = max(1, int(round(FRAME_S * fs)))
    return int(active[0] * hop), int(min(len(wave), (active[-1] + 1) * hop))


def cut_segments(wave: np.ndarray, fs: int, min_dur: float, max_dur: float, max_segments: int) -> List[Tuple[int, int]]:
    """Trimmed, sounding segments of a recording (see the module docstring).

    Returns:
        ``(start, stop)`` sample bounds in ``wave``, in time order; empty when the
        recording is silent or sounds for less than ``min_dur``.
    """
    bounds = trim(wave, fs)
    if bounds is None:
        return []
    start, stop = bounds
    min_len, max_len = int(round(min_dur * fs)), int(round(max_dur * fs))
    if stop - start < min_len:
        return []
    if stop - start <= max_len:
        return [(start, stop)]
    count = min(max_segments, (stop - start) // max_len)
    # Evenly spread windows over the sounding part; each trimmed on its own.
    starts = np.linspace(start, stop - max_len, count).round().astype(int)
    segments = []
    for s0 in starts:
        inner = trim(wave[s0 : s0 + max_len], fs)
        if inner is not None and inner[1] - inner[0] >= min_len:
            segments.append((int(s0 + inner[0]), int(s0 + inner[1])))
    return segments


def fingerprint(wave: np.ndarray, fs: int) -> np.ndarray:
    """Level-free coarse log-spectrogram (24 bands x 16 slices), zero-mean, unit norm [384]."""
    n_fft = 256 if fs <= 8000 else 512
    hop = n_fft // 2
    x = np.zeros(max(len(wave), n_fft))
    x[: len(wave)] = wave
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]  # [F, n_fft]
    spec = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2  # [F, K]
    freqs = np.fft.rfftfreq(n_fft, 1.0 / fs)
    edges = np.geomspace(60.0, fs / 2, 25)
    band_idx = np.clip(np.searchsorted(edges, freqs) - 1, 0, 23)
    bands = np.zeros((spec.shape[0], 24))  # [F, 24]
    for b in range(24):
        sel = band_idx == b
        if sel.any():
            bands[:, b] = spec[:, sel].sum(axis=1)
    slices = np.array_split(np.arange(spec.shape[0]), 16)
    grid = np.stack([bands[s].mean(axis=0) if len(s) else np.zeros(24) for s in slices])  # [16, 24]
    feat = np.log10(grid + 1e-10 * (grid.max() + 1e-20)).ravel()
    feat -= feat.mean()
    norm = np.linalg.norm(feat)
    return feat / norm if norm > 0 else feat


def is_near_duplicate(fp_a: np.ndarray, len_a: int, fp_b: np.ndarray, len_b: int) -> bool:
    """Near duplicates: fingerprints' cosine >= DUP_COSINE and lengths within 20 %."""
    if min(len_a, len_b) < DUP_LENGTH_RATIO * max(len_a, len_b):
        return False
    return float(np.dot(fp_a, fp_b)) >= DUP_COSINE
