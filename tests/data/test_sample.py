"""DSample: object masks, ignore regions, augmentation alignment, small-object removal."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from isegm.data.sample import DSample
from isegm.data.transforms import UniformRandomResize, seed_transform


def _image(h=30, w=40):
    return np.zeros((h, w, 3), np.uint8)


def test_gt_mask_values_and_ignore():
    labels = np.zeros((30, 40), np.int32)
    labels[5:10, 5:10] = 1
    labels[5:10, 10:12] = -1
    s = DSample(_image(), labels, objects_ids=[1], ignore_ids=[-1], sample_id=3, image_name="x")
    gt = s.gt_mask(0)
    assert gt.dtype == np.int32 and gt.shape == (30, 40)
    assert (gt == 1).sum() == 25 and (gt == -1).sum() == 10
    assert set(np.unique(gt)) == {-1, 0, 1}
    assert s.objects_ids == [0] and len(s) == 1
    assert s.sample_id == 3 and s.image_name == "x"


def test_ignore_region_applies_to_its_own_layer_only():
    layers = np.zeros((10, 10, 2), np.uint8)
    layers[:5, :, 0] = 1
    layers[:, :5, 1] = 1
    layers[5:, 5:, 1] = 2
    s = DSample(_image(10, 10), layers, objects_ids=[(0, 1), (1, 1)], ignore_ids=[(1, 2)])
    assert (s.gt_mask(0) == -1).sum() == 0
    assert (s.gt_mask(1) == -1).sum() == 25


def test_plain_ids_with_several_layers_are_rejected():
    with pytest.raises(ValueError):
        DSample(_image(10, 10), np.zeros((10, 10, 2), np.uint8), objects_ids=[1])


def test_mask_of_other_size_is_resized_without_axis_swap():
    labels = np.zeros((15, 20), np.int32)
    labels[:, 10:] = 1  # right half
    s = DSample(_image(30, 40), labels, objects_ids=[1])
    gt = s.gt_mask()
    assert gt.shape == (30, 40)
    assert gt[:, 20:].all() and not gt[:, :20].any()


def test_augment_keeps_layers_aligned_and_binary():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    labels = np.zeros((60, 80), np.int32)
    labels[10:30, 10:50] = 7
    labels[35:55, 40:75] = 9
    image[labels == 7] = 255
    s = DSample(image, labels, objects_ids=[7, 9])
    aug = A.Compose([UniformRandomResize((0.5, 1.7)), A.HorizontalFlip(p=0.5),
                     A.PadIfNeeded(64, 64, border_mode=0), A.RandomCrop(64, 64)])
    for seed in range(20):
        seed_transform(aug, seed)
        s.augment(aug)
        assert s.image.shape == (64, 64, 3) and s.encoded_masks.shape == (64, 64, 1)
        assert set(np.unique(s.encoded_masks)) <= {0, 7, 9}
        for k in range(len(s)):
            assert set(np.unique(s.gt_mask(k))) <= {0, 1}
        if 7 in s.encoded_masks:
            # the bright object and its mask moved together (ignore the resampled border)
            assert s.image[s.encoded_masks[:, :, 0] == 7].mean() > 200
    s.reset_augmentation()
    assert s.image.shape == (60, 80, 3) and len(s) == 2


def test_augment_drops_objects_that_left_the_crop():
    labels = np.zeros((50, 50), np.int32)
    labels[:5, :5] = 1
    labels[40:, 40:] = 2
    s = DSample(_image(50, 50), labels, objects_ids=[1, 2])
    s.augment(lambda image, mask: {"image": image[20:, 20:], "mask": mask[20:, 20:]})
    assert len(s) == 1
    assert s.gt_mask(0).sum() == 100


def test_remove_small_objects_reparents_children():
    layers = np.zeros((20, 20, 2), np.uint8)
    layers[:, :, 0] = 1               # root: area 400
    layers[0:2, 0:2, 1] = 1           # middle: area 4
    layers[5:15, 5:15, 1] = 2         # child of middle: area 100
    objects = {
        0: {"mapping": (0, 1), "parent": None, "children": [1]},
        1: {"mapping": (1, 1), "parent": 0, "children": [2]},
        2: {"mapping": (1, 2), "parent": 1, "children": []},
    }
    s = DSample(_image(20, 20), layers, objects=objects)
    assert s.object_area(1) == 4 and s.object_area(2) == 100
    s.remove_small_objects(10)
    assert s.objects_ids == [0, 2]
    assert s.objects[0]["children"] == [2]
    assert s.objects[2]["parent"] == 0
    assert s.root_objects == [0]


def test_background_mask():
    labels = np.zeros((10, 10), np.int32)
    labels[:3] = 1
    s = DSample(_image(10, 10), labels, objects_ids=[1])
    assert s.get_background_mask().sum() == 70
