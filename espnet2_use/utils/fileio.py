"""Writing files whole or not at all: a temporary file in the same folder, then a rename."""
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np
import soundfile

PathLike = Union[str, os.PathLike]


def atomic_write(path: PathLike, write: Callable[[str], None]) -> None:
    """Writes ``path`` through ``write(tmp_path)``, then renames: whole or absent.

    Args:
        path: the final file; its folder is created if needed.
        write: writes the content to the temporary path it is given (same folder).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: PathLike, text: str) -> None:
    """Writes a UTF-8 text file atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)


def _json_ready(obj: Any) -> Any:
    """Converts numpy scalars/arrays and NaN to JSON-safe values (NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_ready(obj.tolist())
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not np.isfinite(obj) else float(obj)
    return obj


def atomic_write_json(path: PathLike, obj: Any) -> None:
    """Writes ``obj`` as indented JSON atomically (NaN/inf written as null)."""
    atomic_write_text(path, json.dumps(_json_ready(obj), indent=2, ensure_ascii=False) + "\n")


def atomic_write_wav(path: PathLike, signal: np.ndarray, fs: int) -> None:
    """Writes a mono float32 wav atomically (float keeps scores exact, no clipping)."""

    def write(tmp: str) -> None:
        soundfile.write(tmp, np.asarray(signal, dtype=np.float32), fs,
                        subtype="FLOAT", format="WAV")

    atomic_write(path, write)
