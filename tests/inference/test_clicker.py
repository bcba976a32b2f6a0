"""Next-click rule: ties, ignore region, clicked pixels, random-top50, batched trainer variant."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isegm.inference.clicker import (
    Click,
    Clicker,
    clicks_to_points,
    get_next_click,
    next_clicks_batch,
)
from isegm.utils.distance import exact_distance_transform


def test_click_is_frozen_and_copyable() -> None:
    c = Click(True, (3, 4), 0)
    assert c.coords_and_indx == (3, 4, 0)
    with pytest.raises(AttributeError):
        c.indx = 2  # type: ignore[misc]
    assert c.copy(coords=(1.5, 2.5)) == Click(True, (1.5, 2.5), 0)


def test_tie_between_equal_maxima_picks_first_row_major() -> None:
    gt = np.zeros((12, 12), dtype=np.int32)
    gt[6:9, 1:4] = 1  # lower-left square
    gt[1:4, 7:10] = 1  # upper-right square, same size: same max distance
    clicker = Clicker(gt)
    click = clicker.make_next_click(np.zeros_like(gt, dtype=bool))
    assert click == Click(True, (2, 8), 0)  # smaller y wins although its x is larger


def test_fn_fp_tie_gives_negative_click() -> None:
    gt = np.zeros((10, 20), dtype=np.int32)
    gt[2:5, 2:5] = 1
    pred = np.zeros(gt.shape, dtype=bool)
    pred[2:5, 12:15] = True  # FP square of the same size as the FN square
    found = get_next_click(gt.astype(bool) & ~pred, ~gt.astype(bool) & pred)
    assert found == (False, 3, 13)


def test_ignore_region_is_never_an_error() -> None:
    gt = np.zeros((20, 20), dtype=np.int32)
    gt[2:18, 2:18] = 1
    gt[5:15, 5:15] = -1  # ignore the object's centre: largest FN distance would be there
    click = Clicker(gt).make_next_click(np.zeros(gt.shape, dtype=bool))
    assert click is not None and click.is_positive
    assert gt[click.coords] == 1

    # A prediction covering only ignore pixels has no FP; nothing is left to click.
    gt2 = np.zeros((10, 10), dtype=np.int32)
    gt2[3:6, 3:6] = -1
    pred = gt2 == -1
    clicker = Clicker(gt2)
    assert clicker.make_next_click(pred) is None
    assert len(clicker) == 0


def test_padding_makes_the_border_count_as_outside() -> None:
    gt = np.ones((5, 9), dtype=np.int32)  # whole image is object: distance peaks in the middle
    click = Clicker(gt).make_next_click(np.zeros(gt.shape, dtype=bool))
    assert click is not None and click.coords == (2, 2)  # first pixel at distance 3


def test_clicked_pixels_are_excluded_and_indices_follow_offset() -> None:
    gt = np.zeros((7, 7), dtype=np.int32)
    gt[3, 3] = 1
    gt[0, 6] = 1
    clicker = Clicker(gt, click_indx_offset=5)
    pred = np.zeros(gt.shape, dtype=bool)
    first = clicker.make_next_click(pred)
    second = clicker.make_next_click(pred)  # same prediction, first pixel already clicked
    assert first == Click(True, (0, 6), 5)
    assert second == Click(True, (3, 3), 6)
    assert clicker.make_next_click(pred) is None


def test_state_round_trip() -> None:
    gt = np.zeros((8, 8), dtype=np.int32)
    gt[2:6, 2:6] = 1
    clicker = Clicker(gt)
    clicker.make_next_click(np.zeros(gt.shape, dtype=bool))
    state = clicker.get_state()
    clicker.make_next_click(gt == 0)
    assert len(clicker) == 2
    clicker.set_state(state)
    assert clicker.get_clicks() == state and clicker.not_clicked_map.sum() == 63
    assert clicker.num_pos_clicks == 1 and clicker.num_neg_clicks == 0
    assert clicker.get_clicks(clicks_limit=0) == []


def _random_case(rng: np.random.Generator, h: int = 40, w: int = 48) -> tuple[np.ndarray, ...]:
    gt = np.zeros((h, w), dtype=np.int32)
    y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
    gt[y0 : y0 + h // 2, x0 : x0 + w // 2] = 1
    gt[rng.random((h, w)) < 0.03] = -1
    probs = np.zeros((h, w), dtype=np.float32)
    y1, x1 = rng.integers(0, h // 2), rng.integers(0, w // 2)
    probs[y1 : y1 + h // 3, x1 : x1 + w // 3] = 0.9
    return gt, probs


def test_random_top50_is_reproducible_and_draws_from_top50() -> None:
    gt = np.zeros((40, 40), dtype=np.int32)
    gt[5:35, 5:35] = 1

    def run(seed: int) -> list[Click]:
        clicker = Clicker(gt, mode="random-top50", seed=seed)
        for _ in range(5):
            clicker.make_next_click(np.zeros(gt.shape, dtype=bool))
        return clicker.get_clicks()

    a, b, c = run(1), run(1), run(2)
    assert a == b
    assert a != c
    # Only FN errors: every click is positive and its distance is among the 50 largest.
    dt = exact_distance_transform(gt == 1)
    top50 = np.sort(dt.ravel())[::-1][:50]
    assert all(k.is_positive for k in a)
    assert all(dt[k.coords] >= top50[-1] for k in a)
    assert len({k.coords for k in a}) == 5


def test_unknown_mode_rejected() -> None:
    with pytest.raises(ValueError):
        Clicker(np.zeros((4, 4), dtype=np.int32), mode="best")


def test_clicks_to_points_layout() -> None:
    clicks = [
        [Click(True, (1, 2), 0), Click(False, (3, 4), 1), Click(True, (5, 6), 2)],
        [Click(False, (7, 8), 0)],
    ]
    pts = clicks_to_points(clicks)
    assert pts.shape == (2, 4, 3) and pts.dtype == np.float32
    np.testing.assert_array_equal(pts[0], [[1, 2, 0], [5, 6, 2], [3, 4, 1], [-1, -1, -1]])
    np.testing.assert_array_equal(pts[1], [[-1, -1, -1], [-1, -1, -1], [7, 8, 0], [-1, -1, -1]])
    limited = clicks_to_points(clicks, limit=2)
    np.testing.assert_array_equal(limited[0], [[1, 2, 0], [3, 4, 1]])
    assert clicks_to_points([[]]).shape == (1, 2, 3)


@pytest.mark.parametrize("mode", ["standard", "random-top50"])
def test_batch_matches_clicker(mode: str) -> None:
    rng = np.random.default_rng(0)
    cases = [_random_case(rng) for _ in range(3)]
    gts = np.stack([g for g, _ in cases])
    probs = np.stack([p for _, p in cases])
    n_iters, n_slots = 4, 6

    clickers = [Clicker(g, mode=mode, seed=10 + i) for i, (g, _) in enumerate(cases)]
    for clicker, p in zip(clickers, probs):
        for _ in range(n_iters):
            clicker.make_next_click(p > 0.49)

    rngs = [np.random.default_rng(10 + i) for i in range(3)]
    batch_points = []
    for b in range(3):  # one sample at a time so each uses its own generator
        pts = np.full((1, 2 * n_slots, 3), -1, dtype=np.float32)
        for k in range(n_iters):
            pts = next_clicks_batch(probs[b : b + 1], gts[b : b + 1], pts, k, mode=mode,
                                    rng=rngs[b])
        batch_points.append(pts[0])
    expected = clicks_to_points([c.get_clicks() for c in clickers])
    for b in range(3):
        got = batch_points[b]
        n = expected.shape[1] // 2
        np.testing.assert_array_equal(got[:n], expected[b, :n])
        np.testing.assert_array_equal(got[n_slots : n_slots + n], expected[b, n:])


def test_batch_standard_whole_batch_and_torch_io() -> None:
    rng = np.random.default_rng(3)
    cases = [_random_case(rng) for _ in range(4)]
    gts = torch.from_numpy(np.stack([g for g, _ in cases])).float().unsqueeze(1)
    probs = torch.from_numpy(np.stack([p for _, p in cases])).unsqueeze(1)
    pts = torch.full((4, 8, 3), -1.0)
    pts = next_clicks_batch(probs, gts, pts, 1)
    pts = next_clicks_batch(probs, gts, pts, 2)
    assert isinstance(pts, torch.Tensor) and pts.dtype == torch.float32
    for b, (g, p) in enumerate(cases):
        clicker = Clicker(g)
        clicker.make_next_click(p > 0.49)
        clicker.make_next_click(p > 0.49)
        ref = clicks_to_points([clicker.get_clicks()])[0]
        n = ref.shape[0] // 2
        got = pts[b].numpy()
        # indices differ (trainer passes 1-based click_indx), coordinates and slots agree
        np.testing.assert_array_equal(got[:n, :2], ref[:n, :2])
        np.testing.assert_array_equal(got[4 : 4 + n, :2], ref[n:, :2])


def test_batch_leaves_perfect_and_full_samples_unchanged() -> None:
    gt = np.zeros((1, 10, 10), dtype=np.int32)
    gt[0, 2:8, 2:8] = 1
    perfect = gt.astype(np.float32)
    pts = np.full((1, 2, 3), -1, dtype=np.float32)
    np.testing.assert_array_equal(next_clicks_batch(perfect, gt, pts, 1), pts)
    full = np.array([[[0, 0, 100], [-1, -1, -1]]], dtype=np.float32)
    np.testing.assert_array_equal(next_clicks_batch(np.zeros_like(perfect), gt, full, 1), full)
