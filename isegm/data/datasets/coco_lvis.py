"""COCO+LVIS (RITM's 99k images / 1.5M masks), the training set of every MST model.

Layout ``<LVIS_v1_PATH>/<split>/``: ``images/<id>.jpg``, ``masks/<id>.pickle`` (packed layers,
:mod:`isegm.data.packed_masks`), ``hannotation.pickle`` (object hierarchy per image).
"""
from __future__ import annotations

import json
import logging
from copy import deepcopy
from pathlib import Path
from typing import Any

import numpy as np

from ..base import ISDataset
from ..io import read_image, require_dir, require_file
from ..packed_masks import read_hannotation, read_packed_masks
from ..sample import DSample

__all__ = ["CocoLvisDataset"]

logger = logging.getLogger(__name__)


class CocoLvisDataset(ISDataset):
    """COCO+LVIS packed annotations.

    Args:
        dataset_path: folder holding ``train/`` and ``val/``.
        split: ``'train'`` or ``'val'``.
        stuff_prob: probability that a sample also offers its "stuff" masks as objects;
            otherwise their pixels are cleared.
        allow_list_name: optional JSON list (in the split folder) of image ids to keep.
        anno_file: annotation file name in the split folder.
        **kwargs: :class:`ISDataset` arguments.
    """

    name = "CocoLvis"

    def __init__(self, dataset_path: str | Path, split: str = "train", stuff_prob: float = 0.0,
                 allow_list_name: str | None = None, anno_file: str = "hannotation.pickle",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset_path = require_dir(dataset_path, self.name)
        self.split = split
        self._split_path = require_dir(self.dataset_path / split, self.name)
        self._images_path = require_dir(self._split_path / "images", self.name)
        self._masks_path = require_dir(self._split_path / "masks", self.name)
        self.stuff_prob = float(stuff_prob)
        self.dataset_samples = read_hannotation(
            require_file(self._split_path / anno_file, self.name))
        if allow_list_name is not None:
            allowed = set(json.loads(
                require_file(self._split_path / allow_list_name, self.name).read_text()))
            self.dataset_samples = [s for s in self.dataset_samples if s[0] in allowed]
        logger.debug("%s/%s: %d images", self.name, split, len(self.dataset_samples))

    def get_sample(self, index: int, rng: np.random.Generator | None = None) -> DSample:
        rng = rng if rng is not None else self.sample_rng(index)
        image_id, info = self.dataset_samples[index]
        image = read_image(self._images_path / f"{image_id}.jpg")
        layers, mapping = read_packed_masks(self._masks_path / f"{image_id}.pickle")

        objects: dict[int, dict[str, Any]] = {}
        for obj, node in deepcopy(info["hierarchy"]).items():
            node = node or {"children": [], "parent": None, "node_level": 0}
            node["mapping"] = mapping[obj]
            objects[obj] = node

        num_instances = int(info["num_instance_masks"])
        stuff = range(num_instances, len(mapping))
        if self.stuff_prob > 0 and rng.random() < self.stuff_prob:
            for obj in stuff:
                objects[obj] = {"mapping": mapping[obj], "parent": None, "children": []}
        else:
            for obj in stuff:
                layer, local_id = mapping[obj]
                plane = layers[:, :, layer]
                plane[plane == local_id] = 0
        return DSample(image, layers, objects=objects, sample_id=index, image_name=str(image_id))
