"""Small, vectorised helpers on label maps (H×W integer arrays where 0 is background).

Kept apart from the datasets so that every reader and the sample class share one definition
of "object ids with their areas" and one nearest-neighbour resize.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["labels_with_sizes", "resize_nearest", "low_fill_ratio_ids"]

# Above this id range ``np.bincount`` would allocate a huge histogram; fall back to ``np.unique``.
_BINCOUNT_MAX_ID = 1 << 16


def labels_with_sizes(label_map: np.ndarray, exclude: tuple[int, ...] = (0,)
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Return the ids present in ``label_map`` and their pixel counts, ``exclude`` left out.

    Args:
        label_map: integer array of any shape.
        exclude: ids to leave out (background by default).

    Returns:
        ``(ids, sizes)``: two int64 arrays, ids ascending.
    """
    flat = np.asarray(label_map).ravel()
    if flat.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lo, hi = int(flat.min()), int(flat.max())
    if lo >= 0 and hi < _BINCOUNT_MAX_ID:
        counts = np.bincount(flat.astype(np.int64, copy=False), minlength=hi + 1)
        ids = np.flatnonzero(counts)
        sizes = counts[ids]
    else:
        ids, sizes = np.unique(flat, return_counts=True)
    if exclude:
        keep = ~np.isin(ids, np.asarray(exclude, dtype=ids.dtype))
        ids, sizes = ids[keep], sizes[keep]
    return ids.astype(np.int64), sizes.astype(np.int64)


def resize_nearest(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of an H×W or H×W×C array of any dtype and channel count.

    Uses pixel-centre alignment (the same grid as a bilinear image resize), so resized masks
    stay aligned with resized images. Pure indexing: ids are never mixed, and it works beyond
    OpenCV's 512-channel limit.
    """
    src_h, src_w = mask.shape[:2]
    if (src_h, src_w) == (height, width):
        return mask.copy()
    rows = np.minimum(((np.arange(height) + 0.5) * (src_h / height)).astype(np.int64), src_h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * (src_w / width)).astype(np.int64), src_w - 1)
    return np.ascontiguousarray(mask[rows[:, None], cols[None, :]])


def low_fill_ratio_ids(label_map: np.ndarray, min_ratio: float) -> list[int]:
    """Ids (> 0) whose area divided by their bounding-box area is below ``min_ratio``.

    SBD contains scattered, mostly broken instance masks; RITM drops those whose mask fills less
    than 8 % of its bounding box when training.
    """
    ids, sizes = labels_with_sizes(label_map)
    positive = ids > 0
    ids, sizes = ids[positive], sizes[positive]
    if ids.size == 0 or min_ratio <= 0:
        return []
    positive_map = np.maximum(label_map, 0).astype(np.int64)
    slices = ndimage.find_objects(positive_map, max_label=int(ids.max()))
    out = []
    for obj_id, area in zip(ids.tolist(), sizes.tolist()):
        sl = slices[obj_id - 1]
        box_area = (sl[0].stop - sl[0].start) * (sl[1].stop - sl[1].start)
        if area / box_area < min_ratio:
            out.append(obj_id)
    return out
