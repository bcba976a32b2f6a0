"""ISDataset items: shapes, dtypes, click layout, and reproducibility per (seed, epoch, index)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from isegm.data.base import ISDataset
from isegm.data.datasets.synthetic import SyntheticMultiScaleDataset
from isegm.data.points_sampler import MultiPointSampler
from isegm.data.sample import DSample
from isegm.data.transforms import train_augmentator

N_POINTS = 6


def _dataset(**kwargs):
    defaults = dict(num_samples=20, image_size=(72, 88), seed=3,
                    augmentator=train_augmentator(64, scale_range=(0.6, 1.4)),
                    points_sampler=MultiPointSampler(N_POINTS, merge_objects_prob=0.2,
                                                     max_num_merged_objects=2),
                    min_object_area=20, keep_background_prob=0.05)
    defaults.update(kwargs)
    return SyntheticMultiScaleDataset(**defaults)


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in ("images", "points", "instances"))


def test_item_layout():
    ds = _dataset()
    item = ds[0]
    img, pts, inst = item["images"], item["points"], item["instances"]
    assert img.dtype == torch.float32 and img.shape == (3, 64, 64)
    assert 0.0 <= img.min() and img.max() <= 1.0
    assert pts.dtype == torch.float32 and pts.shape == (2 * N_POINTS, 3)
    assert inst.dtype == torch.float32 and inst.shape == (1, 64, 64)
    assert set(torch.unique(inst).tolist()) <= {0.0, 1.0}
    pos = pts[:N_POINTS]
    pos = pos[pos[:, 0] >= 0]
    assert len(pos) >= 1
    assert (inst[0, pos[:, 0].long(), pos[:, 1].long()] == 1).all()
    neg = pts[N_POINTS:]
    neg = neg[neg[:, 0] >= 0]
    assert (inst[0, neg[:, 0].long(), neg[:, 1].long()] == 0).all()
    assert ((pts[:, 0] >= 0) | (pts == -1).all(dim=1)).all()


def test_same_seed_epoch_index_same_item():
    a, b = _dataset(), _dataset()
    for i in (0, 5):
        assert _same(a[i], a[i]) and _same(a[i], b[i])
    b.set_epoch(1)
    assert not _same(a[0], b[0])
    assert _same(b[0], a[(1, 0)])  # explicit (epoch, index) addressing
    assert not _same(a[0], _dataset(seed=4)[0])


def test_epoch_len_draws_reproducibly():
    ds = _dataset(epoch_len=8, with_image_info=True)
    assert len(ds) == 8
    first = [ds[i]["image_info"] for i in range(8)]
    assert first == [_dataset(epoch_len=8, with_image_info=True)[i]["image_info"]
                     for i in range(8)]
    ds.set_epoch(1)
    second = [ds[i]["image_info"] for i in range(8)]
    assert first != second
    assert all(0 <= x < 20 for x in first + second)
    with pytest.raises(IndexError):
        ds[8]


def test_workers_give_the_same_items():
    ds = _dataset(num_samples=6)
    ds.set_epoch(2)
    direct = [ds[i] for i in range(6)]
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, shuffle=False)
    batches = list(loader)
    for i, item in enumerate(direct):
        batch = batches[i // 3]
        assert torch.equal(batch["points"][i % 3], item["points"])
        assert torch.equal(batch["images"][i % 3], item["images"])


class _Tiny(ISDataset):
    """Two samples: one with a 4-pixel object, one with a big object."""

    name = "Tiny"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dataset_samples = [0, 1]

    def get_sample(self, index, rng=None):
        labels = np.zeros((32, 32), np.int32)
        if index == 0:
            labels[:2, :2] = 1
        else:
            labels[4:28, 4:28] = 1
        return DSample(np.zeros((32, 32, 3), np.uint8), labels, objects_ids=[1],
                       sample_id=index)


def test_min_object_area_and_no_augmentator():
    ds = _Tiny(points_sampler=MultiPointSampler(3), min_object_area=10)
    small, big = ds[0], ds[1]
    assert small["instances"].sum() == 0 and (small["points"][:3] == -1).all()
    assert big["instances"].sum() == 24 * 24
    assert len(ds) == 2


def test_augmentation_retries_until_an_object_survives():
    def crop_corner(image, mask):  # loses the object of sample 0 half of the time
        return {"image": image[16:, 16:], "mask": mask[16:, 16:]}

    ds = _Tiny(augmentator=crop_corner, keep_background_prob=0.0)
    item = ds[1]
    assert item["images"].shape == (3, 16, 16) and item["instances"].sum() == 12 * 12
    item = ds[0]  # never survives: kept empty after the retry budget
    assert item["instances"].sum() == 0
