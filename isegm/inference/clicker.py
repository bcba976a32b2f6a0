"""Click model and click simulation for evaluation and training.

One next-click rule serves both the evaluation :class:`Clicker` and the trainer
(:func:`next_clicks_batch`), so the clicks a model is trained with are chosen exactly like the
clicks it is evaluated with (RITM/MST duplicate this logic with a different distance transform).

The standard rule is the field's protocol (``shared/protocol/README.md``, SPEC Part II §3.4):
false-negative and false-positive regions exclude the ignore label, each is padded by one zero
pixel, the exact L2 distance transform is taken and cropped, already-clicked pixels are zeroed,
the click is positive iff the largest FN distance is strictly larger than the largest FP distance,
and it goes to the first row-major pixel holding that maximum.

``'random-top50'`` is MST's variant (SPEC Part II §3.4 / §8.1): each map contributes a value drawn
uniformly from its 50 largest distances (duplicates and zeros included), the sign compares the two
draws, and the click goes to the first row-major pixel of the chosen map holding the drawn value.
Unlike MST it draws from an explicit, seedable ``np.random.Generator``. Like MST, when both
draws are 0 (an error region smaller than 50 pixels) the click is negative at the first pixel
of zero FP distance, usually (0, 0); this degenerate click is part of the reference behaviour.

Points layout shared with the networks (``[B, 2N, 3]``): rows ``0..N-1`` are positive clicks,
rows ``N..2N-1`` negative clicks, each row ``(y, x, click_index)``, in click order, padded with
``(-1, -1, -1)``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any, Union

import numpy as np

from isegm.utils.distance import exact_distance_transform

__all__ = [
    "CLICK_MODES",
    "Click",
    "Clicker",
    "clicks_to_points",
    "get_next_click",
    "next_clicks_batch",
]

logger = logging.getLogger(__name__)

CLICK_MODES = ("standard", "random-top50")
_TOPK = 50

SeedLike = Union[None, int, np.random.SeedSequence, np.random.Generator]


@dataclasses.dataclass(frozen=True)
class Click:
    """One user click.

    Args:
        is_positive: True for a click on the object, False for a background click.
        coords: (y, x) position in pixels; floats after a test-time transform.
        indx: 0-based order of the click in its session (``click_indx_offset`` included);
            :class:`Clicker` assigns it when the click is added.
    """

    is_positive: bool
    coords: tuple[float, float]
    indx: int | None = None

    @property
    def coords_and_indx(self) -> tuple[float, float, int | None]:
        """(y, x, indx), one row of the points layout."""
        return (self.coords[0], self.coords[1], self.indx)

    def copy(self, **changes: Any) -> Click:
        """A copy with some fields replaced (e.g. transformed ``coords``)."""
        return dataclasses.replace(self, **changes)


def _as_generator(rng: SeedLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _draw_top_value(dt: np.ndarray, rng: np.random.Generator) -> float:
    """A value drawn uniformly from the 50 largest entries of ``dt`` (duplicates, zeros kept)."""
    flat = dt.ravel()
    k = min(_TOPK, flat.size)
    top = np.sort(np.partition(flat, flat.size - k)[flat.size - k :])[::-1]
    return float(top[rng.integers(k)])


def get_next_click(
    fn_mask: np.ndarray,
    fp_mask: np.ndarray,
    not_clicked: np.ndarray | None = None,
    mode: str = "standard",
    rng: np.random.Generator | None = None,
) -> tuple[bool, int, int] | None:
    """The core next-click rule on precomputed error regions.

    Args:
        fn_mask: [H, W] bool, false-negative pixels (object, not predicted, not ignored).
        fp_mask: [H, W] bool, false-positive pixels (background, predicted, not ignored).
        not_clicked: [H, W] bool, False at already-clicked pixels (their distance is zeroed);
            None means no click so far.
        mode: 'standard' (deterministic protocol) or 'random-top50' (MST's variant).
        rng: generator for 'random-top50'; a fresh unseeded one if None.

    Returns:
        (is_positive, y, x), or None when no error pixel is left to click (the prediction is
        perfect outside the ignore region and the clicked pixels). The reference code clicks a
        negative at the first zero-distance pixel (usually (0, 0)) in that case; we do not.
    """
    if mode not in CLICK_MODES:
        raise ValueError(f"unknown click mode {mode!r}, expected one of {CLICK_MODES}")
    fn_dt = exact_distance_transform(fn_mask)
    fp_dt = exact_distance_transform(fp_mask)
    if not_clicked is not None:
        fn_dt = fn_dt * not_clicked
        fp_dt = fp_dt * not_clicked

    fn_max = float(fn_dt.max())
    fp_max = float(fp_dt.max())
    if fn_max <= 0.0 and fp_max <= 0.0:
        return None

    if mode == "standard":
        fn_val, fp_val = fn_max, fp_max
    else:
        gen = _as_generator(rng)
        fn_val = _draw_top_value(fn_dt, gen)
        fp_val = _draw_top_value(fp_dt, gen)

    is_positive = fn_val > fp_val
    dt, val = (fn_dt, fn_val) if is_positive else (fp_dt, fp_val)
    # argmax of a boolean map = first row-major pixel equal to the chosen value.
    flat_idx = int(np.argmax(dt.ravel() == np.float32(val)))
    y, x = divmod(flat_idx, dt.shape[1])
    return bool(is_positive), int(y), int(x)


def inner_half_click(
    fn_mask: np.ndarray, fp_mask: np.ndarray, rng: np.random.Generator
) -> tuple[bool, int, int] | None:
    """The original trainer's iterative training click (``get_next_points``): the larger
    error region by its deepest pixel (OpenCV's 5×5 L2 distance transform with a zero border,
    ties go negative), then a uniformly random pixel deeper than half that depth. None when
    no pixel qualifies (no error left)."""
    import cv2

    def depth(mask: np.ndarray) -> np.ndarray:
        padded = np.pad(mask.astype(np.uint8), 1)
        return cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]

    fn_dt, fp_dt = depth(fn_mask), depth(fp_mask)
    fn_max, fp_max = float(fn_dt.max()), float(fp_dt.max())
    is_positive = fn_max > fp_max
    inner = np.argwhere((fn_dt if is_positive else fp_dt) > max(fn_max, fp_max) / 2.0)
    if len(inner) == 0:
        return None
    y, x = inner[int(rng.integers(len(inner)))]
    return bool(is_positive), int(y), int(x)


def _error_regions(
    gt_mask: np.ndarray, pred_mask: np.ndarray, ignore_label: int | None = -1
) -> tuple[np.ndarray, np.ndarray]:
    """False negatives and false positives; ``ignore_label`` None counts every non-object
    pixel (ignore ones too) as background, as the original trainer does."""
    valid = gt_mask != ignore_label if ignore_label is not None else np.ones_like(gt_mask, bool)
    obj = gt_mask == 1
    pred = np.asarray(pred_mask, dtype=bool)
    fn = obj & ~pred & valid
    fp = ~obj & pred & valid
    return fn, fp


def _pixel(coords: Sequence[float]) -> tuple[int, int]:
    return int(round(float(coords[0]))), int(round(float(coords[1])))


class Clicker:
    """Holds the clicks of one object and simulates the next one from the ground truth.

    Args:
        gt_mask: [H, W] int, 1 object, 0 background, ``ignore_label`` ignored; None when clicks
            come from a user (the demo) and no simulation is needed.
        init_clicks: clicks to add first (their ``indx`` is reassigned).
        ignore_label: label of the ignore region in ``gt_mask``.
        click_indx_offset: index given to the first click.
        mode: 'standard' or 'random-top50' (see the module docstring).
        seed: seed of the generator used by 'random-top50' (int, SeedSequence or Generator).
    """

    def __init__(
        self,
        gt_mask: np.ndarray | None = None,
        init_clicks: Sequence[Click] | None = None,
        ignore_label: int = -1,
        click_indx_offset: int = 0,
        mode: str = "standard",
        seed: SeedLike = None,
    ) -> None:
        if mode not in CLICK_MODES:
            raise ValueError(f"unknown click mode {mode!r}, expected one of {CLICK_MODES}")
        self.mode = mode
        self.ignore_label = ignore_label
        self.click_indx_offset = click_indx_offset
        self.rng = _as_generator(seed)
        self.gt_mask = None if gt_mask is None else np.asarray(gt_mask)
        self.clicks_list: list[Click] = []
        self.not_clicked_map: np.ndarray | None = None
        self.reset_clicks()
        for click in init_clicks or ():
            self.add_click(click)

    @property
    def num_pos_clicks(self) -> int:
        return sum(c.is_positive for c in self.clicks_list)

    @property
    def num_neg_clicks(self) -> int:
        return len(self.clicks_list) - self.num_pos_clicks

    def make_next_click(self, pred_mask: np.ndarray) -> Click | None:
        """Simulates and adds the next click from the current prediction.

        Args:
            pred_mask: [H, W] bool (or 0/1) thresholded prediction.

        Returns:
            The added click, or None if no error pixel is left (nothing is added).
        """
        if self.gt_mask is None:
            raise RuntimeError("make_next_click needs a ground-truth mask")
        fn, fp = _error_regions(self.gt_mask, pred_mask, self.ignore_label)
        found = get_next_click(fn, fp, self.not_clicked_map, self.mode, self.rng)
        if found is None:
            return None
        is_positive, y, x = found
        return self.add_click(Click(is_positive=is_positive, coords=(y, x)))

    def get_clicks(self, clicks_limit: int | None = None) -> list[Click]:
        """The first ``clicks_limit`` clicks (all if None), in click order."""
        return self.clicks_list[:clicks_limit]

    def add_click(self, click: Click) -> Click:
        """Appends a click, assigning its index; returns the stored click."""
        click = click.copy(indx=self.click_indx_offset + len(self.clicks_list))
        self.clicks_list.append(click)
        if self.not_clicked_map is not None:
            y, x = _pixel(click.coords)
            h, w = self.not_clicked_map.shape
            if 0 <= y < h and 0 <= x < w:
                self.not_clicked_map[y, x] = False
        return click

    def reset_clicks(self) -> None:
        self.clicks_list = []
        if self.gt_mask is not None:
            self.not_clicked_map = np.ones(self.gt_mask.shape[:2], dtype=bool)

    def get_state(self) -> list[Click]:
        """Snapshot for undo (clicks are immutable, so a list copy suffices)."""
        return list(self.clicks_list)

    def set_state(self, state: Sequence[Click]) -> None:
        self.reset_clicks()
        for click in state:
            self.add_click(click)

    def __len__(self) -> int:
        return len(self.clicks_list)


def clicks_to_points(
    clicks_lists: Sequence[Sequence[Click]], limit: int | None = None
) -> np.ndarray:
    """Packs click lists into the network's points layout.

    Each list is first cut to its first ``limit`` clicks (in click order), then
    ``N = max(max #positive, max #negative, 1)`` over the batch.

    Args:
        clicks_lists: B lists of clicks, coords (y, x).
        limit: at most this many clicks per list (``net_clicks_limit``); None keeps all.

    Returns:
        [B, 2N, 3] float32: rows 0..N-1 positive clicks, rows N..2N-1 negative clicks, each row
        (y, x, click index) in click order, padded with (-1, -1, -1).
    """
    lists = [list(cl)[:limit] for cl in clicks_lists]
    pos = [[c.coords_and_indx for c in cl if c.is_positive] for cl in lists]
    neg = [[c.coords_and_indx for c in cl if not c.is_positive] for cl in lists]
    n = max([1] + [len(p) for p in pos] + [len(q) for q in neg])
    points = np.full((len(lists), 2 * n, 3), -1.0, dtype=np.float32)
    for b, (p, q) in enumerate(zip(pos, neg)):
        if p:
            points[b, : len(p)] = np.asarray(p, dtype=np.float32)
        if q:
            points[b, n : n + len(q)] = np.asarray(q, dtype=np.float32)
    return points


def next_clicks_batch(
    pred_probs: Any,
    gt: Any,
    points: Any,
    click_indx: int,
    pred_thr: float = 0.49,
    mode: str = "standard",
    rng: SeedLike = None,
    ignore_label: int = -1,
) -> Any:
    """Adds one simulated click per sample (the trainer's iterative click loop, SPEC I §7).

    Uses the same rule as :class:`Clicker`, on the CPU. Pixels already holding a click of
    ``points`` are excluded. A sample with no error pixel left, or whose target half is full,
    gets no click.

    Args:
        pred_probs: [B, H, W] (or [B, 1, H, W]) probabilities, numpy or torch.
        gt: [B, H, W] (or [B, 1, H, W]) ground truth, 1 object, 0 background, ``ignore_label``.
        points: [B, 2N, 3] in the layout of :func:`clicks_to_points`; not modified.
        click_indx: index written into the new rows.
        pred_thr: probability threshold (``> pred_thr`` is predicted object).
        mode: 'standard', 'random-top50', or 'inner-half' (the original trainer's random
            training click, :func:`inner_half_click`; it may click a pixel clicked before).
        rng: generator (or seed) for 'random-top50' and 'inner-half'.
        ignore_label: ignore label of ``gt``; None: ignore pixels count as background.

    Returns:
        Updated copy of ``points`` (same type, dtype and device as the input): the click is
        written as (y, x, click_indx) into the first free row (y < 0) of the positive half or
        of the negative half.
    """
    torch_like = hasattr(points, "detach")
    probs_np = _to_numpy(pred_probs)
    gt_np = _to_numpy(gt)
    pts = _to_numpy(points).astype(np.float32, copy=True)
    if probs_np.ndim == 4:
        probs_np = probs_np[:, 0]
    if gt_np.ndim == 4:
        gt_np = gt_np[:, 0]
    gt_np = np.rint(gt_np).astype(np.int64)
    gen = _as_generator(rng)
    n = pts.shape[1] // 2
    h, w = gt_np.shape[1:]

    for b in range(pts.shape[0]):
        not_clicked = np.ones((h, w), dtype=bool)
        used = pts[b, :, 0] >= 0
        ys = np.rint(pts[b, used, 0]).astype(np.int64)
        xs = np.rint(pts[b, used, 1]).astype(np.int64)
        inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        not_clicked[ys[inside], xs[inside]] = False

        fn, fp = _error_regions(gt_np[b], probs_np[b] > pred_thr, ignore_label)
        if mode == "inner-half":
            found = inner_half_click(fn, fp, gen)
        else:
            found = get_next_click(fn, fp, not_clicked, mode, gen)
        if found is None:
            continue
        is_positive, y, x = found
        half = slice(0, n) if is_positive else slice(n, 2 * n)
        free = np.flatnonzero(pts[b, half, 0] < 0)
        if free.size == 0:
            logger.warning("sample %d: no free %s click slot, click dropped", b,
                           "positive" if is_positive else "negative")
            continue
        pts[b, half.start + int(free[0])] = (y, x, click_indx)

    if torch_like:
        import torch

        return torch.as_tensor(pts, dtype=points.dtype, device=points.device)
    return pts.astype(np.asarray(points).dtype, copy=False)


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().float().cpu().numpy()
    return np.asarray(x)
