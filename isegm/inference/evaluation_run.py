"""One evaluation run: every checkpoint on every dataset, into one run folder and one table.

:func:`run_evaluation` is ``evaluate_model.py`` after its command line is parsed: it resolves
the checkpoints, opens the datasets (a missing one is reported and skipped), prepares and locks
the run folder (rank 0 of several processes), runs the samples each process still has to do
(``protocol_runner.py``), and on rank 0 merges the per-sample logs into the summary, CSV/JSON,
IoU arrays and plots (``results.py``, ``sharding.py``). Table lines go to ``emit`` (the command
prints them) and to ``results.txt``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import pickle
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import torch

from isegm.data.base import DatasetError
from isegm.data.datasets import EVAL_DATASETS, get_eval_dataset
from isegm.inference import eval_settings, sharding
from isegm.inference.backends import with_precision
from isegm.inference.backends_cli import check_precision
from isegm.inference.checkpoint_selection import (
    checkpoint_fingerprint,
    inference_size,
    model_labels,
    resolve_checkpoints,
)
from isegm.inference.eval_command import UsageError, choose_device
from isegm.inference.grabcut_baseline import GrabCutPredictor, is_grabcut
from isegm.inference.protocol_runner import build_predictor, run_pair
from isegm.inference.refine import RefinedPredictor, refine_fingerprint
from isegm.inference.results import (
    format_table_header,
    format_table_row,
    safe_name,
    save_ious_npz,
    save_ious_pickle,
    summarize,
    write_summary,
)
from isegm.inference.run_folder import first_missing, key_options, prepare_run_dir, run_folder_name
from isegm.inference.utils import load_is_model
from isegm.utils.config import load_config
from isegm.utils.exp import remove_stale_temp_files
from isegm.utils.log import add_log_file

__all__ = ["open_datasets", "run_evaluation"]

# eval.log names the command, as it did when this code lived in evaluate_model.py
logger = logging.getLogger("evaluate_model")


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


def _plain_args(args: argparse.Namespace) -> dict[str, Any]:
    out = {}
    for k, v in vars(args).items():
        out[k] = v if isinstance(v, (str, int, float, bool, list, dict, type(None))) else str(v)
    return out


def _show(emit: Callable[[str], None], line: str, results_txt: Path | None) -> None:
    """A line of the command's output: to ``emit``, and appended to ``results_txt``."""
    emit(line)
    if results_txt is not None:
        with open(results_txt, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def run_evaluation(args: argparse.Namespace, repo: Path, emit: Callable[[str], None]) -> int:
    """Evaluates every checkpoint on every dataset of ``args`` (see ``parse_args``).

    ``repo`` holds the default ``weights/`` and ``experiments/``; ``emit`` shows a line of the
    table. The run folder and its lock are left in ``args.run_state`` for :func:`release_run`.

    Returns:
        0 once a model x dataset pair was evaluated (or on ranks other than 0), 1 when no
        dataset is available.
    """
    cfg = load_config(args.config_path)
    if args.threads:
        # OpenCV too (the clicker's and ZoomIn's image operations): its default of one thread
        # per core oversubscribes the cores when --nproc ranks share them
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    device = choose_device(args)
    try:
        check_precision(args.precision, args.backend, device.type)
    except ValueError as e:
        raise UsageError(str(e)) from None
    files = resolve_checkpoints(args, cfg, repo)
    if args.model_name and len(files) > 1:
        logger.warning("--model-name ignored: %d checkpoints", len(files))
    # one entry (row) per checkpoint x refinement mode; the GrabCut baseline is never refined
    modes = getattr(args, "refine_modes", ["none"])
    entries = [(p, m) for p in files for m in modes if m == "none" or not is_grabcut(p)]
    checkpoints = [p for p, _ in entries]
    refines = [m for _, m in entries]
    file_labels = dict(zip(files, model_labels(files, args.model_name)))
    labels = [file_labels[p] + ("" if m == "none" else f"+{m}") for p, m in entries]

    datasets, skipped = open_datasets(args, cfg)
    if not datasets:
        _show(emit, f"Nothing to evaluate: no dataset available "
                    f"(skipped: {', '.join(s['name'] for s in skipped)})", None)
        return 1

    names = [n for n, _ in datasets]
    fingerprints = [checkpoint_fingerprint(p) + ("" if m == "none" else
                                                 f"+{m}:{refine_fingerprint()}")
                    for p, m in entries]
    sizes = {p: inference_size(args, p) for p in files}
    args.inference_sizes = [sizes[p] for p in checkpoints]
    options = key_options(args, labels, fingerprints, names)
    logs_root = Path(args.logs_path) if args.logs_path else \
        Path(cfg.get("EXPS_PATH") or repo / "experiments") / "evaluation_logs"
    run_name = run_folder_name(args, labels, names, options)
    first_new = first_missing(logs_root / run_name)
    shard = sharding.current_shard()  # torchrun / --nproc: this rank (else one process)
    if shard.world > 1 and device.type == "cuda":
        device = torch.device("cuda", shard.local_rank % torch.cuda.device_count())
    if shard.is_main:
        run_dir, resuming, lock = prepare_run_dir(args, logs_root, run_name, options)
        args.run_state = (run_dir, resuming, lock, first_new)  # released by release_run()
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

    model, model_path = None, None
    for entry, (label, path, refine) in enumerate(zip(labels, checkpoints, refines)):
        if model_path != path:  # the refined rows of a checkpoint reuse its model
            model, model_path = None, path
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
                if todo:
                    if model is None:
                        model, settings, settings_used = _load_model(path, device, args, label)
                    predictor = model if is_grabcut(path) else \
                        build_predictor(model, device, args, ds_name, settings)
                    if refine != "none":
                        predictor = RefinedPredictor(predictor)
                    dataset = eval_settings.select_objects(dataset, settings)
                    vis_dir = run_dir / "vis" / safe_name(label.replace("/", "-")) / \
                        safe_name(ds_name) if args.vis else None
                    run_pair(dataset, predictor, log.claim(todo), log, args,
                             desc=f"{label} {ds_name}", vis_dir=vis_dir, initial=len(done),
                             total=n)
                merged = log.merge()  # every rank's samples (rank 0 writes the jsonl)
                records = [merged[i] for i in indices if i in merged]
            if not shard.is_main:
                continue
            if settings_used is None:
                # every sample came from the logs (a resumed run killed after its last sample):
                # the row still names the settings the samples were evaluated with
                model, settings, settings_used = _load_model(path, device, args, label)

            row = {"model": label, "dataset": ds_name, "checkpoint": str(path),
                   **summarize(records, args.n_clicks, args.effective_target),
                   "reused_samples": len(done), "evaluated_samples": len(todo),
                   "eval_settings": settings_used,
                   "inference_size": args.inference_sizes[entry],
                   "refine": refine,
                   "precision": args.precision,
                   "backend": args.backend,
                   "inference_size_from": "--inference_size" if args.inference_size
                   else "checkpoint"}
            rows.append(row)
            if row["errors"]:
                logger.warning("%s: %d unreadable sample(s) skipped: %s", ds_name,
                               row["errors"], ", ".join(row["error_names"]))
            if row["empty_objects"]:
                logger.warning("%s: %d object(s) with an empty mask left out of the averages: %s",
                               ds_name, row["empty_objects"], ", ".join(row["empty_names"]))
            curves[ds_name][label] = row["miou_per_click"]
            _save_pair_files(run_dir, stem, ds_name, label, args, records, curves[ds_name])

            if not header_printed:
                _show(emit, format_table_header(mw, dw), results_txt)
                header_printed = True
            _show(emit, format_table_row(label, ds_name, row, mw, dw), results_txt)
            if args.print_ious:
                k = min(20, args.n_clicks)
                _show(emit, "    " + " ".join(
                    f"mIoU@{i + 1}=" + ("-" if v is None else f"{v:.2%}") + ";"
                    for i, v in enumerate(row["miou_per_click"][:k])), results_txt)
            write_summary(run_dir, rows, _plain_args(args), skipped,
                          {**extra, "elapsed_s": time.perf_counter() - started})
    del model

    shard.close()
    if not shard.is_main:
        return 0
    if skipped:
        _show(emit, "Skipped datasets: " + "; ".join(f"{s['name']} ({s['reason']})"
                                                      for s in skipped), results_txt)
    _show(emit, f"Results: {run_dir}", None)
    return 0


def _load_model(path: Path | str, device: torch.device, args: argparse.Namespace,
                label: str) -> tuple[Any, eval_settings.EvalSettings, dict[str, Any]]:
    """The model of ``path`` with its family's evaluation settings applied: (model, settings,
    the settings as the summary row records them)."""
    model = GrabCutPredictor() if is_grabcut(path) else \
        load_is_model(path, device, variant=args.variant)
    family, settings = eval_settings.settings_for_checkpoint(path, model, args.explicit_settings)
    eval_settings.apply_to_model(model, settings)
    if not is_grabcut(path):  # --precision / --backend (the settings are applied first)
        try:
            model = with_precision(model, args.precision, device, args.backend,
                                   size=args.inference_size, source=path)
        except ValueError as e:
            raise UsageError(str(e)) from None
    logger.info("%s: evaluation settings of family %s: %s", label, family, settings)
    return model, settings, {"family": family, **dataclasses.asdict(settings)}


def _save_pair_files(run_dir: Path, stem: str, ds_name: str, label: str,
                     args: argparse.Namespace, records: Sequence[Any],
                     curves: dict[str, list]) -> None:
    """The IoU arrays of one model x dataset pair (npz; the reference's pickles if asked for)
    and the dataset's mIoU plot of every model so far (a failed plot is only logged)."""
    save_ious_npz(run_dir / "ious" / f"{stem}.npz", records, args.n_clicks)
    if args.save_ious:
        save_ious_pickle(run_dir / "ious" / f"{stem}_{safe_name(args.eval_mode)}_"
                         f"{args.mode}_{args.n_clicks}.pkl", records)
    if args.iou_analysis:
        _save_iou_analysis(run_dir, stem, ds_name, label, args, records)
    try:
        from isegm.inference.plots import plot_miou_curves

        plot_miou_curves(run_dir / "plots" / f"{safe_name(ds_name)}.png", ds_name, curves)
    except Exception as e:  # noqa: BLE001 - a plot must not lose the results
        logger.warning("could not draw the plot for %s: %s", ds_name, e)


def _save_iou_analysis(run_dir: Path, stem: str, ds_name: str, label: str,
                       args: argparse.Namespace, records: Sequence[Any]) -> None:
    """The reference's ``--iou-analysis`` pickle (read by SimpleClick's plot script)."""
    path = run_dir / "plots" / f"{stem}_{safe_name(args.eval_mode)}_{args.mode}_" \
                               f"{args.n_clicks}.pickle"
    path.parent.mkdir(parents=True, exist_ok=True)
    all_ious = [x for r in records if r.error is None for x in r.ious]
    with open(path, "wb") as f:
        pickle.dump({"dataset_name": ds_name, "model_name": f"{label}_{args.mode}",
                     "all_ious": all_ious}, f)


