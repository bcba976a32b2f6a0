"""Named architectures (a dict registry) and the builder.

Each entry maps a name to a :class:`ModelConfig`; :func:`build_model` turns a name or a config
into an :class:`ISModel`. The names follow the MST branches (SPEC §1.2-1.5).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from .config import ModelConfig, SelectionConfig
from .is_model import ISModel

__all__ = ["MODEL_CONFIGS", "get_config", "build_model", "selection_preset"]

_VIT_B = dict(embed_dim=768, depth=12, num_heads=12)
_VIT_L = dict(embed_dim=1024, depth=24, num_heads=16)

# ScoreBlock / fusion knobs per branch family (SPEC §1.2, §1.3)
_SELECTION = {
    # main: the "slim" 3s model of the seed checkpoint mst-3s-slim-448-base.pth
    "main": SelectionConfig(),
    "mst-448": SelectionConfig(
        k_divisor=8,
        score_heads=6,
        expert_hidden_ratio=4.0,
        cross_mlp_ratio=4.0,
        cross_heads=8,
        gamma_init=0.0,
        use_gamma2=False,
        use_score_mlp=True,
    ),
    "mst-224": SelectionConfig(
        score_blocks=(0, 4, 8),
        k_divisor=8,
        kernel_mode="mean",
        valid_k_clamp=False,
        score_heads=8,
        score_sr=1,
        expert_hidden_ratio=4.0,
        cross_mlp_ratio=1.0,
        score_dropout=0.0,
        cross_heads=8,
        gamma_init=0.0,
        use_gamma2=False,
        use_score_mlp=True,
        record_fused=True,
    ),
}
_SELECTION["mst-224-6s"] = dataclasses.replace(
    _SELECTION["mst-224"], score_blocks=(0, 2, 4, 6, 8, 10)
)
_SELECTION["mst-1024"] = dataclasses.replace(_SELECTION["mst-224"], score_sr=4)
_SELECTION["mst-224-large"] = dataclasses.replace(
    _SELECTION["mst-224"],
    score_blocks=(0, 8, 16),
    score_sr=4,
    use_gamma2=True,
    gamma2_init=0.0,
    use_score_mlp=False,
)
_ABLATION = dict(
    score_blocks=(0, 4, 8),
    k_divisor=8,
    kernel_mode="mean",
    valid_k_clamp=False,
    score_heads=8,
    score_sr=1,
    score_moe=False,
    cross_mlp_ratio=1.0,
    score_dropout=0.0,
    cross_heads=8,
    use_gamma2=False,
    use_score_mlp=True,
    score_module_name="score_s",
)
_SELECTION["at"] = SelectionConfig(token_mode="all_small", **_ABLATION)
_SELECTION["it"] = SelectionConfig(token_mode="small_topk", **_ABLATION)
_SELECTION["upconv"] = SelectionConfig(token_mode="upconv", **_ABLATION)


def selection_preset(name: str, **overrides) -> SelectionConfig:
    """A copy of a branch's selection knobs (``main``, ``mst-448``, ``mst-224``, ``mst-224-6s``,
    ``mst-1024``, ``mst-224-large``, ``at``, ``it``, ``upconv``)."""
    return dataclasses.replace(_SELECTION[name], **overrides)


def _mst(sel: str, img_size: int, vit: dict, neck, **kw) -> Callable[[], ModelConfig]:
    return lambda: ModelConfig(
        arch="mst",
        img_size=img_size,
        neck_out_dims=neck,
        selection=selection_preset(sel),
        **vit,
        **kw,
    )


_NECK_448 = (128, 256, 512, 1024)
_NECK_224 = (256, 256, 256, 256)
_SMALL = dict(embed_dim=192, depth=8, num_heads=3, neck_out_dims=(48, 96, 192, 384),
              head_channels=64)

MODEL_CONFIGS: dict[str, Callable[[], ModelConfig]] = {
    # the seed's model (hahamyt/mst main): weights/mst-3s-slim-448-base.pth
    "mst_main_vit_base_448": _mst("main", 448, _VIT_B, _NECK_448),
    # hahamyt/mst mst-448: +MST and +MST+CL (same architecture, CL is a training loss)
    "mst_448_vit_base_448": _mst("mst-448", 448, _VIT_B, _NECK_448),
    # 224 ablations (branches mst-224, at, it, upconv)
    "mst_224_3s_vit_base_224": _mst("mst-224", 224, _VIT_B, _NECK_224),
    "mst_224_6s_vit_base_224": _mst("mst-224-6s", 224, _VIT_B, _NECK_224),
    "mst_at_vit_base_224": _mst("at", 224, _VIT_B, _NECK_224),
    "mst_it_vit_base_224": _mst("it", 224, _VIT_B, _NECK_224),
    "mst_upconv_vit_base_224": _mst("upconv", 224, _VIT_B, _NECK_224),
    # ViT-L (branch mst-224-large; its script trains at 448 by default)
    "mst_large_vit_large_448": _mst("mst-224-large", 448, _VIT_L, (192, 384, 768, 1536)),
    # HQSeg-44K model (branch mst-1024-hqseg44k)
    "mst_1024_vit_base_1024": _mst("mst-1024", 1024, _VIT_B, _NECK_224),
    # SimpleClick plain-ViT baselines
    "simpleclick_vit_base_448": lambda: ModelConfig(arch="plainvit", img_size=448, **_VIT_B),
    "simpleclick_vit_large_448": lambda: ModelConfig(
        arch="plainvit", img_size=448, neck_out_dims=(192, 384, 768, 1536), **_VIT_L
    ),
    # the built-in default: a tiny MST trained by this project on synthetic multi-scale data
    "mst_tiny_224": lambda: ModelConfig(
        arch="mst",
        img_size=224,
        embed_dim=96,
        depth=6,
        num_heads=4,
        neck_out_dims=(32, 64, 128, 256),
        head_channels=64,
        selection=selection_preset(
            "main", score_blocks=(1, 3, 5), score_sr=1, score_heads=4, cross_heads=4, fusion_heads=2
        ),
    ),
    "plainvit_tiny_224": lambda: ModelConfig(
        arch="plainvit",
        img_size=224,
        embed_dim=96,
        depth=6,
        num_heads=4,
        neck_out_dims=(32, 64, 128, 256),
        head_channels=64,
        window_attention=False,
    ),
    # a larger default for one short GPU run at 448 (issue 10, benchmarks/gpu_train_photos448.sh):
    # width 192, depth 8, head dim 64; float32 weights 28 MB (MST) and 19 MB (plain ViT)
    "mst_small_448": lambda: ModelConfig(
        arch="mst",
        img_size=448,
        **_SMALL,
        selection=selection_preset(
            "main", score_blocks=(1, 4, 7), score_sr=2, score_heads=3, cross_heads=3, fusion_heads=3
        ),
    ),
    "plainvit_small_448": lambda: ModelConfig(
        arch="plainvit", img_size=448, window_attention=False, **_SMALL
    ),
}


def get_config(name: str, **overrides) -> ModelConfig:
    """The named architecture's config, with top-level fields overridden."""
    if name not in MODEL_CONFIGS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODEL_CONFIGS))}")
    return dataclasses.replace(MODEL_CONFIGS[name](), **overrides)


def build_model(model: str | ModelConfig, **overrides) -> ISModel:
    """Build an :class:`ISModel` from a registry name or a config (freshly initialised)."""
    cfg = (
        get_config(model, **overrides)
        if isinstance(model, str)
        else dataclasses.replace(model, **overrides)
    )
    return ISModel(cfg)
