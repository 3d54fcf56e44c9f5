"""Names and readers of the per-source cue files of a data directory.

Layout: egs2/TEMPLATE/use1/README.md. Source ``k`` (1-based) of an utterance
has ``text_spk{k}`` (caption), ``label_spk{k}`` (class name) and
``video_spk{k}.scp`` (path of a video or picture); an empty value is an
absent cue. Cached embeddings go to ``{modality}_emb_spk{k}.scp/.ark``.
"""
import os
import re
from typing import Dict, List, Tuple

# Raw cue file of source k, per modality.
CUE_FILE_PATTERNS: Dict[str, str] = {
    "text": "text_spk{k}",
    "label": "label_spk{k}",
    "video": "video_spk{k}.scp",
}
# Cached embeddings of source k (kaldiio ark/scp; add ".ark" / ".scp").
CUE_EMB_PATTERN = "{modality}_emb_spk{k}"


def find_cue_files(data_dir: str, modality: str) -> List[Tuple[int, str]]:
    """Find ``source index, path`` of a modality's cue files in a data dir.

    Args:
        data_dir: ``data/<set>``.
        modality: "text" | "label" | "video".

    Returns:
        ``[(1, path1), (2, path2), ...]``; empty when the set has none. A gap
        (e.g. ``text_spk1`` and ``text_spk3`` without ``text_spk2``) is an error.
    """
    if modality not in CUE_FILE_PATTERNS:
        raise ValueError(
            f"unknown cue modality {modality!r}; expected one of {sorted(CUE_FILE_PATTERNS)}"
        )
    pattern = CUE_FILE_PATTERNS[modality]
    regex = re.compile(re.escape(pattern).replace(re.escape("{k}"), r"([1-9][0-9]*)"))
    found = sorted(
        int(m.group(1))
        for name in os.listdir(data_dir)
        for m in [regex.fullmatch(name)]
        if m
    )
    for expect, k in enumerate(found, 1):
        if k != expect:
            raise ValueError(
                f"{data_dir}: {pattern.format(k=k)} exists but "
                f"{pattern.format(k=expect)} does not (sources are numbered 1..K)"
            )
    return [(k, os.path.join(data_dir, pattern.format(k=k))) for k in found]
