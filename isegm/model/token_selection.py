"""Click-guided scoring and top-k selection of multi-scale tokens (MST, arXiv 2401.04403 §3).

A selection block first refines a token stream (8-px or 32-px tokens) by cross-attention to
the base 16-px tokens, then scores every stream token by cosine similarity to a *click
kernel* built from the base tokens under the positive clicks, and keeps the top-k. Training
uses a straight-through estimator: the forward pass gathers the selected tokens, the backward
pass sends gradient to the scores (SPEC §2). Everything is batched: no loop over samples or
tokens, no host synchronisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import SelectionConfig
from .layers import CrossAttention, ExpertProjection, make_mlp

__all__ = ["ScoreBlock", "click_kernel", "click_token_index", "select_topk", "gather_tokens"]


def click_token_index(points: Tensor, patch: int, grid_w: int) -> Tensor:
    """Row-major index of the ``patch``-px token under each click.

    Args:
        points: ``[B, 2N, 3]`` clicks ``(y, x, click_index)``; padding rows are ``-1``.
        patch: token size in pixels.
        grid_w: tokens per row.

    Returns:
        ``[B, 2N]`` int64; negative for padding (a click with a negative coordinate).
    """
    yx = torch.div(points[..., :2], patch, rounding_mode="floor").long()
    idx = yx[..., 0] * grid_w + yx[..., 1]
    invalid = (points[..., :2] < 0).any(-1)
    return idx.masked_fill(invalid, -1)


def gather_tokens(x: Tensor, idx: Tensor) -> Tensor:
    """``x [B, N, C]`` gathered at ``idx [B, k]`` → ``[B, k, C]``."""
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def click_kernel(x_b: Tensor, pos_idx: Tensor, mode: str) -> tuple[Tensor, Tensor]:
    """The click kernel: what the object looks like to the base tokens under the positive clicks.

    Args:
        x_b: base tokens ``[B, N_b, C]``.
        pos_idx: ``[B, P]`` token indices of the positive clicks, negative for padding.
        mode: ``attn_l2``: ``L2norm(mean_rows(softmax(T Tᵀ / √C) T))`` over the valid clicked
            tokens T (``main`` / ``mst-448``); ``mean``: their plain mean (224 family).

    Returns:
        ``(kernel [B, 1, C], has_pos [B] bool)``. A sample with no positive click gets a zero
        kernel.
    """
    valid = pos_idx >= 0
    has_pos = valid.any(-1)
    tokens = gather_tokens(x_b, pos_idx.clamp(min=0)) * valid.unsqueeze(-1).to(x_b.dtype)
    count = valid.sum(-1, keepdim=True).clamp(min=1).to(x_b.dtype)  # [B, 1]
    if mode == "mean":
        return (tokens.sum(1) / count).unsqueeze(1), has_pos
    logits = tokens @ tokens.transpose(-2, -1) / math.sqrt(tokens.shape[-1])
    logits = logits.masked_fill(~valid.unsqueeze(1), float("-inf"))
    logits = torch.where(has_pos[:, None, None], logits, torch.zeros_like(logits))
    pooled = logits.softmax(-1) @ tokens  # [B, P, C]
    pooled = (pooled * valid.unsqueeze(-1).to(x_b.dtype)).sum(1) / count
    return F.normalize(pooled, dim=-1).unsqueeze(1), has_pos


def select_topk(
    scores: Tensor, k: int, cfg: SelectionConfig
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Top-k of ``scores [B, N]`` with the straight-through weights of the reference.

    Returns:
        ``(idx [B, k] int64 sorted by descending score, weight [B, k], valid_k [B], top [B, k])``.
        ``weight`` is 1 for kept rows (0 beyond ``valid_k`` and for zero scores) in the forward
        pass and carries ``∂/∂score`` in the backward pass.
    """
    top, idx = torch.topk(scores, k, dim=-1)
    if cfg.valid_k_clamp:
        above = (scores > cfg.valid_k_thresh).sum(-1)
        valid_k = above.clamp(min=k - cfg.valid_k_margin, max=k)
    else:
        valid_k = torch.full_like(idx[:, 0], k)
    rows = torch.arange(k, device=scores.device)
    keep = (rows.unsqueeze(0) < valid_k.unsqueeze(1)).to(scores.dtype)
    hard = (top > 0).to(scores.dtype)
    weight = keep * (hard + top - top.detach())
    return idx, weight, valid_k, top


class ScoreBlock(nn.Module):
    """Refines one token stream against the base tokens and scores it against the click kernel.

    State-dict layout as in the reference (``norm1..3``, ``cross_attn``, ``cross_mlp``); the
    MoE variant's projection holds ``expert_s`` / ``expert_l``.
    """

    def __init__(self, dim: int, cfg: SelectionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        proj = (
            ExpertProjection(dim, int(dim * cfg.expert_hidden_ratio), cfg.score_dropout)
            if cfg.score_moe
            else None
        )
        self.cross_attn = CrossAttention(
            dim,
            cfg.score_heads,
            sr_ratio=cfg.score_sr,
            proj=proj,
            proj_drop=cfg.score_dropout if cfg.score_moe else 0.0,
        )
        self.cross_mlp = make_mlp(dim, int(dim * cfg.cross_mlp_ratio), cfg.score_dropout)

    def base_key_value(self, x_b: Tensor, grid: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """K/V of the base tokens, computed once and shared by both streams."""
        return self.cross_attn.key_value(self.norm2(x_b), grid)

    def update(self, x: Tensor, kv: tuple[Tensor, Tensor], stream: str) -> Tensor:
        """Cross-attend stream tokens ``x [B, N, C]`` to the base tokens, then an MLP."""
        kwargs = {"stream": stream} if self.cfg.score_moe else {}
        x = x + self.cross_attn.attend(self.norm1(x), *kv, **kwargs)
        return x + self.cross_mlp(self.norm3(x))

    def score(self, x: Tensor, kernel: Tensor, has_pos: Tensor) -> Tensor:
        """``(cos(x, kernel) + 1) / 2`` per token, ``[B, N]``; 0 for samples without a
        positive click."""
        if self.cfg.kernel_mode == "attn_l2":
            x = F.normalize(x, dim=-1)
        cos = F.cosine_similarity(x, kernel, dim=-1)
        scores = (cos + 1) / 2
        return scores * has_pos.unsqueeze(-1).to(scores.dtype)

    def forward(
        self, x: Tensor, kv: tuple[Tensor, Tensor], kernel: Tensor, has_pos: Tensor, stream: str
    ) -> tuple[Tensor, Tensor]:
        x = self.update(x, kv, stream)
        return x, self.score(x, kernel, has_pos)


def select_stream(
    x: Tensor, pos: Tensor, scores: Tensor, cfg: SelectionConfig, record: dict | None, suffix: str
) -> Tensor:
    """Top-k of one stream: gathered tokens (stream token + its position embedding, as the
    reference does) times the straight-through weights, ``[B, k, C]``."""
    k = max(1, x.shape[1] // cfg.k_divisor)  # at least one token on very small inputs
    idx, weight, valid_k, _ = select_topk(scores, k, cfg)
    sel = weight.unsqueeze(-1) * (gather_tokens(x, idx) + pos[0][idx])
    if record is not None:
        record[f"idx_tokens_{suffix}"] = idx
        record[f"valid_k_{suffix}"] = valid_k
    return sel
