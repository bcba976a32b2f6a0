"""Our models reproduce the reference implementations' outputs (../shared/parity).

Tolerances (float64 model vs float64 reference): rtol 1e-7, atol 1e-9, as the parity README
recommends; measured differences are ~1e-14 (summation-order noise), far below the smallest
top-k margins (1.4e-9), so token indices and ``valid_k`` are compared exactly.
"""

from __future__ import annotations

import sys

import pytest
import torch

from isegm.inference.utils import load_is_model
from isegm.model.checkpoint import model_from_reference, read_checkpoint

pytestmark = pytest.mark.parity
BRANCHES = ["main", "mst-448", "simpleclick"]


@pytest.fixture(scope="module")
def inputs(parity_dir):
    return torch.load(parity_dir / "inputs.pt", weights_only=True)


def _run(model, inputs, dtype):
    image = inputs["image_u8"].to(dtype) / 255
    with torch.no_grad():
        return model(image, inputs["points"].to(dtype))


@pytest.mark.parametrize("branch", BRANCHES)
def test_small_checkpoint_float64(branch, parity_dir, inputs):
    model = load_is_model(parity_dir / f"small_{branch}.pth", "cpu")
    assert not model.training
    io = torch.load(parity_dir / f"small_{branch}_io.pt", weights_only=True)
    ref = io["float64"]
    out = _run(model.double(), inputs, torch.float64)
    close = dict(rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(out["instances"], ref["instances"], **close)
    torch.testing.assert_close(out["instances_lowres"], ref["instances_lowres"], **close)
    torch.testing.assert_close(out["backbone_features"], ref["backbone_features"], **close)
    assert len(out["tokens"]) == len(ref.get("tokens", []))
    for got, want in zip(out["tokens"], ref.get("tokens", [])):
        for key, value in want.items():
            if key.startswith(("idx_", "valid_k")):
                assert torch.equal(got[key].to(value.dtype), value), key
            else:
                torch.testing.assert_close(got[key], value, **close, msg=key)


@pytest.mark.parametrize("branch", BRANCHES)
def test_small_checkpoint_float32(branch, parity_dir, inputs):
    """float32 against the float64 reference, at the README's float32 tolerance."""
    model = load_is_model(parity_dir / f"small_{branch}.pth", "cpu")
    ref = torch.load(parity_dir / f"small_{branch}_io.pt", weights_only=True)["float64"]
    out = _run(model, inputs, torch.float32)
    torch.testing.assert_close(out["instances"].double(), ref["instances"], rtol=0, atol=1e-4)
    for got, want in zip(out["tokens"], ref.get("tokens", [])):
        for s in ("s", "l"):  # index sets of the kept rows agree even if near-ties swap order
            for b in range(want[f"idx_tokens_{s}"].shape[0]):
                n = int(want[f"valid_k_{s}"][b])
                assert set(got[f"idx_tokens_{s}"][b, :n].tolist()) == set(
                    want[f"idx_tokens_{s}"][b, :n].tolist()
                )


def _fill(parity_dir, branch):
    sys.path.insert(0, str(parity_dir))
    try:
        from fill import fill_state_dict, read_keys_tsv
    finally:
        sys.path.remove(str(parity_dir))
    return fill_state_dict(read_keys_tsv(parity_dir / f"vitb_{branch}_keys.tsv"))


@pytest.mark.slow
@pytest.mark.parametrize("branch", BRANCHES)
def test_vitb_config_builds_and_loads_strictly(branch, parity_dir, inputs):
    """The published ViT-B 448 config + the fill.py weights: strict load, and a forward pass of
    the documented magnitude (std ~0.01, |max| ~0.055) in float64."""
    config = read_checkpoint(parity_dir / f"vitb_{branch}_config.pt")
    sd = _fill(parity_dir, branch)
    model = model_from_reference({"state_dict": sd, "config": config}, f"vitb_{branch}").eval()
    assert model.cfg.embed_dim == 768 and model.cfg.img_size == 448
    assert next(model.parameters()).dtype == torch.float64  # float64 weights stay float64
    n_ref = sum(v.numel() for v in sd.values())
    n_unused = sum(
        v.numel()
        for k, v in sd.items()
        if k.startswith(
            ("backbone.cls_token", "backbone.fc_norm", "backbone.head.", "head.up_conv")
        )
    )
    assert sum(p.numel() for p in model.parameters()) == n_ref - n_unused
    image = inputs["image_u8"][:1].double() / 255
    with torch.no_grad():
        out = model(image, inputs["points"][:1].double())["instances"]
    assert out.shape == (1, 1, 448, 448) and torch.isfinite(out).all()
    assert 0.002 < out.std().item() < 0.05 and out.abs().max().item() < 0.2
