"""The debian_sounds corpus (egs2/debian_sounds/use1/local/): the class map, reading and
trimming, duplicates, the refusal of the reserved packages, the fetch cache, splits held
out by clip, recording and voice, and determinism, on a miniature package tree built
here in the packages' real layouts (nothing is downloaded)."""
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
LOCAL = REPO / "egs2" / "debian_sounds" / "use1" / "local"
sys.path.insert(0, str(LOCAL))
sys.path.insert(0, str(REPO / "egs2" / "TEMPLATE" / "use1" / "utils"))

import build_corpus  # noqa: E402
import class_map  # noqa: E402
import debian_packages  # noqa: E402
import recorded_clips  # noqa: E402
import validate_data_dir  # noqa: E402

FS = 8000
RESERVED = ["tuxpaint-stamps-default", "ufoai-sound", "sonic-pi-samples", "asterisk-core-sounds-en",
            "asterisk-core-sounds-en-wav", "asterisk-core-sounds-en-gsm", "asterisk-core-sounds-en-g722"]
MINI_PACKAGES = ["gcompris-qt-data", "hedgewars-data", "hydrogen-data", "ktuberling-data", "lincity-ng-data", "lmms-common"]
SETS = {"train": 8, "valid": 4, "test_ss": 6, "test_tse": 4}


# ----------------------------------------------------------------------------
# Miniature package tree
# ----------------------------------------------------------------------------
def sound(seed: int, seconds: float, fs: int, channels: int = 1, pad: float = 0.0) -> np.ndarray:
    """A distinct recorded-like sound: random partials and a noise band under an envelope,
    with ``pad`` seconds of silence on both sides; [T] or [T, C]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    x = sum(rng.uniform(0.1, 0.3) * np.sin(2 * np.pi * rng.uniform(100, 3000) * t + rng.uniform(0, 6)) for _ in range(3))
    noise = np.convolve(rng.standard_normal(len(t)), np.ones(int(rng.integers(2, 12))) / 6, mode="same")
    env = np.abs(np.sin(np.pi * rng.uniform(0.5, 4) * t / seconds)) + 0.2
    y = 0.5 * (x + rng.uniform(0.05, 0.3) * noise) * env / 1.5
    silence = np.zeros(int(pad * fs))
    y = np.concatenate([silence, y, silence])
    return np.stack([y, 0.8 * y], axis=1) if channels == 2 else y


def write_audio(path: Path, data: np.ndarray, fs: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".ogg": "OGG", ".oga": "OGG", ".wav": "WAV", ".flac": "FLAC"}[path.suffix]
    sf.write(str(path), data, fs, format=fmt, subtype="VORBIS" if fmt == "OGG" else "PCM_16")


def make_rcc(files: Dict[str, bytes], compress: Sequence[str] = ()) -> bytes:
    """A Qt resource bundle (format version 2) holding ``files`` (paths with folders)."""
    tree: Dict[str, object] = {}
    for path, blob in files.items():
        node = tree
        parts = path.split("/")
        for part in parts[:-1]:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[parts[-1]] = (path, blob)  # type: ignore[index]
    names, data, entries = bytearray(), bytearray(), []
    name_off: Dict[str, int] = {}

    def add_name(name: str) -> int:
        if name not in name_off:
            name_off[name] = len(names)
            enc = name.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(name), zlib.crc32(enc)) + enc)
        return name_off[name]

    # Breadth-first: the children of a directory are consecutive entries.
    entries.append(None)
    queue: List[Tuple[int, str, object]] = [(0, "", tree)]
    while queue:
        index, name, node = queue.pop(0)
        if isinstance(node, dict):
            first = len(entries)
            children = sorted(node.items())
            entries.extend([None] * len(children))
            entries[index] = struct.pack(">IHII", add_name(name) if index else 0, 2, len(children), first) + b"\0" * 8
            for k, (child_name, child) in enumerate(children):
                queue.append((first + k, child_name, child))
        else:
            path, blob = node  # type: ignore[misc]
            flags = 0
            if path in compress:
                blob = struct.pack(">I", len(blob)) + zlib.compress(blob)
                flags = 1
            offset = len(data)
            data.extend(struct.pack(">I", len(blob)) + blob)
            entries[index] = struct.pack(">IHHHI", add_name(name), flags, 0, 0, offset) + b"\0" * 8
    tree_bytes = b"".join(entries)  # type: ignore[arg-type]
    header = 20
    tree_off, data_off = header, header + len(tree_bytes)
    names_off = data_off + len(data)
    return b"qres" + struct.pack(">IIII", 2, tree_off, data_off, names_off) + tree_bytes + bytes(data) + bytes(names)


def write_package(cache: Path, name: str, files: Dict[str, object], seed_base: int) -> Path:
    """A fetched package: its folder, marker, licence and files (arrays become audio at their rate)."""
    version = debian_packages.PINNED[name]
    root = debian_packages.package_dir(cache, name, version)
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            data, fs = content  # type: ignore[misc]
            write_audio(path, data, fs)
    lic = root / "usr" / "share" / "doc" / name / "copyright"
    lic.parent.mkdir(parents=True, exist_ok=True)
    lic.write_text(f"Licence of {name} (test)\n")
    (root / debian_packages.MARKER).write_text(f"name={name}\nversion={version}\npinned={version}\nsha256=test{seed_base}\n")
    return root


def ogg_bytes(data: np.ndarray, fs: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, data, fs, format="OGG", subtype="VORBIS")
    return buf.getvalue()


def webp_bytes(colour: Tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buf, format="WEBP")
    return buf.getvalue()


KT = "usr/share/ktuberling/sounds"
HW = "usr/share/games/hedgewars/Data/Sounds/voices"
LANGS = ["de", "en", "fr", "it", "nl", "sv", "uk"]
PACKS = ["Default", "British", "Pirate", "Surfer", "Mobster", "Classic", "HillBilly"]


def build_tree(cache: Path) -> None:
    """The miniature cache: 6 packages in their real layouts."""
    seed = iter(range(1000, 100000))
    kt = {f"{KT}/{lang}/{word}.ogg": (sound(next(seed), 0.7, 22050, pad=0.3), 22050) for lang in LANGS for word in ("ball", "egypt_camel")}
    kt[f"{KT}/de/tux-zzz.ogg"] = (sound(next(seed), 0.5, 22050), 22050)  # unclear: left out
    kt[f"{KT}/en/hat.ogg"] = (np.zeros(8000), 16000)  # silent: dropped
    write_package(cache, "ktuberling-data", kt, 1)
    hw: Dict[str, object] = {}
    for pack in PACKS:
        for phrase in ("Hello", "Comeonthen"):
            hw[f"{HW}/{pack}/{phrase}.ogg"] = (sound(next(seed), 0.8, 44100, channels=2), 44100)
        hw[f"{HW}/{pack}/Laugh.ogg"] = (sound(next(seed), 0.9, 44100), 44100)
    hw[f"{HW}/Robot/Hello.ogg"] = (sound(next(seed), 0.8, 44100), 44100)  # a vocoder: left out
    write_package(cache, "hedgewars-data", hw, 2)
    lc = {f"usr/share/games/lincity-ng/sounds/Water{i}.wav": (sound(next(seed), 9.0 if i == 1 else 1.5, 11025), 11025) for i in range(1, 7)}
    lc["usr/share/games/lincity-ng/sounds/Click.wav"] = (sound(next(seed), 0.3, 11025), 11025)  # UI: left out
    write_package(cache, "lincity-ng-data", lc, 3)
    lm = {f"usr/share/lmms/samples/drums/kick{i:02d}.ogg": (sound(next(seed), 0.4, 44100), 44100) for i in range(1, 6)}
    write_package(cache, "lmms-common", lm, 4)
    kick = sound(next(seed), 0.5, 48000)
    hg = {f"usr/share/hydrogen/data/drumkits/GMRockKit/Kick-{v}.wav": (kick * g, 48000) for v, g in (("Hard", 0.9), ("Med", 0.5))}
    hg["usr/share/hydrogen/data/drumkits/GMRockKit/Kick-Soft.wav"] = (sound(next(seed), 0.5, 48000), 48000)
    hg["usr/share/hydrogen/data/drumkits/GMRockKit/Snare-Hard.wav"] = (sound(next(seed), 0.5, 48000), 48000)
    hg["usr/share/hydrogen/data/drumkits/GMRockKit/Snare-Soft.flac"] = (sound(next(seed), 0.5, 48000), 48000)
    write_package(cache, "hydrogen-data", hg, 5)
    base = "gcompris/src/activities/explore_farm_animals/resource/animals"
    bundle = {
        f"{base}/dog.ogg": ogg_bytes(sound(next(seed), 1.2, 44100), 44100),
        f"{base}/dog.webp": webp_bytes((200, 120, 40)),
        f"{base}/README": b"sounds of farm animals",
    }
    mem = "gcompris/src/activities/memory-sound/resource"
    bundle.update({f"{mem}/LRBark_{i}_LA_cut.ogg": ogg_bytes(sound(next(seed), 1.0, 44100), 44100) for i in (1, 2, 3, 4, 5)})
    rcc = make_rcc(bundle, compress=[f"{base}/dog.ogg", f"{base}/README"])
    write_package(cache, "gcompris-qt-data", {"usr/share/gcompris-qt/rcc/explore_farm_animals.rcc": rcc}, 6)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("debian_cache") / "downloads" / "debian"
    build_tree(root)
    return root


def run_build(cache: Path, out: Path, nj: int = 1, extra: Sequence[str] = ()) -> dict:
    argv = ["--cache", str(cache), "--out", str(out), "--nj", str(nj), "--packages", *MINI_PACKAGES,
            *[f"--num_{k}={v}" for k, v in SETS.items()], *extra]
    args = build_corpus.get_parser().parse_args(argv)
    return build_corpus.build(args)


@pytest.fixture(scope="module")
def corpus(cache: Path, tmp_path_factory) -> Tuple[Path, dict]:
    out = tmp_path_factory.mktemp("corpus_a") / "data"
    stats = run_build(cache, out, nj=1)
    return out, stats


def read_jsonl(path: Path) -> List[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def tree_digest(root: Path) -> Dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------
# Class map
# ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "package, rel, label, voice, words",
    [
        ("ktuberling-data", f"{KT}/de/egypt_camel.ogg", "speech", "de", "camel"),
        ("ktuberling-data", f"{KT}/sr@latin/brkovi.ogg", "speech", "sr", "brkovi"),  # (one speaker, two scripts)
        ("ktuberling-data", f"{KT}/fr/egypte_chameau.wav", "speech", "fr", "chameau"),  # French file names
        ("hedgewars-data", f"{HW}/Default_pl/Hello.ogg", "shouting", "hedgewars:Default", "hello"),  # (a localisation)
        ("hedgewars-data", f"{HW}/Pirate/Comeonthen.ogg", "shouting", "hedgewars:Pirate", "come on then"),
        ("hedgewars-data", f"{HW}/Pirate/Laugh.ogg", "laughter", "hedgewars:Pirate", ""),
        ("hedgewars-data", f"{HW}/British/Ow2.ogg", "pain cry", "hedgewars:British", ""),
        ("hedgewars-data", f"{HW}/Singer/Hello.ogg", "singing", None, "hello"),
        ("hydrogen-data", "usr/share/hydrogen/data/drumkits/GMRockKit/HatOpen-Soft.wav", "hi-hat", "hydrogen:GMRockKit", ""),
        ("lmms-common", "usr/share/lmms/samples/drums/bassdrum_acoustic01.ogg", "kick drum", None, "bass drum"),
        ("lincity-ng-data", "usr/share/games/lincity-ng/sounds/TraficHigh2.wav", "road traffic", None, ""),
        ("wesnoth-1.16-data", "usr/share/games/wesnoth/1.16/data/core/sounds/human-female-hit-2.ogg", "pain cry", "wesnoth:human-female", ""),
    ],
)
def test_class_map_classifies_by_folder_and_name(package: str, rel: str, label: str, voice: Optional[str], words: str):
    m = class_map.classify(package, rel)
    assert m is not None, rel
    assert (m.label, m.voice, m.words) == (label, voice, words)


@pytest.mark.parametrize(
    "package, rel",
    [
        ("ktuberling-data", f"{KT}/de/tux-zzz.ogg"),  # an effect or a word? unclear
        ("ktuberling-data", f"{KT}/ca/Frier-Tux.ogg"),
        ("hedgewars-data", f"{HW}/Robot/Hello.ogg"),  # a vocoder
        ("hedgewars-data", f"{HW}/Default/Jump1.ogg"),  # a grunt
        ("hydrogen-data", "usr/share/hydrogen/data/drumkits/TR808EmulationKit/808_Kick_Long.flac"),  # a synthesiser
        ("lincity-ng-data", "usr/share/games/lincity-ng/sounds/Click.wav"),
        ("lmms-common", f"{KT}/de/ball.ogg"),  # a rule holds for its own package only
    ],
)
def test_class_map_leaves_unclear_files_out(package: str, rel: str):
    assert class_map.classify(package, rel) is None


def test_class_map_covers_25_classes_with_captions_and_pictures():
    used = {r.label for r in class_map.RULES if r.label}
    assert len(used) >= 25 and used <= set(class_map.LABELS)
    assert all(len(c.captions) >= 3 for c in class_map.CLASSES)
    dog = class_map.classify("gcompris-qt-data", "usr/share/gcompris-qt/rcc/x.rcc!gcompris/src/activities/explore_farm_animals/resource/animals/dog.ogg")
    assert dog.picture == "usr/share/gcompris-qt/rcc/x.rcc!gcompris/src/activities/explore_farm_animals/resource/animals/dog.webp"
    captions = {class_map.caption("speech", "camel", "German", f"clip{i}", 0) for i in range(60)}
    assert any('"camel"' in c and "German" in c for c in captions)  # the clip's own words
    assert any("camel" not in c for c in captions)  # and the class's phrasings
    assert class_map.caption("speech", "camel", "German", "clipX", 0) == class_map.caption("speech", "camel", "German", "clipX", 0)
    assert all("{" not in class_map.caption("speech", "", "", f"c{i}", 0) for i in range(30))
    # Words in the spoken language are quoted, never "translated" as the English ones are.
    native = {class_map.caption("speech", "chameau", "French", f"clip{i}", 0, native=True) for i in range(60)}
    assert any('"chameau"' in c for c in native) and not any("word for" in c for c in native)
    assert class_map.classify("ktuberling-data", f"{KT}/fr/egypte_chameau.wav").native


# ----------------------------------------------------------------------------
# Audio: formats, rcc, trimming, duplicates
# ----------------------------------------------------------------------------
def test_read_audio_any_format_rate_and_channels(tmp_path: Path):
    def tones(fs: int) -> np.ndarray:  # the same sound at any rate, stereo [T, 2]
        t = np.arange(fs) / fs
        y = (0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1234 * t)) * np.sin(np.pi * t)
        return np.stack([y, 0.5 * y], axis=1)

    reads = []
    for suffix, fs in ((".ogg", 44100), (".flac", 22050), (".wav", 16000), (".oga", 48000)):
        src = tones(fs)
        path = tmp_path / f"a{suffix}"
        write_audio(path, src, fs)
        y = recorded_clips.read_audio(path.read_bytes(), FS, str(path))
        assert y.ndim == 1 and abs(len(y) - FS) <= 2, (suffix, y.shape)
        reads.append(y[: FS - 2])
    for y in reads[1:]:
        assert np.corrcoef(reads[0], y)[0, 1] > 0.9
    with pytest.raises(recorded_clips.ClipError, match="broken.ogg: not a readable"):
        recorded_clips.read_audio(b"OggS not really", FS, "broken.ogg")


def test_rcc_bundle_lists_and_reads_nested_files(tmp_path: Path):
    files = {"a/b/one.ogg": b"1" * 50, "a/two.txt": b"two", "three.wav": b"3" * 7}
    path = tmp_path / "x.rcc"
    path.write_bytes(make_rcc(files, compress=["a/b/one.ogg"]))
    assert recorded_clips.read_rcc(path) == files
    (tmp_path / "bad.rcc").write_bytes(b"not a bundle at all")
    with pytest.raises(recorded_clips.ClipError, match="bad.rcc: not a Qt resource bundle"):
        recorded_clips.read_rcc(tmp_path / "bad.rcc")


def test_trim_cuts_to_where_it_sounds_and_drops_silence():
    x = sound(3, 1.0, FS, pad=0.5)  # 0.5 s silence, 1 s sound, 0.5 s silence
    start, stop = recorded_clips.trim(x, FS)
    assert abs(start - int(0.5 * FS)) <= 0.02 * FS and abs(stop - int(1.5 * FS)) <= 0.02 * FS
    assert recorded_clips.trim(np.zeros(FS), FS) is None
    assert recorded_clips.trim(1e-5 * np.ones(FS), FS) is None  # -100 dBFS: silent
    assert recorded_clips.cut_segments(sound(4, 0.05, FS), FS, 0.08, 4.0, 6) == []  # too short


def test_long_recordings_give_segments_of_at_most_max_dur():
    x = sound(5, 30.0, FS, pad=1.0)
    segs = recorded_clips.cut_segments(x, FS, 0.1, 4.0, 6)
    assert len(segs) == 6
    assert all(0 < b - a <= 4 * FS for a, b in segs)
    assert all(a >= 0.98 * FS for a, _ in segs) and all(b <= 31.02 * FS for _, b in segs)
    assert [a for a, _ in segs] == sorted(a for a, _ in segs)


def test_near_duplicates_are_found_and_other_clips_kept():
    a = sound(11, 1.0, FS)
    fp = lambda y: recorded_clips.fingerprint(y, FS)  # noqa: E731
    assert recorded_clips.is_near_duplicate(fp(a), len(a), fp(0.3 * a), len(a))  # another velocity
    noisy = a + 1e-4 * np.random.default_rng(0).standard_normal(len(a))
    assert recorded_clips.is_near_duplicate(fp(a), len(a), fp(noisy), len(noisy))
    b = sound(12, 1.0, FS)
    assert not recorded_clips.is_near_duplicate(fp(a), len(a), fp(b), len(b))
    assert not recorded_clips.is_near_duplicate(fp(a), len(a), fp(a[: FS // 2]), FS // 2)  # lengths differ


# ----------------------------------------------------------------------------
# Reserved packages and the fetch cache
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", RESERVED)
def test_reserved_packages_are_refused_before_any_command(name: str, tmp_path: Path):
    calls: List[List[str]] = []

    def runner(cmd, cwd):
        calls.append(cmd)
        raise AssertionError(f"no command may run for a reserved package: {cmd}")

    fetcher = debian_packages.Fetcher(tmp_path, run=runner, lists_dir=tmp_path)
    with pytest.raises(debian_packages.ReservedPackageError, match="reserved for evaluation"):
        fetcher.fetch_all({"lmms-common": "1.2.2+dfsg1-6", name: "1"})
    with pytest.raises(debian_packages.ReservedPackageError, match=name):
        fetcher.fetch(name, "1")
    assert calls == [] and not any(tmp_path.iterdir())


def test_reserved_package_refused_on_the_command_lines(tmp_path: Path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, str(LOCAL / "debian_packages.py"), "--cache", str(tmp_path), "--packages", "ufoai-sound"],
                         capture_output=True, text=True, env=env)
    assert res.returncode != 0 and "ufoai-sound" in res.stderr and "reserved for evaluation" in res.stderr
    with pytest.raises(debian_packages.ReservedPackageError):
        build_corpus.build(build_corpus.get_parser().parse_args(["--cache", str(tmp_path), "--packages", "sonic-pi-samples"]))


def test_build_refuses_a_cache_holding_a_reserved_package(tmp_path: Path):
    cache = tmp_path / "debian"
    build_tree(cache)
    (cache / "asterisk-core-sounds-en-wav_1.6.1-1").mkdir()  # (empty: nothing of the real package)
    with pytest.raises(debian_packages.ReservedPackageError, match="asterisk-core-sounds-en-wav"):
        run_build(cache, tmp_path / "data")
    assert not (tmp_path / "data").exists()


class FakeApt:
    """apt-get / apt-cache / dpkg-deb as a runner: a package tree as dpkg-deb would unpack it."""

    def __init__(self, versions: Dict[str, List[str]]):
        self.versions = versions
        self.calls: List[List[str]] = []

    def __call__(self, cmd: List[str], cwd: Optional[Path]) -> subprocess.CompletedProcess:
        self.calls.append(cmd)
        ok = lambda out="": subprocess.CompletedProcess(cmd, 0, out, "")  # noqa: E731
        if cmd[:2] == ["apt-get", "update"]:
            return ok()
        if cmd[:2] == ["apt-cache", "madison"]:
            return ok("".join(f" {cmd[2]} | {v} | http://deb bookworm/main amd64 Packages\n" for v in self.versions.get(cmd[2], [])))
        if cmd[:2] == ["apt-get", "download"]:
            name, version = cmd[2].split("=")
            (Path(cwd) / f"{name}_{version.replace(':', '%3a')}_all.deb").write_bytes(b"deb " + cmd[2].encode())
            return ok()
        if cmd[:2] == ["dpkg-deb", "-x"]:
            name = Path(cmd[2]).name.split("_")[0]
            root = Path(cmd[3])
            for rel in (f"usr/share/doc/{name}/copyright", "usr/share/x/sounds/a.ogg", "usr/share/x/rcc/b.rcc",
                        "usr/share/x/images/c.png", "usr/bin/tool", "usr/share/doc/{name}/changelog.gz"):
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text(rel)
            return ok()
        raise AssertionError(cmd)


def test_fetch_unpacks_prunes_and_a_rerun_is_a_no_op(tmp_path: Path):
    lists = tmp_path / "lists"
    lists.mkdir()
    apt = FakeApt({"lmms-common": ["1.2.2+dfsg1-6"], "ktuberling-data": ["4:22.12.3-1"]})
    fetcher = debian_packages.Fetcher(tmp_path / "cache", run=apt, lists_dir=lists)
    got = fetcher.fetch_all({"lmms-common": "1.2.2+dfsg1-6", "ktuberling-data": "4:22.12.3-1"})
    assert apt.calls[0] == ["apt-get", "update"]  # no package lists: one update first
    assert sum(c[:2] == ["apt-get", "update"] for c in apt.calls) == 1
    kt = [g for g in got if g.name == "ktuberling-data"][0]
    assert kt.root.name == "ktuberling-data_4%3a22.12.3-1"
    kept = sorted(p.relative_to(kt.root).as_posix() for p in kt.root.rglob("*") if p.is_file())
    assert kept == [".fetched", "usr/share/doc/ktuberling-data/copyright", "usr/share/x/rcc/b.rcc", "usr/share/x/sounds/a.ogg"]
    assert not list((tmp_path / "cache").glob(".*tmp*")) and not list((tmp_path / "cache").rglob("*.deb"))

    def no_command(cmd, cwd):
        raise AssertionError(f"a cached package ran {cmd}")

    again = debian_packages.Fetcher(tmp_path / "cache", run=no_command, lists_dir=lists).fetch_all(
        {"lmms-common": "1.2.2+dfsg1-6", "ktuberling-data": "4:22.12.3-1"})
    assert [(g.name, g.version, g.root) for g in again] == [(g.name, g.version, g.root) for g in got]


def test_fetch_a_missing_version_is_an_error_or_the_stated_fallback(tmp_path: Path):
    (tmp_path / "x_Packages").write_text("")  # lists present: no update
    apt = FakeApt({"lmms-common": ["1.2.2+dfsg1-7"]})
    with pytest.raises(debian_packages.FetchError, match=r"lmms-common: pinned version 1\.2\.2\+dfsg1-6 .* offer: 1\.2\.2\+dfsg1-7"):
        debian_packages.Fetcher(tmp_path / "c", run=apt, lists_dir=tmp_path).fetch("lmms-common", "1.2.2+dfsg1-6")
    assert all(c[:2] != ["apt-get", "update"] for c in apt.calls)
    got = debian_packages.Fetcher(tmp_path / "c", run=apt, lists_dir=tmp_path, allow_other_version=True, log=lambda m: None).fetch(
        "lmms-common", "1.2.2+dfsg1-6")
    assert got.version == "1.2.2+dfsg1-7"
    assert debian_packages.read_marker(got.root)["pinned"] == "1.2.2+dfsg1-6"


# ----------------------------------------------------------------------------
# The corpus
# ----------------------------------------------------------------------------
def test_corpus_classes_clips_licences_and_layout(corpus, monkeypatch: pytest.MonkeyPatch, capsys):
    out, stats = corpus
    labels = (out / "token_list" / "labels.txt").read_text().split("\n")[:-1]
    assert labels == ["speech", "shouting", "laughter", "dog", "water", "kick drum"]  # snare: too few; CLASSES order
    assert stats["classes"] == len(labels)
    assert stats["clips"] == stats["train_clips"] + stats["valid_clips"] + stats["test_clips"]
    assert sorted(p.name for p in (out / "licences").iterdir()) == sorted(
        f"{n}_{debian_packages.PINNED[n].replace(':', '%3a')}.copyright" for n in MINI_PACKAGES)
    assert stats["packages"] == {n: debian_packages.PINNED[n] for n in MINI_PACKAGES}
    assert stats["dropped"]["files_skipped"] == {"silent or too short": 1}
    assert "snare drum" in stats["dropped"]["classes_without_2_clips_per_split"]
    clips = [c for split in ("train", "valid", "test") for c in read_jsonl(out / "pool" / split / "clips.jsonl")]
    sources = {c["source"] for c in clips}
    assert not any("tux-zzz" in s or "/Robot/" in s or "Click" in s or s.endswith("hat.ogg") for s in sources)
    # Kick-Hard and Kick-Med are one sample at two levels: the first is kept.
    assert {s.rsplit("/", 1)[1] for s in sources if "GMRockKit/Kick-" in s} == {"Kick-Hard.wav", "Kick-Soft.wav"}
    assert stats["dropped"]["duplicates"] == 1
    # The long recording is cut into segments of one recording.
    water1 = [c for c in clips if c["source"].endswith("Water1.wav")]
    assert len(water1) >= 2 and len({c["recording"] for c in water1}) == 1
    for c in clips:
        wave, fs = sf.read(out / c["wav"], dtype="int16")
        assert fs == FS and len(wave) == c["num_samples"] and np.abs(wave).max() > 0
    monkeypatch.chdir(out.parent)
    for set_name, num in SETS.items():
        status = validate_data_dir.main(["--label_list", "data/token_list/labels.txt", "--fs", str(FS), f"data/{set_name}"])
        captured = capsys.readouterr()
        assert status == 0, captured.out + captured.err
        assert captured.out.strip().splitlines()[-1].startswith(f"OK: data/{set_name} ({num} utterances")


def test_splits_share_no_clip_recording_or_test_voice(corpus):
    out, stats = corpus
    pools = {s: read_jsonl(out / "pool" / s / "clips.jsonl") for s in ("train", "valid", "test")}
    for key in ("clip_id", "recording"):
        seen = [set(c[key] for c in pools[s]) for s in pools]
        assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2]), key
    test_groups = {c["group"] for c in pools["test"]}
    assert not test_groups & {c["group"] for s in ("train", "valid") for c in pools[s]}
    test_voices = {c["voice"] for c in pools["test"] if c["voice"]}
    assert test_voices and not test_voices & {c["voice"] for c in pools["train"] if c["voice"]}
    assert set(stats["voices"]["test"]) == test_voices
    for s, pool in pools.items():  # every class has 2 clips in every split (another clip is the example)
        counts = {label: sum(c["label"] == label for c in pool) for label in stats["per_class"]}
        assert min(counts.values()) >= 2, (s, counts)


def test_cues_caption_picture_and_example_never_the_target(corpus):
    out, _ = corpus
    clips = {c["clip_id"]: c for s in ("train", "valid", "test") for c in read_jsonl(out / "pool" / s / "clips.jsonl")}
    by_wav = {f"{out}/{c['wav']}": c for c in clips.values()}
    dog = [c for c in clips.values() if c["source"].endswith("animals/dog.ogg")]
    assert len(dog) == 1 and dog[0]["mp4"].startswith("pictures/")
    img = Image.open(out / dog[0]["mp4"])
    assert img.size == (96, 96)
    assert all(abs(a - b) <= 3 for a, b in zip(img.getpixel((48, 48)), (200, 120, 40)))  # (webp is lossy)
    assert img.getpixel((48, 2)) == (255, 255, 255)  # 40 x 30 padded to a square
    assert all(c["mp4"] == "" for c in clips.values() if "dog.ogg" not in c["source"])
    camel = [c for c in clips.values() if c["source"].endswith("egypt_camel.ogg")]
    assert camel and all(c["caption"] for c in camel)
    for set_name in SETS:
        mix = [json.loads(line) for line in (out / "local" / f"{set_name}.jsonl").read_text().splitlines()]
        for plan in mix:
            for src in plan["sources"]:
                if src["enroll_id"] is None:
                    continue
                target, example = clips[src["clip_id"]], clips[src["enroll_id"]]
                assert example["clip_id"] != target["clip_id"] and example["label"] == target["label"]
                others = [c for c in clips.values() if c["label"] == target["label"] and c["recording"] != target["recording"]
                          and (out / c["wav"]).parent == (out / target["wav"]).parent]
                if others:
                    assert example["recording"] != target["recording"]
        video = (out / set_name / "video_spk1.scp").read_text().splitlines()
        assert all(len(line.split(" ", 1)) == 1 or line.split(" ", 1)[1].endswith(".png") for line in video)
    assert by_wav  # (paths are under --out)


def test_same_cache_and_options_give_identical_files_whatever_nj(cache: Path, corpus, tmp_path: Path):
    out_a, _ = corpus
    out_b = tmp_path / "data"
    # The same --out spelling: paths inside the files are the same.
    argv = ["--cache", str(cache), "--out", str(out_a), "--work_dir", str(out_b), "--nj", "2", "--packages", *MINI_PACKAGES,
            *[f"--num_{k}={v}" for k, v in SETS.items()]]
    build_corpus.build(build_corpus.get_parser().parse_args(argv))
    assert tree_digest(out_a) == tree_digest(out_b)
    out_c = tmp_path / "seed1"
    run_build(cache, out_c, extra=["--seed", "1"])
    assert tree_digest(out_c / "train") != tree_digest(out_a / "train")


def test_a_missing_package_names_its_folder(cache: Path, tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"wesnoth-1\.16-data_<version>/\.fetched: package wesnoth-1\.16-data is not fetched"):
        run_build(cache, tmp_path / "data", extra=["--packages", "wesnoth-1.16-data"])


def test_data_sh_rejects_bad_options(tmp_path: Path):
    res = subprocess.run(["bash", str(LOCAL / "data.sh"), "--fs", "8k"], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode != 0 and "--fs '8k': expected a non-negative integer" in res.stderr
    res = subprocess.run(["bash", str(LOCAL / "data.sh"), "--allow_other_version", "maybe"], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode != 0 and "--allow_other_version expects true or false" in res.stderr


def test_16k_corpus_holds_the_same_clips_in_the_same_splits(cache: Path, corpus, tmp_path: Path):
    out_8k, stats_8k = corpus
    out_16k = tmp_path / "data_16k"
    stats_16k = run_build(cache, out_16k, extra=["--fs", "16000"])
    for split in ("train", "valid", "test"):
        a = {(c["clip_id"], c["source"], c["segment"]) for c in read_jsonl(out_8k / "pool" / split / "clips.jsonl")}
        b = read_jsonl(out_16k / "pool" / split / "clips.jsonl")
        assert a == {(c["clip_id"], c["source"], c["segment"]) for c in b}, split
        for c in b[:5]:
            info = sf.info(str(out_16k / c["wav"]))
            assert info.samplerate == 16000 and info.frames == c["num_samples"]
    assert stats_16k["per_class"] == stats_8k["per_class"] and stats_16k["fs"] == 16000


def test_fetch_without_apt_is_a_clear_error(tmp_path: Path):
    fetcher = debian_packages.Fetcher(tmp_path, apt_get="no-such-apt-get", apt_cache="no-such-apt-cache", lists_dir=tmp_path)
    with pytest.raises(debian_packages.FetchError, match="no-such-apt-get: not found"):
        fetcher.fetch("lmms-common", "1.2.2+dfsg1-6")  # no lists: the update is tried first


# ----------------------------------------------------------------------------
# The real-recording demo (local/real_recordings.py): OpenTTD's sound catalogue


def _catalogue(path: Path, entries: Sequence[Tuple[str, np.ndarray, int]]) -> None:
    """An OpenTTD sound catalogue in opensfx.cat's layout: (offset | 0x80000000, size)
    pairs, then per entry a length byte, the NUL-ended description and a RIFF wav."""
    bodies = []
    for name, x, fs in entries:
        buf = io.BytesIO()
        sf.write(buf, x, fs, format="WAV", subtype="PCM_16")
        label = name.encode() + b"\0"
        bodies.append(bytes([len(label)]) + label + buf.getvalue())
    offset, table = 8 * len(entries), b""
    for body in bodies:
        table += struct.pack("<II", offset | 0x80000000, len(body))
        offset += len(body)
    path.write_bytes(table + b"".join(bodies))


def test_real_recordings_reads_the_catalogue_and_mixes_two_recordings(tmp_path, monkeypatch):
    import real_recordings

    rng = np.random.default_rng(0)
    a, b = 0.1 * rng.standard_normal(800), 0.05 * rng.standard_normal(1200)  # peak of the sum < 0.9
    package = tmp_path / "pkg"
    (package / real_recordings.CATALOGUE).parent.mkdir(parents=True)
    _catalogue(package / real_recordings.CATALOGUE, [('"Horse". Licence: CC0.', a, 8000),
                                                    ('"Bird". Licence: CC0.', b, 8000)])
    entries = real_recordings.read_catalogue(package / real_recordings.CATALOGUE)
    assert [e[0] for e in entries] == ['"Horse". Licence: CC0.', '"Bird". Licence: CC0.']
    monkeypatch.setattr(real_recordings, "RECORDINGS", {"horse": 0, "bird": 1})
    monkeypatch.setattr(real_recordings, "MIXTURES", {"horse_and_bird": ("horse", "bird")})
    info = real_recordings.write_inputs(package, tmp_path / "inputs")
    assert info["horse"]["description"].startswith('"Horse"') and info["horse_and_bird"]["sources"] == 2
    horse, fs = sf.read(tmp_path / "inputs" / "horse.wav")
    mix, _ = sf.read(tmp_path / "inputs" / "horse_and_bird.wav")
    assert fs == 8000 and len(mix) == 1200 and info["horse_and_bird"]["seconds"] == 0.15
    bird, _ = sf.read(tmp_path / "inputs" / "bird.wav")
    np.testing.assert_allclose(mix[:800], horse + bird[:800], atol=2e-4)  # 16-bit files
    # A catalogue whose table points past its end is named, not read as garbage.
    broken = tmp_path / "broken.cat"
    broken.write_bytes((package / real_recordings.CATALOGUE).read_bytes()[:900])
    with pytest.raises(SystemExit, match=r"broken\.cat: entry 0 runs past the end"):
        real_recordings.read_catalogue(broken)
    # The demo package is not one of the corpus's, and never a reserved one.
    assert real_recordings.PACKAGE not in debian_packages.PINNED
    assert not debian_packages.is_reserved(real_recordings.PACKAGE)


def test_naming_study_hub_correction_on_a_hand_made_case():
    """A hub label scoring high against every source wins every naming by the raw
    cosine; subtracting each label's mean over the fitted sources gives the names back."""
    import naming_study

    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1, 2], 10)
    scores = 0.5 * np.eye(4)[truth] + 0.05 * rng.standard_normal((30, 4))
    scores[:, 3] += 0.8  # label 3 is a hub, no source's own
    matched = list(zip(scores, truth.tolist()))
    assert naming_study.acc(matched) == 0.0
    assert naming_study.acc(matched, scores.mean(0)) == 1.0
    assert naming_study.acc(matched, scores.mean(0), scores.std(0)) > 0.5  # z-scores: the hub's small spread adds noise
    assert naming_study.acc([]) == 0.0
