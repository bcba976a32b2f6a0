"""The exact distance transform: equal to SciPy's exact EDT (rounded to float32) on every pixel,
the same on every call, on both the fast OpenCV path and the large-distance fallback."""

from __future__ import annotations

import base64
import zlib

import cv2
import numpy as np
import pytest
from scipy import ndimage

from isegm.utils import distance
from isegm.utils.distance import exact_distance_transform


@pytest.fixture
def scipy_calls(monkeypatch) -> list:
    """Records the calls of the SciPy fallback (the fast path must not need it)."""
    calls: list = []
    exact_edt = ndimage.distance_transform_edt

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return exact_edt(*args, **kwargs)

    monkeypatch.setattr(distance.ndimage, "distance_transform_edt", spy)
    return calls


# A 64x64 false-negative region from a training run on which OpenCV 5.0's precise transform,
# with 2 threads, returned sqrt(50) as 7.071068 or 7.0710683 depending on the call; the click
# (and the rest of the run) depended on which.
_FLAKY_REGION = (
    "eNrlz7ENgDAMBMCPUlDCBiyCyGikYy1GYQTKFIgH8k6RSEyAm5Ms+V8GgLAhz7LXUrpGb3aN/cfeNzoell9M1nvCvQaul"
    "MyO5GUmFemyoxIfowpoBaeZqkfA8miUs8BkDvjd3ANVP44="
)


def _flaky_region() -> np.ndarray:
    bits = np.frombuffer(zlib.decompress(base64.b64decode(_FLAKY_REGION)), np.uint8)
    return np.unpackbits(bits)[: 64 * 64].reshape(64, 64).astype(bool)


def _reference(region: np.ndarray) -> np.ndarray:
    padded = np.pad(region.astype(np.uint8), 1)
    return ndimage.distance_transform_edt(padded)[1:-1, 1:-1].astype(np.float32)


def test_regression_region_is_exact_on_every_call() -> None:
    region = _flaky_region()
    expected = _reference(region)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        for _ in range(100):
            np.testing.assert_array_equal(exact_distance_transform(region), expected)
    finally:
        cv2.setNumThreads(threads)
    assert expected[24, 45] == np.float32(np.sqrt(50.0))


@pytest.mark.parametrize("seed", range(5))
def test_equals_scipy_on_random_blobs(seed: int, scipy_calls: list) -> None:
    rng = np.random.default_rng(seed)
    region = np.zeros((237, 311), np.uint8)
    for _ in range(12):
        center = (int(rng.integers(0, 311)), int(rng.integers(0, 237)))
        cv2.circle(region, center, int(rng.integers(2, 90)), 1, -1)
    region[rng.random(region.shape) < 0.01] = 0  # holes
    out = exact_distance_transform(region.astype(bool))
    assert out.dtype == np.float32 and out.shape == region.shape
    assert scipy_calls == []  # computed on the fast OpenCV path
    np.testing.assert_array_equal(out, _reference(region.astype(bool)))


def test_large_distances_use_the_exact_fallback(scipy_calls: list) -> None:
    region = np.ones((2100, 2090), bool)  # centre distance ~1045 px > the OpenCV-exact limit
    out = exact_distance_transform(region)
    # OpenCV happens to be exact on this mask too, so equality alone would not show the path
    assert scipy_calls == [(2102, 2092)]
    assert out.max() > 1024
    np.testing.assert_array_equal(out, _reference(region))


def test_empty_and_full_border_cases() -> None:
    assert exact_distance_transform(np.zeros((5, 7), bool)).max() == 0
    np.testing.assert_array_equal(exact_distance_transform(np.ones((1, 1), bool)), [[1.0]])
    assert exact_distance_transform(np.zeros((0, 4), bool)).shape == (0, 4)


@pytest.mark.parametrize("corner", [(40, 60), (0, 90), (100, 0), (113, 171)])
def test_small_regions_equal_the_whole_image_transform(corner, scipy_calls: list) -> None:
    """Only the region's bounding box is transformed; away from the border, against one border
    and in a corner, every pixel still equals the transform of the whole image."""
    rng = np.random.default_rng(corner[0] * 1000 + corner[1])
    region = np.zeros((120, 180), bool)
    y, x = corner
    blob = rng.random((min(30, 120 - y), min(40, 180 - x))) < 0.8
    region[y:y + blob.shape[0], x:x + blob.shape[1]] = blob
    region[y + 2, x + 3] = True  # never empty
    out = exact_distance_transform(region)
    assert out.shape == region.shape and scipy_calls == []
    np.testing.assert_array_equal(out, _reference(region))
