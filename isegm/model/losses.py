"""Training losses: normalized focal loss on the mask, the contrastive token loss on the
selected tokens (MST's "CL"), and the score loss on the token scores (SPEC §4).

All are batched over samples, blocks' tokens and scales; none leaves the device.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["NormalizedFocalLossSigmoid", "TokenContrastiveLoss", "ScoreLoss", "token_grid_labels"]


class NormalizedFocalLossSigmoid(nn.Module):
    """Focal loss whose per-sample weights are renormalised so that their sum equals the number
    of labelled pixels (RITM). Returns the per-sample loss ``[B]``.

    Args:
        alpha: weight of the positive class.
        gamma: focusing exponent.
        ignore_label: label value excluded from the loss.
    """

    def __init__(
        self, alpha: float = 0.5, gamma: float = 2.0, eps: float = 1e-12, ignore_label: int = -1
    ) -> None:
        super().__init__()
        self.alpha, self.gamma, self.eps, self.ignore_label = alpha, gamma, eps, ignore_label

    def forward(self, logits: Tensor, label: Tensor) -> Tensor:
        label = label.to(logits.dtype)
        p = torch.sigmoid(logits)
        weight = (label != self.ignore_label).to(logits.dtype)
        is_pos = label > 0.5
        alpha = (
            torch.where(is_pos, torch.full_like(p, self.alpha), torch.full_like(p, 1 - self.alpha))
            * weight
        )
        pt = torch.where(weight > 0, 1 - (label - p).abs(), torch.ones_like(p))
        beta = (1 - pt) ** self.gamma
        dims = tuple(range(2, logits.dim()))
        mult = (weight.sum(dims, keepdim=True) / (beta.sum(dims, keepdim=True) + self.eps)).detach()
        loss = -alpha * beta * mult * torch.log(torch.clamp(pt + self.eps, max=1.0)) * weight
        sample_dims = tuple(range(1, logits.dim()))
        return loss.sum(sample_dims) / (weight.sum(sample_dims) + self.eps)


def token_grid_labels(gt: Tensor, patch: int) -> Tensor:
    """Object label of each ``patch``-px token: the ground truth at the token's top-left pixel
    (what nearest-neighbour downsampling by ``1/patch`` gives), ``[B, (H/p)(W/p)]`` bool."""
    return (gt[:, :, ::patch, ::patch] > 0).any(1).flatten(1)


def _scale_records(tokens: Sequence[Mapping[str, Tensor]], patches: Mapping[str, int]):
    for rec in tokens:
        for s, patch in patches.items():
            if f"sel_tokens_{s}" in rec and f"kernel_{s}" in rec:
                yield rec, s, patch


def _safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt(x)`` for ``x >= 0`` whose gradient at 0 is 0, not infinite: an empty selection
    (no positive or no negative token) sums to exactly 0, and ``0 · inf`` from masking that term
    afterwards would be NaN. The value is unchanged."""
    nonzero = x > 0
    return torch.where(nonzero, torch.sqrt(torch.where(nonzero, x, torch.ones_like(x))), 0.0)


class TokenContrastiveLoss(nn.Module):
    """Contrastive (soft-margin triplet) loss on the selected tokens (MST's ``PatchLoss``).

    For every selection block, scale and sample: the anchor is the click kernel; positives are
    the selected tokens lying on the object, negatives the other selected tokens. The loss is
    ``log(1 + exp(d(anchor, pos) - d(anchor, neg)))`` with ``d`` the mean L2 distance; samples
    without positives or without negatives are skipped; the result is the mean over all terms.

    Args:
        patches: token size per scale suffix (``s``: 8, ``l``: 32).
        reference_quirks: reproduce the ``main`` / ``mst-448`` code exactly: the L2 norm taken
            over the token axis (then averaged over channels), slots dropped only when zero in
            every sample of the batch, and a sample skipped at the small scale skipped at the
            large scale too (SPEC §4.2, §8.14). Off by default.
    """

    def __init__(
        self, patches: Mapping[str, int] | None = None, reference_quirks: bool = False
    ) -> None:
        super().__init__()
        self.patches = dict(patches or {"s": 8, "l": 32})
        self.reference_quirks = reference_quirks

    def forward(self, tokens: Sequence[Mapping[str, Tensor]], gt: Tensor) -> Tensor:
        total, count = gt.new_zeros(()), gt.new_zeros(())
        labels = {s: token_grid_labels(gt, p) for s, p in self.patches.items()}
        skip_small: dict[int, Tensor] = {}
        for rec, s, _ in _scale_records(tokens, self.patches):
            sel = rec[f"sel_tokens_{s}"]
            B, k, C = sel.shape
            idx = rec.get(f"idx_tokens_{s}")
            if idx is None:  # all tokens kept (AT / UpConv)
                idx = torch.arange(k, device=sel.device).expand(B, k)
            anchor = rec[f"kernel_{s}"].reshape(B, 1, C).to(sel.dtype)
            if self.reference_quirks:
                kept = (sel.abs().sum((0, 2)) != 0).expand(B, k)
            else:
                kept = sel.abs().sum(-1) != 0
            on_obj = torch.gather(labels[s], 1, idx)
            pos, neg = (kept & on_obj).to(sel.dtype), (kept & ~on_obj).to(sel.dtype)
            n_pos, n_neg = pos.sum(1), neg.sum(1)
            ok = (n_pos > 0) & (n_neg > 0)
            if self.reference_quirks:
                if s == "s":
                    skip_small[id(rec)] = ~ok
                elif id(rec) in skip_small:
                    ok = ok & ~skip_small[id(rec)]
                sq = (sel - anchor) ** 2  # norm over the token axis, then mean over channels
                ap = _safe_sqrt((sq * pos.unsqueeze(-1)).sum(1)).mean(-1)
                an = _safe_sqrt((sq * neg.unsqueeze(-1)).sum(1)).mean(-1)
            else:
                dist = (sel - anchor).norm(dim=-1)
                ap = (dist * pos).sum(1) / n_pos.clamp(min=1)
                an = (dist * neg).sum(1) / n_neg.clamp(min=1)
            # skipped terms are selected away (not multiplied by 0): their gradient is exactly 0
            terms = torch.where(ok, F.softplus(ap - an), 0.0)
            okf = ok.to(sel.dtype)
            total = total + terms.sum()
            count = count + okf.sum()
        return total / count.clamp(min=1)


class ScoreLoss(nn.Module):
    """Supervises the token scores with the object mask at each token grid (SPEC §4.3):
    focal loss (``main`` / ``mst-448``, α 0.25, γ 2) or MSE (224 family), over the samples that
    have a positive click, ``0.5·(small + large)`` per block, averaged over blocks. Returns 0
    (not NaN) when no sample has a positive click. ``ignore``: ignore cells as background
    (``'background'``) or as the original treats them (``'reference'``: counted in the mean
    with zero focal loss; MSE against the label -1).
    """

    def __init__(
        self,
        mode: str = "focal",
        alpha: float = 0.25,
        gamma: float = 2.0,
        patches: Mapping[str, int] | None = None,
        ignore: str = "background",
    ) -> None:
        super().__init__()
        if mode not in ("focal", "mse"):
            raise ValueError(f"mode must be 'focal' or 'mse', got {mode!r}")
        if ignore not in ("background", "reference"):
            raise ValueError(f"ignore must be 'background' or 'reference', got {ignore!r}")
        self.mode, self.alpha, self.gamma, self.ignore = mode, alpha, gamma, ignore
        self.patches = dict(patches or {"s": 8, "l": 32})

    def _elementwise(self, p: Tensor, t: Tensor) -> Tensor:
        if self.mode == "mse":
            return (p - t) ** 2
        p = p.clamp(1e-7, 1 - 1e-7)
        loss = torch.where(
            t > 0.5,
            -self.alpha * (1 - p) ** self.gamma * torch.log(p),
            -(1 - self.alpha) * p**self.gamma * torch.log(1 - p),
        )
        return torch.where(t < 0, 0.0, loss)  # ignore cells (reference targets only): 0

    def _target(self, gt: Tensor, patch: int, dtype: torch.dtype) -> Tensor:
        """Per-token target: object 1 / background 0; with ``ignore='reference'`` the raw
        label at the token's top-left pixel, so ignore cells stay -1 (the original)."""
        if self.ignore == "reference":
            return gt[:, :1, ::patch, ::patch].flatten(1).to(dtype)
        return token_grid_labels(gt, patch).to(dtype)

    def forward(self, tokens: Sequence[Mapping[str, Tensor]], gt: Tensor) -> Tensor:
        per_block = []
        for rec in tokens:
            parts = []
            for s, patch in self.patches.items():
                scores = rec.get(f"pos_scores_{s}")
                if scores is None:
                    continue
                target = self._target(gt, patch, scores.dtype)
                has = (scores.sum(1) != 0).to(scores.dtype).unsqueeze(1)
                n = has.sum() * scores.shape[1]
                parts.append((self._elementwise(scores, target) * has).sum() / n.clamp(min=1))
            if parts:
                per_block.append(sum(parts) / len(parts))
        if not per_block:
            return gt.new_zeros(())
        return torch.stack(per_block).mean()
