"""The project's own training recipes: the tiny CPU-budget models on procedural scenes
(:func:`synthetic_recipe`) and on photo scenes (:func:`photo_recipe` and its fine-tuning
stages), and the small 448 models of the one GPU run. The published recipes (COCO+LVIS,
:class:`~isegm.engine.recipes.Recipe`) are in :mod:`isegm.engine.recipes`."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from isegm.data.base import DatasetError
from isegm.data.points_sampler import MultiPointSampler
from isegm.data.transforms import train_augmentator, val_augmentator

from .recipes import RECIPE_224, Recipe

__all__ = [
    "synthetic_datasets",
    "synthetic_recipe",
    "synthetic_finetune_recipe",
    "tiny_recipe",
    "photo_datasets",
    "PHOTO_BUDGET",
    "photo_recipe",
    "photo_finetune_recipe",
    "BIG_OBJECT_SCALE_PROBS",
    "photo_bigobject_recipe",
    "PHOTO_448_BUDGET",
    "photo_448_recipe",
]


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
