"""Plain-data model configuration.

Every architecture of the MST release (all nine branches) and the SimpleClick baseline is one
:class:`ModelConfig`. Variants differ only by the knobs below, never by copies of code
(SPEC §1.5 lists the knobs a single implementation needs). Configs are stored in our checkpoints
as plain dicts, so a checkpoint loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: how position embeddings reach another input size (:mod:`isegm.model.patch_embed`)
POS_EMBED_RESIZE_MODES = ("once", "two-step")

__all__ = ["SelectionConfig", "ModelConfig", "TOKEN_MODES", "KERNEL_MODES"]

TOKEN_MODES = ("multiscale", "small_topk", "all_small", "upconv")
KERNEL_MODES = ("attn_l2", "mean")


@dataclass
class SelectionConfig:
    """Knobs of the MST selection blocks.

    Attributes:
        score_blocks: 0-based indices of the blocks that score and select tokens.
        token_mode: ``multiscale`` (top-k of 8- and 32-px tokens, fused: MST), ``small_topk``
            (top-k of 8-px tokens only: the IT ablation), ``all_small`` (all 8-px tokens, no
            selection: AT), ``upconv`` (8-px tokens from a transposed conv of the base tokens).
        k_divisor: k = number of stream tokens // k_divisor (16 on ``main``, 8 elsewhere).
        kernel_mode: ``attn_l2`` (self-attention pooled, L2-normalised click kernel, ``main`` /
            ``mst-448``) or ``mean`` (plain mean of the clicked tokens, the 224 family).
        valid_k_clamp: zero the selected rows beyond ``clamp(#(score > thresh), k - margin, k)``.
        score_heads / score_sr / score_moe: the stream cross-attention inside the ScoreBlock
            (heads, spatial reduction of the base tokens, per-stream expert projections).
        expert_hidden_ratio / cross_mlp_ratio: hidden widths (× C) of the experts and of the
            ScoreBlock MLP.
        score_dropout: dropout of the ScoreBlock MLP and experts.
        fusion_heads / cross_heads: heads of the large→small fusion (``score_l_s``) and of the
            base→selected cross-attention (``score_cross_attn``).
        gamma_init / use_gamma2 / gamma2_init: layer scales of the fusion and of the base update.
        use_score_mlp: an extra MLP on the base tokens after the cross-attention.
        record_fused: record the fused (rather than pre-fusion) small tokens as ``sel_tokens_s``.
        score_module_name: state-dict name of the ScoreBlock (``score`` or ``score_s``).
    """

    score_blocks: tuple[int, ...] = (3, 7, 11)
    token_mode: str = "multiscale"
    small_patch: int = 8
    large_patch: int = 32
    k_divisor: int = 16
    kernel_mode: str = "attn_l2"
    valid_k_clamp: bool = True
    valid_k_thresh: float = 0.65
    valid_k_margin: int = 10
    score_heads: int = 4
    score_sr: int = 4
    score_moe: bool = True
    expert_hidden_ratio: float = 1.0
    cross_mlp_ratio: float = 1.0
    score_dropout: float = 0.01
    fusion_heads: int = 2
    cross_heads: int = 4
    gamma_init: float = 1.0
    use_gamma2: bool = True
    gamma2_init: float = 1.0
    use_score_mlp: bool = False
    record_fused: bool = False
    score_module_name: str = "score"

    def __post_init__(self) -> None:
        self.score_blocks = tuple(int(i) for i in self.score_blocks)
        if self.token_mode not in TOKEN_MODES:
            raise ValueError(f"token_mode must be one of {TOKEN_MODES}, got {self.token_mode!r}")
        if self.kernel_mode not in KERNEL_MODES:
            raise ValueError(f"kernel_mode must be one of {KERNEL_MODES}, got {self.kernel_mode!r}")


@dataclass
class ModelConfig:
    """One interactive segmentation model: backbone, click encoding, neck and head.

    ``arch`` is ``mst`` (ViT with multi-scale token selection) or ``plainvit`` (SimpleClick).
    """

    arch: str = "mst"
    img_size: int = 448
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    neck_out_dims: tuple[int, ...] = (128, 256, 512, 1024)
    head_channels: int = 256
    upsample: str = "x1"
    head_dropout: float = 0.1
    norm_radius: float = 5.0
    use_disks: bool = True
    with_prev_mask: bool = True
    window_attention: bool = True
    norm_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    norm_std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    selection: SelectionConfig | None = field(default_factory=SelectionConfig)

    def __post_init__(self) -> None:
        if self.arch not in ("mst", "plainvit"):
            raise ValueError(f"arch must be 'mst' or 'plainvit', got {self.arch!r}")
        if isinstance(self.selection, dict):
            self.selection = SelectionConfig(**self.selection)
        if self.arch == "plainvit":
            self.selection = None
        elif self.selection is None:
            raise ValueError("an 'mst' model needs a selection config")
        if self.upsample not in ("x1", "x2", "x4"):
            raise ValueError(f"upsample must be x1, x2 or x4, got {self.upsample!r}")
        self.neck_out_dims = tuple(int(d) for d in self.neck_out_dims)
        self.norm_mean = tuple(float(v) for v in self.norm_mean)
        self.norm_std = tuple(float(v) for v in self.norm_std)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, numbers, strings) for checkpoints."""
        d = dataclasses.asdict(self)
        return _lists(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        d = dict(d)
        sel = d.get("selection")
        if isinstance(sel, dict):
            sel_known = {f.name for f in dataclasses.fields(SelectionConfig)}
            bad = set(sel) - sel_known
            if bad:
                raise ValueError(f"unknown selection config keys: {sorted(bad)}")
            d["selection"] = SelectionConfig(**sel)
        return cls(**d)


def _lists(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _lists(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_lists(v) for v in obj]
    return obj
