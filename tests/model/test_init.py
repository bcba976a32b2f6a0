"""The original's initialisation of the layers trained from scratch (issue 23): only under the
reproducing settings, so checkpoints and the project's recipes are unaffected."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import torch
from torch import nn

from isegm.engine.recipes import Recipe
from isegm.engine.trainer import LossConfig, TrainConfig
from isegm.model import build_model
from isegm.model.build import selection_preset
from isegm.model.init import CONV_MODULES, NEW_MST_LAYERS, init_as_original


def _model():
    sel = selection_preset("mst-448", score_sr=4)  # with the spatial-reduction conv
    return build_model("mst_tiny_224", embed_dim=192, num_heads=3, selection=sel)


def _kinds(model: nn.Module) -> dict[str, list[torch.Tensor]]:
    out: dict[str, list[torch.Tensor]] = {"linear_w": [], "linear_b": [], "sr": [], "head": []}
    for name, m in model.named_modules():
        if NEW_MST_LAYERS.match(name) and isinstance(m, nn.Linear):
            out["linear_w"].append(m.weight.detach().flatten())
            if m.bias is not None:
                out["linear_b"].append(m.bias.detach().flatten())
        elif NEW_MST_LAYERS.match(name) and isinstance(m, nn.Conv2d):
            out["sr"].append(m.weight.detach().flatten() / math.sqrt(2.0 / (16 * m.out_channels)))
        elif CONV_MODULES.match(name):
            out["head"].append(m.weight.detach().flatten() / math.sqrt(2.0 / m.out_channels))
            out["linear_b"].append(m.bias.detach().flatten())
    return out


def test_new_layers_follow_the_original_distributions():
    torch.manual_seed(0)
    model = init_as_original(_model())
    kinds = _kinds(model)
    assert kinds["sr"] and kinds["head"] and kinds["linear_w"]
    w = torch.cat(kinds["linear_w"])
    assert abs(w.std().item() - 0.02) < 0.001 and abs(w.mean().item()) < 0.0005
    assert w.abs().max() < 0.02 * 6  # truncated normal: no wild outliers
    assert torch.count_nonzero(torch.cat(kinds["linear_b"])) == 0
    sr = torch.cat(kinds["sr"])  # normalised by sqrt(2 / fan_out): std 1
    assert abs(sr.std().item() - 1) < 0.05 and abs(sr.mean().item()) < 0.05
    head = torch.cat(kinds["head"])  # kaiming normal, fan-out: std sqrt(2 / out)
    assert abs(head.std().item() - 1) < 0.05 and abs(head.mean().item()) < 0.05
    # the ViT-B figures of the issue: sr 768 channels, kernel 4: std 0.0128; head out 256: 0.088
    assert math.isclose(math.sqrt(2 / (16 * 768)), 0.0128, rel_tol=0.01)
    assert math.isclose(math.sqrt(2 / 256), 0.088, rel_tol=0.01)


def test_only_new_layers_change():
    torch.manual_seed(0)
    plain = _model()
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    init_as_original(plain)
    changed = {k for k, v in plain.state_dict().items() if not torch.equal(v, before[k])}
    assert changed
    for key in changed:
        module = key.rsplit(".", 1)[0]
        assert NEW_MST_LAYERS.match(module) or CONV_MODULES.match(module), key
    assert not any(k.startswith(("backbone.blocks.0.attn", "neck.", "patch_embed")) for k in changed)


def _recipe(settings: str) -> Recipe:
    return Recipe("mst_tiny_224", 224, None, {}, -1, TrainConfig(), LossConfig(),
                  settings=settings)


def test_reference_recipes_init_as_the_original_project_recipes_do_not():
    cfg = SimpleNamespace(img_size=None, train_settings=None)
    torch.manual_seed(0)
    project = _recipe("project").init_model(cfg)
    torch.manual_seed(0)
    reference = _recipe("reference").init_model(cfg)
    head = "head.fusion_conv.conv.bias"
    assert torch.count_nonzero(project.state_dict()[head]) > 0  # PyTorch's default
    assert torch.count_nonzero(reference.state_dict()[head]) == 0
    # and the project's recipes build the same model as before, draw for draw
    torch.manual_seed(0)
    direct = build_model("mst_tiny_224")
    assert all(torch.equal(v, direct.state_dict()[k]) for k, v in project.state_dict().items())
    cfg.train_settings = "project"
    torch.manual_seed(0)
    overridden = _recipe("reference").init_model(cfg)
    assert all(torch.equal(v, direct.state_dict()[k]) for k, v in overridden.state_dict().items())
    assert re.match(NEW_MST_LAYERS, "backbone.blocks.3.score_l_s.q")
