"""The interactive segmentation model: image + previous mask + clicks → mask logits.

Parts are injected (SAM style): a backbone (:class:`~isegm.model.vit.MSTViT` or
:class:`~isegm.model.vit.PlainViT`), the click-map patch embedding, a SimpleFPN neck and a
head. The forward pass is split so that a predictor can run the image-only part once per image
(:meth:`encode_image`) and only the click-dependent part per click (:meth:`forward_embedded`).
Clicks are fused into the tokens before the first block, so unlike SAM every block still runs
per click; what is saved is the patch embedding at three scales and their position embeddings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .click_maps import disk_maps
from .config import ModelConfig
from .head import SegHead
from .neck import SimpleFPN
from .vit import MSTViT, PatchEmbed, PlainViT

__all__ = ["ISModel", "ImageEmbedding"]

ImageEmbedding = dict


class ISModel(nn.Module):
    """Interactive segmentation network.

    ``model(image, points)``:

    Args:
        image: ``[B, 4, H, W]`` float in [0, 1]: RGB (not normalised; normalisation happens
            here) and the previous mask probability as channel 3. H and W must be multiples of
            the largest patch size (32 for MST, 16 for the plain ViT).
        points: ``[B, 2N, 3]`` clicks ``(y, x, click_index)`` in pixels of ``image``; positive
            clicks in rows ``0..N-1``, negative in ``N..2N-1``, padding rows ``(-1, -1, -1)``.

    Returns:
        dict with ``instances`` ``[B, 1, H, W]`` logits, ``instances_lowres`` (the head output
        before the final upsampling), ``backbone_features`` ``[B, N_b, C]`` and ``tokens`` (one
        record per MST selection block: selected tokens, indices, kernels and scores, which the
        contrastive and score losses use).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.with_prev_mask = cfg.with_prev_mask
        self.backbone = MSTViT(cfg) if cfg.arch == "mst" else PlainViT(cfg)
        self.neck = SimpleFPN(cfg.embed_dim, cfg.neck_out_dims)
        channels = {
            "x1": cfg.head_channels,
            "x2": cfg.head_channels // 2,
            "x4": cfg.head_channels // 4,
        }[cfg.upsample]
        self.head = SegHead(cfg.neck_out_dims, channels, cfg.upsample, cfg.head_dropout)
        self.patch_embed_coords = PatchEmbed(
            cfg.patch_size, 3 if cfg.with_prev_mask else 2, cfg.embed_dim
        )
        # float32 constants, as the reference stores them: a float64 model then matches the
        # float64 reference outputs to 1e-13 (parity README)
        self.register_buffer(
            "pixel_mean",
            torch.tensor(cfg.norm_mean, dtype=torch.float32).view(1, 3, 1, 1),
            persistent=False,
        )
        self.register_buffer(
            "pixel_std",
            torch.tensor(cfg.norm_std, dtype=torch.float32).view(1, 3, 1, 1),
            persistent=False,
        )

    def _apply(self, fn, recurse=True):
        # .to(dtype)/.half()/.double() must not round the normalisation constants: rebuild them
        # as float32 on the new device (normalize() casts them to the input dtype).
        super()._apply(fn, recurse)
        device = self.backbone.pos_embed.device
        for name, values in (("pixel_mean", self.cfg.norm_mean), ("pixel_std", self.cfg.norm_std)):
            setattr(
                self,
                name,
                torch.tensor(values, dtype=torch.float32, device=device).view(1, 3, 1, 1),
            )
        return self

    @property
    def device(self) -> torch.device:
        return self.backbone.pos_embed.device

    @property
    def min_size_multiple(self) -> int:
        """Input height and width must be multiples of this."""
        sel = self.cfg.selection
        sizes = [self.cfg.patch_size]
        if sel is not None:
            sizes += [sel.small_patch, sel.large_patch]
        return max(sizes)

    def normalize(self, rgb: Tensor) -> Tensor:
        return (rgb - self.pixel_mean.to(rgb.dtype)) / self.pixel_std.to(rgb.dtype)

    def encode_image(self, rgb: Tensor) -> ImageEmbedding:
        """Click-independent part of the forward pass (cacheable per image).

        Args:
            rgb: ``[B, 3, H, W]`` float in [0, 1].
        """
        H, W = rgb.shape[-2:]
        m = self.min_size_multiple
        if H % m or W % m:
            raise ValueError(f"input size {H}x{W} must be a multiple of {m} for this model")
        emb = self.backbone.embed_image(self.normalize(rgb))
        emb["size"] = (H, W)
        return emb

    def forward_embedded(
        self, emb: ImageEmbedding, prev_mask: Tensor | None, points: Tensor
    ) -> dict:
        """Click-dependent part: click maps → tokens → blocks → neck → head → upsampling."""
        H, W = emb["size"]
        maps = disk_maps(points, H, W, self.cfg.norm_radius).to(emb["x"].dtype)
        if self.with_prev_mask:
            if prev_mask is None:
                prev_mask = maps.new_zeros(maps.shape[0], 1, H, W)
            maps = torch.cat([prev_mask.to(maps.dtype), maps], dim=1)
        click_tokens = self.patch_embed_coords(maps)
        feats, records = self.backbone.forward_tokens(emb, click_tokens, points)
        B, N, C = feats.shape
        gh, gw = emb["grid"]
        fmap = feats.transpose(1, 2).reshape(B, C, gh, gw)
        lowres = self.head(self.neck(fmap))
        instances = F.interpolate(lowres, size=(H, W), mode="bilinear", align_corners=True)
        return {
            "instances": instances,
            "instances_lowres": lowres,
            "backbone_features": feats,
            "tokens": records,
        }

    def forward(self, image: Tensor, points: Tensor) -> dict:
        if image.shape[1] != (4 if self.with_prev_mask else 3):
            raise ValueError(
                f"expected image [B, {4 if self.with_prev_mask else 3}, H, W], "
                f"got {tuple(image.shape)}"
            )
        prev = image[:, 3:4] if self.with_prev_mask else None
        return self.forward_embedded(self.encode_image(image[:, :3]), prev, points)
