#!/usr/bin/env python
"""Evaluate interactive segmentation models with simulated clicks (NoC protocol).

    python evaluate_model.py NoBRS --gpu=0 --checkpoint=weights/mst-3s-slim-448-base.pth \\
        --datasets=DAVIS,LoveDASMALL,LoveDAMEDIUM,LoveDALARGE,LoveDAHUGE \\
        --cf-n=3 --acf --n-clicks=20 --target-iou=0.9 --inference_size=448

Every object of every sample of each dataset is evaluated with each checkpoint (a file, a
comma-separated list, a folder of ``*.pth`` or ``--exp-path``; default: the built-in
``weights/mst_tiny_synthetic.pth``). The NoBRS predictor zooms on the object
(``--inference_size``), averages with the flipped input and optionally runs cascade-forward
refinement (``--cf-n/--acf/--cf-click``). One table row is printed per model x dataset.
``--batch-size N`` runs N objects in lockstep, one batched forward per click step, with the
results of N = 1 (``isegm/inference/lockstep.py``); ``--precision bf16/fp16`` autocasts the
network on CUDA. ``torchrun --nproc_per_node K evaluate_model.py ...`` (or ``--nproc K`` on one
machine, gloo) shares the samples out over K processes; rank 0 merges their per-sample logs
into the files of one process (``isegm/inference/sharding.py``).

Output: a run folder under ``--logs-path`` (default ``<EXPS_PATH>/evaluation_logs``) whose name
is fixed by the checkpoints, the datasets and the options that change the results, holding
``summary.csv``/``summary.json``, per-sample IoUs (``ious/*.jsonl`` written sample by sample,
``ious/*.npz``), ``plots/<dataset>.png`` (mIoU vs clicks) and ``eval.log``; see
``isegm/inference/results.py``. A killed run continues where it stopped with ``--resume`` (same
command line, or ``--resume <run folder>``); finished samples are not recomputed. Without
``--resume`` an existing run folder is moved aside (``<name>.prev-<time>``), never overwritten.
A run folder in use is locked (``.lock``, released when its process ends, kill -9 included): a
second run on it stops with one line naming the folder and the other pid. A new run that fails
before finishing a sample leaves no folder behind.

Exit codes: 0 at least one model x dataset was evaluated (datasets that are not present are
reported and skipped, and listed at the end; unreadable samples are reported and skipped);
1 nothing could be evaluated (every dataset skipped); 2 bad command line, missing or broken
checkpoint, unreadable config, a ``--resume`` folder made with other options or a run folder in
use by another process (one ``error:`` line, no traceback); 130 interrupted (the finished
samples are on disk: rerun with --resume).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isegm.data.base import DatasetError
from isegm.data.datasets import EVAL_DATASETS, IMAGES_DIR_PREFIX, get_eval_dataset
from isegm.inference.clicker import CLICK_MODES
from isegm.inference import eval_settings
from isegm.inference import lockstep, sharding
from isegm.inference.grabcut_baseline import (GRABCUT_CHECKPOINT, GrabCutPredictor,
                                              grabcut_fingerprint, is_grabcut)
from isegm.inference.predictor import NoBRSPredictor
from isegm.inference.results import (
    ResumeError,
    SampleLog,
    atomic_write_text,
    format_table_header,
    format_table_row,
    options_digest,
    record_from_result,
    safe_name,
    save_ious_npz,
    save_ious_pickle,
    summarize,
    write_summary,
)
from isegm.inference.utils import CheckpointError, load_is_model
from isegm.utils.config import DEFAULT_CONFIG_PATH, ConfigError, load_config
from isegm.utils.exp import FolderInUseError, FolderLock, remove_stale_temp_files
from isegm.utils.log import (
    add_log_file,
    close_log_file,
    progress_bar,
    reset_logging,
    setup_logging,
)

logger = logging.getLogger("evaluate_model")

REPO = Path(__file__).resolve().parent
DEFAULT_MODEL_FILE = "mst_tiny_synthetic.pth"
DEFAULT_MODEL_HINT = "python train.py models/mst_tiny_synthetic.py"
MODES = ("NoBRS",)
REFERENCE_MODES = ("RGB-BRS", "DistMap-BRS", "f-BRS-A", "f-BRS-B", "f-BRS-C", "SAM", "HQSAM",
                   "HQSAM_CUSTOM", "HQSAM_BASE", "SAM_BASE")
FINGERPRINT_BYTES = 4 << 20


class UsageError(ValueError):
    """A bad flag value or an impossible request (one-line message, exit code 2)."""


# ----------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Evaluate interactive segmentation models with simulated clicks.",
        epilog="Exit codes: 0 evaluated (missing datasets skipped and listed), 1 nothing "
               "evaluated, 2 bad arguments/checkpoint/config, 130 interrupted (use --resume).",
    )
    p.add_argument("mode", nargs="?", default="NoBRS",
                   help="predictor; only NoBRS exists (the reference's BRS/SAM modes do not)")
    ckpt = p.add_mutually_exclusive_group()
    ckpt.add_argument("--checkpoint", default="",
                      help="checkpoint file(s), comma-separated, or a folder (every *.pth in "
                           "it); relative names are also looked up in INTERACTIVE_MODELS_PATH; "
                           "'grabcut' is classical OpenCV GrabCut driven by the same clicks "
                           f"(a baseline); default: weights/{DEFAULT_MODEL_FILE}")
    ckpt.add_argument("--exp-path", default="",
                      help="experiment folder (relative to EXPS_PATH, unique prefix allowed) "
                           "whose checkpoints/*.pth are all evaluated; 'path:prefix' selects "
                           "checkpoints/prefix*.pth")
    p.add_argument("--datasets", default="GrabCut",
                   help="comma-separated dataset names (default GrabCut); known: "
                        + ", ".join(EVAL_DATASETS) + f", {IMAGES_DIR_PREFIX}<folder>")
    p.add_argument("--dataset-path", action="append", default=[], metavar="NAME=PATH",
                   help="use PATH for dataset NAME instead of config.yml (repeatable)")
    dev = p.add_mutually_exclusive_group()
    dev.add_argument("--gpus", "--gpu", dest="gpus", default=None,
                     help="GPU id(s); the first is used (default 0 if CUDA is available; "
                          "without CUDA: a warning and the CPU)")
    dev.add_argument("--cpu", action="store_true", help="run on the CPU")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--target-iou", type=float, default=0.95,
                        help="stop clicking at this IoU (clamped to >= 0.8; default 0.95)")
    target.add_argument("--iou-analysis", action="store_true",
                        help="run all --n-clicks clicks (target 1.01) for true mIoU curves")
    p.add_argument("--inference_size", "--inference-size", dest="inference_size", type=int,
                   default=None, help="ZoomIn crop side fed to the network (default: the "
                                      "model's training size, stored in its checkpoint)")
    p.add_argument("--n-clicks", type=int, default=20, help="click budget and NoC cap")
    p.add_argument("--min-n-clicks", type=int, default=1,
                   help="never stop before this many clicks")
    p.add_argument("--thresh", type=float, default=0.49,
                   help="probability threshold of the mask (default 0.49)")
    p.add_argument("--clicks-limit", type=int, default=None,
                   help="feed only the first N clicks to the network (-1: --n-clicks)")
    p.add_argument("--eval-mode", default="cvpr",
                   help="kept for compatibility with the reference; no effect on the results")
    p.add_argument("--eval-ritm", action="store_true",
                   help="kept for compatibility; models always run in eval mode")
    p.add_argument("--cf-n", type=int, default=0,
                   help="cascade-forward refinement: extra forward passes (0: off)")
    p.add_argument("--cf-click", type=int, default=1,
                   help="use the cascade while there are at most this many clicks")
    p.add_argument("--acf", action="store_true",
                   help="adaptive cascade: stop once a pass changes <= 20 pixels")
    p.add_argument("--clicker", choices=CLICK_MODES, default="standard",
                   help="next-click rule: the standard protocol, or MST's random top-50 draw")
    p.add_argument("--seed", type=int, default=0, help="seed of the random-top50 clicker")
    p.add_argument("--variant", choices=("at", "it"), default=None,
                   help="architecture of reference AT/IT ablation checkpoints")
    p.add_argument("--limit", type=int, default=None,
                   help="evaluate only the first N samples of each dataset")
    p.add_argument("--vis", "--vis-preds", dest="vis", action="store_true",
                   help="save an overlay per object (mask, clicks, ground truth) in <run>/vis")
    p.add_argument("--print-ious", action="store_true",
                   help="print mIoU after clicks 1..20 (forces all clicks like --iou-analysis "
                        "unless --min-n-clicks > 1)")
    p.add_argument("--save-ious", action="store_true",
                   help="also write the reference's pickled IoU lists (ious/*.pkl)")
    p.add_argument("--model-name", default=None,
                   help="label of the model in the table and plots (one checkpoint only)")
    p.add_argument("--config-path", default=str(DEFAULT_CONFIG_PATH),
                   help="config.yml with dataset and output paths (default: the repo's)")
    p.add_argument("--logs-path", default="",
                   help="output root (default <EXPS_PATH>/evaluation_logs)")
    p.add_argument("--logs-prefix", default="", help="prefix of the run folder name")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN_FOLDER",
                   help="continue an interrupted run: the same command line finds its folder; "
                        "or give the run folder")
    eval_settings.add_arguments(p)
    lockstep.add_arguments(p)
    sharding.add_arguments(p)
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parses and validates the command line (raises :class:`UsageError`)."""
    args = build_parser().parse_args(argv)
    if args.mode not in MODES:
        if args.mode in REFERENCE_MODES:
            raise UsageError(f"mode {args.mode} is not available: only NoBRS exists in this "
                             "implementation")
        raise UsageError(f"unknown mode {args.mode!r}: only NoBRS exists")
    for name, low in (("n_clicks", 1), ("min_n_clicks", 1), ("inference_size", 32),
                      ("cf_n", 0), ("cf_click", 0)):
        if getattr(args, name) is not None and getattr(args, name) < low:
            raise UsageError(f"--{name.replace('_', '-')} must be >= {low}")
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be >= 1")
    if args.threads is not None and args.threads < 1:
        raise UsageError("--threads must be >= 1")
    if not 0.0 < args.thresh < 1.0:
        raise UsageError("--thresh must be in (0, 1)")
    try:
        args.explicit_settings = eval_settings.explicit_settings(args)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.clicks_limit == -1:
        args.clicks_limit = args.n_clicks
    elif args.clicks_limit is not None and args.clicks_limit < 1:
        raise UsageError("--clicks-limit must be >= 1 (or -1 for --n-clicks)")
    args.dataset_names = list(dict.fromkeys(n.strip() for n in args.datasets.split(",")
                                            if n.strip()))
    if not args.dataset_names:
        raise UsageError("--datasets is empty")
    args.path_overrides = {}
    for item in args.dataset_path:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise UsageError(f"--dataset-path {item!r}: expected NAME=PATH")
        args.path_overrides[name.strip()] = path.strip()
    for name in args.path_overrides:
        if name not in args.dataset_names:
            logger.warning("--dataset-path %s: %s is not in --datasets", name, name)
    if args.cf_n > 0 or args.acf:
        logger.warning("--cf-n/--acf run cascade-forward here; the original release parsed and "
                       "ignored them, so its published tables were made without it (README: "
                       "Reproducing published numbers)")
    if (args.iou_analysis or args.print_ious) and args.min_n_clicks <= 1:
        args.effective_target = 1.01
    else:
        args.effective_target = max(0.8, args.target_iou)
    return args


def choose_device(args: argparse.Namespace) -> torch.device:
    """``--cpu``, else the first ``--gpus`` id on CUDA, else the CPU (one warning if a GPU
    was asked for)."""
    if args.cpu:
        return torch.device("cpu")
    gpu = (args.gpus or "0").split(",")[0].strip() or "0"
    if torch.cuda.is_available():
        if not gpu.isdigit() or int(gpu) >= torch.cuda.device_count():
            raise UsageError(f"--gpus {args.gpus}: no such GPU "
                             f"({torch.cuda.device_count()} available)")
        return torch.device(f"cuda:{gpu}")
    if args.gpus is not None:
        logger.warning("CUDA is not available: running on the CPU (--gpus %s ignored)",
                       args.gpus)
    return torch.device("cpu")


# ------------------------------------------------------------------------------ checkpoints
def _models_root(cfg: dict) -> Path:
    return Path(cfg.get("INTERACTIVE_MODELS_PATH") or REPO / "weights")


def _find_one(name: str, cfg: dict) -> Path:
    """A checkpoint file or folder: as given, else in INTERACTIVE_MODELS_PATH; '.pth' optional."""
    raw = Path(name).expanduser()
    candidates = [raw, _models_root(cfg) / raw]
    if raw.suffix != ".pth":
        candidates += [c.with_name(c.name + ".pth") for c in candidates]
    for c in candidates:
        if c.exists():
            return c
    raise CheckpointError(f"checkpoint not found: {name} (also looked in {_models_root(cfg)})")


def _pth_in(folder: Path, prefix: str = "") -> list[Path]:
    sub = folder / "checkpoints"
    where = sub if sub.is_dir() else folder
    found = sorted(p for p in where.glob(f"{prefix}*.pth") if p.is_file())
    if not found:
        raise CheckpointError(f"no {prefix}*.pth checkpoint in {where}")
    return found


def resolve_checkpoints(args: argparse.Namespace, cfg: dict) -> list[Path]:
    """Checkpoint files to evaluate, in order (raises :class:`CheckpointError`)."""
    if args.exp_path:
        rel, _, prefix = args.exp_path.partition(":")
        exps = Path(cfg.get("EXPS_PATH") or REPO / "experiments")
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
        for c in (REPO / "weights" / DEFAULT_MODEL_FILE, _models_root(cfg) / DEFAULT_MODEL_FILE):
            if c.is_file():
                return [c]
        raise CheckpointError(f"no --checkpoint given and the default model "
                              f"weights/{DEFAULT_MODEL_FILE} does not exist; make it with: "
                              f"{DEFAULT_MODEL_HINT}")
    out: list[Path] = []
    for name in (n.strip() for n in args.checkpoint.split(",")):
        if is_grabcut(name):  # the classical baseline, not a file
            out.append(Path(GRABCUT_CHECKPOINT))
        elif name:
            found = _find_one(name, cfg)
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


# ---------------------------------------------------------------------------------- datasets
def open_datasets(args: argparse.Namespace, cfg: dict
                  ) -> tuple[list[tuple[str, Any]], list[dict[str, str]]]:
    """(name, dataset) for each dataset present; the others as ``{'name', 'reason'}``."""
    present, skipped = [], []
    for name in args.dataset_names:
        override = args.path_overrides.get(name)
        try:
            if override is not None and name in EVAL_DATASETS and EVAL_DATASETS[name][1] is None:
                logger.warning("--dataset-path %s ignored: %s is generated, not read", name, name)
                override = None
            dataset = get_eval_dataset(name, cfg, path_override=override)
            if len(dataset) == 0:
                raise DatasetError(f"dataset {name}: no samples")
        except Exception as e:  # noqa: BLE001 - a missing or broken dataset is skipped
            reason = str(e) if isinstance(e, DatasetError) else f"{type(e).__name__}: {e}"
            reason = " ".join(reason.split())
            for prefix in (f"dataset {name}: ", f"{name}: "):
                reason = reason[len(prefix):] if reason.startswith(prefix) else reason
            logger.error("skipping dataset %s: %s", name, reason)
            skipped.append({"name": name, "reason": reason})
            continue
        present.append((name, dataset))
    return present, skipped


def build_predictor(model: torch.nn.Module, device: torch.device, args: argparse.Namespace,
                    dataset_name: str = "",
                    settings: eval_settings.EvalSettings | None = None) -> NoBRSPredictor:
    """The NoBRS predictor of the evaluation (SPEC Part II §3.3, §4); ``settings`` default to
    the project family's with the command line's explicit flags."""
    if settings is None:
        explicit = eval_settings.explicit_settings(args)
        settings = eval_settings.resolve_settings(explicit["eval_family"] or eval_settings.PROJECT,
                                                  explicit)
    size = args.inference_size or model.cfg.img_size  # default: the model's training size
    zoom = eval_settings.make_zoom_in(
        eval_settings.crop_side(size, dataset_name, settings), settings)
    return NoBRSPredictor(model, device, with_flip=True, zoom_in=zoom,
                          cascade_steps=args.cf_n, cascade_adaptive=args.acf,
                          cascade_clicks=args.cf_click, net_clicks_limit=args.clicks_limit,
                          forward_runner=lockstep.precision_runner(
                              getattr(args, "precision", "fp32"), device))


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


# --------------------------------------------------------------------------------- run folder
def key_options(args: argparse.Namespace, labels: Sequence[str], fingerprints: Sequence[str],
                datasets: Sequence[str]) -> dict[str, Any]:
    """Everything that changes per-sample results (``--limit`` does not: it only selects)."""
    sizes = getattr(args, "inference_sizes", [args.inference_size])
    return {
        "mode": args.mode,
        "models": [[label, fp] for label, fp in zip(labels, fingerprints)],
        "datasets": [[name, str(Path(args.path_overrides[name]).expanduser().resolve())
                      if name in args.path_overrides else None] for name in datasets],
        "n_clicks": args.n_clicks,
        "min_n_clicks": args.min_n_clicks,
        "target_iou": round(args.effective_target, 6),
        "thresh": args.thresh,
        "inference_size": sizes[0] if len(set(sizes)) == 1 else sizes,
        "eval_settings": args.explicit_settings,
        "cf_n": args.cf_n,
        "acf": bool(args.acf),
        "cf_click": args.cf_click,
        "clicks_limit": args.clicks_limit,
        "clicker": args.clicker,
        "seed": args.seed if args.clicker != "standard" else None,
        "variant": args.variant,
        "with_flip": True,
        # not fp32 only, so fp32 runs keep the folders (and resume) of older versions
        **({"precision": args.precision} if getattr(args, "precision", "fp32") != "fp32"
           else {}),
    }


def run_folder_name(args: argparse.Namespace, labels: Sequence[str],
                    datasets: Sequence[str], options: dict[str, Any]) -> str:
    model_tag = safe_name(labels[0].replace("/", "-")) + (f"+{len(labels) - 1}"
                                                         if len(labels) > 1 else "")
    ds_tag = "-".join(safe_name(d) for d in datasets)
    if len(ds_tag) > 48:
        ds_tag = safe_name(datasets[0]) + f"+{len(datasets) - 1}"
    prefix = f"{safe_name(args.logs_prefix)}_" if args.logs_prefix else ""
    return f"{prefix}{args.mode}_{model_tag}_{ds_tag}_{options_digest(options)}"


def _diff(old: dict, new: dict) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def prepare_run_dir(args: argparse.Namespace, logs_root: Path, name: str,
                    options: dict[str, Any]) -> tuple[Path, bool, FolderLock]:
    """The run folder, whether finished samples in it are reused, and its lock (held by this
    process until released: a second run on the same folder stops with one line).

    Raises:
        ResumeError: ``--resume FOLDER`` is not a run folder or was made with other options.
        FolderInUseError: another live evaluation writes into the run folder.
    """
    options = json.loads(json.dumps(options))  # as it reads back from run.json
    if isinstance(args.resume, str):
        run_dir = Path(args.resume).expanduser()
        state = run_dir / "run.json"
        not_a_run = ResumeError(f"--resume {args.resume}: not an evaluation run folder "
                                "(no run.json)")
        if not state.is_file() and not (run_dir / FolderLock.NAME).is_file():
            raise not_a_run
        lock = FolderLock(run_dir).acquire()  # a run that has not written run.json yet: busy
        if not state.is_file():
            lock.release()
            raise not_a_run
        old = json.loads(state.read_text()).get("key_options", {})
        if old != options:
            lock.release()
            raise ResumeError(f"--resume {args.resume}: made with other options "
                              f"({', '.join(_diff(old, options))} differ)")
        return run_dir, True, lock
    run_dir = logs_root / name
    lock = FolderLock(run_dir).acquire()
    if args.resume:
        if (run_dir / "run.json").is_file():
            old = json.loads((run_dir / "run.json").read_text()).get("key_options", {})
            if old != options:
                lock.release()
                raise ResumeError(f"{run_dir}: run.json was made with other options "
                                  f"({', '.join(_diff(old, options))} differ)")
            return run_dir, True, lock
        logger.info("nothing to resume in %s: starting a new run", run_dir)
    elif any(p.name != FolderLock.NAME for p in run_dir.iterdir()):
        # not in use (we hold its lock): the finished results of an earlier run
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        aside = run_dir.with_name(f"{run_dir.name}.prev-{stamp}")
        os.replace(run_dir, aside)
        lock.release()
        lock = FolderLock(run_dir).acquire()
        logger.warning("previous results of this run moved to %s (use --resume to continue "
                       "a run instead)", aside)
    atomic_write_text(run_dir / "run.json", json.dumps(
        {"key_options": options, "created": datetime.now().isoformat(timespec="seconds")},
        indent=2) + "\n")
    return run_dir, False, lock


def _has_samples(run_dir: Path) -> bool:
    return any(p.stat().st_size > 0 for p in (run_dir / "ious").glob("*.jsonl"))


def _remove_new_folders(run_dir: Path, first_new: Path | None) -> None:
    """Deletes a run folder that a failed run created without finishing any sample, and the
    folders above it that this run created (now empty)."""
    close_log_file()
    shutil.rmtree(run_dir, ignore_errors=True)
    if first_new is not None and first_new != run_dir:
        for parent in run_dir.parents:
            if parent == first_new.parent:
                break
            with contextlib.suppress(OSError):
                parent.rmdir()  # only if empty


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (None: it exists)."""
    missing = None
    for p in [path, *path.parents]:
        if p.exists():
            break
        missing = p
    return missing


# --------------------------------------------------------------------------- one model x data
def sample_name(dataset: Any, index: int) -> str:
    names = getattr(dataset, "dataset_samples", None)
    try:
        return str(names[index]) if names is not None else str(index)
    except (IndexError, KeyError, TypeError):
        return str(index)


class _VisRecorder:
    """``evaluate_sample`` callback keeping the last state of each object of a sample."""

    def __init__(self) -> None:
        self.objects: list[tuple] = []

    def __call__(self, image, gt_mask, pred_probs, click_indx, clicks) -> None:
        state = (image, gt_mask, pred_probs, [(c.coords[0], c.coords[1], c.is_positive)
                                              for c in clicks])
        if click_indx == 0 or not self.objects or self.objects[-1][1] is not gt_mask:
            self.objects.append(state)
        else:
            self.objects[-1] = state

    def save(self, folder: Path, index: int, name: str, ious: Sequence[np.ndarray],
             thresh: float) -> None:
        from isegm.inference.plots import sample_overlay, save_rgb

        clicked = [x for x in ious if len(x)]
        for j, ((image, gt, probs, clicks), obj_ious) in enumerate(zip(self.objects, clicked)):
            pic = sample_overlay(image, probs > thresh, gt, clicks, iou=float(obj_ious[-1]))
            save_rgb(folder / f"{index:05d}_{safe_name(Path(name).stem)}_obj{j}.jpg", pic)
        self.objects = []


def run_pair(dataset: Any, predictor: Any, indices: Sequence[int],
             log: SampleLog | sharding.ShardedLog,
             args: argparse.Namespace, desc: str = "", vis_dir: Path | None = None,
             initial: int = 0) -> int:
    """Evaluates ``indices`` of a dataset, appending each finished sample to ``log``.

    Returns:
        Number of samples that could not be read.
    """
    vis = _VisRecorder() if vis_dir is not None else None
    errors = 0
    bar = progress_bar(total=initial + len(indices), desc=desc, initial=initial, logger=logger)
    try:
        results = lockstep.evaluate_dataset_batched(
            dataset, predictor, indices=indices, seed=args.seed, batch_size=args.batch_size,
            max_iou_thr=args.effective_target, pred_thr=args.thresh,
            min_clicks=args.min_n_clicks, max_clicks=args.n_clicks,
            clicker_mode=args.clicker, callback=vis)
        for result in results:
            name = sample_name(dataset, result.index)
            log.append(record_from_result(result, name))
            if result.error is not None:
                errors += 1
            elif vis is not None and vis_dir is not None:
                vis.save(vis_dir, result.index, name, result.ious, args.thresh)
            bar.update(1)
    finally:
        bar.close()
    return errors


# ------------------------------------------------------------------------------------- main
def _plain_args(args: argparse.Namespace) -> dict[str, Any]:
    out = {}
    for k, v in vars(args).items():
        out[k] = v if isinstance(v, (str, int, float, bool, list, dict, type(None))) else str(v)
    return out


def _print(line: str, results_txt: Path | None) -> None:
    print(line, flush=True)
    if results_txt is not None:
        with open(results_txt, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def _evaluate(args: argparse.Namespace) -> int:
    cfg = load_config(args.config_path)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = choose_device(args)
    try:
        lockstep.check_precision(args.precision, device)
    except ValueError as e:
        raise UsageError(str(e)) from None
    checkpoints = resolve_checkpoints(args, cfg)
    labels = model_labels(checkpoints, args.model_name)
    if args.model_name and len(checkpoints) > 1:
        logger.warning("--model-name ignored: %d checkpoints", len(checkpoints))

    datasets, skipped = open_datasets(args, cfg)
    if not datasets:
        _print(f"Nothing to evaluate: no dataset available "
               f"(skipped: {', '.join(s['name'] for s in skipped)})", None)
        return 1

    names = [n for n, _ in datasets]
    fingerprints = [checkpoint_fingerprint(p) for p in checkpoints]
    args.inference_sizes = [inference_size(args, p) for p in checkpoints]
    options = key_options(args, labels, fingerprints, names)
    logs_root = Path(args.logs_path) if args.logs_path else \
        Path(cfg.get("EXPS_PATH") or REPO / "experiments") / "evaluation_logs"
    run_name = run_folder_name(args, labels, names, options)
    first_new = _first_missing(logs_root / run_name)
    shard = sharding.current_shard()  # torchrun / --nproc: this rank (else one process)
    if shard.world > 1 and device.type == "cuda":
        device = torch.device("cuda", shard.local_rank % torch.cuda.device_count())
    if shard.is_main:
        run_dir, resuming, lock = prepare_run_dir(args, logs_root, run_name, options)
        args.run_state = (run_dir, resuming, lock, first_new)  # released by main()
        if resuming:
            for folder in (run_dir, run_dir / "ious"):
                remove_stale_temp_files(folder)  # of a killed atomic write (we hold the lock)
    shard.barrier()  # the other ranks use the folder rank 0 prepared (and locked)
    if not shard.is_main:
        run_dir = Path(args.resume).expanduser() if isinstance(args.resume, str) \
            else logs_root / run_name
        resuming = True
    add_log_file(run_dir / ("eval.log" if shard.is_main else f"eval.rank{shard.rank}.log"))
    logger.info("command: evaluate_model.py %s", " ".join(args.argv))
    logger.info("run folder: %s (%s); device %s", run_dir,
                "resuming" if resuming else "new run", device)
    for label, path in zip(labels, checkpoints):
        logger.info("model %s: %s", label, path)

    results_txt = run_dir / "results.txt"
    mw, dw = max(map(len, labels)), max(map(len, names))
    header_printed = False
    rows: list[dict[str, Any]] = []
    curves: dict[str, dict[str, list]] = {n: {} for n in names}
    extra = {"run_dir": str(run_dir), "device": str(device), "key_options": options}
    started = time.perf_counter()

    for label, path in zip(labels, checkpoints):
        model = None
        settings_used: dict[str, Any] | None = None  # eval_settings of this checkpoint
        for ds_name, dataset in datasets:
            n = len(dataset) if args.limit is None else min(args.limit, len(dataset))
            indices = list(range(n))
            stem = f"{safe_name(label.replace('/', '-'))}_{safe_name(ds_name)}"
            with sharding.ShardedLog(run_dir / "ious" / f"{stem}.jsonl", resuming,
                                     shard) as log:
                done = [i for i in indices
                        if i in log.records and log.records[i].error is None]
                done_set = set(done)
                todo = [i for i in indices if i not in done_set]
                if done:
                    logger.info("%s on %s: %d of %d samples already done, %d to evaluate",
                                label, ds_name, len(done), n, len(todo))
                mine = shard.take(todo)
                if mine:
                    if model is None:
                        model = GrabCutPredictor() if is_grabcut(path) else \
                            load_is_model(path, device, variant=args.variant)
                        family, settings = eval_settings.settings_for_checkpoint(
                            path, model, args.explicit_settings)
                        eval_settings.apply_to_model(model, settings)
                        logger.info("%s: evaluation settings of family %s: %s", label, family,
                                    settings)
                        settings_used = {"family": family, **dataclasses.asdict(settings)}
                    predictor = model if is_grabcut(path) else \
                        build_predictor(model, device, args, ds_name, settings)
                    dataset = eval_settings.select_objects(dataset, settings)
                    vis_dir = run_dir / "vis" / safe_name(label.replace("/", "-")) / \
                        safe_name(ds_name) if args.vis else None
                    run_pair(dataset, predictor, mine, log, args, desc=f"{label} {ds_name}",
                             vis_dir=vis_dir, initial=len(done))
                merged = log.merge()  # every rank's samples (rank 0 writes the jsonl)
                records = [merged[i] for i in indices if i in merged]
            if not shard.is_main:
                continue

            row = {"model": label, "dataset": ds_name, "checkpoint": str(path),
                   **summarize(records, args.n_clicks, args.effective_target),
                   "reused_samples": len(done), "evaluated_samples": len(todo),
                   "eval_settings": settings_used,
                   "inference_size": args.inference_sizes[checkpoints.index(path)],
                   "precision": args.precision,
                   "inference_size_from": "--inference_size" if args.inference_size
                   else "checkpoint"}
            rows.append(row)
            if row["errors"]:
                logger.warning("%s: %d unreadable sample(s) skipped: %s", ds_name,
                               row["errors"], ", ".join(row["error_names"]))
            if row["empty_objects"]:
                logger.warning("%s: %d object(s) with an empty mask left out of the averages: %s",
                               ds_name, row["empty_objects"], ", ".join(row["empty_names"]))
            save_ious_npz(run_dir / "ious" / f"{stem}.npz", records, args.n_clicks)
            if args.save_ious:
                save_ious_pickle(run_dir / "ious" / f"{stem}_{safe_name(args.eval_mode)}_"
                                 f"{args.mode}_{args.n_clicks}.pkl", records)
            if args.iou_analysis:
                _save_iou_analysis(run_dir, stem, ds_name, label, args, records)
            curves[ds_name][label] = row["miou_per_click"]
            try:
                from isegm.inference.plots import plot_miou_curves

                plot_miou_curves(run_dir / "plots" / f"{safe_name(ds_name)}.png", ds_name,
                                 curves[ds_name])
            except Exception as e:  # noqa: BLE001 - a plot must not lose the results
                logger.warning("could not draw the plot for %s: %s", ds_name, e)

            if not header_printed:
                _print(format_table_header(mw, dw), results_txt)
                header_printed = True
            _print(format_table_row(label, ds_name, row, mw, dw), results_txt)
            if args.print_ious:
                k = min(20, args.n_clicks)
                _print("    " + " ".join(
                    f"mIoU@{i + 1}=" + ("-" if v is None else f"{v:.2%}") + ";"
                    for i, v in enumerate(row["miou_per_click"][:k])), results_txt)
            write_summary(run_dir, rows, _plain_args(args), skipped,
                          {**extra, "elapsed_s": time.perf_counter() - started})
        del model

    shard.close()
    if not shard.is_main:
        return 0
    if skipped:
        _print("Skipped datasets: " + "; ".join(f"{s['name']} ({s['reason']})"
                                                for s in skipped), results_txt)
    _print(f"Results: {run_dir}", None)
    return 0


def _save_iou_analysis(run_dir: Path, stem: str, ds_name: str, label: str,
                       args: argparse.Namespace, records: Sequence[Any]) -> None:
    """The reference's ``--iou-analysis`` pickle (read by SimpleClick's plot script)."""
    import pickle

    path = run_dir / "plots" / f"{stem}_{safe_name(args.eval_mode)}_{args.mode}_" \
                               f"{args.n_clicks}.pickle"
    path.parent.mkdir(parents=True, exist_ok=True)
    all_ious = [x for r in records if r.error is None for x in r.ious]
    with open(path, "wb") as f:
        pickle.dump({"dataset_name": ds_name, "model_name": f"{label}_{args.mode}",
                     "all_ious": all_ious}, f)


def _release_run(args: argparse.Namespace | None) -> None:
    """Unlocks the run folder; deletes it if this run created it and finished no sample."""
    run_dir, resuming, lock, first_new = getattr(args, "run_state", (None, True, None, None))
    if run_dir is not None and not resuming and not _has_samples(run_dir):
        _remove_new_folders(run_dir, first_new)
    if lock is not None:
        lock.release()


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    args = None
    try:
        try:
            args = parse_args(argv)
        except SystemExit as e:  # argparse: usage + message already printed
            return int(e.code or 0)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        if args.nproc < 1:
            raise UsageError("--nproc must be >= 1")
        if args.nproc > 1 and not sharding.under_launcher():  # start the ranks, then wait
            return sharding.launch_local(args.nproc, args.argv, Path(__file__).resolve())
        return _evaluate(args)
    except (UsageError, CheckpointError, ConfigError, ResumeError, FolderInUseError) as e:
        msg = " ".join(str(e).split())
        print(f"error: {msg}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished samples are saved; rerun with --resume to continue",
              file=sys.stderr, flush=True)
        return 130
    finally:
        _release_run(args)
        reset_logging()


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
