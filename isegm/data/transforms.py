"""Training augmentations (albumentations 2.x) and their seeding.

SPEC Part I §5: ``UniformRandomResize → HorizontalFlip → PadIfNeeded(border_mode=0) →
RandomCrop → RandomBrightnessContrast → RGBShift`` for training, ``PadIfNeeded → RandomCrop``
for validation.

Unlike the reference ``UniformRandomResize`` (SPEC Part I §8.18), masks are resized with nearest
neighbour: they hold object ids, and bilinear interpolation followed by a cast invents ids along
object borders.
"""
from __future__ import annotations

import random
from typing import Any, Union

import albumentations as A
import cv2
import numpy as np
from albumentations.core.composition import BaseCompose
from albumentations.core.transforms_interface import BasicTransform

from .masks import resize_nearest

__all__ = ["UniformRandomResize", "train_augmentator", "val_augmentator", "seed_transform"]

CropSize = Union[int, tuple[int, int]]


class UniformRandomResize(A.DualTransform):
    """Rescale by one factor drawn uniformly from ``scale_range`` (aspect ratio kept).

    The image is resized bilinearly (OpenCV rounds uint8 results); masks with nearest neighbour
    on the same pixel-centre grid, so ids stay ids.

    Args:
        scale_range: ``(low, high)`` scale factors.
        p: probability of applying the transform.
        mask_mode: ``'nearest'`` (above), or ``'bilinear-trunc'``: the original MST code's
            bilinear resize of the mask followed by truncation to its integer type (it erodes
            objects by up to a pixel and mixes ids along their borders; SPEC §8.18).
    """

    def __init__(self, scale_range: tuple[float, float] = (0.9, 1.1), p: float = 1.0,
                 mask_mode: str = "nearest") -> None:
        super().__init__(p=p)
        low, high = (float(x) for x in scale_range)
        if not 0 < low <= high:
            raise ValueError(f"scale_range must satisfy 0 < low <= high, got {scale_range}")
        if mask_mode not in ("nearest", "bilinear-trunc"):
            raise ValueError(f"mask_mode must be nearest or bilinear-trunc, got {mask_mode!r}")
        self.scale_range = (low, high)
        self.mask_mode = mask_mode

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]
                                     ) -> dict[str, Any]:
        height, width = params["shape"][:2]
        scale = self.py_random.uniform(*self.scale_range)
        return {"new_height": max(1, int(round(height * scale))),
                "new_width": max(1, int(round(width * scale)))}

    def apply(self, img: np.ndarray, new_height: int = 0, new_width: int = 0, **params: Any
              ) -> np.ndarray:
        return cv2.resize(img, (new_width, new_height), interpolation=cv2.INTER_LINEAR)

    def apply_to_mask(self, mask: np.ndarray, new_height: int = 0, new_width: int = 0,
                      **params: Any) -> np.ndarray:
        if self.mask_mode == "bilinear-trunc":
            resized = cv2.resize(mask.astype(np.float32), (new_width, new_height),
                                 interpolation=cv2.INTER_LINEAR)
            return resized.astype(mask.dtype)  # truncation toward zero, as the original
        return resize_nearest(mask, new_height, new_width)

    def apply_to_bboxes(self, bboxes: np.ndarray, **params: Any) -> np.ndarray:
        # albumentations keeps boxes normalised to [0, 1]: a uniform rescale leaves them as is.
        return bboxes

    def apply_to_keypoints(self, keypoints: np.ndarray, new_height: int = 0, new_width: int = 0,
                           **params: Any) -> np.ndarray:
        height, width = params["shape"][:2]
        out = np.array(keypoints, dtype=np.float64, copy=True)
        if out.size:
            out[:, 0] *= new_width / width
            out[:, 1] *= new_height / height
        return out

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("scale_range",)


def _crop_hw(crop_size: CropSize) -> tuple[int, int]:
    if isinstance(crop_size, int):
        return crop_size, crop_size
    height, width = crop_size
    return int(height), int(width)


def train_augmentator(
    crop_size: CropSize,
    scale_range: tuple[float, float] = (0.75, 1.40),
    brightness: tuple[float, float] = (-0.25, 0.25),
    contrast: tuple[float, float] = (-0.15, 0.4),
    rgb_shift: float = 10,
    color_prob: float = 0.75,
    mask_resize: str = "nearest",
) -> A.Compose:
    """The training pipeline of SPEC Part I §5.

    Defaults are the 224/SimpleClick values; the MST 448 scripts use ``scale_range=(0.5, 1.5)``,
    ``brightness=(-0.3, 0.3)``, ``contrast=(-0.2, 0.5)``, ``rgb_shift=20``.

    Args:
        crop_size: output size, ``int`` or ``(height, width)``.
        scale_range: ``UniformRandomResize`` factors.
        brightness: ``RandomBrightnessContrast`` brightness limits.
        contrast: ``RandomBrightnessContrast`` contrast limits.
        rgb_shift: ``RGBShift`` limit for each channel (symmetric).
        color_prob: probability of each of the two colour transforms.
        mask_resize: ``UniformRandomResize``'s ``mask_mode``.
    """
    height, width = _crop_hw(crop_size)
    shift = (-float(rgb_shift), float(rgb_shift))
    return A.Compose([
        UniformRandomResize(scale_range=scale_range, mask_mode=mask_resize),
        A.HorizontalFlip(p=0.5),
        A.PadIfNeeded(min_height=height, min_width=width, border_mode=cv2.BORDER_CONSTANT,
                      fill=0, fill_mask=0),
        A.RandomCrop(height=height, width=width),
        A.RandomBrightnessContrast(brightness_limit=brightness, contrast_limit=contrast,
                                   p=color_prob),
        A.RGBShift(r_shift_limit=shift, g_shift_limit=shift, b_shift_limit=shift, p=color_prob),
    ], p=1.0)


def val_augmentator(crop_size: CropSize) -> A.Compose:
    """Pad to at least ``crop_size`` and take a random crop of that size (SPEC Part I §5)."""
    height, width = _crop_hw(crop_size)
    return A.Compose([
        A.PadIfNeeded(min_height=height, min_width=width, border_mode=cv2.BORDER_CONSTANT,
                      fill=0, fill_mask=0),
        A.RandomCrop(height=height, width=width),
    ], p=1.0)


def _walk(transform: Any) -> list[Any]:
    """Every albumentations node of a pipeline, parents before children."""
    nodes = [transform]
    if isinstance(transform, BaseCompose):
        for child in transform.transforms:
            nodes.extend(_walk(child))
    return nodes


def seed_transform(transform: Any, seed: int) -> bool:
    """Give every node of an albumentations pipeline its own RNG derived from ``seed``.

    ``Compose.set_random_seed`` hands the *same* seed to every child, which correlates e.g. the
    flip decision with the colour-jitter decision; here each node gets an independent stream.
    Returns False (and does nothing) for a transform that is not albumentations.
    """
    nodes = [n for n in _walk(transform) if isinstance(n, (BaseCompose, BasicTransform))]
    if not nodes:
        return False
    seeds = np.random.SeedSequence(int(seed)).generate_state(len(nodes))
    for node, node_seed in zip(nodes, seeds.tolist()):
        # Set the node's own generators only (``BaseCompose.set_random_seed`` would recurse).
        node.seed = node_seed
        node.random_generator = np.random.default_rng(node_seed)
        node.py_random = random.Random(node_seed)
    return True
