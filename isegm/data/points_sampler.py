"""Training click simulation: RITM's ``MultiPointSampler`` driven by an explicit generator.

For each training item the sampler picks a target (one object, or with ``merge_objects_prob``
the union of several), then draws

* positive clicks inside the (usually eroded) target: ``1 + k`` with ``k`` geometric(``prob_gamma``)
  over ``0..max_num_points-1``;
* negative clicks: ``k`` geometric over ``0..max_num_points``; each click picks a strategy
  (background / other objects / a border band around the target, probabilities
  ``negative_*_prob``) and then a uniform pixel of that region.

Output layout (the model's click tensor, SPEC Part II §2.2): a float32 ``[2*max_num_points, 3]``
array of ``(y, x, index)`` rows; positives in rows ``0..N-1``, negatives in ``N..2N-1``, unused
rows ``(-1, -1, -1)``. ``index`` is 0 for a "first click" (``first_click_center``) and 100 for any
other sampled click.

All randomness comes from the ``numpy.random.Generator`` passed in, so an item is reproducible
in any worker or process.
"""
from __future__ import annotations

import math
from collections.abc import Hashable
from functools import cache
from typing import Union

import cv2
import numpy as np

from isegm.utils.distance import exact_distance_transform

from .sample import DSample

__all__ = ["MultiPointSampler", "geometric_probs", "inner_point_candidates"]

# A region to sample from: one bool mask, or a list of (bool mask, probability) alternatives.
Region = Union[np.ndarray, list]

FIRST_CLICK_INDEX = 0
OTHER_CLICK_INDEX = 100


@cache
def geometric_probs(num: int, gamma: float) -> np.ndarray:
    """``p[i] ∝ gamma**i`` for ``i in 0..num-1``, normalised (cached, do not mutate)."""
    probs = np.power(float(gamma), np.arange(num, dtype=np.float64))
    probs /= probs.sum()
    probs.setflags(write=False)
    return probs


def inner_point_candidates(mask: np.ndarray, k: float = 1.7) -> np.ndarray:
    """``(n, 2)`` (y, x) pixels deep inside ``mask``: distance to the border > max / ``k``.

    Used for "first click in the centre": the distance transform is computed on the mask padded
    with background, so the image border counts as an object border.
    """
    dist = exact_distance_transform(mask)
    if dist.max() <= 0:
        return np.zeros((0, 2), np.int64)
    return np.argwhere(dist > dist.max() / k)


class MultiPointSampler:
    """RITM click sampler with explicit randomness.

    Args:
        max_num_points: clicks per sign (N); the output has 2N rows.
        prob_gamma: decay of the geometric distribution of click counts.
        expand_ratio: border band width as a fraction of sqrt(target area).
        positive_erode_prob: probability of eroding the positive region before sampling.
        positive_erode_iters: erosion radius (iterations of a 3×3 kernel).
        negative_bg_prob: weight of "anywhere outside the target".
        negative_other_prob: weight of "on another object".
        negative_border_prob: weight of "in a band around the target".
        merge_objects_prob: probability of merging several root objects into one target.
        max_num_merged_objects: at most this many objects are merged (-1 = ``max_num_points``).
        use_hierarchy: pick a node of the object tree (COCO+LVIS parts) instead of a root.
        first_click_center: the first positive click of each object comes from its inner part.
        only_one_first_click: with several target objects keep one "first" click only.
        sfc_inner_k: inner part = distance > max distance / ``sfc_inner_k``.
        clicks_on_ignore: let clicks fall on ignore pixels (-1) as the original sampler does:
            positives on the object or its ignore pixels, negatives anywhere not on the object.
            Off: ignore pixels get no click of either sign.
    """

    def __init__(
        self,
        max_num_points: int,
        prob_gamma: float = 0.7,
        expand_ratio: float = 0.1,
        positive_erode_prob: float = 0.9,
        positive_erode_iters: int = 3,
        negative_bg_prob: float = 0.1,
        negative_other_prob: float = 0.4,
        negative_border_prob: float = 0.5,
        merge_objects_prob: float = 0.0,
        max_num_merged_objects: int = 1,
        use_hierarchy: bool = False,
        first_click_center: bool = False,
        only_one_first_click: bool = False,
        sfc_inner_k: float = 1.7,
        clicks_on_ignore: bool = False,
    ) -> None:
        if max_num_points < 1:
            raise ValueError("max_num_points must be >= 1")
        neg_probs = (negative_bg_prob, negative_other_prob, negative_border_prob)
        if not math.isclose(sum(neg_probs), 1.0, abs_tol=1e-6) or min(neg_probs) < 0:
            raise ValueError(f"negative strategy probabilities must sum to 1, got {neg_probs}")
        self.max_num_points = int(max_num_points)
        self.prob_gamma = float(prob_gamma)
        self.expand_ratio = float(expand_ratio)
        self.positive_erode_prob = float(positive_erode_prob)
        self.positive_erode_iters = int(positive_erode_iters)
        self.neg_strategies_prob = tuple(float(p) for p in neg_probs)
        self.merge_objects_prob = float(merge_objects_prob)
        if max_num_merged_objects == -1:
            max_num_merged_objects = self.max_num_points
        self.max_num_merged_objects = int(max_num_merged_objects)
        self.use_hierarchy = bool(use_hierarchy)
        self.first_click_center = bool(first_click_center)
        self.only_one_first_click = bool(only_one_first_click)
        self.sfc_inner_k = float(sfc_inner_k)
        self.clicks_on_ignore = bool(clicks_on_ignore)
        self._pos_probs = geometric_probs(self.max_num_points, self.prob_gamma)
        self._neg_probs = geometric_probs(self.max_num_points + 1, self.prob_gamma)

    def __repr__(self) -> str:
        return (f"MultiPointSampler(max_num_points={self.max_num_points}, "
                f"prob_gamma={self.prob_gamma}, merge_objects_prob={self.merge_objects_prob}, "
                f"max_num_merged_objects={self.max_num_merged_objects}, "
                f"use_hierarchy={self.use_hierarchy})")

    # ------------------------------------------------------------------ public
    def __call__(self, sample: DSample, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self.sample(sample, rng)

    def sample(self, sample: DSample, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Pick a target in ``sample`` and simulate clicks on it.

        Returns:
            ``(points, gt_mask)``: float32 ``[2N, 3]`` clicks (layout in the module docstring)
            and the float32 ``[1, H, W]`` target (1 object, 0 background, -1 ignore).
        """
        if len(sample) == 0:
            background = sample.get_background_mask()
            gt_mask = np.zeros(background.shape, np.int32)
            pos_regions: list[np.ndarray] = []
            required_neg: list[np.ndarray] = []
            neg_choice = [(background, p) for p in self.neg_strategies_prob]
        else:
            gt_mask, pos_regions, required_neg = self._select_target(sample, rng)
            binary = gt_mask > 0
            # ignore pixels (-1) get no click of either sign, unless clicks_on_ignore
            not_target = gt_mask <= 0 if self.clicks_on_ignore else gt_mask == 0
            if len(sample) <= len(pos_regions):
                other = not_target
            else:
                other = ~sample.get_background_mask() & not_target
            border = self._border_mask(binary) & not_target
            neg_choice = list(zip((not_target, other, border), self.neg_strategies_prob))

        pos = self._multi_region_points(pos_regions, [False] * len(pos_regions),
                                        self.first_click_center, rng)
        neg_regions: list[Region] = [*required_neg, neg_choice]
        neg = self._multi_region_points(neg_regions, [False] * len(required_neg) + [True],
                                        False, rng)
        points = np.concatenate([pos, neg], axis=0).astype(np.float32)
        return points, gt_mask[np.newaxis].astype(np.float32)

    # ------------------------------------------------------------------ target choice
    def _select_target(self, sample: DSample, rng: np.random.Generator
                       ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        roots = sample.root_objects
        if len(roots) > 1 and rng.random() < self.merge_objects_prob:
            max_selected = min(len(roots), self.max_num_merged_objects)
            count = int(rng.integers(2, max_selected + 1)) if max_selected >= 2 else 1
            chosen = [roots[i] for i in rng.choice(len(roots), size=count, replace=False)]
        else:
            chosen = [roots[int(rng.integers(len(roots)))]]

        gt_mask = None
        pos_segments: list[np.ndarray] = []
        neg_segments: list[np.ndarray] = []
        for key in chosen:
            obj_gt, obj_pos, obj_neg = self._object_target(sample, key, rng)
            gt_mask = obj_gt if gt_mask is None else np.maximum(gt_mask, obj_gt)
            pos_segments.extend(obj_pos)
            neg_segments.extend(obj_neg)
        pos_regions = [self._maybe_erode(m, rng) for m in pos_segments]
        required_neg = [self._maybe_erode(m, rng) for m in neg_segments]
        return gt_mask, pos_regions, required_neg

    def _object_target(self, sample: DSample, key: Hashable, rng: np.random.Generator
                       ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Target mask (int32 with -1 ignore), positive segments and required negative segments."""
        if not self.use_hierarchy:
            gt = sample.get_object_mask(key)
            return gt, [gt != 0 if self.clicks_on_ignore else gt > 0], []

        tree = sample.objects
        node = key
        while tree[node]["children"] and rng.random() >= 0.5:
            children = tree[node]["children"]
            node = children[int(rng.integers(len(children)))]
        info = tree[node]
        gt = sample.get_object_mask(node)
        node_mask = gt > 0
        pos = node_mask.copy()
        negatives: list[np.ndarray] = []

        parent = info["parent"]
        if parent is not None and parent in tree:
            negatives.append((sample.get_object_mask(parent) > 0) & ~node_mask)

        children = [c for c in info["children"] if c in tree]
        node_area = max(info.get("area", 0), 1)
        for child in children:
            if tree[child].get("area", 0) / node_area < 0.10:
                pos &= ~(sample.get_object_mask(child) > 0)
        if children:
            num_disabled = int(rng.integers(0, min(len(children), 3) + 1))
            for i in rng.choice(len(children), size=num_disabled, replace=False):
                child_mask = sample.get_object_mask(children[int(i)]) > 0
                pos &= ~child_mask
                gt = np.where(child_mask, 0, gt).astype(np.int32)
                negatives.append(child_mask)
        return gt, [pos], negatives

    # ------------------------------------------------------------------ regions
    def _maybe_erode(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Erode with probability ``positive_erode_prob`` unless that leaves <= 10 pixels."""
        if rng.random() > self.positive_erode_prob:
            return mask
        size = 2 * self.positive_erode_iters + 1
        eroded = cv2.erode(mask.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool)
        return eroded if np.count_nonzero(eroded) > 10 else mask

    def _border_mask(self, mask: np.ndarray) -> np.ndarray:
        """Band of width ``ceil(expand_ratio * sqrt(area))`` just outside ``mask``."""
        radius = int(np.ceil(self.expand_ratio * np.sqrt(np.count_nonzero(mask))))
        if radius <= 0:
            return np.zeros_like(mask, dtype=bool)
        size = 2 * radius + 1
        dilated = cv2.dilate(mask.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool)
        return dilated & ~mask

    # ------------------------------------------------------------------ click drawing
    def _multi_region_points(self, regions: list[Region], is_negative: list[bool],
                             with_first_click: bool, rng: np.random.Generator) -> np.ndarray:
        """Clicks for several regions, padded to ``[max_num_points, 3]`` with -1.

        One region: its own draw. Several: the first click of each region, then a joint draw
        over all regions (equal weight) to fill up, capped at ``max_num_points``.
        """
        regions = regions[:self.max_num_points]
        per_region = [self._region_points(r, neg, with_first_click, rng)
                      for r, neg in zip(regions, is_negative)]
        per_region = [p for p in per_region if len(p)]

        points = np.zeros((0, 3), np.int64)
        if len(per_region) == 1:
            points = per_region[0]
        elif len(per_region) > 1:
            if self.only_one_first_click:
                per_region = per_region[:1]
            points = np.stack([p[0] for p in per_region])
            joint: list = []
            for region in regions:
                if isinstance(region, list):
                    joint.extend((m, p / len(regions)) for m, p in region)
                else:
                    joint.append((region, 1.0 / len(regions)))
            extra = self._region_points(joint, True, False, rng)
            room = self.max_num_points - len(points)
            if len(extra) > room:
                extra = extra[np.sort(rng.choice(len(extra), size=room, replace=False))]
            points = np.concatenate([points, extra], axis=0)

        out = np.full((self.max_num_points, 3), -1, np.int64)
        out[:len(points)] = points[:self.max_num_points]
        return out

    def _region_points(self, region: Region, is_negative: bool, with_first_click: bool,
                       rng: np.random.Generator) -> np.ndarray:
        """``(k, 3)`` clicks in ``region``; draws that hit an empty region are dropped."""
        if is_negative:
            count = int(rng.choice(self.max_num_points + 1, p=self._neg_probs))
        else:
            count = 1 + int(rng.choice(self.max_num_points, p=self._pos_probs))
        if count == 0:
            return np.zeros((0, 3), np.int64)

        if isinstance(region, list):
            if not region:
                return np.zeros((0, 3), np.int64)
            probs = np.array([p for _, p in region], np.float64)
            which = rng.choice(len(region), size=count, p=probs / probs.sum())
            flat = np.full(count, -1, np.int64)
            width = region[0][0].shape[1]
            for k in np.unique(which):
                candidates = np.flatnonzero(region[int(k)][0])
                if candidates.size:
                    hits = which == k
                    flat[hits] = candidates[rng.integers(candidates.size, size=int(hits.sum()))]
            flat = flat[flat >= 0]
            return _flat_to_clicks(flat, width, OTHER_CLICK_INDEX)

        width = region.shape[1]
        candidates = np.flatnonzero(region)
        rows = []
        if with_first_click:
            inner = inner_point_candidates(region, self.sfc_inner_k)
            if len(inner):
                y, x = inner[int(rng.integers(len(inner)))]
                rows.append(np.array([[y, x, FIRST_CLICK_INDEX]], np.int64))
            count -= 1
        if candidates.size and count > 0:
            flat = candidates[rng.integers(candidates.size, size=count)]
            rows.append(_flat_to_clicks(flat, width, OTHER_CLICK_INDEX))
        return np.concatenate(rows, axis=0) if rows else np.zeros((0, 3), np.int64)


def _flat_to_clicks(flat: np.ndarray, width: int, index: int) -> np.ndarray:
    ys, xs = np.divmod(flat.astype(np.int64), width)
    return np.stack([ys, xs, np.full_like(ys, index)], axis=1)
