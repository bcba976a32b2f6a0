"""DAVIS (345 frames) and COCO_MVal (800 images): ``img/`` and ``gt/``, one object each.

A mask pixel belongs to the object when any of its colour channels is non-zero.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .folder_pairs import FolderPairsDataset

__all__ = ["DavisDataset", "decode_any_nonzero"]


def decode_any_nonzero(raw: np.ndarray) -> tuple[np.ndarray, list[int], list[int]]:
    """Max over the colour channels (alpha ignored), ``> 0`` → 1; no ignore region."""
    if raw.ndim == 3:
        raw = raw[:, :, :3].max(axis=2)
    return (raw > 0).astype(np.int32), [1], []


class DavisDataset(FolderPairsDataset):
    """DAVIS-layout benchmark; ``name`` tells DAVIS and COCO_MVal apart."""

    name = "DAVIS"

    def __init__(self, dataset_path: str | Path, images_dir_name: str = "img",
                 masks_dir_name: str = "gt", name: str = "DAVIS", **kwargs: Any) -> None:
        self.name = name
        super().__init__(dataset_path, images_dir_name, masks_dir_name, **kwargs)

    def decode_mask(self, raw: np.ndarray) -> tuple[np.ndarray, list[int], list[int]]:
        return decode_any_nonzero(raw)
