"""Which checkpoints an evaluation runs, how they are named and fingerprinted, and at what size.

``--checkpoint`` (files, folders, names under ``INTERACTIVE_MODELS_PATH``, or ``grabcut``) or
``--exp-path`` (an experiment's ``checkpoints/*.pth``) become a list of files; the fingerprint
(size and SHA-256 of the first and last 4 MiB) keys the run folder, so a changed file never
resumes an old run; ``repo`` is the checkout whose ``weights/`` and ``experiments/`` are the
defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from isegm.inference.grabcut_baseline import GRABCUT_CHECKPOINT, grabcut_fingerprint, is_grabcut
from isegm.inference.utils import (
    DEFAULT_MODEL_FILE,
    DEFAULT_MODEL_RECIPE,
    CheckpointError,
    load_is_model,
)

__all__ = ["DEFAULT_MODEL_FILE", "checkpoint_fingerprint",
           "inference_size", "model_labels", "resolve_checkpoints"]

# eval.log names the command, as it did when this code lived in evaluate_model.py
logger = logging.getLogger("evaluate_model")

FINGERPRINT_BYTES = 4 << 20


def _models_root(cfg: dict, repo: Path) -> Path:
    return Path(cfg.get("INTERACTIVE_MODELS_PATH") or repo / "weights")


def _find_one(name: str, cfg: dict, repo: Path) -> Path:
    """A checkpoint file or folder: as given, else in INTERACTIVE_MODELS_PATH; '.pth' optional."""
    raw = Path(name).expanduser()
    candidates = [raw, _models_root(cfg, repo) / raw]
    if raw.suffix != ".pth":
        candidates += [c.with_name(c.name + ".pth") for c in candidates]
    for c in candidates:
        if c.exists():
            return c
    raise CheckpointError(f"checkpoint not found: {name} "
                          f"(also looked in {_models_root(cfg, repo)})")


def _pth_in(folder: Path, prefix: str = "") -> list[Path]:
    sub = folder / "checkpoints"
    where = sub if sub.is_dir() else folder
    found = sorted(p for p in where.glob(f"{prefix}*.pth") if p.is_file())
    if not found:
        raise CheckpointError(f"no {prefix}*.pth checkpoint in {where}")
    return found


def resolve_checkpoints(args: argparse.Namespace, cfg: dict, repo: Path) -> list[Path]:
    """Checkpoint files to evaluate, in order (raises :class:`CheckpointError`); ``repo``
    holds the default ``weights/`` and ``experiments/``."""
    if args.exp_path:
        rel, _, prefix = args.exp_path.partition(":")
        exps = Path(cfg.get("EXPS_PATH") or repo / "experiments")
        base = Path(rel).expanduser()
        if base.is_dir():
            exp = base
        else:
            base = exps / rel
            matches = sorted(p for p in base.parent.glob(base.name + "*") if p.is_dir()) \
                if base.parent.is_dir() else []
            if len(matches) != 1:
                raise CheckpointError(f"--exp-path {args.exp_path}: expected one experiment "
                                      f"folder matching {base}*, found {len(matches)}")
            exp = matches[0]
        return _pth_in(exp, prefix)
    if not args.checkpoint:
        for c in (repo / "weights" / DEFAULT_MODEL_FILE,
                  _models_root(cfg, repo) / DEFAULT_MODEL_FILE):
            if c.is_file():
                return [c]
        raise CheckpointError(f"no --checkpoint given and the default model "
                              f"weights/{DEFAULT_MODEL_FILE} does not exist; make it with: "
                              f"{DEFAULT_MODEL_RECIPE}")
    out: list[Path] = []
    for name in (n.strip() for n in args.checkpoint.split(",")):
        if is_grabcut(name):  # the classical baseline, not a file
            out.append(Path(GRABCUT_CHECKPOINT))
        elif name:
            found = _find_one(name, cfg, repo)
            out.extend(_pth_in(found) if found.is_dir() else [found])
    if not out:
        raise CheckpointError("--checkpoint is empty")
    return list(dict.fromkeys(p if is_grabcut(p) else p.resolve() for p in out))


def checkpoint_fingerprint(path: Path) -> str:
    """Cheap content fingerprint: size + SHA-256 of the first and last 4 MiB."""
    if is_grabcut(path):
        return grabcut_fingerprint()
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(FINGERPRINT_BYTES))
        if size > 2 * FINGERPRINT_BYTES:
            f.seek(size - FINGERPRINT_BYTES)
            h.update(f.read(FINGERPRINT_BYTES))
        elif size > FINGERPRINT_BYTES:
            h.update(f.read())
    return h.hexdigest()[:16]


def model_labels(paths: Sequence[Path], model_name: str | None = None) -> list[str]:
    """Unique short labels: the file stem, with the parent folder name(s) if stems repeat."""
    if model_name and len(paths) == 1:
        return [model_name]
    labels = [p.stem for p in paths]
    if len(set(labels)) < len(labels):
        labels = [f"{p.parent.name}/{p.stem}" for p in paths]
    if len(set(labels)) < len(labels):
        labels = [f"{label}#{i}" for i, label in enumerate(labels)]
    return labels


def inference_size(args: argparse.Namespace, path: Path) -> int | None:
    """``--inference_size``, else the training size stored in the checkpoint (its model
    config's ``img_size``): a model evaluated at another size than it was trained at loses
    accuracy (issue 12). None for the classical GrabCut baseline (no network)."""
    if args.inference_size or is_grabcut(path):
        return args.inference_size
    size = None
    with contextlib.suppress(Exception):  # this project's files: the config, tensors mmap'ed
        ckpt = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        size = int(ckpt["config"]["img_size"])
    if size is None:  # published files (or a broken one: the loader names the problem)
        size = int(load_is_model(path, "cpu", variant=args.variant).cfg.img_size)
    logger.info("%s: inference size %d, the model's training size (--inference_size overrides "
                "it)", Path(path).name, size)
    return size


