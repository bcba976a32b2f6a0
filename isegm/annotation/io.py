"""Reading the image and mask files a user gives an annotation tool, and writing masks.

Every problem is an :class:`InputError` naming the file (one line for the user).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from isegm.annotation.errors import InputError
from isegm.data.base import DatasetError
from isegm.data.io import DEFAULT_MAX_PIXELS, ImageRefused, decode_image
from isegm.data.mask_io import read_mask_file

__all__ = ["read_image", "read_mask", "write_png"]


def read_image(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Reads an image file as HxWx3 uint8 RGB (grey and alpha images are converted; 16-bit
    images are scaled by the bits they use, see :func:`isegm.data.io.decode_image`).

    Raises:
        InputError: the file is missing, not a PNG/JPEG/BMP/TIFF/WebP image, or has more
            than ``max_pixels`` pixels (checked from its header, before decoding).
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a directory, not an image file")
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    try:
        image = decode_image(data, str(path), max_pixels) if data.size else None
    except ImageRefused as e:
        raise InputError(str(e)) from None
    if image is None:
        raise InputError(f"cannot read {path} as an image")
    return image


def read_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Reads a mask or label-map file as an HxW int32 array of object ids (0 background).

    The project's one mask reader (:mod:`isegm.data.mask_io`): 0/1, 0/255, trimap, label map
    1..k or palette PNG; a soft (blurred, JPEG-saved) mask is thresholded at 50 % of its
    maximum with a warning and gives one object; ignored pixels (trimap 128, palette 255) are
    background here.

    Args:
        path: PNG/BMP/... file; 8 or 16 bits.
        size: expected (H, W), if any.

    Raises:
        InputError: the file is missing, unreadable, a colour mask or of another size.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a mask file")
    if not path.is_file():
        raise InputError(f"mask not found: {path}")
    try:
        mask = read_mask_file(path, soft="threshold").objects_only()
    except DatasetError as e:
        raise InputError(str(e)) from None
    if size is not None and tuple(mask.shape) != tuple(size):
        raise InputError(
            f"mask {path} is {mask.shape[1]}x{mask.shape[0]} pixels, "
            f"the image is {size[1]}x{size[0]}"
        )
    return mask


def write_png(path: str | Path, array: np.ndarray) -> Path:
    """Writes a 2-D uint8/uint16 array as PNG, creating no directories.

    Raises:
        InputError: the path does not end in .png or cannot be written.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"{path}: masks are written as PNG, use a .png file name")
    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise InputError(f"{path}: cannot encode a {array.dtype} array as PNG")
    try:
        path.write_bytes(buf.tobytes())
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from None
    return path

