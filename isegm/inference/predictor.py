"""NoBRS predictor: clicks in, probability map out (SPEC Part II §4).

Per click the predictor feeds the network the RGB image plus the previous full-resolution
probability map, through the test-time chain ``[ZoomIn] + [LimitLongestSide] + [SigmoidForPred]
+ [AddHorizontalFlip]``, and maps the logits back to the image.

Two additions over the reference ``BasePredictor``:

* Image-only work is cached. A network exposing ``encode_image(rgb)`` and
  ``forward_embedded(embedding, prev_mask, points)`` has ``encode_image`` called only when the
  transformed RGB input changes (new image, new ZoomIn crop); clicks and the previous mask are
  fused per click. With early click fusion (MST) the transformer blocks still depend on the
  clicks, so only the click-independent part can be cached, unlike SAM.
* Cascade-forward refinement (CFR, the ``--cf-n/--acf/--cf-click`` flags MST parses but ignores):
  on the first ``cascade_clicks`` clicks, the forward runs ``cascade_steps + 1`` times, each pass
  fed the previous pass's probabilities as the previous mask.

Inputs whose sides are not multiples of ``net.min_size_multiple`` (if the network has it) are
zero-padded at the bottom/right and the logits cropped back, so the demo can run without ZoomIn.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Generator
from typing import Any

import numpy as np
import torch

from isegm.inference.batched import (
    EmbeddingCache,
    ForwardRequest,
    ForwardRunner,
    forward_batch,
)
from isegm.inference.clicker import Click, clicks_to_points
from isegm.inference.transforms import (
    AddHorizontalFlip,
    BaseTransform,
    LimitLongestSide,
    SigmoidForPred,
    ZoomIn,
)
from isegm.inference.transforms.base import ClicksLists

__all__ = ["CASCADE_PRED_THR", "NoBRSPredictor"]

logger = logging.getLogger(__name__)

CASCADE_PRED_THR = 0.49  # threshold of the adaptive cascade's change count


class NoBRSPredictor:
    """Feed-forward predictor (no back-propagating refinement).

    Args:
        net: module called as ``net(image [B, 4, H, W] in [0, 1], points [B, 2N, 3])`` returning
            ``{'instances': logits [B, 1, h, w]}``; channel 3 is the previous-mask probability
            when ``net.with_prev_mask``. Optionally ``encode_image`` / ``forward_embedded`` (see
            the module docstring). It must already be on ``device`` and in eval mode.
        device: device of the input tensors.
        net_clicks_limit: pass at most this many (first) clicks to the network.
        with_flip: average with the horizontally flipped input.
        zoom_in: optional :class:`ZoomIn` (``--inference_size`` is its target size).
        max_size: optional longest side of the network input (:class:`LimitLongestSide`).
        cascade_steps: CFR extra passes N (``--cf-n``); 0 disables it.
        cascade_adaptive: stop the cascade once a pass changes at most
            ``cascade_change_thresh`` thresholded pixels (``--acf``).
        cascade_clicks: use the cascade while there are at most this many clicks
            (``--cf-click``).
        cascade_change_thresh: pixel-change count for the adaptive stop.
        forward_runner: runs prepared network inputs (default
            :func:`~isegm.inference.batched.forward_batch` at once); the annotation server
            passes its batching worker here, so the forwards of many predictors share batches.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        device: torch.device | str,
        net_clicks_limit: int | None = None,
        with_flip: bool = True,
        zoom_in: ZoomIn | None = None,
        max_size: int | None = None,
        cascade_steps: int = 0,
        cascade_adaptive: bool = False,
        cascade_clicks: int = 1,
        cascade_change_thresh: int = 20,
        forward_runner: ForwardRunner | None = None,
    ) -> None:
        if cascade_steps < 0:
            raise ValueError("cascade_steps must be >= 0")
        self.net = net
        self.device = torch.device(device)
        self.net_clicks_limit = net_clicks_limit
        self.with_flip = with_flip
        self.zoom_in = zoom_in
        self.cascade_steps = cascade_steps
        self.cascade_adaptive = cascade_adaptive
        self.cascade_clicks = cascade_clicks
        self.cascade_change_thresh = cascade_change_thresh
        self.forward_runner: ForwardRunner = forward_runner or forward_batch
        # inputs follow the network's dtype (a float64 model gets float64 images)
        params = [p for p in net.parameters() if p.is_floating_point()][:1]
        self.dtype = params[0].dtype if params else torch.float32

        self.transforms: list[BaseTransform] = [zoom_in] if zoom_in is not None else []
        if max_size is not None:
            self.transforms.append(LimitLongestSide(max_size=max_size))
        self.transforms.append(SigmoidForPred())
        if with_flip:
            self.transforms.append(AddHorizontalFlip())

        self.original_image: torch.Tensor | None = None  # [1, 3, H, W] in [0, 1]
        self.prev_prediction: torch.Tensor | None = None  # [1, 1, H, W] probabilities
        self._cache = EmbeddingCache()
        self.last_cascade_passes = 0  # forward passes of the last get_prediction

    def clone(self) -> NoBRSPredictor:
        """A predictor with the same network, settings and forward runner but its own state
        (transforms, previous prediction, embedding cache): one per object of a lockstep
        batch."""
        other = copy.copy(self)
        other.transforms = copy.deepcopy(self.transforms)
        zooms = [t for t in other.transforms if isinstance(t, ZoomIn)]
        other.zoom_in = zooms[0] if zooms else None
        other.original_image = other.prev_prediction = None
        other._cache = EmbeddingCache()
        other.last_cascade_passes = 0
        return other

    @property
    def with_prev_mask(self) -> bool:
        return bool(getattr(self.net, "with_prev_mask", False))

    @property
    def caches_embedding(self) -> bool:
        return hasattr(self.net, "encode_image") and hasattr(self.net, "forward_embedded")

    def set_input_image(self, image: np.ndarray | torch.Tensor) -> None:
        """Sets the image for the following clicks and forgets everything about the last one.

        Args:
            image: [H, W, 3] uint8 RGB (or an already scaled [3, H, W] / [1, 3, H, W] float
                tensor in [0, 1]).
        """
        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"expected an HxWx3 RGB image, got {image.shape}")
            tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
            tensor = tensor.to(self.device, dtype=self.dtype) / 255.0
        else:
            tensor = image.to(self.device, dtype=self.dtype)
        if tensor.dim() == 3:
            tensor = tensor.unsqueeze(0)
        for t in self.transforms:
            t.reset()
        self.original_image = tensor
        self.prev_prediction = torch.zeros_like(tensor[:, :1])
        self._invalidate_embedding()

    def _invalidate_embedding(self) -> None:
        self._cache.clear()

    @torch.no_grad()
    def get_prediction(
        self, clicker: Any, prev_mask: np.ndarray | torch.Tensor | None = None
    ) -> np.ndarray:
        """Probability map for the clicker's current clicks.

        Args:
            clicker: object whose ``get_clicks()`` returns the clicks, coords (y, x).
            prev_mask: [H, W] previous-mask probabilities to use instead of the last prediction
                (e.g. a mask loaded in the demo).

        Returns:
            [H, W] float32 probabilities of the object.
        """
        steps = self.prediction_steps(clicker, prev_mask)
        request = next(steps)
        while True:
            try:
                request = steps.send(self.forward_runner([request])[0])
            except StopIteration as done:
                return done.value

    def prediction_steps(
        self, clicker: Any, prev_mask: np.ndarray | torch.Tensor | None = None
    ) -> Generator[ForwardRequest, torch.Tensor, np.ndarray]:
        """:meth:`get_prediction` as a generator of its network passes, so a driver can run
        the passes of many predictors in one batch (``isegm.inference.lockstep``).

        Yields each pass's :class:`ForwardRequest` (one click: one pass, more with ZoomIn's
        recalculation or the cascade) and must be sent back the request's logits (what
        :func:`~isegm.inference.batched.forward_batch` returns for it); returns (as
        ``StopIteration.value``) the [H, W] float32 probabilities of :meth:`get_prediction`.
        """
        if self.original_image is None or self.prev_prediction is None:
            raise RuntimeError("call set_input_image before get_prediction")
        clicks = list(clicker.get_clicks())
        prev = None if prev_mask is None else self._as_mask_tensor(prev_mask)

        n_passes = 1
        if self.cascade_steps > 0 and len(clicks) <= self.cascade_clicks:
            n_passes = self.cascade_steps + 1

        prediction = yield from self._predict_once_steps(clicks, prev)
        self.last_cascade_passes = 1
        for _ in range(n_passes - 1):
            # prev_prediction now holds the last pass's probabilities: it is the next pass's
            # previous mask.
            new = yield from self._predict_once_steps(clicks, None)
            self.last_cascade_passes += 1
            old, prediction = prediction, new
            if self.cascade_adaptive:
                changed = int(((new > CASCADE_PRED_THR) != (old > CASCADE_PRED_THR)).sum())
                if changed <= self.cascade_change_thresh:
                    break
        return prediction[0, 0].float().cpu().numpy()

    def _as_mask_tensor(self, mask: np.ndarray | torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(mask) if isinstance(mask, np.ndarray) else mask)
        t = t.to(self.device, dtype=self.dtype)
        while t.dim() < 4:
            t = t.unsqueeze(0)
        return t

    def _predict_once_steps(
        self, clicks: list[Click], prev_mask: torch.Tensor | None
    ) -> Generator[ForwardRequest, torch.Tensor, torch.Tensor]:
        """One network pass as a generator (see :meth:`prediction_steps`); updates
        ``prev_prediction``. Returns [1, 1, H, W] probabilities."""
        assert self.original_image is not None and self.prev_prediction is not None
        input_nd = self.original_image
        if self.with_prev_mask:
            prev = self.prev_prediction if prev_mask is None else prev_mask
            input_nd = torch.cat([input_nd, prev.to(input_nd.dtype)], dim=1)

        image_nd, clicks_lists, image_changed = self._apply_transforms(input_nd, [clicks])
        prediction = yield self.prepare_forward(image_nd, clicks_lists, image_changed)
        for t in reversed(self.transforms):
            prediction = t.inv_transform(prediction)

        if self.zoom_in is not None and self.zoom_in.check_possible_recalculation():
            return (yield from self._predict_once_steps(clicks, prev_mask))

        self.prev_prediction = prediction
        return prediction

    def _apply_transforms(
        self, image_nd: torch.Tensor, clicks_lists: ClicksLists
    ) -> tuple[torch.Tensor, ClicksLists, bool]:
        changed = False
        for t in self.transforms:
            image_nd, clicks_lists = t.transform(image_nd, clicks_lists)
            changed |= t.image_changed
        return image_nd, clicks_lists, changed

    def get_points_nd(self, clicks_lists: ClicksLists) -> torch.Tensor:
        """[B, 2N, 3] float points on the device (layout of ``clicks_to_points``)."""
        points = clicks_to_points(clicks_lists, self.net_clicks_limit)
        return torch.from_numpy(points).to(self.device)

    def prepare_forward(
        self, image_nd: torch.Tensor, clicks_lists: ClicksLists, image_changed: bool
    ) -> ForwardRequest:
        """The network input of one pass (for :func:`~isegm.inference.batched.forward_batch`)."""
        return ForwardRequest(
            net=self.net,
            image_nd=image_nd,
            clicks_lists=clicks_lists,
            image_changed=image_changed,
            cache=self._cache if self.caches_embedding else None,
            with_prev_mask=self.with_prev_mask,
            net_clicks_limit=self.net_clicks_limit,
        )

    def get_states(self) -> dict[str, Any]:
        """Snapshot of the transform states and the previous prediction (demo undo)."""
        return {
            "transform_states": [t.get_state() for t in self.transforms],
            "prev_prediction": None if self.prev_prediction is None
            else self.prev_prediction.clone(),
        }

    def set_states(self, states: dict[str, Any]) -> None:
        """Restores a :meth:`get_states` snapshot (the embedding is recomputed on next use)."""
        transform_states = states["transform_states"]
        if len(transform_states) != len(self.transforms):
            raise ValueError("state does not match this predictor's transforms")
        for state, t in zip(transform_states, self.transforms):
            t.set_state(state)
        prev = states["prev_prediction"]
        self.prev_prediction = None if prev is None else prev.clone()
        self._invalidate_embedding()
