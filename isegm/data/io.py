"""File reading for the dataset readers: every failure becomes a one-line ``DatasetError``.

OpenCV's ``imread`` returns ``None`` for a missing or corrupt file; turning that into an
exception that names the file lets an evaluator report the bad sample and carry on.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from .base import DatasetError

__all__ = ["IMAGE_EXTENSIONS", "read_image", "read_mask", "require_dir", "list_images"]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def _read_bytes(path: Path) -> np.ndarray:
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from None
    if data.size == 0:
        raise DatasetError(f"cannot read {path}: empty file")
    return data


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as H×W×3 uint8 **RGB**.

    Raises:
        DatasetError: the file is missing, empty or not a decodable image.
    """
    path = Path(path)
    image = cv2.imdecode(_read_bytes(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"cannot decode image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask file unchanged: H×W, or H×W×C in OpenCV's BGR(A) channel order.

    Raises:
        DatasetError: the file is missing, empty or not a decodable image.
    """
    path = Path(path)
    mask = cv2.imdecode(_read_bytes(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise DatasetError(f"cannot decode mask {path}")
    return mask


def require_dir(path: str | Path | None, dataset: str) -> Path:
    """Return ``path`` if it is a non-empty folder, else raise ``DatasetError`` naming it."""
    if path is None or str(path).strip() == "":
        raise DatasetError(f"{dataset}: no dataset folder given (check config.yml)")
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DatasetError(f"{dataset}: folder {path} does not exist")
    if not any(path.iterdir()):
        raise DatasetError(f"{dataset}: folder {path} is empty")
    return path


def require_file(path: str | Path, dataset: str) -> Path:
    """Return ``path`` if it is a file, else raise ``DatasetError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{dataset}: file {path} does not exist")
    return path


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name (hidden files skipped)."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_EXTENSIONS)
