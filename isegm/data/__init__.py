"""Data: samples, click simulation, augmentations and dataset readers.

Importing :mod:`isegm.data.datasets` gives the readers and the evaluation registry. Every name
below loads on first use (PEP 562): the augmentations (:mod:`.transforms`, albumentations:
about 1 s to import) so that evaluation and the predictor, which never augment, start without
them; the others (torch) so that a command line can check dataset names with the torch-free
:mod:`.eval_registry` before any heavy import.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["DSample", "DatasetError", "ISDataset", "MultiPointSampler", "UniformRandomResize",
           "train_augmentator", "val_augmentator"]

_WHERE = {"DatasetError": "base", "ISDataset": "base", "MultiPointSampler": "points_sampler",
          "DSample": "sample", "UniformRandomResize": "transforms",
          "train_augmentator": "transforms", "val_augmentator": "transforms"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
