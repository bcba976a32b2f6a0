"""Click encoding: disks of radius ``r`` around the positive and the negative clicks."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["disk_maps"]


def disk_maps(points: Tensor, height: int, width: int, radius: float) -> Tensor:
    """Binary click maps.

    Args:
        points: ``[B, 2N, 3]`` clicks ``(y, x, click_index)``: positives in rows ``0..N-1``,
            negatives in rows ``N..2N-1``; padding rows are ``-1``.
        height, width: map size.
        radius: disk radius in pixels; a pixel is inside if ``(row-y)² + (col-x)² <= r²``.

    Returns:
        ``[B, 2, H, W]`` float32 maps (channel 0 positive, 1 negative). Distances are computed in
        float32 like the reference, so the maps are the same in every compute dtype.
    """
    B, n2, _ = points.shape
    yx = points[..., :2].float()
    valid = yx.max(dim=-1).values >= 0  # the reference's rule: padding has both coords < 0
    rows = torch.arange(height, device=points.device, dtype=torch.float32)
    cols = torch.arange(width, device=points.device, dtype=torch.float32)
    dy2 = (rows.view(1, 1, -1) - yx[..., 0:1]) ** 2  # [B, 2N, H]
    dx2 = (cols.view(1, 1, -1) - yx[..., 1:2]) ** 2  # [B, 2N, W]
    inside = (dy2.unsqueeze(-1) + dx2.unsqueeze(-2)) <= float(radius) ** 2  # [B, 2N, H, W]
    inside &= valid.view(B, n2, 1, 1)
    return inside.view(B, 2, n2 // 2, height, width).any(dim=2).float()
