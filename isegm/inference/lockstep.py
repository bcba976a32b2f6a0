"""Lockstep evaluation: many objects advance through the click protocol together.

The NoC protocol (:func:`~isegm.inference.evaluation.evaluate_sample`, the reference definition)
runs one network forward per click of one object. Here up to ``batch_size`` objects are in
flight; each round, every object in flight prepares its next network pass
(:meth:`~isegm.inference.predictor.NoBRSPredictor.prediction_steps`),
the passes run as one batched forward (:func:`~isegm.inference.batched.forward_batch` through
the predictor's forward runner, so flip TTA and cascade-forward passes are batched too), and
each object takes its logits back. An object that reaches its IoU target or click budget
leaves, and the next object of the dataset takes its slot (continuous batching).

Batching rule: bucketing, no padding. Only passes whose network inputs have the same shape
(and dtype, device, network, click limit) share a forward (:func:`bucket_requests`); a round
with several shapes runs one forward per bucket. The evaluation's ZoomIn crops are square
(``inference_size`` on each side), so in practice every object of a run shares one bucket.
With flip TTA each object contributes 2 rows, so the network sees ``2 * batch_size`` rows.

Results equal ``batch_size=1`` (same clicks, same IoUs): each object keeps its own predictor
(transforms, previous mask, cached embedding; :meth:`NoBRSPredictor.clone`), its own clicker
and seed, and the protocol below mirrors ``evaluate_sample`` step for step. The only
difference is how many rows a forward sees; BLAS kernels may round sums differently for
another row count (~1e-6 relative in float32, ~1e-15 in float64), which a thresholded mask
only shows if a probability sits within that distance of the threshold
(``tests/inference/test_lockstep.py`` checks clicks and IoUs in float64 and NoC tables in
float32). Samples are yielded in dataset order whatever order their objects finish in, so the
per-sample log is written in the same order as a one-at-a-time run.

Per-sample seconds: each forward's time is split evenly over the objects in it, plus each
object's own (clicker, transforms) time and the sample's loading time, so the summed seconds
of a run are close to its wall time and SPC stays seconds per click of throughput.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from typing import Any

import numpy as np
import torch

from isegm.inference.batched import ForwardRequest, ForwardRunner, bucket_requests
from isegm.inference.clicker import Clicker
from isegm.inference.evaluation import (
    Callback,
    SampleResult,
    evaluate_dataset,
    object_seed,
    open_sample,
)
from isegm.inference.metrics import get_iou

__all__ = [
    "evaluate_dataset_batched",
    "object_protocol",
]

logger = logging.getLogger(__name__)

ObjectSteps = Generator[ForwardRequest, torch.Tensor, tuple[list, np.ndarray, np.ndarray]]


# -------------------------------------------------------------------------- one object
def object_protocol(
    image: np.ndarray,
    gt_mask: np.ndarray,
    predictor: Any,
    max_iou_thr: float,
    pred_thr: float = 0.49,
    min_clicks: int = 1,
    max_clicks: int = 20,
    clicker_mode: str = "standard",
    seed: Any = None,
) -> ObjectSteps:
    """:func:`~isegm.inference.evaluation.evaluate_sample` as a generator of network passes.

    Yields the object's :class:`ForwardRequest` of each pass and is sent its logits; returns
    ``(clicks, ious, last_probs)`` as ``evaluate_sample`` does. The steps are those of
    ``evaluate_sample`` (kept separate: that function is the reference this one is tested
    against).
    """
    clicker = Clicker(gt_mask=gt_mask, mode=clicker_mode, seed=seed)
    pred_mask = np.zeros(gt_mask.shape[:2], dtype=bool)
    pred_probs = np.zeros(gt_mask.shape[:2], dtype=np.float32)
    ious: list[float] = []

    predictor.set_input_image(image)
    for click_indx in range(max_clicks):
        if clicker.make_next_click(pred_mask) is None:
            if click_indx == 0:
                logger.warning("no click possible: the object mask is empty")
            break
        pred_probs = yield from predictor.prediction_steps(clicker)
        pred_mask = pred_probs > pred_thr
        iou = get_iou(gt_mask, pred_mask)
        ious.append(iou)
        if iou >= max_iou_thr and click_indx + 1 >= min_clicks:
            break

    return clicker.get_clicks(), np.array(ious, dtype=np.float32), pred_probs


# ---------------------------------------------------------------------------- the driver
@dataclasses.dataclass(eq=False)
class _Sample:
    result: SampleResult
    image: np.ndarray | None
    gt_masks: dict[int, np.ndarray]
    pending: int  # objects not finished yet
    outputs: dict[int, tuple] = dataclasses.field(default_factory=dict)  # obj -> (clicks, ious)
    last: dict[int, tuple] = dataclasses.field(default_factory=dict)  # obj -> callback args


@dataclasses.dataclass(eq=False)
class _InFlight:
    sample: _Sample
    obj: int
    predictor: Any
    steps: ObjectSteps
    request: ForwardRequest | None = None


def evaluate_dataset_batched(
    dataset: Any,
    predictor: Any,
    indices: Iterable[int] | None = None,
    seed: int | None = None,
    batch_size: int = 1,
    callback: Callback | None = None,
    **kwargs: Any,
) -> Iterator[SampleResult]:
    """:func:`~isegm.inference.evaluation.evaluate_dataset` with ``batch_size`` objects in
    lockstep (see the module docstring); the same :class:`SampleResult` per sample, in order.

    ``batch_size == 1``, or a predictor without ``prediction_steps``/``clone`` (the classical
    GrabCut baseline), runs ``evaluate_dataset`` itself.

    Args:
        dataset, indices, seed, **kwargs: as for ``evaluate_dataset`` (``kwargs`` go to the
            protocol: ``max_iou_thr``, ``pred_thr``, ``min_clicks``, ``max_clicks``,
            ``clicker_mode``).
        predictor: a :class:`~isegm.inference.predictor.NoBRSPredictor` (cloned per slot).
        batch_size: objects in flight.
        callback: with ``batch_size > 1`` called once per object, for its last click only
            (``callback(image, gt_mask, last_probs, last_click_indx, clicks)``), objects in
            order, just before their sample is yielded: the per-click maps of objects in
            flight together are not kept.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if batch_size == 1 or not (hasattr(predictor, "prediction_steps")
                               and hasattr(predictor, "clone")):
        if batch_size > 1:
            logger.info("%s evaluates one object at a time (no batched network step)",
                        type(predictor).__name__)
        yield from evaluate_dataset(dataset, predictor, indices=indices, seed=seed,
                                    callback=callback, **kwargs)
        return
    with torch.no_grad():
        yield from _Driver(dataset, predictor, indices, seed, batch_size, callback,
                           kwargs).run()


class _Driver:
    """State of one lockstep run (queues, slots, finished samples waiting for their turn)."""

    def __init__(self, dataset: Any, predictor: Any, indices: Iterable[int] | None,
                 seed: int | None, batch_size: int, callback: Callback | None,
                 protocol_kwargs: dict[str, Any]) -> None:
        self.dataset = dataset
        self.indices = iter(range(len(dataset)) if indices is None else indices)
        self.seed = seed
        self.callback = callback
        self.kwargs = protocol_kwargs
        self.runner: ForwardRunner = predictor.forward_runner
        self.free = [predictor.clone() for _ in range(batch_size)]
        self.flight: list[_InFlight] = []
        self.queue: deque[tuple[_Sample, int]] = deque()  # objects not started
        self.order: deque[_Sample] = deque()  # samples opened, in dataset order

    def run(self) -> Iterator[SampleResult]:
        exhausted = False
        while True:
            while self.free and not exhausted:
                exhausted = not self._start_next()
            yield from self._finished_in_order()
            if not self.flight:
                if exhausted:
                    return
                continue
            self._round()

    def _start_next(self) -> bool:
        """Puts the next object (opening samples as needed) into a free slot; False when the
        dataset has no object left."""
        while not self.queue:
            index = next(self.indices, None)
            if index is None:
                return False
            start = time.perf_counter()
            result, image, objects = open_sample(self.dataset, index)
            sample = _Sample(result, image, dict(objects), pending=len(objects))
            sample.result.elapsed = time.perf_counter() - start
            self.order.append(sample)
            self.queue.extend((sample, j) for j, _ in objects)
        sample, j = self.queue.popleft()
        start = time.perf_counter()
        slot = _InFlight(sample, j, self.free.pop(), steps=None)  # type: ignore[arg-type]
        slot.steps = object_protocol(sample.image, sample.gt_masks[j], slot.predictor,
                                     seed=object_seed(self.seed, sample.result.index, j),
                                     **self.kwargs)
        self._advance(slot, None)
        sample.result.elapsed += time.perf_counter() - start
        return True

    def _advance(self, slot: _InFlight, logits: torch.Tensor | None) -> None:
        """Runs the object's protocol up to its next network pass (or to its end)."""
        try:
            slot.request = next(slot.steps) if logits is None else slot.steps.send(logits)
        except StopIteration as done:
            self._finish(slot, *done.value)
            return
        if slot not in self.flight:
            self.flight.append(slot)

    def _finish(self, slot: _InFlight, clicks: list, ious: np.ndarray,
                probs: np.ndarray) -> None:
        sample = slot.sample
        sample.outputs[slot.obj] = (clicks, ious)
        if self.callback is not None and len(ious):
            sample.last[slot.obj] = (probs, len(ious) - 1, clicks)
        sample.pending -= 1
        if slot in self.flight:
            self.flight.remove(slot)
        slot.request = None
        self.free.append(slot.predictor)

    def _round(self) -> None:
        """One batched forward per bucket of the pending passes; every object moves on."""
        slots = list(self.flight)
        requests = [s.request for s in slots]
        for bucket in bucket_requests(requests):  # type: ignore[arg-type]
            start = time.perf_counter()
            logits = self.runner([requests[i] for i in bucket])  # type: ignore[misc]
            share = (time.perf_counter() - start) / len(bucket)
            for i, out in zip(bucket, logits):
                t0 = time.perf_counter()
                self._advance(slots[i], out)
                slots[i].sample.result.elapsed += share + time.perf_counter() - t0

    def _finished_in_order(self) -> Iterator[SampleResult]:
        while self.order and self.order[0].pending == 0:
            sample = self.order.popleft()
            result = sample.result
            for j in sorted(sample.outputs):
                clicks, ious = sample.outputs[j]
                result.clicks.append(clicks)
                result.ious.append(ious)
                if j in sample.last and self.callback is not None:
                    probs, click_indx, obj_clicks = sample.last[j]
                    self.callback(sample.image, sample.gt_masks[j], probs, click_indx,
                                  obj_clicks)
            yield result
