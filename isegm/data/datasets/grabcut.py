"""GrabCut (50 images, one object each): ``data_GT/`` images, ``boundary_GT/`` trimap masks.

Mask values: 255 object, 128 the uncertain band around its border (ignored), 0 background.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .folder_pairs import FolderPairsDataset

__all__ = ["GrabCutDataset", "decode_trimap"]

IGNORE_ID = -1


def decode_trimap(raw: np.ndarray) -> tuple[np.ndarray, list[int], list[int]]:
    """First channel of a trimap: ``== 128`` → -1 (ignore), ``> 128`` → 1, anything else → 0."""
    channel = raw[:, :, 0] if raw.ndim == 3 else raw
    label_map = np.zeros(channel.shape, np.int32)
    label_map[channel > 128] = 1
    label_map[channel == 128] = IGNORE_ID
    return label_map, [1], [IGNORE_ID]


class GrabCutDataset(FolderPairsDataset):
    """The GrabCut benchmark (``GRABCUT_PATH``)."""

    name = "GrabCut"

    def __init__(self, dataset_path: str | Path, images_dir_name: str = "data_GT",
                 masks_dir_name: str = "boundary_GT", **kwargs: Any) -> None:
        super().__init__(dataset_path, images_dir_name, masks_dir_name, **kwargs)

    def decode_mask(self, raw: np.ndarray) -> tuple[np.ndarray, list[int], list[int]]:
        return decode_trimap(raw)
