"""IoU with ignore, NoC/NoF definitions, mIoU padding."""

from __future__ import annotations

import numpy as np

from isegm.inference.metrics import (
    compute_noc_metric,
    get_iou,
    mean_iou_per_click,
    seconds_per_click,
)


def test_iou_excludes_ignore_from_both_terms() -> None:
    gt = np.array([[1, 1, 0, -1]])
    pred = np.array([[True, False, True, True]])
    assert get_iou(gt, pred) == 1 / 3  # the predicted ignore pixel is not in the union
    assert get_iou(np.zeros((2, 2), int), np.zeros((2, 2), bool)) == 1.0


def test_noc_and_nof_definitions() -> None:
    max_clicks = 5
    all_ious = [
        np.array([0.5, 0.86, 0.91], dtype=np.float32),  # NoC@85 = 2, NoC@90 = 3
        np.array([0.1, 0.2, 0.3, 0.4, 0.95], dtype=np.float32),  # reaches both at the last click
        np.array([0.1, 0.2, 0.3, 0.4, 0.5], dtype=np.float32),  # never
    ]
    noc, std, nof = compute_noc_metric(all_ious, [0.85, 0.90], max_clicks=max_clicks)
    np.testing.assert_allclose(noc, [(2 + 5 + 5) / 3, (3 + 5 + 5) / 3])
    # NoF counts NoC == max_clicks, so the sample reaching t at click 5 is a failure too.
    np.testing.assert_array_equal(nof, [2, 2])
    assert std.shape == (2,)


def test_thresholds_compare_in_float32() -> None:
    ious = [np.array([np.float32(0.9)], dtype=np.float32)]
    thrs = np.arange(0.8, 0.9 + 0.001, 0.05)  # last one is 0.9000000000000001
    noc, _, nof = compute_noc_metric(ious, thrs, max_clicks=20)
    np.testing.assert_array_equal(noc, [1, 1, 1])
    np.testing.assert_array_equal(nof, [0, 0, 0])


def test_empty_and_mean_iou_padding() -> None:
    noc, _, nof = compute_noc_metric([np.array([], np.float32)], [0.9], max_clicks=20)
    assert noc[0] == 20 and nof[0] == 1
    miou = mean_iou_per_click([np.array([0.5, 0.9]), np.array([0.2, 0.4, 0.6])], max_clicks=4)
    np.testing.assert_allclose(miou, [0.35, 0.65, 0.75, 0.75])
    assert seconds_per_click([np.ones(3), np.ones(1)], 2.0) == 0.5
