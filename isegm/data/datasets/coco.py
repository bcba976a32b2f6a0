"""MS COCO panoptic as a training set (``COCO_PATH``).

``annotations/panoptic_<split>.json``, label PNGs in ``annotations/panoptic_<split>/``, images in
``<split>/``. A segment id is ``R + 256·G + 256²·B`` of the label PNG. Crowd "things" are left
out (background); "stuff" segments are objects only with probability ``stuff_prob``.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..base import ISDataset
from ..io import read_image, read_mask, require_dir, require_file
from ..sample import DSample

__all__ = ["CocoDataset", "panoptic_ids"]

logger = logging.getLogger(__name__)


def panoptic_ids(label_bgr: np.ndarray) -> np.ndarray:
    """Segment ids of a COCO panoptic PNG read by OpenCV (BGR): ``R + 256 G + 65536 B``."""
    label = label_bgr.astype(np.int64)
    return label[:, :, 2] + 256 * label[:, :, 1] + 65536 * label[:, :, 0]


class CocoDataset(ISDataset):
    """COCO panoptic segments as objects (ids relabelled to 1..N)."""

    name = "COCO"

    def __init__(self, dataset_path: str | Path, split: str = "train", stuff_prob: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset_path = require_dir(dataset_path, self.name)
        self.split = split
        self.stuff_prob = float(stuff_prob)
        annotations = self.dataset_path / "annotations"
        anno_path = require_file(annotations / f"panoptic_{split}.json", self.name)
        self._labels_path = require_dir(annotations / f"panoptic_{split}", self.name)
        self._images_path = require_dir(self.dataset_path / split, self.name)
        data = json.loads(anno_path.read_text())
        self.dataset_samples = data["annotations"]
        self._things = {c["id"] for c in data["categories"] if c.get("isthing", 0) == 1}

    def get_sample(self, index: int, rng: np.random.Generator | None = None) -> DSample:
        rng = rng if rng is not None else self.sample_rng(index)
        entry = self.dataset_samples[index]
        image = read_image(self._images_path / entry["file_name"].replace(".png", ".jpg"))
        raw = read_mask(self._labels_path / entry["file_name"])
        segment_map = panoptic_ids(raw if raw.ndim == 3 else np.repeat(raw[..., None], 3, 2))

        things, stuff = [], []
        for seg in entry["segments_info"]:
            if seg["category_id"] in self._things:
                if not seg.get("iscrowd", 0):
                    things.append(seg["id"])
            else:
                stuff.append(seg["id"])
        use_stuff = self.stuff_prob > 0 and rng.random() < self.stuff_prob
        kept = things + stuff if use_stuff else things

        # Relabel kept segments to 1..N in one lookup; everything else becomes background.
        instance_map = np.zeros(segment_map.shape, np.int32)
        if kept:
            kept_arr = np.asarray(kept, np.int64)
            order = np.argsort(kept_arr)
            pos = np.clip(np.searchsorted(kept_arr[order], segment_map), 0, len(kept) - 1)
            hit = kept_arr[order][pos] == segment_map
            instance_map[hit] = (order[pos] + 1)[hit]
        return DSample(image, instance_map, objects_ids=list(range(1, len(kept) + 1)),
                       sample_id=index, image_name=Path(entry["file_name"]).stem)
