"""isegm.predict: the Predictor API (SAM-style, session-consistent) and the command line."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from isegm import predict
from isegm.annotation import defaults
from isegm.inference.utils import DEFAULT_MODEL_FILE, DEFAULT_MODEL_RECIPE
from isegm.predict import InputError, Predictor, main, parse_clicks

REPO = Path(__file__).resolve().parents[1]


def _load_fakes():
    """tests/demo/demo_fakes.py, shared with the demo tests (tests/ is not a package)."""
    if "demo_fakes" in sys.modules:
        return sys.modules["demo_fakes"]
    spec = importlib.util.spec_from_file_location(
        "demo_fakes", Path(__file__).parent / "demo" / "demo_fakes.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo_fakes"] = module
    spec.loader.exec_module(module)
    return module


fakes = _load_fakes()
DiskNet, expected_mask, disk = fakes.DiskNet, fakes.expected_mask, fakes.disk


@pytest.fixture(scope="module")
def image_path(grabcut_dir: Path) -> Path:
    path = grabcut_dir / "data_GT" / "106024.jpg"
    if not path.is_file():
        pytest.skip(f"GrabCut image not found: {path}")
    return path


@pytest.fixture(scope="module")
def image(image_path: Path) -> np.ndarray:
    return predict.read_image(image_path)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return fakes.tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth")


def read_png(path: Path) -> np.ndarray:
    out = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert out is not None, path
    return out


# --------------------------------------------------------------------------- CLI: the mask
def test_cli_writes_the_exact_disk_mask(image_path: Path, image: np.ndarray, tmp_path: Path):
    clicks = [(120, 80, True), (300, 200, True), (135, 85, False)]
    text = " ".join(f"{x},{y},{'+' if p else '-'}" for x, y, p in clicks)
    out, prob_out = tmp_path / "mask.png", tmp_path / "prob.png"
    argv = ["--cpu", "--image", str(image_path), "--clicks", text, "--output", str(out),
            "--prob-output", str(prob_out), "--no-zoom-in"]
    assert main(argv, model=DiskNet()) == 0

    mask = read_png(out)
    expected = expected_mask(image.shape[:2], clicks)
    assert mask.dtype == np.uint8 and mask.shape == image.shape[:2]
    assert set(np.unique(mask)) == {0, 255}
    np.testing.assert_array_equal(mask, expected.astype(np.uint8) * 255)
    prob = read_png(prob_out)
    assert prob.shape == image.shape[:2]
    assert (prob[expected] == 255).all() and (prob[~expected] == 0).all()


def test_cli_default_zoom_in_keeps_clicks_right(image_path: Path, tmp_path: Path):
    """With zoom-in the disks are drawn in the crop's pixels, so only the clicked pixels are
    checked: in the mask under positive clicks, out of it under negative ones."""
    out = tmp_path / "mask.png"
    argv = ["--cpu", "--image", str(image_path), "--clicks", "200,150,+ 250,160,+ 225,100,-",
            "--output", str(out)]
    assert main(argv, model=DiskNet()) == 0
    mask = read_png(out)
    assert mask[150, 200] == 255 and mask[160, 250] == 255 and mask[100, 225] == 0
    assert 0 < (mask > 0).mean() < 0.5


def test_cli_threshold_and_prev_mask(image_path: Path, image: np.ndarray, tmp_path: Path):
    h, w = image.shape[:2]
    prev = np.zeros((h, w), np.uint8)
    prev[50:150, 50:250] = 255
    prev_path = tmp_path / "prev.png"
    cv2.imwrite(str(prev_path), prev)
    out = tmp_path / "mask.png"
    argv = ["--cpu", "--image", str(image_path), "--clicks", "100,100,-", "--output", str(out),
            "--prev-mask", str(prev_path), "--no-zoom-in", "--threshold", "0.3"]
    assert main(argv, model=DiskNet(memory=True)) == 0
    expected = (prev > 0) & ~disk((h, w), 100, 100)
    np.testing.assert_array_equal(read_png(out) > 0, expected)


def test_cli_with_a_real_tiny_checkpoint(image_path: Path, image: np.ndarray, tiny_ckpt: Path,
                                         tmp_path: Path):
    out, prob_out = tmp_path / "mask.png", tmp_path / "prob.png"
    proc = subprocess.run(
        [sys.executable, "-m", "isegm.predict", "--cpu", "--checkpoint", str(tiny_ckpt),
         "--image", str(image_path), "--clicks", "120,80,+ 200,40,-", "--output", str(out),
         "--prob-output", str(prob_out)],
        capture_output=True, text=True, cwd=REPO, timeout=600,  # safety net
    )
    assert proc.returncode == 0, proc.stderr
    mask = read_png(out)
    assert mask.shape == image.shape[:2] and set(np.unique(mask)) <= {0, 255}
    assert read_png(prob_out).shape == image.shape[:2]


# --------------------------------------------------------------------------- CLI: bad inputs
def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    # the timeout is only a safety net: a loaded machine starts Python slowly
    return subprocess.run([sys.executable, "-m", "isegm.predict", "--cpu", *args],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_cli_click_outside_the_image(image_path: Path, tiny_ckpt: Path, tmp_path: Path):
    proc = run_cli("--checkpoint", str(tiny_ckpt), "--image", str(image_path),
                   "--clicks", "120,80,+ 481,40,-", "--output", str(tmp_path / "m.png"))
    assert_one_line_error(proc, "click 2", "(481,40,-)", "481x321")
    assert not (tmp_path / "m.png").exists()


def test_cli_unreadable_image(tiny_ckpt: Path, tmp_path: Path):
    bad = tmp_path / "broken.jpg"
    bad.write_text("not an image")
    proc = run_cli("--checkpoint", str(tiny_ckpt), "--image", str(bad), "--clicks", "1,1,+",
                   "--output", str(tmp_path / "m.png"))
    assert_one_line_error(proc, "cannot read", "broken.jpg")


def test_cli_empty_clicks(image_path: Path, tiny_ckpt: Path, tmp_path: Path):
    proc = run_cli("--checkpoint", str(tiny_ckpt), "--image", str(image_path), "--clicks", " ",
                   "--output", str(tmp_path / "m.png"))
    assert_one_line_error(proc, "empty click list")


def test_cli_missing_checkpoint(image_path: Path, tmp_path: Path):
    proc = run_cli("--checkpoint", str(tmp_path / "nope.pth"), "--image", str(image_path),
                   "--clicks", "1,1,+", "--output", str(tmp_path / "m.png"))
    assert_one_line_error(proc, "checkpoint not found", "nope.pth")


@pytest.mark.parametrize(
    "extra, needles",
    [
        (["--clicks", "1,2"], ["click 1", "malformed"]),
        (["--clicks", "1,2,+ a,b,-"], ["click 2", "malformed"]),
        (["--clicks", "1,2,x"], ["malformed"]),
        (["--clicks", "-1,2,+"], ["outside the image"]),
        (["--clicks", "1,2,+", "--threshold", "2"], ["--threshold"]),
        (["--clicks", "1,2,+", "--output", "mask.jpg"], ["PNG"]),
    ],
)
def test_cli_bad_arguments_in_process(extra, needles, image_path: Path, tmp_path: Path,
                                      capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["--cpu", "--image", str(image_path), "--output", "m.png", *extra]
    # the last --clicks/--output wins in argparse
    assert main(argv, model=DiskNet()) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    for needle in needles:
        assert needle in err[0]


def test_cli_corrupt_checkpoint_and_missing_default(image_path: Path, tmp_path: Path, capsys,
                                                   monkeypatch):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x00" * 100)
    argv = ["--cpu", "--image", str(image_path), "--clicks", "1,1,+", "--output",
            str(tmp_path / "m.png")]
    assert main([*argv, "--checkpoint", str(bad)]) == 2
    assert "bad.pth" in capsys.readouterr().err

    monkeypatch.setattr(defaults, "DEFAULT_CHECKPOINT", tmp_path / "weights" / "default.pth")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert DEFAULT_MODEL_RECIPE in err[0] and "python train.py models/" in err[0]


def test_cli_prev_mask_of_another_size(image_path: Path, tmp_path: Path, capsys):
    prev = tmp_path / "prev.png"
    cv2.imwrite(str(prev), np.zeros((10, 20), np.uint8))
    argv = ["--cpu", "--image", str(image_path), "--clicks", "1,1,+", "--output",
            str(tmp_path / "m.png"), "--prev-mask", str(prev)]
    assert main(argv, model=DiskNet()) == 2
    assert "20x10" in capsys.readouterr().err


def test_gpu_request_without_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(predict.DeviceError, match="--cpu"):
        predict.select_device(gpu=0)
    assert str(predict.select_device()) == "cpu"


def test_parse_clicks():
    assert parse_clicks(" 1,2,+;3.5,4,- ") == [(1.0, 2.0, True), (3.5, 4.0, False)]
    for bad in ["", "1,2", "1,2,3", "1,2,+,4", "nan,1,+"]:
        with pytest.raises(InputError):
            parse_clicks(bad)


# --------------------------------------------------------------------------- API
def test_predict_before_set_image_raises(tiny_ckpt: Path, image: np.ndarray):
    predictor = Predictor(tiny_ckpt)
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.predict([(10, 10, True)])
    predictor.set_image(image)
    predictor.predict([(10, 10, True)])
    predictor.reset_image()
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.predict([(10, 10, True)])


def test_set_image_once_encodes_once(tiny_ckpt: Path, image: np.ndarray, monkeypatch):
    predictor = Predictor(tiny_ckpt, zoom_in=False)
    calls = []
    encode = predictor.model.encode_image
    monkeypatch.setattr(predictor.model, "encode_image", lambda rgb: calls.append(1) or encode(rgb))
    predictor.set_image(image)
    clicks = [(120, 80, True), (200, 40, False), (150, 100, True)]
    for n in range(1, 4):
        mask, prob = predictor.predict(clicks[:n])
        assert mask.shape == prob.shape == image.shape[:2]
        assert mask.dtype == bool and prob.dtype == np.float32
        np.testing.assert_array_equal(mask, prob > 0.5)
        assert predictor.last_computed_clicks == 1
    assert len(calls) == 1


def test_growing_clicks_match_a_fresh_session_and_undo_is_cached(tiny_ckpt: Path,
                                                                 image: np.ndarray):
    """Zoom-in on: the crop and the previous mask carry over between calls."""
    clicks = [(200, 150, True), (260, 170, True), (150, 60, False)]
    session = Predictor(tiny_ckpt, with_flip=False)
    session.set_image(image)
    probs = [session.predict(clicks[:n])[1] for n in range(1, 4)]

    fresh = Predictor(tiny_ckpt, with_flip=False)
    fresh.set_image(image)
    np.testing.assert_allclose(fresh.predict(clicks)[1], probs[-1], atol=1e-6)
    assert fresh.last_computed_clicks == 3

    # undo: the cached state after two clicks, nothing recomputed
    np.testing.assert_array_equal(session.predict(clicks[:2])[1], probs[1])
    assert session.last_computed_clicks == 0
    # a different third click after the undo: same as a fresh session with these clicks
    branch = [*clicks[:2], (100, 250, False)]
    other = Predictor(tiny_ckpt, with_flip=False)
    other.set_image(image)
    np.testing.assert_allclose(session.predict(branch)[1], other.predict(branch)[1], atol=1e-6)
    assert session.last_computed_clicks == 1


def test_each_click_gets_the_previous_prediction(image: np.ndarray):
    """DiskNet(memory) draws only the latest click onto its previous-mask input."""
    h, w = image.shape[:2]
    predictor = Predictor(DiskNet(memory=True), zoom_in=False)
    predictor.set_image(image)
    clicks = [(100, 100, True), (300, 200, True), (110, 100, False)]
    for n in range(1, 4):
        mask, _ = predictor.predict(clicks[:n])
    np.testing.assert_array_equal(mask, expected_mask((h, w), clicks))
    # no clicks: nothing, or the previous mask itself
    assert not predictor.predict([])[0].any()
    prev = np.zeros((h, w), bool)
    prev[:50] = True
    np.testing.assert_array_equal(predictor.predict([], prev)[0], prev)
    # a previous mask is corrected by the clicks; click indices then start at 1
    mask, prob = predictor.predict([(20, 20, False)], prev)
    np.testing.assert_array_equal(mask, prev & ~disk((h, w), 20, 20))
    assert predictor.model.last_points[0, :, 2].max() == 1
    # changing the previous mask starts a new session
    prev2 = np.zeros((h, w), np.float32)
    prev2[-50:] = 0.9
    mask, _ = predictor.predict([(20, 20, False)], prev2)
    np.testing.assert_array_equal(mask, prev2 > 0.5)


def test_api_input_checks(image: np.ndarray):
    predictor = Predictor(DiskNet(), zoom_in=False, threshold=0.5)
    with pytest.raises(ValueError, match="uint8"):
        predictor.set_image(image.astype(np.float32))
    with pytest.raises(ValueError, match="HxWx3"):
        predictor.set_image(image[:, :, 0])
    predictor.set_image(image)
    h, w = image.shape[:2]
    with pytest.raises(InputError, match=f"{w}x{h}"):
        predictor.predict([(w, 0, True)])
    with pytest.raises(InputError, match="not \\(x, y, is_positive\\)"):
        predictor.predict([(1, 2)])
    with pytest.raises(InputError, match="prev_mask"):
        predictor.predict([(1, 2, True)], np.zeros((3, 3)))
    no_prev = DiskNet()
    no_prev.with_prev_mask = False
    other = Predictor(no_prev, zoom_in=False)
    other.set_image(image)
    with pytest.raises(InputError, match="no previous mask"):
        other.predict([(1, 2, True)], np.zeros((h, w)))
    # the threshold applies to the returned mask
    predictor.threshold = 1.0
    mask, prob = predictor.predict([(100, 100, True)])
    assert prob.max() > 0.99 and not mask.any()


def test_large_images_are_downscaled_for_the_network():
    """limit_longest_size: the network sees at most that side; the mask comes back full size."""
    image = np.zeros((200, 300, 3), np.uint8)
    predictor = Predictor(DiskNet(radius=10), zoom_in=False, limit_longest_size=100)
    predictor.set_image(image)
    mask, prob = predictor.predict([(150, 100, True)])
    assert predictor.model.last_input_size == (67, 100)
    assert mask.shape == prob.shape == (200, 300)
    expected = disk((200, 300), 150, 100, 30)  # radius 10 at a third of the size
    iou = (mask & expected).sum() / (mask | expected).sum()
    assert mask[100, 150] and iou > 0.9


def test_default_checkpoint_error_names_the_recipe(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(defaults, "DEFAULT_CHECKPOINT", tmp_path / "missing.pth")
    with pytest.raises(predict.CheckpointError, match=DEFAULT_MODEL_FILE.split(".")[0]):
        Predictor()


# --------------------------------------------------------------------------- issue 12 items
def test_click_tuples_are_validated_strictly(image: np.ndarray):
    """Before: ``(x, y, "-")`` was a positive click (a non-empty string is truthy) and
    ``predict(None)`` raised a TypeError."""
    predictor = Predictor(DiskNet(), zoom_in=False)
    predictor.set_image(image)
    for bad in ("-", "+", 0, 2, 0.5, None):
        with pytest.raises(InputError, match="is_positive must be True/False or \\+1/-1"):
            predictor.predict([(100, 100, bad)])
    for clicks in (None, 5, "100,100,+"):
        with pytest.raises(InputError, match="list of \\(x, y, is_positive\\)"):
            predictor.predict(clicks)
    h, w = image.shape[:2]
    plus_minus = predictor.predict([(100, 100, 1), (105, 100, -1)])[0]
    booleans = predictor.predict([(100, 100, True), (105, 100, np.bool_(False))])[0]
    array = predictor.predict(np.array([[100, 100, 1], [105, 100, -1]], np.float32))[0]
    np.testing.assert_array_equal(plus_minus, booleans)
    np.testing.assert_array_equal(array, booleans)
    np.testing.assert_array_equal(
        booleans, expected_mask((h, w), [(100, 100, True), (105, 100, False)]))


def test_16_bit_image_using_12_bits_is_not_black(tmp_path: Path):
    """Before: OpenCV kept the top 8 of 16 bits, so 12-bit data (max 4095) became 0..15."""
    rng = np.random.default_rng(0)
    rgb8 = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    rgb12 = ((rgb8.astype(np.int64) * 4095 + 127) // 255).astype(np.uint16)
    path = tmp_path / "twelve_bits.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb12, cv2.COLOR_RGB2BGR))
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    for image in (predict.read_image(path), fakes_read_dataset_image(path)):
        assert image.dtype == np.uint8 and image.shape == (30, 40, 3)
        assert np.abs(image.astype(int) - rgb8).max() <= 1
    grey16 = np.full((5, 6), 65535, np.uint16)  # full 16-bit range: white stays white
    assert cv2.imwrite(str(tmp_path / "g.png"), grey16)
    assert (predict.read_image(tmp_path / "g.png") == 255).all()


def fakes_read_dataset_image(path: Path) -> np.ndarray:
    from isegm.data.io import read_image

    return read_image(path)


def test_cli_empty_mask_gives_one_warning_line(image_path: Path, tmp_path: Path, capsys):
    out = tmp_path / "mask.png"
    argv = ["--cpu", "--image", str(image_path), "--clicks", "100,100,+", "--output", str(out),
            "--no-zoom-in", "--threshold", "1.0"]
    assert main(argv, model=DiskNet()) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: the mask is empty"), err
    assert not read_png(out).any()
    assert main(argv[:-2], model=DiskNet()) == 0  # a non-empty mask: nothing on stderr
    assert capsys.readouterr().err == ""


def test_threads_option(image_path: Path, tmp_path: Path, capsys, monkeypatch):
    import torch

    seen = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n)))
    argv = ["--cpu", "--image", str(image_path), "--clicks", "100,100,+",
            "--output", str(tmp_path / "m.png"), "--no-zoom-in"]
    assert main(argv + ["--threads", "1"], model=DiskNet()) == 0
    assert seen[0] == 1
    assert main(argv, model=DiskNet()) == 0
    assert seen[2] == predict.default_threads() and 1 <= seen[2] <= 4
    assert main(argv + ["--threads", "0"], model=DiskNet()) == 2
    assert "--threads must be >= 1" in capsys.readouterr().err
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})  # isegm.utils.cli reads it
    assert predict.default_threads() == 1  # a 2-core machine: 1 thread


def test_undo_history_is_small_bounded_and_exact(tiny_ckpt: Path, image: np.ndarray):
    """Before: every click kept three full-resolution float32 maps (about 550 MB per click on
    a 48 MP photo). Now: network-resolution maps for the last ``history_limit`` clicks, and
    undo (kept or replayed) gives exactly the maps the clicks gave."""
    limit = 320  # LimitLongestSide acts on the first click, ZoomIn on the later ones
    clicks = [(200, 150, True), (260, 170, True), (150, 60, False), (300, 220, True),
              (230, 120, False)]

    def run(img: np.ndarray, n_clicks: int) -> tuple[Predictor, list[np.ndarray]]:
        predictor = Predictor(tiny_ckpt, limit_longest_size=limit, history_limit=2)
        predictor.set_image(img)
        return predictor, [predictor.predict(clicks[:n])[1] for n in range(1, n_clicks + 1)]

    session, probs = run(image, 5)
    bound = 2 * 4 * max(limit, session.target_size) ** 2
    assert 0 < session.history_nbytes <= bound
    big = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    session_big, _ = run(big, 3)
    assert 0 < session_big.history_nbytes <= bound  # independent of the image size

    # undo within the kept history (states after clicks 4 and 5): restored, bit-identical
    np.testing.assert_array_equal(session.predict(clicks[:4])[1], probs[3])
    assert session.last_computed_clicks == 0
    # beyond it: replayed from the start, still bit-identical
    np.testing.assert_array_equal(session.predict(clicks[:3])[1], probs[2])
    assert session.last_computed_clicks == 3
    np.testing.assert_array_equal(session.predict(clicks[:2])[1], probs[1])
    assert session.last_computed_clicks == 0  # kept again after the replay
    np.testing.assert_array_equal(session.predict(clicks)[1], probs[4])
    assert session.last_computed_clicks == 3
    np.testing.assert_array_equal(session.predict(clicks[:1])[1], probs[0])
    assert session.last_computed_clicks == 1


# ------------------------------------------------------------------------- refinement
def test_refine_auto_is_on_only_for_the_built_in_default(tiny_ckpt: Path, monkeypatch):
    assert predict.resolve_refine("auto", None) == "grabcut"
    assert predict.resolve_refine(None, predict.DEFAULT_CHECKPOINT) == "grabcut"
    assert predict.resolve_refine("auto", tiny_ckpt) == "none"
    assert predict.resolve_refine("auto", DiskNet()) == "none"
    assert predict.resolve_refine("grabcut", tiny_ckpt) == "grabcut"
    assert predict.resolve_refine("NONE", None) == "none"
    with pytest.raises(InputError, match="unknown refinement 'crf'"):
        predict.resolve_refine("crf", None)
    assert Predictor(tiny_ckpt).refine == "none"
    assert Predictor(tiny_ckpt, refine="grabcut").refine == "grabcut"


def test_refined_session_undo_and_reset_are_exact(tiny_ckpt: Path, image: np.ndarray):
    """The shown map is the refinement of the network's map; undo (a shorter click list),
    a branch and a fresh session give the same maps."""
    from isegm.inference.clicker import Click
    from isegm.inference.refine import GraphCutRefiner

    clicks = [(200, 150, True), (260, 170, True), (150, 60, False)]
    session = Predictor(tiny_ckpt, with_flip=False, refine="grabcut")
    plain = Predictor(tiny_ckpt, with_flip=False, refine="none")
    session.set_image(image)
    plain.set_image(image)
    refiner = GraphCutRefiner()
    refiner.set_image(image)
    probs = []
    for n in range(1, 4):
        prob = session.predict(clicks[:n])[1]
        net = plain.predict(clicks[:n])[1]
        expected = refiner.refine(net, [Click(p, (y, x)) for x, y, p in clicks[:n]])
        np.testing.assert_array_equal(prob, expected)
        probs.append(prob)
    assert not np.array_equal(probs[-1], plain.predict(clicks)[1])

    np.testing.assert_array_equal(session.predict(clicks[:1])[1], probs[0])  # undo
    assert session.last_computed_clicks == 0
    np.testing.assert_array_equal(session.predict(clicks)[1], probs[2])  # redo
    fresh = Predictor(tiny_ckpt, with_flip=False, refine="grabcut")
    fresh.set_image(image)
    np.testing.assert_allclose(fresh.predict(clicks)[1], probs[2], atol=1e-6)
    assert not session.predict([])[0].any()  # reset: no clicks, empty mask


def test_cli_refine_option(image_path: Path, tiny_ckpt: Path, tmp_path: Path):
    outs = {}
    for mode in ("none", "grabcut"):
        out = tmp_path / f"{mode}.png"
        code = main(["--image", str(image_path), "--clicks", "200,150,+", "--output", str(out),
                     "--checkpoint", str(tiny_ckpt), "--cpu", "--refine", mode])
        assert code == 0
        outs[mode] = read_png(out)
    assert not np.array_equal(outs["none"], outs["grabcut"])
    proc = run_cli("--image", str(image_path), "--clicks", "1,1,+", "--output",
                   str(tmp_path / "x.png"), "--refine", "crf")
    assert proc.returncode == 2 and "invalid choice: 'crf'" in proc.stderr


# --------------------------------------------------------------------------- precision / backend
def test_cli_precision_the_cpu_lacks_is_one_line_before_torch(image_path: Path, tmp_path: Path):
    """fp16 is CUDA-only: with --cpu it is refused before the model loads (exit 2)."""
    proc = run_cli("--image", str(image_path), "--clicks", "1,1,+",
                   "--output", str(tmp_path / "m.png"), "--precision", "fp16")
    assert_one_line_error(proc, "--precision fp16", "CUDA")
    assert not (tmp_path / "m.png").exists()


def test_session_int8_and_onnxruntime_follow_fp32(tiny_ckpt: Path, image: np.ndarray,
                                                  tmp_path: Path, monkeypatch):
    """The session runs the network as --precision / --backend ask: int8 swaps the Linear
    layers for dynamically quantised ones and stays close to fp32; onnxruntime runs the
    exported graph and agrees with eager fp32 to float rounding."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    from isegm.inference.onnx_backend import OnnxModel

    monkeypatch.setenv("ISEGM_CACHE", str(tmp_path / "cache"))
    clicks = [(120, 80, True), (200, 40, False)]
    probs = {}
    for name, kwargs in {"fp32": {}, "int8": {"precision": "int8"},
                         "onnx": {"backend": "onnxruntime"}}.items():
        p = Predictor(tiny_ckpt, device="cpu", refine="none", **kwargs)
        if name == "int8":
            assert any(isinstance(m, DynamicLinear) for m in p.model.modules())
        if name == "onnx":
            assert isinstance(p.model, OnnxModel)
        p.set_image(image)
        probs[name] = p.predict(clicks)[1]
    assert list((tmp_path / "cache").rglob("*.onnx")), "the export was not cached"
    assert np.abs(probs["onnx"] - probs["fp32"]).max() <= 1e-4
    assert np.abs(probs["int8"] - probs["fp32"]).max() <= 0.1
    assert np.abs(probs["int8"] - probs["fp32"]).mean() <= 0.01
