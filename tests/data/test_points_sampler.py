"""MultiPointSampler: layout, click placement, explicit-generator determinism."""
from __future__ import annotations

import numpy as np
import pytest

from isegm.data.points_sampler import MultiPointSampler, geometric_probs, inner_point_candidates
from isegm.data.sample import DSample


def _two_objects(h=64, w=64):
    labels = np.zeros((h, w), np.int32)
    labels[8:40, 8:40] = 1
    labels[44:60, 44:60] = 2
    return DSample(np.zeros((h, w, 3), np.uint8), labels, objects_ids=[1, 2])


def _split(points, n):
    pos, neg = points[:n], points[n:]
    return pos[pos[:, 0] >= 0], neg[neg[:, 0] >= 0]


def test_geometric_probs():
    p = geometric_probs(4, 0.5)
    assert np.isclose(p.sum(), 1) and np.allclose(p[1:] / p[:-1], 0.5)


def test_layout_and_placement():
    sampler = MultiPointSampler(8, positive_erode_prob=0.0)
    sample = _two_objects()
    for seed in range(30):
        points, mask = sampler.sample(sample, np.random.default_rng(seed))
        assert points.shape == (16, 3) and points.dtype == np.float32
        assert mask.shape == (1, 64, 64) and mask.dtype == np.float32
        pos, neg = _split(points, 8)
        assert 1 <= len(pos) <= 8 and len(neg) <= 8
        # padding rows are (-1, -1, -1) and come after the real clicks of each half
        for half in (points[:8], points[8:]):
            valid = half[:, 0] >= 0
            assert not np.any(np.diff(valid.astype(int)) > 0)
            assert (half[~valid] == -1).all()
        target = mask[0] > 0
        ys, xs = pos[:, 0].astype(int), pos[:, 1].astype(int)
        assert target[ys, xs].all()
        ys, xs = neg[:, 0].astype(int), neg[:, 1].astype(int)
        assert not target[ys, xs].any()
        assert set(points[points[:, 0] >= 0, 2]) <= {100}


def test_same_generator_same_clicks():
    sampler = MultiPointSampler(12, merge_objects_prob=0.5, max_num_merged_objects=2)
    sample = _two_objects()
    a = sampler.sample(sample, np.random.default_rng(5))
    b = sampler.sample(sample, np.random.default_rng(5))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = sampler.sample(sample, np.random.default_rng(6))
    assert not np.array_equal(a[0], c[0])


def test_merged_objects_target_is_union():
    sampler = MultiPointSampler(12, merge_objects_prob=1.0, max_num_merged_objects=2,
                                positive_erode_prob=0.0)
    sample = _two_objects()
    points, mask = sampler.sample(sample, np.random.default_rng(0))
    assert mask.sum() == 32 * 32 + 16 * 16
    pos, _ = _split(points, 12)
    labels = sample.encoded_masks[:, :, 0]
    hit = set(labels[pos[:, 0].astype(int), pos[:, 1].astype(int)])
    assert hit == {1, 2}  # one first click per merged object


def test_first_click_center():
    labels = np.zeros((64, 64), np.int32)
    labels[10:50, 10:50] = 1
    sample = DSample(np.zeros((64, 64, 3), np.uint8), labels, objects_ids=[1])
    sampler = MultiPointSampler(4, first_click_center=True, positive_erode_prob=0.0)
    points, _ = sampler.sample(sample, np.random.default_rng(1))
    assert points[0, 2] == 0
    y, x = points[0, :2]
    assert 20 <= y <= 40 and 20 <= x <= 40  # deep inside (distance > max / 1.7)
    assert inner_point_candidates(np.zeros((5, 5), bool)).shape == (0, 2)


def test_empty_sample_gives_only_negatives():
    sample = DSample(np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20), np.int32),
                     objects_ids=[])
    points, mask = MultiPointSampler(6).sample(sample, np.random.default_rng(0))
    assert (points[:6] == -1).all() and not mask.any()


def test_ignore_pixels_are_never_positive_clicks():
    labels = np.zeros((40, 40), np.int32)
    labels[5:35, 5:35] = -1
    labels[15:25, 15:25] = 1
    sample = DSample(np.zeros((40, 40, 3), np.uint8), labels, objects_ids=[1], ignore_ids=[-1])
    sampler = MultiPointSampler(24, prob_gamma=0.99, positive_erode_prob=0.0)
    for seed in range(10):
        points, mask = sampler.sample(sample, np.random.default_rng(seed))
        pos, _ = _split(points, 24)
        assert (labels[pos[:, 0].astype(int), pos[:, 1].astype(int)] == 1).all()
        assert (mask == -1).sum() == 900 - 100


def test_hierarchy_runs_and_stays_in_target():
    layers = np.zeros((40, 40, 2), np.uint8)
    layers[2:38, 2:38, 0] = 1
    layers[10:20, 10:20, 1] = 1
    objects = {0: {"mapping": (0, 1), "parent": None, "children": [1]},
               1: {"mapping": (1, 1), "parent": 0, "children": []}}
    sample = DSample(np.zeros((40, 40, 3), np.uint8), layers, objects=objects)
    sampler = MultiPointSampler(6, use_hierarchy=True, positive_erode_prob=0.0)
    for seed in range(20):
        points, mask = sampler.sample(sample, np.random.default_rng(seed))
        pos, _ = _split(points, 6)
        assert (mask[0][pos[:, 0].astype(int), pos[:, 1].astype(int)] > 0).all()


def test_bad_negative_probs():
    with pytest.raises(ValueError):
        MultiPointSampler(4, negative_bg_prob=0.5, negative_other_prob=0.5,
                          negative_border_prob=0.5)


def test_ignore_pixels_get_no_negative_clicks():
    labels = np.zeros((40, 40), np.int32)
    labels[:, :30] = -1
    labels[15:25, 15:25] = 1
    sample = DSample(np.zeros((40, 40, 3), np.uint8), labels, objects_ids=[1], ignore_ids=[-1])
    sampler = MultiPointSampler(24, prob_gamma=0.99)
    for seed in range(10):
        points, _ = sampler.sample(sample, np.random.default_rng(seed))
        _, neg = _split(points, 24)
        assert (labels[neg[:, 0].astype(int), neg[:, 1].astype(int)] == 0).all()
