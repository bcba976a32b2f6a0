"""Interactive-segmentation metrics: IoU, NoC / NoF, mIoU per click, seconds per click.

Definitions follow the field's reference (RITM ``compute_noc_metric``, SPEC Part II §3.5 and
``shared/protocol/README.md``) so the numbers are comparable with published tables.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = [
    "NocMetrics",
    "compute_noc_metric",
    "get_iou",
    "mean_iou_per_click",
    "seconds_per_click",
]

logger = logging.getLogger(__name__)


def get_iou(gt_mask: np.ndarray, pred_mask: np.ndarray, ignore_label: int = -1) -> float:
    """IoU of a binary prediction with the object, ignoring the ignore region.

    Args:
        gt_mask: [H, W] int, 1 object, 0 background, ``ignore_label`` excluded from both the
            intersection and the union.
        pred_mask: [H, W] bool prediction.
        ignore_label: label of the ignore region.

    Returns:
        IoU in [0, 1]; 1.0 when both the object and the prediction are empty (the reference
        returns NaN there, which then silently counts as a failure).
    """
    valid = gt_mask != ignore_label
    obj = gt_mask == 1
    pred = np.asarray(pred_mask, dtype=bool)
    intersection = np.count_nonzero(pred & obj & valid)
    union = np.count_nonzero((pred | obj) & valid)
    if union == 0:
        return 1.0
    return intersection / union


class NocMetrics(NamedTuple):
    """Per-threshold results of :func:`compute_noc_metric` (unpacks like the reference triple)."""

    noc: np.ndarray  # [T] mean number of clicks
    noc_std: np.ndarray  # [T] its standard deviation over samples
    nof: np.ndarray  # [T] int, number of failures


def _first_reach(ious: np.ndarray, thr: float, max_clicks: int) -> int:
    ious = np.asarray(ious)[:max_clicks]
    if ious.size == 0:
        return max_clicks
    # Compare in the IoU dtype: 0.9000000000000001 then behaves as float32(0.9).
    hit = ious >= np.asarray(thr, dtype=ious.dtype)
    return int(np.argmax(hit)) + 1 if hit.any() else max_clicks


def compute_noc_metric(
    all_ious: Sequence[np.ndarray], iou_thrs: Sequence[float], max_clicks: int = 20
) -> NocMetrics:
    """Number of clicks (NoC) and number of failures (NoF) per IoU threshold.

    NoC of one sample = first 1-based click index whose IoU >= t, or ``max_clicks`` if never
    reached. NoF = number of samples whose NoC equals ``max_clicks``: this is the field's
    published definition and also counts samples reaching t exactly at the last click.

    Args:
        all_ious: per-sample IoU arrays, one value per click (only the first ``max_clicks``
            are used).
        iou_thrs: T thresholds.
        max_clicks: click budget.

    Returns:
        :class:`NocMetrics` with arrays of length T.
    """
    nocs = np.array(
        [[_first_reach(ious, t, max_clicks) for ious in all_ious] for t in iou_thrs],
        dtype=np.int64,
    ).reshape(len(iou_thrs), len(all_ious))
    if nocs.shape[1] == 0:
        nan = np.full(len(iou_thrs), np.nan)
        return NocMetrics(nan, nan.copy(), np.zeros(len(iou_thrs), dtype=np.int64))
    return NocMetrics(
        noc=nocs.mean(axis=1),
        noc_std=nocs.std(axis=1),
        nof=(nocs == max_clicks).sum(axis=1),
    )


def mean_iou_per_click(all_ious: Sequence[np.ndarray], max_clicks: int = 20) -> np.ndarray:
    """mIoU after each click 1..max_clicks.

    A sample that stopped early (it reached the target IoU) is padded with its last IoU, i.e.
    assumed to keep its mask; run with a target > 1 to get true per-click values. A sample
    without any IoU counts as 0.

    Args:
        all_ious: per-sample IoU arrays.
        max_clicks: number of clicks to report.

    Returns:
        [max_clicks] float64, mean IoU over samples after click k (index k - 1).
    """
    table = np.zeros((len(all_ious), max_clicks), dtype=np.float64)
    for i, ious in enumerate(all_ious):
        ious = np.asarray(ious, dtype=np.float64)[:max_clicks]
        if ious.size:
            table[i, : ious.size] = ious
            table[i, ious.size :] = ious[-1]
    if table.shape[0] == 0:
        return np.full(max_clicks, np.nan)
    return table.mean(axis=0)


def seconds_per_click(all_ious: Sequence[np.ndarray], elapsed: float) -> float:
    """SPC: total elapsed seconds divided by the total number of clicks (reference SPC)."""
    n_clicks = sum(len(x) for x in all_ious)
    return elapsed / max(n_clicks, 1)
