"""Initialising a model for training from weights that are not a model of ours: an MAE
pretraining file (the backbone only) or a SimpleClick checkpoint (every shared weight).

Both load strictly except for the listed keys that have no counterpart (``_MAE_DROPPED``) or
that the model adds (``_MST_ONLY``, left at their initialisation); ``pos_embed`` is resized to
the model's grid. Reading the files is :mod:`isegm.model.checkpoint`'s job.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from .checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    load_state_dict_strict,
    read_checkpoint,
    reference_state_dict_filter,
)
from .is_model import ISModel
from .patch_embed import resize_pos_embed_checkpoint

__all__ = ["load_mae_weights", "load_simpleclick_init"]

logger = logging.getLogger(__name__)


_MAE_DROPPED = re.compile(
    r"^(cls_token|norm\.(weight|bias)|fc_norm\.(weight|bias)|head\.(weight|bias)|mask_token)$"
)
_MST_ONLY = re.compile(
    r"^backbone\.blocks\.\d+\.(score|score_s|sr_s|norm_s|norm[34567]|"
    r"score_cross_attn|score_l_s|score_mlp|gamma2?)(\.|$)"
)


def _grid_of(model: ISModel) -> tuple[int, int]:
    g = model.cfg.img_size // model.cfg.patch_size
    return g, g


def load_mae_weights(model: ISModel, path: str | Path) -> list[str]:
    """Initialise the backbone from an MAE pretraining file (``{'model': {...}}``).

    ``pos_embed`` is resized to the model's grid (bicubic, no antialias, cls slot kept);
    ``cls_token`` and the final ``norm`` are dropped; the MST-specific parameters, neck, head and
    click embedding stay at their initialisation. Returns the backbone keys left at init.
    """
    path = str(path)
    ckpt = read_checkpoint(path)
    sd = ckpt.get("model")
    if not isinstance(sd, Mapping) or "pos_embed" not in sd:
        raise CheckpointError(
            f"{path}: not an MAE pretraining file ({{'model': {{...}}}} with pos_embed)"
        )
    sd = {f"backbone.{k}": v for k, v in sd.items() if not _MAE_DROPPED.match(k)}
    sd["backbone.pos_embed"] = resize_pos_embed_checkpoint(
        sd["backbone.pos_embed"], _grid_of(model)
    )
    sub = nn.Module()
    sub.backbone = model.backbone
    left = load_state_dict_strict(sub, sd, path, allow_missing=_MST_ONLY)
    logger.info("loaded MAE weights from %s; %d backbone tensors left at init", path, len(left))
    return left


def load_simpleclick_init(model: ISModel, path: str | Path) -> list[str]:
    """Initialise an MST model from a SimpleClick checkpoint (the 448 recipe): every shared
    weight (click embedding, backbone, neck, head) is loaded; the MST-specific parameters stay
    at init. ``pos_embed`` is resized if the image size differs. Returns the keys left at init."""
    path = str(path)
    ckpt = read_checkpoint(path)
    if ckpt.get("format") == CHECKPOINT_FORMAT:
        sd = dict(ckpt["model"])
    elif "state_dict" in ckpt:
        sd = reference_state_dict_filter(ckpt["state_dict"], model.cfg)
    else:
        raise CheckpointError(f"{path}: not an interactive-model checkpoint to initialise from")
    if "backbone.pos_embed" in sd:
        sd["backbone.pos_embed"] = resize_pos_embed_checkpoint(
            sd["backbone.pos_embed"], _grid_of(model)
        )
    left = load_state_dict_strict(model, sd, path, allow_missing=_MST_ONLY)
    logger.info("initialised from %s; %d tensors left at init", path, len(left))
    return left
