"""Horizontal-flip test-time augmentation."""

from __future__ import annotations

import logging

import torch

from isegm.inference.transforms.base import BaseTransform, ClicksLists

__all__ = ["AddHorizontalFlip"]

logger = logging.getLogger(__name__)


class AddHorizontalFlip(BaseTransform):
    """Appends the mirrored input to the batch; the inverse averages the two logit maps.

    A click at x moves to ``x' = W - x - 1`` (W = width of the transformed image). Averaging
    happens on logits because the chain puts this transform after :class:`SigmoidForPred`.
    """

    def transform(
        self, image_nd: torch.Tensor, clicks_lists: ClicksLists
    ) -> tuple[torch.Tensor, ClicksLists]:
        if image_nd.dim() != 4:
            raise ValueError(f"expected [B, C, H, W], got {tuple(image_nd.shape)}")
        self.image_changed = False
        width = image_nd.shape[3]
        flipped = [
            [c.copy(coords=(c.coords[0], width - c.coords[1] - 1)) for c in clicks]
            for clicks in clicks_lists
        ]
        return torch.cat([image_nd, torch.flip(image_nd, dims=[3])], dim=0), (
            list(clicks_lists) + flipped
        )

    def inv_transform(self, prob_map: torch.Tensor) -> torch.Tensor:
        if prob_map.dim() != 4 or prob_map.shape[0] % 2:
            raise ValueError(f"expected [2B, 1, H, W], got {tuple(prob_map.shape)}")
        n = prob_map.shape[0] // 2
        return 0.5 * (prob_map[:n] + torch.flip(prob_map[n:], dims=[3]))
