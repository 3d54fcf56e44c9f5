"""The packed model: one zip file of a trained USE model (recipe stage 8).

``pack`` writes it (``espnet2_use.bin.use_pack`` is its command line), ``unpack``
opens it for ``USE.from_packed``. The zip holds ``config.yaml`` (cue-encoder paths
rewritten to files inside the pack), ``model.pth``, the label vocabulary and the
sentencepiece model when the config uses them, and ``meta.json``: format version,
sample rate, the cue encoders and, for frozen pretrained encoders that are not packed
(a transformers folder, timm weights: large, and under their own licences), the paths
they were loaded from.
"""
import datetime
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import yaml

from espnet2_use.cue import cue_encoder_specs
from espnet2_use.utils.fileio import atomic_write
from espnet2_use.version import __version__

PACK_META = "meta.json"
PACK_CONFIG = "config.yaml"
PACK_MODEL = "model.pth"

MODEL_FILE_PREFERENCE = ("valid.loss.ave.pth", "valid.loss.best.pth", "latest.pth")


def recipe_root(exp_dir: Union[str, Path]) -> Path:
    """The recipe folder an ``exp/...`` directory belongs to: the nearest folder above
    it with a run.sh and a path.sh (paths in a training config are relative to it);
    the current folder when there is none."""
    for parent in Path(exp_dir).resolve().parents:
        if (parent / "run.sh").exists() and (parent / "path.sh").exists():
            return parent
    return Path.cwd()


PACKED_FILES = {"label_list": "labels.txt", "bpemodel": "bpe.model"}  # packed: small, ours
EXTERNAL_FILES = ("model_path", "weights")  # recorded: pretrained encoders


def pack(exp_dir: Path, out: Path, model_file: Optional[str] = None, root: Optional[Path] = None) -> Path:
    """Write the packed model ``out`` (whole or not at all) and return it."""
    exp_dir = Path(exp_dir)
    root = Path(root) if root is not None else recipe_root(exp_dir)
    config_path = exp_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: no training config")
    if model_file is None:
        found = [n for n in MODEL_FILE_PREFERENCE if (exp_dir / n).is_file()]
        if not found:
            raise FileNotFoundError(f"{exp_dir}: no model file ({', '.join(MODEL_FILE_PREFERENCE)})")
        model_file = found[0]
    weights = exp_dir / model_file
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no such model file")
    with open(config_path, encoding="utf-8") as f:
        conf = yaml.safe_load(f)

    def resolve(value: str) -> Path:
        return Path(value) if os.path.isabs(value) else root / value

    members = {PACK_MODEL: weights}
    encoders = {}
    for modality, spec in (conf.get("cue_encoders") or {}).items():
        spec_conf = spec.setdefault("conf", {})
        external = {}
        for key, packed_name in PACKED_FILES.items():
            if spec_conf.get(key):
                source = resolve(spec_conf[key])
                if not source.is_file():
                    raise FileNotFoundError(f"{config_path}: cue_encoders.{modality}.conf.{key}: {source} does not exist")
                name = f"{modality}_{packed_name}"
                members[name] = source
                spec_conf[key] = name
        for key in EXTERNAL_FILES:
            if spec_conf.get(key):
                external[key] = str(resolve(spec_conf[key]).resolve())
                spec_conf[key] = external[key]
        encoders[modality] = {"type": spec.get("type"), "external": external}
    meta = {
        "format": "espnet2_use packed model",
        "format_version": 1,
        "espnet2_use_version": __version__,
        "task": "use",
        "sample_rate": conf.get("sample_rate"),
        "source_exp_dir": str(exp_dir.resolve()),
        "model_file": model_file,
        "cue_encoders": encoders,
        "cue_example": "example" in cue_encoder_specs(conf.get("cue_encoders"), conf.get("cue_example")),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }

    def write(tmp: str) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(PACK_CONFIG, yaml.safe_dump(conf, sort_keys=False))
            zf.writestr(PACK_META, json.dumps(meta, indent=2) + "\n")
            for name, source in members.items():
                zf.write(source, name)

    atomic_write(out, write)
    return Path(out)


def unpack(path: Union[str, Path], cache_dir: Optional[Union[str, Path]] = None) -> Tuple[Path, Dict[str, Any]]:
    """Checks and extracts a packed model: (the folder it went to, its meta.json).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a USE packed model, or a corrupted one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such packed model")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            missing = {PACK_META, PACK_CONFIG, PACK_MODEL} - names
            if missing:
                raise ValueError(f"{path}: not a USE packed model (lacks {sorted(missing)})")
            bad = zf.testzip()
            if bad is not None:
                raise ValueError(f"{path}: corrupted packed model ({bad} fails its CRC check)")
            target = Path(cache_dir) if cache_dir else Path(tempfile.mkdtemp(prefix="use_model_"))
            zf.extractall(target)
    except zipfile.BadZipFile as e:
        raise ValueError(f"{path}: not a USE packed model (not a zip file: {e})") from None
    meta = json.loads((target / PACK_META).read_text())
    return target, meta
