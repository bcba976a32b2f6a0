"""The run folder of an evaluation: its name, its lock, and resuming or setting aside old runs.

The folder name holds the models, the datasets and a digest of every option that changes
per-sample results (:func:`key_options`), so the same command line finds the same folder and
``--resume`` reuses its finished samples; ``run.json`` keeps those options so that a resumed run
made with other options is refused. A run folder is locked while a process writes into it, and
a new run that finishes no sample leaves no folder behind (:func:`release_run`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from isegm.inference.results import ResumeError, atomic_write_text, options_digest, safe_name
from isegm.utils.exp import FolderLock
from isegm.utils.log import close_log_file

__all__ = ["first_missing", "key_options", "prepare_run_dir", "release_run", "run_folder_name"]

# eval.log names the command, as it did when this code lived in evaluate_model.py
logger = logging.getLogger("evaluate_model")


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
        **({"backend": args.backend} if getattr(args, "backend", "torch") != "torch" else {}),
    }


def run_folder_name(args: argparse.Namespace, labels: Sequence[str],
                    datasets: Sequence[str], options: dict[str, Any]) -> str:
    """``[prefix_]mode_model_datasets_digest``: readable, and unique per ``options``."""
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


def first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (None: it exists)."""
    missing = None
    for p in [path, *path.parents]:
        if p.exists():
            break
        missing = p
    return missing


def release_run(args: argparse.Namespace | None) -> None:
    """Unlocks the run folder; deletes it if this run created it and finished no sample."""
    run_dir, resuming, lock, first_new = getattr(args, "run_state", (None, True, None, None))
    if run_dir is not None and not resuming and not _has_samples(run_dir):
        _remove_new_folders(run_dir, first_new)
    if lock is not None:
        lock.release()


