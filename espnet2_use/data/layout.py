"""The data layout of USE, in one table: what a data directory holds per source.

Each row is one per-source file of a Kaldi-style data directory
(``egs2/TEMPLATE/use1/README.md``): its file name, the name its entry has in a
training batch, the ESPnet loader type that reads it, and whether it is raw data
(written by ``local/data.sh``) or a cached feature (written by stage 2 from a raw
row, ``use_extract_cues``). Every consumer reads this table: the ``use`` task
(its optional data names), ``use_data_args`` (the ``--*_data_path_and_name_and_type``
arguments), the preprocessor (which batch entries belong to which source), the cue
network (which entry feeds which encoder), the validator, scoring and corpus
synthesis. Adding a cue kind is one row here plus its encoder (``cue/``): a cue that
is a time track of the mixture (the span) is an ``aligned`` encoder, and one that can be
read off the source's own reference is a ``derived`` row (see ``SourceFile``).

Source ``k`` is 1-based; an absent source ``k > n`` has a 0-sample wav in
``spk{k}.scp`` and empty cue values.
"""
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]

_K = "{k}"
_INDEX = r"([1-9][0-9]*)"


@dataclass(frozen=True)
class SourceFile:
    """One per-source file of a data directory.

    Args:
        kind: short name of the row (``ref``, ``text``, ``text_emb``, ...).
        file: file name, ``{k}`` for the source index (``text_spk{k}``).
        data_name: name of its batch entry (``text_spk{k}``).
        loader: ESPnet's loader type (``sound``, ``text``, ``kaldi_ark``).
        cached: a cached feature written by stage 2 (True) or raw data (False).
        modality: the cue modality it carries (``text``, ``label``, ``video``,
            ``example``, ``span``), None for the reference audio.
        derived: the cue can be read off the source's own reference (its encoder's
            ``derive``): no corpus writes it; training derives it from every (cropped)
            reference, decoding when the data directory has no such file.
        value: what a value looks like, for help texts (the CLI's cue flags).
    """

    kind: str
    file: str
    data_name: str
    loader: str
    cached: bool
    modality: Optional[str]
    derived: bool = False
    value: str = ""

    def file_name(self, k: int) -> str:
        return self.file.format(k=k)

    def name(self, k: int) -> str:
        """Batch data name of source ``k``."""
        return self.data_name.format(k=k)

    @property
    def file_regex(self) -> "re.Pattern":
        """Matches the file name of any source; group 1 is ``k``."""
        head, tail = self.file.split(_K)
        return re.compile(f"^{re.escape(head)}{_INDEX}{re.escape(tail)}$")

    @property
    def name_prefix(self) -> str:
        """The batch data name without its source index (data names end with ``{k}``)."""
        return self.data_name[: -len(_K)]


# The table. A cue modality has a raw row and, when its encoder runs a frozen
# network (``AbsCueEncoder.cached``), a cached row that training reads instead.
SOURCE_FILES: Tuple[SourceFile, ...] = (
    SourceFile("ref", "spk{k}.scp", "speech_ref{k}", "sound", False, None),
    SourceFile("text", "text_spk{k}", "text_spk{k}", "text", False, "text"),
    SourceFile("text_emb", "text_emb_spk{k}.scp", "text_emb_spk{k}", "kaldi_ark", True, "text"),
    SourceFile("label", "label_spk{k}", "label_spk{k}", "text", False, "label"),
    SourceFile("video", "video_spk{k}.scp", "video_spk{k}", "text", False, "video"),
    SourceFile("video_emb", "video_emb_spk{k}.scp", "video_emb_spk{k}", "kaldi_ark", True, "video"),
    SourceFile("example", "enroll_spk{k}.scp", "enroll_ref{k}", "sound", False, "example"),
    SourceFile("span", "span_spk{k}", "span_spk{k}", "text", False, "span", derived=True,
               value="when the sound is active, start-end in seconds: 1.2-2.0 3-3.5"),
)
BY_KIND: Dict[str, SourceFile] = {row.kind: row for row in SOURCE_FILES}
REFERENCE = BY_KIND["ref"]
EXAMPLE = "example"  # the modality of an audio example of the wanted sound
# Raw rows: what a data directory of ``local/data.sh`` holds (the validator checks them).
RAW_FILES: Tuple[SourceFile, ...] = tuple(row for row in SOURCE_FILES if not row.cached)
# Raw cue rows: what corpus synthesis writes per source, by modality.
RAW_CUES: Dict[str, SourceFile] = {
    row.modality: row for row in RAW_FILES if row.modality is not None
}
# Per-utterance files (not per source), with their batch names and loaders.
MIXTURE = ("wav.scp", "speech_mix", "sound")
NUM_SRC = ("utt2num_src", "num_src", "text_int")
CATEGORY_FILE = "utt2category"


def cue_file(modality: str, cached: bool) -> SourceFile:
    """The row of a modality's cue, raw or cached.

    Raises:
        ValueError: the table has no such row (a new modality needs its rows here).
    """
    for row in SOURCE_FILES:
        if row.modality == modality and (row.cached == cached or modality == EXAMPLE):
            return row
    kinds = sorted({row.modality for row in SOURCE_FILES if row.modality})
    raise ValueError(
        f"no {'cached' if cached else 'raw'} per-source file for cue modality {modality!r} "
        f"in espnet2_use/data/layout.py (modalities: {kinds})"
    )


def data_names(k: int) -> List[str]:
    """Every batch data name of source ``k``."""
    return [row.name(k) for row in SOURCE_FILES]


class DataNameMatcher:
    """Tells which row and source a batch data name belongs to.

    ``match(name)`` returns None or a dict with ``prefix`` (the name without its
    index), ``k`` (the index, a string as a regex group), ``modality`` and ``row``.
    """

    def __init__(self, rows: Tuple[SourceFile, ...]):
        self._rows = {row.name_prefix: row for row in rows}
        # Longest prefix first, so that ``text_emb_spk`` is not read as ``text_`` ...
        alternatives = "|".join(re.escape(p) for p in sorted(self._rows, key=len, reverse=True))
        self._regex = re.compile(rf"^(?P<prefix>{alternatives})(?P<k>\d+)$")

    def match(self, name: str) -> Optional[Dict[str, object]]:
        found = self._regex.match(name)
        if found is None:
            return None
        row = self._rows[found["prefix"]]
        return {"prefix": found["prefix"], "k": found["k"], "modality": row.modality, "row": row}


# Any per-source batch entry (references, raw and cached cues, audio examples).
SOURCE_NAME = DataNameMatcher(SOURCE_FILES)
# Raw cues read as text, which the preprocessor turns into ids with the encoder's extract.
TEXT_CUE_NAME = DataNameMatcher(
    tuple(row for row in RAW_FILES if row.modality is not None and row.loader == "text")
)


def find_source_files(data_dir: PathLike, row: SourceFile) -> List[Tuple[int, str]]:
    """``(k, path)`` of a row's files in a data directory, sorted by ``k``.

    Returns:
        ``[(1, path1), (2, path2), ...]``; empty when the directory has none.

    Raises:
        ValueError: a gap in the numbering (``text_spk1`` and ``text_spk3`` without
            ``text_spk2``): sources are numbered 1..K.
    """
    regex = row.file_regex
    found = sorted(
        int(m.group(1)) for name in os.listdir(data_dir) for m in [regex.match(name)] if m
    )
    for expect, k in enumerate(found, 1):
        if k != expect:
            raise ValueError(
                f"{data_dir}: {row.file_name(k)} exists but {row.file_name(expect)} does not "
                "(sources are numbered 1..K)"
            )
    return [(k, os.path.join(str(data_dir), row.file_name(k))) for k in found]
