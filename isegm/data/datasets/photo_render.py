"""Composing scenes from real photographs: the photo library and the renderer of one scene (the
datasets that draw them are in :mod:`.photo_scenes`).

The synthetic scenes (:mod:`.synthetic`) have flat procedural textures, and a model trained only
on them does not transfer to photographs. Here every pixel comes from a photograph (collected by
``python -m isegm.data.photos collect``): a crop of one photograph is the background, and
several objects with natural appearance are put on it, at the three scales of the synthetic
benchmarks. Four kinds of object:

* ``cutout``: a photographed object with its own alpha matte (``objects/*.png``);
* ``region``: a coherent region of another photograph, i.e. Felzenszwalb superpixels merged by
  colour similarity from a random seed, pasted with that photograph's pixels;
* ``shape``: a random polygon / blob (the synthetic shapes) filled with a crop of a photograph;
* ``inplace``: a merged-superpixel region of the background photograph itself, labelled where it
  is (no paste, so no artificial edge at all).

Pasted objects get a feathered alpha (Gaussian blur of the edge) and a small colour jitter;
later objects occlude earlier ones, and an object's mask is its *visible* part (alpha >= 0.5 and
not covered). Each scene is a pure function of the generator it is given
(:func:`render_photo_scene`).

Photographs are split by a hash of their file name into disjoint train / val sets
(:func:`split_files`), so the validation scenes never reuse a training photograph.
"""
from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..base import DatasetError
from ..photos import list_photos
from .synthetic import _polygon_area, _rasterise, _unit_shape, scale_area_bounds

__all__ = ["PhotoLibrary", "split_files", "render_photo_scene", "merged_region", "OBJECT_KINDS"]

logger = logging.getLogger(__name__)

OBJECT_KINDS = ("cutout", "region", "shape", "inplace")
#: Mostly photographed objects with their own mattes: merged-superpixel regions are often not
#: objects a person would click (half a petal, a patch of foliage), and a first probe with
#: (0.35, 0.30, 0.15, 0.20) plateaued at a training IoU of 0.5.
_KIND_PROBS = (0.55, 0.15, 0.15, 0.15)
#: Scenes are cached at this longest side (training crops are 224-448 px).
_CACHE_SIDE = 640
#: Superpixels are computed on images of this longest side (speed; edges are upsampled).
_SEGMENT_SIDE = 96


def split_files(files: Sequence[Path], split: str, val_fraction: float = 0.15) -> list[Path]:
    """The files of ``split`` (``'train'``, ``'val'`` or ``'all'``): disjoint and stable.

    Files are ordered by the CRC32 of their name; the first ``round(n * val_fraction)`` (at
    least one when there are two or more files) are validation, the rest training. The split of
    a file does not depend on the other files' contents, only on their number.
    """
    if split == "all":
        return list(files)
    if split not in ("train", "val"):
        raise ValueError(f"unknown split {split!r}; use train, val or all")
    ordered = sorted(files, key=lambda p: (zlib.crc32(Path(p).name.encode()), Path(p).name))
    n_val = max(1, int(round(len(ordered) * val_fraction))) if len(ordered) >= 2 else 0
    chosen = ordered[:n_val] if split == "val" else ordered[n_val:]
    return sorted(chosen)


class PhotoLibrary:
    """The scene photographs and object cut-outs of one split, decoded once and cached.

    Args:
        folder: a photos folder (``scenes/`` + ``objects/``, or any folder of images).
        split: ``'train'``, ``'val'`` or ``'all'`` (see :func:`split_files`).
        val_fraction: share of the photographs held out for validation.
    """

    def __init__(self, folder: str | Path, split: str = "train", val_fraction: float = 0.15
                 ) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise DatasetError(f"photos folder {folder} does not exist "
                               "(run: python -m isegm.data.photos collect)")
        scenes, objects = list_photos(folder)
        self.scene_files = split_files(scenes, split, val_fraction)
        self.object_files = split_files(objects, split, val_fraction)
        if not self.scene_files:
            raise DatasetError(f"photos folder {folder}: no scene photographs in split {split} "
                               f"({len(scenes)} in all; run: python -m isegm.data.photos collect)")
        self._scenes: dict[int, np.ndarray] = {}
        self._objects: dict[int, np.ndarray] = {}

    def scene(self, k: int) -> np.ndarray:
        """RGB uint8 scene ``k`` (longest side at most 640 px)."""
        if k not in self._scenes:
            image = cv2.imread(str(self.scene_files[k]), cv2.IMREAD_COLOR)
            if image is None:
                raise DatasetError(f"cannot read photograph {self.scene_files[k]}")
            scale = _CACHE_SIDE / max(image.shape[:2])
            if scale < 1:
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            self._scenes[k] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return self._scenes[k]

    def cutout(self, k: int) -> np.ndarray:
        """RGBA uint8 object ``k``, cropped to its alpha's bounding box."""
        if k not in self._objects:
            rgba = cv2.imread(str(self.object_files[k]), cv2.IMREAD_UNCHANGED)
            if rgba is None or rgba.ndim != 3 or rgba.shape[2] != 4:
                raise DatasetError(f"object cut-out {self.object_files[k]} is not an RGBA image")
            ys, xs = np.nonzero(rgba[..., 3] > 127)
            if ys.size == 0:
                raise DatasetError(f"object cut-out {self.object_files[k]} has an empty alpha")
            rgba = rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
            self._objects[k] = cv2.cvtColor(rgba, cv2.COLOR_BGRA2RGBA)
        return self._objects[k]


# ------------------------------------------------------------------------------ regions
def merged_region(rng: np.random.Generator, image: np.ndarray, target_fraction: float
                  ) -> np.ndarray:
    """A coherent region of ``image``: superpixels merged by colour, bool mask at image size.

    Felzenszwalb superpixels (computed at 96 px) are grown from a random seed segment, each
    step adding the neighbouring segment closest in mean Lab colour to the region, until the
    region covers ``target_fraction`` of the image. Holes are filled and the mask is upsampled
    smoothly, so the edge follows the photograph's edges.
    """
    from skimage.segmentation import felzenszwalb

    height, width = image.shape[:2]
    scale = min(1.0, _SEGMENT_SIDE / max(height, width))
    small = cv2.resize(image, (max(2, round(width * scale)), max(2, round(height * scale))),
                       interpolation=cv2.INTER_AREA)
    segments = felzenszwalb(small, scale=float(rng.uniform(30, 200)), sigma=0.6, min_size=10)
    n = int(segments.max()) + 1
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
    flat = segments.ravel()
    sizes = np.bincount(flat, minlength=n).astype(np.float64)
    sums = np.stack([np.bincount(flat, lab[:, c], minlength=n) for c in range(3)], axis=1)
    left = np.concatenate([segments[:, :-1].ravel(), segments[:-1].ravel()]).astype(np.int64)
    right = np.concatenate([segments[:, 1:].ravel(), segments[1:].ravel()]).astype(np.int64)
    codes = np.unique(np.minimum(left, right) * n + np.maximum(left, right))
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for a, b in zip((codes // n).tolist(), (codes % n).tolist()):
        if a != b:
            neighbours[a].add(b)
            neighbours[b].add(a)

    sh, sw = small.shape[:2]  # seed in the central half: regions of a crop reach its middle
    seed = int(segments[rng.integers(sh // 4, sh - sh // 4), rng.integers(sw // 4, sw - sw // 4)])
    region, frontier = {seed}, set(neighbours[seed])
    area, colour = sizes[seed], sums[seed].copy()
    goal = target_fraction * flat.size
    while area < goal and frontier:
        cand = np.fromiter(frontier, dtype=np.int64)
        dist = np.linalg.norm(sums[cand] / sizes[cand, None] - colour / area, axis=1)
        best = int(cand[int(dist.argmin())])
        region.add(best)
        frontier |= neighbours[best]
        frontier -= region
        area += sizes[best]
        colour += sums[best]
    mask = np.isin(segments, np.fromiter(region, dtype=np.int64)).astype(np.uint8)
    # fill holes: everything not reachable from the border outside the mask
    padded = np.pad(1 - mask, 1, constant_values=1)
    cv2.floodFill(padded, None, (0, 0), 2)
    mask = (padded[1:-1, 1:-1] != 2).astype(np.float32)
    big = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
    return big >= 0.5


# ------------------------------------------------------------------------------ patches
def _random_crop(rng: np.random.Generator, image: np.ndarray, height: int, width: int,
                 min_cover: float = 0.35) -> np.ndarray:
    """A random crop of ``image`` with aspect ``height:width``, resized to that size."""
    ih, iw = image.shape[:2]
    aspect = width / height
    full_h = min(ih, iw / aspect)
    ch = full_h * rng.uniform(min_cover, 1.0)
    cw = ch * aspect
    y0 = rng.uniform(0, ih - ch)
    x0 = rng.uniform(0, iw - cw)
    crop = image[int(y0):int(y0 + ch) + 1, int(x0):int(x0 + cw) + 1]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    interp = cv2.INTER_AREA if crop.shape[0] > height else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=interp)


def _patch_dims(area: float, fraction: float, aspect: float, height: int, width: int
                ) -> tuple[int, int]:
    """Patch size whose ``fraction`` covers ``area`` pixels, capped at 1.5x the image."""
    ph = np.sqrt(area / max(fraction, 1e-3) / aspect)
    pw = ph * aspect
    cap = min(1.5 * height / ph, 1.5 * width / pw, 1.0)
    return max(2, int(round(ph * cap))), max(2, int(round(pw * cap)))


def _cutout_patch(rng: np.random.Generator, lib: PhotoLibrary, area: float, height: int,
                  width: int) -> tuple[np.ndarray, np.ndarray]:
    rgba = lib.cutout(int(rng.integers(len(lib.object_files))))
    if rng.random() < 0.5:
        rgba = rgba[:, ::-1]
    alpha = rgba[..., 3].astype(np.float32) / 255.0
    fraction = float((alpha >= 0.5).mean())
    ph, pw = _patch_dims(area, fraction, rgba.shape[1] / rgba.shape[0], height, width)
    interp = cv2.INTER_AREA if ph < rgba.shape[0] else cv2.INTER_LINEAR
    patch = cv2.resize(np.ascontiguousarray(rgba), (pw, ph), interpolation=interp)
    return patch[..., :3].astype(np.float32), patch[..., 3].astype(np.float32) / 255.0


def _region_patch(rng: np.random.Generator, lib: PhotoLibrary, area: float, height: int,
                  width: int, exclude: int) -> tuple[np.ndarray, np.ndarray]:
    k = _other_scene(rng, lib, exclude)
    aspect = float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))
    source = _random_crop(rng, lib.scene(k), 160, max(2, int(round(160 * aspect))))
    mask = merged_region(rng, source, float(rng.uniform(0.15, 0.5)))
    # a region that reaches the crop's border would get a straight edge there: keep it inside
    # a random ellipse, so off-edge boundaries are smooth curves
    height_s, width_s = mask.shape
    ellipse = np.zeros_like(mask, dtype=np.uint8)
    axes = (int(width_s * rng.uniform(0.3, 0.48)), int(height_s * rng.uniform(0.3, 0.48)))
    cv2.ellipse(ellipse, (width_s // 2, height_s // 2), axes, float(rng.uniform(0, 180)), 0, 360,
                1, -1)
    mask = mask & (ellipse > 0) if np.count_nonzero(mask & (ellipse > 0)) >= 16 else ellipse > 0
    ys, xs = np.nonzero(mask)
    source = source[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    mask = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    ph, pw = _patch_dims(area, float(mask.mean()), mask.shape[1] / mask.shape[0], height, width)
    rgb = cv2.resize(source, (pw, ph), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    alpha = cv2.resize(mask.astype(np.float32), (pw, ph), interpolation=cv2.INTER_LINEAR)
    return rgb, alpha


def _shape_patch(rng: np.random.Generator, lib: PhotoLibrary, area: float, height: int,
                 width: int, exclude: int) -> tuple[np.ndarray, np.ndarray]:
    pts = _unit_shape(rng)
    pts = pts * np.sqrt(area / max(_polygon_area(pts), 1e-9))
    pts = pts - pts.min(0)
    ph = max(2, min(int(np.ceil(pts[:, 1].max())) + 1, int(1.5 * height)))
    pw = max(2, min(int(np.ceil(pts[:, 0].max())) + 1, int(1.5 * width)))
    alpha = _rasterise(pts, ph, pw).astype(np.float32)
    texture = _random_crop(rng, lib.scene(_other_scene(rng, lib, exclude)), ph, pw, 0.1)
    return texture.astype(np.float32), alpha


def _other_scene(rng: np.random.Generator, lib: PhotoLibrary, exclude: int) -> int:
    n = len(lib.scene_files)
    if n == 1:
        return 0
    k = int(rng.integers(n - 1))
    return k + (k >= exclude)


def _jitter(rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """Per-object brightness / contrast / colour change, so pasted objects differ in tone."""
    gain = rng.uniform(0.8, 1.2) * rng.uniform(0.92, 1.08, 3)
    return rgb * gain.astype(np.float32) + np.float32(rng.uniform(-15, 15))


def _feather(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """Soften the hard edge of a mask (objects in photographs are never aliased cut-outs)."""
    sigma = rng.uniform(0.3, 1.5)
    return cv2.GaussianBlur(alpha, (0, 0), sigmaX=sigma)


def _paste(rng: np.random.Generator, canvas: np.ndarray, labels: np.ndarray, obj_id: int,
           rgb: np.ndarray, alpha: np.ndarray, inside: bool) -> None:
    """Alpha-blend a patch onto ``canvas`` at a random place and label its opaque part."""
    height, width = labels.shape
    ph, pw = alpha.shape
    if inside and ph <= height and pw <= width:
        y0, x0 = int(rng.integers(0, height - ph + 1)), int(rng.integers(0, width - pw + 1))
    else:  # the centre anywhere in the image: large objects may leave it
        y0 = int(rng.integers(0, height)) - ph // 2
        x0 = int(rng.integers(0, width)) - pw // 2
    ys, xs = slice(max(y0, 0), min(y0 + ph, height)), slice(max(x0, 0), min(x0 + pw, width))
    py, px = slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0)
    if ys.start >= ys.stop or xs.start >= xs.stop:
        return
    a = alpha[py, px, None]
    canvas[ys, xs] = a * rgb[py, px] + (1 - a) * canvas[ys, xs]
    labels[ys, xs][alpha[py, px] >= 0.5] = obj_id


def _object_kind(rng: np.random.Generator, lib: PhotoLibrary, kinds: Sequence[str]) -> str:
    allowed = [k for k in kinds if k != "cutout" or lib.object_files]
    probs = np.array([_KIND_PROBS[OBJECT_KINDS.index(k)] for k in allowed])
    return allowed[int(rng.choice(len(allowed), p=probs / probs.sum()))]


def _log_area(rng: np.random.Generator, scale: str, height: int, width: int) -> float:
    low, high = scale_area_bounds(scale, height, width)
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def render_photo_scene(rng: np.random.Generator, lib: PhotoLibrary, height: int, width: int,
                       scales: list[str], target_scale: str | None = None,
                       kinds: Sequence[str] = OBJECT_KINDS) -> tuple[np.ndarray, np.ndarray]:
    """Compose one scene with an object per entry of ``scales`` (see the module docstring).

    In-place regions are labelled first (they keep the background's pixels, so anything pasted
    later covers them); pasted objects follow, mostly largest first so small ones stay visible.
    With ``target_scale``, one extra pasted object is put last, fully inside the image, with id
    ``len(scales) + 1`` (evaluation).

    Returns:
        ``(image, labels)``: uint8 H×W×3 RGB and int32 H×W visible-object ids (0 background).
    """
    bg_index = int(rng.integers(len(lib.scene_files)))
    background = _random_crop(rng, lib.scene(bg_index), height, width)
    canvas = background.astype(np.float32)
    labels = np.zeros((height, width), np.int32)
    areas = [_log_area(rng, s, height, width) for s in scales]
    order = np.argsort(areas)[::-1]
    if rng.random() < 0.3:
        order = rng.permutation(len(scales))
    chosen = [_object_kind(rng, lib, kinds) for _ in scales]
    order = [k for k in order.tolist() if chosen[k] == "inplace"] + \
        [k for k in order.tolist() if chosen[k] != "inplace"]
    for k in order:
        obj_id = k + 1
        if chosen[k] == "inplace":
            labels[merged_region(rng, background, areas[k] / (height * width))] = obj_id
            continue
        rgb, alpha = _make_patch(rng, lib, chosen[k], areas[k], height, width, bg_index)
        _paste(rng, canvas, labels, obj_id, rgb, alpha, inside=False)

    if target_scale is not None:
        area = _log_area(rng, target_scale, height, width)
        kind = _object_kind(rng, lib, [k for k in kinds if k != "inplace"] or ["shape"])
        rgb, alpha = _make_patch(rng, lib, kind, area, height, width, bg_index)
        _paste(rng, canvas, labels, len(scales) + 1, rgb, alpha, inside=True)

    canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * np.float32(rng.uniform(0, 3))
    image = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        image = cv2.GaussianBlur(image, (3, 3), 0)
    return image, labels


def _make_patch(rng: np.random.Generator, lib: PhotoLibrary, kind: str, area: float,
                height: int, width: int, bg_index: int) -> tuple[np.ndarray, np.ndarray]:
    if kind == "cutout":
        rgb, alpha = _cutout_patch(rng, lib, area, height, width)
    elif kind == "region":
        rgb, alpha = _region_patch(rng, lib, area, height, width, bg_index)
    else:
        rgb, alpha = _shape_patch(rng, lib, area, height, width, bg_index)
    return _jitter(rng, rgb), _feather(rng, alpha)
