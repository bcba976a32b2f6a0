"""The standard click protocol reproduces the shared GrabCut fixture exactly.

The fake predictor is the one defined in ``shared/protocol/README.md``; GrabCut is read directly
with OpenCV so this test does not depend on ``isegm.data``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from isegm.inference.clicker import Clicker
from isegm.inference.evaluation import evaluate_sample
from isegm.inference.metrics import compute_noc_metric


def shared_dir() -> Path:
    env = os.environ.get("ISEGM_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".." / "shared"


FIXTURE = shared_dir() / "protocol" / "grabcut_disk_protocol.json"
GRABCUT = shared_dir() / "datasets" / "GrabCut"

pytestmark = pytest.mark.skipif(
    not FIXTURE.is_file() or not GRABCUT.is_dir(),
    reason="shared protocol fixture or GrabCut not found (set ISEGM_SHARED)",
)


def load_grabcut(name: str) -> tuple[np.ndarray, np.ndarray]:
    """RGB image and int GT (1 object, 0 background, -1 ignore) of one GrabCut image."""
    bgr = cv2.imread(str(GRABCUT / "data_GT" / name), cv2.IMREAD_COLOR)
    assert bgr is not None, name
    raw = cv2.imread(str(GRABCUT / "boundary_GT" / (Path(name).stem + ".bmp")),
                     cv2.IMREAD_GRAYSCALE)
    assert raw is not None, name
    gt = np.zeros(raw.shape, dtype=np.int32)
    gt[raw > 128] = 1
    gt[raw == 128] = -1
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), gt


class DiskPredictor:
    """The protocol README's deterministic fake predictor (it knows the GT)."""

    def __init__(self, gt: np.ndarray, frac: float = 0.05) -> None:
        self.gt = gt
        h, w = gt.shape
        self.r = max(5, round(frac * min(h, w)))
        self.yy, self.xx = np.mgrid[0:h, 0:w]

    def set_input_image(self, image: np.ndarray) -> None:
        assert image.shape[:2] == self.gt.shape

    def _disks(self, centres: list[tuple[float, float]], radius: int) -> np.ndarray:
        out = np.zeros(self.gt.shape, dtype=bool)
        for cy, cx in centres:
            out |= (self.yy - cy) ** 2 + (self.xx - cx) ** 2 <= radius**2
        return out

    def get_prediction(self, clicker: Clicker) -> np.ndarray:
        clicks = clicker.get_clicks()
        pos = [c.coords for c in clicks if c.is_positive]
        neg = [c.coords for c in clicks if not c.is_positive]
        r = self.r
        prob = ((self.gt == 1) & self._disks(pos, 4 * r)) | (
            self._disks(pos, 2 * r) & ~self._disks(neg, 2 * r)
        )
        return prob.astype(np.float32)


def test_grabcut_protocol_fixture() -> None:
    fixture = json.loads(FIXTURE.read_text())
    assert fixture["frac"] == 0.05
    samples = fixture["samples"]
    assert len(samples) == fixture["summary"]["n"] == 50

    all_ious = []
    for expected in samples:
        image, gt = load_grabcut(expected["image"])
        clicks, ious, _ = evaluate_sample(image, gt, DiskPredictor(gt, fixture["frac"]),
                                          max_iou_thr=0.90, pred_thr=0.49, min_clicks=1,
                                          max_clicks=20)
        got_clicks = [[int(c.coords[0]), int(c.coords[1]), bool(c.is_positive)] for c in clicks]
        assert got_clicks == [list(c) for c in expected["clicks"]], expected["image"]
        assert ious.dtype == np.float32
        np.testing.assert_array_equal(ious, np.asarray(expected["ious"], dtype=np.float32),
                                      err_msg=expected["image"])
        all_ious.append(ious)

    thrs = [0.85, 0.90]
    noc, _, nof = compute_noc_metric(all_ious, thrs, max_clicks=20)
    summary = fixture["summary"]
    assert round(float(noc[0]), 2) == summary["NoC@85"] == 4.92
    assert round(float(noc[1]), 2) == summary["NoC@90"] == 6.72
    assert int(nof[0]) == summary["NoF@85"] == 0
    assert int(nof[1]) == summary["NoF@90"] == 0
