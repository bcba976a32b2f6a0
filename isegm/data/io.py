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

__all__ = ["IMAGE_EXTENSIONS", "decode_image", "read_bytes", "read_image", "read_mask",
           "require_dir", "list_images"]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def read_bytes(path: Path) -> np.ndarray:
    """The bytes of a file as a uint8 array; ``DatasetError`` if missing, unreadable or empty."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from None
    if data.size == 0:
        raise DatasetError(f"cannot read {path}: empty file")
    return data


def decode_image(data: np.ndarray, name: str) -> np.ndarray | None:
    """Encoded image bytes → H×W×3 uint8 **RGB** (None if not an image).

    Grey and alpha images become RGB (EXIF orientation applied). 16-bit and float images are
    scaled by the bit depth they actually use, not by the container's: a 12-bit image in a
    16-bit file is divided by 4095, so it is not nearly black (OpenCV's own conversion keeps only
    the top 8 of 16 bits); a note is logged whenever such scaling happens.
    """
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if image is None:
        return None
    if image.dtype != np.uint8:
        top = float(image.max()) if image.size else 0.0
        if np.issubdtype(image.dtype, np.integer):
            bits = max(8, int(top).bit_length())
            scale = 255.0 / (2 ** bits - 1)
            how = f"uses {bits} of its {8 * image.dtype.itemsize} bits"
        else:
            scale = 255.0 if top <= 1.0 else 255.0 / top
            how = "is floating point"
        logger.info("image %s %s: scaled to 8 bits by x%.6g", name, how, scale)
        image = np.clip(np.rint(image.astype(np.float32) * scale), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as H×W×3 uint8 **RGB** (see :func:`decode_image`).

    Raises:
        DatasetError: the file is missing, empty or not a decodable image.
    """
    path = Path(path)
    image = decode_image(read_bytes(path), str(path))
    if image is None:
        raise DatasetError(f"cannot decode image {path}")
    return image


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask file unchanged: H×W, or H×W×C in OpenCV's BGR(A) channel order.

    Raises:
        DatasetError: the file is missing, empty or not a decodable image.
    """
    path = Path(path)
    mask = cv2.imdecode(read_bytes(path), cv2.IMREAD_UNCHANGED)
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
