"""Test-time transforms: flip inverse, ZoomIn crop/paste geometry and crop reuse."""

from __future__ import annotations

import pytest
import torch

from isegm.inference.clicker import Click
from isegm.inference.transforms import AddHorizontalFlip, LimitLongestSide, SigmoidForPred, ZoomIn
from isegm.inference.transforms.zoom_in import bbox_iou, expand_bbox, map_clicks_to_crop


def _ramp(h: int, w: int, c: int = 4) -> torch.Tensor:
    """[1, c, h, w] image, linear in y and x: bilinear resizing maps it exactly."""
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing="ij")
    return torch.stack([yy + 2 * xx + k for k in range(c)]).unsqueeze(0)


def test_flip_round_trip_and_click_mirror() -> None:
    flip = AddHorizontalFlip()
    image = torch.rand(1, 4, 5, 7)
    out, clicks = flip.transform(image, [[Click(True, (1, 2), 0)]])
    assert out.shape == (2, 4, 5, 7)
    assert clicks[1][0].coords == (1, 7 - 2 - 1)
    torch.testing.assert_close(out[1, :, :, 4], image[0, :, :, 2])
    logits = out[:, :1]  # an equivariant "net": the inverse gives back the input channel
    torch.testing.assert_close(flip.inv_transform(logits), image[:, :1])
    torch.testing.assert_close(SigmoidForPred().inv_transform(torch.zeros(1)), torch.tensor([0.5]))


def test_bbox_helpers() -> None:
    assert expand_bbox((10, 19, 0, 9), 1.4, 0) == (8, 22, -2, 12)  # round half to even
    assert expand_bbox((5, 5, 5, 5), 1.4, 20) == (-5, 15, -5, 15)
    assert bbox_iou((0, 9, 0, 9), (0, 9, 0, 9)) == 1.0
    assert bbox_iou((0, 9, 0, 9), (10, 19, 0, 9)) == 0.0


def test_zoom_in_first_click_whole_image_then_crop() -> None:
    zoom = ZoomIn(target_size=(16, 16), min_crop_size=4)
    image = _ramp(40, 60)
    clicks = [Click(True, (20.0, 30.0), 0)]
    out, tclicks = zoom.transform(image, [clicks])
    # No prediction yet: ROI = the whole image, resized to the (non-square) target.
    assert zoom.object_roi == (0, 39, 0, 59) and zoom.image_changed
    assert out.shape == (1, 4, 16, 16)
    assert tclicks[0][0].coords == pytest.approx((16 * 20 / 40, 16 * 30 / 60))

    # Feed back a prediction: a blob at rows 18..22, cols 26..33.
    probs = torch.zeros(1, 1, 16, 16)
    full = torch.zeros(1, 1, 40, 60)
    full[..., 18:23, 26:34] = 1.0
    zoom.inv_transform(probs)  # geometry of the first call: pasted over the whole image
    zoom.set_state((zoom._input_size, full, zoom._object_roi, zoom._active_roi, True, False))

    out, tclicks = zoom.transform(image, [clicks])
    roi = zoom.object_roi
    assert roi == (16, 24, 24, 35)  # box (18, 22, 26, 33) expanded x1.4 around its centre
    assert zoom.image_changed
    torch.testing.assert_close(
        out, torch.nn.functional.interpolate(image[..., 16:25, 24:36], size=(16, 16),
                                             mode="bilinear", align_corners=True))
    y, x = tclicks[0][0].coords
    assert (y, x) == pytest.approx((16 * (20 - 16) / 9, 16 * (30 - 24) / 12))

    # Paste back: an output equal to the crop's channel 0 reproduces the image inside the ROI
    # (ramps survive bilinear down/up-sampling) and zeros outside.
    back = zoom.inv_transform(out[:, :1])
    assert back.shape == (1, 1, 40, 60)
    torch.testing.assert_close(back[..., 16:25, 24:36], image[:, :1, 16:25, 24:36])
    assert back[..., :16, :].abs().sum() == 0 and back[..., :, 36:].abs().sum() == 0


def test_zoom_in_keeps_crop_until_click_leaves_it() -> None:
    zoom = ZoomIn(target_size=32, min_crop_size=4)
    image = torch.rand(1, 4, 64, 64)
    zoom.transform(image, [[Click(True, (20, 20), 0)]])
    full = torch.zeros(1, 1, 64, 64)
    full[..., 15:26, 15:26] = 1.0
    zoom.inv_transform(torch.zeros(1, 1, 32, 32))
    zoom._prev_probs = full

    c1 = [Click(True, (20, 20), 0), Click(False, (22, 22), 1)]
    out, _ = zoom.transform(image, [c1])
    roi = zoom.object_roi
    assert zoom.image_changed and out.shape == (1, 4, 32, 32)  # int target: longest side
    out2, _ = zoom.transform(image, [c1])
    assert zoom.object_roi == roi and not zoom.image_changed  # same crop: embedding reusable

    far = c1 + [Click(True, (60, 60), 2)]
    _, tclicks = zoom.transform(image, [far])
    assert zoom.object_roi != roi and zoom.image_changed
    assert zoom.object_roi[1] >= 60 and zoom.object_roi[3] >= 60


def test_zoom_in_outside_clicks_kept_by_default_dropped_on_request() -> None:
    clicks = [Click(True, (5, 5), 0), Click(False, (50, 2), 1)]
    box = (0, 19, 0, 19)
    kept = map_clicks_to_crop(clicks, box, (40, 40))
    assert [c.coords for c in kept] == [(10.0, 10.0), (100.0, 4.0)]
    dropped = map_clicks_to_crop(clicks, box, (40, 40), drop_outside=True)
    assert [c.indx for c in dropped] == [0]


def test_zoom_in_state_round_trip() -> None:
    zoom = ZoomIn(target_size=(8, 8))
    image = torch.rand(1, 4, 20, 20)
    zoom.transform(image, [[Click(True, (3, 3), 0)]])
    zoom.inv_transform(torch.ones(1, 1, 8, 8))
    state = zoom.get_state()
    zoom.reset()
    assert zoom.object_roi is None
    zoom.set_state(state)
    assert zoom.object_roi == (0, 19, 0, 19)
    torch.testing.assert_close(zoom._prev_probs, torch.ones(1, 1, 20, 20))


def test_limit_longest_side() -> None:
    lls = LimitLongestSide(max_size=50)
    small = torch.rand(1, 4, 30, 40)
    out, clicks = lls.transform(small, [[Click(True, (1, 1), 0)]])
    assert out is small and clicks[0][0].coords == (1, 1)
    big = _ramp(80, 100)
    out, clicks = lls.transform(big, [[Click(True, (40, 50), 0)]])
    assert out.shape == (1, 4, 40, 50) and lls.image_changed
    assert clicks[0][0].coords == pytest.approx((20.0, 25.0))
    lls.transform(big, [[Click(True, (40, 50), 0)]])
    assert not lls.image_changed
    back = lls.inv_transform(out[:, :1])
    assert back.shape == (1, 1, 80, 100)
    torch.testing.assert_close(back, big[:, :1])
