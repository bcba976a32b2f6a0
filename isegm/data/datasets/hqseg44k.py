"""HQSeg-44K (``HQSeg44K_PATH``): the high-quality mask collection of HQ-SAM, one object each.

``val`` (1537 images) = DIS5K-VD + ThinObject5K-TE + COIFT + HRSOD; ``train`` (44320) =
DIS5K-TR + ThinObject5K-TR + FSS + DUTS-TR + DUTS-TE + ECSSD + MSRA10K. Images are ``*.jpg``,
the mask of ``<stem>.jpg`` is ``<stem>.png`` in the sub-set's mask folder (the same folder for
the ``cascade_psp`` sets); any non-zero channel marks the object.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..base import DatasetError, ISDataset
from ..io import read_image, read_mask, require_dir
from ..sample import DSample
from .davis import decode_any_nonzero

__all__ = ["HQSeg44kDataset", "HQSEG_SUBSETS"]

logger = logging.getLogger(__name__)

#: split -> [(sub-set name, image folder, mask folder)], relative to the dataset root.
HQSEG_SUBSETS: dict[str, list[tuple[str, str, str]]] = {
    "train": [
        ("DIS5K-TR", "DIS5K/DIS-TR/im", "DIS5K/DIS-TR/gt"),
        ("ThinObject5k-TR", "thin_object_detection/ThinObject5K/images_train",
         "thin_object_detection/ThinObject5K/masks_train"),
        ("FSS", "cascade_psp/fss_all", "cascade_psp/fss_all"),
        ("DUTS-TR", "cascade_psp/DUTS-TR", "cascade_psp/DUTS-TR"),
        ("DUTS-TE", "cascade_psp/DUTS-TE", "cascade_psp/DUTS-TE"),
        ("ECSSD", "cascade_psp/ecssd", "cascade_psp/ecssd"),
        ("MSRA10K", "cascade_psp/MSRA_10K", "cascade_psp/MSRA_10K"),
    ],
    "val": [
        ("DIS5K-VD", "DIS5K/DIS-VD/im", "DIS5K/DIS-VD/gt"),
        ("ThinObject5k-TE", "thin_object_detection/ThinObject5K/images_test",
         "thin_object_detection/ThinObject5K/masks_test"),
        ("COIFT", "thin_object_detection/COIFT/images", "thin_object_detection/COIFT/masks"),
        ("HRSOD", "thin_object_detection/HRSOD/images",
         "thin_object_detection/HRSOD/masks_max255"),
    ],
}


class HQSeg44kDataset(ISDataset):
    """HQSeg-44K; every sub-set folder of the split must exist.

    Args:
        dataset_path: root holding ``DIS5K/``, ``thin_object_detection/``, ``cascade_psp/``.
        split: ``'val'`` or ``'train'``.
    """

    name = "HQSeg44k"

    def __init__(self, dataset_path: str | Path, split: str = "val", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if split not in HQSEG_SUBSETS:
            raise ValueError(f"unknown HQSeg44k split {split!r}")
        self.dataset_path = require_dir(dataset_path, self.name)
        self.split = split
        self.subsets = HQSEG_SUBSETS[split]
        samples = []
        for subset_index, (_, im_dir, gt_dir) in enumerate(self.subsets):
            images_path = require_dir(self.dataset_path / im_dir, self.name)
            require_dir(self.dataset_path / gt_dir, self.name)
            samples.extend((p.stem, subset_index) for p in sorted(images_path.glob("*.jpg")))
        if not samples:
            raise DatasetError(f"{self.name}: no *.jpg images in the {split} sub-sets of "
                               f"{self.dataset_path}")
        self.dataset_samples = samples

    def get_sample(self, index: int, rng: np.random.Generator | None = None) -> DSample:
        stem, subset_index = self.dataset_samples[index]
        subset_name, im_dir, gt_dir = self.subsets[subset_index]
        image = read_image(self.dataset_path / im_dir / f"{stem}.jpg")
        label_map, objects_ids, _ = decode_any_nonzero(
            read_mask(self.dataset_path / gt_dir / f"{stem}.png"))
        return DSample(image, label_map, objects_ids=objects_ids, sample_id=index,
                       image_name=f"{subset_name}_{stem}")
