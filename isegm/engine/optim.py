"""AdamW with layer-wise learning-rate decay, and the step schedule of the reference recipes."""

from __future__ import annotations

import logging
import re

import torch
from torch import nn

__all__ = ["param_groups_lrd", "build_optimizer"]

logger = logging.getLogger(__name__)


def _layer_id(name: str, num_layers: int) -> int:
    """0 for the embeddings, i+1 for backbone block i, ``num_layers`` for everything else."""
    if name.startswith(
        ("backbone.pos_embed", "backbone.patch_embed", "backbone.cls_token", "patch_embed_coords")
    ):
        return 0
    m = re.match(r"backbone\.blocks\.(\d+)\.", name)
    if m:
        return int(m.group(1)) + 1
    return num_layers


def param_groups_lrd(
    model: nn.Module, weight_decay: float, layer_decay: float | None
) -> list[dict]:
    """Parameter groups for AdamW.

    No weight decay on 1-D parameters (norms, biases, layer scales) and on position
    embeddings. With ``layer_decay``, backbone block ``i`` gets ``lr × decay^(L − i − 1)``, the
    embeddings ``decay^L`` (L = depth + 1), neck and head the full lr. Unlike the reference,
    the click embedding is trained (it is an embedding: layer 0) and the neck/head norms and
    biases get no weight decay.
    """
    model = getattr(model, "module", model)
    depth = len(model.backbone.blocks)
    num_layers = depth + 1
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_wd = (
            p.ndim <= 1
            or name.endswith(("pos_embed", "cls_token"))
            or name.rsplit(".", 1)[-1].startswith("gamma")
        )
        lid = _layer_id(name, num_layers) if layer_decay else num_layers
        scale = layer_decay ** (num_layers - lid) if layer_decay else 1.0
        key = (lid, no_wd)
        if key not in groups:
            groups[key] = {
                "params": [],
                "weight_decay": 0.0 if no_wd else weight_decay,
                "lr_scale": scale,
                "names": [],
            }
        groups[key]["params"].append(p)
        groups[key]["names"].append(name)
    return list(groups.values())


def build_optimizer(
    model: nn.Module,
    lr: float,
    weight_decay: float = 0.01,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    layer_decay: float | None = None,
) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups_lrd` groups; each group's lr is ``lr × lr_scale``."""
    groups = param_groups_lrd(model, weight_decay, layer_decay)
    for g in groups:
        g["lr"] = lr * g["lr_scale"]
        g.pop("names")
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)
