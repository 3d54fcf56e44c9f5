"""Validation of a data directory against the USE recipe contract.

The layout is the contract of ``egs2/TEMPLATE/use1/README.md`` and the raw rows of
:mod:`espnet2_use.data.layout`: ``wav.scp``, ``spk1.scp`` .. ``spkK.scp``,
``utt2num_src``, optional ``utt2category`` and, per source ``k``, the optional cue
files (``text_spk{k}``, ``label_spk{k}``, ``video_spk{k}.scp``, ``enroll_spk{k}.scp``).
An absent source ``k > n`` is a 0-sample wav.

``validate_data_dir`` checks all of it and returns one message per problem, each naming the
file, the line or utterance, and what was expected; ``utils/validate_data_dir.py`` (recipes)
is its command line.
"""
import difflib
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Optional, Union

import soundfile

from espnet2_use.data.kaldi_dir import KaldiLine, parse_kaldi_text
from espnet2_use.data.layout import MIXTURE, NUM_SRC, RAW_FILES, REFERENCE

PathLike = Union[str, "os.PathLike[str]"]

# Per-source files: kind -> file-name pattern with the source number as group 1.
_PER_SOURCE_FILES = {row.kind: row.file_regex for row in RAW_FILES}
_CUE_KINDS = tuple(row.kind for row in RAW_FILES if row is not REFERENCE)
_REF = REFERENCE.kind

class _AudioInfo(NamedTuple):
    frames: int
    samplerate: int
    channels: int


def _probe(path: Path) -> Union[_AudioInfo, str]:
    """Header information of an audio file, or why it cannot be read."""
    if not path.is_file():
        return "does not exist"
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, OSError) as error:
        return f"cannot be read as audio ({error})"
    return _AudioInfo(info.frames, info.samplerate, info.channels)


class _Problems:
    """Collects problem messages up to a limit and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: List[str] = []
        self.dropped = 0

    def add(self, message: str) -> None:
        if len(self.items) < self.limit:
            self.items.append(message)
        else:
            self.dropped += 1

    def extend(self, messages: Iterable[str]) -> None:
        for message in messages:
            self.add(message)

    @property
    def full(self) -> bool:
        return len(self.items) >= self.limit

    def as_list(self) -> List[str]:
        if self.dropped:
            return self.items + [f"... and {self.dropped} more problem(s) not shown"]
        return list(self.items)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class _DataDirValidator:
    """One run of ``validate_data_dir`` (see there for the arguments)."""

    def __init__(
        self,
        data_dir: Path,
        max_num_src: Optional[int],
        label_list: Optional[Path],
        check_audio: bool,
        fs: Optional[int],
        length_tolerance: float,
        max_problems: int,
        base_dir: Path,
        num_workers: int,
    ) -> None:
        self.dir = data_dir
        self.max_num_src = max_num_src
        self.label_list = label_list
        self.check_audio = check_audio
        self.fs = fs
        self.length_tolerance = length_tolerance
        self.base_dir = base_dir
        self.num_workers = num_workers
        self.problems = _Problems(max_problems)
        self.num_src = 0
        # Parsed files: file name -> {utt: line}.
        self.tables: Dict[str, Dict[str, KaldiLine]] = {}
        # Valid counts from utt2num_src: utt -> n.
        self.counts: Dict[str, int] = {}

    def _path(self, name: str) -> str:
        """A file of the data directory, as shown in messages."""
        return str(self.dir / name)

    def _resolve(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.base_dir / path

    def run(self) -> List[str]:
        if not self.dir.is_dir():
            return [f"{self.dir}: not a directory"]
        per_source = self._discover()
        required = [MIXTURE[0], NUM_SRC[0]] + [REFERENCE.file_name(k) for k in range(1, self.num_src + 1)]
        for name in required:
            if not (self.dir / name).is_file():
                self.problems.add(f"{self._path(name)}: missing (a required file)")
        optional = ["utt2category"] + [name for kind in _CUE_KINDS for name in per_source[kind]]
        for name in required + optional:
            if (self.dir / name).is_file():
                self._load(name)
        self._check_same_utts()
        self._check_counts()
        self._check_cues(per_source)
        if self.label_list is not None:
            self._check_labels(per_source["label"])
        self._check_videos(per_source["video"])
        if not self.problems.full:
            self._check_audio(per_source["example"])
            return self.problems.as_list()
        # Opening every audio file is the slow part: not worth it before the rest is fixed.
        return self.problems.as_list() + ["audio files not checked: fix the problems above first"]

    def _discover(self) -> Dict[str, List[str]]:
        """Find the per-source files and K; report files of sources beyond K."""
        found: Dict[str, Dict[int, str]] = {kind: {} for kind in _PER_SOURCE_FILES}
        for entry in sorted(os.listdir(self.dir)):
            for kind, pattern in _PER_SOURCE_FILES.items():
                match = pattern.match(entry)
                if match:
                    found[kind][int(match.group(1))] = entry
        if self.max_num_src is not None:
            self.num_src = self.max_num_src
        elif found[_REF]:
            self.num_src = max(found[_REF])
        else:
            self.problems.add(f"{self._path('spk1.scp')}: missing (no spk<k>.scp file at all)")
        per_source: Dict[str, List[str]] = {}
        for kind, by_index in found.items():
            per_source[kind] = []
            for k, name in sorted(by_index.items()):
                if k > self.num_src:
                    self.problems.add(
                        f"{self._path(name)}: source {k} is beyond the largest count K = "
                        f"{self.num_src} (--max_num_src or the spk<k>.scp files)"
                    )
                elif kind != _REF:
                    per_source[kind].append(name)
        return per_source

    def _load(self, name: str) -> None:
        """Parse one file: malformed lines, duplicates, order, and values it cannot have."""
        path = self._path(name)
        try:
            lines, problems = parse_kaldi_text(path)
        except OSError as error:
            self.problems.add(f"{path}: cannot be read ({error.strerror})")
            return
        self.problems.extend(problems)
        previous: Optional[KaldiLine] = None
        for line in lines:
            if previous is not None and line.key < previous.key:
                self.problems.add(
                    f"{path} line {line.lineno}: utt '{line.key}' comes after "
                    f"'{previous.key}' (line {previous.lineno}); the file must be sorted "
                    "(LC_ALL=C sort)"
                )
                break  # one report per file: the rest follows from it
            previous = line
        needs_value = name in ("wav.scp", "utt2category") or _PER_SOURCE_FILES[_REF].match(name)
        for line in lines:
            if needs_value and not line.value:
                self.problems.add(
                    f"{path} line {line.lineno}: utt '{line.key}' has no value "
                    f"(expected '<utt-id> <{'category' if name == 'utt2category' else 'path'}>')"
                )
            elif name == "utt2num_src" and not re.fullmatch(r"[0-9]+", line.value):
                self.problems.add(
                    f"{path} line {line.lineno}: utt '{line.key}': expected a number of "
                    f"sources, got {line.value!r}"
                )
        self.tables[name] = {line.key: line for line in lines}

    def _check_same_utts(self) -> None:
        """Every file lists exactly the utterances of wav.scp (or of utt2num_src without it)."""
        reference = next((n for n in ("wav.scp", "utt2num_src") if n in self.tables), None)
        if reference is None:
            return
        ref_table = self.tables[reference]
        for name, table in self.tables.items():
            if name == reference:
                continue
            for key, line in table.items():
                if key not in ref_table:
                    self.problems.add(
                        f"{self._path(name)} line {line.lineno}: utt '{key}' is not in {reference}"
                    )
            for key, line in ref_table.items():
                if key not in table:
                    self.problems.add(
                        f"{self._path(name)}: utt '{key}' is missing (it is in {reference} "
                        f"line {line.lineno})"
                    )

    def _check_counts(self) -> None:
        """Counts are integers in 1..K; keeps the valid ones in self.counts."""
        if self.num_src == 0:
            return  # no spk<k>.scp at all: reported already, and K is unknown
        for key, line in self.tables.get("utt2num_src", {}).items():
            if not re.fullmatch(r"[0-9]+", line.value):
                continue  # reported by _load
            n = int(line.value)
            if 1 <= n <= self.num_src:
                self.counts[key] = n
            else:
                self.problems.add(
                    f"{self._path('utt2num_src')} line {line.lineno}: utt '{key}': count {n} is "
                    f"outside 1..{self.num_src} (K = --max_num_src or the spk<k>.scp files)"
                )

    def _count_text(self, key: str) -> str:
        n = self.counts[key]
        lineno = self.tables["utt2num_src"][key].lineno
        return f"has {_plural(n, 'source')} (utt2num_src line {lineno})"

    def _check_cues(self, per_source: Dict[str, List[str]]) -> None:
        """A cue (caption, label, video, audio example) only for a present source."""
        for kind in _CUE_KINDS:
            for name in per_source[kind]:
                k = int(_PER_SOURCE_FILES[kind].match(name).group(1))
                for key, line in self.tables.get(name, {}).items():
                    if line.value and key in self.counts and k > self.counts[key]:
                        self.problems.add(
                            f"{self._path(name)} line {line.lineno}: utt '{key}' "
                            f"{self._count_text(key)} but a cue for source {k}; the cue of an "
                            "absent source must be empty"
                        )

    def _check_labels(self, label_files: List[str]) -> None:
        """Labels are names of the label list; unknown ones come with close matches."""
        assert self.label_list is not None
        try:
            raw = self.label_list.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            self.problems.add(f"{self.label_list}: cannot be read as a label list ({error})")
            return
        vocabulary: Dict[str, int] = {}
        for lineno, label in enumerate(raw.splitlines(), start=1):
            if not label.strip():
                self.problems.add(f"{self.label_list} line {lineno}: empty label")
            elif label in vocabulary:
                self.problems.add(
                    f"{self.label_list} line {lineno}: duplicate label {label!r} "
                    f"(first on line {vocabulary[label]})"
                )
            else:
                vocabulary[label] = lineno
        names = list(vocabulary)
        for name in label_files:
            for key, line in self.tables.get(name, {}).items():
                if line.value and line.value not in vocabulary:
                    close = difflib.get_close_matches(line.value, names, n=3)
                    hint = f"; close matches: {', '.join(map(repr, close))}" if close else ""
                    self.problems.add(
                        f"{self._path(name)} line {line.lineno}: utt '{key}': label "
                        f"{line.value!r} is not in {self.label_list}{hint}"
                    )

    def _check_videos(self, video_files: List[str]) -> None:
        """Every video or picture path exists."""
        for name in video_files:
            for key, line in self.tables.get(name, {}).items():
                if line.value and not self._resolve(line.value).is_file():
                    self.problems.add(
                        f"{self._path(name)} line {line.lineno}: utt '{key}': video or picture "
                        f"'{line.value}' does not exist"
                    )

    def _check_audio(self, enroll_files: List[str]) -> None:
        """Audio files exist; with check_audio, their lengths, channels and rates fit."""
        spk_files = [REFERENCE.file_name(k) for k in range(1, self.num_src + 1)]
        audio_files = [n for n in ["wav.scp"] + spk_files + enroll_files if n in self.tables]
        if not self.check_audio:
            for name in audio_files:
                for key, line in self.tables[name].items():
                    if line.value and not self._resolve(line.value).is_file():
                        self.problems.add(
                            f"{self._path(name)} line {line.lineno}: utt '{key}': audio file "
                            f"'{line.value}' does not exist"
                        )
            return
        # Headers only, on threads: libsndfile releases the GIL, and file systems of
        # clusters reward parallel opens. A shared silence.wav is opened once.
        paths = {
            self._resolve(line.value)
            for name in audio_files
            for line in self.tables[name].values()
            if line.value
        }
        with ThreadPoolExecutor(max_workers=self.num_workers) as pool:
            ordered = sorted(paths)
            infos = dict(zip(ordered, pool.map(_probe, ordered)))

        def info_of(name: str, line: KaldiLine) -> Optional[_AudioInfo]:
            """The info of a line's audio, or None after reporting why there is none."""
            info = infos[self._resolve(line.value)]
            if isinstance(info, str):
                self.problems.add(
                    f"{self._path(name)} line {line.lineno}: utt '{line.key}': audio file "
                    f"'{line.value}' {info}"
                )
                return None
            return info

        def check_format(name: str, line: KaldiLine, info: _AudioInfo) -> None:
            where = f"{self._path(name)} line {line.lineno}: utt '{line.key}': '{line.value}'"
            if info.channels != 1:
                self.problems.add(f"{where} has {info.channels} channels, expected mono")
            if self.fs is not None and info.samplerate != self.fs:
                self.problems.add(
                    f"{where} has sample rate {info.samplerate}, expected --fs {self.fs}"
                )

        mixtures: Dict[str, _AudioInfo] = {}
        for key, line in self.tables.get("wav.scp", {}).items():
            info = info_of("wav.scp", line) if line.value else None
            if info is None:
                continue
            if info.frames == 0:
                self.problems.add(
                    f"{self._path('wav.scp')} line {line.lineno}: utt '{key}': mixture "
                    f"'{line.value}' is empty (0 samples)"
                )
                continue
            check_format("wav.scp", line, info)
            mixtures[key] = info

        for k, name in enumerate(spk_files, start=1):
            for key, line in self.tables.get(name, {}).items():
                info = info_of(name, line) if line.value else None
                if info is None or key not in self.counts:
                    continue
                where = (
                    f"{self._path(name)} line {line.lineno}: utt '{key}' {self._count_text(key)}"
                )
                if k > self.counts[key]:
                    if info.frames != 0:
                        self.problems.add(
                            f"{where} but source {k} '{line.value}' has {info.frames} samples; "
                            "an absent source must be a 0-sample wav"
                        )
                elif info.frames == 0:
                    self.problems.add(
                        f"{where} but source {k} '{line.value}' is empty (0 samples)"
                    )
                else:
                    check_format(name, line, info)
                    if key in mixtures:
                        self._check_length(name, line, info, mixtures[key])

        for name in enroll_files:
            for key, line in self.tables.get(name, {}).items():
                info = info_of(name, line) if line.value else None
                if info is None:
                    continue
                if info.frames == 0:
                    self.problems.add(
                        f"{self._path(name)} line {line.lineno}: utt '{key}': audio example "
                        f"'{line.value}' is empty (0 samples)"
                    )
                else:
                    check_format(name, line, info)

    def _check_length(
        self, name: str, line: KaldiLine, ref: _AudioInfo, mix: _AudioInfo
    ) -> None:
        """A reference as long as its mixture, within the tolerance (seconds)."""
        if ref.samplerate == mix.samplerate:
            too_far = abs(ref.frames - mix.frames) > round(self.length_tolerance * mix.samplerate)
        else:
            # Different rates (resampled later): compare durations, one sample of slack.
            slack = 1.0 / min(ref.samplerate, mix.samplerate)
            too_far = (
                abs(ref.frames / ref.samplerate - mix.frames / mix.samplerate)
                > self.length_tolerance + slack
            )
        if too_far:
            mix_line = self.tables["wav.scp"][line.key].lineno
            self.problems.add(
                f"{self._path(name)} line {line.lineno}: utt '{line.key}': reference "
                f"'{line.value}' has {ref.frames} samples ({ref.frames / ref.samplerate:.3f} s), "
                f"the mixture (wav.scp line {mix_line}) {mix.frames} samples "
                f"({mix.frames / mix.samplerate:.3f} s); allowed difference "
                f"--length_tolerance {self.length_tolerance} s"
            )


def validate_data_dir(
    data_dir: PathLike,
    max_num_src: Optional[int] = None,
    label_list: Optional[PathLike] = None,
    check_audio: bool = True,
    fs: Optional[int] = None,
    length_tolerance: float = 0.0,
    max_problems: int = 100,
    base_dir: Optional[PathLike] = None,
    num_workers: int = 8,
) -> List[str]:
    """Check a data directory against the USE recipe contract (egs2/TEMPLATE/use1/README.md).

    Checks: the required files exist (wav.scp, utt2num_src, spk1.scp..spkK.scp); every file
    is well formed, free of duplicate utts, sorted, and lists exactly the utts of wav.scp;
    wav.scp and spk<k>.scp lines have a path, utt2category lines a category; counts are
    integers in 1..K; a cue (text, label, video, audio example) is given to present sources
    only; labels are in ``label_list``; video and picture paths exist; audio paths exist, and
    with ``check_audio`` (headers only, fast): the mixture is non-empty mono, sources 1..n are
    non-empty mono files as long as the mixture (within ``length_tolerance``), sources
    n+1..K have 0 samples, audio examples are non-empty mono, and all non-empty audio has
    sample rate ``fs`` when given.

    Args:
        data_dir: The data directory.
        max_num_src: K, the largest count of the recipe; default: the largest k with a
            spk<k>.scp file. Files of sources beyond K are problems.
        label_list: The label vocabulary (one class name per line), or None to skip the
            label check.
        check_audio: Open audio headers; if False, only check that audio files exist.
        fs: Expected sample rate of every non-empty audio file, or None.
        length_tolerance: Allowed difference in seconds between a reference and its mixture.
        max_problems: Report at most this many problems (one more line says how many were
            left out); audio is not opened once the limit is reached.
        base_dir: Folder that relative paths in the files are relative to (default: the
            current folder, as in the recipes).
        num_workers: Threads that read audio headers.

    Returns:
        One message per problem, each naming the file and its line or utt; empty if the
        directory is valid.
    """
    validator = _DataDirValidator(
        data_dir=Path(data_dir),
        max_num_src=max_num_src,
        label_list=Path(label_list) if label_list is not None else None,
        check_audio=check_audio,
        fs=fs,
        length_tolerance=length_tolerance,
        max_problems=max_problems,
        base_dir=Path(base_dir) if base_dir is not None else Path.cwd(),
        num_workers=num_workers,
    )
    return validator.run()
