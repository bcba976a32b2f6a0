"""The annotation session: one image, its clicks, the previous mask and the undo history.

::

    from isegm.annotation import Predictor     # also: from isegm.predict import Predictor
    predictor = Predictor("weights/mst_tiny_photos_bigobjects.pth", device="cpu")
    predictor.set_image(rgb)                                  # HxWx3 uint8, once per image
    mask, prob = predictor.predict([(120, 80, True)])         # (x, y, is_positive) in pixels
    mask, prob = predictor.predict([(120, 80, True), (200, 40, False)])

Unlike SAM, a click model here is *iterative*: each prediction is fed the previous one as its
previous mask (SPEC Part II §4). :meth:`Predictor.predict` therefore returns exactly what an
interactive session that added the given clicks one by one would show: a call that extends the
previous call's clicks only runs the new clicks, and a call that shares a shorter prefix with it
(an undo) restores the cached state after that prefix and replays the rest. The result of a
click list never depends on the calls made before it. ``python -m isegm.predict``, the Tk demo
and the annotation server all compute their masks with this class.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from isegm.annotation.clicks import ClickTuple, check_clicks
from isegm.annotation.defaults import CheckpointLike, resolve_refine
from isegm.annotation.errors import InputError
from isegm.annotation.history import (
    NetworkOutput,
    Snapshot,
    Step,
    snapshots_nbytes,
    strip_full_size,
)
from isegm.annotation.runtime import load_model, prepare_model
from isegm.inference.batched import ForwardRunner
from isegm.inference.clicker import Click, Clicker
from isegm.inference.predictor import NoBRSPredictor
from isegm.inference.refine import REFINE_CHOICES, make_refiner
from isegm.inference.transforms import SigmoidForPred, ZoomIn

__all__ = ["Predictor"]

logger = logging.getLogger(__name__)


class Predictor:
    """Image in once, then masks for any number of click lists (SAM-style).

    Args:
        checkpoint: checkpoint path, an already built model (``net(image, points)``, see
            :class:`~isegm.inference.predictor.NoBRSPredictor`), or None for the built-in
            default ``weights/mst_tiny_photos_bigobjects.pth``.
        device: 'cpu', 'cuda:0', ... (a model given as a module is moved there).
        limit_longest_size: images with a longer side are downscaled to it for the network
            (None or 0: never).
        zoom_in: run the network on a crop around the object after the first click.
        target_size: side of the (square) zoom-in crop; default the model's ``cfg.img_size``.
        with_flip: average with the horizontally flipped input.
        threshold: probability above which a pixel is in the mask.
        forward_runner: runs the network step (see :mod:`isegm.inference.batched`); the
            annotation server passes its batching worker, so all sessions share one model.

        history_limit: clicks whose state is kept for instant undo; undoing further back
            replays the clicks from the start (same result, more time).
        refine: graph-cut refinement of the network's maps (:mod:`isegm.inference.refine`):
            ``'grabcut'``, ``'none'``, or ``'auto'`` (default): on for the built-in default
            checkpoint, whose maps alone are coarse on photographs, off for any other.
        precision, backend: how the network runs (``--precision fp32|bf16|fp16|int8``,
            ``--backend torch|onnxruntime``; :mod:`isegm.inference.backends`).

    Raises:
        CheckpointError: the checkpoint is missing or unreadable.
        InputError: a precision or backend this device or processor does not offer.

    Memory: besides the image (uint8, and float32 inside the network wrapper) and one
    full-resolution probability map, each click keeps only its network-resolution
    probabilities (float32, at most ``max(target_size, limit_longest_size)`` squared: e.g.
    224 x 224 x 4 B = 0.2 MB zoomed in, at most 800 x 800 x 4 B = 2.6 MB with the defaults)
    for the last ``history_limit`` clicks, whatever the image size.

    Not thread-safe: use one predictor from one thread (the demo's worker thread).
    """

    HISTORY_LIMIT = 64

    def __init__(
        self,
        checkpoint: CheckpointLike = None,
        device: str | torch.device = "cpu",
        limit_longest_size: int | None = 800,
        zoom_in: bool = True,
        target_size: int | None = None,
        with_flip: bool = True,
        threshold: float = 0.5,
        forward_runner: ForwardRunner | None = None,
        history_limit: int = HISTORY_LIMIT,
        refine: str = "auto",
        precision: str = "fp32",
        backend: str = "torch",
    ) -> None:
        if limit_longest_size is not None and limit_longest_size < 0:
            raise InputError(f"limit_longest_size must be >= 0 (0: no downscaling), got "
                             f"{limit_longest_size}")
        self.device = torch.device(device)
        self.history_limit = max(1, int(history_limit))
        if isinstance(checkpoint, nn.Module):
            self.model = prepare_model(checkpoint, self.device, precision, backend)
        else:
            self.model = load_model(checkpoint, self.device, precision, backend)
        cfg = getattr(self.model, "cfg", None)
        self.target_size = int(target_size or getattr(cfg, "img_size", 448))
        self.limit_longest_size = limit_longest_size or None
        self.zoom_in = bool(zoom_in)
        self.with_flip = bool(with_flip)
        self.threshold = float(threshold)
        self.forward_runner = forward_runner
        self.last_predict_seconds = 0.0  # time of the clicks computed by the last predict
        self.last_computed_clicks = 0  # how many clicks the last predict had to run
        self.refine = resolve_refine(refine, checkpoint)
        self._refiner = make_refiner(self.refine)
        self._image: np.ndarray | None = None
        self._nobrs = self._build_nobrs()
        self._reset_session()

    # -- configuration -----------------------------------------------------------------------
    def _build_nobrs(self) -> NoBRSPredictor:
        zoom = ZoomIn(target_size=(self.target_size, self.target_size)) if self.zoom_in else None
        nobrs = NoBRSPredictor(
            self.model,
            self.device,
            with_flip=self.with_flip,
            zoom_in=zoom,
            max_size=self.limit_longest_size,
            forward_runner=self.forward_runner,
        )
        # The network-resolution output is what the undo history keeps (see Snapshot).
        self._capture = NetworkOutput()
        self._capture_index = next(
            i for i, t in enumerate(nobrs.transforms) if isinstance(t, SigmoidForPred)
        )
        nobrs.transforms.insert(self._capture_index, self._capture)
        return nobrs

    def set_zoom_in(self, enabled: bool) -> None:
        """Turns zoom-in on or off; the image stays set, cached clicks are forgotten."""
        if bool(enabled) == self.zoom_in:
            return
        self.zoom_in = bool(enabled)
        self._nobrs = self._build_nobrs()
        if self._image is not None:
            self._nobrs.set_input_image(self._image)
        self._reset_session()

    # -- image ---------------------------------------------------------------------------------
    @property
    def is_image_set(self) -> bool:
        return self._image is not None

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(H, W) of the current image, or None."""
        return None if self._image is None else tuple(self._image.shape[:2])  # type: ignore[return-value]

    def set_image(self, image: np.ndarray) -> None:
        """Sets the image for the following :meth:`predict` calls.

        Args:
            image: HxWx3 uint8 RGB.
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"expected an HxWx3 uint8 RGB image, got shape {image.shape} {image.dtype}"
            )
        self._image = np.ascontiguousarray(image)
        self._nobrs.set_input_image(self._image)
        if self._refiner is not None:
            self._refiner.set_image(self._image)
        self._reset_session()

    def reset_image(self) -> None:
        """Forgets the image and every cached prediction."""
        self._image = None
        self._nobrs = self._build_nobrs()
        self._reset_session()

    def _reset_session(self) -> None:
        self._steps: list[Step] = []
        self._init_prob: np.ndarray | None = None
        self._init_key: str | None = None
        self._current: np.ndarray | None = None  # the shown map (refined), None until predict
        self._net_current: np.ndarray | None = None  # the same before the refinement
        self._initial: Snapshot | None = None
        if self._image is not None:
            zeros = self._nobrs.prev_prediction
            assert zeros is not None
            self._zeros_like = (tuple(zeros.shape), zeros.dtype)
            self._initial = self._snapshot()

    def _snapshot(self) -> Snapshot:
        """The state after the last click (or the initial one), small: see :class:`Snapshot`."""
        prev = self._nobrs.prev_prediction
        assert prev is not None
        states = strip_full_size(self._nobrs.get_states(), tuple(prev.shape))
        net = self._capture.last  # None before the first click of this wrapper
        return Snapshot(states, None if net is None else net.detach().to("cpu", copy=True))

    def _restore(self, snapshot: Snapshot) -> None:
        """Puts the network wrapper back into a snapshot's state, rebuilding the
        full-resolution maps with the same inverse transforms that made them."""
        nobrs = self._nobrs
        nobrs.set_states({**snapshot.states, "prev_prediction": None})
        if snapshot.net_prob is None:  # before the first click
            shape, dtype = self._zeros_like
            full = torch.zeros(shape, dtype=dtype, device=self.device)
            self._current = self._net_current = None
        else:
            full = snapshot.net_prob.to(self.device)
            for t in reversed(nobrs.transforms[: self._capture_index]):
                full = t.inv_transform(full)
            self._net_current = full[0, 0].float().cpu().numpy()
            self._current = None  # refined once, for the clicks predict() ends on
        nobrs.prev_prediction = full

    @property
    def history_nbytes(self) -> int:
        """Bytes of tensors held by the undo history (the bound of the class docstring)."""
        return snapshots_nbytes(s.snapshot for s in self._steps if s.snapshot is not None)

    # -- prediction ----------------------------------------------------------------------------
    def predict(
        self, clicks: Sequence[Sequence[Any]], prev_mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mask for a list of clicks, as an interactive session adding them in order shows it.

        Args:
            clicks: (x, y, is_positive) in pixels of the image, in click order.
            prev_mask: optional HxW mask the clicks correct (e.g. a saved mask): bool, integer
                (non-zero = object) or float probabilities in [0, 1]. It is the previous mask of
                the first click; each later click gets the prediction before it.

        Returns:
            mask: HxW bool, ``prob > threshold``.
            prob: HxW float32 object probability. With no clicks: ``prev_mask`` (or zeros).

        Raises:
            RuntimeError: no image set.
            InputError: ``clicks`` not a list of (x, y, is_positive) with ``is_positive`` a
                bool or +1/-1, a click outside the image, a ``prev_mask`` of the wrong size, or
                a ``prev_mask`` for a model without a previous-mask input.
        """
        if self._image is None or self._initial is None:
            raise RuntimeError("call set_image(image) before predict")
        size = self.image_size
        assert size is not None
        checked = check_clicks(clicks, size)
        self._use_prev_mask(prev_mask)

        k = 0
        while k < min(len(checked), len(self._steps)) and self._steps[k].click == checked[k]:
            k += 1
        if k < len(self._steps):  # undo or a different branch: go back to the shared prefix
            while k > 0 and self._steps[k - 1].snapshot is None:
                k -= 1  # beyond the kept history: replay from the start
            del self._steps[k:]
            self._restore(self._steps[-1].snapshot if self._steps else self._initial)

        start = time.perf_counter()
        for n in range(k + 1, len(checked) + 1):
            self._steps.append(self._run_click(checked[:n]))
        for step in self._steps[: -self.history_limit]:
            step.snapshot = None
        if self._steps and self._current is None:  # only the shown map is refined
            self._current = self._refined(self._net_current, checked)
        self.last_computed_clicks = len(checked) - k
        self.last_predict_seconds = time.perf_counter() - start
        if self.last_computed_clicks:
            logger.debug(
                "%d click(s) in %.3f s", self.last_computed_clicks, self.last_predict_seconds
            )

        if self._steps:
            assert self._current is not None
            prob = self._current
        elif self._init_prob is not None:
            prob = self._init_prob
        else:
            prob = np.zeros(size, dtype=np.float32)
        if self._init_prob is None and checked and not any(p for _, _, p in checked):
            # background clicks alone select nothing (the network would still answer a few
            # pixels next to them)
            prob = np.zeros(size, dtype=np.float32)
        return prob > self.threshold, prob.copy()

    def _use_prev_mask(self, prev_mask: np.ndarray | None) -> None:
        """Starts a new session when the initial mask differs from the last call's (by content,
        so a mask edited in place is noticed)."""
        if prev_mask is not None and not getattr(self.model, "with_prev_mask", False):
            raise InputError("this model takes no previous mask (with_prev_mask is off)")
        prob = None if prev_mask is None else self._as_prob(prev_mask)
        key = None if prob is None else hashlib.sha1(prob.tobytes()).hexdigest()
        if key != self._init_key:
            del self._steps[:]
            assert self._initial is not None
            self._restore(self._initial)
            self._init_key, self._init_prob = key, prob

    def _as_prob(self, mask: np.ndarray) -> np.ndarray:
        mask = np.asarray(mask)
        if mask.shape != self.image_size:
            h, w = self.image_size or (0, 0)
            raise InputError(f"prev_mask has shape {mask.shape}, the image is {h}x{w} (HxW)")
        if mask.dtype == bool or np.issubdtype(mask.dtype, np.integer):
            return (mask != 0).astype(np.float32)
        return np.clip(np.nan_to_num(mask.astype(np.float32)), 0.0, 1.0)

    def _run_click(self, clicks: list[ClickTuple]) -> Step:
        """Predicts the last of ``clicks`` (the earlier ones are already in the state)."""
        first = len(clicks) == 1
        init = self._init_prob
        clicker = Clicker(
            init_clicks=[Click(is_positive=p, coords=(y, x)) for x, y, p in clicks],
            click_indx_offset=1 if init is not None else 0,  # the loaded mask counts as click 0
        )
        prev = init if first else None
        prob = self._nobrs.get_prediction(clicker, prev_mask=prev)
        if first and init is not None and self._nobrs.zoom_in is not None:
            # The first pass saw the whole image; the second is zoomed on what it found.
            prob = self._nobrs.get_prediction(clicker, prev_mask=prev)
        self._net_current = np.asarray(prob, dtype=np.float32)
        self._current = None  # refined by predict() once its last click is in
        return Step(clicks[-1], self._snapshot())

    def set_refine(self, refine: str) -> None:
        """Switches the graph-cut refinement (``'grabcut'`` or ``'none'``); the next
        :meth:`predict` shows the current clicks' map refined (or not), with no network pass.

        Raises:
            InputError: an unknown mode.
        """
        mode = str(refine).strip().lower()
        if mode not in REFINE_CHOICES:
            raise InputError(f"unknown refinement {refine!r}; choose one of "
                             f"{', '.join(REFINE_CHOICES)}")
        if mode == self.refine:
            return
        self.refine, self._refiner = mode, make_refiner(mode)
        if self._refiner is not None and self._image is not None:
            self._refiner.set_image(self._image)
        self._current = None

    def _refined(self, prob: np.ndarray, clicks: Sequence[ClickTuple]) -> np.ndarray:
        """The shown map: the network's, through the graph-cut refinement if it is on (the
        refinement is a function of the map and the clicks, so undo needs nothing else)."""
        if self._refiner is None:
            return prob
        return self._refiner.refine(
            prob, [Click(is_positive=p, coords=(y, x)) for x, y, p in clicks])

