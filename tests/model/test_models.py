"""Model tests in timm's manner, for every registered architecture at a small width:
output shapes, finite values, a gradient for every parameter, fused (SDPA) == explicit
attention, float32 ≈ float64, autocast runs."""

from __future__ import annotations

import pytest
import torch

from isegm.model import MODEL_CONFIGS, build_model

SIZE = 128


def _small(name, size=SIZE):
    torch.manual_seed(0)
    kw = dict(
        embed_dim=48, num_heads=4, neck_out_dims=(8, 16, 16, 32), head_channels=16, img_size=size
    )
    return build_model(name, **kw)


def _inputs(batch=2, dtype=torch.float32, size=SIZE):
    g = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 4, size, size, generator=g, dtype=dtype)
    # sample 0: 2 positive + 1 negative; sample 1: no positive click at all (zero kernel path)
    points = torch.tensor(
        [
            [[40, 50, 0], [90, 20, 2], [70, 100, 1], [-1, -1, -1]],  # noqa: E501
            [[-1, -1, -1], [-1, -1, -1], [10, 10, 0], [-1, -1, -1]],
        ],
        dtype=dtype,
    )
    return image, points[:batch]


@pytest.mark.parametrize("name", sorted(MODEL_CONFIGS))
def test_forward_shapes_and_finite(name):
    model = _small(name).eval()
    image, points = _inputs()
    with torch.no_grad():
        out = model(image, points)
    assert out["instances"].shape == (2, 1, SIZE, SIZE)
    assert torch.isfinite(out["instances"]).all()
    sel = model.cfg.selection
    assert len(out["tokens"]) == (len(sel.score_blocks) if sel else 0)
    for rec in out["tokens"]:
        if "pos_scores_s" in rec:  # no positive click → zero scores
            assert torch.all(rec["pos_scores_s"][1] == 0)


@pytest.mark.parametrize("name", sorted(MODEL_CONFIGS))
def test_every_parameter_gets_gradient(name):
    # 256 px: at least 2 selected 32-px tokens (with one key, attention ignores its query)
    model = _small(name, size=256).train()
    if model.cfg.selection is not None:  # keep every top-k row (untrained scores are ~0.5)
        model.cfg.selection.valid_k_thresh = 0.0
    with (
        torch.no_grad()
    ):  # zero-initialised layer scales (gamma_init=0) would block the fusion path
        for n, p in model.named_parameters():
            if n.rsplit(".", 1)[-1].startswith("gamma"):
                p.fill_(0.5)
    image, points = _inputs(size=256)
    out = model(image, points)
    loss = out["instances"].square().mean()
    for rec in out["tokens"]:  # the token losses reach the stream tokens too
        loss = loss + sum(v.float().mean() for k, v in rec.items() if k.startswith("sel_tokens"))
    loss.backward()
    missing = [
        n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
    ]
    assert not missing, missing
    zero = [n for n, p in model.named_parameters() if p.grad.abs().sum() == 0]
    assert not zero, zero


def _set_fused(model, fused):
    for m in model.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = fused


@pytest.mark.parametrize("name", sorted(MODEL_CONFIGS))
def test_sdpa_equals_explicit_attention(name):
    model = _small(name).eval().double()
    image, points = _inputs(dtype=torch.float64)
    with torch.no_grad():
        _set_fused(model, True)
        fused = model(image, points)
        _set_fused(model, False)
        explicit = model(image, points)
    torch.testing.assert_close(fused["instances"], explicit["instances"], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", sorted(MODEL_CONFIGS))
def test_float32_matches_float64(name):
    model = _small(name).eval()
    image, points = _inputs()
    with torch.no_grad():
        out32 = model(image, points)["instances"]
        out64 = model.double()(image.double(), points.double())["instances"]
    torch.testing.assert_close(out32.double(), out64, rtol=1e-4, atol=1e-4)


def test_autocast_bfloat16_runs():
    model = _small("mst_main_vit_base_448").eval()
    image, points = _inputs()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(image, points)["instances"]
    assert torch.isfinite(out).all()


def test_batch_samples_are_independent():
    """Samples do not interact: a batch equals the samples run one at a time."""
    model = _small("mst_448_vit_base_448").eval().double()
    image, points = _inputs(dtype=torch.float64)
    with torch.no_grad():
        both = model(image, points)["instances"]
        one = model(image[:1], points[:1])["instances"]
    torch.testing.assert_close(both[:1], one, rtol=1e-10, atol=1e-12)


def test_encode_once_equals_full_forward():
    model = _small("mst_main_vit_base_448").eval()
    image, points = _inputs()
    with torch.no_grad():
        emb = model.encode_image(image[:, :3])
        split = model.forward_embedded(emb, image[:, 3:], points)["instances"]
        full = model(image, points)["instances"]
    torch.testing.assert_close(split, full, rtol=0, atol=0)


def test_bad_input_size_is_reported():
    model = _small("mst_main_vit_base_448").eval()
    with pytest.raises(ValueError, match="multiple of 32"):
        model(torch.rand(1, 4, 100, 128), torch.full((1, 2, 3), -1.0))
