"""Evaluation pictures: mIoU-vs-clicks curves (matplotlib, Agg) and per-sample overlays (cv2)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from isegm.utils.vis import draw_clicks, overlay_mask

__all__ = ["plot_miou_curves", "sample_overlay", "save_rgb"]

logger = logging.getLogger(__name__)

_PRED_RGB = (255, 64, 64)
_GT_RGB = (64, 128, 255)


def plot_miou_curves(path: Path, dataset: str,
                     curves: Mapping[str, Sequence[float | None]]) -> Path:
    """One PNG with mIoU (%) after click k for each model.

    Args:
        path: output ``.png``.
        dataset: plot title.
        curves: model label -> mIoU after clicks 1..n (fractions; None entries are skipped).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    try:
        for label, values in curves.items():
            pts = [(k + 1, 100.0 * v) for k, v in enumerate(values) if v is not None]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.5, label=label)
        ax.set_title(f"{dataset}: mIoU vs number of clicks")
        ax.set_xlabel("number of clicks")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("mIoU, %")
        ax.grid(True, alpha=0.3)
        if curves:
            ax.legend(fontsize=8)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def sample_overlay(image: np.ndarray, pred_mask: np.ndarray, gt_mask: np.ndarray | None,
                   clicks: Sequence[tuple[float, float, bool]], iou: float | None = None
                   ) -> np.ndarray:
    """RGB picture of one evaluated object.

    Left: the image with the final predicted mask blended in and the clicks (positive green,
    negative red). Right (if ``gt_mask`` is given): the ground truth blended in the same way.

    Args:
        image: [H, W, 3] uint8 RGB.
        pred_mask: [H, W] bool prediction after the last click.
        gt_mask: [H, W] int ground truth (1 object, -1 ignore) or None.
        clicks: ``(y, x, is_positive)``.
        iou: written in the corner if given.
    """
    radius = max(3, int(round(min(image.shape[:2]) / 100)))
    left = draw_clicks(overlay_mask(image, pred_mask, alpha=0.5, color=_PRED_RGB),
                       clicks, radius=radius)
    if iou is not None:
        text = f"{len(clicks)} clicks  IoU {100 * iou:.1f}%"
        cv2.putText(left, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3,
                    cv2.LINE_AA)
        cv2.putText(left, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                    cv2.LINE_AA)
    if gt_mask is None:
        return left
    right = overlay_mask(image, gt_mask == 1, alpha=0.5, color=_GT_RGB)
    return np.concatenate([left, right], axis=1)


def save_rgb(path: Path, rgb: np.ndarray, quality: int = 90) -> Path:
    """Writes an RGB uint8 picture with OpenCV (JPEG or PNG by suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in (".jpg", ".jpeg") \
        else []
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params):
        logger.warning("could not write %s", path)
    return path
