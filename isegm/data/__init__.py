"""Data: samples, click simulation, augmentations and dataset readers.

Importing :mod:`isegm.data.datasets` gives the readers and the evaluation registry.
"""
from .base import DatasetError, ISDataset
from .points_sampler import MultiPointSampler
from .sample import DSample
from .transforms import UniformRandomResize, train_augmentator, val_augmentator

__all__ = ["DSample", "DatasetError", "ISDataset", "MultiPointSampler", "UniformRandomResize",
           "train_augmentator", "val_augmentator"]
