"""Procedural multi-scale scenes: a dataset that needs no download.

Each image is a textured, noisy background with several objects (ellipses, rectangles, random
polygons and smooth blobs), each with its own colour and texture. Object areas span three scales,
as a fraction of the image area:

* ``small``: from 16 pixels up to 1 %;
* ``medium``: 1 % to 10 %;
* ``large``: 10 % to 60 %.

Everything is a pure function of ``(seed, index)``, so samples are identical in any process and
nothing is stored. Two readers share the renderer:

* :class:`SyntheticMultiScaleDataset` — training (:class:`ISDataset`): all visible objects of a
  scene are objects of one label layer.
* :class:`SyntheticEvalDataset` — evaluation: one target object per sample, drawn on top of the
  distractors and fully inside the image, whose area lies in the requested scale.

Training and evaluation scenes come from different seed streams, so they never coincide.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Union

import cv2
import numpy as np

from ..base import ISDataset
from ..masks import labels_with_sizes
from ..sample import DSample

__all__ = ["SyntheticMultiScaleDataset", "SyntheticEvalDataset", "SCALES", "scale_area_bounds",
           "object_scale", "render_scene"]

logger = logging.getLogger(__name__)

SCALES = ("small", "medium", "large")
#: Area bounds as fractions of the image area; ``small`` also has a 16-pixel floor.
_SCALE_FRACTIONS = {"small": (0.0, 0.01), "medium": (0.01, 0.10), "large": (0.10, 0.60)}
_MIN_AREA_PX = 16
#: How often each scale is drawn for objects of ``scale='all'`` scenes.
_ALL_SCALE_PROBS = (0.4, 0.35, 0.25)
_TRAIN_STREAM, _EVAL_STREAM = 0, 1
_SUBPIXEL_SHIFT = 4  # fillPoly fixed-point bits

ImageSize = Union[int, tuple[int, int]]


def _hw(image_size: ImageSize) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    return int(image_size[0]), int(image_size[1])


def scale_area_bounds(scale: str, height: int, width: int) -> tuple[float, float]:
    """``[low, high)`` object area in pixels for ``scale`` in an image of that size."""
    low, high = _SCALE_FRACTIONS[scale]
    total = height * width
    return max(low * total, _MIN_AREA_PX), high * total


def object_scale(area: float, height: int, width: int) -> str:
    """The scale name an object of ``area`` pixels belongs to."""
    fraction = area / (height * width)
    if fraction < _SCALE_FRACTIONS["small"][1]:
        return "small"
    if fraction < _SCALE_FRACTIONS["medium"][1]:
        return "medium"
    return "large"


# ---------------------------------------------------------------------- textures
def _low_freq_noise(rng: np.random.Generator, height: int, width: int, cells: int,
                    channels: int = 3) -> np.ndarray:
    """Smooth noise in [-1, 1]: a coarse random grid upsampled bicubically."""
    gh = max(2, int(round(cells * height / max(height, width))))
    gw = max(2, int(round(cells * width / max(height, width))))
    grid = rng.uniform(-1.0, 1.0, (gh, gw, channels)).astype(np.float32)
    out = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return out.reshape(height, width, channels)


def _directional_coord(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """``x cos θ + y sin θ`` over an H×W grid for a random θ (float32)."""
    theta = rng.uniform(0, np.pi)
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    return xs * np.float32(np.cos(theta)) + ys * np.float32(np.sin(theta))


def _pattern(rng: np.random.Generator, height: int, width: int, colour: np.ndarray,
             for_background: bool) -> np.ndarray:
    """A float32 H×W×3 texture around ``colour``."""
    kind = rng.choice(["flat", "gradient", "stripes", "noise", "checker"] if for_background
                      else ["flat", "gradient", "stripes", "noise"])
    out = np.broadcast_to(colour.astype(np.float32), (height, width, 3)).copy()
    if kind == "gradient":
        coord = _directional_coord(rng, height, width)
        span = max(float(np.ptp(coord)), 1.0)
        ramp = (coord - coord.min()) / span - 0.5
        out += ramp[:, :, None] * rng.uniform(-1, 1, 3).astype(np.float32) * rng.uniform(30, 90)
    elif kind == "stripes":
        period = rng.uniform(3, 14) if not for_background else rng.uniform(6, 40)
        wave = np.sin(_directional_coord(rng, height, width) * np.float32(2 * np.pi / period))
        out += wave[:, :, None] * rng.uniform(-1, 1, 3).astype(np.float32) * rng.uniform(12, 40)
    elif kind == "noise":
        cells = int(rng.integers(3, 12))
        out += _low_freq_noise(rng, height, width, cells) * np.float32(rng.uniform(15, 45))
    elif kind == "checker":
        cell = int(rng.integers(6, 40))
        ys = (np.arange(height) // cell)[:, None]
        xs = (np.arange(width) // cell)[None, :]
        board = ((ys + xs) % 2).astype(np.float32)
        out += board[:, :, None] * rng.uniform(-60, 60, 3).astype(np.float32)
    if for_background:
        out += _low_freq_noise(rng, height, width, int(rng.integers(2, 6))) * \
            np.float32(rng.uniform(10, 50))
    return out


# ---------------------------------------------------------------------- shapes
def _unit_shape(rng: np.random.Generator) -> np.ndarray:
    """A closed polygon ``(n, 2)`` in (x, y), radius about 1, centred near the origin."""
    kind = rng.choice(["ellipse", "rectangle", "polygon", "blob", "blob"])
    if kind == "ellipse":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        pts = np.stack([np.cos(t), rng.uniform(0.3, 1.0) * np.sin(t)], axis=1)
    elif kind == "rectangle":
        aspect = rng.uniform(0.25, 1.0)
        pts = np.array([[-1, -aspect], [1, -aspect], [1, aspect], [-1, aspect]], np.float64)
    elif kind == "polygon":
        n = int(rng.integers(3, 9))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(0.5, 1.0, n)
        pts = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    else:
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        harmonics = np.arange(2, 6)
        amps = rng.uniform(0, 0.35, harmonics.size) / np.sqrt(harmonics - 1)
        phases = rng.uniform(0, 2 * np.pi, harmonics.size)
        radius = 1 + (amps[:, None] * np.cos(harmonics[:, None] * t + phases[:, None])).sum(0)
        radius = np.maximum(radius, 0.35)
        pts = np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)
    theta = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return pts @ rot.T


def _polygon_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _place_shape(rng: np.random.Generator, area: float, height: int, width: int,
                 inside: bool) -> np.ndarray:
    """Scale a random shape to about ``area`` pixels and place it; returns image coordinates.

    ``inside`` keeps the whole shape in the image (shrinking it if it cannot fit).
    """
    pts = _unit_shape(rng)
    pts = pts * np.sqrt(area / max(_polygon_area(pts), 1e-9))
    extent = pts.max(0) - pts.min(0)
    fit = min(0.96 * width / max(extent[0], 1e-9), 0.96 * height / max(extent[1], 1e-9), 1.0)
    pts = pts * fit
    lo, hi = pts.min(0), pts.max(0)
    if inside:
        cx = rng.uniform(-lo[0], width - hi[0])
        cy = rng.uniform(-lo[1], height - hi[1])
    else:
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    return pts + np.array([cx, cy])


def _rasterise(pts: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool H×W mask of a polygon (sub-pixel vertex precision)."""
    mask = np.zeros((height, width), np.uint8)
    fixed = np.round((pts - 0.5) * (1 << _SUBPIXEL_SHIFT)).astype(np.int32)
    cv2.fillPoly(mask, [fixed], 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_SHIFT)
    return mask.astype(bool)


def _pick_colour(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """A colour far from the mean colour of the canvas ``under`` the object (best of 8)."""
    reference = under.reshape(-1, 3).mean(0) if under.size else np.full(3, 128.0)
    candidates = rng.uniform(0, 255, (8, 3))
    distances = np.linalg.norm(candidates - reference, axis=1)
    good = np.flatnonzero(distances > 90)
    return candidates[good[0]] if good.size else candidates[int(distances.argmax())]


def _paint(rng: np.random.Generator, canvas: np.ndarray, mask: np.ndarray) -> None:
    """Fill ``mask`` on ``canvas`` with a fresh colour and texture (in place)."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    box = mask[y0:y1, x0:x1]
    region = canvas[y0:y1, x0:x1]
    colour = _pick_colour(rng, region[box])
    texture = _pattern(rng, y1 - y0, x1 - x0, colour, for_background=False)
    region[box] = texture[box]


# ---------------------------------------------------------------------- scenes
def _object_mask(rng: np.random.Generator, area: float, bounds: tuple[float, float],
                 height: int, width: int, inside: bool) -> np.ndarray:
    """A random shape of about ``area`` pixels whose rasterised area lies in ``bounds``.

    Tiny or clipped shapes rasterise to a different area than asked; up to 8 shapes are tried,
    then a disc of the geometric-mean area (which always fits and rasterises accurately).
    """
    low, high = bounds
    for attempt in range(8):
        if attempt:
            area = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        mask = _rasterise(_place_shape(rng, area, height, width, inside), height, width)
        if low <= np.count_nonzero(mask) < high:
            return mask
    radius = np.sqrt(np.sqrt(low * high) / np.pi)
    yy, xx = np.ogrid[:height, :width]
    cy = rng.uniform(radius + 1, height - radius - 1)
    cx = rng.uniform(radius + 1, width - radius - 1)
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2


def render_scene(rng: np.random.Generator, height: int, width: int, scales: list[str],
                 target_scale: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Render a scene with one object per entry of ``scales``.

    Objects are painted largest first so small ones stay visible (occlusion can still shrink
    them). With ``target_scale`` one extra target object is painted last, fully inside the
    image, so its whole area lies in that scale; it gets id ``len(scales) + 1``.

    Returns:
        ``(image, labels)``: uint8 H×W×3 RGB and int32 H×W visible-object ids (0 background).
    """
    canvas = _pattern(rng, height, width, rng.uniform(30, 225, 3), for_background=True)
    labels = np.zeros((height, width), np.int32)
    bounds = [scale_area_bounds(sc, height, width) for sc in scales]
    areas = [float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) for lo, hi in bounds]
    order = np.argsort(areas)[::-1]
    for obj_id, k in enumerate(order.tolist(), start=1):
        mask = _object_mask(rng, areas[k], bounds[k], height, width, inside=False)
        _paint(rng, canvas, mask)
        labels[mask] = obj_id

    if target_scale is not None:
        low, high = scale_area_bounds(target_scale, height, width)
        area = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        target = _object_mask(rng, area, (low, high), height, width, inside=True)
        _paint(rng, canvas, target)
        labels[target] = len(scales) + 1

    canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * np.float32(rng.uniform(1, 6))
    image = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (3, 3), 0)
    return image, labels


def _check_scale(scale: str, allowed: tuple[str, ...]) -> str:
    scale = scale.lower()
    if scale not in allowed:
        raise ValueError(f"unknown synthetic scale {scale!r}; use one of {allowed}")
    return scale


def _object_scales(rng: np.random.Generator, count: int, scale: str,
                   probs: Sequence[float] = _ALL_SCALE_PROBS) -> list[str]:
    """``count`` object scales: all ``scale``, or drawn with ``probs`` for ``scale='all'``."""
    if scale == "all":
        return [SCALES[int(i)] for i in rng.choice(len(SCALES), size=count, p=probs)]
    return [scale] * count


class SyntheticMultiScaleDataset(ISDataset):
    """Procedural training scenes (no files).

    Args:
        num_samples: number of distinct scenes.
        image_size: ``int`` or ``(height, width)``.
        seed: scene seed and :class:`ISDataset` seed.
        scale: object scales in the scenes: ``'all'`` or one of :data:`SCALES`.
        objects_per_image: inclusive ``(min, max)`` number of objects.
        **kwargs: :class:`ISDataset` arguments (augmentator, points_sampler, ...).
    """

    name = "SyntheticTrain"

    def __init__(self, num_samples: int = 10000, image_size: ImageSize = 224, seed: int = 0,
                 scale: str = "all", objects_per_image: tuple[int, int] = (2, 6),
                 **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self.image_size = _hw(image_size)
        self.scale = _check_scale(scale, (*SCALES, "all"))
        self.objects_per_image = (int(objects_per_image[0]), int(objects_per_image[1]))
        if not 1 <= self.objects_per_image[0] <= self.objects_per_image[1]:
            raise ValueError(f"bad objects_per_image {objects_per_image}")
        self.dataset_samples = list(range(int(num_samples)))

    def get_sample(self, index: int, rng: np.random.Generator | None = None) -> DSample:
        scene_rng = np.random.default_rng([self.seed, _TRAIN_STREAM, int(index)])
        height, width = self.image_size
        count = int(scene_rng.integers(self.objects_per_image[0], self.objects_per_image[1] + 1))
        scales = _object_scales(scene_rng, count, self.scale)
        image, labels = render_scene(scene_rng, height, width, scales)
        visible = labels_with_sizes(labels)[0].tolist()
        return DSample(image, labels, objects_ids=visible, sample_id=index,
                       image_name=f"synthetic-train-{index:06d}")


class SyntheticEvalDataset(ISDataset):
    """Procedural evaluation scenes: one target object per sample (like GrabCut).

    Args:
        num_samples: number of samples.
        image_size: ``int`` or ``(height, width)``.
        seed: scene seed.
        scale: scale of the target: one of :data:`SCALES`, or ``'all'`` (cycles through them).
        objects_per_image: inclusive ``(min, max)`` number of objects including the target.
    """

    def __init__(self, num_samples: int = 100, image_size: ImageSize = 224, seed: int = 0,
                 scale: str = "all", objects_per_image: tuple[int, int] = (2, 6),
                 **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self.image_size = _hw(image_size)
        self.scale = _check_scale(scale, (*SCALES, "all"))
        self.name = "Synthetic" if self.scale == "all" else f"Synthetic{self.scale.upper()}"
        self.objects_per_image = (int(objects_per_image[0]), int(objects_per_image[1]))
        if not 1 <= self.objects_per_image[0] <= self.objects_per_image[1]:
            raise ValueError(f"bad objects_per_image {objects_per_image}")
        self.dataset_samples = list(range(int(num_samples)))

    def target_scale(self, index: int) -> str:
        """Scale of the target of sample ``index``."""
        return SCALES[index % len(SCALES)] if self.scale == "all" else self.scale

    def get_sample(self, index: int, rng: np.random.Generator | None = None) -> DSample:
        scene_rng = np.random.default_rng([self.seed, _EVAL_STREAM, int(index)])
        height, width = self.image_size
        scale = self.target_scale(index)
        count = int(scene_rng.integers(self.objects_per_image[0], self.objects_per_image[1] + 1))
        distractors = _object_scales(scene_rng, count - 1, "all")
        image, labels = render_scene(scene_rng, height, width, distractors, target_scale=scale)
        mask = (labels == count).astype(np.int32)
        return DSample(image, mask, objects_ids=[1], sample_id=index,
                       image_name=f"synthetic-{scale}-{index:05d}")
