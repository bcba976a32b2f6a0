"""LVIS as a training set (``LVIS_v1_PATH``): polygons and RLEs rasterised with pycocotools.

``<path>/<split>/lvis_<split>.json`` (or ``lvis_v1_<split>.json``); images come from
``train/images/`` when the COCO url names ``train2017``, else ``val/images/`` (LVIS v1 val
contains COCO train images). Objects are placed in a random order and skipped when they overlap
already placed ones by more than ``max_overlap_ratio``.
"""
from __future__ import annotations

import json
import logging
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..base import DatasetError, ISDataset
from ..io import read_image, require_dir
from ..sample import DSample

__all__ = ["LvisDataset", "annotation_to_mask"]

logger = logging.getLogger(__name__)


def annotation_to_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """bool H×W mask of a COCO/LVIS ``segmentation`` (polygon list, RLE or compressed RLE)."""
    from pycocotools import mask as mask_utils  # only the LVIS reader needs pycocotools

    if isinstance(segmentation, list):
        rles = mask_utils.frPyObjects(segmentation, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    with warnings.catch_warnings():
        # pycocotools' decode trips a NumPy 2 ``__array__(copy=...)`` deprecation warning.
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


class LvisDataset(ISDataset):
    """LVIS instances; one sample per image with at least one annotation."""

    name = "LVIS"

    def __init__(self, dataset_path: str | Path, split: str = "train",
                 max_overlap_ratio: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset_path = require_dir(dataset_path, self.name)
        self.split = split
        self.max_overlap_ratio = float(max_overlap_ratio)
        split_path = require_dir(self.dataset_path / split, self.name)
        candidates = [split_path / f"lvis_{split}.json", split_path / f"lvis_v1_{split}.json"]
        anno_path = next((p for p in candidates if p.is_file()), None)
        if anno_path is None:
            raise DatasetError(f"{self.name}: neither {candidates[0]} nor {candidates[1]} exists")
        data = json.loads(anno_path.read_text())
        self._annotations: dict[int, list[dict]] = defaultdict(list)
        for ann in data["annotations"]:
            self._annotations[ann["image_id"]].append(ann)
        self.dataset_samples = [im for im in data["images"] if self._annotations[im["id"]]]

    def _image_path(self, image_info: dict) -> Path:
        url = image_info.get("coco_url", "") or image_info.get("file_name", "")
        folder = "train" if "train2017" in url else "val"
        return self.dataset_path / folder / "images" / url.split("/")[-1]

    def get_sample(self, index: int, rng: np.random.Generator | None = None) -> DSample:
        rng = rng if rng is not None else self.sample_rng(index)
        info = self.dataset_samples[index]
        image = read_image(self._image_path(info))
        height, width = image.shape[:2]
        annotations = self._annotations[info["id"]]

        instances = np.zeros((height, width), np.int32)
        areas = np.zeros(len(annotations) + 1, np.int64)
        objects_ids = []
        for order_index in rng.permutation(len(annotations)):
            obj_mask = annotation_to_mask(annotations[order_index]["segmentation"], height, width)
            area = int(obj_mask.sum())
            if area == 0:
                continue
            covered = instances[obj_mask]
            overlap = np.bincount(covered, minlength=len(areas))
            ratio = overlap[1:].sum() / area
            placed = np.flatnonzero(overlap[1:]) + 1
            if placed.size:
                ratio = max(ratio, float((overlap[placed] / areas[placed]).max()))
            if ratio > self.max_overlap_ratio:
                continue
            obj_id = int(order_index) + 1
            instances[obj_mask] = obj_id
            areas[obj_id] = area
            objects_ids.append(obj_id)
        return DSample(image, instances, objects_ids=objects_ids, sample_id=index,
                       image_name=str(info["id"]))
