"""The undo history of an annotation session: what the state after each click keeps.

A snapshot holds the network wrapper's states without any full-resolution map, plus the
probabilities at the network's resolution, which the same inverse transforms turn back into
the full-resolution maps; so a restored state is bit-identical to the one the click left, and
the history's memory does not grow with the image size (see :class:`Predictor`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from isegm.annotation.clicks import ClickTuple
from isegm.inference.transforms.base import BaseTransform

__all__ = ["NetworkOutput", "Snapshot", "Step", "snapshots_nbytes", "strip_full_size"]



class NetworkOutput(BaseTransform):
    """Identity transform placed after the geometric transforms (ZoomIn, LimitLongestSide):
    on the way back it sees the probabilities at the network's resolution and keeps them, so
    the undo history stores those instead of full-resolution maps."""

    def __init__(self) -> None:
        super().__init__()
        self.last: torch.Tensor | None = None

    def transform(self, image_nd: torch.Tensor, clicks_lists: Any) -> tuple[torch.Tensor, Any]:
        self.image_changed = False
        return image_nd, clicks_lists

    def inv_transform(self, prob_map: torch.Tensor) -> torch.Tensor:
        self.last = prob_map
        return prob_map

    def reset(self) -> None:
        self.last = None


@dataclass
class Snapshot:
    """Predictor state after a click, without any full-resolution map.

    ``states`` is :meth:`NoBRSPredictor.get_states` with every image-sized tensor (the previous
    prediction, also held by ZoomIn) replaced by None; ``net_prob`` is the network-resolution
    probability map they are rebuilt from by the same inverse transforms, so a restored state
    is bit-identical to the one the click left.
    """

    states: dict
    net_prob: torch.Tensor | None


@dataclass
class Step:
    """One click of the current session and, for the last ``history_limit`` clicks, the state
    right after it (older clicks are replayed from the start when undone that far)."""

    click: ClickTuple
    snapshot: Snapshot | None


def strip_full_size(state: Any, full_shape: tuple[int, ...]) -> Any:
    """``state`` with tensors of ``full_shape`` replaced by None (nested tuples/lists/dicts)."""
    if torch.is_tensor(state):
        return None if tuple(state.shape) == full_shape else state
    if isinstance(state, dict):
        return {k: strip_full_size(v, full_shape) for k, v in state.items()}
    if isinstance(state, (tuple, list)):
        return type(state)(strip_full_size(v, full_shape) for v in state)
    return state



def snapshots_nbytes(snapshots: Iterable[Snapshot]) -> int:
    """Bytes of the tensors the snapshots hold (their network maps and nested states)."""
    snapshots = list(snapshots)
    tensors = [s.net_prob for s in snapshots if s.net_prob is not None]
    stack: list[Any] = [s.states for s in snapshots]
    while stack:
        item = stack.pop()
        if torch.is_tensor(item):
            tensors.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (tuple, list)):
            stack.extend(item)
    return sum(t.numel() * t.element_size() for t in tensors)
