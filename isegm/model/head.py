"""Light segmentation head (SegFormer-style all-MLP decoder over the four neck levels)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SegHead"]


class _ConvReLU(nn.Module):
    """1×1 conv + ReLU; the ``.conv`` name matches mmcv's ConvModule keys in the checkpoints."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)
        self.activate = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.activate(self.conv(x))


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 2, stride=2),
        nn.GroupNorm(1, cout),
        nn.Conv2d(cout, cout, 1),
        nn.GroupNorm(1, cout),
        nn.GELU(),
    )


class SegHead(nn.Module):
    """Projects every level to ``out_channels``, resizes them to the 1/4 map (bilinear), fuses
    them with a 1×1 conv, optionally upsamples ×2 / ×4 with transposed convs, and predicts one
    logit channel. The output is at 1/4 (``x1``), 1/2 (``x2``) or full (``x4``) resolution of the
    1/4 map's parent image.

    Args:
        in_channels: channels of the four neck levels.
        channels: channels entering the classifier (256 / 128 / 64 for x1 / x2 / x4 in the
            published scripts, so the fused width is 256 in all three).
        upsample: ``x1``, ``x2`` or ``x4``.
        dropout: ``Dropout2d`` before the classifier.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        channels: int = 256,
        upsample: str = "x1",
        dropout: float = 0.1,
        num_classes: int = 1,
    ) -> None:
        super().__init__()
        self.upsample = upsample
        out = {"x1": channels, "x2": channels * 2, "x4": channels * 4}[upsample]
        self.convs = nn.ModuleList(_ConvReLU(c, out) for c in in_channels)
        self.fusion_conv = _ConvReLU(out * len(in_channels), out)
        if upsample in ("x2", "x4"):
            self.up_conv1 = _up(out, out // 2)
        if upsample == "x4":
            self.up_conv2 = _up(out // 2, out // 4)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        size = feats[0].shape[2:]
        outs = [conv(f) for conv, f in zip(self.convs, feats)]
        outs = [
            o
            if o.shape[2:] == size
            else F.interpolate(o, size=size, mode="bilinear", align_corners=False)
            for o in outs
        ]
        x = self.fusion_conv(torch.cat(outs, dim=1))
        if self.upsample in ("x2", "x4"):
            x = self.up_conv1(x)
        if self.upsample == "x4":
            x = self.up_conv2(x)
        return self.conv_seg(self.dropout(x))
