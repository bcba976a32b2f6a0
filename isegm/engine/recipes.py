"""Building blocks shared by the experiment scripts in ``models/`` (datasets and initialisation
of the published recipes, SPEC §5), so that each script only states what differs. The project's
own tiny / photo recipes build on :class:`Recipe` in :mod:`isegm.engine.project_recipes`."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from isegm.data.base import DatasetError
from isegm.data.datasets.coco_lvis import CocoLvisDataset
from isegm.data.points_sampler import MultiPointSampler
from isegm.data.transforms import train_augmentator, val_augmentator
from isegm.model.checkpoint import CheckpointError
from isegm.model.init import init_as_original
from isegm.model.is_model import ISModel
from isegm.model.pretrained import load_mae_weights, load_simpleclick_init

__all__ = [
    "reference_points_sampler",
    "cocolvis_datasets",
    "init_from_pretrained",
    "RECIPE_448",
    "RECIPE_224",
    "Recipe",
    "TRAIN_SETTINGS",
    "REFERENCE_TRAIN",
    "REFERENCE_LOSS",
    "REFERENCE_EPOCHS",
    "train_settings",
]

logger = logging.getLogger(__name__)

# colour / scale augmentation of the two script families
RECIPE_448 = dict(
    scale_range=(0.5, 1.5), brightness=(-0.3, 0.3), contrast=(-0.2, 0.5), rgb_shift=20
)
RECIPE_224 = dict(
    scale_range=(0.75, 1.40), brightness=(-0.25, 0.25), contrast=(-0.15, 0.4), rgb_shift=10
)


#: Training settings of ``--train-settings``: ``reference`` reproduces the original code's
#: training (the default of the seed's experiment scripts), ``project`` keeps the project's
#: choices (the default of its own tiny / photo recipes). README "Reproducing published
#: training" names each difference.
TRAIN_SETTINGS = ("reference", "project")

#: What ``reference`` changes in :class:`~isegm.engine.trainer.TrainConfig`: the original's
#: AdamW groups (0.01 on every parameter; 0.02 under --layerwise-decay, the click embedding
#: untrained), its random inner-half training clicks, the extra-click draw per process, the
#: pre-stepped lr schedule (``--start-epoch 1``), no validation.
REFERENCE_TRAIN = dict(
    weight_decay_rule="reference",
    layer_decay_weight_decay=0.02,
    train_clicks="inner-half",
    clicks_per_rank=True,
    lr_epoch_offset=1,
    validate_every=0,
)
#: ... in :class:`~isegm.engine.trainer.LossConfig`: the original's +CL loss and its ignore
#: cells in the score loss.
REFERENCE_LOSS = dict(token_reference_quirks=True, score_ignore="reference")
#: Epochs of the seed's command lines, which pass no ``--epochs``: the original
#: ``dist_train.py`` defaults to ``--epochs 500 --start-epoch 1``, i.e. 499 trained epochs.
REFERENCE_EPOCHS = 499


def train_settings(cfg: Any, default: str) -> str:
    """``--train-settings`` of the command line, else the script's ``default``."""
    chosen = getattr(cfg, "train_settings", None) or default
    if chosen not in TRAIN_SETTINGS:
        raise ValueError(f"--train-settings must be one of {TRAIN_SETTINGS}, got {chosen!r}")
    return chosen


def reference_points_sampler(max_points: int = 24, clicks_on_ignore: bool = False
                             ) -> MultiPointSampler:
    """The reference sampler: ``MultiPointSampler(24, prob_gamma=0.80, merge_objects_prob=0.15,
    max_num_merged_objects=2)``; ``clicks_on_ignore`` as the original (see
    :class:`MultiPointSampler`)."""
    return MultiPointSampler(
        max_points,
        prob_gamma=0.80,
        merge_objects_prob=0.15,
        max_num_merged_objects=2,
        use_hierarchy=False,
        clicks_on_ignore=clicks_on_ignore,
    )


def cocolvis_datasets(
    cfg: Any,
    crop: int,
    recipe: dict,
    epoch_len: int = -1,
    val_epoch_len: int = 2000,
    max_points: int = 24,
    reference: bool = False,
    mask_resize: str = "nearest",
):
    """COCO+LVIS train/val as in the MST scripts (``min_object_area=1000``,
    ``keep_background_prob=0.05``, ``stuff_prob=0.30``); ``reference``: clicks may fall on
    ignore pixels, ``mask_resize``: see :func:`train_augmentator`."""
    root = getattr(cfg, "LVIS_v1_PATH", None)
    sampler = reference_points_sampler(max_points, clicks_on_ignore=reference)
    if not root or not Path(root).is_dir():
        raise DatasetError(f"COCO+LVIS not found at {root} (config key LVIS_v1_PATH in config.yml)")
    train = CocoLvisDataset(
        root,
        split="train",
        stuff_prob=0.30,
        augmentator=train_augmentator(crop, mask_resize=mask_resize, **recipe),
        points_sampler=sampler,
        min_object_area=1000,
        keep_background_prob=0.05,
        epoch_len=epoch_len,
        seed=cfg.seed,
    )
    val = CocoLvisDataset(
        root,
        split="val",
        augmentator=val_augmentator(crop),
        points_sampler=sampler,
        min_object_area=1000,
        epoch_len=val_epoch_len,
        seed=cfg.seed,
    )
    return train, val


def init_from_pretrained(model: ISModel, cfg: Any, key: str, kind: str) -> ISModel:
    """Initialise from ``IMAGENET_PRETRAINED_MODELS[key]`` of ``config.yml``: ``kind='mae'``
    (backbone from an MAE file) or ``'simpleclick'`` (everything shared with a SimpleClick
    checkpoint). A missing file stops the run with one line (``--weights`` or a resume skips
    this)."""
    if getattr(cfg, "weights", None) or getattr(cfg, "resume_exp", None):
        return model
    path: str | None = (getattr(cfg, "IMAGENET_PRETRAINED_MODELS", None) or {}).get(key)
    if not path or not Path(path).is_file():
        raise CheckpointError(
            f"pretrained weights IMAGENET_PRETRAINED_MODELS.{key} not found: "
            f"{path} (set it in config.yml or pass --weights)"
        )
    (load_mae_weights if kind == "mae" else load_simpleclick_init)(model, path)
    return model


class Recipe:
    """The three hooks of an experiment script for one published recipe.

    Args:
        arch: registry name of the architecture.
        img_size: default crop size (``--img_size`` overrides).
        init: ``(config key, kind)`` of the pretrained weights, kind ``mae`` or ``simpleclick``;
            None trains from scratch.
        augment: ``RECIPE_448`` or ``RECIPE_224``.
        epoch_len: training items per epoch (-1: the whole split).
        train / loss: :class:`TrainConfig` / :class:`LossConfig` of the recipe (the project's
            settings).
        datasets: optional override ``(cfg, crop) -> (train, val)``.
        settings: default of ``--train-settings``: ``'reference'`` (a seed script: the
            original's training, :data:`REFERENCE_TRAIN` / :data:`REFERENCE_LOSS` on top of
            ``train`` / ``loss``, ``reference_train`` last) or ``'project'`` (as given).
        reference_train: further TrainConfig fields of this script under ``reference``
            (default: ``epochs=REFERENCE_EPOCHS``).
        mask_resize: ``UniformRandomResize`` mask mode under ``reference`` (``'nearest'`` or
            the MST code's ``'bilinear-trunc'``); ``project`` always uses nearest.
    """

    def __init__(
        self,
        arch: str,
        img_size: int,
        init: tuple[str, str] | None,
        augment: dict,
        epoch_len: int,
        train,
        loss,
        datasets=None,
        settings: str = "project",
        reference_train: dict | None = None,
        mask_resize: str = "bilinear-trunc",
        **model_overrides,
    ) -> None:
        if settings not in TRAIN_SETTINGS:
            raise ValueError(f"settings must be one of {TRAIN_SETTINGS}, got {settings!r}")
        self.arch, self.img_size, self.init, self.augment = arch, img_size, init, augment
        self.epoch_len, self.train, self.loss = epoch_len, train, loss
        self.datasets, self.model_overrides = datasets, model_overrides
        self.settings, self.mask_resize = settings, mask_resize
        self.reference_train = {"epochs": REFERENCE_EPOCHS, **(reference_train or {})}

    def is_reference(self, cfg: Any) -> bool:
        """Whether this run trains with the original's settings (``--train-settings``)."""
        return train_settings(cfg, self.settings) == "reference"

    def init_model(self, cfg: Any) -> ISModel:
        from isegm.model import build_model

        model = build_model(
            self.arch,
            img_size=cfg.img_size or self.img_size,
            upsample=getattr(cfg, "upsample", "x1"),
            **self.model_overrides,
        )
        if getattr(cfg, "random_split", False) and model.cfg.arch == "plainvit":
            model.cfg.window_attention = False
        if self.is_reference(cfg):  # the original's init of the layers trained from scratch
            init_as_original(model)
        return init_from_pretrained(model, cfg, *self.init) if self.init else model

    def get_datasets(self, cfg: Any):
        crop = cfg.img_size or self.img_size
        if self.datasets is not None:
            return self.datasets(cfg, crop)
        ref = self.is_reference(cfg)
        return cocolvis_datasets(cfg, crop, self.augment, epoch_len=self.epoch_len,
                                 reference=ref,
                                 mask_resize=self.mask_resize if ref else "nearest")

    def get_train_config(self, cfg: Any):
        if not self.is_reference(cfg):
            return self.train, self.loss
        train = dataclasses.replace(self.train, **{**REFERENCE_TRAIN, **self.reference_train})
        return train, dataclasses.replace(self.loss, **REFERENCE_LOSS)

    def hooks(self):
        """``init_model, get_datasets, get_train_config`` for the script's namespace."""
        return self.init_model, self.get_datasets, self.get_train_config


def cclvs_448_recipe(arch: str, token_weight: float = 1.0) -> Recipe:
    """MST 448 scripts (``main`` / ``mst-448``): COCO+LVIS, SimpleClick ViT-B init, AdamW 5e-6,
    steps at 60/80, instance + token (CL) + focal score losses."""
    from .trainer import LossConfig, TrainConfig

    return Recipe(
        arch=arch,
        img_size=448,
        init=("VIT_BASE", "simpleclick"),
        augment=RECIPE_448,
        epoch_len=-1,
        settings="reference",
        train=TrainConfig(
            epochs=100,
            batch_size=32,
            lr=5e-6,
            weight_decay=0.01,
            milestones=(60, 80),
            checkpoint_interval=2,
            save_last_every_steps=500,
        ),
        loss=LossConfig(
            instance_weight=1.0, token_weight=token_weight, score_weight=1.0, score_mode="focal"
        ),
    )


def mae_224_recipe(arch: str) -> Recipe:
    """224 ablation scripts: COCO+LVIS (30000 items per epoch), MAE ViT-B init, token and MSE
    score losses at weight 1e-3."""
    from .trainer import LossConfig, TrainConfig

    return Recipe(
        arch=arch,
        img_size=224,
        init=("MAE_BASE", "mae"),
        augment=RECIPE_224,
        epoch_len=30000,
        settings="reference",
        train=TrainConfig(
            epochs=100, batch_size=32, lr=5e-6, milestones=(60, 80), checkpoint_interval=2
        ),
        loss=LossConfig(
            instance_weight=1.0, token_weight=1e-3, score_weight=1e-3, score_mode="mse"
        ),
    )


def __getattr__(name: str) -> Any:
    """The project's own recipes lived here until issue 24; they are found in
    :mod:`isegm.engine.project_recipes` now (kept reachable from here for one release)."""
    from . import project_recipes

    if name in project_recipes.__all__:
        return getattr(project_recipes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
