"""Checkpoint round trips and one-line errors for bad files."""

from __future__ import annotations

import re

import pytest
import torch

from isegm.inference.utils import load_is_model
from isegm.model import build_model
from isegm.model.checkpoint import CheckpointError, save_checkpoint
from isegm.model.pretrained import load_mae_weights, load_simpleclick_init


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg, msg
    return msg


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("mst_tiny_224").eval()


def test_own_checkpoint_roundtrip_weights_only(tiny, tmp_path):
    path = save_checkpoint(tmp_path / "m.pth", tiny, epoch=3)
    raw = torch.load(path, weights_only=True)  # self-describing, plain data only
    assert raw["epoch"] == 3 and raw["config"]["arch"] == "mst"
    loaded = load_is_model(path, "cpu")
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    img, pts = torch.rand(1, 4, 224, 224), torch.tensor([[[100.0, 80, 0], [-1, -1, -1]]])
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(img, pts)["instances"], tiny(img, pts)["instances"], rtol=0, atol=0
        )


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError) as e:
        load_is_model(tmp_path / "nope.pth")
    assert "not found" in _one_line(e) and "nope.pth" in str(e.value)


def test_truncated_file(tiny, tmp_path):
    path = save_checkpoint(tmp_path / "m.pth", tiny)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as e:
        load_is_model(path)
    assert "m.pth" in _one_line(e) and "truncated or corrupt" in str(e.value)


def test_mae_file_given_as_model(tmp_path):
    mae = {"model": {"cls_token": torch.zeros(1, 1, 96), "pos_embed": torch.zeros(1, 197, 96)}}
    torch.save(mae, tmp_path / "mae.pth")
    with pytest.raises(CheckpointError) as e:
        load_is_model(tmp_path / "mae.pth")
    assert "MAE" in _one_line(e) and "mae.pth" in str(e.value)


def test_wrong_architecture_names_keys(tiny, tmp_path, parity_dir):
    """A SimpleClick state dict under an MST config: missing and unexpected keys are named."""
    from isegm.model.checkpoint import plain_data, read_checkpoint

    mst = read_checkpoint(parity_dir / "small_main.pth")
    sc = read_checkpoint(parity_dir / "small_simpleclick.pth")
    torch.save(
        {"state_dict": sc["state_dict"], "config": plain_data(mst["config"])},
        tmp_path / "wrong.pth",
    )
    with pytest.raises(CheckpointError) as e:
        load_is_model(tmp_path / "wrong.pth")
    msg = _one_line(e)
    assert "wrong.pth" in msg and ("missing keys" in msg or "MST checkpoint without" in msg)


def test_shape_mismatch_is_reported(tiny, tmp_path):
    path = save_checkpoint(tmp_path / "m.pth", tiny)
    raw = torch.load(path, weights_only=True)
    raw["model"]["neck.down_16.0.weight"] = torch.zeros(1, 1, 1, 1)
    raw["model"]["bogus.weight"] = torch.zeros(1)
    del raw["model"]["head.conv_seg.bias"]
    torch.save(raw, path)
    with pytest.raises(CheckpointError) as e:
        load_is_model(path)
    msg = _one_line(e)
    assert re.search(r"missing keys: head\.conv_seg\.bias", msg)
    assert "unexpected keys: bogus.weight" in msg and "neck.down_16.0.weight (1, 1, 1, 1)" in msg


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "x.pth").write_text("hello")
    with pytest.raises(CheckpointError) as e:
        load_is_model(tmp_path / "x.pth")
    assert "x.pth" in _one_line(e)


def test_ambiguous_at_it_needs_variant(tmp_path):
    model = build_model(
        "mst_at_vit_base_224",
        embed_dim=64,
        num_heads=4,
        depth=12,
        neck_out_dims=(32, 32, 32, 32),
        head_channels=32,
    )
    cfg = {
        "class": "isegm.model.is_adaptivevit_model.AdaptiveVitModel",
        "params": {
            "backbone_params": {
                "value": {"img_size": (224, 224), "embed_dim": 64, "depth": 12, "num_heads": 4}
            },
            "neck_params": {"value": {"in_dim": 64, "out_dims": [32, 32, 32, 32]}},
            "head_params": {"value": {"channels": 32, "upsample": "x1", "dropout_ratio": 0.1}},
        },
    }
    torch.save({"state_dict": model.state_dict(), "config": cfg}, tmp_path / "at.pth")
    with pytest.raises(CheckpointError) as e:
        load_is_model(tmp_path / "at.pth")
    assert "variant" in _one_line(e)
    at = load_is_model(tmp_path / "at.pth", variant="at")
    it = load_is_model(tmp_path / "at.pth", variant="it")
    assert (
        at.cfg.selection.token_mode == "all_small" and it.cfg.selection.token_mode == "small_topk"
    )


def test_mae_init_resizes_pos_embed(tmp_path):
    model = build_model("mst_tiny_224")
    C = model.cfg.embed_dim
    blocks = {
        f"blocks.{i}.{k}": v
        for i in range(model.cfg.depth)
        for k, v in build_model("plainvit_tiny_224").backbone.blocks[i].state_dict().items()
    }
    mae = {
        "cls_token": torch.zeros(1, 1, C),
        "pos_embed": torch.randn(1, 1 + 7 * 7, C),
        "patch_embed.proj.weight": torch.randn(C, 3, 16, 16),
        "patch_embed.proj.bias": torch.randn(C),
        "norm.weight": torch.ones(C),
        "norm.bias": torch.zeros(C),
        **blocks,
    }
    torch.save({"model": mae, "args": None}, tmp_path / "mae.pth")
    left = load_mae_weights(model, tmp_path / "mae.pth")
    assert model.backbone.pos_embed.shape == (1, 14 * 14 + 1, C)
    torch.testing.assert_close(
        model.backbone.patch_embed.proj.weight, mae["patch_embed.proj.weight"]
    )
    assert left and all(".score" in k or "norm" in k or "gamma" in k or "score_" in k for k in left)


def test_simpleclick_init_of_mst(parity_dir):
    """The 448 recipe: an MST model starts from SimpleClick weights; only MST-specific keys stay
    at init."""
    import dataclasses

    from isegm.model.checkpoint import config_from_reference, plain_data, read_checkpoint

    ck = read_checkpoint(parity_dir / "small_main.pth")
    cfg = config_from_reference(plain_data(ck["config"]), ck["state_dict"])
    model = build_model(dataclasses.replace(cfg))
    left = load_simpleclick_init(model, parity_dir / "small_simpleclick.pth")
    assert left and all(re.search(r"blocks\.\d+\.(score|norm[3467]|score_|gamma)", k) for k in left)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_the_first_bad_tensor(tiny, tmp_path, bad):
    """Before: the checkpoint loaded and every mask came out empty (exit code 0)."""
    model = build_model("mst_tiny_224").eval()
    model.load_state_dict(tiny.state_dict())
    names = [n for n, _ in model.named_parameters()]
    with torch.no_grad():
        dict(model.named_parameters())[names[5]].view(-1)[3] = bad
        dict(model.named_parameters())[names[-1]].fill_(bad)
    path = save_checkpoint(tmp_path / "diverged.pth", model)
    with pytest.raises(CheckpointError) as e:
        load_is_model(path)
    msg = _one_line(e)
    assert "diverged.pth" in msg and "NaN or Inf" in msg
    first = next(k for k in model.state_dict() if k in (names[5], names[-1]))
    assert f"first bad tensor: {first}" in msg
