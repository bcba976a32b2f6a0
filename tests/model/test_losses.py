"""Losses against hand-computed values."""

from __future__ import annotations

import math

import torch

from isegm.model.losses import (
    NormalizedFocalLossSigmoid,
    ScoreLoss,
    TokenContrastiveLoss,
    token_grid_labels,
)


def test_normalized_focal_loss_by_hand():
    logits = torch.tensor([[[[0.0, 2.0], [-1.0, 3.0]]]], dtype=torch.float64)
    label = torch.tensor([[[[1.0, 0.0], [-1.0, 1.0]]]], dtype=torch.float64)
    p = torch.sigmoid(logits).flatten().tolist()
    # labelled pixels 0, 1, 3; pt = p, 1-p, p; alpha = .5 each; beta = (1-pt)^2
    pts = [p[0], 1 - p[1], p[3]]
    betas = [(1 - t) ** 2 for t in pts]
    mult = 3 / (sum(betas) + 1e-12)
    want = sum(-0.5 * b * mult * math.log(min(t + 1e-12, 1.0)) for t, b in zip(pts, betas)) / (
        3 + 1e-12
    )
    got = NormalizedFocalLossSigmoid(alpha=0.5, gamma=2)(logits, label)
    assert got.shape == (1,)
    assert abs(got.item() - want) < 1e-12


def _record(sel, idx, kernel):
    return {"sel_tokens_s": sel, "idx_tokens_s": idx, "kernel_s": kernel}


def test_token_grid_labels_top_left_pixel():
    gt = torch.zeros(1, 1, 16, 16)
    gt[0, 0, 8, 0] = 1  # top-left pixel of token (1, 0) on the 8-px grid
    gt[0, 0, 1, 9] = 1  # not a top-left pixel: token (0, 1) stays background
    assert token_grid_labels(gt, 8).tolist() == [[False, False, True, False]]


def test_contrastive_loss_by_hand():
    gt = torch.zeros(1, 1, 16, 16)
    gt[0, 0, :8, :] = 1  # tokens 0, 1 on the object; 2, 3 background
    kernel = torch.tensor([[[1.0, 0.0]]])
    sel = torch.tensor([[[1.0, 1.0], [0.0, 0.0], [3.0, 0.0], [1.0, 2.0]]])  # row 1 zero = dropped
    idx = torch.tensor([[0, 1, 2, 3]])
    loss = TokenContrastiveLoss({"s": 8})([_record(sel, idx, kernel)], gt)
    ap = 1.0  # only row 0 is a kept positive: |(1,1)-(1,0)| = 1
    an = (2.0 + 2.0) / 2  # rows 2, 3: |(3,0)-(1,0)| = 2, |(1,2)-(1,0)| = 2
    assert abs(loss.item() - math.log1p(math.exp(ap - an))) < 1e-6


def test_contrastive_loss_reference_quirk_norm_over_tokens():
    gt = torch.zeros(1, 1, 16, 16)
    gt[0, 0, :8, :] = 1
    kernel = torch.tensor([[[1.0, 0.0]]])
    sel = torch.tensor([[[1.0, 1.0], [2.0, 0.0], [3.0, 0.0], [1.0, 2.0]]])
    idx = torch.tensor([[0, 1, 2, 3]])
    loss = TokenContrastiveLoss({"s": 8}, reference_quirks=True)([_record(sel, idx, kernel)], gt)
    # positives rows 0,1: diffs (0,1),(1,0) → per-channel norms over tokens (1, 1) → mean 1
    # negatives rows 2,3: diffs (2,0),(0,2) → (2, 2) → mean 2
    assert abs(loss.item() - math.log1p(math.exp(1 - 2))) < 1e-6


def test_contrastive_loss_skips_samples_without_both_classes():
    gt = torch.ones(1, 1, 16, 16)  # everything on the object: no negatives
    rec = _record(torch.ones(1, 4, 2), torch.tensor([[0, 1, 2, 3]]), torch.zeros(1, 1, 2))
    loss = TokenContrastiveLoss({"s": 8})([rec], gt)
    assert loss.item() == 0.0


def test_score_loss_focal_by_hand_and_no_click_is_zero():
    gt = torch.zeros(2, 1, 16, 16)
    gt[:, :, :8] = 1  # labels [1, 1, 0, 0]
    scores = torch.tensor([[0.9, 0.6, 0.2, 0.5], [0.0, 0.0, 0.0, 0.0]])  # sample 1: no click
    loss = ScoreLoss(patches={"s": 8})([{"pos_scores_s": scores}], gt)
    a, g = 0.25, 2
    terms = [
        -a * (1 - 0.9) ** g * math.log(0.9),
        -a * (1 - 0.6) ** g * math.log(0.6),
        -(1 - a) * 0.2**g * math.log(0.8),
        -(1 - a) * 0.5**g * math.log(0.5),
    ]
    assert abs(loss.item() - sum(terms) / 4) < 1e-6
    none = ScoreLoss(patches={"s": 8})([{"pos_scores_s": torch.zeros(2, 4)}], gt)
    assert none.item() == 0.0 and torch.isfinite(none)


def test_losses_on_model_outputs_backprop():
    from isegm.model import build_model

    model = build_model("mst_tiny_224").train()
    image = torch.rand(2, 4, 224, 224)
    points = torch.tensor([[[60.0, 60, 0], [-1, -1, -1]], [[100.0, 120, 0], [30, 30, 1]]])
    gt = torch.zeros(2, 1, 224, 224)
    gt[:, :, 40:140, 40:160] = 1
    out = model(image, points)
    loss = (
        NormalizedFocalLossSigmoid()(out["instances"], gt).mean()
        + TokenContrastiveLoss()(out["tokens"], gt)
        + ScoreLoss()(out["tokens"], gt)
    )
    loss.backward()
    assert torch.isfinite(loss)
    assert model.backbone.blocks[1].score.cross_mlp.fc1.weight.grad.abs().sum() > 0


def _all_grads_finite(*tensors) -> bool:
    return all(t.grad is None or bool(torch.isfinite(t.grad).all()) for t in tensors)


def test_reference_quirks_two_sample_batch_has_finite_gradients():
    """Issue 23: a batch whose second sample has no selected token on the object made the
    quirk branch's masked ``sqrt`` of an empty sum give NaN gradients (``0 · inf``)."""
    from isegm.model import build_model

    torch.manual_seed(0)
    model = build_model("mst_tiny_224").double().train()
    image = torch.rand(2, 4, 224, 224, dtype=torch.float64)
    points = torch.tensor([[[60.0, 60, 0], [-1, -1, -1]], [[100.0, 120, 0], [30, 30, 1]]],
                          dtype=torch.float64)
    gt = torch.zeros(2, 1, 224, 224, dtype=torch.float64)
    gt[0, :, 40:140, 40:160] = 1  # sample 1: no object, so no positive token anywhere
    out = model(image, points)
    loss = TokenContrastiveLoss(reference_quirks=True)(out["tokens"], gt)
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    bad = [n for n, p in model.named_parameters()
           if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, bad[:5]
    assert model.backbone.blocks[1].score.cross_mlp.fc1.weight.grad.abs().sum() > 0


def test_skipped_contrastive_terms_give_exactly_zero_gradient():
    """A sample that is skipped (no positives) contributes nothing: its tokens get gradient 0."""
    gt = torch.zeros(2, 1, 16, 16)
    gt[0, 0, :8, :] = 1
    sel = torch.rand(2, 4, 3, dtype=torch.float64, requires_grad=True)
    kernel = torch.rand(2, 1, 3, dtype=torch.float64, requires_grad=True)
    idx = torch.arange(4).expand(2, 4)
    for quirks in (False, True):
        sel.grad = kernel.grad = None
        TokenContrastiveLoss({"s": 8}, reference_quirks=quirks)(
            [_record(sel, idx, kernel)], gt).backward()
        assert torch.equal(sel.grad[1], torch.zeros_like(sel.grad[1]))
        assert torch.equal(kernel.grad[1], torch.zeros_like(kernel.grad[1]))
        assert sel.grad[0].abs().sum() > 0


def test_no_loss_gives_a_nan_gradient_on_fuzzed_selections():
    """Fuzzed token selections (no positive, no negative, dropped slots, all-ignore masks,
    tokens equal to the anchor, no click): every loss and its gradient stay finite."""
    g = torch.Generator().manual_seed(23)
    B, H = 3, 64
    for trial in range(60):
        case = trial % 6
        gt = (torch.rand(B, 1, H, H, generator=g) > 0.5).double()
        if case == 0:
            gt.zero_()  # no positive token
        elif case == 1:
            gt.fill_(1)  # no negative token
        elif case == 2:
            gt.fill_(-1)  # everything ignored
        elif case == 3:
            gt[:, :, :, : H // 2] = -1  # an ignore band
        recs, leaves = [], []
        for _ in range(2):
            rec = {}
            for s, patch in (("s", 8), ("l", 32)):
                n = (H // patch) ** 2
                k = int(torch.randint(1, n + 1, (1,), generator=g))
                sel = torch.randn(B, k, 4, generator=g, dtype=torch.float64)
                drop = torch.rand(B, k, generator=g) < (0.9 if case == 4 else 0.3)
                sel[drop] = 0  # dropped slots
                kernel = torch.randn(B, 1, 4, generator=g, dtype=torch.float64)
                if case == 5:
                    sel[:] = kernel  # every token equals the anchor: zero distances
                idx = torch.stack([torch.randperm(n, generator=g)[:k] for _ in range(B)])
                scores = torch.rand(B, n, generator=g, dtype=torch.float64)
                scores[torch.rand(B, generator=g) < 0.5] = 0  # samples without a click
                leaves += [t.requires_grad_() for t in (sel, kernel, scores)]
                rec |= {f"sel_tokens_{s}": sel, f"kernel_{s}": kernel,
                        f"idx_tokens_{s}": idx, f"pos_scores_{s}": scores}
            recs.append(rec)
        logits = torch.randn(B, 1, H, H, generator=g, dtype=torch.float64, requires_grad=True)
        leaves.append(logits)
        total = NormalizedFocalLossSigmoid()(logits, gt).mean()
        for quirks in (False, True):
            total = total + TokenContrastiveLoss(reference_quirks=quirks)(recs, gt)
        for mode in ("focal", "mse"):
            total = total + ScoreLoss(mode)(recs, gt)
        total.backward()
        assert torch.isfinite(total), (trial, case)
        assert _all_grads_finite(*leaves), (trial, case)
