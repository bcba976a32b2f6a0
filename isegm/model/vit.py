"""Plain ViT backbones: SimpleClick's (windowed attention) and MST's (multi-scale token selection).

Both are built on timm's ``Block`` with MAE parameter names, and both split their forward pass
into an image-only part (:meth:`embed_image`, computed once per image by the predictor) and a
click-dependent part (:meth:`forward_tokens`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from .config import ModelConfig, SelectionConfig
from .layers import CrossAttention, LayerNorm6, make_mlp
from .patch_embed import inference_pos_grids, pi_resize_kernel
from .token_selection import ScoreBlock, click_kernel, click_token_index, select_stream

__all__ = ["PatchEmbed", "PlainViT", "MSTViT", "MSTBlock"]


class PatchEmbed(nn.Module):
    """Non-overlapping patch embedding; the kernel can be resampled to other patch sizes.

    Without autograd the resampled kernels are cached until the weight changes (its version
    counter), so inference does not redo the pseudo-inverse products every forward pass.
    """

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self._kernels: dict = {}
        self._frozen: dict[int, Tensor] = {}

    def kernel(self, p: int) -> Tensor:
        w = self.proj.weight
        if p == self.patch_size:
            return w
        if torch.is_grad_enabled() and w.requires_grad:
            return pi_resize_kernel(w, (p, p))
        if torch.compiler.is_compiling():
            # a trace has no data pointers (the cache key) and ONNX no pseudo-inverse: the
            # kernel frozen before the trace (``freeze_kernels``), else computed in the graph
            return self._frozen[p] if p in self._frozen else pi_resize_kernel(w, (p, p))
        key = (p, w.data_ptr(), w._version, w.dtype, w.device)
        if key not in self._kernels:
            self._kernels = {k: v for k, v in self._kernels.items() if k[0] != p}
            self._kernels[key] = pi_resize_kernel(w.detach(), (p, p))
        return self._kernels[key]

    def freeze_kernels(self, *sizes: int) -> None:
        """Computes the kernels of ``sizes`` now, for a trace (ONNX export, compile) that
        takes them as constants of the current weights."""
        with torch.no_grad():
            self._frozen = {p: self.kernel(p).detach().clone() for p in sizes
                            if p != self.patch_size}

    def forward(self, x: Tensor, patch_size: int | None = None) -> Tensor:
        """``x [B, in, H, W]`` → tokens ``[B, (H/p)(W/p), C]`` in row-major order."""
        p = patch_size or self.patch_size
        return F.conv2d(x, self.kernel(p), self.proj.bias, stride=p).flatten(2).transpose(1, 2)


def _grid(x: Tensor, patch: int) -> tuple[int, int]:
    return x.shape[-2] // patch, x.shape[-1] // patch


class PlainViT(nn.Module):
    """SimpleClick's ViT: MAE weights, click tokens added to the patch tokens, and window
    attention (2×2 windows of 224-px size at 448) in all blocks except every ``depth/4``-th
    (6 and 12 for ViT-B), unless ``window_attention`` is False (global everywhere).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        C = cfg.embed_dim
        self.patch_embed = PatchEmbed(cfg.patch_size, 3, C)
        grid = cfg.img_size // cfg.patch_size
        self.pos_embed = nn.Parameter(torch.randn(1, grid * grid + 1, C) * 0.02)
        self.blocks = nn.Sequential(
            *[
                Block(C, cfg.num_heads, cfg.mlp_ratio, qkv_bias=cfg.qkv_bias, norm_layer=LayerNorm6)
                for _ in range(cfg.depth)
            ]
        )
        self.global_every = 6 if cfg.depth == 12 else max(cfg.depth // 4, 1)
        # how the stored pos-embed grid reaches other input sizes (``inference_pos_grids``);
        # the evaluation settings may select the original scripts' ``two-step``
        self.pos_embed_resize = "once"

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed"}

    def embed_image(self, image: Tensor) -> dict:
        """Image-only part: patch tokens plus position embeddings, ``[B, N, C]``."""
        grid = _grid(image, self.cfg.patch_size)
        (pos,) = inference_pos_grids(self.pos_embed, grid, [grid], self.pos_embed_resize)
        return {"x": self.patch_embed(image), "pos": pos, "grid": grid}

    def _windows(self, grid: tuple[int, int]) -> tuple[int, int]:
        win = 224 // self.cfg.patch_size
        return max(grid[0] // win, 1), max(grid[1] // win, 1)

    def forward_tokens(
        self, emb: dict, click_tokens: Tensor, points: Tensor
    ) -> tuple[Tensor, list]:
        x = (emb["x"] + click_tokens) + emb["pos"]
        B, N, C = x.shape
        gh, gw = emb["grid"]
        nh, nw = self._windows((gh, gw)) if self.cfg.window_attention else (1, 1)
        for i, blk in enumerate(self.blocks, start=1):
            if (nh, nw) == (1, 1) or i % self.global_every == 0:
                x = blk(x)
            else:  # attention within each window: fold the windows into the batch
                w = x.view(B, nh, gh // nh, nw, gw // nw, C).permute(0, 1, 3, 2, 4, 5)
                w = blk(w.reshape(B * nh * nw, -1, C))
                x = (
                    w.view(B, nh, nw, gh // nh, gw // nw, C)
                    .permute(0, 1, 3, 2, 4, 5)
                    .reshape(B, N, C)
                )
        return x, []


class MSTBlock(Block):
    """A ViT block preceded by MST's click-guided multi-scale token selection and fusion.

    Order (SPEC §1.3): score + select 8-px (and 32-px) tokens → fuse large into small
    (``score_l_s``, scaled by ``gamma``) → the base tokens cross-attend to the selection
    (``score_cross_attn``, optionally scaled by ``gamma2``) → optional ``score_mlp`` → the
    block's own attention and MLP.
    """

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, sel: SelectionConfig
    ) -> None:
        super().__init__(dim, num_heads, mlp_ratio, qkv_bias=qkv_bias, norm_layer=LayerNorm6)
        self.sel = sel
        if sel.token_mode == "upconv":
            self.sr_s = nn.ConvTranspose2d(dim, dim, kernel_size=2, stride=2)
            self.norm_s = nn.LayerNorm(dim)
        else:
            self.add_module(sel.score_module_name, ScoreBlock(dim, sel))
        self.norm3 = LayerNorm6(dim)
        self.norm4 = LayerNorm6(dim)
        self.score_cross_attn = CrossAttention(dim, sel.cross_heads)
        if sel.token_mode == "multiscale":
            self.norm6 = LayerNorm6(dim)
            self.norm7 = LayerNorm6(dim)
            self.score_l_s = CrossAttention(dim, sel.fusion_heads)
            self.gamma = nn.Parameter(torch.full((1, 1, dim), float(sel.gamma_init)))
        if sel.use_gamma2:
            self.gamma2 = nn.Parameter(torch.full((1, 1, dim), float(sel.gamma2_init)))
        if sel.use_score_mlp:
            self.norm5 = LayerNorm6(dim)
            self.score_mlp = make_mlp(dim, int(dim * mlp_ratio))

    def select(
        self, x_b: Tensor, streams: dict, pos_idx: Tensor, grid: tuple[int, int], first: bool
    ) -> tuple[Tensor, dict]:
        """Updates ``streams`` in place (they persist to the next selection block) and returns
        the updated base tokens and the record of this block (the training losses read it)."""
        sel = self.sel
        rec: dict = {}
        if sel.token_mode == "upconv":
            B, N, C = x_b.shape
            up = self.sr_s(x_b.transpose(1, 2).reshape(B, C, *grid)).flatten(2).transpose(1, 2)
            up = self.norm_s(up)
            streams["x_s"] = up + streams["x_s"] if first else up
            context = streams["x_s"]
            rec["sel_tokens_s"] = context
        else:
            score: ScoreBlock = getattr(self, sel.score_module_name)
            kernel, has_pos = click_kernel(x_b, pos_idx, sel.kernel_mode)
            kv = score.base_key_value(x_b, grid)
            x_s, scores_s = score(streams["x_s"], kv, kernel, has_pos, "s")
            streams["x_s"] = x_s
            rec.update(kernel_s=kernel, pos_scores_s=scores_s)
            if sel.token_mode == "all_small":
                context = x_s
                rec["sel_tokens_s"] = x_s
            else:
                sel_s = select_stream(x_s, streams["pos_s"], scores_s, sel, rec, "s")
                context = sel_s
                if sel.token_mode == "multiscale":
                    x_l, scores_l = score(streams["x_l"], kv, kernel, has_pos, "l")
                    streams["x_l"] = x_l
                    sel_l = select_stream(x_l, streams["pos_l"], scores_l, sel, rec, "l")
                    context = (
                        sel_s + self.score_l_s(self.norm6(sel_s), self.norm7(sel_l)) * self.gamma
                    )
                    rec.update(sel_tokens_l=sel_l, kernel_l=kernel, pos_scores_l=scores_l)
                rec["sel_tokens_s"] = context if sel.record_fused else sel_s
        update = self.score_cross_attn(self.norm3(x_b), self.norm4(context))
        x_b = x_b + (update * self.gamma2 if sel.use_gamma2 else update)
        if sel.use_score_mlp:
            x_b = x_b + self.score_mlp(self.norm5(x_b))
        return x_b, rec


class MSTViT(nn.Module):
    """ViT with multi-scale token selection (MST). No cls token and no final norm; every block
    attends globally over the 16-px tokens; slot 0 of ``pos_embed`` is an unused cls slot
    (kept for checkpoint compatibility).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        sel = cfg.selection
        assert sel is not None
        C = cfg.embed_dim
        self.patch_embed = PatchEmbed(cfg.patch_size, 3, C)
        grid = cfg.img_size // cfg.patch_size
        self.pos_embed = nn.Parameter(torch.randn(1, grid * grid + 1, C) * 0.02)
        self.blocks = nn.Sequential(
            *[
                MSTBlock(C, cfg.num_heads, cfg.mlp_ratio, cfg.qkv_bias, sel)
                if i in sel.score_blocks
                else Block(
                    C, cfg.num_heads, cfg.mlp_ratio, qkv_bias=cfg.qkv_bias, norm_layer=LayerNorm6
                )
                for i in range(cfg.depth)
            ]
        )
        self.pos_embed_resize = "once"  # see PlainViT

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed"}

    def embed_image(self, image: Tensor) -> dict:
        """Image-only part, computed once per image: 16-px tokens, and the 8-px and 32-px streams
        with their position embeddings (``[B, N_s|N_b|N_l, C]``)."""
        sel = self.cfg.selection
        p_s, p_b, p_l = sel.small_patch, self.cfg.patch_size, sel.large_patch
        g_s, g_b, g_l = _grid(image, p_s), _grid(image, p_b), _grid(image, p_l)
        multiscale = sel.token_mode == "multiscale"
        pos_s, pos_b, *pos_l = inference_pos_grids(
            self.pos_embed, g_b, [g_s, g_b] + ([g_l] if multiscale else []), self.pos_embed_resize
        )
        emb = {
            "x": self.patch_embed(image),
            "pos": pos_b,
            "grid": g_b,
            "x_s": self.patch_embed(image, p_s) + pos_s,
            "pos_s": pos_s,
        }
        if multiscale:
            emb.update(x_l=self.patch_embed(image, p_l) + pos_l[0], pos_l=pos_l[0])
        return emb

    def forward_tokens(
        self, emb: dict, click_tokens: Tensor, points: Tensor
    ) -> tuple[Tensor, list]:
        """Click-dependent part. Returns base tokens ``[B, N_b, C]`` and one record per
        selection block."""
        x = (emb["x"] + click_tokens) + emb["pos"]
        grid = emb["grid"]
        pos_idx = click_token_index(points[:, : points.shape[1] // 2], self.cfg.patch_size, grid[1])
        streams = {k: emb[k] for k in ("x_s", "pos_s", "x_l", "pos_l") if k in emb}
        records = []
        first = True
        for blk in self.blocks:
            if isinstance(blk, MSTBlock):
                x, rec = blk.select(x, streams, pos_idx, grid, first)
                records.append(rec)
                first = False
            x = Block.forward(blk, x)
        return x, records
