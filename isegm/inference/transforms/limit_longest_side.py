"""Downscale large images so their longest side fits the network (demo use)."""

from __future__ import annotations

import logging
from typing import Any

import torch

from isegm.inference.transforms.base import BaseTransform, ClicksLists
from isegm.inference.transforms.zoom_in import Box, crop_and_resize, map_clicks_to_crop, paste_into

__all__ = ["LimitLongestSide"]

logger = logging.getLogger(__name__)


class LimitLongestSide(BaseTransform):
    """Resizes the whole input so that ``max(H, W) <= max_size`` (aspect ratio kept).

    A no-op for images already small enough.

    Args:
        max_size: longest allowed side in pixels.
    """

    def __init__(self, max_size: int = 800) -> None:
        super().__init__()
        self.max_size = int(max_size)
        self.reset()

    def reset(self) -> None:
        self._input_size: tuple[int, int] | None = None
        self._active_roi: Box | None = None
        self._has_run = False
        self.image_changed = False

    def get_state(self) -> Any:
        return self._input_size, self._active_roi, self._has_run, self.image_changed

    def set_state(self, state: Any) -> None:
        self._input_size, self._active_roi, self._has_run, self.image_changed = state

    def transform(
        self, image_nd: torch.Tensor, clicks_lists: ClicksLists
    ) -> tuple[torch.Tensor, ClicksLists]:
        h, w = (int(s) for s in image_nd.shape[2:])
        self._input_size = (h, w)
        roi = (0, h - 1, 0, w - 1) if max(h, w) > self.max_size else None
        self.image_changed = (not self._has_run) or roi != self._active_roi
        self._active_roi, self._has_run = roi, True
        if roi is None:
            return image_nd, clicks_lists
        resized = crop_and_resize(image_nd, roi, self.max_size)
        hw = tuple(resized.shape[2:])
        return resized, [map_clicks_to_crop(c, roi, hw) for c in clicks_lists]

    def inv_transform(self, prob_map: torch.Tensor) -> torch.Tensor:
        if self._active_roi is None:
            return prob_map
        assert self._input_size is not None
        return paste_into(prob_map, self._active_roi, self._input_size)
