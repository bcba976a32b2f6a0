"""Training sets from the user's files (``ImagesDir:`` / ``COCO:``): objects read back exactly,
crowd / category / min-area rules, one problem line per bad file before training, the server's
own COCO export, and the validation split by image."""
from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest
from pycocotools import mask as coco_mask

from isegm.data.datasets import get_eval_dataset
from isegm.data.datasets.user_data import DataCheckError, UserDataOptions, open_user_sets
from isegm.serve.formats import coco_document


def _image(rng, h=48, w=64):
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


def _write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def _label_map(h=48, w=64):
    labels = np.zeros((h, w), np.uint8)
    labels[5:25, 5:30] = 1  # 500 px
    labels[30:40, 40:60] = 2  # 200 px
    labels[44:46, 2:4] = 3  # 4 px: below --min-area
    return labels


def _objects(ds, index=0):
    s = ds.get_sample(index)
    return [s.gt_mask(j) for j in range(len(s.objects_ids))]


def _rle(mask):
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode()}


def test_images_dir_label_map_min_area_counted(tmp_path, rng, caplog):
    _write_png(tmp_path / "d" / "images" / "a.png", _image(rng))
    _write_png(tmp_path / "d" / "masks" / "a.png", _label_map())
    with caplog.at_level(logging.INFO):
        train, val = open_user_sets([f"ImagesDir:{tmp_path / 'd'}"], None, None,
                                    UserDataOptions(min_area=10))
    assert val is None and len(train) == 1
    masks = _objects(train)
    labels = _label_map()
    assert len(masks) == 2  # the 4-pixel object is left out ...
    np.testing.assert_array_equal(masks[0], (labels == 1).astype(np.int32))
    np.testing.assert_array_equal(masks[1], (labels == 2).astype(np.int32))
    assert "1 object(s) below 10 pixels left out" in caplog.text  # ... and counted


def test_coco_polygons_rle_crowd_category_and_images_option(tmp_path, rng):
    h, w = 48, 64
    _write_png(tmp_path / "pics" / "x.png", _image(rng, h, w))
    square = np.zeros((h, w), bool)
    square[10:20, 10:30] = True
    blob = np.zeros((h, w), bool)
    blob[25:45, 35:60] = True
    doc = {
        "images": [{"id": 7, "file_name": "x.png", "width": w, "height": h},
                   {"id": 8, "file_name": "unannotated.png", "width": w, "height": h}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "iscrowd": 0,
             "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]]},  # polygon
            {"id": 2, "image_id": 7, "category_id": 2, "iscrowd": 0, "segmentation": _rle(blob)},
            {"id": 3, "image_id": 7, "category_id": 1, "iscrowd": 1, "segmentation": _rle(blob)},
        ],
        "categories": [{"id": 1, "name": "cell"}, {"id": 2, "name": "debris"}],
    }
    ann = tmp_path / "ann" / "instances.json"
    ann.parent.mkdir()
    ann.write_text(json.dumps(doc))
    train, _ = open_user_sets([f"COCO:{ann}"], None, None,
                              UserDataOptions(images=str(tmp_path / "pics")))
    masks = _objects(train)
    assert len(masks) == 2  # the crowd annotation is ignored
    assert abs(int(masks[0].sum()) - int(square.sum())) <= 40  # polygon edges rasterised
    np.testing.assert_array_equal(masks[1], blob.astype(np.int32))

    only, _ = open_user_sets([f"COCO:{ann}"], None, None,
                             UserDataOptions(images=str(tmp_path / "pics"),
                                             categories=("debris",)))
    (mask,) = _objects(only)
    np.testing.assert_array_equal(mask, blob.astype(np.int32))
    with pytest.raises(DataCheckError) as e:
        open_user_sets([f"COCO:{ann}"], None, None,
                       UserDataOptions(images=str(tmp_path / "pics"), categories=("dust",)))
    assert "no category 'dust'" in e.value.problems[0]


def test_server_coco_export_reads_back(tmp_path, rng):
    image = _image(rng)
    labels = _label_map()
    cv2.imwrite(str(tmp_path / "photo.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (tmp_path / "coco.json").write_text(json.dumps(coco_document(labels, "photo.png")))
    for ds in (open_user_sets([f"COCO:{tmp_path / 'coco.json'}"], None, None,
                              UserDataOptions())[0],
               get_eval_dataset(f"COCO:{tmp_path / 'coco.json'}", {})):
        s = ds.get_sample(0)
        np.testing.assert_array_equal(s.image, image)
        masks = [s.gt_mask(j) for j in range(len(s.objects_ids))]
        assert len(masks) == 3
        for k, m in enumerate(masks, 1):
            np.testing.assert_array_equal(m, (labels == k).astype(np.int32))


def test_every_bad_file_is_one_line_before_training(tmp_path, rng):
    # ImagesDir: a good pair, a mask of another size, a soft mask
    d = tmp_path / "d"
    for stem in ("good", "small", "soft"):
        _write_png(d / "images" / f"{stem}.png", _image(rng))
    _write_png(d / "masks" / "good.png", _label_map())
    _write_png(d / "masks" / "small.png", np.zeros((10, 10), np.uint8) + 255)
    _write_png(d / "masks" / "soft.png", np.tile(np.arange(64, dtype=np.uint8) * 3, (48, 1)))
    # COCO: a missing image; a broken JSON
    doc = coco_document(_label_map(), "missing.png")
    (tmp_path / "a.json").write_text(json.dumps(doc))
    (tmp_path / "broken.json").write_text('{"images": [')
    with pytest.raises(DataCheckError) as e:
        open_user_sets([f"ImagesDir:{d}", f"COCO:{tmp_path / 'a.json'}",
                        f"COCO:{tmp_path / 'broken.json'}"], None, None, UserDataOptions())
    problems = e.value.problems
    assert len(problems) == 4, problems
    assert all("\n" not in p for p in problems)
    joined = "\n".join(problems)
    for name in ("small.png", "soft.png", "missing.png", "broken.json"):
        assert name in joined
    assert "good.png" not in joined


def test_empty_set_is_refused(tmp_path, rng):
    d = tmp_path / "d"
    _write_png(d / "images" / "a.png", _image(rng))
    _write_png(d / "masks" / "a.png", np.zeros((48, 64), np.uint8))
    with pytest.raises(DataCheckError) as e:
        open_user_sets([f"ImagesDir:{d}"], None, None, UserDataOptions())
    assert "no object" in e.value.problems[0]


def test_val_fraction_splits_by_image(tmp_path, rng):
    d = tmp_path / "d"
    for i in range(10):
        _write_png(d / "images" / f"im{i}.png", _image(rng))
        _write_png(d / "masks" / f"im{i}_1.png", (_label_map() == 1).astype(np.uint8))
        _write_png(d / "masks" / f"im{i}_2.png", (_label_map() == 2).astype(np.uint8))
    opts = UserDataOptions(min_area=10)
    train, val = open_user_sets([f"ImagesDir:{d}"], None, 0.2, opts, seed=3)
    images = lambda ds: {e.group for e in ds.dataset_samples}  # noqa: E731
    assert len(images(val)) == 2 and len(images(train)) == 8
    assert not images(val) & images(train)  # two masks of one image stay together
    assert len(val) == 4 and len(train) == 16
    again = open_user_sets([f"ImagesDir:{d}"], None, 0.2, UserDataOptions(min_area=10), seed=3)
    assert images(again[1]) == images(val)  # stable


def test_zoom_crops_show_the_object_as_the_evaluation_zoom_does(tmp_path, rng):
    _write_png(tmp_path / "d" / "images" / "a.png", _image(rng, 200, 300))
    labels = np.zeros((200, 300), np.uint8)
    labels[100:110, 200:212] = 1  # a small object: 120 of 60000 px
    _write_png(tmp_path / "d" / "masks" / "a.png", labels)
    train, _ = open_user_sets([f"ImagesDir:{tmp_path / 'd'}"], None, None,
                              UserDataOptions(min_area=10))
    train.zoom_prob, train.zoom_size = 1.0, 64
    for seed in range(5):
        s = train.get_sample(0, np.random.default_rng(seed))
        assert max(s.image.shape[:2]) == 64
        fraction = s.gt_mask(0).sum() / s.gt_mask(0).size
        assert 0.15 < fraction < 1.0  # the box is 1.2-2x the object's: it fills the view
    train.zoom_prob = 0.0
    np.testing.assert_array_equal(train.get_sample(0, np.random.default_rng(0)).gt_mask(0),
                                  labels.astype(np.int32))


@pytest.mark.parametrize("segmentation", [[], [[1, 2]], {"counts": "abc"}])
def test_broken_segmentation_is_one_line(tmp_path, rng, segmentation):
    _write_png(tmp_path / "x.png", _image(rng))
    doc = {"images": [{"id": 1, "file_name": "x.png", "width": 64, "height": 48}],
           "annotations": [{"id": 9, "image_id": 1, "category_id": 1,
                            "segmentation": segmentation}]}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    with pytest.raises(DataCheckError) as e:
        open_user_sets([f"COCO:{tmp_path / 'a.json'}"], None, None, UserDataOptions())
    (line,) = e.value.problems
    assert "annotation 9 of" in line and "x.png" in line


def test_coco_folder_reads_every_export(tmp_path, rng):
    for i in range(2):
        _write_png(tmp_path / "ann" / f"im{i}.png", _image(rng))
        (tmp_path / "ann" / f"im{i}.json").write_text(
            json.dumps(coco_document(_label_map(), f"im{i}.png")))
    train, _ = open_user_sets([f"COCO:{tmp_path / 'ann'}"], None, None, UserDataOptions())
    assert len(train) == 2 and [len(e.ids) for e in train.dataset_samples] == [3, 3]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataCheckError) as e:
        open_user_sets([f"COCO:{tmp_path / 'empty'}"], None, None, UserDataOptions())
    assert "no .json file" in e.value.problems[0]
