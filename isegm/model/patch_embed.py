"""Patch embeddings at several patch sizes and position-embedding resampling.

MST embeds the image at 8, 16 and 32 px with *one* 16×16 kernel: the 8×8 and 32×32 kernels
are derived from it by pseudo-inverse resizing (FlexiViT, arXiv 2212.08013), and the 16-px
position grid is resized to each token grid (bicubic, antialiased). The pseudo-inverse matrices
depend only on the patch sizes; they are computed once in float64 and cast to the compute
dtype, so a float64 model reproduces the float64 reference to 1e-13.

timm's ``resample_patch_embed`` / ``resample_abs_pos_embed`` compute in float32, which is not
exact enough for the float64 parity fixtures, hence these few lines.
"""

from __future__ import annotations

from functools import cache

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import POS_EMBED_RESIZE_MODES

__all__ = [
    "POS_EMBED_RESIZE_MODES",
    "inference_pos_grids",
    "pi_resize_matrix",
    "pi_resize_kernel",
    "resize_pos_grid",
    "resize_pos_embed_checkpoint",
]



@cache
def _pinv_float64(old: tuple[int, int], new: tuple[int, int]) -> Tensor:
    basis = torch.eye(old[0] * old[1], dtype=torch.float64).reshape(-1, 1, *old)
    resized = F.interpolate(basis, size=new, mode="bicubic", antialias=True)
    resize_matrix = resized.reshape(old[0] * old[1], -1)  # [old_n, new_n]
    return torch.linalg.pinv(resize_matrix)  # [new_n, old_n]


def pi_resize_matrix(
    old: tuple[int, int], new: tuple[int, int], device: torch.device, dtype: torch.dtype
) -> Tensor:
    """Pseudo-inverse of the bicubic (antialiased) resize from ``old`` to ``new``,
    ``[new_h*new_w, old_h*old_w]``."""
    return _pinv_float64(tuple(old), tuple(new)).to(device=device, dtype=dtype)


def pi_resize_kernel(weight: Tensor, new: tuple[int, int]) -> Tensor:
    """Resample a conv kernel ``[O, I, h, w]`` to ``[O, I, *new]`` so that the patch tokens of
    a resized image match the original ones as closely as possible."""
    O, I, h, w = weight.shape
    if (h, w) == tuple(new):
        return weight
    pinv = pi_resize_matrix((h, w), new, weight.device, weight.dtype)
    return (weight.reshape(O * I, h * w) @ pinv.T).reshape(O, I, *new)


def resize_pos_grid(
    pos: Tensor, old: tuple[int, int], new: tuple[int, int], antialias: bool = True
) -> Tensor:
    """Resize grid position embeddings ``[1, old_h*old_w, C]`` → ``[1, new_h*new_w, C]``
    (bicubic; antialiased as MST does at every forward pass)."""
    if tuple(old) == tuple(new):
        return pos
    C = pos.shape[-1]
    grid = pos.reshape(1, old[0], old[1], C).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=new, mode="bicubic", antialias=antialias)
    return grid.permute(0, 2, 3, 1).reshape(1, new[0] * new[1], C)


def inference_pos_grids(
    pos_embed: Tensor, base_grid: tuple[int, int], grids: list[tuple[int, int]], mode: str = "once"
) -> list[Tensor]:
    """Position embeddings of a stored ``pos_embed [1, 1 + n, C]`` (cls slot + square grid) for
    each token grid of one forward pass.

    ``once``: each grid resized straight from the stored grid (bicubic, antialiased); training
    and this project's own evaluation. ``two-step``: what the original evaluation scripts do at
    a size other than the training size. They first resize the stored grid to the input's 16-px
    grid ``base_grid`` (bicubic, no antialias: ``interpolate_pos_embed_inference``), and MST then
    resizes that grid to each stream's grid (antialiased) at every forward; for ``base_grid``
    itself (and for SimpleClick, which uses it as is) the second step is the identity. At the
    training size both modes are the same.
    """
    if mode not in POS_EMBED_RESIZE_MODES:
        raise ValueError(f"pos-embed resize mode must be one of {POS_EMBED_RESIZE_MODES}, "
                         f"got {mode!r}")
    pos = pos_embed[:, 1:]
    side = int(round(pos.shape[1] ** 0.5))
    stored = (side, side)
    if mode == "two-step":
        pos, stored = resize_pos_grid(pos, stored, base_grid, antialias=False), tuple(base_grid)
    return [resize_pos_grid(pos, stored, g) for g in grids]


def resize_pos_embed_checkpoint(
    pos_embed: Tensor, new_grid: tuple[int, int], num_prefix: int = 1
) -> Tensor:
    """Resize a checkpoint's ``pos_embed [1, prefix + n, C]`` (square grid) to ``new_grid``,
    keeping the prefix (cls) slots: bicubic, align_corners=False, no antialias — what the
    reference does when it adapts MAE/SimpleClick weights to another image size."""
    n = pos_embed.shape[1] - num_prefix
    side = int(round(n**0.5))
    if side * side != n:
        raise ValueError(f"pos_embed has {n} grid tokens, not a square grid")
    if (side, side) == tuple(new_grid):
        return pos_embed
    prefix, grid = pos_embed[:, :num_prefix], pos_embed[:, num_prefix:]
    dtype = grid.dtype
    grid = resize_pos_grid(
        grid.float() if dtype in (torch.float16, torch.bfloat16) else grid,
        (side, side),
        tuple(new_grid),
        antialias=False,
    ).to(dtype)
    return torch.cat([prefix, grid], dim=1)
