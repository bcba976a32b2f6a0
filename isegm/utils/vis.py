"""Drawing clicks and masks (training image dumps, evaluation overlays, the demo)."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np
import torch

__all__ = ["overlay_mask", "draw_clicks", "draw_training_sample", "POSITIVE_RGB", "NEGATIVE_RGB"]

POSITIVE_RGB = (0, 255, 0)
NEGATIVE_RGB = (255, 0, 0)
_MASK_RGB = np.array([255, 64, 64], dtype=np.float32)


def overlay_mask(
    image: np.ndarray,
    mask: np.ndarray,
    alpha: float = 0.5,
    color: Iterable[int] = _MASK_RGB,
    contour: bool = True,
) -> np.ndarray:
    """Blend a binary ``mask [H, W]`` over an RGB uint8 ``image`` (with its outline)."""
    out = image.astype(np.float32).copy()
    m = mask.astype(bool)
    out[m] = (1 - alpha) * out[m] + alpha * np.asarray(color, dtype=np.float32)
    out = out.clip(0, 255).astype(np.uint8)
    if contour and m.any():
        contours, _ = cv2.findContours(
            m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        cv2.drawContours(out, contours, -1, (255, 255, 255), 1)
    return out


def draw_clicks(
    image: np.ndarray, clicks: Iterable[tuple[float, float, bool]], radius: int = 4
) -> np.ndarray:
    """Draw clicks given as ``(y, x, is_positive)`` on an RGB uint8 image (copy)."""
    out = np.ascontiguousarray(image.copy())
    for y, x, positive in clicks:
        center = (int(round(x)), int(round(y)))
        cv2.circle(out, center, radius + 1, (255, 255, 255), -1, lineType=cv2.LINE_AA)
        cv2.circle(
            out,
            center,
            radius,
            POSITIVE_RGB if positive else NEGATIVE_RGB,
            -1,
            lineType=cv2.LINE_AA,
        )
    return out


def points_to_clicks(points: np.ndarray) -> list[tuple[float, float, bool]]:
    """``[2N, 3]`` points layout → ``(y, x, is_positive)`` for the valid rows."""
    n = points.shape[0] // 2
    return [
        (float(p[0]), float(p[1]), i < n) for i, p in enumerate(points) if p[0] >= 0 and p[1] >= 0
    ]


def draw_training_sample(
    image: torch.Tensor,
    points: torch.Tensor,
    gt: torch.Tensor,
    pred: torch.Tensor,
    threshold: float | None = 0.5,
) -> np.ndarray:
    """Side by side: image with clicks, ground truth, predicted probability (RGB uint8)."""
    img = (image.detach().float().cpu().permute(1, 2, 0).numpy().clip(0, 1) * 255).astype(np.uint8)
    clicks = points_to_clicks(points.detach().cpu().numpy())
    left = draw_clicks(img, clicks, radius=max(2, img.shape[0] // 100))
    gt_rgb = np.repeat(
        (gt.detach().float().cpu()[0].numpy() > 0.5).astype(np.uint8)[..., None] * 255, 3, -1
    )
    prob = pred.detach().float().cpu()[0].numpy()
    prob_rgb = cv2.applyColorMap((prob.clip(0, 1) * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)[
        ..., ::-1
    ]
    if threshold is not None:
        prob_rgb = overlay_mask(np.ascontiguousarray(prob_rgb), prob > threshold, alpha=0.0)
    return np.concatenate([left, gt_rgb, np.ascontiguousarray(prob_rgb)], axis=1)
