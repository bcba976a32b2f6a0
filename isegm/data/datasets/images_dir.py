"""A generic folder of images and masks (``ImagesDir:<path>`` on the command line).

``<path>/images/<stem>.<ext>`` and, per object, ``<path>/masks/<stem>.png`` or
``<path>/masks/<stem>_<n>.png``. Every mask file is one sample, so an image with three masks yields
three samples. Masks are read by :mod:`isegm.data.mask_io`: 0/1 or 0/255 binary, 0/128/255 trimap
(128 ignored), label map 1..k or palette PNG (one object per id); a colour or soft mask is an error
naming the file, and a mask without object pixels gives an empty object, which the evaluation
reports by name and leaves out of the averages. Images without masks and masks without images are
skipped with a warning.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..base import DatasetError, ISDataset
from ..io import (
    DATASET_MAX_PIXELS,
    ImageRefused,
    check_image_header,
    list_images,
    read_bytes,
    read_image,
    require_dir,
)
from ..mask_io import IGNORE_ID, read_mask_file
from ..sample import DSample

__all__ = ["ImagesDirDataset"]

logger = logging.getLogger(__name__)

_NUMBERED = re.compile(r"^(?P<stem>.+)_(?P<num>\d+)$")


class _Pair(NamedTuple):
    """One sample: an image and one of its mask files; printed as the mask file in reports."""

    image: Path
    mask: Path

    def __str__(self) -> str:
        return str(self.mask)


class ImagesDirDataset(ISDataset):
    """One sample per mask file of a generic ``images/`` + ``masks/`` folder.

    Args:
        dataset_path: the folder.
        images_dir_name: image sub-folder.
        masks_dir_name: mask sub-folder.
        name: dataset name for reports (default: the folder name).
    """

    def __init__(self, dataset_path: str | Path, images_dir_name: str = "images",
                 masks_dir_name: str = "masks", name: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        path = Path(dataset_path)
        self.name = name or path.name or "ImagesDir"
        self.dataset_path = require_dir(path, self.name)
        self._images_path = require_dir(self.dataset_path / images_dir_name, self.name)
        self._masks_path = require_dir(self.dataset_path / masks_dir_name, self.name)

        images = {p.stem: p for p in list_images(self._images_path)}
        masks: dict[str, list[tuple[int, Path]]] = {stem: [] for stem in images}
        orphans = []
        for mask_path in list_images(self._masks_path):
            stem = mask_path.stem
            if stem in masks:
                masks[stem].append((-1, mask_path))
                continue
            match = _NUMBERED.match(stem)
            if match and match["stem"] in masks:
                masks[match["stem"]].append((int(match["num"]), mask_path))
            else:
                orphans.append(mask_path.name)
        if orphans:
            logger.warning("%s: %d masks have no image in %s (e.g. %s)", self.name, len(orphans),
                           self._images_path, orphans[0])
        unmasked = [stem for stem, m in masks.items() if not m]
        if unmasked:
            logger.warning("%s: %d images have no mask in %s (e.g. %s); skipped", self.name,
                           len(unmasked), self._masks_path, images[unmasked[0]].name)

        self.dataset_samples = [_Pair(images[stem], mask_path)
                                for stem in sorted(masks)
                                for _, mask_path in sorted(masks[stem])]
        if not self.dataset_samples:
            raise DatasetError(f"{self.name}: no image with a mask in {self.dataset_path}")

    def inspect(self, index: int) -> tuple[tuple[int, int], dict[int, int]]:
        """``((height, width), {object id: area})`` of sample ``index`` from the image header
        and the decoded mask (the check of every file before training).

        Raises:
            DatasetError: a missing or unreadable image or mask, or a mask of another size.
        """
        image_path, mask_path = self.dataset_samples[index]
        try:
            w, h = check_image_header(read_bytes(image_path), str(image_path), DATASET_MAX_PIXELS)
        except ImageRefused as e:
            raise DatasetError(str(e)) from None
        mask = read_mask_file(mask_path, soft="error")
        _check_size(mask.labels.shape, (h, w), mask_path, image_path)
        counts = np.bincount(np.maximum(mask.labels, 0).ravel())
        return (h, w), {i: int(counts[i]) for i in mask.ids}

    def read_labels(self, index: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """``(image, labels, object ids)`` of sample ``index`` (labels: ``IGNORE_ID`` ignored)."""
        image_path, mask_path = self.dataset_samples[index]
        image = read_image(image_path)
        mask = read_mask_file(mask_path, soft="error")
        _check_size(mask.labels.shape, image.shape[:2], mask_path, image_path)
        return image, mask.labels, mask.ids

    def get_sample(self, index: int, rng: np.random.Generator | None = None) -> DSample:
        image, labels, ids = self.read_labels(index)
        # An empty mask stays one (empty) object, so the evaluation reports it by name.
        return DSample(image, labels, objects_ids=ids or [1], ignore_ids=[IGNORE_ID],
                       sample_id=index, image_name=self.dataset_samples[index].mask.stem)


def _check_size(mask_hw: tuple[int, ...], image_hw: tuple[int, ...], mask_path: Path,
                image_path: Path) -> None:
    if tuple(mask_hw) != tuple(image_hw):
        raise DatasetError(f"mask {mask_path} is {mask_hw[1]}x{mask_hw[0]}, its image "
                           f"{image_path.name} is {image_hw[1]}x{image_hw[0]}")
