"""Data: samples, click simulation, augmentations and dataset readers.

Importing :mod:`isegm.data.datasets` gives the readers and the evaluation registry. The
augmentations (:mod:`.transforms`, albumentations: about 1 s to import) load on first use, so
evaluation and the predictor, which never augment, start without them.
"""
from typing import Any

from .base import DatasetError, ISDataset
from .points_sampler import MultiPointSampler
from .sample import DSample

__all__ = ["DSample", "DatasetError", "ISDataset", "MultiPointSampler", "UniformRandomResize",
           "train_augmentator", "val_augmentator"]

_TRANSFORMS = ("UniformRandomResize", "train_augmentator", "val_augmentator")


def __getattr__(name: str) -> Any:
    if name in _TRANSFORMS:
        from . import transforms

        return getattr(transforms, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
