"""Synthetic scenes: determinism, scale split (their speed is a benchmark: bench_train.py)."""
from __future__ import annotations

import numpy as np
import pytest

from isegm.data.datasets import SyntheticEvalDataset, SyntheticMultiScaleDataset, get_eval_dataset
from isegm.data.datasets.synthetic import object_scale, scale_area_bounds


def test_eval_same_seed_same_arrays_and_index_changes_scene():
    a, b = SyntheticEvalDataset(6, seed=11), SyntheticEvalDataset(6, seed=11)
    for i in range(6):
        sa, sb = a.get_sample(i), b.get_sample(i)
        assert np.array_equal(sa.image, sb.image) and np.array_equal(sa.gt_mask(), sb.gt_mask())
    assert not np.array_equal(a.get_sample(0).image, a.get_sample(3).image)
    assert not np.array_equal(a.get_sample(0).image, SyntheticEvalDataset(6, seed=12)
                              .get_sample(0).image)


def test_train_same_seed_same_arrays():
    a, b = SyntheticMultiScaleDataset(4, seed=5), SyntheticMultiScaleDataset(4, seed=5)
    sa, sb = a.get_sample(2), b.get_sample(2)
    assert np.array_equal(sa.image, sb.image)
    assert np.array_equal(sa.encoded_masks, sb.encoded_masks)
    assert not np.array_equal(sa.image, a.get_sample(3).image)
    assert len(sa) >= 1


@pytest.mark.parametrize("scale", ["small", "medium", "large"])
def test_scale_split_separates_object_sizes(scale):
    ds = SyntheticEvalDataset(30, image_size=(96, 128), scale=scale)
    low, high = scale_area_bounds(scale, 96, 128)
    for i in range(len(ds)):
        s = ds.get_sample(i)
        assert s.objects_ids == [0]
        area = int((s.gt_mask() == 1).sum())
        assert low <= area < high and object_scale(area, 96, 128) == scale
    assert ds.name == f"Synthetic{scale.upper()}"


def test_scale_fractions():
    h = w = 224
    assert scale_area_bounds("small", h, w)[1] == pytest.approx(0.01 * h * w)
    assert scale_area_bounds("medium", h, w) == pytest.approx((0.01 * h * w, 0.1 * h * w))
    assert scale_area_bounds("large", h, w)[0] == pytest.approx(0.1 * h * w)


def test_all_cycles_scales_and_registry():
    ds = get_eval_dataset("Synthetic", {}, num_samples=6)
    assert len(ds) == 6 and ds.name == "Synthetic"
    scales = [object_scale(int(ds.get_sample(i).gt_mask().sum()), 224, 224) for i in range(6)]
    assert scales == ["small", "medium", "large"] * 2
    assert len(get_eval_dataset("SyntheticLARGE", {})) == 100


def test_training_scale_restriction():
    ds = SyntheticMultiScaleDataset(5, image_size=128, scale="small", objects_per_image=(3, 3))
    for i in range(5):
        s = ds.get_sample(i)
        for k in range(len(s)):
            assert s.gt_mask(k).sum() < 0.01 * 128 * 128
