"""Classical GrabCut (Rother et al. 2004, OpenCV) driven by clicks: the baseline of the tables.

A learned interactive segmenter should beat a colour-model graph cut given the same clicks;
this predictor lets ``evaluate_model.py --checkpoint grabcut`` measure that under the same
protocol. The rule that turns clicks into GrabCut's trimap is fixed (chosen before any GrabCut
benchmark number was seen, never tuned on it):

* the image is processed at a longest side of :data:`WORK_SIDE` = 400 px (downscaled with
  area averaging; smaller images as they are) and the result is upsampled bilinearly;
* each positive click is a disk of radius :data:`CLICK_RADIUS` = 5 px of definite foreground,
  each negative click a disk of definite background (the later click wins where disks overlap);
* every other pixel is *probable* foreground or background. Probable foreground is the
  previous result (of this image), or while there is none the pixels within
  :data:`PRIOR_RADIUS` = 0.25 x the longest side of a positive click; in both cases only the
  pixels nearer to a positive than to any negative click (so a negative click also moves the
  colours around it into the background model, not just its disk);
* if that leaves no background sample (GrabCut needs both colour models), a 4 px frame at the
  image border becomes probable background;
* ``cv2.grabCut`` runs :data:`ITERATIONS` = 5 iterations from that mask, with OpenCV's RNG
  seeded (its GMM initialisation uses k-means), so results are deterministic.

Output: an H×W float32 map in [0, 1] (the upsampled hard result; the click disks are forced to
their label at full resolution), thresholded by the evaluation like any probability map.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any

import cv2
import numpy as np

from isegm.inference.clicker import Click
from isegm.inference.graph_cut import click_distances

__all__ = ["GrabCutPredictor", "GRABCUT_CHECKPOINT", "as_uint8_rgb", "force_clicks",
           "is_grabcut", "grabcut_fingerprint",
           "WORK_SIDE",
           "CLICK_RADIUS", "PRIOR_RADIUS", "ITERATIONS"]

logger = logging.getLogger(__name__)

#: ``--checkpoint`` name that selects this predictor in ``evaluate_model.py``.
GRABCUT_CHECKPOINT = "grabcut"
WORK_SIDE = 400
CLICK_RADIUS = 5
PRIOR_RADIUS = 0.25
ITERATIONS = 5
_FRAME = 4
_RNG_SEED = 0


def as_uint8_rgb(image: Any) -> np.ndarray:
    """An H×W×3 uint8 RGB array from what predictors accept: that array, or a [3, H, W] /
    [1, 3, H, W] tensor in [0, 1] (as :class:`NoBRSPredictor` takes)."""
    if hasattr(image, "detach"):
        array = image.detach().cpu().float().numpy()
        array = array[0] if array.ndim == 4 else array
        return np.clip(array.transpose(1, 2, 0) * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(image)


def force_clicks(probs: np.ndarray, clicks: list[Click], radius: int) -> None:
    """Click disks keep their label in a full-resolution map (later clicks win), in place."""
    for click in clicks:
        cv2.circle(probs, (int(click.coords[1]), int(click.coords[0])), radius,
                   1.0 if click.is_positive else 0.0, -1)


def is_grabcut(name: Any) -> bool:
    """Whether a ``--checkpoint`` entry (str or Path) names the GrabCut baseline."""
    return str(name).strip().lower() == GRABCUT_CHECKPOINT


def grabcut_fingerprint() -> str:
    """Stands for a checkpoint fingerprint in evaluation run keys: changes with the rule."""
    rule = f"grabcut-v1:{WORK_SIDE}:{CLICK_RADIUS}:{PRIOR_RADIUS}:{ITERATIONS}:{_FRAME}"
    return hashlib.sha256(rule.encode()).hexdigest()[:16]


class GrabCutPredictor:
    """Click-driven OpenCV GrabCut with the ``set_input_image`` / ``get_prediction`` interface
    of :class:`isegm.inference.predictor.NoBRSPredictor` (see the module docstring for the
    rule).

    Args:
        work_side: longest side GrabCut runs at.
        iterations: ``cv2.grabCut`` iterations per click.
        click_radius: radius (px at ``work_side``) of the definite fg/bg disk of a click.
        prior_radius: first-click probable-foreground radius, as a fraction of the longest side.
    """

    def __init__(self, work_side: int = WORK_SIDE, iterations: int = ITERATIONS,
                 click_radius: int = CLICK_RADIUS, prior_radius: float = PRIOR_RADIUS) -> None:
        if work_side < 16 or iterations < 1 or click_radius < 1 or not 0 < prior_radius <= 2:
            raise ValueError(f"bad GrabCut parameters: work_side={work_side}, "
                             f"iterations={iterations}, click_radius={click_radius}, "
                             f"prior_radius={prior_radius}")
        self.work_side, self.iterations = int(work_side), int(iterations)
        self.click_radius, self.prior_radius = int(click_radius), float(prior_radius)
        self._image: np.ndarray | None = None
        self._small: np.ndarray | None = None
        self._prev: np.ndarray | None = None

    # ---------------------------------------------------------------- predictor interface
    def set_input_image(self, image: Any) -> None:
        """Set the H×W×3 uint8 RGB image (numpy, or a [3,H,W] / [1,3,H,W] tensor in [0, 1])."""
        image = as_uint8_rgb(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or \
                min(image.shape[:2]) < 2:
            raise ValueError(f"GrabCut needs an H×W×3 uint8 RGB image, got shape "
                             f"{image.shape} dtype {image.dtype}")
        self._image = image
        scale = min(1.0, self.work_side / max(image.shape[:2]))
        if scale < 1:
            size = (max(2, round(image.shape[1] * scale)), max(2, round(image.shape[0] * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        else:
            small = image
        self._small = np.ascontiguousarray(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        self._prev = None

    def get_prediction(self, clicker: Any, prev_mask: Any = None) -> np.ndarray:
        """H×W float32 map in [0, 1] for the clicks of ``clicker`` (``prev_mask`` is ignored:
        the previous result of this image is kept internally)."""
        if self._image is None or self._small is None:
            raise RuntimeError("GrabCutPredictor: call set_input_image before get_prediction")
        clicks: list[Click] = list(clicker.get_clicks())
        height, width = self._image.shape[:2]
        for click in clicks:
            y, x = click.coords[0], click.coords[1]
            if not (0 <= y < height and 0 <= x < width):
                raise ValueError(f"click ({y}, {x}) is outside the {height}x{width} image")
        if not any(c.is_positive for c in clicks):
            result = np.zeros(self._small.shape[:2], bool)  # nothing to segment yet
        else:
            result = self._grabcut(self._trimap(clicks))
        self._prev = result
        probs = cv2.resize(result.astype(np.float32), (width, height),
                           interpolation=cv2.INTER_LINEAR)
        force_clicks(probs, clicks, max(1, round(self.click_radius * width / result.shape[1])))
        return probs

    # ---------------------------------------------------------------- the rule
    def _disks(self, clicks: list[Click], shape: tuple[int, int], scale: float) -> np.ndarray:
        """Click index + 1 of the last click whose disk covers each pixel (0: none)."""
        owner = np.zeros(shape, np.int32)
        for k, click in enumerate(clicks):
            centre = (int(click.coords[1] * scale), int(click.coords[0] * scale))
            cv2.circle(owner, centre, self.click_radius, k + 1, -1)
        return owner

    def _trimap(self, clicks: list[Click]) -> np.ndarray:
        small_h, small_w = self._small.shape[:2]
        scale = small_w / self._image.shape[1]
        to_pos, to_neg = click_distances(
            [(c.coords[0] * scale, c.coords[1] * scale, c.is_positive) for c in clicks],
            (small_h, small_w))
        if self._prev is not None and self._prev.any():
            probable_fg = self._prev & (to_pos < to_neg)
        else:
            probable_fg = (to_pos <= self.prior_radius * max(small_h, small_w)) & \
                (to_pos < to_neg)
        trimap = np.where(probable_fg, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
        owner = self._disks(clicks, (small_h, small_w), scale)
        for k, click in enumerate(clicks):
            trimap[owner == k + 1] = cv2.GC_FGD if click.is_positive else cv2.GC_BGD
        background = (trimap == cv2.GC_BGD) | (trimap == cv2.GC_PR_BGD)
        if not background.any():
            frame = np.ones_like(background)
            frame[_FRAME:-_FRAME, _FRAME:-_FRAME] = False
            trimap[frame & (trimap == cv2.GC_PR_FGD)] = cv2.GC_PR_BGD
        return trimap

    def _grabcut(self, trimap: np.ndarray) -> np.ndarray:
        mask = trimap.copy()
        has_bg = np.isin(mask, (cv2.GC_BGD, cv2.GC_PR_BGD)).any()
        has_fg = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).any()
        if has_bg and has_fg:
            bgd_model = np.zeros((1, 65), np.float64)
            fgd_model = np.zeros((1, 65), np.float64)
            cv2.setRNGSeed(_RNG_SEED)
            cv2.grabCut(self._small, mask, None, bgd_model, fgd_model, self.iterations,
                        cv2.GC_INIT_WITH_MASK)
        return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)

    def get_states(self) -> dict[str, Any]:
        """The previous result (for undo, like :class:`NoBRSPredictor`)."""
        return {"prev": None if self._prev is None else self._prev.copy()}

    def set_states(self, states: dict[str, Any]) -> None:
        prev = states.get("prev")
        self._prev = None if prev is None else np.asarray(prev, bool).copy()
