"""The one mask reader (isegm.data.mask_io) and its users: ImagesDir, predict.read_mask, and the
evaluation's handling of empty objects."""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from fake_files import random_image, write_gray, write_rgb
from PIL import Image

from isegm.data.base import DatasetError
from isegm.data.datasets import get_eval_dataset
from isegm.data.mask_io import IGNORE_ID, read_mask_file
from isegm.inference.evaluation import evaluate_dataset
from isegm.inference.results import SampleRecord, record_from_result, summarize
from isegm.predict import InputError, read_mask

H, W = 40, 50


def _square(value: int = 1, dtype=np.uint8) -> np.ndarray:
    m = np.zeros((H, W), dtype)
    m[10:20, 5:25] = value
    return m


def _write_palette(path: Path, indices: np.ndarray) -> Path:
    img = Image.fromarray(indices.astype(np.uint8), mode="P")
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [128] * (3 * 253))
    img.save(path)
    return path


@pytest.mark.parametrize("value,dtype", [(1, np.uint8), (255, np.uint8), (7, np.uint8),
                                         (65535, np.uint16), (1, np.uint16)])
def test_binary_masks_of_any_value_are_one_object(tmp_path, value, dtype):
    path = tmp_path / "m.png"
    assert cv2.imwrite(str(path), _square(value, dtype))
    mask = read_mask_file(path)
    assert mask.kind == "binary" and mask.ids == [1]
    np.testing.assert_array_equal(mask.labels, _square(1).astype(np.int32))


def test_grey_saved_as_rgb_and_alpha_are_grey(tmp_path):
    grey = _square(255)
    bgra = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    assert cv2.imwrite(str(tmp_path / "m.png"), bgra)
    mask = read_mask_file(tmp_path / "m.png")
    assert mask.ids == [1] and mask.labels.sum() == 200


def test_red_on_black_colour_mask_is_refused_with_one_line(tmp_path):
    # Today's decoders disagreed on it: the dataset read blue (nothing), read_mask read red.
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[10:20, 5:25] = (255, 0, 0)
    write_rgb(tmp_path / "red.png", rgb)
    with pytest.raises(DatasetError, match=r"red\.png is a colour image") as e:
        read_mask_file(tmp_path / "red.png")
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="red.png"):
        read_mask(tmp_path / "red.png")


def test_trimap_label_map_and_palette(tmp_path):
    tri = _square(255)
    tri[20:22, 5:25] = 128
    mask = read_mask_file(write_gray(tmp_path / "tri.png", tri))
    assert mask.kind == "trimap" and mask.ids == [1]
    assert (mask.labels == IGNORE_ID).sum() == 40 and (mask.labels == 1).sum() == 200

    labels = np.zeros((H, W), np.uint8)
    labels[0:5], labels[10:12], labels[30:40] = 1, 2, 3
    mask = read_mask_file(write_gray(tmp_path / "labels.png", labels))
    assert mask.kind == "label map" and mask.ids == [1, 2, 3]

    indices = np.zeros((H, W), np.uint8)
    indices[0:5], indices[10:12], indices[12:13] = 4, 9, 255
    mask = read_mask_file(_write_palette(tmp_path / "voc.png", indices))
    assert mask.kind == "palette" and mask.ids == [4, 9]
    assert (mask.labels == IGNORE_ID).sum() == W and (mask.labels == 9).sum() == 2 * W
    # a palette file whose only object index is 255 is a binary mask, not all-void
    only = read_mask_file(_write_palette(tmp_path / "only255.png", _square(255)))
    assert only.ids == [255] and (only.labels == 255).sum() == 200


def _soft_masks(tmp_path: Path) -> dict[str, Path]:
    blurred = cv2.GaussianBlur(_square(255), (9, 9), 3)
    jpeg = tmp_path / "jpeg.jpg"
    assert cv2.imwrite(str(jpeg), _square(255), [cv2.IMWRITE_JPEG_QUALITY, 60])
    return {"blur": write_gray(tmp_path / "blur.png", blurred), "jpeg": jpeg}


def test_soft_masks_are_refused_or_thresholded_at_half_the_maximum(tmp_path, caplog):
    for name, path in _soft_masks(tmp_path).items():
        with pytest.raises(DatasetError, match="fits no supported format"):
            read_mask_file(path)
        with caplog.at_level(logging.WARNING):
            mask = read_mask_file(path, soft="threshold")
        assert mask.kind == "soft" and mask.ids == [1], name
        assert "object = value >=" in caplog.text
        iou = (mask.labels.astype(bool) & (_square() > 0)).sum() / \
            (mask.labels.astype(bool) | (_square() > 0)).sum()
        assert iou > 0.85, name
        # predict.read_mask (the demo's and --prev-mask's reader) gives one object as well
        assert np.unique(read_mask(path)).tolist() == [0, 1]


def test_empty_and_undecodable_masks(tmp_path):
    assert read_mask_file(write_gray(tmp_path / "e.png", np.zeros((H, W)))).ids == []
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="bad.png"):
        read_mask_file(tmp_path / "bad.png")


# ----------------------------------------------------------------------------- ImagesDir
class _Oracle:
    """A predictor that knows each image's object mask (keyed by the image bytes)."""

    def __init__(self, masks: dict[bytes, np.ndarray]) -> None:
        self.masks, self.current = masks, None

    def set_input_image(self, image):
        self.current = self.masks[image.tobytes()]

    def get_prediction(self, clicker):
        return self.current.astype(np.float32)


def test_images_dir_formats_and_empty_masks_are_not_failures(tmp_path, rng, caplog):
    images, masks = tmp_path / "images", tmp_path / "masks"
    truth = {}
    for stem, mask in {"zero_one": _square(1), "zero_255": _square(255),
                       "empty": np.zeros((H, W), np.uint8)}.items():
        image = random_image(rng, H, W)
        write_rgb(images / f"{stem}.png", image)
        write_gray(masks / f"{stem}.png", mask)
        truth[image.tobytes()] = mask > 0
    ds = get_eval_dataset(f"ImagesDir:{tmp_path}", {})
    assert [int(ds.get_sample(i).gt_mask().sum()) for i in range(len(ds))] == [0, 200, 200]

    with caplog.at_level(logging.WARNING):
        results = list(evaluate_dataset(ds, _Oracle(truth), max_iou_thr=0.9, max_clicks=5))
    records = [record_from_result(r, ds.dataset_samples[r.index][1].stem) for r in results]
    records = [SampleRecord.from_json(r.to_json()) for r in records]  # survives the jsonl log
    row = summarize(records, n_clicks=5, target_iou=0.9)
    # Before: the 0/1 mask and the empty mask each counted as a failure at NoC = 5.
    assert row["noc_85"] == 1.0 and row["nof_85"] == 0 and row["samples"] == 2
    assert row["empty_objects"] == 1 and row["empty_names"] == ["empty"]
    assert "empty mask" in caplog.text and f"({masks / 'empty.png'})" in caplog.text


def test_images_dir_colour_mask_is_one_line_naming_the_file(tmp_path, rng):
    write_rgb(tmp_path / "images" / "a.png", random_image(rng, H, W))
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[5:9] = (0, 0, 200)
    write_rgb(tmp_path / "masks" / "a.png", rgb)
    ds = get_eval_dataset(f"ImagesDir:{tmp_path}", {})
    (result,) = evaluate_dataset(ds, _Oracle({}), max_iou_thr=0.9, max_clicks=3)
    assert result.error is not None and "a.png is a colour image" in result.error
    assert "\n" not in result.error
