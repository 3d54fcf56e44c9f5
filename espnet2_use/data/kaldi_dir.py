"""Kaldi-style data and decoding directories: the one reader and writer of the package.

Files are UTF-8, ``<utt-id> <value>`` per line (the value may be empty), sorted by
utterance id (``LC_ALL=C sort``, which for UTF-8 text is Python's ``str`` order). The
per-source files and their names are the table of :mod:`espnet2_use.data.layout`:

- a data set ``data/<set>/``: ``wav.scp``, ``spk{k}.scp`` (an absent source is a
  zero-length wav), ``utt2num_src`` and the cue files;
- a decoding dir ``exp/<model>/decode_<set>/<mode>/``: ``spk{k}.scp`` (an utterance
  appears only in the files of the estimates it has), and for SS ``utt2num_src``
  (estimated count) and ``cue_similarity``.

``parse_kaldi_text`` collects problems (the validator, :mod:`espnet2_use.data.validate`,
reports them all); ``read_kaldi_text`` raises ``ValueError`` on them; ``read_kaldi_map``
and the set readers (``ReferenceSet``, ``EstimateSet``, used by scoring) raise
:class:`DataDirError` naming the file, the line or utterance, and what was expected.
Audio values are plain file paths (relative paths resolve against the current
directory, the recipe root, as in Kaldi) or kaldiio ``.ark[:offset]`` entries as
ESPnet's ``format_wav_scp`` writes them.
"""
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

import numpy as np

from espnet2_use.data.layout import REFERENCE
from espnet2_use.utils.audio import read_audio
from espnet2_use.utils.fileio import atomic_write_text

PathLike = Union[str, "os.PathLike[str]"]

# `<key>` alone (empty value) or `<key><blanks><value>`; trailing blanks are not part of it.
_LINE_RE = re.compile(r"^(\S+)(?:[ \t]+(.*?))?[ \t]*$")
_ARK = re.compile(r".*\.ark(:\d+)?$")

class KaldiLine(NamedTuple):
    """One parsed line of a Kaldi text file.

    Args:
        lineno: 1-based line number.
        key: The utterance id (first field).
        value: The rest of the line, without the separating and trailing blanks; may be "".
    """

    lineno: int
    key: str
    value: str


def parse_kaldi_text(path: PathLike) -> Tuple[List[KaldiLine], List[str]]:
    """Parse a Kaldi text file, collecting problems instead of raising on them.

    A line is ``<key>`` or ``<key> <value>`` (blanks are spaces or tabs; the value is the
    whole rest of the line, inner spaces kept). A final ``\\r`` (CRLF files) is dropped.
    Empty lines, lines that start with a blank, and lines that are not UTF-8 are problems
    and left out of the result; a key seen before is a problem too (the first one is kept).

    Args:
        path: The file.

    Returns:
        The well-formed lines in file order, and the problems, each naming the file and line.

    Raises:
        OSError: The file cannot be read.
    """
    lines: List[KaldiLine] = []
    problems: List[str] = []
    first_line: Dict[str, int] = {}
    raw = Path(path).read_bytes()
    chunks = raw.split(b"\n")
    if chunks and chunks[-1] == b"":
        chunks.pop()  # the newline that ends the last line
    for lineno, chunk in enumerate(chunks, start=1):
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as error:
            problems.append(f"{path} line {lineno}: not UTF-8 ({error.reason}): {chunk!r}")
            continue
        text = text[:-1] if text.endswith("\r") else text
        match = _LINE_RE.match(text)
        if match is None:
            why = "empty line" if not text.strip() else "line starts with a blank"
            problems.append(
                f"{path} line {lineno}: malformed ({why}; expected '<utt-id> <value>'): {text!r}"
            )
            continue
        key, value = match.group(1), match.group(2) or ""
        if key in first_line:
            problems.append(
                f"{path} line {lineno}: duplicate utt '{key}' (first on line {first_line[key]})"
            )
            continue
        first_line[key] = lineno
        lines.append(KaldiLine(lineno, key, value))
    return lines, problems


def read_kaldi_text(path: PathLike) -> Dict[str, str]:
    """Read a Kaldi text file into ``{key: value}``, keeping empty values.

    Args:
        path: The file.

    Returns:
        The values by key, in file order.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: Some lines are malformed or repeat a key; the message lists each problem
            with its file and line number.
    """
    lines, problems = parse_kaldi_text(path)
    if problems:
        raise ValueError(f"{len(problems)} problem(s) in {path}:\n" + "\n".join(problems))
    return {line.key: line.value for line in lines}


def write_kaldi_text(path: PathLike, mapping: Mapping[str, str]) -> None:
    """Write ``{key: value}`` as a Kaldi text file, sorted by key, whole or not at all.

    An empty value is written as the key alone. The file is written to a temporary file in
    the same folder and renamed over ``path``, so readers never see half a file.

    Args:
        path: The file to write; its folder must exist.
        mapping: The values by key.

    Raises:
        ValueError: A key is empty or has whitespace, or a value has a line break or leading
            or trailing blanks (it would not read back the same).
    """
    out_lines = []
    for key in sorted(mapping):
        value = mapping[key]
        if not key or re.search(r"\s", key):
            raise ValueError(f"{path}: key {key!r} is empty or contains whitespace")
        if "\n" in value or "\r" in value or value != value.strip(" \t"):
            raise ValueError(
                f"{path}: value of '{key}' has a line break or leading/trailing blanks: {value!r}"
            )
        out_lines.append(f"{key} {value}\n" if value else f"{key}\n")
    atomic_write_text(path, "".join(out_lines))


def parse_sample_rate(text: Union[str, int]) -> int:
    """A sample rate written as ESPnet recipes do: ``16000``, ``16k`` or ``44.1k``.

    Raises:
        ValueError: The text is not a positive rate.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kK]?)\s*", str(text))
    if match is None:
        raise ValueError(f"expected a sample rate such as 16000 or 16k, got {text!r}")
    rate = float(match.group(1)) * (1000 if match.group(2) else 1)
    if rate <= 0 or rate != int(rate):
        raise ValueError(f"expected a positive whole number of Hz, got {text!r}")
    return int(rate)


def source_count_histogram(data_dir: PathLike) -> Dict[int, int]:
    """How many utterances have each number of sources, from ``utt2num_src``.

    Raises:
        FileNotFoundError: There is no utt2num_src.
        ValueError: utt2num_src is malformed or holds a non-integer.
    """
    path = Path(data_dir) / "utt2num_src"
    histogram: Dict[int, int] = {}
    for key, value in read_kaldi_text(path).items():
        if not re.fullmatch(r"[0-9]+", value):
            raise ValueError(f"{path}: utt '{key}': expected a number of sources, got {value!r}")
        histogram[int(value)] = histogram.get(int(value), 0) + 1
    return dict(sorted(histogram.items()))


class DataDirError(ValueError):
    """A data or decoding directory breaks the documented layout."""


@dataclass(frozen=True)
class Entry:
    """One ``<utt-id> <value>`` line: its value, file and 1-based line number."""

    value: str
    path: Path
    line: int

    @property
    def where(self) -> str:
        """``<file> line <n>``, as the data-dir validator names places."""
        return f"{self.path} line {self.line}"


def read_kaldi_map(path: PathLike) -> Dict[str, Entry]:
    """Reads a Kaldi-style ``<utt-id> <value>`` file (the value may be empty).

    Parsing is :func:`parse_kaldi_text`, the same
    rules the data-dir validator applies.

    Args:
        path: the file.

    Returns:
        utt-id -> Entry, in file order.

    Raises:
        DataDirError: missing file, malformed line or duplicate utterance id.
    """
    path = Path(path)
    if not path.is_file():
        raise DataDirError(f"{path}: file not found")
    lines, problems = parse_kaldi_text(path)
    if problems:
        raise DataDirError(f"{len(problems)} problem(s) in {path}:\n" + "\n".join(problems))
    return {ln.key: Entry(ln.value, path, ln.lineno) for ln in lines}


def read_int_map(path: PathLike) -> Dict[str, int]:
    """Reads ``<utt-id> <integer>`` lines (``utt2num_src``)."""
    out: Dict[str, int] = {}
    for utt, entry in read_kaldi_map(path).items():
        try:
            out[utt] = int(entry.value)
        except ValueError:
            raise DataDirError(
                f"{entry.where}: utterance {utt!r} has value {entry.value!r}, "
                "expected an integer count"
            ) from None
    return out


def spk_scp_files(directory: PathLike) -> Dict[int, Path]:
    """Finds ``spk1.scp`` .. ``spkK.scp`` in a directory.

    Returns:
        k -> path, sorted by k; the numbering must start at 1 without gaps.
    """
    directory = Path(directory)
    found = {}
    for p in directory.iterdir() if directory.is_dir() else []:
        m = REFERENCE.file_regex.match(p.name)
        if m:
            found[int(m.group(1))] = p
    found = dict(sorted(found.items()))
    if found and list(found) != list(range(1, len(found) + 1)):
        raise DataDirError(
            f"{directory}: spk*.scp files {sorted(found)} must be numbered 1..K without gaps"
        )
    return found


def load_audio_entry(
    value: str, where: str, expected_fs: Optional[int] = None
) -> Tuple[np.ndarray, int]:
    """Loads one mono audio entry of an scp file as float64.

    Args:
        value: the scp value (a file path or a kaldiio ``.ark[:offset]`` entry).
        where: ``file:line (utt ...)`` for error messages.
        expected_fs: raise when the sample rate differs (None: no check).

    Returns:
        (signal [T], sample rate).
    """
    if not value:
        raise DataDirError(f"{where}: empty value, expected an audio path")
    if _ARK.match(value):
        import kaldiio

        try:
            loaded = kaldiio.load_mat(value)
        except Exception as e:  # kaldiio raises several types for bad offsets
            raise DataDirError(f"{where}: cannot read {value!r}: {e}") from e
        if not isinstance(loaded, tuple):
            raise DataDirError(f"{where}: {value!r} holds a matrix, expected (rate, wav)")
        fs, data = loaded
        data = np.asarray(data, dtype=np.float64)
        if np.issubdtype(np.asarray(loaded[1]).dtype, np.integer):
            data = data / 32768.0
    else:
        if not Path(value).is_file():
            raise DataDirError(f"{where}: audio file {value} does not exist")
        try:
            data, fs = read_audio(value, dtype="float64")  # [T, C]
        except (OSError, ValueError) as e:
            raise DataDirError(f"{where}: cannot read audio file {value}: {e}") from e
    if data.ndim == 2:
        if data.shape[1] != 1:
            raise DataDirError(
                f"{where}: {value} has {data.shape[1]} channels, expected mono"
            )
        data = data[:, 0]
    if expected_fs is not None and int(fs) != int(expected_fs):
        raise DataDirError(
            f"{where}: {value} has sample rate {fs} Hz, expected {expected_fs} Hz"
        )
    return data, int(fs)


def fit_length(
    signal: np.ndarray, length: int, tolerance: int, where: str
) -> Tuple[np.ndarray, int]:
    """Crops or zero-pads an estimate to ``length`` samples.

    Models with strided encoders may return a few samples more or fewer than
    the input; up to ``tolerance`` samples of difference are fixed at the end
    of the signal (cropped or zero-padded), beyond that it is an error.

    Returns:
        (signal [length], number of samples changed, signed: >0 cropped, <0 padded).
    """
    diff = signal.shape[-1] - length
    if abs(diff) > tolerance:
        raise DataDirError(
            f"{where}: estimate has {signal.shape[-1]} samples, the mixture {length}; "
            f"the difference {diff:+d} exceeds the tolerance of {tolerance} samples"
        )
    if diff > 0:
        return signal[:length], diff
    if diff < 0:
        return np.pad(signal, (0, -diff)), diff
    return signal, 0


@dataclass
class ReferenceSet:
    """A reference data directory ``data/<set>/``.

    Attributes:
        root: the directory.
        wav: utt -> mixture entry.
        spk: k -> (utt -> reference entry).
        num_src: utt -> number of sources n (references 1..n are present).
    """

    root: Path
    wav: Dict[str, Entry]
    spk: Dict[int, Dict[str, Entry]]
    num_src: Dict[str, int]

    @classmethod
    def load(cls, root: PathLike) -> "ReferenceSet":
        """Reads ``wav.scp``, ``spk{k}.scp`` and ``utt2num_src`` and checks their keys.

        ESPnet's ``enh.sh`` layouts (``dump/raw/<set>``) are read too: a ``spk1.scp``
        whose lines list every source of a mixture (``--variable_num_refs true``) gives
        each utterance as many sources as its line has columns, and without
        ``utt2num_src`` an utterance has one source per ``spk{k}.scp`` that lists it.
        Where ``utt2num_src`` exists it must agree.
        """
        root = Path(root)
        if not root.is_dir():
            raise DataDirError(f"{root}: reference data directory not found")
        wav = read_kaldi_map(root / "wav.scp")
        spk = {k: read_kaldi_map(p) for k, p in spk_scp_files(root).items()}
        if not spk:
            raise DataDirError(f"{root}: no spk1.scp .. spkK.scp reference files")
        has_counts = (root / "utt2num_src").is_file()
        many_columns = len(spk) == 1 and any(len(e.value.split()) > 1 for e in spk[1].values())
        if has_counts and not many_columns:
            num_src = read_int_map(root / "utt2num_src")
            for name, keys in [("utt2num_src", num_src)] + [
                (REFERENCE.file_name(k), m) for k, m in spk.items()
            ]:
                missing = [u for u in wav if u not in keys]
                if missing:
                    raise DataDirError(
                        f"{root / name}: utterance {missing[0]!r} of {root / 'wav.scp'} is "
                        f"missing ({len(missing)} missing in all)"
                    )
            for utt, n in num_src.items():
                if not 1 <= n <= len(spk):
                    raise DataDirError(
                        f"{root / 'utt2num_src'}: utterance {utt!r} has {n} sources, "
                        f"expected 1..{len(spk)} (the number of spk*.scp files)"
                    )
            return cls(root, wav, spk, num_src)
        if many_columns:
            # Column k of an utterance's line is its source k; errors name spk1.scp's line.
            rows = {utt: (e, e.value.split()) for utt, e in spk[1].items()}
            spk = {k: {} for k in range(1, max(len(cols) for _, cols in rows.values()) + 1)}
            for utt, (entry, cols) in rows.items():
                for k, path in enumerate(cols, start=1):
                    spk[k][utt] = Entry(path, entry.path, entry.line)
        num_src = {}
        for utt in wav:
            listed = [k for k in spk if utt in spk[k] and spk[k][utt].value]
            if listed != list(range(1, len(listed) + 1)) or not listed:
                raise DataDirError(
                    f"{root}: utterance {utt!r} of {root / 'wav.scp'} has references in "
                    f"[{', '.join(REFERENCE.file_name(k) for k in listed)}]; expected "
                    "spk1.scp .. spkN.scp without gaps (or the sources as columns of spk1.scp)"
                )
            num_src[utt] = len(listed)
        if has_counts:
            for utt, n in read_int_map(root / "utt2num_src").items():
                if utt in num_src and n != num_src[utt]:
                    raise DataDirError(
                        f"{root / 'utt2num_src'}: utterance {utt!r} has {n} sources, but "
                        f"{num_src[utt]} references are listed for it"
                    )
        return cls(root, wav, spk, num_src)

    @property
    def utts(self) -> List[str]:
        return sorted(self.wav)

    def load_mixture(self, utt: str, fs: Optional[int] = None) -> Tuple[np.ndarray, int]:
        """Mixture of ``utt``: (signal [T], sample rate)."""
        entry = self.wav[utt]
        return load_audio_entry(entry.value, f"{entry.where} (utt {utt})", fs)

    def load_reference(self, utt: str, k: int, length: int, fs: int) -> np.ndarray:
        """Reference k (1-based) of ``utt``; must be non-empty and as long as the mixture."""
        entry = self.spk[k][utt]
        where = f"{entry.where} (utt {utt})"
        ref, _ = load_audio_entry(entry.value, where, fs)
        if ref.shape[0] == 0:
            raise DataDirError(
                f"{where}: reference {k} is a zero-length wav but utt2num_src says "
                f"{self.num_src[utt]} sources; an absent source must have k > n"
            )
        if ref.shape[0] != length:
            raise DataDirError(
                f"{where}: reference has {ref.shape[0]} samples, the mixture {length}"
            )
        return ref

    def load_utterance(
        self, utt: str, fs: Optional[int] = None
    ) -> Tuple[np.ndarray, List[np.ndarray], int]:
        """Mixture [T], references 1..n (each [T]) and the sample rate of ``utt``."""
        mixture, rate = self.load_mixture(utt, fs)
        refs = [
            self.load_reference(utt, k, mixture.shape[0], rate)
            for k in range(1, self.num_src[utt] + 1)
        ]
        return mixture, refs, rate


@dataclass
class EstimateSet:
    """A decoding directory ``exp/<model>/decode_<set>_<mode>/``.

    Attributes:
        root: the directory.
        spk: k -> (utt -> estimate entry); k = 1..K.
        num_src: utt -> estimated count (``utt2num_src``), None when absent.
        cue_similarity: utt -> {k (1-based cue/reference index) -> ([S] row,
            where)}, None when the file is absent.
    """

    root: Path
    spk: Dict[int, Dict[str, Entry]]
    num_src: Optional[Dict[str, int]]
    cue_similarity: Optional[Dict[str, Dict[int, Tuple[np.ndarray, str]]]]

    @classmethod
    def load(cls, root: PathLike) -> "EstimateSet":
        root = Path(root)
        if not root.is_dir():
            raise DataDirError(f"{root}: decoding directory not found")
        spk = {k: read_kaldi_map(p) for k, p in spk_scp_files(root).items()}
        num_src = read_int_map(root / "utt2num_src") if (root / "utt2num_src").is_file() else None
        sim_path = root / "cue_similarity"
        cue_similarity = read_cue_similarity(sim_path) if sim_path.is_file() else None
        return cls(root, spk, num_src, cue_similarity)

    @property
    def utts(self) -> List[str]:
        """Every utterance with at least one estimate, sorted."""
        return sorted({u for m in self.spk.values() for u in m})

    def estimate_indices(self, utt: str) -> List[int]:
        """1-based indices k of the estimates ``utt`` has (must be 1..S, no gaps)."""
        ks = [k for k, m in self.spk.items() if utt in m]
        if ks != list(range(1, len(ks) + 1)):
            raise DataDirError(
                f"{self.root}: utterance {utt!r} is listed in "
                f"{', '.join(f'spk{k}.scp' for k in ks)}; SS estimates must fill "
                "spk1.scp .. spkS.scp without gaps"
            )
        return ks

    def load_estimate(
        self, utt: str, k: int, length: int, fs: int, tolerance: int
    ) -> Tuple[np.ndarray, int]:
        """Estimate k of ``utt`` fitted to ``length`` samples: (signal, samples changed)."""
        entry = self.spk[k][utt]
        where = f"{entry.where} (utt {utt})"
        est, _ = load_audio_entry(entry.value, where, fs)
        return fit_length(est, length, tolerance, where)


def read_cue_similarity(path: PathLike) -> Dict[str, Dict[int, Tuple[np.ndarray, str]]]:
    """Reads ``cue_similarity``: ``<utt-id> <k> <cos(c_k, a_1)> ... <cos(c_k, a_S)>``.

    Returns:
        utt -> {k: ([S] similarity row, 'file:line')}.
    """
    path = Path(path)
    out: Dict[str, Dict[int, Tuple[np.ndarray, str]]] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            fields = raw.split()
            where = f"{path} line {lineno}"
            if len(fields) < 2:
                raise DataDirError(
                    f"{where}: expected '<utt-id> <k> <sim_1> ... <sim_S>', got {raw.strip()!r}"
                )
            utt = fields[0]
            try:
                k = int(fields[1])
                row = np.array([float(v) for v in fields[2:]], dtype=np.float64)
            except ValueError:
                raise DataDirError(
                    f"{where}: expected an integer source index and float similarities, "
                    f"got {raw.strip()!r}"
                ) from None
            if k < 1:
                raise DataDirError(f"{where}: source index {k} must be >= 1")
            rows = out.setdefault(utt, {})
            if k in rows:
                raise DataDirError(
                    f"{where}: utterance {utt!r} cue {k} already given at {rows[k][1]}"
                )
            rows[k] = (row, where)
    return out
