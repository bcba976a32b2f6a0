"""AdamW with layer-wise learning-rate decay, and the step schedule of the reference recipes."""

from __future__ import annotations

import logging
import re

import torch
from torch import nn

__all__ = [
    "param_groups_lrd", "reference_param_groups", "build_optimizer", "WEIGHT_DECAY_RULES",
    "OPTIMIZERS",
]

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


#: weight-decay rules of :func:`build_optimizer`
WEIGHT_DECAY_RULES = ("project", "reference")
#: optimizers of :func:`build_optimizer`: AdamW (decoupled weight decay), or Adam (weight decay
#: added to the gradient, L2), which the original SimpleClick scripts use
OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}


def reference_param_groups(
    model: nn.Module, weight_decay: float, layer_decay: float | None
) -> list[dict]:
    """The original trainer's AdamW groups (``isegm/engine/optimizer.py`` of the MST branches).

    Without layer decay: one group, every trainable parameter decayed by ``weight_decay``
    (torch's AdamW default 0.01 in the original). With layer decay: the backbone grouped by
    layer (BEiT's rule: embeddings 0, block ``i`` → ``i + 1``, the rest ``depth + 1``), 1-D
    backbone parameters and ``pos_embed`` / ``cls_token`` / ``dist_token`` undecayed; every
    neck and head parameter its own group at the full lr, decayed (1-D ones and layer-scale
    gammas too); parameters outside backbone, neck and head (the click embedding
    ``patch_embed_coords``) are in no group, so they are never trained.
    """
    model = getattr(model, "module", model)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not layer_decay:
        return [{"params": [p for _, p in trainable], "weight_decay": weight_decay,
                 "lr_scale": 1.0, "names": [n for n, _ in trainable]}]
    num_layers = len(model.backbone.blocks) + 1
    groups: dict[str, dict] = {}
    for name, p in model.backbone.named_parameters():
        if not p.requires_grad:
            continue
        no_wd = p.ndim == 1 or name in ("pos_embed", "cls_token", "dist_token")
        if name in ("cls_token", "pos_embed") or name.startswith("patch_embed"):
            lid = 0
        elif name.startswith("blocks."):
            lid = int(name.split(".")[1]) + 1
        else:
            lid = num_layers
        key = f"layer_{lid}_{'no_decay' if no_wd else 'decay'}"
        g = groups.setdefault(key, {"params": [], "names": [],
                                    "weight_decay": 0.0 if no_wd else weight_decay,
                                    "lr_scale": layer_decay ** (num_layers - lid)})
        g["params"].append(p)
        g["names"].append(f"backbone.{name}")
    out = list(groups.values())
    for part in ("neck", "head"):
        for name, p in getattr(model, part).named_parameters():
            if p.requires_grad:
                out.append({"params": [p], "names": [f"{part}.{name}"],
                            "weight_decay": weight_decay, "lr_scale": 1.0})
    return out


def build_optimizer(
    model: nn.Module,
    lr: float,
    weight_decay: float = 0.01,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    layer_decay: float | None = None,
    rule: str = "project",
    name: str = "adamw",
) -> torch.optim.Optimizer:
    """AdamW (or Adam, ``name``; see :data:`OPTIMIZERS`) over :func:`param_groups_lrd` groups
    (``rule='project'``) or the original's :func:`reference_param_groups` (``'reference'``);
    each group's lr is ``lr × lr_scale``."""
    if rule not in WEIGHT_DECAY_RULES:
        raise ValueError(f"weight decay rule must be one of {WEIGHT_DECAY_RULES}, got {rule!r}")
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {tuple(OPTIMIZERS)}, got {name!r}")
    if rule == "reference":
        groups = reference_param_groups(model, weight_decay, layer_decay)
    else:
        groups = param_groups_lrd(model, weight_decay, layer_decay)
    for g in groups:
        g["lr"] = lr * g["lr_scale"]
        g.pop("names")
    return OPTIMIZERS[name](groups, lr=lr, betas=betas, eps=eps)
