#!/usr/bin/env python3
"""USE on real recordings that no split of the corpus contains: ``use-separate`` on
field recordings of OpenTTD's sound set (Debian's ``openttd-opensfx``, CC0 / CC-BY /
CC-BY-SA, a package the corpus does not use), one by one and two of them mixed.

    local/real_recordings.py --model exp/train_stage2/use_model.zip --out exp/real_recordings

The package is fetched once (``apt-get download`` + ``dpkg-deb -x`` into ``--cache``,
nothing installed; the reserved packages are refused as in ``local/data.sh``). Its
sounds live in one catalogue file, ``opensfx.cat``: a table of (offset, size) pairs,
then per sound a length-prefixed description (title, original recording, author,
licence) followed by a RIFF wav. The chosen entries are written as wav files with
their descriptions, the mixtures are the sums of two of them (each at its own level),
and ``use-separate`` separates every input (count and names by the model), writing
``<out>/use_output/<input>/`` and a summary, ``<out>/summary.json``, whose table is
printed.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from debian_packages import PINNED, FetchError, Fetcher, check_not_reserved  # noqa: E402

PACKAGE, VERSION = "openttd-opensfx", "1.0.3-2"
CATALOGUE = "usr/share/games/openttd/baseset/opensfx/opensfx.cat"
LICENCE = f"usr/share/doc/{PACKAGE}/copyright"
# Catalogue positions of field recordings (OpenTTD's SND_xx numbering, xx = position).
RECORDINGS: Dict[str, int] = {"horse": 0x26, "sheep_field": 0x24, "tropical_bird": 0x42,
                              "applause": 0x1D, "modern_bus": 0x1B, "chainsaw": 0x38}
MIXTURES: Dict[str, Tuple[str, str]] = {"horse_and_bird": ("horse", "tropical_bird"),
                                         "bus_and_applause": ("modern_bus", "applause")}


def fetch(cache: Path) -> Path:
    """The unpacked package (fetched once; a ``.fetched`` marker makes a rerun free)."""
    check_not_reserved([PACKAGE], "the real-recording demo")
    if PACKAGE in PINNED:
        raise SystemExit(f"{PACKAGE} is one of the corpus's packages: its sounds would not be unheard")
    dest = cache / f"{PACKAGE}_{VERSION}"
    if (dest / ".fetched").is_file():
        return dest
    cache.mkdir(parents=True, exist_ok=True)
    try:  # the package lists (apt-get update once when missing) and the pinned version in them
        Fetcher(cache).resolve(PACKAGE, VERSION)
    except FetchError as e:
        raise SystemExit(f"the demo's pin {PACKAGE}={VERSION} (local/real_recordings.py): {e}")
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        res = subprocess.run(["apt-get", "download", f"{PACKAGE}={VERSION}"], cwd=tmp,
                             capture_output=True, text=True)
        debs = list(Path(tmp).glob("*.deb"))
        if res.returncode != 0 or len(debs) != 1:
            raise SystemExit(f"apt-get download {PACKAGE}={VERSION} failed (exit {res.returncode}): "
                             f"{res.stderr.strip()[-400:]}")
        root = Path(tmp) / "root"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(root)], check=True)
        for rel in (CATALOGUE, LICENCE):
            if not (root / rel).is_file():
                raise SystemExit(f"{debs[0].name}: expected {rel} in the package")
        keep = Path(tmp) / "keep"
        for rel in (CATALOGUE, LICENCE):
            (keep / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(root / rel), str(keep / rel))
        (keep / ".fetched").write_text(f"name={PACKAGE}\nversion={VERSION}\n")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(keep, dest)
    return dest


def read_catalogue(path: Path) -> List[Tuple[str, bytes]]:
    """(description, wav bytes) per entry of an OpenTTD sound catalogue."""
    data = path.read_bytes()
    if len(data) < 8:
        raise SystemExit(f"{path}: too short for an OpenTTD sound catalogue")
    count = (struct.unpack_from("<I", data, 0)[0] & 0x7FFFFFFF) // 8
    entries = []
    for i in range(count):
        offset, size = struct.unpack_from("<II", data, 8 * i)
        offset &= 0x7FFFFFFF
        if offset + size > len(data):
            raise SystemExit(f"{path}: entry {i} runs past the end of the file (offset {offset}, size {size})")
        name_len = data[offset]
        name = data[offset + 1:offset + 1 + name_len].rstrip(b"\0").decode("utf-8", "replace")
        body = data[offset + 1 + name_len:offset + size]
        entries.append((name, body))
    return entries


def write_inputs(package: Path, out: Path) -> Dict[str, Dict]:
    """The chosen recordings and their mixtures as wav files under ``out``; their
    descriptions (the catalogue's words)."""
    entries = read_catalogue(package / CATALOGUE)
    out.mkdir(parents=True, exist_ok=True)
    audio, info = {}, {}
    for key, pos in RECORDINGS.items():
        description, body = entries[pos]
        with tempfile.NamedTemporaryFile(suffix=".wav") as f:
            f.write(body)
            f.flush()
            x, fs = sf.read(f.name, dtype="float32", always_2d=True)
        audio[key] = (x.mean(axis=1), fs)
        info[key] = {"description": description, "sources": 1}
    for key, (a, b) in MIXTURES.items():
        (xa, fa), (xb, fb) = audio[a], audio[b]
        if fa != fb:
            raise SystemExit(f"{a} ({fa} Hz) and {b} ({fb} Hz): the mixtures need one rate")
        mix = np.zeros(max(len(xa), len(xb)), dtype=np.float32)
        mix[:len(xa)] += xa
        mix[:len(xb)] += xb
        peak = float(np.abs(mix).max())
        audio[key] = (mix / peak * 0.9 if peak > 0.9 else mix, fa)
        info[key] = {"description": f"{a} + {b}, two of the recordings above summed", "sources": 2}
    for key, (x, fs) in audio.items():
        tmp = out / f".{key}.tmp.wav"
        sf.write(tmp, x, fs)
        os.replace(tmp, out / f"{key}.wav")
        info[key]["seconds"] = round(len(x) / fs, 2)
    return info


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="packed model (stage 8's use_model.zip)")
    parser.add_argument("--out", type=Path, default=Path("exp/real_recordings"))
    parser.add_argument("--cache", type=Path, default=Path("downloads/debian_demo"))
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args(argv)
    if not args.model.is_file():
        raise SystemExit(f"{args.model}: no packed model (run ./run.sh up to stage 8 first)")
    package = fetch(args.cache)
    info = write_inputs(package, args.out / "inputs")
    outdir = args.out / "use_output"
    cmd = [args.python, "-m", "espnet2_use.bin.use_separate", "--model", str(args.model), "-o", str(outdir),
           "--plot", *[str(args.out / "inputs" / f"{k}.wav") for k in info]]
    subprocess.run(cmd, check=True)
    rows = {}
    for key, meta in info.items():
        manifest = json.loads((outdir / key / "manifest.json").read_text())
        rows[key] = {**meta, "count": manifest["count"],
                     "names": [e["name"] for e in manifest["sources"]],
                     "name_scores": [e["name_score"] for e in manifest["sources"]],
                     "folder": str(outdir / key)}
    summary = {"package": f"{PACKAGE} {VERSION}", "model": str(args.model), "inputs": rows}
    tmp = args.out / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, args.out / "summary.json")
    print("| input | seconds | sources in it | count | names |\n|---|---|---|---|---|")
    for key, r in rows.items():
        print(f"| {key} | {r['seconds']} | {r['sources']} | {r['count']} | {', '.join(r['names'])} |")


if __name__ == "__main__":
    main()
