"""The original code's initialisation of the layers that training starts from scratch.

PyTorch's defaults differ (non-zero biases, uniform weights of another scale). Only the
reproducing training settings use this (``--train-settings reference``), before the pretrained
weights are loaded, so it changes no checkpoint and none of the project's own recipes.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

__all__ = ["init_as_original", "NEW_MST_LAYERS", "CONV_MODULES"]

#: MST's layers that no pretrained file holds: the score blocks, the score cross-attentions
#: and their spatial-reduction convs (``ScoreBlock`` / ``MoECrossAttention`` ``_init_weights``)
NEW_MST_LAYERS = re.compile(r"^backbone\.blocks\.\d+\.(score|score_cross_attn|score_l_s)(\.|$)")
#: the decode head's mmcv ``ConvModule`` convs (kaiming normal, fan-out, zero bias)
CONV_MODULES = re.compile(r"^head\.(convs\.\d+|fusion_conv)\.conv$")


@torch.no_grad()
def _init_new_layer(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02, a=-2.0, b=2.0)
        if module.bias is not None:
            module.bias.zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
        module.weight.normal_(0.0, math.sqrt(2.0 / (fan_out // module.groups)))
        if module.bias is not None:
            module.bias.zero_()


@torch.no_grad()
def init_as_original(model: nn.Module) -> nn.Module:
    """Initialises MST's new layers (Linear: truncated normal std 0.02, zero bias; LayerNorm
    1 / 0; the ``sr`` conv: normal std ``sqrt(2 / fan_out)``) and the head's ConvModule convs
    (kaiming normal, fan-out, ReLU gain, zero bias) as the original code does; other layers
    keep their initialisation. Draws from torch's global generator."""
    for name, module in model.named_modules():
        if NEW_MST_LAYERS.match(name):
            _init_new_layer(module)
        elif CONV_MODULES.match(name) and isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, a=0, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                module.bias.zero_()
    return model
