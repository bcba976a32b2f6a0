"""Semantic Boundaries Dataset (SBD): ``img/<id>.jpg``, ``inst/<id>.mat``, ``<split>.txt``.

* :class:`SBDEvaluationDataset` — one sample per (image, instance): the ``val`` split is the SBD
  test benchmark (2857 images, 6671 instances). No instance is filtered (as in RITM); the
  reference ``main``/``mst-448`` "largest component" pass that wipes other instances is not
  reproduced (SPEC Part II §8.9). The instance list is cached outside the dataset folder.
* :class:`SBDDataset` — training: one sample per image with all its instances, minus the
  "buggy" ones whose mask fills < 8 % of its bounding box.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from scipy.io import loadmat

from ..base import DatasetError, ISDataset
from ..cache import TransientList, cached_list, file_stamp
from ..io import read_image, require_dir, require_file
from ..masks import labels_with_sizes, low_fill_ratio_ids
from ..sample import DSample

__all__ = ["SBDDataset", "SBDEvaluationDataset", "read_sbd_instances"]

logger = logging.getLogger(__name__)


def read_sbd_instances(path: str | Path) -> np.ndarray:
    """``GTinst.Segmentation`` of an SBD ``.mat`` file: int32 H×W, 0 background, 1..N instances.

    Raises:
        DatasetError: the file is missing or not an SBD instance file.
    """
    path = Path(path)
    try:
        gt_inst = loadmat(str(path))["GTinst"]
        names = gt_inst.dtype.names or ()
        seg = gt_inst["Segmentation"][0, 0] if "Segmentation" in names else gt_inst[0][0][0]
        seg = np.asarray(seg)
    except FileNotFoundError:
        raise DatasetError(f"cannot read {path}: no such file") from None
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        raise DatasetError(f"cannot decode SBD instances {path}: {type(e).__name__}: {e}") from None
    if seg.ndim != 2:
        raise DatasetError(f"cannot decode SBD instances {path}: segmentation is not 2-D")
    return seg.astype(np.int32)


class _SBDBase(ISDataset):
    name = "SBD"

    def __init__(self, dataset_path: str | Path, split: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if split not in ("train", "val"):
            raise ValueError(f"unknown SBD split {split!r}")
        self.dataset_path = require_dir(dataset_path, self.name)
        self.split = split
        self._images_path = require_dir(self.dataset_path / "img", self.name)
        self._insts_path = require_dir(self.dataset_path / "inst", self.name)
        self._list_path = require_file(self.dataset_path / f"{split}.txt", self.name)
        self._image_ids = [x.strip() for x in self._list_path.read_text().splitlines()
                           if x.strip()]
        if not self._image_ids:
            raise DatasetError(f"{self.name}: {self._list_path} lists no images")


class SBDEvaluationDataset(_SBDBase):
    """SBD evaluation: every instance of every listed image is one single-object sample."""

    def __init__(self, dataset_path: str | Path, split: str = "val", **kwargs: Any) -> None:
        super().__init__(dataset_path, split, **kwargs)
        if split == "train":
            self.name = "SBD_Train"
        listing = cached_list("sbd", [file_stamp(self._list_path), split], self._scan_instances)
        self.dataset_samples = [(image_id, int(inst)) for image_id, inst in listing]

    def _scan_instances(self) -> list[list]:
        out: list[list] = []
        failed = 0
        for image_id in self._image_ids:
            try:
                ids, _ = labels_with_sizes(read_sbd_instances(self._insts_path / f"{image_id}.mat"))
            except DatasetError as e:
                logger.warning("%s", e)
                out.append([image_id, -1])
                failed += 1
                continue
            out.extend([image_id, int(i)] for i in ids if i > 0)
        return TransientList(out) if failed else out

    def get_sample(self, index: int, rng: np.random.Generator | None = None) -> DSample:
        image_id, inst = self.dataset_samples[index]
        inst_path = self._insts_path / f"{image_id}.mat"
        instances = read_sbd_instances(inst_path)
        if inst < 0:
            raise DatasetError(f"{self.name}: no instances could be listed from {inst_path}")
        image = read_image(self._images_path / f"{image_id}.jpg")
        return DSample(image, (instances == inst).astype(np.int32), objects_ids=[1],
                       sample_id=index, image_name=f"{image_id}#{inst}")


class SBDDataset(_SBDBase):
    """SBD training set: one sample per image, instances as objects.

    Args:
        dataset_path: the ``SBD/dataset`` folder.
        split: ``'train'`` or ``'val'``.
        buggy_mask_thresh: drop instances whose area / bounding-box area is below this.
    """

    def __init__(self, dataset_path: str | Path, split: str = "train",
                 buggy_mask_thresh: float = 0.08, **kwargs: Any) -> None:
        super().__init__(dataset_path, split, **kwargs)
        self.buggy_mask_thresh = float(buggy_mask_thresh)
        self.dataset_samples = list(self._image_ids)

    def get_sample(self, index: int, rng: np.random.Generator | None = None) -> DSample:
        image_id = self.dataset_samples[index]
        instances = read_sbd_instances(self._insts_path / f"{image_id}.mat")
        image = read_image(self._images_path / f"{image_id}.jpg")
        buggy = low_fill_ratio_ids(instances, self.buggy_mask_thresh)
        if buggy:
            instances[np.isin(instances, buggy)] = 0
        ids, _ = labels_with_sizes(instances)
        return DSample(image, instances, objects_ids=[int(i) for i in ids if i > 0],
                       sample_id=index, image_name=image_id)
