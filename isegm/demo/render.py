"""Drawing a controller snapshot: finished objects in palette colours, the object in progress
highlighted with its outline (clicks are drawn by the canvas, at a constant screen size)."""

from __future__ import annotations

import colorsys

import numpy as np

from isegm.annotation.objects import ControllerView
from isegm.utils.vis import overlay_mask

__all__ = ["CURRENT_RGB", "label_palette", "render_view"]

CURRENT_RGB = (255, 64, 64)


def label_palette(n: int) -> np.ndarray:
    """``[n + 1, 3]`` uint8 colours for labels 0..n (0 black); neighbours differ in hue."""
    colors = np.zeros((n + 1, 3), dtype=np.uint8)
    for k in range(1, n + 1):
        hue = (0.15 + 0.618034 * k) % 1.0  # golden-angle steps
        colors[k] = np.round(np.array(colorsys.hsv_to_rgb(hue, 0.65, 0.95)) * 255)
    return colors


def render_view(
    view: ControllerView, alpha: float = 0.5, threshold: float | None = None
) -> np.ndarray | None:
    """The image with the objects blended in (HxWx3 uint8), or None without an image.

    Args:
        view: controller snapshot.
        alpha: opacity of the masks.
        threshold: mask threshold for the object in progress (default the view's).
    """
    if view.image is None:
        return None
    out = view.image
    if view.finished is not None and view.object_count > 0:
        labels = view.finished
        colors = label_palette(int(labels.max())).astype(np.float32)
        m = labels > 0
        blended = out.astype(np.float32)
        blended[m] = (1 - alpha) * blended[m] + alpha * colors[labels[m]]
        out = blended.clip(0, 255).astype(np.uint8)
    if view.current_prob is not None:
        thr = view.threshold if threshold is None else threshold
        out = overlay_mask(out, view.current_prob > thr, alpha=alpha, color=CURRENT_RGB)
    return np.ascontiguousarray(out)
