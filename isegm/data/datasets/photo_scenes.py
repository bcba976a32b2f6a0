"""Datasets of scenes composed from real photographs, generated on the fly (no stored masks):
:class:`PhotoScenesDataset` for training and :class:`PhotoScenesEvalDataset` (one pasted
target per sample) for evaluation. How a scene is composed (object kinds, pasting, the
train / val split of the photographs) is described in :mod:`.photo_render`.

Each scene is a pure function of the generator it is given: in training that is
the :class:`ISDataset` item generator of ``(seed, epoch, index)``, so every epoch sees new
scenes and any worker or restarted run sees the same ones. With ``synthetic_fraction`` > 0, that
share of the scenes is drawn by the procedural renderer of :mod:`.synthetic` instead.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..base import ISDataset
from ..masks import labels_with_sizes
from ..sample import DSample
from .photo_render import OBJECT_KINDS, PhotoLibrary, merged_region, render_photo_scene, split_files
from .synthetic import _ALL_SCALE_PROBS, SCALES, ImageSize, _hw, _object_scales, render_scene

__all__ = ["PhotoLibrary", "PhotoScenesDataset", "PhotoScenesEvalDataset", "split_files",
           "render_photo_scene", "merged_region", "OBJECT_KINDS"]


def _check_options(scale: str, objects_per_image: tuple[int, int], kinds: Sequence[str]
                   ) -> tuple[str, tuple[int, int], tuple[str, ...]]:
    scale = scale.lower()
    if scale not in (*SCALES, "all"):
        raise ValueError(f"unknown scale {scale!r}; use one of {(*SCALES, 'all')}")
    lo, hi = int(objects_per_image[0]), int(objects_per_image[1])
    if not 1 <= lo <= hi:
        raise ValueError(f"bad objects_per_image {objects_per_image}")
    bad = [k for k in kinds if k not in OBJECT_KINDS]
    if bad or not kinds:
        raise ValueError(f"unknown object kinds {bad}; use some of {OBJECT_KINDS}")
    return scale, (lo, hi), tuple(kinds)


class PhotoScenesDataset(ISDataset):
    """Training scenes from photographs (see the module docstring).

    Args:
        photos_path: the photos folder (``PHOTOS_PATH``).
        split: ``'train'`` or ``'val'`` photographs (disjoint).
        num_samples: items per pass (scenes are drawn fresh for every ``(epoch, index)``).
        image_size: ``int`` or ``(height, width)`` of the composed scene.
        seed: :class:`ISDataset` seed.
        scale: object scales: ``'all'`` or one of ``small``/``medium``/``large``.
        objects_per_image: inclusive ``(min, max)`` number of objects.
        kinds: object kinds to use (default all of :data:`OBJECT_KINDS`).
        val_fraction: share of the photographs held out as ``val``.
        synthetic_fraction: share of scenes drawn instead from the procedural renderer of
            :mod:`.synthetic` (flat textures), so that a model trained here keeps what the
            synthetic scenes taught it.
        scale_probs: how often each of small / medium / large is drawn per object with
            ``scale='all'`` (None: that of the synthetic scenes, 0.4 / 0.35 / 0.25).
        **kwargs: :class:`ISDataset` arguments (augmentator, points_sampler, ...).
    """

    name = "PhotoScenesTrain"

    def __init__(self, photos_path: str | Path, split: str = "train", num_samples: int = 10000,
                 image_size: ImageSize = 224, seed: int = 0, scale: str = "all",
                 objects_per_image: tuple[int, int] = (2, 6),
                 kinds: Sequence[str] = OBJECT_KINDS, val_fraction: float = 0.15,
                 synthetic_fraction: float = 0.0,
                 scale_probs: Sequence[float] | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self.library = PhotoLibrary(photos_path, split, val_fraction)
        scale_probs = _ALL_SCALE_PROBS if scale_probs is None else scale_probs
        probs = np.asarray(scale_probs, np.float64)
        if probs.shape != (len(SCALES),) or (probs < 0).any() or abs(probs.sum() - 1) > 1e-6:
            raise ValueError(f"scale_probs must be {len(SCALES)} non-negative numbers summing "
                             f"to 1 (small, medium, large), got {tuple(scale_probs)}")
        self.scale_probs = tuple(probs.tolist())
        self.image_size = _hw(image_size)
        self.scale, self.objects_per_image, self.kinds = \
            _check_options(scale, objects_per_image, kinds)
        if not 0.0 <= synthetic_fraction <= 1.0:
            raise ValueError(f"synthetic_fraction must be in [0, 1], got {synthetic_fraction}")
        self.synthetic_fraction = float(synthetic_fraction)
        self.dataset_samples = list(range(int(num_samples)))

    def get_sample(self, index: int, rng: np.random.Generator | None = None) -> DSample:
        rng = self.sample_rng(index) if rng is None else rng
        height, width = self.image_size
        synthetic = rng.random() < self.synthetic_fraction
        count = int(rng.integers(self.objects_per_image[0], self.objects_per_image[1] + 1))
        scales = _object_scales(rng, count, self.scale, self.scale_probs)
        if synthetic:
            image, labels = render_scene(rng, height, width, scales)
        else:
            image, labels = render_photo_scene(rng, self.library, height, width, scales,
                                               kinds=self.kinds)
        visible = labels_with_sizes(labels)[0].tolist()
        return DSample(image, labels, objects_ids=visible, sample_id=index,
                       image_name=f"photo-scene-{index:06d}")


class PhotoScenesEvalDataset(ISDataset):
    """Evaluation scenes from the held-out photographs: one pasted target per sample.

    The target is put last and fully inside the image (like :class:`SyntheticEvalDataset`),
    on a background photograph with 1-5 distractors; scales cycle small / medium / large with
    ``scale='all'``. Registered as ``PhotoScenes`` (``--datasets PhotoScenes``).

    Args:
        photos_path: the photos folder (``PHOTOS_PATH``).
        num_samples, image_size, seed, scale, objects_per_image, val_fraction: as in
            :class:`PhotoScenesDataset`; ``split`` defaults to ``'val'``.
    """

    def __init__(self, photos_path: str | Path, num_samples: int = 100,
                 image_size: ImageSize = 320, seed: int = 0, scale: str = "all",
                 objects_per_image: tuple[int, int] = (2, 6), split: str = "val",
                 val_fraction: float = 0.15, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self.library = PhotoLibrary(photos_path, split, val_fraction)
        self.image_size = _hw(image_size)
        self.scale, self.objects_per_image, _ = _check_options(scale, objects_per_image,
                                                               OBJECT_KINDS)
        self.name = "PhotoScenes" if self.scale == "all" else f"PhotoScenes{self.scale.upper()}"
        self.dataset_samples = list(range(int(num_samples)))

    def target_scale(self, index: int) -> str:
        """Scale of the target of sample ``index``."""
        return SCALES[index % len(SCALES)] if self.scale == "all" else self.scale

    def get_sample(self, index: int, rng: np.random.Generator | None = None) -> DSample:
        scene_rng = self.sample_rng(index)  # evaluation: the same scene whatever the caller
        height, width = self.image_size
        count = int(scene_rng.integers(self.objects_per_image[0], self.objects_per_image[1] + 1))
        image, labels = render_photo_scene(scene_rng, self.library, height, width,
                                           _object_scales(scene_rng, count - 1, "all"),
                                           target_scale=self.target_scale(index))
        mask = (labels == count).astype(np.int32)
        return DSample(image, mask, objects_ids=[1], sample_id=index,
                       image_name=f"photo-scene-{self.target_scale(index)}-{index:05d}")
