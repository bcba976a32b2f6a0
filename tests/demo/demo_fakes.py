"""Networks with a known output and tiny checkpoints, shared by the predict and demo tests.

``DiskNet`` lets a test predict the exact mask the whole pipeline (clicks → predictor →
controller → PNG) must produce; the tiny checkpoints exercise the real model loading path.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from isegm.model.build import build_model
from isegm.model.checkpoint import save_checkpoint

LOGIT = 10.0


class DiskNet(nn.Module):
    """Logits +10 inside disks of ``radius`` (network-input pixels) around the clicks, else -10.

    Without ``memory`` the mask is the union of the positive disks minus the negative disks.
    With ``memory`` only the latest click (largest click index) is drawn, added to (positive) or
    cut from (negative) the previous mask of input channel 3: the result is then right only if
    the predictor feeds each prediction to the next click.

    Both versions are exactly flip-equivariant, so the flip average changes nothing.
    ``delay`` (seconds) or ``hold`` (a file: every call waits while it exists) make it slow, so
    a test can act while a prediction is certainly running, whatever the machine's load.
    """

    with_prev_mask = True

    def __init__(self, radius: float = 20.0, memory: bool = False, delay: float = 0.0,
                 hold: Path | None = None) -> None:
        super().__init__()
        self.radius = radius
        self.memory = memory
        self.delay = delay
        self.hold = Path(hold) if hold is not None else None  # calls wait while it exists
        self.calls = 0
        self.last_points: torch.Tensor | None = None
        self.last_input_size: tuple[int, int] | None = None

    def forward(self, image: torch.Tensor, points: torch.Tensor) -> dict:
        self.calls += 1
        self.last_points = points.clone()
        self.last_input_size = tuple(image.shape[2:])
        if self.delay:
            time.sleep(self.delay)
        while self.hold is not None and self.hold.exists():  # a model as slow as a test needs
            time.sleep(0.01)
        b, _, h, w = image.shape
        yy = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1)
        xx = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w)
        py = points[:, :, 0].float().view(b, -1, 1, 1)
        px = points[:, :, 1].float().view(b, -1, 1, 1)
        idx = points[:, :, 2].float().view(b, -1, 1, 1)
        valid = py >= 0
        disks = (((yy - py) ** 2 + (xx - px) ** 2) <= self.radius**2) & valid  # [B, 2N, H, W]
        n = points.shape[1] // 2
        if self.memory:
            last = idx == idx.amax(dim=1, keepdim=True)
            prev = image[:, 3:4] > 0.5
            add = (disks[:, :n] & last[:, :n]).any(1, keepdim=True)
            cut = (disks[:, n:] & last[:, n:]).any(1, keepdim=True)
            inside = (prev | add) & ~cut
        else:
            inside = disks[:, :n].any(1, keepdim=True) & ~disks[:, n:].any(1, keepdim=True)
        logits = torch.full((b, 1, h, w), -LOGIT)
        logits[inside] = LOGIT
        return {"instances": logits}


def disk(shape: tuple[int, int], x: float, y: float, radius: float = 20.0) -> np.ndarray:
    """Boolean disk of ``radius`` around pixel (x, y), as DiskNet draws it at full resolution."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - y) ** 2 + (xx - x) ** 2 <= radius**2


def expected_mask(shape: tuple[int, int], clicks, radius: float = 20.0) -> np.ndarray:
    """DiskNet's (memory-less) mask at full resolution for (x, y, is_positive) clicks."""
    pos = np.zeros(shape, dtype=bool)
    neg = np.zeros(shape, dtype=bool)
    for x, y, positive in clicks:
        (pos if positive else neg)[...] |= disk(shape, x, y, radius)
    return pos & ~neg


def tiny_checkpoint(path: Path, bias: float | None = None, seed: int = 0) -> Path:
    """A randomly initialised ``mst_tiny_224`` checkpoint.

    Args:
        bias: if set, the classifier's weights are zeroed and its bias set to this, so every
            pixel the network sees gets this logit (a predictable mask from the real model).
    """
    torch.manual_seed(seed)
    model = build_model("mst_tiny_224").eval()
    if bias is not None:
        with torch.no_grad():
            model.head.conv_seg.weight.zero_()
            model.head.conv_seg.bias.fill_(bias)
    return save_checkpoint(path, model)
