"""Evaluation settings per checkpoint family (issue 11): the pipeline feeds the network what the
original's settings imply. A recording stand-in network (logits from the image plus click bumps)
makes ZoomIn crop after the first click; the position-embedding checks use the reduced-width
reference checkpoints of ../shared/parity.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import evaluate_model as ev
from isegm.inference import eval_settings as es
from isegm.inference.clicker import Click
from isegm.inference.evaluation import evaluate_dataset
from isegm.inference.utils import DEFAULT_MODEL_FILE, load_is_model

H, W, SIZE = 400, 500, 64  # image, and --inference_size (crop side fed to the network)


class RecordingNet(torch.nn.Module):
    """Logits = a little image texture - 4 + 10 * Gaussian bump (sigma 1.5 network px) per
    positive click, - the same per negative click. Records every input."""

    with_prev_mask = True

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, image: torch.Tensor, points: torch.Tensor) -> dict:
        self.calls.append((image.clone(), points.clone()))
        _, _, h, w = image.shape
        yy = torch.arange(h, dtype=image.dtype).view(1, 1, h, 1)
        xx = torch.arange(w, dtype=image.dtype).view(1, 1, 1, w)
        logits = 0.1 * image[:, :1] - 4.0
        n = points.shape[1] // 2
        for sign, pts in ((1.0, points[:, :n]), (-1.0, points[:, n:])):
            py, px = pts[..., 0, None, None], pts[..., 1, None, None]  # [B, n, 1, 1]
            bumps = 10.0 * torch.exp(-((yy[:, 0] - py) ** 2 + (xx[:, 0] - px) ** 2) / 4.5)
            logits = logits + sign * (bumps * (pts[..., :1, None] >= 0)).sum(1, keepdim=True)
        return {"instances": logits}


class Clicks:
    def __init__(self) -> None:
        self.clicks: list[Click] = []

    def add(self, positive: bool, y: float, x: float) -> None:
        self.clicks.append(Click(positive, (y, x), len(self.clicks)))

    def get_clicks(self) -> list[Click]:
        return list(self.clicks)


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


def _predictor(family: str, dataset: str = "GrabCut", argv: tuple[str, ...] = ()):
    args = ev.parse_args(["--inference_size", str(SIZE), *argv])
    settings = es.resolve_settings(family, args.explicit_settings)
    net = RecordingNet()
    return net, ev.build_predictor(net, torch.device("cpu"), args, dataset, settings)


def _expected_roi(probs: np.ndarray, positives: list[tuple[int, int]], min_crop: int):
    """The original's get_object_roi, written out: bbox of (probs > 0.5) and the positive
    clicks, scaled 1.4 around its centre, each side at least min_crop, rounded, clamped."""
    ys, xs = np.nonzero(probs > 0.5)
    ys, xs = [*ys, *(p[0] for p in positives)], [*xs, *(p[1] for p in positives)]
    rmin, rmax, cmin, cmax = min(ys), max(ys), min(xs), max(xs)
    rc, cc = (rmin + rmax) / 2, (cmin + cmax) / 2
    h, w = max(1.4 * (rmax - rmin + 1), min_crop), max(1.4 * (cmax - cmin + 1), min_crop)
    box = (round(rc - h / 2), round(rc + h / 2), round(cc - w / 2), round(cc + w / 2))
    return max(0, box[0]), min(H - 1, box[1]), max(0, box[2]), min(W - 1, box[3])


def _two_clicks(family: str, argv: tuple[str, ...] = ()):
    """Positive click on the centre (whole image), then a negative one in the corner, which
    lies outside the crop that the first prediction gives."""
    net, predictor = _predictor(family, argv=argv)
    clicks = Clicks()
    predictor.set_input_image(_image())
    clicks.add(True, 200, 250)
    probs1 = predictor.get_prediction(clicks)
    clicks.add(False, 5, 5)
    predictor.get_prediction(clicks)
    return net, predictor, probs1


def _f32(*values: float) -> tuple[float, ...]:
    """The values as the float32 points tensor holds them."""
    return tuple(torch.tensor(values, dtype=torch.float32).tolist())


def _fed_clicks(points: torch.Tensor) -> tuple[list[list[float]], list[list[float]]]:
    """(positives, negatives) of the unflipped batch item, padding (index -1) removed."""
    n = points.shape[1] // 2
    rows = points[0].tolist()
    return [r for r in rows[:n] if r[2] >= 0], [r for r in rows[n:] if r[2] >= 0]


# ------------------------------------------------------------------ 1. clicks outside the crop
@pytest.mark.parametrize("family, dropped", [("main", True), ("mst-448", True),
                                             ("simpleclick", False), ("project", False)])
def test_clicks_outside_the_crop(family: str, dropped: bool) -> None:
    net, predictor, _ = _two_clicks(family)
    roi = predictor.zoom_in.object_roi
    assert roi != (0, H - 1, 0, W - 1), "the crop must be active for this test"
    assert not (roi[0] <= 5 <= roi[1] and roi[2] <= 5 <= roi[3])
    pos, neg = _fed_clicks(net.calls[-1][1])
    assert len(pos) == 1
    if dropped:
        assert neg == []
    else:
        (y, x, indx), = neg
        assert (y, x, indx) == _f32(SIZE * (5 - roi[0]) / (roi[1] - roi[0] + 1),
                                    SIZE * (5 - roi[2]) / (roi[3] - roi[2] + 1), 1)
        assert y < 0 and x < 0


def test_drop_outside_clicks_flag_overrides_the_family() -> None:
    net, _, _ = _two_clicks("main", ("--no-drop-outside-clicks",))
    assert len(_fed_clicks(net.calls[-1][1])[1]) == 1
    net, _, _ = _two_clicks("project", ("--drop-outside-clicks",))
    assert _fed_clicks(net.calls[-1][1])[1] == []


# ----------------------------------------------------------------------- 2. minimum crop size
@pytest.mark.parametrize("family, argv, min_crop", [("main", (), 20), ("simpleclick", (), 200),
                                                    ("main", ("--min-crop-size", "150"), 150)])
def test_min_crop_size(family: str, argv: tuple[str, ...], min_crop: int) -> None:
    net, predictor, probs1 = _two_clicks(family, argv)
    roi = _expected_roi(probs1, [(200, 250)], min_crop)
    assert (roi[1] - roi[0] + 1) < H and (roi[3] - roi[2] + 1) < W
    assert predictor.zoom_in.object_roi == roi
    image, points = net.calls[-1]
    assert tuple(image.shape) == (2, 4, SIZE, SIZE)
    (y, x, _), = _fed_clicks(points)[0]
    assert (y, x) == _f32(SIZE * (200 - roi[0]) / (roi[1] - roi[0] + 1),
                          SIZE * (250 - roi[2]) / (roi[3] - roi[2] + 1))
    # the pixels fed are the crop, resized bilinearly (align_corners=True) to SIZE x SIZE
    rgb = torch.from_numpy(_image()).permute(2, 0, 1)[None].float() / 255
    crop = rgb[:, :, roi[0]:roi[1] + 1, roi[2]:roi[3] + 1]
    want = F.interpolate(crop, size=(SIZE, SIZE), mode="bilinear", align_corners=True)
    torch.testing.assert_close(image[:1, :3], want)


def test_min_crop_size_matters_here() -> None:
    _, p20, probs = _two_clicks("main")
    _, p200, _ = _two_clicks("simpleclick")
    assert p20.zoom_in.object_roi != p200.zoom_in.object_roi
    assert p20.zoom_in.object_roi == _expected_roi(probs, [(200, 250)], 20)


# ---------------------------------------------------------------------------- 4. DAVIS crop
@pytest.mark.parametrize("family, argv, side", [
    ("main", (), 96), ("mst-224", (), 96), ("simpleclick", (), 96), ("mst-448", (), 64),
    ("project", (), 64), ("main", ("--davis-scale", "1"), 64),
    ("project", ("--davis-scale", "1.25"), 80),
])
def test_davis_crop_side(family: str, argv: tuple[str, ...], side: int) -> None:
    net, predictor = _predictor(family, "DAVIS", argv)
    clicks = Clicks()
    predictor.set_input_image(_image())
    clicks.add(True, 200, 250)
    predictor.get_prediction(clicks)
    assert tuple(net.calls[0][0].shape) == (2, 4, side, side)
    net, predictor = _predictor(family, "GrabCut", argv)  # other datasets: --inference_size
    predictor.set_input_image(_image())
    predictor.get_prediction(clicks)
    assert tuple(net.calls[0][0].shape) == (2, 4, SIZE, SIZE)


# ------------------------------------------------------------------------ 5. objects per sample
class _Sample:
    def __init__(self) -> None:
        self.image = _image()[:40, :50]
        self.objects_ids = [7, 8, 9]
        self.sample_id = "s"

    def gt_mask(self, j: int) -> np.ndarray:
        m = np.zeros((40, 50), np.int32)
        m[5 + 10 * j: 12 + 10 * j, 10:30] = 1
        return m


class _Dataset:
    dataset_samples = ["a.jpg", "b.jpg"]

    def __len__(self) -> int:
        return 2

    def get_sample(self, i: int) -> _Sample:
        return _Sample()


class _GtPredictor:
    """Returns the ground truth of the object being clicked (found from the click)."""

    def set_input_image(self, image: np.ndarray) -> None:
        self.calls = 0

    def get_prediction(self, clicker) -> np.ndarray:
        y, x = clicker.get_clicks()[0].coords
        return _Sample().gt_mask((int(y) - 5) // 10).astype(np.float32)


@pytest.mark.parametrize("family, argv, n_objects", [
    ("main", (), 1), ("mst-448", (), 3), ("simpleclick", (), 3), ("project", (), 3),
    ("main", ("--objects", "all"), 3), ("project", ("--objects", "first"), 1)])
def test_objects_per_sample(family: str, argv: tuple[str, ...], n_objects: int) -> None:
    args = ev.parse_args(list(argv))
    settings = es.resolve_settings(family, args.explicit_settings)
    dataset = es.select_objects(_Dataset(), settings)
    assert len(dataset) == 2 and dataset.dataset_samples == ["a.jpg", "b.jpg"]
    results = list(evaluate_dataset(dataset, _GtPredictor(), max_iou_thr=0.9, max_clicks=3))
    assert [len(r.ious) for r in results] == [n_objects, n_objects]
    assert all(float(x[-1]) == 1.0 for r in results for x in r.ious)


# --------------------------------------------------------------- 3. position embeddings
def _bicubic(grid: torch.Tensor, size: tuple[int, int], antialias: bool) -> torch.Tensor:
    return F.interpolate(grid, size=size, mode="bicubic", align_corners=False, antialias=antialias)


def _as_grid(pos: torch.Tensor) -> torch.Tensor:
    """[1, n, C] tokens of a square grid -> [1, C, s, s]."""
    side = int(round(pos.shape[1] ** 0.5))
    return pos.reshape(1, side, side, -1).permute(0, 3, 1, 2)


def _loaded(path: Path, argv: tuple[str, ...] = ()):
    model = load_is_model(path)
    explicit = ev.parse_args(list(argv)).explicit_settings
    family, settings = es.settings_for_checkpoint(path, model, explicit)
    es.apply_to_model(model, settings)
    return model, family


@pytest.mark.parametrize("size", [224, 672])
def test_mst_pos_embed_two_step(parity_dir: Path, size: int) -> None:
    model, family = _loaded(parity_dir / "small_main.pth")
    assert family == "main" and model.cfg.img_size == 448
    stored = _as_grid(model.backbone.pos_embed[:, 1:].detach())  # 28 x 28
    with torch.no_grad():
        emb = model.encode_image(torch.rand(1, 3, size, size))
    step1 = _bicubic(stored, (size // 16, size // 16), antialias=False)
    torch.testing.assert_close(_as_grid(emb["pos"]), step1, rtol=0, atol=0)
    torch.testing.assert_close(_as_grid(emb["pos_s"]),
                               _bicubic(step1, (size // 8, size // 8), True), rtol=0, atol=0)
    torch.testing.assert_close(_as_grid(emb["pos_l"]),
                               _bicubic(step1, (size // 32, size // 32), True), rtol=0, atol=0)
    # the project's single antialiased resize is measurably different
    once, _ = _loaded(parity_dir / "small_main.pth", ("--pos-embed-resize", "once"))
    with torch.no_grad():
        emb1 = once.encode_image(torch.rand(1, 3, size, size))
    torch.testing.assert_close(_as_grid(emb1["pos_s"]),
                               _bicubic(stored, (size // 8, size // 8), True), rtol=0, atol=0)
    assert (emb1["pos"] - emb["pos"]).abs().max() > 1e-3


def test_simpleclick_pos_embed_is_resized_once_without_antialias(parity_dir: Path) -> None:
    model, family = _loaded(parity_dir / "small_simpleclick.pth")
    assert family == "simpleclick"
    stored = _as_grid(model.backbone.pos_embed[:, 1:].detach())
    with torch.no_grad():
        emb = model.encode_image(torch.rand(1, 3, 224, 224))
    torch.testing.assert_close(_as_grid(emb["pos"]), _bicubic(stored, (14, 14), False),
                               rtol=0, atol=0)


def test_pos_embed_modes_agree_at_the_training_size(parity_dir: Path) -> None:
    a, _ = _loaded(parity_dir / "small_mst-448.pth")
    b, _ = _loaded(parity_dir / "small_mst-448.pth", ("--pos-embed-resize", "once"))
    assert a.backbone.pos_embed_resize == "two-step" and b.backbone.pos_embed_resize == "once"
    x = torch.rand(1, 3, 448, 448)
    with torch.no_grad():
        ea, eb = a.encode_image(x), b.encode_image(x)
    for key in ("pos", "pos_s", "pos_l"):
        assert torch.equal(ea[key], eb[key])


# ----------------------------------------------------------------------------- families, CLI
def test_families_from_checkpoints(parity_dir: Path) -> None:
    repo = Path(ev.__file__).resolve().parent
    for name, family in (("small_main.pth", "main"), ("small_mst-448.pth", "mst-448"),
                         ("small_simpleclick.pth", "simpleclick")):
        assert es.checkpoint_source(parity_dir / name) == "reference"
        assert _loaded(parity_dir / name)[1] == family
    default = repo / "weights" / DEFAULT_MODEL_FILE
    assert es.checkpoint_source(default) == "project"
    assert _loaded(default)[1] == "project"
    assert _loaded(parity_dir / "small_main.pth", ("--eval-family", "project"))[1] == "project"


def test_bad_values_are_usage_errors() -> None:
    for argv in (["--min-crop-size", "0"], ["--davis-scale", "0"], ["--davis-scale", "-1"]):
        with pytest.raises(ev.UsageError):
            ev.parse_args(argv)


def test_settings_recorded_in_summary(parity_dir: Path, grabcut_dir: Path, tmp_path: Path) -> None:
    if not grabcut_dir.is_dir():
        pytest.skip("GrabCut not in ../shared")
    argv = ["--cpu", "--checkpoint", str(parity_dir / "small_main.pth"), "--datasets", "GrabCut",
            "--dataset-path", f"GrabCut={grabcut_dir}", "--limit", "1", "--n-clicks", "1",
            "--inference_size", "224", "--logs-path", str(tmp_path), "--min-crop-size", "50"]
    assert ev.main(argv) == 0
    summary = json.loads(next(tmp_path.glob("*/summary.json")).read_text())
    assert summary["rows"][0]["eval_settings"] == {
        "family": "main", "drop_outside_clicks": True, "min_crop_size": 50, "davis_scale": 1.5,
        "pos_embed_resize": "two-step", "objects": "first"}
    assert summary["key_options"]["eval_settings"]["min_crop_size"] == 50
