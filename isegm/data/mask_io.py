"""The one reader of user-supplied mask files (``ImagesDir:``, ``--prev-mask``, the demo's Ctrl+M).

Supported formats (decided from the pixel values, never from the file name):

* **binary**: one non-zero value, whatever it is (0/1, 0/255, 0/65535, ...) → one object;
* **trimap** (GrabCut style, 8-bit grey): values 0/128/255 → 255 object, 128 ignored;
* **label map**: non-zero values exactly 1..k (k >= 2), e.g. a mask saved by the demo → k objects;
* **palette PNG** (indexed colours): each palette index is an object id, 0 is background and
  255 (the VOC "void" border) is ignored, unless it is the only non-zero index.

A file is read as single-channel; an RGB(A) file whose R, G and B channels are equal is grey
(alpha is ignored). A **colour** mask (channels differ) is refused with one line: save it as grey
or palette PNG. Anything else (several grey levels that are not 1..k: a blurred, resized or
JPEG-saved mask) is a **soft mask**: refused where exact ground truth is needed (evaluation),
or, for interactive use, thresholded by the stated rule *object = value >= 50 % of the file's
largest value* with a warning, giving one object. A mask without any object pixel is reported
as empty (``DecodedMask.ids == []``); callers decide what that means.
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .base import DatasetError
from .io import DATASET_MAX_PIXELS, ImageRefused, check_image_header, read_bytes

__all__ = ["IGNORE_ID", "MASK_FORMATS", "DecodedMask", "decode_mask", "read_mask_file"]

logger = logging.getLogger(__name__)

IGNORE_ID = -1
PALETTE_VOID = 255
SOFT_THRESHOLD = 0.5  # of the largest value in the file
MASK_FORMATS = ("0/1 or 0/255 binary, 0/128/255 trimap (128 = ignore), label map 1..k, "
                "or palette PNG (255 = ignore)")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_PALETTE = 3  # IHDR colour type of an indexed PNG


@dataclass(frozen=True)
class DecodedMask:
    """A decoded mask file.

    Attributes:
        labels: HxW int32: 0 background, object ids > 0, ``IGNORE_ID`` ignored pixels.
        ids: object ids present (ascending); empty when the mask has no object pixel.
        kind: 'binary', 'trimap', 'label map', 'palette', 'soft' or 'empty'.
    """

    labels: np.ndarray
    ids: list[int]
    kind: str

    def objects_only(self) -> np.ndarray:
        """The labels with ignored pixels as background (for a mask to correct)."""
        return np.maximum(self.labels, 0)


def _is_palette_png(data: np.ndarray) -> bool:
    head = data[:26].tobytes()
    return len(head) == 26 and head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR" \
        and head[25] == _PNG_PALETTE


def _palette_indices(data: np.ndarray, name: str) -> np.ndarray:
    from PIL import Image  # a torchvision dependency; only palette files need it

    try:
        with Image.open(io.BytesIO(data.tobytes())) as img:
            return np.asarray(img, dtype=np.uint8).copy()
    except (OSError, ValueError, SyntaxError) as e:
        raise DatasetError(f"cannot decode mask {name}: {e}") from None


def _single_channel(raw: np.ndarray, name: str) -> np.ndarray:
    if raw.ndim == 2:
        return raw
    if raw.ndim != 3:
        raise DatasetError(f"mask {name}: unexpected array shape {raw.shape}")
    if raw.shape[2] < 3:
        return raw[:, :, 0]
    bgr = raw[:, :, :3]
    if np.array_equal(bgr[:, :, 0], bgr[:, :, 1]) and np.array_equal(bgr[:, :, 0], bgr[:, :, 2]):
        return bgr[:, :, 0]
    raise DatasetError(f"mask {name} is a colour image (its R, G, B channels differ); "
                       f"save it as a grey or palette PNG ({MASK_FORMATS})")


def _nonzero_values(grey: np.ndarray) -> np.ndarray:
    if grey.dtype in (np.uint8, np.uint16, np.bool_):
        counts = np.bincount(grey.ravel().astype(np.int64, copy=False))
        values = np.flatnonzero(counts)
    else:
        values = np.unique(grey)
    return values[values != 0]


def decode_mask(raw: np.ndarray, name: str, palette: bool = False,
                soft: str = "error") -> DecodedMask:
    """Interprets a decoded mask array by the module's rules.

    Args:
        raw: HxW or HxWxC array as read by OpenCV (BGR(A)), or palette indices.
        name: file name for messages.
        palette: ``raw`` holds palette indices.
        soft: 'error' (a soft mask raises) or 'threshold' (>= 50 % of the maximum, warned).

    Raises:
        DatasetError: a colour mask, or a soft mask with ``soft='error'``; one line naming it.
    """
    grey = raw if palette else _single_channel(np.asarray(raw), name)
    values = _nonzero_values(grey)
    labels = np.zeros(grey.shape, np.int32)
    if palette:
        ids = [int(v) for v in values if v != PALETTE_VOID]
        labels[:] = grey
        if ids:  # 255 is the void border around objects; alone, it is the object
            labels[grey == PALETTE_VOID] = IGNORE_ID
        elif values.size:
            ids = [PALETTE_VOID]
        return DecodedMask(labels, ids, "palette" if ids else "empty")
    if values.size == 0:
        return DecodedMask(labels, [], "empty")
    if values.size == 1:
        labels[grey != 0] = 1
        return DecodedMask(labels, [1], "binary")
    if grey.dtype == np.uint8 and values.tolist() == [128, 255]:
        labels[grey == 255] = 1
        labels[grey == 128] = IGNORE_ID
        return DecodedMask(labels, [1], "trimap")
    if np.issubdtype(values.dtype, np.integer) and int(values[-1]) == values.size:
        labels[:] = grey
        return DecodedMask(labels, [int(v) for v in values], "label map")
    top = float(values[-1])
    if soft != "threshold":
        raise DatasetError(
            f"mask {name} fits no supported format ({values.size} grey levels between "
            f"{values[0]:g} and {top:g}: a soft, resized or JPEG-saved mask?); "
            f"expected {MASK_FORMATS}")
    cut = SOFT_THRESHOLD * top
    labels[grey >= cut] = 1
    logger.warning("mask %s is soft (%d grey levels): object = value >= %g "
                   "(%d %% of its maximum %g)", name, values.size, cut,
                   round(SOFT_THRESHOLD * 100), top)
    return DecodedMask(labels, [1] if labels.any() else [], "soft")


def read_mask_file(path: str | Path, soft: str = "error") -> DecodedMask:
    """Reads and decodes a mask file (see the module docstring for the formats).

    Raises:
        DatasetError: missing, empty, undecodable, colour or (``soft='error'``) soft mask.
    """
    path = Path(path)
    data = read_bytes(path)
    try:
        check_image_header(data, str(path), DATASET_MAX_PIXELS)
    except ImageRefused as e:
        raise DatasetError(str(e)) from None
    if _is_palette_png(data):
        return decode_mask(_palette_indices(data, str(path)), str(path), palette=True)
    raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise DatasetError(f"cannot decode mask {path}")
    return decode_mask(raw, str(path), soft=soft)
