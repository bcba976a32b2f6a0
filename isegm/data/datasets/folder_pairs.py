"""Shared reader for "one folder of images, one folder of masks matched by file stem".

GrabCut, Berkeley, DAVIS and COCO_MVal only differ in folder names and in how a mask file is
decoded. Images and masks are matched by the *full* stem (``Path.stem``), so names with extra
dots (``a.b.jpg`` ↔ ``a.b.png``) pair correctly (SPEC Part II §8.11).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..base import DatasetError, ISDataset
from ..io import list_images, read_image, read_mask, require_dir
from ..sample import DSample

__all__ = ["FolderPairsDataset"]

logger = logging.getLogger(__name__)


class FolderPairsDataset(ISDataset):
    """Images in ``<path>/<images_dir_name>``, one mask each in ``<path>/<masks_dir_name>``.

    Subclasses implement :meth:`decode_mask`. Each sample has one object (key 0).
    """

    name = "FolderPairs"

    def __init__(self, dataset_path: str | Path, images_dir_name: str, masks_dir_name: str,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset_path = require_dir(dataset_path, self.name)
        self._images_path = require_dir(self.dataset_path / images_dir_name, self.name)
        self._masks_path = require_dir(self.dataset_path / masks_dir_name, self.name)
        self.dataset_samples = [p.name for p in list_images(self._images_path)]
        if not self.dataset_samples:
            raise DatasetError(f"{self.name}: no images in {self._images_path}")
        self._mask_paths: dict[str, Path] = {}
        for mask_path in list_images(self._masks_path):
            self._mask_paths.setdefault(mask_path.stem, mask_path)
        missing = sum(Path(n).stem not in self._mask_paths for n in self.dataset_samples)
        if missing:
            logger.warning("%s: %d of %d images in %s have no mask in %s", self.name, missing,
                           len(self.dataset_samples), self._images_path, self._masks_path)

    def decode_mask(self, raw: np.ndarray) -> tuple[np.ndarray, list[int], list[int]]:
        """Turn a raw mask file (as read by OpenCV) into ``(label map, object ids, ignore ids)``."""
        raise NotImplementedError

    def get_sample(self, index: int, rng: np.random.Generator | None = None) -> DSample:
        image_name = self.dataset_samples[index]
        image_path = self._images_path / image_name
        stem = Path(image_name).stem
        mask_path = self._mask_paths.get(stem)
        if mask_path is None:
            raise DatasetError(f"{self.name}: no mask for image {image_path} in {self._masks_path}")
        image = read_image(image_path)
        label_map, objects_ids, ignore_ids = self.decode_mask(read_mask(mask_path))
        return DSample(image, label_map, objects_ids=objects_ids, ignore_ids=ignore_ids,
                       sample_id=index, image_name=stem)
