"""File reading for the dataset readers: every failure becomes a one-line ``DatasetError``.

OpenCV's ``imread`` returns ``None`` for a missing or corrupt file; turning that into an
exception that names the file lets an evaluator report the bad sample and carry on.
"""
from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .base import DatasetError
from .limits import DATASET_MAX_PIXELS, DEFAULT_MAX_PIXELS

__all__ = ["DATASET_MAX_PIXELS", "DEFAULT_MAX_PIXELS", "IMAGE_EXTENSIONS", "IMAGE_FORMATS",
           "ImageRefused", "TooManyPixels", "UnsupportedImageFormat", "check_image_header",
           "decode_image", "read_bytes", "read_image", "read_mask", "require_dir", "list_images"]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

# The image formats that are decoded at all (PIL's names; PIL's JPEG reader also opens MPO,
# a JPEG with extra frames, as some cameras write them). Each is sized from its header before
# decoding; anything else (e.g. Radiance .hdr or OpenEXR, which OpenCV would decode in full, as
# float32, before anyone could check their size) is refused.
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP")
FORMAT_NAMES = "PNG, JPEG, BMP, TIFF or WebP"



class ImageRefused(ValueError):
    """Image bytes refused before decoding (base of the two reasons below)."""


class TooManyPixels(ImageRefused):
    """The header announces more pixels than allowed."""


class UnsupportedImageFormat(ImageRefused):
    """Not one of :data:`IMAGE_FORMATS` (or not an image at all)."""


def check_image_header(data: bytes | np.ndarray, name: str,
                       max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) of encoded image bytes, read from the header only.

    The one size check of the project (command line, demo, server, dataset readers): a small
    file can hold a huge image (a 875 KB all-zero PNG of 30000x30000 decodes to 2.7 GB), so the
    size is checked before anything is decoded, and only formats whose header PIL can read
    are let through.

    Raises:
        UnsupportedImageFormat: not a PNG, JPEG, BMP, TIFF or WebP image.
        TooManyPixels: more than ``max_pixels`` pixels (None: no bound).
    """
    raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    # every plugin registered: open(formats=...) raises a KeyError for a format whose plugin
    # is not loaded yet, whatever the file is (PIL loads the common ones first, others lazily)
    Image.init()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw), formats=IMAGE_FORMATS) as probe:
                w, h = probe.size
    except Image.DecompressionBombError:
        # PIL refuses to size headers above twice its own bound
        raise TooManyPixels(f"{name}: the image has more than {2 * Image.MAX_IMAGE_PIXELS} "
                            f"pixels (from its header), the limit is {max_pixels}") from None
    except Exception:  # noqa: BLE001 - PIL raises several types for unknown or corrupt data
        raise UnsupportedImageFormat(
            f"cannot read {name}: not a {FORMAT_NAMES} image (unknown format or corrupt header)"
        ) from None
    if max_pixels is not None and w * h > max_pixels:
        raise TooManyPixels(
            f"{name}: the image has {w}x{h} = {w * h} pixels, the limit is {max_pixels}"
        )
    return int(w), int(h)


def read_bytes(path: Path) -> np.ndarray:
    """The bytes of a file as a uint8 array; ``DatasetError`` if missing, unreadable or empty."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from None
    if data.size == 0:
        raise DatasetError(f"cannot read {path}: empty file")
    return data


def decode_image(data: np.ndarray, name: str,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray | None:
    """Encoded image bytes → H×W×3 uint8 **RGB** (None if corrupt), after
    :func:`check_image_header` (so it raises :class:`ImageRefused` for other formats and too
    many pixels).

    Grey and alpha images become RGB (EXIF orientation applied). 16-bit and float images are
    scaled by the bit depth they actually use, not by the container's: a 12-bit image in a
    16-bit file is divided by 4095, so it is not nearly black (OpenCV's own conversion keeps only
    the top 8 of 16 bits); a note is logged whenever such scaling happens.
    """
    check_image_header(data, name, max_pixels)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if image is None:
        return None
    h, w = image.shape[:2]
    if max_pixels is not None and w * h > max_pixels:  # a header that lied
        raise TooManyPixels(
            f"{name}: the image has {w}x{h} = {w * h} pixels, the limit is {max_pixels}"
        )
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


def read_image(path: str | Path, max_pixels: int | None = DATASET_MAX_PIXELS) -> np.ndarray:
    """Read an image file as H×W×3 uint8 **RGB** (see :func:`decode_image`).

    Raises:
        DatasetError: the file is missing, empty, not a decodable image or too large.
    """
    path = Path(path)
    try:
        image = decode_image(read_bytes(path), str(path), max_pixels)
    except ImageRefused as e:
        raise DatasetError(str(e)) from None
    if image is None:
        raise DatasetError(f"cannot decode image {path}")
    return image


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask file unchanged: H×W, or H×W×C in OpenCV's BGR(A) channel order.

    Raises:
        DatasetError: the file is missing, empty or not a decodable image.
    """
    path = Path(path)
    data = read_bytes(path)
    try:
        check_image_header(data, str(path), DATASET_MAX_PIXELS)
    except ImageRefused as e:
        raise DatasetError(str(e)) from None
    mask = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
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
