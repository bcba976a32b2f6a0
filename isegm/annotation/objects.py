"""Several objects in one image: finishing an object, undo, the label map (no widget).

The Tk demo (:mod:`isegm.demo`) and the annotation server (:mod:`isegm.serve`) both drive an
:class:`InteractiveController`: the demo from its worker thread, turning user gestures into
controller calls and drawing :class:`ControllerView` snapshots; the server from its request
handlers, one controller per session. Every rule here is unit-tested without a display.

Rules (SPEC Part II §5, minus the bugs of §8.19):

* clicks of the current object go to :meth:`Predictor.predict`, which replays/caches the session,
  so undo is a cached lookup and gives exactly the state before the click;
* finishing an object stores ``prob > threshold`` as label ``object_count + 1`` (later objects
  paint over earlier ones) and starts a new object; an empty object is dropped;
* a saved mask holds object k as value k (uint8, uint16 beyond 255 objects), never rescaled;
* a loaded binary mask becomes the previous mask of the current object's first click; a loaded
  label map with several values restores the finished objects and reopens the last one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from isegm.annotation.clicks import ClickTuple, check_clicks
from isegm.annotation.errors import InputError
from isegm.annotation.io import write_png
from isegm.annotation.session import Predictor

__all__ = ["ControllerView", "InteractiveController", "label_map_dtype"]

logger = logging.getLogger(__name__)


def label_map_dtype(num_objects: int) -> type:
    """uint8 while the labels fit, uint16 beyond 255 objects."""
    if num_objects > np.iinfo(np.uint16).max:
        raise ValueError(f"{num_objects} objects do not fit a 16-bit label map")
    return np.uint8 if num_objects <= 255 else np.uint16


@dataclass(frozen=True)
class ControllerView:
    """What the window needs to draw, detached from the controller (safe to hand to the UI
    thread: the controller never modifies these arrays in place).

    Attributes:
        image: HxWx3 uint8 RGB, or None before an image is loaded.
        finished: HxW uint16 labels of the finished objects (0 background).
        current_prob: HxW float32 probability of the object in progress, or None.
        clicks: (x, y, is_positive) of the object in progress.
        object_count: number of finished objects.
        threshold: mask threshold in use.
        last_click_seconds: model time of the last computed click, or None.
        image_name: name given with the image (for titles).
    """

    image: np.ndarray | None = None
    finished: np.ndarray | None = None
    current_prob: np.ndarray | None = None
    clicks: tuple[ClickTuple, ...] = ()
    object_count: int = 0
    threshold: float = 0.5
    last_click_seconds: float | None = None
    image_name: str = ""

    @property
    def current_mask(self) -> np.ndarray | None:
        return None if self.current_prob is None else self.current_prob > self.threshold


class InteractiveController:
    """Interactive segmentation of several objects in one image.

    Args:
        predictor: the model wrapper; the controller sets its image and threshold.
        threshold: initial mask threshold.

    Not thread-safe: the app calls it from its worker thread only.
    """

    def __init__(self, predictor: Predictor, threshold: float = 0.5) -> None:
        self.predictor = predictor
        self.threshold = float(threshold)
        self.image: np.ndarray | None = None
        self.image_name = ""
        self._finished: np.ndarray | None = None  # uint16 labels, replaced, never edited
        self.object_count = 0
        self.clicks: list[ClickTuple] = []
        self._init_mask: np.ndarray | None = None  # loaded mask of the current object
        self._prob: np.ndarray | None = None
        self.last_click_seconds: float | None = None

    # -- image ---------------------------------------------------------------------------
    def set_image(self, image: np.ndarray, name: str = "") -> None:
        """Starts over on a new image (finished objects are dropped)."""
        self.predictor.set_image(image)
        self.image = np.ascontiguousarray(image)
        self.image_name = name
        self._finished = np.zeros(image.shape[:2], dtype=np.uint16)
        self.object_count = 0
        self._start_object()

    def _require_image(self) -> tuple[int, int]:
        if self.image is None:
            raise InputError("load an image first")
        return self.image.shape[0], self.image.shape[1]

    def _start_object(self) -> None:
        self.clicks = []
        self._init_mask = None
        self._prob = None

    # -- clicks ----------------------------------------------------------------------------
    def add_click(self, x: float, y: float, is_positive: bool) -> np.ndarray:
        """Adds a click of the current object (image pixels) and returns its probability map.

        Raises:
            InputError: no image, or the click is outside it.
        """
        size = self._require_image()
        (click,) = check_clicks([(x, y, is_positive)], size)
        self.clicks.append(click)
        try:
            self._predict()
        except Exception:
            self.clicks.pop()
            raise
        assert self._prob is not None
        return self._prob

    def undo_click(self) -> bool:
        """Removes the last click (its prediction state comes from the predictor's cache)."""
        if not self.clicks:
            return False
        self.clicks.pop()
        self._predict()
        return True

    def reset_clicks(self) -> None:
        """Drops the object in progress (its clicks and any loaded mask)."""
        self._require_image()
        self._start_object()

    def _predict(self) -> None:
        if not self.clicks:
            self._prob = None if self._init_mask is None else self._init_mask.astype(np.float32)
            return
        _, prob = self.predictor.predict(self.clicks, self._init_mask)
        self._prob = prob
        if self.predictor.last_computed_clicks:
            self.last_click_seconds = (
                self.predictor.last_predict_seconds / self.predictor.last_computed_clicks
            )

    # -- objects ---------------------------------------------------------------------------
    @property
    def current_prob(self) -> np.ndarray | None:
        return self._prob

    @property
    def current_mask(self) -> np.ndarray | None:
        return None if self._prob is None else self._prob > self.threshold

    def set_threshold(self, threshold: float) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        self.threshold = float(threshold)
        self.predictor.threshold = self.threshold

    def set_zoom_in(self, enabled: bool) -> None:
        """Switches zoom-in; the object in progress is predicted again with the new setting."""
        self.predictor.set_zoom_in(enabled)
        if self.image is not None and self.clicks:
            self._predict()

    def set_refine(self, refine: str) -> None:
        """Switches the graph-cut refinement; the object in progress is shown refined (or not)
        at once (raises ``InputError`` for an unknown mode)."""
        self.predictor.set_refine(refine)
        if self.image is not None and self.clicks:
            self._predict()

    def finish_object(self) -> bool:
        """Keeps the current mask as the next object label and starts a new object.

        Returns:
            True if an object was added (False: nothing in progress, or an empty mask, which is
            dropped).
        """
        mask = self.current_mask
        if mask is None:
            return False
        if not mask.any():
            self._start_object()
            return False
        assert self._finished is not None
        finished = self._finished.copy()
        finished[mask] = self.object_count + 1
        self._finished = finished
        self.object_count += 1
        self._start_object()
        return True

    def result_mask(self) -> np.ndarray:
        """HxW uint16 labels: finished objects 1..k and the object in progress as k + 1."""
        self._require_image()
        assert self._finished is not None
        result = self._finished.copy()
        mask = self.current_mask
        if mask is not None:
            result[mask] = self.object_count + 1
        return result

    def label_map(self) -> np.ndarray:
        """:meth:`result_mask` in the smallest dtype that holds its labels (what is saved)."""
        result = self.result_mask()
        return result.astype(label_map_dtype(int(result.max())))

    def save_mask(self, path: str | Path) -> Path:
        """Writes :meth:`label_map` as PNG (object k has value k) atomically.

        Raises:
            InputError: no image, not a .png name, or the file cannot be written.
        """
        labels = self.label_map()
        path = Path(path)
        if path.suffix.lower() != ".png":
            raise InputError(f"{path}: masks are saved as PNG, use a .png file name")
        tmp = path.with_name(f".{path.stem}.tmp.png")
        write_png(tmp, labels)
        tmp.replace(path)
        logger.info("saved %d object(s) to %s", int(labels.max()), path)
        return path

    def load_mask(self, mask: np.ndarray) -> None:
        """Loads a mask to correct.

        A mask with one non-zero value becomes the previous mask of the current object's first
        click (finished objects are kept). A label map with several values (e.g. one saved by
        :meth:`save_mask`) replaces the finished objects by all its labels but the largest,
        renumbered 1..n-1 in order, and reopens the largest as the object in progress.

        Raises:
            InputError: no image, a size mismatch, no non-zero pixel, or a model without a
                previous-mask input.
        """
        h, w = self._require_image()
        if not getattr(self.predictor.model, "with_prev_mask", False):
            raise InputError("this model takes no previous mask, so a mask cannot be corrected")
        mask = np.asarray(mask)
        if mask.ndim != 2 or mask.shape != (h, w):
            raise InputError(f"the mask has shape {mask.shape}, the image is {h}x{w} (HxW)")
        values = np.unique(mask[mask != 0])
        if values.size == 0:
            raise InputError("the mask has no object pixels")
        self._start_object()
        if values.size > 1:
            finished = np.zeros((h, w), dtype=np.uint16)
            for label, value in enumerate(values[:-1], 1):
                finished[mask == value] = label
            self._finished = finished
            self.object_count = int(values.size - 1)
        self._init_mask = mask == values[-1]
        self._predict()

    @property
    def has_loaded_mask(self) -> bool:
        return self._init_mask is not None

    # -- view --------------------------------------------------------------------------------
    def view(self) -> ControllerView:
        """A snapshot for drawing."""
        return ControllerView(
            image=self.image,
            finished=self._finished,
            current_prob=self._prob,
            clicks=tuple(self.clicks),
            object_count=self.object_count,
            threshold=self.threshold,
            last_click_seconds=self.last_click_seconds,
            image_name=self.image_name,
        )
