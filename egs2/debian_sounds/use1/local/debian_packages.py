#!/usr/bin/env python3
"""The Debian packages of the debian_sounds corpus: pinned versions, the reserved ones, the fetcher.

Every package is fetched with ``apt-get download <name>=<version>`` and unpacked with
``dpkg-deb -x`` into ``<cache>/<name>_<version>/`` (nothing is installed on the system).
Only what the corpus reads is kept of the unpacked tree: sound files (ogg, oga, wav,
flac), Qt resource bundles (``.rcc``, which hold GCompris's sounds and pictures), and
the package's licence (``usr/share/doc/<name>/copyright``); the paths stay those of the
package. A finished package folder holds ``.fetched`` (name, version, the .deb's
sha256); a rerun finds it and does nothing, without calling apt. A package is unpacked
into a temporary folder beside its final one and renamed into place, so a killed fetch
leaves no half package.

Versions are pinned (Debian 12 "bookworm", main). A pinned version that the package
lists do not have (a point release replaced it) stops the fetch with the versions the
lists offer; ``--allow_other_version`` is the stated fallback: it takes the candidate
version instead and records it in ``.fetched`` (the corpus statistics then name it).

Reserved for evaluation, never fetched, unpacked or listed: ``tuxpaint-stamps-default``,
``ufoai-sound``, ``sonic-pi-samples`` and every ``asterisk-core-sounds-en*`` package.
"""
import argparse
import fnmatch
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

# name -> version (bookworm main, amd64 package lists). Sizes are of the .deb files.
PINNED: Dict[str, str] = {
    "bucklespring-data": "1.4.0-2",  # 2.6 MB: IBM Model M key presses (GPL-2)
    "freeciv-data": "3.0.6-1+deb12u1",  # 20 MB: explosions, machine guns, a splash (GPL-2+)
    "gcompris-qt-data": "3.1-2",  # 44 MB: instruments, farm animals (+ photos), everyday sounds (GPL-3+, CC)
    "hedgewars-data": "1.0.2-6",  # 142 MB: 15 voice packs, sound effects, music (GPL-2, CC)
    "hydrogen-data": "1.2.0~beta1+dfsg-1",  # 6.6 MB: GMRockKit drum kit (GPL-2+)
    "ktuberling-data": "4:22.12.3-1",  # 46 MB: words spoken in 25 languages (GPL-2+)
    "lincity-ng-data": "2.9~git20150314-5",  # 44 MB: city sounds (GPL-2+)
    "lmms-common": "1.2.2+dfsg1-6",  # 8.3 MB: drum and instrument samples (GPL-2+)
    "sound-theme-freedesktop": "0.8-2",
    "tuxmath-data": "2.0.3-9",  # 8.8 MB: an explosion, an alarm, a tower clock (GPL-3+)  # 0.4 MB: bell, alarm clock, telephone (GPL-2+, CC-BY-SA)
    "wesnoth-1.16-data": "1:1.16.9-1",  # 143 MB: birds, fire, animals, voices of units (GPL-2+)
}

# Reserved for evaluation: the corpus must never touch them.
RESERVED_PATTERNS: Sequence[str] = (
    "tuxpaint-stamps-default",
    "ufoai-sound",
    "sonic-pi-samples",
    "asterisk-core-sounds-en*",
)

KEEP_SUFFIXES = (".ogg", ".oga", ".wav", ".flac", ".rcc")
MARKER = ".fetched"


class ReservedPackageError(ValueError):
    """A package reserved for evaluation was asked for."""


class FetchError(RuntimeError):
    """A package could not be fetched as pinned."""


def is_reserved(name: str) -> bool:
    """Whether ``name`` is one of the packages reserved for evaluation."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in RESERVED_PATTERNS)


def check_not_reserved(names: Sequence[str], where: str = "") -> None:
    """Refuse reserved package names.

    Raises:
        ReservedPackageError: naming every reserved package in ``names`` (and ``where``
            they were asked for), before anything is downloaded.
    """
    bad = [n for n in names if is_reserved(n)]
    if bad:
        place = f" ({where})" if where else ""
        raise ReservedPackageError(
            f"refusing {', '.join(bad)}{place}: reserved for evaluation "
            f"(reserved: {', '.join(RESERVED_PATTERNS)}); the corpus never downloads, unpacks or reads them"
        )


def package_dir(cache: Path, name: str, version: str) -> Path:
    """Folder of an unpacked package (the epoch colon is written as %3a, as apt does)."""
    return cache / f"{name}_{version.replace(':', '%3a')}"


@dataclass
class Fetched:
    """One package in the cache."""

    name: str
    version: str
    root: Path
    sha256: str


def read_marker(folder: Path) -> Optional[Dict[str, str]]:
    """The ``key=value`` lines of ``folder/.fetched``, or None when absent."""
    path = folder / MARKER
    if not path.is_file():
        return None
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


Runner = Callable[[List[str], Optional[Path]], subprocess.CompletedProcess]


def _run(cmd: List[str], cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError as err:
        raise FetchError(
            f"{cmd[0]}: not found ({err}); the packages are fetched with Debian's apt-get and dpkg-deb: "
            "run on a Debian/Ubuntu machine, or copy a filled downloads/debian from one"
        ) from err


class Fetcher:
    """Fetches pinned packages into a cache (see the module docstring).

    Args:
        cache: cache folder (the recipe's ``downloads/debian``).
        apt_get, apt_cache, dpkg_deb: the commands (tests put fakes on the path instead).
        lists_dir: apt's package lists; when it holds no ``*Packages*`` file, ``apt-get
            update`` runs once before the first look-up.
        allow_other_version: take the lists' candidate when a pin is missing (the stated
            fallback) instead of stopping.
        log: where progress lines go.
    """

    def __init__(
        self,
        cache: Path,
        apt_get: str = "apt-get",
        apt_cache: str = "apt-cache",
        dpkg_deb: str = "dpkg-deb",
        lists_dir: Path = Path("/var/lib/apt/lists"),
        allow_other_version: bool = False,
        log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
        run: Runner = _run,
    ) -> None:
        self.cache = Path(cache)
        self.apt_get, self.apt_cache, self.dpkg_deb = apt_get, apt_cache, dpkg_deb
        self.lists_dir = Path(lists_dir)
        self.allow_other_version = allow_other_version
        self.log = log
        self.run = run
        self._updated = False

    def _ensure_lists(self) -> None:
        if self._updated or glob.glob(str(self.lists_dir / "*Packages*")):
            return
        self.log(f"no package lists in {self.lists_dir}: running {self.apt_get} update once")
        res = self.run([self.apt_get, "update"], None)
        self._updated = True
        if res.returncode != 0:
            raise FetchError(f"{self.apt_get} update failed (exit {res.returncode}): {res.stderr.strip()[-500:]}")

    def _versions(self, name: str) -> List[str]:
        res = self.run([self.apt_cache, "madison", name], None)
        if res.returncode != 0:
            return []
        # "name | version | source" lines
        return [parts[1].strip() for parts in (line.split("|") for line in res.stdout.splitlines()) if len(parts) >= 2]

    def resolve(self, name: str, version: str) -> str:
        """The version to fetch: the pin, or (with allow_other_version) the lists' first."""
        self._ensure_lists()
        available = self._versions(name)
        if version in available:
            return version
        if self.allow_other_version and available:
            self.log(f"WARNING: {name} {version} is not in the package lists; taking {available[0]} (--allow_other_version)")
            return available[0]
        offered = ", ".join(available) if available else "none"
        raise FetchError(
            f"{name}: pinned version {version} (local/debian_packages.py PINNED) is not in the package lists "
            f"(they offer: {offered}); update the pin, or pass --allow_other_version to take the lists' version"
        )

    def fetch(self, name: str, version: str) -> Fetched:
        """Fetch one package unless the cache already has it (then no command runs)."""
        check_not_reserved([name])
        for folder in sorted(self.cache.glob(f"{name}_*")):
            marker = read_marker(folder)
            if marker and marker.get("name") == name and (marker.get("pinned") == version or marker.get("version") == version):
                return Fetched(name, marker["version"], folder, marker.get("sha256", ""))
        real = self.resolve(name, version)
        dest = package_dir(self.cache, name, real)
        self.cache.mkdir(parents=True, exist_ok=True)
        for stale in self.cache.glob(f".{name}_*.tmp*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}_", suffix=".tmp", dir=self.cache))
        try:
            self.log(f"fetching {name}={real}")
            res = self.run([self.apt_get, "download", f"{name}={real}"], tmp)
            debs = sorted(tmp.glob("*.deb"))
            if res.returncode != 0 or len(debs) != 1:
                raise FetchError(f"{self.apt_get} download {name}={real} failed (exit {res.returncode}): {res.stderr.strip()[-500:]}")
            deb = debs[0]
            sha = hashlib.sha256(deb.read_bytes()).hexdigest()
            root = tmp / "root"
            res = self.run([self.dpkg_deb, "-x", str(deb), str(root)], None)
            if res.returncode != 0:
                raise FetchError(f"{self.dpkg_deb} -x {deb.name} failed (exit {res.returncode}): {res.stderr.strip()[-500:]}")
            deb.unlink()
            prune(root, name)
            (root / MARKER).write_text(f"name={name}\nversion={real}\npinned={version}\nsha256={sha}\n", encoding="utf-8")
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(root, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return Fetched(name, real, dest, sha)

    def fetch_all(self, packages: Dict[str, str]) -> List[Fetched]:
        """Fetch every package (reserved names are refused before any download)."""
        check_not_reserved(list(packages), "the package list")
        return [self.fetch(name, version) for name, version in sorted(packages.items())]


def prune(root: Path, name: str) -> None:
    """Keep only sound files, .rcc bundles and the licence of an unpacked package."""
    licence = root / "usr" / "share" / "doc" / name / "copyright"
    if not licence.is_file():
        raise FetchError(f"{name}: no licence file usr/share/doc/{name}/copyright in the package")
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for fname in filenames:
            path = Path(dirpath) / fname
            if path == licence:
                continue
            if path.is_symlink() or not fname.lower().endswith(KEEP_SUFFIXES):
                path.unlink()
        for dname in dirnames:
            sub = Path(dirpath) / dname
            if sub.is_symlink():
                sub.unlink()
            elif not any(sub.iterdir()):
                sub.rmdir()


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command line: fetch the pinned packages (or the ones named) into --cache."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", required=True, help="cache folder, e.g. downloads/debian")
    parser.add_argument("--packages", nargs="*", default=None, help="names (default: every pinned package)")
    parser.add_argument("--allow_other_version", action="store_true", help="take the lists' version when a pin is missing")
    args = parser.parse_args(argv)
    names = args.packages if args.packages is not None else sorted(PINNED)
    try:
        check_not_reserved(names, "--packages")
        unknown = [n for n in names if n not in PINNED]
        if unknown:
            raise FetchError(f"not pinned in local/debian_packages.py: {', '.join(unknown)}")
        fetched = Fetcher(Path(args.cache), allow_other_version=args.allow_other_version).fetch_all({n: PINNED[n] for n in names})
    except (ReservedPackageError, FetchError) as err:
        sys.exit(f"debian_packages.py: {err}")
    for item in fetched:
        print(f"{item.name}\t{item.version}\t{item.root}")


if __name__ == "__main__":
    main()
