"""Test-time transform interface (SPEC Part II §4).

A transform maps the network input (image tensor plus click lists) forward and the network
output back. The predictor applies the chain forward, runs the network, then applies the
inverses in reverse order.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from isegm.inference.clicker import Click

__all__ = ["BaseTransform", "ClicksLists", "SigmoidForPred"]

logger = logging.getLogger(__name__)

ClicksLists = list[list[Click]]


class BaseTransform:
    """Base of the test-time transforms.

    Attributes:
        image_changed: set by ``transform``: True when the transformed image content differs from
            the previous call's (new crop, first call after ``reset``); the predictor then
            recomputes its cached image embedding.
    """

    def __init__(self) -> None:
        self.image_changed = False

    def transform(
        self, image_nd: torch.Tensor, clicks_lists: ClicksLists
    ) -> tuple[torch.Tensor, ClicksLists]:
        """Maps the input forward.

        Args:
            image_nd: [B, C, H, W] network input.
            clicks_lists: B lists of clicks, coords (y, x) in ``image_nd`` pixels.

        Returns:
            The transformed image [B', C, H', W'] and B' click lists in its coordinates.
        """
        raise NotImplementedError

    def inv_transform(self, prob_map: torch.Tensor) -> torch.Tensor:
        """Maps a [B', 1, H', W'] output back to the input geometry [B, 1, H, W]."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forgets everything about the current image."""

    def get_state(self) -> Any:
        """Snapshot of the internal state (for undo)."""
        return None

    def set_state(self, state: Any) -> None:
        """Restores a :meth:`get_state` snapshot."""


class SigmoidForPred(BaseTransform):
    """Turns logits into probabilities on the way back."""

    def transform(
        self, image_nd: torch.Tensor, clicks_lists: ClicksLists
    ) -> tuple[torch.Tensor, ClicksLists]:
        self.image_changed = False
        return image_nd, clicks_lists

    def inv_transform(self, prob_map: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(prob_map)
