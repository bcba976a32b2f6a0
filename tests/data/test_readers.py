"""Dataset readers on tiny fake layouts built in tmp_path."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
from fake_files import random_image, write_gray, write_rgb  # tests/data is on sys.path
from PIL import Image
from scipy.io import savemat

from isegm.data.base import DatasetError
from isegm.data.datasets import (
    CocoDataset,
    CocoLvisDataset,
    DavisDataset,
    HQSeg44kDataset,
    ImagesDirDataset,
    LoveDADataset,
    LvisDataset,
    PascalVocDataset,
    SBDDataset,
    SBDEvaluationDataset,
    get_eval_dataset,
)
from isegm.data.datasets.hqseg44k import HQSEG_SUBSETS
from isegm.data.datasets.pascalvoc import voc_colormap
from isegm.data.packed_masks import encode_layers
from isegm.data.points_sampler import MultiPointSampler


# ---------------------------------------------------------------------- DAVIS / COCO_MVal
def test_davis_matches_full_stem_and_any_channel(tmp_path, rng):
    for name in ("frame.v1", "frame.v2"):
        write_rgb(tmp_path / "img" / f"{name}.jpg", random_image(rng))
        mask = np.zeros((40, 50, 3), np.uint8)
        mask[5:15, 5:15, 2] = 200 if name.endswith("1") else 0
        mask[20:30, 20:30, 0] = 7
        write_rgb(tmp_path / "gt" / f"{name}.png", mask)
    ds = DavisDataset(tmp_path)
    assert ds.name == "DAVIS" and len(ds) == 2
    s0, s1 = ds.get_sample(0), ds.get_sample(1)
    assert s0.image_name == "frame.v1" and s1.image_name == "frame.v2"
    assert s0.gt_mask().sum() == 200 and s1.gt_mask().sum() == 100
    mval = get_eval_dataset("COCO_MVal", {"COCO_MVAL_PATH": str(tmp_path)})
    assert mval.name == "COCO_MVal" and len(mval) == 2


def test_berkeley_ignore_band(tmp_path, rng):
    write_rgb(tmp_path / "images" / "x.jpg", random_image(rng))
    mask = np.zeros((40, 50), np.uint8)
    mask[10:20, 10:20] = 255
    mask[10:20, 20:22] = 128
    write_gray(tmp_path / "masks" / "x.png", mask)
    s = get_eval_dataset("Berkeley", {"BERKELEY_PATH": str(tmp_path)}).get_sample(0)
    gt = s.gt_mask()
    assert (gt == 1).sum() == 100 and (gt == -1).sum() == 20


# ---------------------------------------------------------------------- PascalVOC
def _write_palette_png(path: Path, indices: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(indices.astype(np.uint8), mode="P")
    img.putpalette(voc_colormap().ravel().tolist())
    img.save(path)


def test_pascalvoc_instances_by_palette_index(tmp_path, rng):
    cmap = voc_colormap()
    grey = cv2.cvtColor(cmap[[1, 16]][None].astype(np.uint8), cv2.COLOR_RGB2GRAY)[0]
    assert grey[0] == grey[1]  # the reference's grey decoding would merge these two
    indices = np.zeros((40, 50), np.uint8)
    indices[2:12, 2:12] = 1
    indices[20:30, 20:35] = 16
    indices[12:14, 2:12] = 255
    _write_palette_png(tmp_path / "SegmentationObject" / "2007_000001.png", indices)
    write_rgb(tmp_path / "JPEGImages" / "2007_000001.jpg", random_image(rng))
    (tmp_path / "ImageSets" / "Segmentation").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000001\n")

    ds = get_eval_dataset("PascalVOC", {"PASCALVOC_PATH": str(tmp_path)})
    assert isinstance(ds, PascalVocDataset) and len(ds) == 2
    a, b = ds.get_sample(0), ds.get_sample(1)
    assert (a.gt_mask() == 1).sum() == 100 and (b.gt_mask() == 1).sum() == 150
    assert (a.gt_mask() == -1).sum() == 20 and (b.gt_mask() == -1).sum() == 20
    assert not np.any((a.gt_mask() == 1) & (b.gt_mask() == 1))
    assert a.image_name == "2007_000001#1" and b.image_name == "2007_000001#16"
    assert not list(tmp_path.glob("*.pkl")) and not list(tmp_path.glob("*.json"))


def test_pascalvoc_rgb_png_is_mapped_back_to_indices(tmp_path, rng):
    cmap = voc_colormap()
    rgb = np.zeros((40, 50, 3), np.uint8)
    rgb[2:12, 2:12] = cmap[3]
    rgb[30:, 30:] = cmap[255]
    write_rgb(tmp_path / "SegmentationObject" / "a.png", rgb)
    write_rgb(tmp_path / "JPEGImages" / "a.jpg", random_image(rng))
    (tmp_path / "ImageSets" / "Segmentation").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Segmentation" / "val.txt").write_text("a\n")
    ds = PascalVocDataset(tmp_path)
    assert ds.dataset_samples == [("a", 3)]
    assert (ds.get_sample(0).gt_mask() == -1).sum() == 200


# ---------------------------------------------------------------------- SBD
def _write_sbd(root: Path, rng, split: str, instance_maps: dict[str, np.ndarray]) -> None:
    for image_id, inst in instance_maps.items():
        write_rgb(root / "img" / f"{image_id}.jpg", random_image(rng, *inst.shape))
        (root / "inst").mkdir(parents=True, exist_ok=True)
        gt = {"Segmentation": inst.astype(np.uint8), "Boundaries": np.zeros((1, 1)),
              "Categories": np.ones((int(inst.max()), 1), np.uint8)}
        savemat(root / "inst" / f"{image_id}.mat", {"GTinst": gt})
    (root / f"{split}.txt").write_text("\n".join(instance_maps) + "\n")


def test_sbd_evaluation_one_sample_per_instance(tmp_path, rng, isolated_cache):
    a = np.zeros((40, 50), np.int32)
    a[2:10, 2:10] = 1
    a[20:30, 20:30] = 2
    a[32:34, 0:2] = 2  # second component of instance 2: kept (no largest-component pass)
    b = np.zeros((40, 50), np.int32)
    b[5:25, 5:25] = 1
    _write_sbd(tmp_path, rng, "val", {"img_a": a, "img_b": b})
    ds = get_eval_dataset("SBD", {"SBD_PATH": str(tmp_path)})
    assert isinstance(ds, SBDEvaluationDataset) and len(ds) == 3
    assert [x[:2] for x in ds.dataset_samples] == [("img_a", 1), ("img_a", 2), ("img_b", 1)]
    s = ds.get_sample(1)
    assert s.gt_mask().sum() == 104 and s.image_name == "img_a#2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img", "inst", "val.txt"]
    assert list((isolated_cache / "datasets").glob("sbd-*.json"))
    again = SBDEvaluationDataset(tmp_path)  # cached list
    assert again.dataset_samples == ds.dataset_samples


def test_sbd_training_drops_buggy_masks(tmp_path, rng):
    inst = np.zeros((40, 50), np.int32)
    inst[2:12, 2:12] = 1
    idx = np.arange(40)
    inst[idx, idx] = 2  # a diagonal line fills 1/40 of its box
    _write_sbd(tmp_path, rng, "train", {"x": inst})
    s = SBDDataset(tmp_path).get_sample(0)
    assert len(s) == 1 and s.gt_mask(0).sum() == 100 - 10  # diagonal crosses instance 1
    assert get_eval_dataset("SBD_Train", {"SBD_PATH": str(tmp_path)}).name == "SBD_Train"


# ---------------------------------------------------------------------- COCO+LVIS
def _write_packed(split_path: Path, image_id: str, image: np.ndarray, layers: np.ndarray,
                  mapping: list, info: dict) -> None:
    write_rgb(split_path / "images" / f"{image_id}.jpg", image)
    (split_path / "masks").mkdir(parents=True, exist_ok=True)
    with open(split_path / "masks" / f"{image_id}.pickle", "wb") as f:
        pickle.dump((encode_layers(layers), mapping), f)


def test_coco_lvis_layers_hierarchy_and_stuff(tmp_path, rng):
    split = tmp_path / "train"
    layers = np.zeros((40, 50, 2), np.uint8)
    layers[0:30, 0:30, 0] = 1   # object 0 (parent)
    layers[5:15, 5:15, 1] = 1   # object 1 (child, overlapping: other layer)
    layers[32:40, 0:50, 0] = 2  # object 2: stuff
    mapping = [(0, 1), (1, 1), (0, 2)]
    hierarchy = {0: {"parent": None, "children": [1], "node_level": 0},
                 1: {"parent": 0, "children": [], "node_level": 1}}
    _write_packed(split, "000001", random_image(rng), layers, mapping, {})
    with open(split / "hannotation.pickle", "wb") as f:
        pickle.dump({"000001": {"num_instance_masks": 2, "hierarchy": hierarchy}}, f)

    no_stuff = CocoLvisDataset(tmp_path, stuff_prob=0.0).get_sample(0)
    assert no_stuff.objects_ids == [0, 1]
    assert no_stuff.get_background_mask().sum() == 40 * 50 - 900
    assert no_stuff.objects[1]["parent"] == 0
    with_stuff = CocoLvisDataset(tmp_path, stuff_prob=1.0).get_sample(0)
    assert with_stuff.objects_ids == [0, 1, 2] and with_stuff.get_object_mask(2).sum() == 400

    ds = CocoLvisDataset(tmp_path, stuff_prob=0.3, epoch_len=4,
                         points_sampler=MultiPointSampler(4, use_hierarchy=True))
    item = ds[3]
    assert item["points"].shape == (8, 3) and item["instances"].shape == (1, 40, 50)


def test_coco_lvis_corrupt_mask_pickle(tmp_path, rng):
    split = tmp_path / "val"
    write_rgb(split / "images" / "7.jpg", random_image(rng))
    (split / "masks").mkdir(parents=True)
    (split / "masks" / "7.pickle").write_bytes(b"not a pickle")
    with open(split / "hannotation.pickle", "wb") as f:
        pickle.dump({"7": {"num_instance_masks": 0, "hierarchy": {}}}, f)
    with pytest.raises(DatasetError, match="7.pickle"):
        CocoLvisDataset(tmp_path, split="val").get_sample(0)


# ---------------------------------------------------------------------- LoveDA
def _write_loveda(root: Path, rng) -> None:
    split = root / "val"
    images = {}
    for image_id, boxes in {"imgA": [(0, 0, 4, 4), (10, 10, 30, 30), (0, 32, 20, 50)],
                            "imgB": [(5, 5, 7, 8), (0, 0, 40, 4)]}.items():
        layers = np.zeros((40, 50, 1), np.uint8)
        mapping = []
        for k, (y0, x0, y1, x1) in enumerate(boxes, start=1):
            layers[y0:y1, x0:x1, 0] = k
            mapping.append((0, k))
        _write_packed(split, image_id, random_image(rng), layers, mapping, {})
        images[image_id] = {"num_instance_masks": len(boxes),
                            "hierarchy": {i: None for i in range(len(boxes))}}
    with open(split / "hannotation.pickle", "wb") as f:
        pickle.dump(images, f)
    # sorted ids: 0 = imgA, 1 = imgB; object indices are global per image
    meta = {"small": {"0": [0], "1": [0]}, "medium": {"0": [2], "1": []},
            "large": {"0": [1], "1": []}, "huge": {"1": [1]}}
    np.save(split / "lovedams.npy", meta, allow_pickle=True)


def test_loveda_scales_are_not_swapped(tmp_path, rng):
    _write_loveda(tmp_path, rng)
    cfg = {"IS_LoveDA_PATH": str(tmp_path)}
    medium = get_eval_dataset("LoveDAMEDIUM", cfg)
    large = get_eval_dataset("LoveDALARGE", cfg)
    assert medium.scale == "medium" and medium.name == "LoveDAMEDIUM"
    assert large.scale == "large" and large.name == "LoveDALARGE"
    assert len(medium) == 1 and medium.get_sample(0).gt_mask().sum() == 20 * 18
    assert len(large) == 1 and large.get_sample(0).gt_mask().sum() == 20 * 20
    small = get_eval_dataset("LoveDASMALL", cfg)
    assert [small.get_sample(i).gt_mask().sum() for i in range(len(small))] == [16, 6]
    assert get_eval_dataset("LoveDAHUGE", cfg).get_sample(0).image_name == "imgB#1"
    everything = get_eval_dataset("LoveDA", cfg)
    assert isinstance(everything, LoveDADataset) and len(everything) == 5


# ---------------------------------------------------------------------- HQSeg44k
def test_hqseg44k_val_and_missing_subset(tmp_path, rng):
    for _, im_dir, gt_dir in HQSEG_SUBSETS["val"]:
        write_rgb(tmp_path / im_dir / "s.jpg", random_image(rng))
        mask = np.zeros((40, 50), np.uint8)
        mask[:10] = 255
        write_gray(tmp_path / gt_dir / "s.png", mask)
    ds = get_eval_dataset("HQSeg44k", {"HQSeg44K_PATH": str(tmp_path)})
    assert isinstance(ds, HQSeg44kDataset) and len(ds) == 4
    assert ds.get_sample(3).gt_mask().sum() == 500
    assert ds.get_sample(0).image_name == "DIS5K-VD_s"
    with pytest.raises(DatasetError, match="DIS-TR"):
        HQSeg44kDataset(tmp_path, split="train")


# ---------------------------------------------------------------------- ImagesDir
def test_images_dir_one_sample_per_mask(tmp_path, rng, caplog):
    for stem in ("a", "b", "d"):
        write_rgb(tmp_path / "images" / f"{stem}.jpg", random_image(rng))
    m = np.zeros((40, 50), np.uint8)
    m[:5] = 255
    write_gray(tmp_path / "masks" / "a.png", m)
    m2 = m.copy()
    m2[5:7] = 128
    write_gray(tmp_path / "masks" / "a_2.png", m2)
    write_gray(tmp_path / "masks" / "a_10.png", m)
    write_gray(tmp_path / "masks" / "b_0.png", m)
    write_gray(tmp_path / "masks" / "c_1.png", m)  # orphan
    ds = get_eval_dataset(f"ImagesDir:{tmp_path}", {})
    assert isinstance(ds, ImagesDirDataset)
    names = [ds.get_sample(i).image_name for i in range(len(ds))]
    assert names == ["a", "a_2", "a_10", "b_0"]
    assert (ds.get_sample(1).gt_mask() == -1).sum() == 100
    assert "no image" in caplog.text and "no mask" in caplog.text


# ---------------------------------------------------------------------- COCO panoptic, LVIS
def test_coco_panoptic(tmp_path, rng):
    write_rgb(tmp_path / "train" / "000000000001.jpg", random_image(rng))
    label = np.zeros((40, 50, 3), np.uint8)  # RGB
    label[0:10, :] = (1, 1, 0)    # id 257: thing
    label[10:20, :] = (2, 0, 1)   # id 65538: stuff
    label[20:30, :] = (3, 0, 0)   # id 3: crowd thing
    write_rgb(tmp_path / "annotations" / "panoptic_train" / "000000000001.png", label)
    anno = {
        "annotations": [{"file_name": "000000000001.png", "segments_info": [
            {"id": 257, "category_id": 1, "iscrowd": 0},
            {"id": 65538, "category_id": 200, "iscrowd": 0},
            {"id": 3, "category_id": 1, "iscrowd": 1}]}],
        "categories": [{"id": 1, "isthing": 1}, {"id": 200, "isthing": 0}],
    }
    (tmp_path / "annotations" / "panoptic_train.json").write_text(json.dumps(anno))
    s = CocoDataset(tmp_path).get_sample(0)
    assert len(s) == 1 and s.gt_mask(0).sum() == 500
    s = CocoDataset(tmp_path, stuff_prob=1.0).get_sample(0)
    assert len(s) == 2 and s.gt_mask(1)[10:20].all()


def test_lvis_polygon_and_rle(tmp_path, rng):
    from pycocotools import mask as mask_utils

    write_rgb(tmp_path / "train" / "images" / "000000000009.jpg", random_image(rng))
    rle_mask = np.zeros((40, 50), np.uint8, order="F")
    rle_mask[30:38, 30:40] = 1
    rle = mask_utils.encode(np.asfortranarray(rle_mask))
    rle["counts"] = rle["counts"].decode()
    anno = {
        "images": [{"id": 9, "height": 40, "width": 50,
                    "coco_url": "http://images.cocodataset.org/train2017/000000000009.jpg"}],
        "annotations": [
            {"image_id": 9, "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]},
            {"image_id": 9, "segmentation": rle},
            {"image_id": 9, "segmentation": [[3, 3, 11, 3, 11, 11, 3, 11]]},  # overlaps 1st
        ],
    }
    (tmp_path / "train" / "lvis_v1_train.json").write_text(json.dumps(anno))
    s = LvisDataset(tmp_path).get_sample(0)
    assert len(s) == 2
    assert sorted(int(s.gt_mask(k).sum()) for k in range(2)) in ([64, 80], [80, 100])
