"""Multi-scale LoveDA (``IS_LoveDA_PATH``), one sample per instance.

Layout under ``<path>/<split>/``: ``images/<id>.jpg``, ``masks/<id>.pickle`` (packed layers,
see :mod:`isegm.data.packed_masks`), ``hannotation.pickle`` and ``lovedams.npy``. The latter maps
each scale (``small``/``medium``/``large``/``huge``) to ``{str(k): [object indices]}`` where ``k``
indexes the image ids in sorted order. All three are pickles, read with the restricted
unpickler of :mod:`isegm.utils.safe_pickle` (containers and numpy arrays only): a crafted file
cannot run code.

Each scale name selects *that* scale: the reference ``get_dataset`` swaps MEDIUM and LARGE
(SPEC Part II §1.3); this reader does not.
"""
from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from isegm.utils.safe_pickle import DataPickleError, load_npy

from ..base import DatasetError, ISDataset
from ..io import read_image, require_dir, require_file
from ..packed_masks import read_hannotation, read_packed_masks
from ..sample import DSample

__all__ = ["LoveDADataset", "LOVEDA_SCALES"]

logger = logging.getLogger(__name__)

LOVEDA_SCALES = ("small", "medium", "large", "huge")


class LoveDADataset(ISDataset):
    """LoveDA multi-scale instances.

    Args:
        dataset_path: the ``LoveDAMS`` folder (holding ``<split>/``).
        split: sub-folder, ``'val'`` for the benchmark.
        scale: ``'small'``, ``'medium'``, ``'large'``, ``'huge'`` or ``'all'``.
    """

    def __init__(self, dataset_path: str | Path, split: str = "val", scale: str = "all",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        scale = scale.lower()
        if scale != "all" and scale not in LOVEDA_SCALES:
            raise ValueError(f"unknown LoveDA scale {scale!r}; use one of {LOVEDA_SCALES} or 'all'")
        self.scale = scale
        self.name = "LoveDA" if scale == "all" else f"LoveDA{scale.upper()}"
        self.dataset_path = require_dir(dataset_path, self.name)
        self._split_path = require_dir(self.dataset_path / split, self.name)
        self._images_path = require_dir(self._split_path / "images", self.name)
        self._masks_path = require_dir(self._split_path / "masks", self.name)
        images = read_hannotation(require_file(self._split_path / "hannotation.pickle", self.name))

        if scale == "all":
            self.dataset_samples = [(image_id, obj) for image_id, info in images
                                    for obj in range(int(info["num_instance_masks"]))]
        else:
            meta_path = require_file(self._split_path / "lovedams.npy", self.name)
            try:
                meta = load_npy(meta_path).item()[scale]
            except DataPickleError as e:
                raise DatasetError(f"{self.name}: refusing {meta_path}: it {e}") from None
            except (OSError, ValueError, KeyError, AttributeError, EOFError,
                    pickle.UnpicklingError) as e:
                raise DatasetError(f"{self.name}: cannot read scale {scale!r} from {meta_path}: "
                                   f"{type(e).__name__}") from None
            samples = []
            for key in sorted(meta, key=int):
                k = int(key)
                if not 0 <= k < len(images):
                    raise DatasetError(f"{self.name}: {meta_path} refers to image #{k}, but "
                                       f"hannotation.pickle lists {len(images)} images")
                samples.extend((images[k][0], int(obj)) for obj in meta[key])
            self.dataset_samples = samples
        if not self.dataset_samples:
            raise DatasetError(f"{self.name}: no instances listed in {self._split_path}")
        self._cached: tuple[str, np.ndarray, np.ndarray, list] | None = None

    def _load(self, image_id: str) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
        """Image and packed layers of one image; the last one is kept (samples come grouped)."""
        if self._cached is None or self._cached[0] != image_id:
            image = read_image(self._images_path / f"{image_id}.jpg")
            layers, mapping = read_packed_masks(self._masks_path / f"{image_id}.pickle")
            self._cached = (image_id, image, layers, mapping)
        return self._cached[1], self._cached[2], self._cached[3]

    def get_sample(self, index: int, rng: np.random.Generator | None = None) -> DSample:
        image_id, obj = self.dataset_samples[index]
        image, layers, mapping = self._load(image_id)
        if not 0 <= obj < len(mapping):
            raise DatasetError(f"{self.name}: object {obj} not in "
                               f"{self._masks_path / (image_id + '.pickle')}")
        layer, local_id = mapping[obj]
        mask = (layers[:, :, layer] == local_id).astype(np.int32)
        return DSample(image, mask, objects_ids=[1], sample_id=index,
                       image_name=f"{image_id}#{obj}")
