"""Building blocks shared by the experiment scripts in ``models/`` (datasets and initialisation
of the published recipes, SPEC §5), so that each script only states what differs."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from isegm.data.datasets.coco_lvis import CocoLvisDataset
from isegm.data.points_sampler import MultiPointSampler
from isegm.data.transforms import train_augmentator, val_augmentator
from isegm.model.checkpoint import CheckpointError, load_mae_weights, load_simpleclick_init
from isegm.model.is_model import ISModel

__all__ = ["reference_points_sampler", "cocolvis_datasets", "init_from_pretrained", "RECIPE_448",
           "RECIPE_224"]

logger = logging.getLogger(__name__)

# colour / scale augmentation of the two script families
RECIPE_448 = dict(scale_range=(0.5, 1.5), brightness=(-0.3, 0.3), contrast=(-0.2, 0.5), rgb_shift=20)
RECIPE_224 = dict(scale_range=(0.75, 1.40), brightness=(-0.25, 0.25), contrast=(-0.15, 0.4), rgb_shift=10)


def reference_points_sampler(max_points: int = 24) -> MultiPointSampler:
    """``MultiPointSampler(24, prob_gamma=0.80, merge_objects_prob=0.15, max_num_merged_objects=2)``."""
    return MultiPointSampler(max_points, prob_gamma=0.80, merge_objects_prob=0.15,
                             max_num_merged_objects=2, use_hierarchy=False)


def cocolvis_datasets(cfg: Any, crop: int, recipe: dict, epoch_len: int = -1,
                      val_epoch_len: int = 2000, max_points: int = 24):
    """COCO+LVIS train/val as in the MST scripts (``min_object_area=1000``,
    ``keep_background_prob=0.05``, ``stuff_prob=0.30``)."""
    root = getattr(cfg, "LVIS_v1_PATH", None)
    sampler = reference_points_sampler(max_points)
    train = CocoLvisDataset(root, split="train", stuff_prob=0.30, augmentator=train_augmentator(crop, **recipe),
                            points_sampler=sampler, min_object_area=1000, keep_background_prob=0.05,
                            epoch_len=epoch_len, seed=cfg.seed)
    val = CocoLvisDataset(root, split="val", augmentator=val_augmentator(crop), points_sampler=sampler,
                          min_object_area=1000, epoch_len=val_epoch_len, seed=cfg.seed)
    return train, val


def init_from_pretrained(model: ISModel, cfg: Any, key: str, kind: str) -> ISModel:
    """Initialise from ``IMAGENET_PRETRAINED_MODELS[key]`` of ``config.yml``: ``kind='mae'``
    (backbone from an MAE file) or ``'simpleclick'`` (everything shared with a SimpleClick
    checkpoint). A missing file stops the run with one line (``--weights`` or a resume skips
    this)."""
    if getattr(cfg, "weights", None) or getattr(cfg, "resume_exp", None):
        return model
    path: Optional[str] = (getattr(cfg, "IMAGENET_PRETRAINED_MODELS", None) or {}).get(key)
    if not path or not Path(path).is_file():
        raise CheckpointError(f"pretrained weights IMAGENET_PRETRAINED_MODELS.{key} not found: "
                              f"{path} (set it in config.yml or pass --weights)")
    (load_mae_weights if kind == "mae" else load_simpleclick_init)(model, path)
    return model
