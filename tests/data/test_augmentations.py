"""Augmentations: nearest-neighbour masks, SPEC §5 pipeline, per-node seeding."""
from __future__ import annotations

import albumentations as A
import numpy as np

from isegm.data.masks import resize_nearest
from isegm.data.transforms import (
    UniformRandomResize,
    seed_transform,
    train_augmentator,
    val_augmentator,
)


def _scene(rng, h=97, w=131, layers=3):
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    masks = np.zeros((h, w, layers), np.int32)
    for layer in range(layers):
        for obj in range(1, 5):
            y, x = rng.integers(0, h - 20), rng.integers(0, w - 20)
            masks[y:y + 20, x:x + 25, layer] = obj * 10 + layer
    return image, masks


def test_uniform_random_resize_never_invents_ids():
    rng = np.random.default_rng(0)
    image, masks = _scene(rng)
    before = set(np.unique(masks))
    t = A.Compose([UniformRandomResize((0.3, 2.0))])
    for seed in range(10):
        seed_transform(t, seed)
        out = t(image=image, mask=masks)
        assert out["image"].dtype == np.uint8 and out["mask"].dtype == masks.dtype
        assert out["image"].shape[:2] == out["mask"].shape[:2]
        assert set(np.unique(out["mask"])) <= before


def test_uniform_random_resize_keeps_aspect_and_range():
    t = A.Compose([UniformRandomResize((0.5, 1.5))])
    for seed in range(10):
        seed_transform(t, seed)
        out = t(image=np.zeros((100, 200, 3), np.uint8), mask=np.zeros((100, 200), np.uint8))
        h, w = out["image"].shape[:2]
        assert 50 <= h <= 150 and abs(w - 2 * h) <= 2


def test_resize_nearest_many_channels_and_alignment():
    mask = np.zeros((10, 20, 600), np.int16)
    mask[:, 10:, :] = 3
    out = resize_nearest(mask, 5, 40)
    assert out.shape == (5, 40, 600)
    assert (out[:, 20:] == 3).all() and (out[:, :20] == 0).all()


def test_train_augmentator_shapes_and_binary_masks():
    rng = np.random.default_rng(1)
    image, masks = _scene(rng)
    aug = train_augmentator(64, scale_range=(0.5, 1.5), brightness=(-0.3, 0.3),
                            contrast=(-0.2, 0.5), rgb_shift=20)
    names = [type(t).__name__ for t in aug.transforms]
    assert names == ["UniformRandomResize", "HorizontalFlip", "PadIfNeeded", "RandomCrop",
                     "RandomBrightnessContrast", "RGBShift"]
    ids = set(np.unique(masks))
    for seed in range(5):
        seed_transform(aug, seed)
        out = aug(image=image, mask=masks)
        assert out["image"].shape == (64, 64, 3) and out["mask"].shape == (64, 64, 3)
        assert set(np.unique(out["mask"])) <= ids


def test_val_augmentator_pads_small_images():
    out = val_augmentator((50, 60))(image=np.full((20, 30, 3), 9, np.uint8),
                                    mask=np.ones((20, 30), np.uint8))
    assert out["image"].shape == (50, 60, 3)
    assert out["mask"].sum() == 600  # padding is background


def test_seed_transform_is_deterministic_and_decorrelated():
    rng = np.random.default_rng(2)
    image, masks = _scene(rng)
    aug = train_augmentator(48)
    seed_transform(aug, 7)
    a = aug(image=image, mask=masks)
    seed_transform(aug, 7)
    b = aug(image=image, mask=masks)
    assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["mask"], b["mask"])
    seeds = [t.seed for t in aug.transforms]
    assert len(set(seeds)) == len(seeds)


def test_seed_transform_ignores_plain_callables():
    assert seed_transform(lambda **kw: kw, 3) is False
