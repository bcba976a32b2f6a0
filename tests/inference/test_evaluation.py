"""evaluate_sample stopping rules and evaluate_dataset iteration / error handling."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from isegm.inference.evaluation import evaluate_dataset, evaluate_sample


class OracleAfter:
    """Returns the GT minus one pixel after ``n`` clicks, an empty map before."""

    def __init__(self, gt: np.ndarray, n: int) -> None:
        self.gt, self.n, self.images = gt, n, 0

    def set_input_image(self, image: np.ndarray) -> None:
        self.images += 1

    def get_prediction(self, clicker) -> np.ndarray:
        if len(clicker) >= self.n:
            probs = (self.gt == 1).astype(np.float32)
            probs[11, 11] = 0.0  # one FN pixel left: IoU 63/64
            return probs
        return np.zeros(self.gt.shape, dtype=np.float32)


def _gt(offset: int = 0) -> np.ndarray:
    gt = np.zeros((16, 16), dtype=np.int32)
    gt[4 + offset : 12, 4:12] = 1
    return gt


def test_stops_at_target_and_respects_min_and_max_clicks() -> None:
    image = np.zeros((16, 16, 3), np.uint8)
    gt = _gt()
    clicks, ious, probs = evaluate_sample(image, gt, OracleAfter(gt, 3), max_iou_thr=0.9)
    assert len(clicks) == 3 and ious.dtype == np.float32
    np.testing.assert_array_equal(ious, np.float32([0, 0, 63 / 64]))
    assert probs.shape == gt.shape

    clicks, ious, _ = evaluate_sample(image, gt, OracleAfter(gt, 1), max_iou_thr=0.9,
                                      min_clicks=2)
    assert len(ious) == 2

    seen = []
    clicks, ious, _ = evaluate_sample(image, gt, OracleAfter(gt, 99), max_iou_thr=0.9,
                                      max_clicks=4,
                                      callback=lambda *args: seen.append(args[3]))
    assert len(ious) == 4 and seen == [0, 1, 2, 3]
    assert all(c.is_positive for c in clicks)


def test_target_above_one_stops_when_nothing_is_left_to_click() -> None:
    image = np.zeros((16, 16, 3), np.uint8)
    gt = _gt()
    clicks, ious, _ = evaluate_sample(image, gt, AnyPredictor(), max_iou_thr=1.01)
    assert len(clicks) == 1 and list(ious) == [1.0]


class Sample:
    def __init__(self, n_objects: int) -> None:
        self.image = np.zeros((16, 16, 3), np.uint8)
        self.objects_ids = list(range(n_objects))
        self.sample_id = f"s{n_objects}"

    def gt_mask(self, obj_index: int) -> np.ndarray:
        return _gt(obj_index)


class Dataset:
    dataset_samples = ["a.jpg", "broken.jpg", "c.jpg"]

    def __len__(self) -> int:
        return 3

    def get_sample(self, index: int) -> Sample:
        if index == 1:
            raise OSError("cannot read image")
        return Sample(2 if index == 2 else 1)


class AnyPredictor:
    def set_input_image(self, image: np.ndarray) -> None:
        self.shape = image.shape[:2]

    def get_prediction(self, clicker) -> np.ndarray:
        return (clicker.gt_mask == 1).astype(np.float32)


def test_evaluate_dataset_yields_every_object_and_survives_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        results = list(evaluate_dataset(Dataset(), AnyPredictor(), max_iou_thr=0.9))
    assert [r.index for r in results] == [0, 1, 2]
    assert results[1].error is not None and "broken.jpg" in results[1].error
    assert "broken.jpg" in caplog.text
    assert len(results[0].ious) == 1 and len(results[2].ious) == 2
    assert results[2].sample_id == "s2" and results[2].num_clicks == 2
    assert all(r.elapsed >= 0 for r in results)

    resumed = list(evaluate_dataset(Dataset(), AnyPredictor(), indices=[2], max_iou_thr=0.9,
                                    clicker_mode="random-top50", seed=0))
    assert [r.index for r in resumed] == [2]
