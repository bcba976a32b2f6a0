"""SimpleFPN neck (ViTDet, arXiv 2203.16527): one ViT feature map → four scales 1/4..1/32."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["SimpleFPN"]


def _gn(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(1, ch)


class SimpleFPN(nn.Module):
    """Transposed convs up to 1/4 and 1/8, a 1×1 conv at 1/16, a strided conv down to 1/32.

    Sequential indices match the reference state dict (``neck.down_4.5.weight``, ...).
    """

    def __init__(self, in_dim: int = 768, out_dims: Sequence[int] = (128, 256, 512, 1024)) -> None:
        super().__init__()
        c4 = max(out_dims[0] * 2, in_dim // 2)
        self.down_4 = nn.Sequential(
            nn.ConvTranspose2d(in_dim, c4, 2, stride=2),
            _gn(c4),
            nn.GELU(),
            nn.ConvTranspose2d(c4, c4 // 2, 2, stride=2),
            _gn(c4 // 2),
            nn.Conv2d(c4 // 2, out_dims[0], 1),
            _gn(out_dims[0]),
            nn.GELU(),
        )
        c8 = max(out_dims[1], in_dim // 2)
        self.down_8 = nn.Sequential(
            nn.ConvTranspose2d(in_dim, c8, 2, stride=2),
            _gn(c8),
            nn.Conv2d(c8, out_dims[1], 1),
            _gn(out_dims[1]),
            nn.GELU(),
        )
        self.down_16 = nn.Sequential(nn.Conv2d(in_dim, out_dims[2], 1), _gn(out_dims[2]), nn.GELU())
        c32 = max(out_dims[3], in_dim * 2)
        self.down_32 = nn.Sequential(
            nn.Conv2d(in_dim, c32, 2, stride=2),
            _gn(c32),
            nn.Conv2d(c32, out_dims[3], 1),
            _gn(out_dims[3]),
            nn.GELU(),
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        """``x [B, C, H/16, W/16]`` → maps at 1/4, 1/8, 1/16, 1/32."""
        return [self.down_4(x), self.down_8(x), self.down_16(x), self.down_32(x)]
