"""Building blocks shared by the experiment scripts in ``models/`` (datasets and initialisation
of the published recipes, SPEC §5), so that each script only states what differs."""

from __future__ import annotations

import dataclasses
import logging
from functools import partial
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


def synthetic_datasets(cfg: Any, crop: int, num_train: int = 20000, num_val: int = 64):
    """Procedural multi-scale scenes (no download) for the built-in default model."""
    from isegm.data.datasets.synthetic import SyntheticMultiScaleDataset

    sampler = MultiPointSampler(12, prob_gamma=0.8)
    common = dict(image_size=crop, points_sampler=sampler, min_object_area=8)
    train = SyntheticMultiScaleDataset(
        num_samples=num_train,
        seed=cfg.seed,
        augmentator=train_augmentator(crop, scale_range=(0.8, 1.25)),
        **common,
    )
    val = SyntheticMultiScaleDataset(
        num_samples=num_val, seed=cfg.seed + 1000, augmentator=val_augmentator(crop), **common
    )
    return train, val


def synthetic_finetune_recipe(arch: str, token_weight: float, score_weight: float) -> Recipe:
    """3 more synthetic epochs from the tiny plain ViT (``TINY_PLAINVIT``): the built-in
    default MST and its plain-ViT control share this, so their budgets cannot drift apart."""
    return synthetic_recipe(
        arch,
        token_weight,
        score_weight,
        init=("TINY_PLAINVIT", "simpleclick"),
        epochs=3,
        milestones=(2,),
    )


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


def synthetic_recipe(
    arch: str,
    token_weight: float,
    score_weight: float,
    init: tuple[str, str] | None = None,
    epochs: int = 6,
    milestones: tuple[int, ...] = (4, 5),
) -> Recipe:
    """The built-in default's budget: ``epochs`` × 150 steps × 12 synthetic scenes at 224 px
    (6 epochs: about 20 minutes on a 2-core CPU), from scratch or from ``init`` (see
    :class:`Recipe`)."""
    return tiny_recipe(arch, token_weight, score_weight, synthetic_datasets, init=init,
                       epochs=epochs, milestones=milestones)


def tiny_recipe(
    arch: str,
    token_weight: float,
    score_weight: float,
    datasets,
    init: tuple[str, str] | None = None,
    epochs: int = 6,
    milestones: tuple[int, ...] = (4, 5),
    img_size: int = 224,
    steps_per_epoch: int = 150,
    batch_size: int = 12,
    **model_overrides,
) -> Recipe:
    """The CPU budget of the project's own tiny models, in one place: ``epochs`` ×
    ``steps_per_epoch`` steps × ``batch_size`` scenes of ``datasets`` at ``img_size``, AdamW
    5e-4 stepped ×0.1 at ``milestones``; ``model_overrides`` change the architecture's
    top-level fields (e.g. ``embed_dim``)."""
    from .trainer import LossConfig, TrainConfig

    return Recipe(
        arch=arch,
        img_size=img_size,
        init=init,
        augment={},
        epoch_len=-1,
        datasets=datasets,
        train=TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            lr=5e-4,
            weight_decay=0.05,
            milestones=milestones,
            checkpoint_interval=2,
            image_dump_interval=100,
            max_steps_per_epoch=steps_per_epoch,
        ),
        loss=LossConfig(instance_weight=1.0, token_weight=token_weight, score_weight=score_weight),
        **model_overrides,
    )


def photo_datasets(cfg: Any, crop: int, num_train: int = 20000, num_val: int = 64,
                   scale_probs: tuple[float, float, float] | None = None):
    """Scenes composed from the photographs of ``PHOTOS_PATH`` (``python -m isegm.data.photos
    collect``): train and val use disjoint photographs; the colour / scale augmentation of the
    224 recipes on top. Every epoch composes new scenes (the item seed includes the epoch); a
    quarter of the training scenes are procedural ones (:mod:`~isegm.data.datasets.synthetic`)
    so that the synthetic benchmarks are not forgotten. ``scale_probs`` changes how often
    small / medium / large objects are drawn in the training scenes (validation keeps the
    default mix, so validation IoUs stay comparable across stages)."""
    from isegm.data.datasets.photo_scenes import PhotoScenesDataset

    root = getattr(cfg, "PHOTOS_PATH", None)
    if not root or not Path(root).is_dir():
        raise DatasetError(f"photos not found at {root} (config key PHOTOS_PATH in config.yml; "
                           "collect them with: python -m isegm.data.photos collect)")
    sampler = MultiPointSampler(12, prob_gamma=0.8)
    common = dict(image_size=crop, points_sampler=sampler, min_object_area=8)
    train = PhotoScenesDataset(
        root, split="train", num_samples=num_train, seed=cfg.seed, synthetic_fraction=0.25,
        scale_probs=scale_probs, augmentator=train_augmentator(crop, **RECIPE_224), **common,
    )
    val = PhotoScenesDataset(
        root, split="val", num_samples=num_val, seed=cfg.seed + 1000,
        augmentator=val_augmentator(crop), **common,
    )
    return train, val


#: The photo-trained default's budget (see :func:`photo_recipe`): 200 steps of 12 scenes at
#: 224 px per epoch, about 1.7 s (plain ViT) / 2.0 s (MST) per step on an idle 2-core CPU.
PHOTO_BUDGET = dict(img_size=224, steps_per_epoch=200, batch_size=12)


def photo_recipe(
    arch: str,
    token_weight: float,
    score_weight: float,
    init: tuple[str, str] | None,
    epochs: int,
    milestones: tuple[int, ...],
    scale_probs: tuple[float, float, float] | None = None,
    budget: dict | None = None,
) -> Recipe:
    """Models on photo scenes (:func:`photo_datasets`, with its ``scale_probs``) with
    ``budget`` (size, steps per epoch, batch; default :data:`PHOTO_BUDGET`)."""
    datasets = partial(photo_datasets, scale_probs=scale_probs)  # None: the default mix
    return tiny_recipe(arch, token_weight, score_weight, datasets, init=init,
                       epochs=epochs, milestones=milestones, **(budget or PHOTO_BUDGET))


def photo_finetune_recipe(arch: str, token_weight: float, score_weight: float,
                          init_key: str = "TINY_PLAINVIT_PHOTOS",
                          scale_probs: tuple[float, float, float] | None = None) -> Recipe:
    """A fine-tuning stage of the photo default and its plain-ViT control: 5 epochs from the
    weights ``init_key`` of ``config.yml`` (stage 2: both from the same plain ViT), so the two
    models' data and budgets cannot drift apart."""
    return photo_recipe(arch, token_weight, score_weight, init=(init_key, "simpleclick"),
                        epochs=5, milestones=(4,), scale_probs=scale_probs)


#: Object-scale mix (small, medium, large) of the third photo stage. The first two draw
#: 0.40 / 0.35 / 0.25; on the held-out photo scenes (``--datasets PhotoScenesSMALL,...``) the
#: stage-2 default's first click covers large targets worst (mIoU@1 31 % against 49 % for
#: medium), so the third stage draws large objects twice as often.
BIG_OBJECT_SCALE_PROBS = (0.15, 0.35, 0.50)


def photo_bigobject_recipe(arch: str, token_weight: float, score_weight: float,
                           init_key: str) -> Recipe:
    """Third photo stage of the default and its control: a fine-tuning stage with
    :data:`BIG_OBJECT_SCALE_PROBS`, from the stage-2 weights named by ``init_key`` (each model
    continues from itself)."""
    return photo_finetune_recipe(arch, token_weight, score_weight, init_key,
                                 BIG_OBJECT_SCALE_PROBS)


#: One short GPU run at 448 (issue 10, item 4; ``benchmarks/gpu_train_photos448.sh``): 10
#: epochs x 150 steps x 32 scenes = 48 000 scenes per model. Photo scenes at 448 cost about
#: 33 ms each on one CPU core here, so 7 loader workers per model (two models share a 16-core
#: machine) make about 210 scenes/s: about 4 min of training, the learning-rate step after
#: 3 min; the script's ``--time-limit`` (5 min) caps a slower machine.
PHOTO_448_BUDGET = dict(img_size=448, steps_per_epoch=150, batch_size=32)


def photo_448_recipe(arch: str, token_weight: float, score_weight: float) -> Recipe:
    """The small 448 models (``mst_small_448``, ``plainvit_small_448``) from scratch on photo
    scenes at 448 with :data:`BIG_OBJECT_SCALE_PROBS`, the last mix the held-out photo splits
    favoured; AdamW 5e-4, x0.1 after epoch 8 (:data:`PHOTO_448_BUDGET`)."""
    return photo_recipe(arch, token_weight, score_weight, init=None, epochs=10, milestones=(8,),
                        scale_probs=BIG_OBJECT_SCALE_PROBS, budget=PHOTO_448_BUDGET)
