"""The cue cache: run the frozen cue encoders once over a data dir and store their outputs.

The command line is ``espnet2_use.bin.use_extract_cues``; usage (from the recipe dir)::

    python -m espnet2_use.bin.use_extract_cues --data_dir data/test \\
        --out_dir dump/raw/test --config conf/tuning/x.yaml [--device cuda]
    # JOB splits, then one merge:
    python -m espnet2_use.bin.use_extract_cues ... --utt_list split/1/utts \\
        --out_dir dump/raw/test/cue_split/1
    python -m espnet2_use.bin.use_extract_cues --out_dir dump/raw/test \\
        --merge_from dump/raw/test/cue_split/1 dump/raw/test/cue_split/2

For every encoder of the config's ``cue_encoders`` section whose class is
``cached`` (``hf`` text, ``timm`` video) it reads ``text_spk{k}`` /
``video_spk{k}.scp`` (k = 1..K) and writes ``text_emb_spk{k}.ark/.scp`` /
``video_emb_spk{k}.ark/.scp``: one entry per utterance, a ``[0, D_in]`` array
for an absent cue. The features are exactly what the encoder's
``extract_batch`` returns, so inference that embeds a cue on the fly goes
through the same code.

- Identical raw cues (same caption text, same path string) are embedded and
  stored once per run: the scp lines of every utterance that uses the cue
  point to the same ark offset, possibly in the ark of an earlier source k.
- Relative paths in ``video_spk{k}.scp`` are resolved against the current
  working directory (the recipe dir), as every Kaldi-style scp of a recipe.
  The scp files name the arks as ``<out_dir>/<name>.ark`` with out_dir as
  given (relative stays relative to the recipe dir, as in ESPnet's dump/).
- Outputs are written to ``*.tmp`` files and renamed at the end; a marker
  ``.use_extract_cues.done`` keyed on the cached encoders' config section and
  the sha256 of the input lists (wav.scp, the cue files, the utt list) makes a
  re-run skip. The marker does not hash model weights or the video files
  themselves: replace those under the same path and delete the marker.
"""
import hashlib
import json
import logging
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import yaml
from kaldiio.matio import write_array
from tqdm import tqdm

from espnet2_use.cue import AbsCueEncoder, build_cue_encoder, cue_encoder_choices
from espnet2_use.data import layout
from espnet2_use.data.kaldi_dir import read_kaldi_text
from espnet2_use.utils.fileio import atomic_write_text

DONE_MARKER = ".use_extract_cues.done"
MARKER_VERSION = 1
# Cached rows of the layout table: ``<name>.scp`` / ``<name>.ark`` per source.
_CACHED_FILES = [row.file_regex for row in layout.SOURCE_FILES if row.cached]


def _emb_name(modality: str, k: int) -> str:
    """Cached features of source k, without the .scp / .ark extension."""
    return layout.cue_file(modality, cached=True).file_name(k)[: -len(".scp")]


def load_cue_config(config: str) -> Tuple[int, Dict[str, dict]]:
    """Read the shared dimension D and the ``cue_encoders`` section of a training config.

    D is the separator's ``emb_dim`` (cues and attractors share one space). Only the
    frozen part of the encoders runs here, so D merely sizes the unused projection.

    Args:
        config: YAML path.

    Returns:
        D and ``{modality: {"type": kind, "conf": {...}}}``.
    """
    if not os.path.isfile(config):
        raise FileNotFoundError(f"config {config!r} does not exist")
    with open(config, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    sections = data.get("cue_encoders")
    if not isinstance(sections, dict) or not sections:
        raise ValueError(
            f"{config}: key 'cue_encoders' missing or empty; expected e.g. "
            "cue_encoders: {text: {type: hf, conf: {model_path: ...}}}"
        )
    backbone_conf = ((data.get("separator_conf") or {}).get("backbone_conf") or {})
    cue_dim = backbone_conf.get("emb_dim", 64)
    if not isinstance(cue_dim, int) or cue_dim <= 0:
        raise ValueError(
            f"{config}: separator_conf.backbone_conf.emb_dim must be a positive int, got {cue_dim!r}"
        )
    for modality, section in sections.items():
        if not isinstance(section, dict) or "type" not in section:
            raise ValueError(
                f"{config}: cue_encoders.{modality} must be a mapping with 'type' "
                f"(one of {sorted(cue_encoder_choices)}) and optional 'conf'"
            )
        kind = str(section["type"]).lower()
        if kind not in cue_encoder_choices:
            raise ValueError(
                f"{config}: cue_encoders.{modality}.type {section['type']!r} is not "
                f"one of {sorted(cue_encoder_choices)}"
            )
        cls_modality = cue_encoder_choices[kind].modality
        if cls_modality != modality:
            raise ValueError(
                f"{config}: cue_encoders.{modality} has type {kind!r}, an encoder "
                f"of {cls_modality!r} cues"
            )
        conf = section.get("conf") or {}
        if not isinstance(conf, dict):
            raise ValueError(f"{config}: cue_encoders.{modality}.conf must be a mapping")
    return cue_dim, sections


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _utterances(
    data_dir: str, utt_list: Optional[str], first_cue_file: str
) -> Tuple[List[str], List[str]]:
    """Utterances to process, and the input files that define them.

    The set's utterances are those of wav.scp (or of the first cue file when
    the dir has no wav.scp); ``utt_list`` (first column) selects a subset.
    """
    wav_scp = os.path.join(data_dir, "wav.scp")
    source = wav_scp if os.path.isfile(wav_scp) else first_cue_file
    utts = list(read_kaldi_text(source))
    inputs = [source]
    if utt_list is not None:
        wanted = list(read_kaldi_text(utt_list))
        known = set(utts)
        unknown = [u for u in wanted if u not in known]
        if unknown:
            raise ValueError(
                f"{utt_list}: {len(unknown)} utterance(s) not in {source}, e.g. "
                f"{unknown[:3]}"
            )
        utts = wanted
        inputs.append(utt_list)
    return sorted(utts), inputs


def extract_cues(
    data_dir: str,
    out_dir: str,
    config: str,
    utt_list: Optional[str] = None,
    device: str = "cpu",
    encoders: Optional[Dict[str, AbsCueEncoder]] = None,
) -> List[str]:
    """Cache the cached encoders' features of a data dir (see module doc).

    Args:
        data_dir: ``data/<set>`` with the cue files.
        out_dir: where the ark/scp files go (e.g. ``dump/raw/<set>``).
        config: training config with ``cue_encoders`` and ``cue_dim``.
        utt_list: optional file whose first column lists the utterances to
            process (JOB splits).
        device: where the frozen networks run.
        encoders: built encoders by modality, reused across calls of one process
            (filled here when empty), so several sets load the networks once.

    Returns:
        The scp files of out_dir (also when the run was skipped as done).
    """
    cue_dim, sections = load_cue_config(config)
    cached = {
        m: s
        for m, s in sorted(sections.items())
        if cue_encoder_choices[str(s["type"]).lower()].cached
    }
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"data dir {data_dir!r} does not exist")
    cue_files = {m: layout.find_source_files(data_dir, layout.cue_file(m, cached=False)) for m in cached}
    all_cue_files = [p for m in cached for _, p in cue_files[m]]

    utts: List[str] = []
    key_inputs: List[str] = []
    if all_cue_files:
        utts, key_inputs = _utterances(data_dir, utt_list, all_cue_files[0])
    key_inputs += all_cue_files
    key = hashlib.sha256(
        json.dumps(
            {
                "version": MARKER_VERSION,
                "cue_encoders": cached,
                "inputs": [[os.path.basename(p), _sha256(p)] for p in key_inputs],
            },
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()

    os.makedirs(out_dir, exist_ok=True)
    marker = os.path.join(out_dir, DONE_MARKER)
    outputs = [
        os.path.join(out_dir, layout.cue_file(m, cached=True).file_name(k))
        for m in cached
        for k, _ in cue_files[m]
    ]
    if os.path.isfile(marker) and all(os.path.isfile(p) for p in outputs):
        with open(marker, encoding="utf-8") as f:
            if json.load(f).get("key") == key:
                logging.info(f"{out_dir}: cue embeddings up to date, skipping")
                return outputs
    if not cached:
        logging.info(f"{config}: no cached cue encoder (hf, timm); nothing to extract")
    elif not all_cue_files:
        logging.info(f"{data_dir}: no text_spk*/video_spk*.scp files; nothing to extract")

    finals: List[Tuple[str, str]] = []  # (tmp, final), filled before a tmp is opened
    try:
        for modality, section in cached.items():
            if not cue_files[modality]:
                continue
            encoders = {} if encoders is None else encoders
            if modality not in encoders:
                encoders[modality] = build_cue_encoder(
                    section["type"], cue_dim, section.get("conf") or {}
                ).to(device).eval()
            encoder = encoders[modality]
            _extract_modality(encoder, modality, cue_files[modality], utts, out_dir, finals)
        # Arks first: an scp must never point into an ark that is not there yet.
        for tmp, final in sorted(finals, key=lambda tf: not tf[1].endswith(".ark")):
            os.replace(tmp, final)
    except BaseException:
        for tmp, _ in finals:
            if os.path.exists(tmp):
                os.remove(tmp)
        raise
    atomic_write_text(
        marker, json.dumps({"key": key, "config": config, "outputs": outputs}, indent=1)
    )
    return outputs


def _extract_modality(
    encoder: AbsCueEncoder,
    modality: str,
    files: List[Tuple[int, str]],
    utts: List[str],
    out_dir: str,
    pairs: List[Tuple[str, str]],
) -> None:
    """Embed the cues of one modality into tmp ark/scp files.

    Args:
        pairs: gets the ``(tmp, final)`` path pairs, to rename once everything
            succeeded (or to remove on failure), before each tmp is created.
    """
    written: Dict[str, Tuple[str, int]] = {}  # raw cue -> (final ark, offset)
    chunk_size = max(1, int(getattr(encoder, "batch_size", 1)))
    for k, cue_file in files:
        raws = read_kaldi_text(cue_file)
        missing = [u for u in utts if u not in raws]
        if missing:
            raise ValueError(
                f"{cue_file}: {len(missing)} utterance(s) of the set missing, e.g. "
                f"{missing[:3]} (every cue file lists every utterance; an absent "
                "cue is the utt-id alone)"
            )
        name = _emb_name(modality, k)
        ark = os.path.join(out_dir, name + ".ark")
        scp = os.path.join(out_dir, name + ".scp")
        pairs += [(ark + ".tmp", ark), (scp + ".tmp", scp)]

        first_utt: Dict[str, str] = {}
        for utt in utts:
            first_utt.setdefault(raws[utt], utt)
        todo = [raw for raw in first_utt if raw not in written]
        with open(ark + ".tmp", "wb") as fd, tqdm(
            total=len(todo), desc=f"{name} ({cue_file})", unit="cue", file=sys.stderr
        ) as bar:
            for start in range(0, len(todo), chunk_size):
                chunk = todo[start : start + chunk_size]
                arrays = _extract_chunk(encoder, chunk, first_utt, cue_file)
                for raw, arr in zip(chunk, arrays):
                    dim = encoder.input_dim
                    if arr.dtype != np.float32 or arr.ndim != 2 or arr.shape[1] != dim:
                        raise ValueError(
                            f"{type(encoder).__name__}.extract gave {arr.dtype} "
                            f"{arr.shape}; expected float32 [L, {dim}]"
                        )
                    fd.write((first_utt[raw] + " ").encode("utf-8"))
                    written[raw] = (ark, fd.tell())
                    write_array(fd, arr)
                bar.update(len(chunk))
        lines = [f"{utt} {written[raws[utt]][0]}:{written[raws[utt]][1]}\n" for utt in utts]
        with open(scp + ".tmp", "w", encoding="utf-8") as f:
            f.writelines(lines)


def _extract_chunk(
    encoder: AbsCueEncoder, chunk: List[str], first_utt: Dict[str, str], cue_file: str
) -> List[np.ndarray]:
    """extract_batch, and on failure name the utterance whose cue failed."""
    try:
        return encoder.extract_batch(chunk)
    except (ValueError, OSError) as batch_error:
        for raw in chunk:
            try:
                encoder.extract(raw)
            except (ValueError, OSError) as e:
                raise ValueError(f"{cue_file}: utterance {first_utt[raw]}: {e}") from e
        raise batch_error


def merge_cue_outputs(
    split_dirs: Sequence[str], out_dir: str, data_dir: Optional[str] = None
) -> List[str]:
    """Concatenate the scp files of split runs (``--utt_list``) into out_dir.

    The arks stay in the split dirs; the merged scp lines point there.

    Args:
        split_dirs: out_dirs of finished split runs.
        out_dir: where the merged scp files go.
        data_dir: when given, every utterance of its wav.scp must be present.

    Returns:
        The merged scp files.
    """
    names = None
    for d in split_dirs:
        if not os.path.isfile(os.path.join(d, DONE_MARKER)):
            raise ValueError(
                f"split dir {d!r} has no {DONE_MARKER}: its extraction did not finish"
            )
        found = sorted(n for n in os.listdir(d) if any(r.match(n) for r in _CACHED_FILES))
        if names is None:
            names = found
        elif found != names:
            raise ValueError(
                f"split dir {d!r} holds {found}, but {split_dirs[0]!r} holds {names}"
            )
    expected = None
    if data_dir is not None:
        expected = set(read_kaldi_text(os.path.join(data_dir, "wav.scp")))
    os.makedirs(out_dir, exist_ok=True)
    outputs = []
    for name in names or []:
        entries: Dict[str, str] = {}
        for d in split_dirs:
            path = os.path.join(d, name)
            for utt, value in read_kaldi_text(path).items():
                if utt in entries:
                    raise ValueError(f"{path}: utterance {utt!r} also in another split")
                entries[utt] = value
        if expected is not None and set(entries) != expected:
            lost = sorted(expected - set(entries))
            raise ValueError(
                f"merged {name}: {len(lost)} utterance(s) of {data_dir}/wav.scp "
                f"missing, e.g. {lost[:3]}"
            )
        out = os.path.join(out_dir, name)
        atomic_write_text(out, "".join(f"{u} {entries[u]}\n" for u in sorted(entries)))
        outputs.append(out)
    atomic_write_text(
        os.path.join(out_dir, DONE_MARKER),
        json.dumps({"merged_from": list(split_dirs), "outputs": outputs}, indent=1),
    )
    return outputs
