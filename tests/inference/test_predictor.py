"""NoBRSPredictor with tiny fake networks: embedding cache, prev-mask feedback, CFR, undo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from isegm.inference.clicker import Click, Clicker
from isegm.inference.predictor import NoBRSPredictor
from isegm.inference.transforms import ZoomIn

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


class GrowNet(nn.Module):
    """Logits = disks (r=2) around the clicks, plus one-pixel growth of the previous mask
    inside the "object" (red channel > 0.5). Deterministic and flip-equivariant, so repeated
    passes that feed their output back grow the mask until it fills the object."""

    with_prev_mask = True

    def __init__(self) -> None:
        super().__init__()
        self.encode_calls = 0
        self.forward_calls = 0
        self.last_prev: torch.Tensor | None = None
        self.last_points: torch.Tensor | None = None

    def encode_image(self, rgb: torch.Tensor) -> torch.Tensor:
        self.encode_calls += 1
        return rgb[:, :1]

    def forward_embedded(self, emb: torch.Tensor, prev: torch.Tensor, points: torch.Tensor):
        self.forward_calls += 1
        self.last_prev, self.last_points = prev.clone(), points.clone()
        b, _, h, w = emb.shape
        yy = torch.arange(h, device=emb.device, dtype=emb.dtype).view(1, 1, h, 1)
        xx = torch.arange(w, device=emb.device, dtype=emb.dtype).view(1, 1, 1, w)
        py = points[:, :, 0].view(b, -1, 1, 1)
        px = points[:, :, 1].view(b, -1, 1, 1)
        disks = (((yy - py) ** 2 + (xx - px) ** 2) <= 4.0) & (py >= 0)
        n = points.shape[1] // 2
        sign = torch.ones(points.shape[1], device=emb.device, dtype=emb.dtype)
        sign[n:] = -1
        clicks = (disks.to(emb.dtype) * sign.view(1, -1, 1, 1)).sum(1, keepdim=True)
        grow = (F.max_pool2d(prev, 3, 1, 1) > 0.5) & (emb > 0.5)
        return {"instances": -5.0 + 10.0 * grow.to(emb.dtype) + 10.0 * clicks}

    def forward(self, image: torch.Tensor, points: torch.Tensor):
        return self.forward_embedded(self.encode_image(image[:, :3]), image[:, 3:], points)


class PlainGrowNet(nn.Module):
    """The same network without the split interface (predictor falls back to ``net(x, p)``)."""

    with_prev_mask = True

    def __init__(self) -> None:
        super().__init__()
        self.inner = GrowNet()

    def forward(self, image: torch.Tensor, points: torch.Tensor):
        return self.inner(image, points)


def make_image(h: int = 32, w: int = 32, obj: tuple[int, int, int, int] = (8, 24, 8, 24)):
    image = np.zeros((h, w, 3), dtype=np.uint8)
    image[obj[0] : obj[1], obj[2] : obj[3], 0] = 255
    return image


def clicker_with(*clicks: Click) -> Clicker:
    return Clicker(init_clicks=list(clicks))


@pytest.mark.parametrize("device", DEVICES)
def test_encode_once_per_image_and_prev_mask_feedback(device: str) -> None:
    net = GrowNet().to(device)
    pred = NoBRSPredictor(net, device, with_flip=True)
    pred.set_input_image(make_image())
    clicker = clicker_with(Click(True, (16, 16)))
    p1 = pred.get_prediction(clicker)
    assert p1.dtype == np.float32 and p1.shape == (32, 32)
    assert net.last_prev.abs().sum() == 0  # first click: empty previous mask

    for y, x in [(12, 12), (20, 20)]:
        before = pred.prev_prediction.clone()
        clicker.add_click(Click(True, (y, x)))
        pred.get_prediction(clicker)
        # channel 3 of the input is the previous full-resolution probability map
        torch.testing.assert_close(net.last_prev[:1], before)
        torch.testing.assert_close(net.last_prev[1:], torch.flip(before, dims=[3]))
    assert net.encode_calls == 1 and net.forward_calls == 3

    pred.set_input_image(make_image(obj=(0, 10, 0, 10)))
    pred.get_prediction(clicker_with(Click(True, (5, 5))))
    assert net.encode_calls == 2


def test_fallback_without_split_interface_gives_same_result() -> None:
    clicks = [Click(True, (16, 16)), Click(False, (10, 10))]
    outs = []
    for net in (GrowNet(), PlainGrowNet()):
        pred = NoBRSPredictor(net, "cpu", with_flip=False)
        pred.set_input_image(make_image())
        clicker = Clicker()
        for c in clicks:
            clicker.add_click(c)
            out = pred.get_prediction(clicker)
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_flip_of_equivariant_net_changes_nothing_and_points_layout() -> None:
    outs = []
    for flip in (False, True):
        net = GrowNet()
        pred = NoBRSPredictor(net, "cpu", with_flip=flip)
        pred.set_input_image(make_image())
        outs.append(pred.get_prediction(clicker_with(Click(True, (16, 13)), Click(False, (9, 9)))))
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-6)
    pts = net.last_points
    assert pts.shape == (2, 2, 3)
    np.testing.assert_array_equal(pts[0].numpy(), [[16, 13, 0], [9, 9, 1]])
    np.testing.assert_array_equal(pts[1].numpy(), [[16, 32 - 13 - 1, 0], [9, 32 - 9 - 1, 1]])


def test_prev_mask_argument_overrides_last_prediction() -> None:
    net = GrowNet()
    pred = NoBRSPredictor(net, "cpu", with_flip=False)
    pred.set_input_image(make_image())
    loaded = np.zeros((32, 32), dtype=np.float32)
    loaded[8:24, 8:24] = 1.0
    out = pred.get_prediction(clicker_with(Click(True, (16, 16))), prev_mask=loaded)
    torch.testing.assert_close(net.last_prev[0, 0], torch.from_numpy(loaded))
    assert (out > 0.49).sum() == 256


def _mask_area(net: nn.Module, obj: tuple[int, int, int, int], **kwargs) -> tuple[int, int]:
    pred = NoBRSPredictor(net, "cpu", with_flip=False, **kwargs)
    pred.set_input_image(make_image(obj=obj))
    out = pred.get_prediction(clicker_with(Click(True, (16, 16))))
    return int((out > 0.49).sum()), pred.last_cascade_passes


def test_cascade_forward_refinement() -> None:
    big = (4, 28, 4, 28)
    area0, passes0 = _mask_area(GrowNet(), big)
    area3, passes3 = _mask_area(GrowNet(), big, cascade_steps=3)
    assert passes0 == 1 and passes3 == 4
    assert area0 == 13 and area3 > area0  # disk of radius 2, then three growth passes

    # Adaptive: the 5x5 object is filled after the second pass, the third changes nothing.
    small = (14, 19, 14, 19)
    assert _mask_area(GrowNet(), small, cascade_steps=3) == (25, 4)
    assert _mask_area(GrowNet(), small, cascade_steps=3, cascade_adaptive=True,
                      cascade_change_thresh=0) == (25, 3)
    assert _mask_area(GrowNet(), small, cascade_steps=3, cascade_adaptive=True) == (25, 2)


def test_cascade_only_on_first_clicks() -> None:
    net = GrowNet()
    pred = NoBRSPredictor(net, "cpu", with_flip=False, cascade_steps=2, cascade_clicks=1)
    pred.set_input_image(make_image())
    clicker = clicker_with(Click(True, (16, 16)))
    pred.get_prediction(clicker)
    assert pred.last_cascade_passes == 3
    clicker.add_click(Click(False, (5, 5)))
    pred.get_prediction(clicker)
    assert pred.last_cascade_passes == 1
    assert net.encode_calls == 1  # no zoom: the image embedding is reused by every pass


def test_states_undo() -> None:
    net = GrowNet()
    pred = NoBRSPredictor(net, "cpu", zoom_in=ZoomIn(target_size=(32, 32), min_crop_size=4))
    pred.set_input_image(make_image(64, 64, obj=(10, 30, 10, 30)))
    clicker = clicker_with(Click(True, (20, 20)))
    pred.get_prediction(clicker)
    states, clicks_state = pred.get_states(), clicker.get_state()

    clicker.add_click(Click(True, (25, 25)))
    second = pred.get_prediction(clicker)
    pred.set_states(states)
    clicker.set_state(clicks_state)
    torch.testing.assert_close(pred.prev_prediction, states["prev_prediction"])

    clicker.add_click(Click(True, (25, 25)))
    np.testing.assert_array_equal(pred.get_prediction(clicker), second)


def test_zoom_in_encodes_only_when_the_crop_changes() -> None:
    net = GrowNet()
    zoom = ZoomIn(target_size=(32, 32), min_crop_size=4)
    pred = NoBRSPredictor(net, "cpu", with_flip=False, zoom_in=zoom)
    pred.set_input_image(make_image(64, 64, obj=(20, 36, 20, 36)))
    clicker = Clicker()
    changes = []
    for y, x in [(28, 28), (30, 30), (26, 27), (29, 25)]:
        clicker.add_click(Click(True, (y, x)))
        out = pred.get_prediction(clicker)
        changes.append(zoom.image_changed)
        assert out.shape == (64, 64)
    assert changes[0] and changes[1]  # whole image, then the first crop
    assert net.encode_calls == sum(changes) < len(changes)


class Patch32Net(GrowNet):
    min_size_multiple = 32

    def encode_image(self, rgb: torch.Tensor) -> torch.Tensor:
        assert rgb.shape[2] % 32 == 0 and rgb.shape[3] % 32 == 0
        return super().encode_image(rgb)


def test_inputs_padded_to_the_net_multiple() -> None:
    pred = NoBRSPredictor(Patch32Net(), "cpu", with_flip=True)
    pred.set_input_image(make_image(40, 50, obj=(8, 24, 8, 24)))
    out = pred.get_prediction(clicker_with(Click(True, (16, 16))))
    assert out.shape == (40, 50) and (out > 0.49).sum() == 13


def test_prediction_needs_an_image() -> None:
    with pytest.raises(RuntimeError):
        NoBRSPredictor(GrowNet(), "cpu").get_prediction(Clicker())
