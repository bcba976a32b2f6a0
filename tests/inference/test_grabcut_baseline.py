"""Classical GrabCut baseline: segments a simple object, follows clicks, rejects bad input."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from isegm.inference.clicker import Click, Clicker
from isegm.inference.evaluation import evaluate_sample
from isegm.inference.grabcut_baseline import GrabCutPredictor, is_grabcut
from isegm.inference.metrics import get_iou


def _two_colour_scene(height: int = 300, width: int = 500, seed: int = 0):
    """A noisy red ellipse on a noisy green-grey background, and its mask."""
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.float32)
    image[:] = (90, 120, 90)
    gt = np.zeros((height, width), np.uint8)
    cv2.ellipse(gt, (width // 2 + 30, height // 2), (110, 70), 20, 0, 360, 1, -1)
    image[gt == 1] = (200, 50, 40)
    image += rng.normal(0, 12, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), gt.astype(np.int32)


def test_one_click_segments_the_object():
    image, gt = _two_colour_scene()
    predictor = GrabCutPredictor()
    predictor.set_input_image(image)
    clicker = Clicker(gt_mask=gt)
    clicker.make_next_click(np.zeros_like(gt, dtype=bool))
    probs = predictor.get_prediction(clicker)
    assert probs.shape == gt.shape and probs.dtype == np.float32
    assert 0.0 <= probs.min() and probs.max() <= 1.0
    assert get_iou(gt, probs > 0.49) > 0.9


def test_standard_protocol_reaches_90_and_is_deterministic():
    image, gt = _two_colour_scene(seed=1)
    runs = [evaluate_sample(image, gt, GrabCutPredictor(), 0.9, max_clicks=5) for _ in range(2)]
    (clicks_a, ious_a, probs_a), (clicks_b, ious_b, probs_b) = runs
    assert ious_a[-1] >= 0.9
    assert np.array_equal(ious_a, ious_b) and np.array_equal(probs_a, probs_b)
    assert [c.coords for c in clicks_a] == [c.coords for c in clicks_b]


def test_negative_click_removes_a_wrongly_included_region():
    # a red and an orange ellipse; the user wants only the red one
    image = np.full((200, 400, 3), (90, 120, 90), np.uint8)
    cv2.ellipse(image, (110, 100), (60, 40), 0, 0, 360, (200, 50, 40), -1)
    cv2.ellipse(image, (290, 100), (60, 40), 0, 0, 360, (230, 150, 30), -1)
    predictor = GrabCutPredictor(prior_radius=1.0)  # the first guess covers both ellipses
    predictor.set_input_image(image)
    clicker = Clicker(init_clicks=[Click(True, (100, 110))])
    first = predictor.get_prediction(clicker) > 0.49
    assert first[100, 290]  # inside the prior and unlike the background: included
    clicker.add_click(Click(False, (100, 290)))
    second = predictor.get_prediction(clicker) > 0.49
    assert second[100, 110] and not second[100, 290]
    assert second[100, 70] and not second[100, 250]  # the whole orange ellipse went


def test_accepts_a_tensor_image_like_nobrs():
    image, gt = _two_colour_scene(120, 160)
    tensor = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255
    a, b = GrabCutPredictor(), GrabCutPredictor()
    a.set_input_image(image)
    b.set_input_image(tensor)
    clicker = Clicker(init_clicks=[Click(True, (60, 95))])
    assert np.array_equal(a.get_prediction(clicker), b.get_prediction(clicker))


def test_bad_input_rejected_with_one_line():
    predictor = GrabCutPredictor()
    with pytest.raises(RuntimeError, match="set_input_image"):
        predictor.get_prediction(Clicker(init_clicks=[Click(True, (1, 1))]))
    with pytest.raises(ValueError, match="uint8 RGB image"):
        predictor.set_input_image(np.zeros((20, 20), np.uint8))
    with pytest.raises(ValueError, match="uint8 RGB image"):
        predictor.set_input_image(np.zeros((20, 20, 3), np.float32))
    predictor.set_input_image(np.zeros((20, 30, 3), np.uint8))
    for coords in [(20, 5), (5, 30), (-1, 0)]:
        with pytest.raises(ValueError, match="outside the 20x30 image"):
            predictor.get_prediction(Clicker(init_clicks=[Click(True, coords)]))
    with pytest.raises(ValueError, match="bad GrabCut parameters"):
        GrabCutPredictor(iterations=0)


def test_only_negative_clicks_give_an_empty_mask():
    image, _ = _two_colour_scene(100, 120)
    predictor = GrabCutPredictor()
    predictor.set_input_image(image)
    probs = predictor.get_prediction(Clicker(init_clicks=[Click(False, (10, 10))]))
    assert not (probs > 0.49).any()


def test_checkpoint_name():
    assert is_grabcut("grabcut") and is_grabcut(" GrabCut ") and not is_grabcut("grabcut.pth")


def test_evaluate_model_checkpoint_grabcut(tmp_path, capsys):
    import json

    import evaluate_model

    code = evaluate_model.main([
        "--cpu", "--checkpoint", "grabcut", "--datasets", "SyntheticLARGE", "--limit", "2",
        "--n-clicks", "3", "--logs-path", str(tmp_path)])
    assert code == 0
    summaries = list(tmp_path.rglob("summary.json"))
    assert len(summaries) == 1
    rows = json.loads(summaries[0].read_text())["rows"]
    assert [(r["model"], r["dataset"]) for r in rows] == [("grabcut", "SyntheticLARGE")]
    assert "grabcut" in capsys.readouterr().out
