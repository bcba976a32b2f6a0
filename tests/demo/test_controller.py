"""The demo's controller, worker and rendering without a display (DiskNet gives exact masks)."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from demo_fakes import DiskNet, disk, expected_mask  # tests/demo is on sys.path

from isegm.demo import InteractiveController, label_map_dtype
from isegm.demo.render import CURRENT_RGB, label_palette, render_view
from isegm.demo.worker import InferenceWorker
from isegm.predict import InputError, Predictor, read_mask

H, W = 120, 160


def make_controller(memory: bool = False, delay: float = 0.0,
                    hold: Path | None = None) -> InteractiveController:
    predictor = Predictor(DiskNet(radius=10, memory=memory, delay=delay, hold=hold),
                          zoom_in=False)
    controller = InteractiveController(predictor)
    rng = np.random.default_rng(0)
    controller.set_image(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), "noise.png")
    return controller


def disk10(x: float, y: float) -> np.ndarray:
    return disk((H, W), x, y, 10)


def test_clicks_and_undo():
    c = make_controller()
    assert c.current_prob is None and c.undo_click() is False
    c.add_click(40, 30, True)
    first = c.current_mask.copy()
    np.testing.assert_array_equal(first, disk10(40, 30))
    c.add_click(45, 30, False)
    c.add_click(100, 80, True)
    clicks = [(40, 30, True), (45, 30, False), (100, 80, True)]
    assert c.clicks == [(40.0, 30.0, True), (45.0, 30.0, False), (100.0, 80.0, True)]
    np.testing.assert_array_equal(c.current_mask, expected_mask((H, W), clicks, 10))
    assert c.last_click_seconds is not None and c.last_click_seconds >= 0

    calls = c.predictor.model.calls
    assert c.undo_click() and c.undo_click()
    np.testing.assert_array_equal(c.current_mask, first)
    assert c.predictor.model.calls == calls  # undo restores cached states, no network call
    assert c.undo_click() and c.current_prob is None and c.clicks == []
    assert c.undo_click() is False


def test_click_outside_is_rejected_and_not_kept():
    c = make_controller()
    with pytest.raises(InputError, match=f"{W}x{H}"):
        c.add_click(W, 0, True)
    assert c.clicks == []


def test_finish_objects_and_saved_label_values(tmp_path: Path):
    c = make_controller()
    assert c.finish_object() is False  # nothing in progress
    c.add_click(40, 30, True)
    assert c.finish_object() is True
    assert c.object_count == 1 and c.clicks == [] and c.current_prob is None
    c.add_click(48, 30, True)  # overlaps object 1: the later object paints over it
    c.add_click(120, 90, True)
    result = c.result_mask()  # object in progress included as label 2
    expected = np.zeros((H, W), np.uint16)
    expected[disk10(40, 30)] = 1
    expected[disk10(48, 30) | disk10(120, 90)] = 2
    np.testing.assert_array_equal(result, expected)
    assert c.finish_object() and c.object_count == 2

    c.add_click(5, 5, False)  # an empty object is dropped, not numbered
    assert c.finish_object() is False and c.object_count == 2

    path = c.save_mask(tmp_path / "mask.png")
    saved = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert saved.dtype == np.uint8 and set(np.unique(saved)) == {0, 1, 2}  # not rescaled
    np.testing.assert_array_equal(saved, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.png"]  # no temp file left
    with pytest.raises(InputError, match="PNG"):
        c.save_mask(tmp_path / "mask.jpg")


def test_label_map_dtype_beyond_255_objects(tmp_path: Path):
    assert label_map_dtype(1) is np.uint8 and label_map_dtype(255) is np.uint8
    assert label_map_dtype(256) is np.uint16
    c = make_controller()
    labels = (np.arange(H * W).reshape(H, W) % 300 + 1).astype(np.uint16)  # labels 1..300
    c.load_mask(labels)
    assert c.object_count == 299 and c.has_loaded_mask
    np.testing.assert_array_equal(c.current_mask, labels == 300)
    path = c.save_mask(tmp_path / "many.png")
    saved = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert saved.dtype == np.uint16
    np.testing.assert_array_equal(saved, labels)


def test_load_binary_mask_becomes_the_previous_mask(tmp_path: Path):
    c = make_controller(memory=True)
    c.add_click(10, 10, True)
    c.finish_object()
    mask = np.zeros((H, W), np.uint8)
    mask[40:100, 50:130] = 255
    path = tmp_path / "loaded.png"
    cv2.imwrite(str(path), mask)
    c.load_mask(read_mask(path, (H, W)))
    assert c.object_count == 1  # finished objects are kept
    np.testing.assert_array_equal(c.current_mask, mask > 0)  # shown before any click
    c.add_click(60, 50, False)  # DiskNet(memory) cuts from the previous mask it is given
    np.testing.assert_array_equal(c.current_mask, (mask > 0) & ~disk10(60, 50))
    assert c.predictor.model.last_points[0, :, 2].max() == 1  # the mask counts as click 0
    c.add_click(30, 110, True)
    np.testing.assert_array_equal(
        c.current_mask, ((mask > 0) & ~disk10(60, 50)) | disk10(30, 110)
    )
    assert c.undo_click() and c.undo_click()
    np.testing.assert_array_equal(c.current_mask, mask > 0)  # back to the loaded mask
    assert c.finish_object() and c.object_count == 2
    expected = np.zeros((H, W), np.uint8)
    expected[disk10(10, 10)] = 1
    expected[mask > 0] = 2
    np.testing.assert_array_equal(c.label_map(), expected)


def test_load_label_map_restores_objects_and_reopens_the_last():
    c = make_controller()
    labels = np.zeros((H, W), np.uint8)
    labels[:20] = 3
    labels[50:60] = 7
    labels[100:] = 9
    c.load_mask(labels)
    assert c.object_count == 2
    np.testing.assert_array_equal(c.current_mask, labels == 9)
    expected = np.select([labels == 3, labels == 7, labels == 9], [1, 2, 3], 0)
    np.testing.assert_array_equal(c.result_mask(), expected)


def test_load_mask_errors_and_reset():
    c = make_controller()
    with pytest.raises(InputError, match="shape"):
        c.load_mask(np.ones((H + 1, W), np.uint8))
    with pytest.raises(InputError, match="no object"):
        c.load_mask(np.zeros((H, W), np.uint8))
    c.predictor.model.with_prev_mask = False
    with pytest.raises(InputError, match="no previous mask"):
        c.load_mask(np.ones((H, W), np.uint8))
    c.predictor.model.with_prev_mask = True
    c.load_mask(np.ones((H, W), np.uint8))
    c.add_click(5, 5, False)
    c.reset_clicks()
    assert c.clicks == [] and c.current_prob is None and not c.has_loaded_mask


def test_threshold_zoom_in_and_new_image():
    c = make_controller()
    c.add_click(40, 30, True)
    c.set_threshold(1.0)
    assert not c.current_mask.any() and not c.finish_object()  # empty at this threshold
    c.set_threshold(0.5)
    with pytest.raises(ValueError):
        c.set_threshold(1.5)
    c.add_click(40, 30, True)
    c.set_zoom_in(True)  # predicted again with zoom-in: the clicked pixel stays in the mask
    assert c.predictor.zoom_in and c.current_mask[30, 40]
    c.finish_object()
    c.set_image(np.zeros((30, 40, 3), np.uint8), "black.png")
    assert c.object_count == 0 and c.clicks == [] and c.result_mask().shape == (30, 40)
    with pytest.raises(InputError, match="load an image"):
        InteractiveController(c.predictor).add_click(1, 1, True)


def test_view_and_render():
    c = make_controller()
    c.add_click(40, 30, True)
    c.finish_object()
    c.add_click(120, 90, True)
    view = c.view()
    assert view.object_count == 1 and view.clicks == ((120.0, 90.0, True),)
    c.add_click(60, 60, True)  # the view is a snapshot
    assert len(view.clicks) == 1 and not view.current_mask[60, 60]

    rgb = render_view(view, alpha=1.0)
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[30, 40], label_palette(1)[1])  # object 1, opaque
    np.testing.assert_array_equal(rgb[90, 120], CURRENT_RGB)  # object in progress
    np.testing.assert_array_equal(rgb[5, 80], view.image[5, 80])  # background untouched
    assert render_view(view, alpha=0.0)[90, 120].tolist() == view.image[90, 120].tolist()
    assert not (render_view(view, alpha=1.0, threshold=1.0)[90, 120] == CURRENT_RGB).all()


def test_worker_keeps_order_and_never_blocks_the_caller(tmp_path: Path):
    hold = tmp_path / "hold"
    hold.touch()  # the model waits while this file exists
    c = make_controller(hold=hold)
    worker = InferenceWorker(c)
    # safety net: a submit() that waited for the model would hang; release it after a while so
    # the test fails (results already there) instead of hanging
    release = threading.Timer(120, hold.unlink, kwargs={"missing_ok": True})
    release.start()
    try:
        for x in (20, 60, 100):
            worker.submit("click", lambda ctl, x=x: ctl.add_click(x, 50, True))
        worker.submit("undo", lambda ctl: ctl.undo_click())
        worker.submit("click", lambda ctl: ctl.add_click(W + 5, 0, True))  # fails, reported
        worker.submit("finish", lambda ctl: ctl.finish_object())
        # submitting does not wait for the model: it is still held, nothing has finished
        assert worker.poll() == [] and worker.pending == 6
        hold.unlink()
        results = worker.wait(timeout=600)
        assert [r.name for r in results] == ["click", "click", "click", "undo", "click", "finish"]
        assert [len(r.view.clicks) for r in results[:4]] == [1, 2, 3, 2]
        assert results[4].error is not None and "outside" in results[4].error
        assert results[5].value is True and results[5].view.object_count == 1
        np.testing.assert_array_equal(
            results[5].view.finished > 0, disk10(20, 50) | disk10(60, 50)
        )
        assert worker.pending == 0 and worker.poll() == []
        assert threading.current_thread() is threading.main_thread()
    finally:
        release.cancel()
        hold.unlink(missing_ok=True)
        worker.stop()


def test_ctrl_m_soft_masks_give_one_object_label_maps_several(tmp_path: Path, caplog):
    """Ctrl+M reads files with predict.read_mask: before, a blurred mask gave ~250 objects and
    a JPEG-saved binary mask a dozen."""
    square = np.zeros((H, W), np.uint8)
    square[40:100, 50:130] = 255
    files = {
        "blurred.png": cv2.GaussianBlur(square, (15, 15), 5),
        "saved.jpg": square,
    }
    for name, array in files.items():
        cv2.imwrite(str(tmp_path / name), array, [cv2.IMWRITE_JPEG_QUALITY, 50])
        c = make_controller(memory=True)
        c.load_mask(read_mask(tmp_path / name, (H, W)))
        assert c.object_count == 0 and c.has_loaded_mask, name
        overlap = (c.current_mask & (square > 0)).sum() / (c.current_mask | (square > 0)).sum()
        assert overlap > 0.95, name
        assert "soft" in caplog.text and "50 % of its maximum" in caplog.text
    labels = np.zeros((H, W), np.uint8)
    labels[:20], labels[50:60], labels[100:] = 1, 2, 3
    cv2.imwrite(str(tmp_path / "labels.png"), labels)
    c = make_controller(memory=True)
    c.load_mask(read_mask(tmp_path / "labels.png", (H, W)))
    assert c.object_count == 2
    np.testing.assert_array_equal(c.current_mask, labels == 3)
