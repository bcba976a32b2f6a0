"""Validation by the evaluation's own protocol: NoC@85/90 on held-out images during training.

The fine-tuning script (``models/finetune.py``) hands :class:`NocValidation` to the trainer as
its validation set; after each epoch the trainer runs the model through the same predictor,
click simulator and NoC definition as ``evaluate_model.py`` (project settings: ZoomIn at the
model's size, flip averaging), so the number that picks the best checkpoint is the number a
later evaluation reports.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from isegm.inference import eval_settings
from isegm.inference.evaluation import evaluate_sample, open_sample
from isegm.inference.metrics import compute_noc_metric
from isegm.inference.predictor import NoBRSPredictor
from isegm.utils import distributed as dist_utils

__all__ = ["NocValidation"]

logger = logging.getLogger(__name__)

THRESHOLDS = (0.85, 0.90)


class NocValidation:
    """NoC@85 / NoC@90 of a model on every object of ``dataset`` (evaluation protocol).

    Args:
        dataset: evaluation-style dataset (``get_sample(i)`` with ``gt_mask(j)``).
        max_clicks: click budget per object (20, as the evaluation).
        max_objects: evaluate at most this many objects (the first ones), to bound the time
            an epoch spends validating.
    """

    def __init__(self, dataset: Any, max_clicks: int = 20, max_objects: int | None = None
                 ) -> None:
        self.dataset, self.max_clicks, self.max_objects = dataset, max_clicks, max_objects

    def __len__(self) -> int:
        return len(self.dataset)

    @torch.no_grad()
    def run(self, model: torch.nn.Module, device: torch.device) -> dict[str, float]:
        """``{'noc85', 'noc90', 'objects'}`` over all processes (each takes every
        ``world``-th sample; the sums are reduced). The model is left in eval mode."""
        rank, world = dist_utils.get_rank(), dist_utils.get_world_size()
        model.eval()
        settings = eval_settings.resolve_settings(eval_settings.PROJECT)
        zoom = eval_settings.make_zoom_in(model.cfg.img_size, settings)
        predictor = NoBRSPredictor(model, device, with_flip=True, zoom_in=zoom)
        all_ious, seen = [], 0
        for index in range(len(self.dataset)):
            result, image, objects = open_sample(self.dataset, index)
            for _, gt in objects:
                seen += 1
                if self.max_objects is not None and seen > self.max_objects:
                    break
                if (seen - 1) % world != rank:
                    continue
                _, ious, _ = evaluate_sample(image, gt, predictor, max_iou_thr=max(THRESHOLDS),
                                             max_clicks=self.max_clicks)
                all_ious.append(ious)
            if self.max_objects is not None and seen > self.max_objects:
                break
        nocs = compute_noc_metric(all_ious, THRESHOLDS, self.max_clicks).noc if all_ious \
            else np.zeros(len(THRESHOLDS))
        sums = torch.tensor([*(nocs * len(all_ious)), float(len(all_ious))], dtype=torch.float64,
                            device=device if device.type == "cuda" else "cpu")
        if world > 1:
            torch.distributed.all_reduce(sums)
        n = float(sums[-1])
        if n == 0:
            return {"noc85": float("nan"), "noc90": float("nan"), "objects": 0}
        return {"noc85": float(sums[0]) / n, "noc90": float(sums[1]) / n, "objects": int(n)}
