"""Berkeley (96 images, 100 objects): ``images/`` and ``masks/``, decoded like GrabCut."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .grabcut import GrabCutDataset

__all__ = ["BerkeleyDataset"]


class BerkeleyDataset(GrabCutDataset):
    """The Berkeley benchmark (``BERKELEY_PATH``); 128 in a mask is ignored as in GrabCut."""

    name = "Berkeley"

    def __init__(self, dataset_path: str | Path, images_dir_name: str = "images",
                 masks_dir_name: str = "masks", **kwargs: Any) -> None:
        super().__init__(dataset_path, images_dir_name=images_dir_name,
                         masks_dir_name=masks_dir_name, **kwargs)
