"""The onnxruntime backend's per-click path (issue 25): the encoder + click graph pair.

``--backend onnxruntime`` from a checkpoint exports the image encoder and the click graph
(:func:`isegm.inference.onnx_export.export_onnx_pair`) and gives an
:class:`~isegm.inference.onnx_backend.OnnxEmbeddedModel` whose ``encode_image`` /
``forward_embedded`` the predictor uses like the torch model's: the encoder runs once per image,
only the click graph per click. A user's full-graph ``.onnx`` (``python -m isegm.export``) has
no pair and keeps running the whole graph per click (no cached embedding).

Bounds as in ``test_precision.py``: fp32 max |Δ logit| <= 1e-4 against eager fp32, int8 the
torch int8 bound.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from isegm.inference.backends import load_inference_model, with_precision
from isegm.inference.clicker import Clicker
from isegm.inference.onnx_backend import OnnxEmbeddedModel
from isegm.inference.predictor import NoBRSPredictor
from isegm.inference.utils import load_is_model
from tests.inference.test_precision import BOUNDS, BRANCHES, _case, _default_or_skip

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def inputs(parity_dir):
    """The parity inputs (two GrabCut images at 448, 3 and 5 clicks), as test_precision's."""
    data = torch.load(parity_dir / "inputs.pt", weights_only=True)
    return data["image_u8"].float() / 255, data["points"].float()


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    """One export cache for the module (each pair is exported once)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ISEGM_CACHE", str(tmp_path_factory.mktemp("onnx_cache")))
        yield


class _Counting:
    """An onnxruntime session that counts its runs."""

    def __init__(self, session) -> None:
        self.session, self.calls = session, 0

    def run(self, *args, **kwargs):
        self.calls += 1
        return self.session.run(*args, **kwargs)


def _per_click(net, image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        emb = net.encode_image(image[:, :3])
        return net.forward_embedded(emb, image[:, 3:] if net.with_prev_mask else None,
                                    points)["instances"]


def _click_sets(points: torch.Tensor) -> dict[str, torch.Tensor]:
    """The parity clicks (4 + 4 slots; 3 and 5 clicks) cut to 1 click (1 + 1 rows) and to the
    first 3 clicks of each row (3 + 3 rows), and all of them."""
    return {"1 click": points[:, [0, 3]], "3 clicks": points[:, [0, 1, 3, 4, 6, 7]],
            "all": points}


def _export(name: str, parity_dir: Path, inputs, precision: str = "fp32"):
    path, image, points = _case(name, parity_dir, inputs)
    eager = load_is_model(path)
    net = with_precision(load_is_model(path), precision, "cpu", "onnxruntime",
                         size=image.shape[-1], source=path)
    return eager, net, image, points


@pytest.mark.parity
@pytest.mark.parametrize("name", ["default", *BRANCHES])
def test_onnx_pair_per_click_matches_eager(name, parity_dir, inputs, onnx_cache, request):
    """encode_image + forward_embedded of the pair against eager forward_embedded (fp32),
    batch 2, with 1, 3 and 3/5 clicks (the click rows are a dynamic axis), and batch 1."""
    if name != "default":
        request.applymarker(pytest.mark.slow)
    eager, net, image, points = _export(name, parity_dir, inputs)
    assert isinstance(net, OnnxEmbeddedModel) and list(net.parameters()) == []
    assert net.path.name.endswith(".clicks.onnx")
    emb = net.encode_image(image[:, :3])
    assert set(emb) >= {"x", "grid", "size"} and not any(k.startswith("pos") for k in emb)
    assert emb["x"].shape[0] == 2 and emb["size"] == tuple(image.shape[-2:])
    for label, pts in _click_sets(points).items():
        ref = _per_click(eager, image, pts)
        diff = (_per_click(net, image, pts) - ref).abs().max().item()
        assert diff <= 1e-4, (label, diff)
        # forward() is the same two graphs in a row
        assert torch.equal(net(image, pts)["instances"], _per_click(net, image, pts))
    one = (_per_click(net, image[1:], points[1:]) - _per_click(eager, image[1:], points[1:]))
    assert one.abs().max().item() <= 1e-4


@pytest.mark.slow
def test_onnx_pair_exports_another_side_on_first_use(onnx_cache):
    """A square input of another side: the pair is exported for it (the torch model is at
    hand), with that side's grid, and matches eager at that side."""
    path = _default_or_skip()
    eager = load_is_model(path)
    net = with_precision(load_is_model(path), "fp32", "cpu", "onnxruntime", source=path)
    torch.manual_seed(0)
    image = torch.rand(2, 4, 256, 256)
    points = torch.tensor([[[40.0, 200.0, 0.0], [-1, -1, -1], [120.0, 30.0, 1.0],
                            [-1, -1, -1]]] * 2)
    emb = net.encode_image(image[:, :3])
    assert sorted(net._sessions) == [224, 256]
    assert emb["size"] == emb["input_size"] == (256, 256)
    assert emb["grid"] == eager.encode_image(image[:, :3])["grid"] == (16, 16)
    diff = (_per_click(net, image, points) - _per_click(eager, image, points)).abs().max()
    assert diff.item() <= 1e-4


@pytest.mark.parity
def test_onnx_pair_int8_within_bounds(parity_dir, inputs, onnx_cache):
    """int8: both graphs dynamically quantised; the per-click path stays within the int8
    bound against eager fp32."""
    import onnx

    eager, net, image, points = _export("default", parity_dir, inputs, "int8")
    assert net.int8 and "-int8-" in net.path.name
    ops = {n.op_type for n in onnx.load(str(net.path)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops, "the click graph is not int8"
    worst, mean = BOUNDS["int8", "onnxruntime"]
    for label, pts in _click_sets(points).items():
        diff = (_per_click(net, image, pts) - _per_click(eager, image, pts)).abs()
        assert 0 < diff.max().item() <= worst, (label, diff.max().item())
        assert diff.mean().item() <= mean, (label, diff.mean().item())


def _grabcut(grabcut_dir: Path, name: str = "llama", side: int = 224):
    """A GrabCut image and its object mask, resized to a square ``side`` (the default's
    training size, so torch and the graph see the same input)."""
    if not grabcut_dir.is_dir():
        pytest.skip(f"GrabCut not found at {grabcut_dir}")
    image = next((grabcut_dir / "data_GT").glob(f"{name}.*"))
    bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)
    raw = cv2.imread(str(grabcut_dir / "boundary_GT" / f"{name}.bmp"), cv2.IMREAD_GRAYSCALE)
    assert bgr is not None and raw is not None, name
    rgb = cv2.cvtColor(cv2.resize(bgr, (side, side), interpolation=cv2.INTER_AREA),
                       cv2.COLOR_BGR2RGB)
    raw = cv2.resize(raw, (side, side), interpolation=cv2.INTER_NEAREST)
    gt = np.where(raw > 128, 1, np.where(raw == 128, -1, 0)).astype(np.int32)
    return rgb, gt


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / max(float((a | b).sum()), 1.0)


def _torch_masks(model, rgb: np.ndarray, gt: np.ndarray, n: int) -> tuple[list, Clicker]:
    """Masks of ``n`` simulated clicks with the torch model; the clicker that made them."""
    pred = NoBRSPredictor(model, "cpu", with_flip=True)
    pred.set_input_image(rgb)
    clicker, masks = Clicker(gt), []
    mask = np.zeros(gt.shape, bool)
    for _ in range(n):
        clicker.make_next_click(mask)
        mask = pred.get_prediction(clicker) > 0.5
        masks.append(mask)
    return masks, clicker


def _replayed(pred: NoBRSPredictor, rgb: np.ndarray, clicks: list) -> list[np.ndarray]:
    """The masks ``pred`` gives for the same clicks, added one by one."""
    pred.set_input_image(rgb)
    clicker, masks = Clicker(), []
    for click in clicks:
        clicker.add_click(click)
        masks.append(pred.get_prediction(clicker) > 0.5)
    return masks


@pytest.mark.slow
def test_onnx_predictor_encodes_once_per_image(grabcut_dir, onnx_cache):
    """NoBRSPredictor with --backend onnxruntime on a GrabCut image, 3 clicks: the masks of
    torch fp32, the encoder graph run once per image and the click graph once per click."""
    path = _default_or_skip()
    rgb, gt = _grabcut(grabcut_dir)
    torch_masks, clicker = _torch_masks(load_is_model(path), rgb, gt, 3)
    net = with_precision(load_is_model(path), "fp32", "cpu", "onnxruntime", source=path)
    pred = NoBRSPredictor(net, "cpu", with_flip=True)
    assert pred.caches_embedding
    encoder_session, click_session, static = net._sessions[224]
    encoder, clicks = _Counting(encoder_session), _Counting(click_session)
    net._sessions[224] = (encoder, clicks, static)
    masks = _replayed(pred, rgb, clicker.get_clicks())
    assert (encoder.calls, clicks.calls) == (1, 3)
    for i, (a, b) in enumerate(zip(masks, torch_masks)):
        assert b.any() and _iou(a, b) >= 0.99, (i, _iou(a, b))
    other, _ = _grabcut(grabcut_dir, "flower")
    pred.set_input_image(other)
    _replayed(pred, other, clicker.get_clicks()[:2])
    assert (encoder.calls, clicks.calls) == (2, 5)  # a new image: encoded once more


@pytest.mark.slow
def test_onnx_full_graph_file_runs_without_an_embedding(grabcut_dir, onnx_cache, tmp_path):
    """A user's full-graph export (python -m isegm.export) has no pair: no encode_image, the
    predictor caches nothing and still predicts the torch masks; on an input the graph is
    resized for, the pair and the full graph agree."""
    from isegm.export import main as export_main

    path = _default_or_skip()
    out = tmp_path / "default.onnx"
    assert export_main(["--checkpoint", str(path), "--output", str(out)]) == 0
    full = load_inference_model(out, "cpu", backend="onnxruntime")
    assert not hasattr(full, "encode_image") and not hasattr(full, "forward_embedded")
    pred = NoBRSPredictor(full, "cpu", with_flip=True)
    assert not pred.caches_embedding
    rgb, gt = _grabcut(grabcut_dir)
    torch_masks, clicker = _torch_masks(load_is_model(path), rgb, gt, 3)
    for i, (a, b) in enumerate(zip(_replayed(pred, rgb, clicker.get_clicks()), torch_masks)):
        assert _iou(a, b) >= 0.99, (i, _iou(a, b))

    # an input of another shape: both resize to the graph's side and back, the same way
    pair = with_precision(load_is_model(path), "fp32", "cpu", "onnxruntime", source=path)
    torch.manual_seed(0)
    image = torch.rand(2, 4, 160, 256)
    points = torch.tensor([[[40.0, 200.0, 0.0], [-1, -1, -1], [120.0, 30.0, 1.0],
                            [-1, -1, -1]]] * 2)
    with torch.no_grad():
        a = full(image, points)["instances"]
        emb = pair.encode_image(image[:, :3])
        assert emb["size"] == (224, 224) and emb["input_size"] == (160, 256)
        b = pair.forward_embedded(emb, image[:, 3:], points)["instances"]
    assert a.shape == b.shape == (2, 1, 160, 256)
    assert (a - b).abs().max().item() <= 1e-4
