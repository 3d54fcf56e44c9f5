"""Mixture synthesis and shared pieces of the corpus data preparations (``egs2/<corpus>/use1/local``).

The four reproduction recipes (LibriMix, FUSS, AudioSet, VGGSound) read very
different corpus layouts but write the same Kaldi-style data directories (see
``egs2/TEMPLATE/use1/README.md``). What they share lives here:

- ``CorpusError`` and the checks that name the offending path, line and
  expectation (``require_dir``, ``require_file``, ``read_csv_rows``);
- audio I/O: ``load_audio`` (``espnet2_use.utils.audio.load_mono``, errors as
  ``CorpusError``), ``write_wav``, ``write_silence``;
- ``FileIndex``: one recursive scan of a corpus tree, then look-ups by file stem;
- mixture simulation from tagged clips (AudioSet, VGGSound): ``Clip``,
  ``hold_out`` (seeded dev split), ``plan_mixtures`` (deterministic,
  class-balanced choice of clips with disjoint labels), ``MixtureRenderer``
  (crop, level, sum, write), ``write_mixture_sets`` and the shared options
  (``add_mixture_arguments``, ``check_mixture_arguments``);
- ``Utterance`` and ``write_data_dir`` (the data-directory contract, written
  with ``espnet2_use.data.kaldi_dir.write_kaldi_text``, file names from the
  layout table ``espnet2_use.data.layout``);
- ``StagedOutput``: everything is written into a hidden staging folder inside
  the data directory and moved into place only when the whole preparation
  succeeded, so a failed run leaves no half-written data directory behind.

This module and what it imports (``espnet2_use.data.kaldi_dir``, ``.layout``,
``espnet2_use.utils.audio``, ``.fileio``) need numpy and soundfile only: no ESPnet module, no torch, and
PyAV or scipy only inside the functions that decode or resample. The recipes'
``local/prepare_*.py``, run as scripts by ``local/data.sh``, import this module
without running the ``espnet2_use`` package's ``__init__`` (which may import
ESPnet's tasks to register USE), so data preparation starts in well under a
second and never makes ESPnet's dependencies (NLTK) reach for the network;
test_corpus_prep.py checks that in a fresh process.
"""
from __future__ import annotations

import csv
import os
import re
import shutil
import tempfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import soundfile

from espnet2_use.data.kaldi_dir import write_kaldi_text
from espnet2_use.data.layout import RAW_CUES, REFERENCE
from espnet2_use.utils.audio import load_mono

# Cue kinds a corpus gives per source (the audio example is written by use_format_data).
# What a corpus describes per source; derived cues (the span) are read off the references.
CUE_KINDS = tuple(kind for kind, row in RAW_CUES.items() if kind != "example" and not row.derived)


class CorpusError(RuntimeError):
    """A problem with the corpus a user pointed a recipe at.

    The message always names the file (and line or key where there is one) and
    what was expected there; the recipe prints it and stops without writing.
    """


# --------------------------------------------------------------------------
# Checks and readers
# --------------------------------------------------------------------------


def require_dir(path: os.PathLike, what: str) -> Path:
    """Return ``path`` as an absolute ``Path`` or raise if it is not a folder.

    Args:
        path: The folder to check.
        what: What the folder should be, for the message (e.g. "LibriMix root").
    """
    p = Path(path)
    if not p.is_dir():
        state = "is not a directory" if p.exists() else "does not exist"
        raise CorpusError(f"{p}: {state}; expected {what}")
    return p.resolve()


def require_file(path: os.PathLike, what: str) -> Path:
    """Return ``path`` as an absolute ``Path`` or raise if it is not a file.

    Args:
        path: The file to check.
        what: What the file should be, for the message.
    """
    p = Path(path)
    if not p.is_file():
        state = "is not a file" if p.exists() else "does not exist"
        raise CorpusError(f"{p}: {state}; expected {what}")
    return p.resolve()


def read_csv_rows(
    path: Path, required_columns: Sequence[str]
) -> List[Tuple[int, Dict[str, str]]]:
    """Read a CSV file with a header row, checking its columns.

    Args:
        path: The CSV file; its first row names the columns.
        required_columns: Columns that must be in the header (others may be too).

    Returns:
        ``(line_number, row)`` pairs, one per data row, ``row`` mapping column
        name to value; ``line_number`` is 1-based, the header being line 1.

    Raises:
        CorpusError: The header lacks a required column, or a row has a
            different number of fields than the header.
    """
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise CorpusError(
                f"{path}: line 1: the file is empty; expected a header with the "
                f"columns {', '.join(required_columns)}"
            ) from None
        missing = [c for c in required_columns if c not in header]
        if missing:
            raise CorpusError(
                f"{path}: line 1: header lacks column(s) {', '.join(missing)}; "
                f"expected the columns {', '.join(required_columns)}, "
                f"found {', '.join(header)}"
            )
        rows = []
        for fields in reader:
            if not fields or all(not x.strip() for x in fields):
                continue
            if len(fields) != len(header):
                raise CorpusError(
                    f"{path}: line {reader.line_num}: {len(fields)} fields; "
                    f"expected {len(header)} ({', '.join(header)})"
                )
            rows.append((reader.line_num, dict(zip(header, (x.strip() for x in fields)))))
    return rows


def check_utt_id(utt_id: str, where: str) -> str:
    """Return ``utt_id`` if it can serve as a Kaldi key, else raise.

    Args:
        utt_id: The candidate utterance id.
        where: File and line it comes from, for the message.
    """
    if not utt_id or re.search(r"\s", utt_id):
        raise CorpusError(f"{where}: utterance id {utt_id!r} is empty or has whitespace")
    return utt_id


def stable_seed(seed: int, *keys: str) -> np.random.Generator:
    """A random generator seeded by ``seed`` and strings, the same in every run.

    Python's ``hash`` of a string changes between processes; crc32 does not.
    """
    return np.random.default_rng([seed] + [zlib.crc32(k.encode("utf-8")) for k in keys])


class FileIndex:
    """All files under a corpus root with chosen extensions, found by stem.

    The tree is walked once, in sorted order, so when two files share a stem
    and extension the first one in that order wins in every run.

    Args:
        root: The corpus folder, searched recursively (symbolic links followed).
        extensions: Lower-case extensions to index, with the dot (".wav").
    """

    def __init__(self, root: Path, extensions: Sequence[str]) -> None:
        self.root = root
        self.extensions = tuple(e.lower() for e in extensions)
        self._by_stem: Dict[str, Dict[str, str]] = {}
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames.sort()
            # Hidden folders are the staging folders of an earlier run, editor
            # state and the like, never corpus files.
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in sorted(filenames):
                stem, ext = os.path.splitext(name)
                ext = ext.lower()
                if ext in self.extensions:
                    self._by_stem.setdefault(stem, {}).setdefault(
                        ext, os.path.join(dirpath, name)
                    )

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_stem.values())

    def stems(self) -> List[str]:
        """Every file stem found, in sorted order."""
        return sorted(self._by_stem)

    def find(self, stems: Iterable[str], extensions: Sequence[str]) -> Optional[str]:
        """Return the first file matching any stem (in order) with any extension.

        Args:
            stems: Candidate file names without extension, most likely first.
            extensions: Acceptable extensions, preferred first.
        """
        for stem in stems:
            found = self._by_stem.get(stem)
            if found:
                for ext in extensions:
                    if ext in found:
                        return found[ext]
        return None


# --------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------


def load_audio(path: str, fs: int) -> np.ndarray:
    """Read a file's audio as mono float32 at ``fs`` (wav/flac through soundfile, other
    containers such as mp4 videos through PyAV; channels averaged).

    Raises:
        CorpusError: The file cannot be decoded.
    """
    try:
        return load_mono(path, fs)
    except (OSError, ValueError) as e:
        raise CorpusError(f"{path}: cannot decode its audio ({e}); expected a readable "
                          f"audio or video file") from e


def write_wav(path: Path, x: np.ndarray, fs: int) -> None:
    """Write a mono signal as 16-bit PCM wav, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), x, fs, subtype="PCM_16")


def write_silence(path: Path, fs: int) -> None:
    """Write the zero-length wav that stands for an absent source (0 samples)."""
    write_wav(path, np.zeros(0, dtype=np.float32), fs)


def loudest_window(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    """The ``length``-sample window of ``x`` with the most energy.

    AudioSet and VGGSound labels are weak (clip level), so the loudest part of
    a clip is the likeliest to hold the labelled sound. Shorter signals are
    zero-padded at the end.

    Args:
        x: Signal, shape ``[T]``.
        length: Window length in samples.
        hop: Step between candidate window starts in samples.
    """
    if len(x) <= length:
        return np.pad(x, (0, length - len(x)))  # [length]
    energy = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])  # [T + 1]
    starts = np.arange(0, len(x) - length + 1, hop)
    best = int(starts[np.argmax(energy[starts + length] - energy[starts])])
    return x[best:best + length]  # [length]


# --------------------------------------------------------------------------
# Mixtures from tagged clips (AudioSet, VGGSound)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    """One labelled corpus clip usable as a source.

    Args:
        clip_id: Unique id, e.g. ``<ytid>_<start>``.
        audio: File to take the audio from (wav, flac or a video).
        labels: Class names of the clip; the first is the one written to
            ``label_spk{k}``, all of them count when keeping labels apart.
        caption: Free-text caption, or None.
        video: Video file of the clip, or None.
    """

    clip_id: str
    audio: str
    labels: Tuple[str, ...]
    caption: Optional[str] = None
    video: Optional[str] = None


@dataclass(frozen=True)
class MixturePlan:
    """What one simulated mixture is made of, decided before any audio is read.

    Args:
        utt_id: Utterance id.
        category: ``2mix``, ``3mix`` (separation) or ``tse`` (extraction).
        clips: The sources, spk1 first (for ``tse`` spk1 is the target).
        gains_db: Level of each source relative to the reference level.
        cued: Whether each source carries its cues (label, caption, video).
    """

    utt_id: str
    category: str
    clips: Tuple[Clip, ...]
    gains_db: Tuple[float, ...]
    cued: Tuple[bool, ...]


def group_by_label(clips: Sequence[Clip]) -> "OrderedDict[str, List[Clip]]":
    """Clips grouped by their first label, labels and clips in sorted order."""
    groups: Dict[str, List[Clip]] = {}
    for c in clips:
        groups.setdefault(c.labels[0], []).append(c)
    return OrderedDict(
        (k, sorted(groups[k], key=lambda c: c.clip_id)) for k in sorted(groups)
    )


def plan_mixtures(
    clips: Sequence[Clip],
    category: str,
    num_mix: int,
    rng: np.random.Generator,
    utt_prefix: str,
    level_range_db: float,
    max_interferers: int = 2,
    pool_name: str = "pool",
    max_tries: int = 200,
) -> List[MixturePlan]:
    """Choose the clips and levels of ``num_mix`` mixtures of one category.

    Classes are drawn uniformly (class-balanced, since AudioSet is long-tailed),
    then one clip per class; a draw is kept only when no label is shared by two
    of its clips, so every source of a mixture is a different kind of sound.
    Each source gets a level uniform in ``[-level_range_db, +level_range_db]``
    dB. ``2mix``/``3mix`` mixtures give cues to all sources (separation, and
    extraction of each source in turn); a ``tse`` mixture has a target (spk1,
    cued) and 1..``max_interferers`` interferers without cues.

    Args:
        clips: The pool to draw from.
        category: ``2mix``, ``3mix`` or ``tse``.
        num_mix: How many mixtures.
        rng: Random generator (seeded by the caller).
        utt_prefix: Utterance ids are ``<utt_prefix>_<category>_<6-digit index>``.
        level_range_db: Half-width of the level range in dB.
        max_interferers: Largest number of interferers of a ``tse`` mixture.
        pool_name: Name of the pool for messages.
        max_tries: Draws tried per mixture before giving up.

    Raises:
        CorpusError: The pool has too few classes or no draw keeps labels apart.
    """
    if category not in ("2mix", "3mix", "tse"):
        raise ValueError(f"unknown mixture category {category!r}")
    groups = group_by_label(clips)
    names = list(groups)
    plans: List[MixturePlan] = []
    for i in range(num_mix):
        if category == "tse":
            num_src = 1 + int(rng.integers(1, max_interferers + 1))
        else:
            num_src = int(category[0])
        if len(names) < num_src:
            raise CorpusError(
                f"{pool_name}: {len(names)} class(es) with clips; a {category} mixture "
                f"needs clips of at least {num_src} different classes"
            )
        for _ in range(max_tries):
            chosen = rng.choice(len(names), size=num_src, replace=False)
            picked = tuple(
                groups[names[j]][int(rng.integers(len(groups[names[j]])))] for j in chosen
            )
            all_labels = [lab for c in picked for lab in c.labels]
            if len(set(all_labels)) == len(all_labels):
                break
        else:
            raise CorpusError(
                f"{pool_name}: found no {num_src} clips without a shared label in "
                f"{max_tries} draws; the clips' label sets overlap too much "
                f"(try --max_labels_per_clip 1)"
            )
        gains = tuple(float(g) for g in rng.uniform(-level_range_db, level_range_db, num_src))
        cued = (True,) * num_src if category != "tse" else (True,) + (False,) * (num_src - 1)
        plans.append(MixturePlan(f"{utt_prefix}_{category}_{i:06d}", category, picked, gains, cued))
    return plans


class MixtureRenderer:
    """Turns ``MixturePlan``s into wav files and ``Utterance``s.

    Each source is the loudest ``segment_sec`` window of its clip, scaled to
    the reference RMS times its planned gain; the mixture is the sum. When the
    mixture or a source would clip, all of them are scaled down together, so
    the mixture stays exactly the sum of the written references (sources are
    quantised to 16 bit first and the mixture summed from them).

    Args:
        fs: Sampling rate of the written audio.
        segment_sec: Length of every mixture in seconds.
        ref_rms: RMS of a source at 0 dB gain.
        cache_size: Decoded clips kept in memory (clips recur across mixtures).
    """

    SILENT_RMS = 1e-4  # below this a cropped clip holds no usable sound

    def __init__(
        self, fs: int, segment_sec: float, ref_rms: float = 0.05, cache_size: int = 512
    ) -> None:
        self.fs = fs
        self.length = int(round(segment_sec * fs))
        self.hop = max(1, fs // 10)
        self.ref_rms = ref_rms
        self.cache_size = cache_size
        self._cache: "OrderedDict[str, np.ndarray]" = OrderedDict()

    def segment(self, clip: Clip) -> np.ndarray:
        """The cropped, unscaled audio of a clip, shape ``[length]``."""
        if clip.audio in self._cache:
            self._cache.move_to_end(clip.audio)
            return self._cache[clip.audio]
        seg = loudest_window(load_audio(clip.audio, self.fs), self.length, self.hop)
        self._cache[clip.audio] = seg
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return seg

    def render(
        self, plan: MixturePlan, stage_dir: Path, final_dir: str
    ) -> Optional["Utterance"]:
        """Write one mixture and its sources; None when a clip is silent.

        Args:
            plan: The mixture to make.
            stage_dir: Folder the files are written to now (the staging copy of
                the set's folder).
            final_dir: Path of the set's folder after the move, as it is to be
                written in the scp files.
        """
        segs = [self.segment(c) for c in plan.clips]
        rms = [float(np.sqrt(np.mean(s.astype(np.float64) ** 2))) for s in segs]
        if min(rms) < self.SILENT_RMS:
            return None
        sources = np.stack(
            [s * (self.ref_rms * 10 ** (g / 20) / r) for s, g, r in zip(segs, plan.gains_db, rms)]
        )  # [S, T]
        peak = max(np.abs(sources).max(), np.abs(sources.sum(axis=0)).max())
        if peak > 0.9:
            sources *= 0.9 / peak
        # Sum the 16-bit values that will be on disk (libsndfile writes x * 32768),
        # so the mixture file is exactly the sum of the reference files.
        sources = np.round(sources * 32768.0) / 32768.0  # [S, T]
        mixture = sources.sum(axis=0)  # [T]
        write_wav(stage_dir / "audio" / "mix" / f"{plan.utt_id}.wav", mixture, self.fs)
        paths = []
        for k, s in enumerate(sources, 1):
            write_wav(stage_dir / "audio" / f"s{k}" / f"{plan.utt_id}.wav", s, self.fs)
            paths.append(os.path.join(final_dir, "audio", f"s{k}", f"{plan.utt_id}.wav"))
        return Utterance(
            utt_id=plan.utt_id,
            mixture=os.path.join(final_dir, "audio", "mix", f"{plan.utt_id}.wav"),
            sources=paths,
            category=plan.category,
            labels=[c.labels[0] if cue else None for c, cue in zip(plan.clips, plan.cued)],
            texts=[c.caption if cue else None for c, cue in zip(plan.clips, plan.cued)],
            videos=[c.video if cue else None for c, cue in zip(plan.clips, plan.cued)],
        )


# --------------------------------------------------------------------------
# Data directories
# --------------------------------------------------------------------------


@dataclass
class Utterance:
    """One line of every file of a data directory.

    Args:
        utt_id: Utterance id (no whitespace).
        mixture: Path of the mixture.
        sources: Paths of the n reference sources, spk1 first.
        category: Free-form category (``2mix``, ``tse``, ...), or None.
        labels: Class name per source (None where absent), or None for no labels.
        texts: Caption per source (None where absent), or None.
        videos: Video path per source (None where absent), or None.
    """

    utt_id: str
    mixture: str
    sources: List[str]
    category: Optional[str] = None
    labels: Optional[List[Optional[str]]] = None
    texts: Optional[List[Optional[str]]] = None
    videos: Optional[List[Optional[str]]] = None

    def cue(self, kind: str, k: int) -> Optional[str]:
        """The cue of kind ``text``/``label``/``video`` of source ``k`` (0-based)."""
        values = {"text": self.texts, "label": self.labels, "video": self.videos}[kind]
        if values is None or k >= len(values):
            return None
        return values[k]


def _one_line(value: Optional[str]) -> str:
    """A cue value as one line ("" for none): whitespace runs become one space."""
    return "" if value is None else " ".join(value.split())


def write_data_dir(
    set_dir: Path,
    utts: Sequence[Utterance],
    num_spk: int,
    silence: Optional[str] = None,
    cue_kinds: Sequence[str] = (),
) -> None:
    """Write a data directory in the layout of ``egs2/TEMPLATE/use1/README.md``.

    Files: ``wav.scp``, ``spk1.scp`` .. ``spk{num_spk}.scp``, ``utt2num_src``,
    ``utt2category`` (when any utterance has a category) and, per cue kind in
    ``cue_kinds``, ``text_spk{k}`` / ``label_spk{k}`` / ``video_spk{k}.scp``
    for k = 1..num_spk (empty value where a source has no such cue). Lines are
    sorted by utterance id (as ``LC_ALL=C sort``; ``data_dir.write_kaldi_text``).

    Args:
        set_dir: Folder to write into (created).
        utts: The utterances.
        num_spk: K, the largest number of sources of the recipe.
        silence: Path written for an absent source k > n (a zero-length wav);
            required when some utterance has fewer than ``num_spk`` sources.
        cue_kinds: Cue kinds to write, out of ``text``, ``label``, ``video``.

    Raises:
        CorpusError: Duplicate utterance ids or more sources than ``num_spk``.
        ValueError: An unknown cue kind, or ``silence`` missing where needed.
    """
    for kind in cue_kinds:
        if kind not in CUE_KINDS:
            raise ValueError(f"unknown cue kind {kind!r}; expected one of {list(CUE_KINDS)}")
    seen = set()
    for u in utts:
        if u.utt_id in seen:
            raise CorpusError(f"{set_dir}: utterance id {u.utt_id} occurs twice")
        seen.add(u.utt_id)
        if not 1 <= len(u.sources) <= num_spk:
            raise CorpusError(
                f"{set_dir}: utterance {u.utt_id} has {len(u.sources)} sources; "
                f"expected 1..{num_spk}"
            )
        if len(u.sources) < num_spk and silence is None:
            raise ValueError(f"{u.utt_id} has fewer than {num_spk} sources but no silence path")

    files: Dict[str, Dict[str, str]] = {"wav.scp": {}, "utt2num_src": {}}
    for k in range(1, num_spk + 1):
        files[REFERENCE.file_name(k)] = {}
        for kind in cue_kinds:
            files[RAW_CUES[kind].file_name(k)] = {}
    with_category = any(u.category for u in utts)
    if with_category:
        files["utt2category"] = {}

    for u in utts:
        files["wav.scp"][u.utt_id] = u.mixture
        files["utt2num_src"][u.utt_id] = str(len(u.sources))
        if with_category:
            files["utt2category"][u.utt_id] = u.category or "none"
        for k in range(num_spk):
            files[REFERENCE.file_name(k + 1)][u.utt_id] = (
                u.sources[k] if k < len(u.sources) else silence
            )
            for kind in cue_kinds:
                name = RAW_CUES[kind].file_name(k + 1)
                value = u.cue(kind, k) if k < len(u.sources) else None
                files[name][u.utt_id] = _one_line(value)

    set_dir.mkdir(parents=True, exist_ok=True)
    for name, mapping in files.items():
        write_kaldi_text(set_dir / name, mapping)  # sorted by utterance id


def write_lines(path: Path, lines: Iterable[str]) -> None:
    """Write text lines (UTF-8, one per line), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


@dataclass
class StagedOutput:
    """Stage a preparation's outputs, then move them into the data directory.

    Use as a context manager after every check of the corpus has passed::

        with StagedOutput(Path("data")) as out:
            write_data_dir(out.stage("train"), utts, ..., silence=out.final("train") + "/silence.wav")
            write_lines(out.stage("token_list/labels.txt"), labels)

    Inside, ``stage(rel)`` gives where to write ``rel`` now and ``final(rel)``
    the path it will have (to write into scp files). On success every staged
    entry replaces its namesake in the data directory (a set folder as a
    whole, a file alone, so ``token_list/`` keeps its other files); on an
    exception the staging folder is removed and the data directory is left as
    it was (and removed if this run created it empty).

    Args:
        data_dir: The recipe's data directory (``data``), as the paths in the
            scp files should name it.
    """

    data_dir: Path
    _root: Optional[Path] = field(default=None, init=False)
    _entries: List[str] = field(default_factory=list, init=False)
    _created_data_dir: bool = field(default=False, init=False)

    def __enter__(self) -> "StagedOutput":
        self._created_data_dir = not self.data_dir.exists()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._root = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.data_dir))
        return self

    def stage(self, rel: str) -> Path:
        """Where to write entry ``rel`` (a set folder or a file) now."""
        assert self._root is not None, "use StagedOutput as a context manager"
        top = rel.strip("/")
        if top not in self._entries:
            self._entries.append(top)
        return self._root / top

    def final(self, rel: str) -> str:
        """The path entry ``rel`` will have once moved, as scp files name it."""
        return os.path.join(str(self.data_dir), rel.strip("/"))

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._root is not None
        try:
            if exc_type is None:
                self._commit()
        finally:
            shutil.rmtree(self._root, ignore_errors=True)
            if exc_type is not None and self._created_data_dir:
                try:
                    self.data_dir.rmdir()  # only if this run created it and it is empty
                except OSError:
                    pass

    def _commit(self) -> None:
        assert self._root is not None
        for rel in self._entries:
            src = self._root / rel
            if not src.exists():
                continue
            dst = self.data_dir / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                if dst.exists():
                    # Move the old folder aside first: os.replace cannot
                    # overwrite a non-empty directory.
                    old = self._root / f".old-{len(rel)}-{zlib.crc32(rel.encode())}"
                    os.replace(dst, old)
                os.replace(src, dst)
            else:
                os.replace(src, dst)


# --------------------------------------------------------------------------
# Sets of simulated mixtures (AudioSet, VGGSound)
# --------------------------------------------------------------------------


def hold_out(
    clips: Sequence[Clip], fraction: float, rng: np.random.Generator
) -> Tuple[List[Clip], List[Clip]]:
    """Split clips into (kept, held out), ``fraction`` of them held out.

    Clips are sorted by id before the seeded shuffle, so the split depends on
    the seed and the clips only, not on the order they were found in.

    Args:
        clips: The clips to split.
        fraction: Share to hold out (0..1); at least one clip when > 0.
        rng: Random generator.
    """
    ordered = sorted(clips, key=lambda c: c.clip_id)
    n_out = int(round(fraction * len(ordered)))
    if fraction > 0 and len(ordered) > 1:
        n_out = min(max(n_out, 1), len(ordered) - 1)
    perm = rng.permutation(len(ordered))
    out_idx = set(int(i) for i in perm[:n_out])
    kept = [c for i, c in enumerate(ordered) if i not in out_idx]
    held = [c for i, c in enumerate(ordered) if i in out_idx]
    return kept, held


def num_sources_needed(categories: Sequence[str], max_interferers: int) -> int:
    """K, the largest number of sources the chosen mixture categories produce."""
    k = 1
    for c in categories:
        k = max(k, 1 + max_interferers if c == "tse" else int(c[0]))
    return k


_WORKER_RENDERER: Optional[MixtureRenderer] = None


def _init_worker(fs: int, segment_sec: float, ref_rms: float) -> None:
    global _WORKER_RENDERER
    _WORKER_RENDERER = MixtureRenderer(fs, segment_sec, ref_rms)


def _render_in_worker(job: Tuple[MixturePlan, Path, str]) -> Optional[Utterance]:
    assert _WORKER_RENDERER is not None
    return _WORKER_RENDERER.render(*job)


def write_mixture_sets(
    out: StagedOutput,
    plans_by_set: Dict[str, List[MixturePlan]],
    renderer: MixtureRenderer,
    num_spk: int,
    cue_kinds: Sequence[str] = ("text", "label", "video"),
    nj: int = 1,
) -> Dict[str, int]:
    """Render planned mixtures and write one data directory per set.

    A mixture whose cropped clip is silent (digital silence is common in
    AudioSet) is dropped rather than written with a silent reference. Since a
    plan fixes its mixture completely, ``nj`` processes write the same files
    as one.

    Args:
        out: The staged output (inside its ``with`` block).
        plans_by_set: Set name -> its planned mixtures.
        renderer: Writes the audio (its settings are copied to the workers).
        num_spk: K of the recipe.
        cue_kinds: Cue files to write.
        nj: Number of processes rendering audio.

    Returns:
        Set name -> number of utterances written.

    Raises:
        CorpusError: A clip cannot be decoded, or every mixture of a set was dropped.
    """
    pool = None
    if nj > 1:
        import multiprocessing

        # Each worker keeps its own clip cache; contiguous chunks of plans share clips often.
        pool = multiprocessing.get_context("fork" if os.name == "posix" else "spawn").Pool(
            nj, initializer=_init_worker,
            initargs=(renderer.fs, renderer.length / renderer.fs, renderer.ref_rms))
    written: Dict[str, int] = {}
    try:
        for set_name, plans in plans_by_set.items():
            stage, final = out.stage(set_name), out.final(set_name)
            jobs = [(plan, stage, final) for plan in plans]
            if pool is not None:
                rendered = pool.map(_render_in_worker, jobs, chunksize=max(1, len(jobs) // (4 * nj)))
            else:
                rendered = [renderer.render(*job) for job in jobs]
            utts = [u for u in rendered if u is not None]
            if not utts:
                raise CorpusError(f"{final}: all {len(plans)} planned mixtures had a silent clip; "
                                  f"expected clips with sound")
            silence = None
            if min(len(u.sources) for u in utts) < num_spk:
                write_silence(stage / "silence.wav", renderer.fs)
                silence = os.path.join(final, "silence.wav")
            write_data_dir(stage, utts, num_spk, silence=silence, cue_kinds=cue_kinds)
            counts: Dict[str, int] = {}
            for u in utts:
                counts[u.category or "none"] = counts.get(u.category or "none", 0) + 1
            dropped = len(plans) - len(utts)
            print(f"{final}: {len(utts)} mixtures ("
                  + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                  + (f"; {dropped} dropped for a silent clip" if dropped else "") + ")"
                  + (f"; {caption_summary(utts)}" if "text" in cue_kinds else ""))
            written[set_name] = len(utts)
    finally:
        if pool is not None:
            pool.terminate()
    return written


def caption_summary(utts: Sequence[Utterance]) -> str:
    """How many mixtures and cued sources have a caption, for the preparation's log.

    A source is cued when it has a label (every source of a 2mix/3mix, the
    target of a tse); a mixture counts when at least one of its sources has a
    caption.
    """
    cued = sum(1 for u in utts for k in range(len(u.sources)) if u.cue("label", k))
    captioned = sum(1 for u in utts for k in range(len(u.sources)) if u.cue("text", k))
    mixtures = sum(1 for u in utts if any(u.cue("text", k) for k in range(len(u.sources))))
    return (f"{mixtures} of {len(utts)} mixtures with a caption "
            f"({captioned} of {cued} cued sources)")


def add_mixture_arguments(parser) -> None:
    """Add the options of mixture simulation shared by AudioSet and VGGSound.

    Args:
        parser: An ``argparse.ArgumentParser``.
    """
    parser.add_argument("--data_dir", default="data", help="output data directory")
    parser.add_argument("--fs", type=int, default=16000, help="sampling rate of the written audio")
    parser.add_argument("--segment_sec", type=float, default=5.0, help="mixture length in seconds")
    parser.add_argument("--level_range", type=float, default=5.0,
                        help="source levels are uniform in +-this many dB")
    parser.add_argument("--categories", default="2mix 3mix tse",
                        help="mixture kinds of train/dev: 2mix, 3mix, tse")
    parser.add_argument("--tse_max_interferers", type=int, default=2)
    parser.add_argument("--num_train_mix", type=int, default=10000, help="per category")
    parser.add_argument("--num_dev_mix", type=int, default=500, help="per category")
    parser.add_argument("--num_test_mix", type=int, default=1000, help="per category and test set")
    parser.add_argument("--dev_fraction", type=float, default=0.05,
                        help="share of the training clips held out for dev")
    parser.add_argument("--allow_missing", choices=["true", "false"], default="false",
                        help="skip listed clips that are not on disk instead of stopping")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nj", type=int, default=1,
                        help="processes rendering audio (the output does not depend on it)")


def check_mixture_arguments(args) -> List[str]:
    """Check the options added by ``add_mixture_arguments``; return the categories.

    Raises:
        CorpusError: An unknown category, none, or a bad number.
    """
    categories = args.categories.split()
    if not categories:
        raise CorpusError("--categories is empty; expected e.g. '2mix 3mix tse'")
    for c in categories:
        if c not in ("2mix", "3mix", "tse"):
            raise CorpusError(f"--categories: {c!r}; expected 2mix, 3mix and/or tse")
    if args.tse_max_interferers < 1:
        raise CorpusError(f"--tse_max_interferers {args.tse_max_interferers}; expected >= 1")
    if args.segment_sec <= 0 or args.fs <= 0:
        raise CorpusError("--segment_sec and --fs must be positive")
    if args.nj < 1:
        raise CorpusError(f"--nj {args.nj}; expected >= 1")
    if not 0 <= args.dev_fraction < 1:
        raise CorpusError(f"--dev_fraction {args.dev_fraction}; expected 0 <= x < 1")
    for name in ("num_train_mix", "num_dev_mix", "num_test_mix"):
        if getattr(args, name) < 1:
            raise CorpusError(f"--{name} {getattr(args, name)}; expected >= 1")
    return list(dict.fromkeys(categories))
