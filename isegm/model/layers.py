"""Attention layers shared by the backbones.

Self-attention blocks are timm's (``timm.models.vision_transformer.Block``): its parameter
names (``norm1``, ``attn.qkv``, ``attn.proj``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``) are the
MAE / SimpleClick / MST names, and it calls ``scaled_dot_product_attention``. What timm lacks
is cross-attention with a separate query and key/value source, an optional spatial reduction
of the key/value tokens (PVT style, used by the MST ScoreBlock), and per-stream expert
projections; those are here.
"""

from __future__ import annotations

from functools import partial

import torch.nn.functional as F
from timm.layers import Mlp, use_fused_attn
from torch import Tensor, nn

__all__ = ["CrossAttention", "ExpertProjection", "LayerNorm6", "attention"]

# Block-level norms of MAE / SimpleClick / MST use eps 1e-6; the ScoreBlock's own norms use
# nn.LayerNorm's default 1e-5 (SPEC §1.1).
LayerNorm6 = partial(nn.LayerNorm, eps=1e-6)


def attention(q: Tensor, k: Tensor, v: Tensor, fused: bool, dropout_p: float = 0.0) -> Tensor:
    """Scaled dot-product attention over ``[B, heads, N, d]`` tensors.

    ``fused=False`` is the explicit ``softmax(q kᵀ / √d) v`` path, kept to test that the fused
    kernel computes the same thing.
    """
    if fused:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    attn = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
    attn = attn.softmax(dim=-1)
    if dropout_p > 0:
        attn = F.dropout(attn, dropout_p)
    return attn @ v


class ExpertProjection(nn.Module):
    """Per-stream output projections of the MoE cross-attention: ``expert_s`` for the 8-px
    stream, ``expert_l`` for the 32-px stream (Linear → GELU → Linear → Dropout each).

    The reference routes tokens with boolean masks; here each stream is projected by its own
    expert directly, which is the same function without host syncs.
    """

    def __init__(self, dim: int, hidden: int, drop: float) -> None:
        super().__init__()

        def expert() -> nn.Sequential:
            return nn.Sequential(
                nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim), nn.Dropout(drop)
            )

        self.expert_s = expert()
        self.expert_l = expert()

    def forward(self, x: Tensor, stream: str) -> Tensor:
        return self.expert_s(x) if stream == "s" else self.expert_l(x)


class CrossAttention(nn.Module):
    """Queries from ``x``, keys/values from ``y`` (no q/kv bias; projection with bias).

    Args:
        dim: token width C.
        num_heads: attention heads.
        sr_ratio: if > 1, ``y`` (a square-or-rectangular token grid) is reduced by a
            ``sr_ratio``×``sr_ratio`` stride-``sr_ratio`` conv + LayerNorm before the K/V
            projection, as in PVT.
        proj: output projection; a Linear by default, an :class:`ExpertProjection` for the MoE
            ScoreBlock.
        proj_drop: dropout after the projection.
    """

    fused_attn: bool

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        sr_ratio: int = 1,
        proj: nn.Module | None = None,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(dim, dim * 2, bias=False)
        self.proj = proj if proj is not None else nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)
        self.fused_attn = use_fused_attn()

    def _heads(self, t: Tensor) -> Tensor:
        B, N, C = t.shape
        return t.reshape(B, N, self.num_heads, C // self.num_heads).transpose(1, 2)

    def key_value(self, y: Tensor, grid: tuple[int, int] | None = None) -> tuple[Tensor, Tensor]:
        """K and V of the source tokens ``y [B, M, C]``, each ``[B, heads, M', d]``.

        ``grid`` is the (h, w) token grid of ``y``; it is needed only with spatial reduction.
        """
        if self.sr_ratio > 1:
            if grid is None:
                raise ValueError("spatial reduction needs the token grid of the key/value source")
            B, M, C = y.shape
            y = y.transpose(1, 2).reshape(B, C, grid[0], grid[1])
            y = self.norm(self.sr(y).flatten(2).transpose(1, 2))
        kv = self.kv(y)
        k, v = kv.chunk(2, dim=-1)
        return self._heads(k), self._heads(v)

    def attend(self, x: Tensor, k: Tensor, v: Tensor, **proj_kwargs) -> Tensor:
        """Attention of the queries from ``x [B, N, C]`` to precomputed K/V."""
        B, N, C = x.shape
        out = attention(self._heads(self.q(x)), k, v, self.fused_attn)
        out = out.transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(out, **proj_kwargs))

    def forward(self, x: Tensor, y: Tensor, grid: tuple[int, int] | None = None) -> Tensor:
        k, v = self.key_value(y, grid)
        return self.attend(x, k, v)


def make_mlp(dim: int, hidden: int, drop: float = 0.0) -> Mlp:
    """timm's MLP (fc1 → GELU → drop → fc2 → drop), the reference's layout and key names."""
    return Mlp(in_features=dim, hidden_features=hidden, drop=drop)
