"""PASCAL VOC 2012 instances (``val``: 1449 images, 3417 instances), one sample per instance.

``SegmentationObject/<id>.png`` is a palette PNG whose *palette index* is the instance number
(1..N) and 255 the void border. The reference converts the palette colours to grey and uses the
grey value as the id, which merges instances whose colours share a grey value (e.g. indices 1
and 16, SPEC Part II §8.10); here the indices are read directly.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..base import DatasetError, ISDataset
from ..cache import TransientList, cached_list, file_stamp
from ..io import read_image, require_dir, require_file
from ..sample import DSample

__all__ = ["PascalVocDataset", "voc_colormap", "read_voc_indices"]

logger = logging.getLogger(__name__)

VOID_INDEX = 255
IGNORE_ID = -1


def voc_colormap(num: int = 256) -> np.ndarray:
    """The standard VOC palette: ``(num, 3)`` uint8 RGB, colour ``i`` spreads the bits of ``i``."""
    ids = np.arange(num, dtype=np.int64)
    cmap = np.zeros((num, 3), np.int64)
    for bit in range(8):
        for channel in range(3):
            cmap[:, channel] |= ((ids >> (3 * bit + channel)) & 1) << (7 - bit)
    return cmap.astype(np.uint8)


def _rgb_codes(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def read_voc_indices(path: str | Path) -> np.ndarray:
    """Palette indices of a VOC label PNG as int32 H×W.

    Palette (``P``) and grey (``L``) images give their values; an RGB image is mapped back to
    indices through the VOC palette (unknown colours become 0, with a warning).

    Raises:
        DatasetError: the file is missing or not a readable image.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("P", "L", "I", "I;16"):
                return np.asarray(img, dtype=np.int32)
            rgb = np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise DatasetError(f"cannot read mask {path}: no such file") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise DatasetError(f"cannot decode mask {path}: {e}") from None

    palette_codes = _rgb_codes(voc_colormap())
    order = np.argsort(palette_codes)
    codes = _rgb_codes(rgb)
    pos = np.clip(np.searchsorted(palette_codes[order], codes), 0, len(order) - 1)
    indices = order[pos]
    unknown = palette_codes[indices] != codes
    if unknown.any():
        logger.warning("%s: %d pixels have colours outside the VOC palette; set to background",
                       path, int(unknown.sum()))
        indices = np.where(unknown, 0, indices)
    return indices.astype(np.int32)


class PascalVocDataset(ISDataset):
    """VOC2012 ``SegmentationObject`` instances; ``PASCALVOC_PATH`` points at ``VOC2012/``.

    Args:
        dataset_path: folder with ``JPEGImages/``, ``SegmentationObject/`` and
            ``ImageSets/Segmentation/<split>.txt``.
        split: ``'train'``, ``'val'`` or ``'trainval'``.
    """

    name = "PascalVOC"

    def __init__(self, dataset_path: str | Path, split: str = "val", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if split not in ("train", "val", "trainval"):
            raise ValueError(f"unknown PascalVOC split {split!r}")
        self.dataset_path = require_dir(dataset_path, self.name)
        self.split = split
        self._images_path = require_dir(self.dataset_path / "JPEGImages", self.name)
        self._insts_path = require_dir(self.dataset_path / "SegmentationObject", self.name)
        list_path = require_file(self.dataset_path / "ImageSets" / "Segmentation" / f"{split}.txt",
                                 self.name)
        image_ids = [line.strip() for line in list_path.read_text().splitlines() if line.strip()]
        if not image_ids:
            raise DatasetError(f"{self.name}: {list_path} lists no images")
        self.dataset_samples = [
            (image_id, int(inst))
            for image_id, inst in cached_list("pascalvoc", [file_stamp(list_path), split],
                                              lambda: self._scan_instances(image_ids))
        ]

    def _scan_instances(self, image_ids: list[str]) -> list[list]:
        """One ``[image_id, instance index]`` per instance; ``[id, -1]`` for unreadable masks."""
        out: list[list] = []
        failed = 0
        for image_id in image_ids:
            try:
                indices = read_voc_indices(self._insts_path / f"{image_id}.png")
            except DatasetError as e:
                logger.warning("%s", e)
                out.append([image_id, -1])
                failed += 1
                continue
            ids = np.unique(indices)
            out.extend([image_id, int(i)] for i in ids if i not in (0, VOID_INDEX))
        if failed:
            logger.warning("%s: %d masks could not be read while listing instances", self.name,
                           failed)
            return TransientList(out)
        return out

    def get_sample(self, index: int, rng: np.random.Generator | None = None) -> DSample:
        image_id, inst = self.dataset_samples[index]
        mask_path = self._insts_path / f"{image_id}.png"
        indices = read_voc_indices(mask_path)
        if inst < 0:
            raise DatasetError(f"{self.name}: no instances could be listed from {mask_path}")
        image = read_image(self._images_path / f"{image_id}.jpg")
        label_map = np.zeros(indices.shape, np.int32)
        label_map[indices == inst] = 1
        label_map[indices == VOID_INDEX] = IGNORE_ID
        return DSample(image, label_map, objects_ids=[1], ignore_ids=[IGNORE_ID], sample_id=index,
                       image_name=f"{image_id}#{inst}")
