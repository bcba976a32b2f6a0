"""ZoomIn: run the network on a crop around the current object (SPEC Part II §4, step 2).

Small objects get more network pixels: the crop is the bounding box of the previous prediction
(> ``prob_thresh``) and of the positive clicks, expanded by ``expansion_ratio`` and resized to
``target_size``; the output is resized back and pasted into a zero map of the full image. The
crop is kept across clicks unless a positive click leaves it or the new box overlaps it too
little, so the image the network sees (and its cached embedding) changes rarely.
"""

from __future__ import annotations

import logging
from typing import Any, Union

import torch
import torch.nn.functional as F

from isegm.inference.clicker import Click
from isegm.inference.transforms.base import BaseTransform, ClicksLists

__all__ = [
    "Box",
    "ZoomIn",
    "bbox_iou",
    "crop_and_resize",
    "expand_bbox",
    "get_object_roi",
    "map_clicks_to_crop",
    "paste_into",
]

logger = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # (rmin, rmax, cmin, cmax), inclusive pixel bounds
TargetSize = Union[int, tuple[int, int]]


def expand_bbox(box: Box, ratio: float, min_size: float = 0.0) -> Box:
    """Scales a box around its centre by ``ratio``, each side at least ``min_size`` pixels."""
    rmin, rmax, cmin, cmax = box
    rc, cc = 0.5 * (rmin + rmax), 0.5 * (cmin + cmax)
    h = max(ratio * (rmax - rmin + 1), min_size)
    w = max(ratio * (cmax - cmin + 1), min_size)
    # Python round (half to even), as the reference, so crops match it exactly.
    return (int(round(rc - 0.5 * h)), int(round(rc + 0.5 * h)),
            int(round(cc - 0.5 * w)), int(round(cc + 0.5 * w)))


def _segment_iou(a0: int, a1: int, b0: int, b1: int) -> float:
    inter = max(0, min(a1, b1) - max(a0, b0) + 1)
    union = max(1e-6, max(a1, b1) - min(a0, b0) + 1)
    return inter / union


def bbox_iou(a: Box, b: Box) -> float:
    """Product of the row and column overlaps of two inclusive boxes (the reference's IoU)."""
    return _segment_iou(a[0], a[1], b[0], b[1]) * _segment_iou(a[2], a[3], b[2], b[3])


def get_object_roi(
    pred_mask: torch.Tensor, clicks: list[Click], expansion_ratio: float, min_crop_size: float
) -> Box:
    """Expanded, clamped bounding box of a mask and of the positive clicks.

    Args:
        pred_mask: [H, W] bool, non-empty.
        clicks: clicks, coords (y, x); positive ones are added to the box (truncated to ints).
        expansion_ratio: box scale factor.
        min_crop_size: minimum side in pixels before clamping.

    Returns:
        (rmin, rmax, cmin, cmax), inclusive, inside the image.
    """
    h, w = pred_mask.shape
    rows = torch.nonzero(pred_mask.any(dim=1)).flatten()
    cols = torch.nonzero(pred_mask.any(dim=0)).flatten()
    rmin, rmax, cmin, cmax = torch.stack([rows[0], rows[-1], cols[0], cols[-1]]).tolist()
    for c in clicks:
        if c.is_positive:
            y = min(max(int(c.coords[0]), 0), h - 1)
            x = min(max(int(c.coords[1]), 0), w - 1)
            rmin, rmax, cmin, cmax = min(rmin, y), max(rmax, y), min(cmin, x), max(cmax, x)
    r0, r1, c0, c1 = expand_bbox((rmin, rmax, cmin, cmax), expansion_ratio, min_crop_size)
    return max(0, r0), min(h - 1, r1), max(0, c0), min(w - 1, c1)


def _crop_size(box: Box, target_size: TargetSize) -> tuple[int, int]:
    h, w = box[1] - box[0] + 1, box[3] - box[2] + 1
    if isinstance(target_size, (tuple, list)):
        return int(target_size[0]), int(target_size[1])
    scale = target_size / max(h, w)
    return int(round(h * scale)), int(round(w * scale))


def crop_and_resize(image_nd: torch.Tensor, box: Box, target_size: TargetSize) -> torch.Tensor:
    """Crops [B, C, H, W] to ``box`` and resizes it bilinearly (align_corners=True).

    Args:
        image_nd: [B, C, H, W].
        box: (rmin, rmax, cmin, cmax), inclusive.
        target_size: (h, w) exact output size (aspect ratio not kept), or an int for the
            longest side (aspect ratio kept, other side rounded).

    Returns:
        [B, C, h, w].
    """
    rmin, rmax, cmin, cmax = box
    crop = image_nd[:, :, rmin : rmax + 1, cmin : cmax + 1]
    size = _crop_size(box, target_size)
    if tuple(crop.shape[2:]) == size:
        return crop
    return F.interpolate(crop, size=size, mode="bilinear", align_corners=True)


def paste_into(prob_map: torch.Tensor, box: Box, full_size: tuple[int, int]) -> torch.Tensor:
    """Resizes a [B, 1, h, w] crop output to the box and pastes it into zeros of ``full_size``."""
    rmin, rmax, cmin, cmax = box
    size = (rmax - rmin + 1, cmax - cmin + 1)
    if tuple(prob_map.shape[2:]) != size:
        prob_map = F.interpolate(prob_map, size=size, mode="bilinear", align_corners=True)
    if size == tuple(full_size):
        return prob_map
    out = prob_map.new_zeros((prob_map.shape[0], prob_map.shape[1], *full_size))
    out[:, :, rmin : rmax + 1, cmin : cmax + 1] = prob_map
    return out


def map_clicks_to_crop(
    clicks: list[Click], box: Box, crop_hw: tuple[int, int], drop_outside: bool = False
) -> list[Click]:
    """Maps (y, x) clicks into crop coordinates: ``y' = h * (y - rmin) / (rmax - rmin + 1)``.

    Args:
        clicks: clicks in full-image pixels.
        box: the crop (rmin, rmax, cmin, cmax), inclusive.
        crop_hw: (h, w) of the resized crop.
        drop_outside: drop clicks mapped outside [0, h) x [0, w) (MST's behaviour); by default
            they are kept, as RITM/SimpleClick do, so the network still sees them.

    Returns:
        Clicks with float crop coordinates (indices unchanged).
    """
    rmin, rmax, cmin, cmax = box
    h, w = crop_hw
    out = []
    for c in clicks:
        y = h * (c.coords[0] - rmin) / (rmax - rmin + 1)
        x = w * (c.coords[1] - cmin) / (cmax - cmin + 1)
        if drop_outside and not (0 <= y < h and 0 <= x < w):
            continue
        out.append(c.copy(coords=(y, x)))
    return out


def _positive_clicks_inside(box: Box, clicks: list[Click]) -> bool:
    # Same bounds as the reference (a click on the last row/column counts as outside).
    rmin, rmax, cmin, cmax = box
    return all(
        rmin <= c.coords[0] < rmax and cmin <= c.coords[1] < cmax
        for c in clicks
        if c.is_positive
    )


class ZoomIn(BaseTransform):
    """Crops the input around the object predicted so far.

    Args:
        target_size: crop output size: (h, w), or an int for the longest side.
        skip_clicks: act only once there are more than this many clicks; -1 (evaluation
            default) always acts, using the whole image when there is no prediction yet.
        expansion_ratio: scale of the object box.
        min_crop_size: minimum crop side in pixels (MST 20, RITM/SimpleClick 200).
        recompute_thresh_iou: keep the current crop while bbox-IoU(new, current) >= this.
        prob_thresh: probability threshold of the previous prediction.
        drop_outside_clicks: MST drops clicks that fall outside the crop; off by default.
    """

    def __init__(
        self,
        target_size: TargetSize = 448,
        skip_clicks: int = -1,
        expansion_ratio: float = 1.4,
        min_crop_size: int = 20,
        recompute_thresh_iou: float = 0.5,
        prob_thresh: float = 0.5,
        drop_outside_clicks: bool = False,
    ) -> None:
        super().__init__()
        self.target_size = tuple(target_size) if isinstance(target_size, list) else target_size
        self.skip_clicks = skip_clicks
        self.expansion_ratio = expansion_ratio
        self.min_crop_size = min_crop_size
        self.recompute_thresh_iou = recompute_thresh_iou
        self.prob_thresh = prob_thresh
        self.drop_outside_clicks = drop_outside_clicks
        self.reset()

    # -- state ---------------------------------------------------------------------------
    def reset(self) -> None:
        self._input_size: tuple[int, int] | None = None
        self._prev_probs: torch.Tensor | None = None  # [1, 1, H, W] last full-size probs
        self._object_roi: Box | None = None  # stored crop
        self._active_roi: Box | None = None  # crop used by the last transform (None: none)
        self._has_run = False
        self.image_changed = False

    def get_state(self) -> Any:
        probs = None if self._prev_probs is None else self._prev_probs.clone()
        return (self._input_size, probs, self._object_roi, self._active_roi, self._has_run,
                self.image_changed)

    def set_state(self, state: Any) -> None:
        (self._input_size, probs, self._object_roi, self._active_roi, self._has_run,
         self.image_changed) = state
        self._prev_probs = None if probs is None else probs.clone()

    @property
    def object_roi(self) -> Box | None:
        """The crop used by the last call, (rmin, rmax, cmin, cmax) inclusive, or None."""
        return self._active_roi

    # -- forward / inverse -----------------------------------------------------------------
    def _use(self, roi: Box | None) -> None:
        self.image_changed = (not self._has_run) or roi != self._active_roi
        self._active_roi = roi
        self._has_run = True

    def transform(
        self, image_nd: torch.Tensor, clicks_lists: ClicksLists
    ) -> tuple[torch.Tensor, ClicksLists]:
        if image_nd.shape[0] != 1 or len(clicks_lists) != 1:
            raise ValueError("ZoomIn works on a single image with one click list")
        clicks = clicks_lists[0]
        h, w = image_nd.shape[2:]
        self._input_size = (int(h), int(w))

        if len(clicks) <= self.skip_clicks:
            self._use(None)
            return image_nd, clicks_lists

        roi = None
        if self._prev_probs is not None:
            mask = self._prev_probs[0, 0] > self.prob_thresh
            if bool(mask.any()):
                roi = get_object_roi(mask, clicks, self.expansion_ratio, self.min_crop_size)
        if roi is None:
            if self.skip_clicks >= 0:
                self._use(None)
                return image_nd, clicks_lists
            roi = (0, int(h) - 1, 0, int(w) - 1)

        if (
            self._object_roi is None
            or not _positive_clicks_inside(self._object_roi, clicks)
            or bbox_iou(roi, self._object_roi) < self.recompute_thresh_iou
        ):
            self._object_roi = roi
        self._use(self._object_roi)

        crop = crop_and_resize(image_nd, self._object_roi, self.target_size)
        tclicks = map_clicks_to_crop(clicks, self._object_roi, tuple(crop.shape[2:]),
                                     self.drop_outside_clicks)
        return crop, [tclicks]

    def inv_transform(self, prob_map: torch.Tensor) -> torch.Tensor:
        if self._active_roi is not None:
            assert self._input_size is not None
            prob_map = paste_into(prob_map, self._active_roi, self._input_size)
        self._prev_probs = prob_map.detach()
        return prob_map

    def check_possible_recalculation(self) -> bool:
        """True if a prediction made without a crop found a small object worth zooming on.

        Only with ``skip_clicks <= 0`` and no crop in use (never with the default -1).
        """
        if self._prev_probs is None or self._active_roi is not None or self.skip_clicks > 0:
            return False
        mask = self._prev_probs[0, 0] > self.prob_thresh
        if not bool(mask.any()):
            return False
        roi = get_object_roi(mask, [], self.expansion_ratio, self.min_crop_size)
        h, w = mask.shape
        return bbox_iou(roi, (0, h - 1, 0, w - 1)) < 0.5
