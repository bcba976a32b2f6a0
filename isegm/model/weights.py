"""Checking downloaded weight files: is this file the checkpoint it should be?

``download_weights.sh`` fetches the MAE ImageNet weights by URL and explains the manual steps
for the MST and SimpleClick checkpoints. The publishers give no checksums, so a pinned SHA-256
cannot be known offline; instead every file is read with the project's checkpoint reader (no
code from the file runs) and its architecture is compared with what its name promises (the
width and depth of the ViT, the file layout). The SHA-256 of the verified file is printed and
kept next to it, so later corruption is noticed::

    python -m isegm.model.weights verify mae-base weights/pretrained/mae_pretrain_vit_base.pth
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .checkpoint import CheckpointError, load_model_checkpoint, read_checkpoint

__all__ = ["KINDS", "WeightsError", "sha256_of", "verify_weights", "main"]

#: kind -> (file layout, ViT width, ViT depth, what it is)
KINDS: dict[str, tuple[str, int, int, str]] = {
    "mae-base": ("mae", 768, 12, "MAE ViT-B/16 ImageNet pretraining"),
    "mae-large": ("mae", 1024, 24, "MAE ViT-L/16 ImageNet pretraining"),
    "mae-huge": ("mae", 1280, 32, "MAE ViT-H/14 ImageNet pretraining"),
    "simpleclick-base": ("simpleclick", 768, 12, "SimpleClick ViT-B (COCO+LVIS)"),
    "simpleclick-large": ("simpleclick", 1024, 24, "SimpleClick ViT-L (COCO+LVIS)"),
    "simpleclick-huge": ("simpleclick", 1280, 32, "SimpleClick ViT-H (COCO+LVIS)"),
    "mst-main": ("mst", 768, 12, "MST main ViT-B 448 (mst-3s-slim-448-base)"),
}


class WeightsError(ValueError):
    """A weight file is not the checkpoint its name promises (one-line message)."""


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _vit_shape(sd: Mapping, prefix: str, path: Path) -> tuple[int, int]:
    """(width, depth) of the ViT whose keys start with ``prefix``."""
    proj = sd.get(f"{prefix}patch_embed.proj.weight")
    if proj is None or not hasattr(proj, "shape") or len(proj.shape) != 4:
        raise WeightsError(f"{path}: no {prefix}patch_embed.proj.weight: not a ViT checkpoint")
    rx = re.compile(rf"^{re.escape(prefix)}blocks\.(\d+)\.")
    depth = len({m.group(1) for k in sd if (m := rx.match(str(k)))})
    return int(proj.shape[0]), depth


def verify_weights(kind: str, path: str | Path) -> str:
    """Checks that ``path`` holds a checkpoint of ``kind`` (see :data:`KINDS`).

    Returns:
        A one-line description of what was verified.

    Raises:
        WeightsError: unknown kind, unreadable file or another architecture.
    """
    if kind not in KINDS:
        raise WeightsError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    layout, width, depth, what = KINDS[kind]
    path = Path(path)
    try:
        if layout == "mst":
            cfg = load_model_checkpoint(path, "cpu").cfg
            found = (cfg.embed_dim, cfg.depth)
            if cfg.arch != "mst" or cfg.img_size != 448:
                raise WeightsError(f"{path}: a {cfg.arch} model for {cfg.img_size} px, "
                                   f"not {what}")
        else:
            ckpt = read_checkpoint(path)
            key, prefix = ("model", "") if layout == "mae" else ("state_dict", "backbone.")
            sd = ckpt.get(key)
            if not isinstance(sd, Mapping):
                raise WeightsError(f"{path}: no '{key}' dict of weights: not {what}")
            found = _vit_shape(sd, prefix, path)
    except CheckpointError as e:
        raise WeightsError(str(e)) from None
    if found != (width, depth):
        raise WeightsError(f"{path}: a ViT of width {found[0]} and depth {found[1]}, not {what} "
                           f"(width {width}, depth {depth})")
    return f"{path}: {what} (width {width}, {depth} blocks)"


def main(argv: Sequence[str] | None = None) -> int:
    """``verify KIND FILE [--sha256 HEX]``: one line, exit 0 (ok) or 2 (wrong file)."""
    from isegm.utils.cli import ArgumentParser

    p = ArgumentParser(prog="python -m isegm.model.weights",
                                description="Check that a downloaded weight file is the "
                                            "checkpoint it should be.")
    p.add_argument("command", choices=["verify"])
    p.add_argument("kind", choices=sorted(KINDS))
    p.add_argument("file")
    p.add_argument("--sha256", default=None, help="expected SHA-256 (e.g. recorded earlier)")
    args = p.parse_args(argv)
    try:
        if not Path(args.file).is_file():
            raise WeightsError(f"{args.file}: no such file")
        digest = sha256_of(args.file)
        if args.sha256 and args.sha256.lower() != digest:
            raise WeightsError(f"{args.file}: SHA-256 {digest} differs from the recorded "
                               f"{args.sha256.lower()} (corrupt or replaced)")
        print(f"ok: {verify_weights(args.kind, args.file)}; sha256 {digest}")
        return 0
    except WeightsError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
