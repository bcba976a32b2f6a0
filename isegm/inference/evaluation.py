"""Click-simulation evaluation loop (NoC protocol, SPEC Part II §3.2).

``evaluate_sample`` runs the standard protocol on one object; ``evaluate_dataset`` runs it on
every object of every sample and yields per-sample results, so a caller can save them as they
come and resume an interrupted run.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any, Callable, Protocol

import numpy as np
import torch

from isegm.inference.clicker import Click, Clicker
from isegm.inference.metrics import get_iou

__all__ = [
    "Predictor",
    "SampleResult",
    "evaluate_dataset",
    "evaluate_sample",
    "object_seed",
    "open_sample",
]

logger = logging.getLogger(__name__)


class Predictor(Protocol):
    """What the evaluation needs from a predictor."""

    def set_input_image(self, image: np.ndarray) -> None: ...

    def get_prediction(self, clicker: Clicker) -> np.ndarray: ...


Callback = Callable[[np.ndarray, np.ndarray, np.ndarray, int, list], None]


def evaluate_sample(
    image: np.ndarray,
    gt_mask: np.ndarray,
    predictor: Predictor,
    max_iou_thr: float,
    pred_thr: float = 0.49,
    min_clicks: int = 1,
    max_clicks: int = 20,
    clicker_mode: str = "standard",
    seed: Any = None,
    callback: Callback | None = None,
) -> tuple[list[Click], np.ndarray, np.ndarray]:
    """Simulates clicks on one object until the IoU target or the click budget is reached.

    Per click: next click from the current thresholded prediction (initially empty), new
    probability map, threshold ``> pred_thr``, IoU (ignore region excluded); stop once
    ``IoU >= max_iou_thr`` after at least ``min_clicks`` clicks. It also stops when no error
    pixel is left to click (the reference would click (0, 0) instead).

    Args:
        image: [H, W, 3] uint8 RGB.
        gt_mask: [H, W] int, 1 object, 0 background, -1 ignore.
        predictor: any object with ``set_input_image`` and ``get_prediction(clicker)``
            returning [H, W] probabilities.
        max_iou_thr: IoU target.
        pred_thr: probability threshold.
        min_clicks: minimum number of clicks before stopping at the target.
        max_clicks: click budget.
        clicker_mode: 'standard' or 'random-top50' (see ``isegm.inference.clicker``).
        seed: seed for 'random-top50'.
        callback: called after each click as
            ``callback(image, gt_mask, pred_probs, click_indx, clicks)``.

    Returns:
        (clicks, ious, last_probs): the clicks made, [n_clicks] float32 IoU after each click,
        and the last [H, W] probability map (zeros if no click was made).
    """
    clicker = Clicker(gt_mask=gt_mask, mode=clicker_mode, seed=seed)
    pred_mask = np.zeros(gt_mask.shape[:2], dtype=bool)
    pred_probs = np.zeros(gt_mask.shape[:2], dtype=np.float32)
    ious: list[float] = []

    with torch.no_grad():
        predictor.set_input_image(image)
        for click_indx in range(max_clicks):
            if clicker.make_next_click(pred_mask) is None:
                if click_indx == 0:
                    logger.warning("no click possible: the object mask is empty")
                break
            pred_probs = predictor.get_prediction(clicker)
            pred_mask = pred_probs > pred_thr
            if callback is not None:
                callback(image, gt_mask, pred_probs, click_indx, clicker.get_clicks())
            iou = get_iou(gt_mask, pred_mask)
            ious.append(iou)
            if iou >= max_iou_thr and click_indx + 1 >= min_clicks:
                break

    return clicker.get_clicks(), np.array(ious, dtype=np.float32), pred_probs


@dataclasses.dataclass
class SampleResult:
    """Evaluation of every object of one dataset sample.

    Attributes:
        index: position in the dataset.
        sample_id: the sample's own id (``sample.sample_id``), if any.
        ious: per object, [n_clicks] float32 IoU after each click.
        clicks: per object, the clicks made.
        elapsed: seconds for this sample, data loading included (as the reference's SPC).
        error: message if the sample could not be loaded (then ``ious`` is empty).
        empty: indices of objects whose mask has no object pixel: not evaluated (no entry in
            ``ious``), reported by name and left out of every average.
    """

    index: int
    sample_id: Any = None
    ious: list[np.ndarray] = dataclasses.field(default_factory=list)
    clicks: list[list[Click]] = dataclasses.field(default_factory=list)
    elapsed: float = 0.0
    error: str | None = None
    empty: list[int] = dataclasses.field(default_factory=list)

    @property
    def num_clicks(self) -> int:
        return sum(len(x) for x in self.ious)


def _sample_name(dataset: Any, index: int) -> str:
    """Best-effort file name of a sample, for error messages."""
    names = getattr(dataset, "dataset_samples", None)
    try:
        if names is not None:
            return str(names[index])
    except Exception:  # noqa: BLE001 - only used to label a log line
        pass
    return f"#{index}"


def evaluate_dataset(
    dataset: Any,
    predictor: Predictor,
    indices: Iterable[int] | None = None,
    seed: int | None = None,
    **kwargs: Any,
) -> Iterator[SampleResult]:
    """Evaluates every object of every sample, one :class:`SampleResult` per sample.

    A sample whose loading fails (``get_sample`` or ``gt_mask`` raising) is logged with its file
    name and yielded with ``error`` set; evaluation continues with the next sample. Predictor
    errors are not caught.

    Args:
        dataset: has ``len()`` and ``get_sample(i)`` returning an object with ``.image``,
            ``.objects_ids``, ``.gt_mask(obj_index)`` (positional index into ``objects_ids``)
            and optionally ``.sample_id``.
        predictor: see :func:`evaluate_sample`.
        indices: sample indices to evaluate (default all), e.g. the ones a resumed run lacks.
        seed: base seed for 'random-top50'; object ``j`` of sample ``i`` gets
            ``SeedSequence([seed, i, j])``, so results do not depend on the evaluation order.
        **kwargs: passed to :func:`evaluate_sample` (``max_iou_thr`` is required).

    Yields:
        One :class:`SampleResult` per sample, in order.
    """
    if indices is None:
        indices = range(len(dataset))
    for index in indices:
        start = time.perf_counter()
        result, image, objects = open_sample(dataset, index)
        for j, gt_mask in objects:
            clicks, ious, _ = evaluate_sample(image, gt_mask, predictor,
                                              seed=object_seed(seed, index, j), **kwargs)
            result.ious.append(ious)
            result.clicks.append(clicks)
        result.elapsed = time.perf_counter() - start
        yield result


def object_seed(seed: int | None, index: int, obj: int) -> np.random.SeedSequence | None:
    """Seed of object ``obj`` of sample ``index`` for 'random-top50' (order-independent)."""
    return None if seed is None else np.random.SeedSequence([seed, index, obj])


def open_sample(
    dataset: Any, index: int
) -> tuple[SampleResult, np.ndarray | None, list[tuple[int, np.ndarray]]]:
    """Loads sample ``index`` for evaluation (shared by every evaluation driver).

    Returns:
        (result, image, objects): the sample's :class:`SampleResult` to fill (``error`` set if
        loading failed, then ``image`` is None and there are no objects; objects with an empty
        mask are listed in ``result.empty`` and logged), the [H, W, 3] image and
        ``(object index, gt mask)`` of each object to evaluate, in order.
    """
    try:
        sample = dataset.get_sample(index)
        gt_masks = [sample.gt_mask(j) for j in range(len(sample.objects_ids))]
    except Exception as exc:  # noqa: BLE001 - a broken sample must not stop the run
        name = _sample_name(dataset, index)
        logger.error("skipping sample %s (%s): %s: %s", index, name,
                     type(exc).__name__, exc)
        return SampleResult(index=index, error=f"{name}: {type(exc).__name__}: {exc}"), None, []

    result = SampleResult(index=index, sample_id=getattr(sample, "sample_id", None))
    objects = []
    for j, gt_mask in enumerate(gt_masks):
        if not (gt_mask == 1).any():  # nothing to segment: not a failure at NoC = max
            logger.warning("sample %s (%s): object %d has an empty mask; left out of the "
                           "averages", index, _sample_name(dataset, index), j)
            result.empty.append(j)
        else:
            objects.append((j, gt_mask))
    return result, sample.image, objects
