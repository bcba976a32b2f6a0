"""Runs the click protocol on one model x dataset pair and logs every finished sample.

:func:`build_predictor` makes the NoBRS predictor of the evaluation; :func:`run_pair` drives it
over the samples with the lockstep driver (``lockstep.py``; ``--batch-size 1`` gives exactly the
single-object :func:`isegm.inference.evaluation.evaluate_sample`), appends each sample to the
per-sample log as soon as it is done (so a killed run resumes there) and, with ``--vis``, saves
one overlay per object.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isegm.inference import eval_settings, lockstep, sharding
from isegm.inference.predictor import NoBRSPredictor
from isegm.inference.results import SampleLog, record_from_result, safe_name
from isegm.utils.log import progress_bar

__all__ = ["build_predictor", "run_pair", "sample_name"]

# eval.log names the command, as it did when this code lived in evaluate_model.py
logger = logging.getLogger("evaluate_model")


def build_predictor(model: torch.nn.Module, device: torch.device, args: argparse.Namespace,
                    dataset_name: str = "",
                    settings: eval_settings.EvalSettings | None = None) -> NoBRSPredictor:
    """The NoBRS predictor of the evaluation (SPEC Part II §3.3, §4); ``settings`` default to
    the project family's with the command line's explicit flags. ``model`` runs at the
    precision it was made ready for (:func:`isegm.inference.backends.with_precision`)."""
    if settings is None:
        explicit = eval_settings.explicit_settings(args)
        settings = eval_settings.resolve_settings(explicit["eval_family"] or eval_settings.PROJECT,
                                                  explicit)
    size = args.inference_size or model.cfg.img_size  # default: the model's training size
    zoom = eval_settings.make_zoom_in(
        eval_settings.crop_side(size, dataset_name, settings), settings)
    return NoBRSPredictor(model, device, with_flip=True, zoom_in=zoom,
                          cascade_steps=args.cf_n, cascade_adaptive=args.acf,
                          cascade_clicks=args.cf_click, net_clicks_limit=args.clicks_limit)


def sample_name(dataset: Any, index: int) -> str:
    """The sample's file name as the logs record it (its index if the dataset has none)."""
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


def run_pair(dataset: Any, predictor: Any, indices: Iterable[int],
             log: SampleLog | sharding.ShardedLog,
             args: argparse.Namespace, desc: str = "", vis_dir: Path | None = None,
             initial: int = 0, total: int | None = None) -> int:
    """Evaluates ``indices`` of a dataset, appending each finished sample to ``log``.

    ``indices`` may be an iterator (the samples a rank claims one at a time); then ``total``
    (all samples of the pair) sizes the progress bar.

    Returns:
        Number of samples that could not be read.
    """
    vis = _VisRecorder() if vis_dir is not None else None
    errors = 0
    if total is None:
        total = initial + len(indices)  # type: ignore[arg-type]
    bar = progress_bar(total=total, desc=desc, initial=initial, logger=logger)
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


