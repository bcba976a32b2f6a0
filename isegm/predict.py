"""Headless click-based segmentation: a SAM-style Python API and a command line.

Python API::

    from isegm.predict import Predictor
    predictor = Predictor("weights/mst_tiny_photos_bigobjects.pth", device="cpu")
    predictor.set_image(rgb)                                  # HxWx3 uint8, once per image
    mask, prob = predictor.predict([(120, 80, True)])         # (x, y, is_positive) in pixels
    mask, prob = predictor.predict([(120, 80, True), (200, 40, False)])

Unlike SAM, a click model here is *iterative*: each prediction is fed the previous one as its
previous mask (SPEC Part II §4). :meth:`Predictor.predict` therefore returns exactly what an
interactive session that added the given clicks one by one would show: a call that extends the
previous call's clicks only runs the new clicks, and a call that shares a shorter prefix with it
(an undo) restores the cached state after that prefix and replays the rest. The result of a
click list never depends on the calls made before it.

Command line::

    python -m isegm.predict --image in.jpg --clicks "120,80,+ 200,40,-" --output mask.png

writes a 0/255 PNG mask. Bad inputs (a click outside the image, an unreadable image, a bad click
list, a missing or broken checkpoint) give one ``error:`` line on stderr and exit code 2; an
empty result mask is written with one ``warning:`` line (exit code 0). ``--threads N`` sets the
torch CPU threads (default :func:`default_threads`).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import cv2
import numpy as np
import torch
from torch import nn

from isegm.data.base import DatasetError
from isegm.data.io import DEFAULT_MAX_PIXELS, ImageRefused, decode_image
from isegm.data.mask_io import read_mask_file
from isegm.inference.batched import ForwardRunner
from isegm.inference.clicker import Click, Clicker
from isegm.inference.predictor import NoBRSPredictor
from isegm.inference.refine import REFINE_CHOICES, add_refine_argument, make_refiner
from isegm.inference.transforms import SigmoidForPred, ZoomIn
from isegm.inference.transforms.base import BaseTransform
from isegm.inference.utils import (
    DEFAULT_MODEL_FILE,
    DEFAULT_MODEL_RECIPE,
    CheckpointError,
    load_is_model,
)
from isegm.utils.cli import ArgumentParser, add_threads_argument, default_threads

__all__ = [
    "DEFAULT_CHECKPOINT",
    "CheckpointError",
    "ClickTuple",
    "DeviceError",
    "InputError",
    "Predictor",
    "add_refine_argument",
    "add_threads_argument",
    "check_clicks",
    "default_threads",
    "default_checkpoint_help",
    "load_model",
    "main",
    "parse_clicks",
    "read_image",
    "read_mask",
    "resolve_checkpoint",
    "resolve_refine",
    "select_device",
    "set_threads",
    "write_png",
]

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = REPO_ROOT / "weights" / DEFAULT_MODEL_FILE

ClickTuple = tuple[float, float, bool]  # (x, y, is_positive), pixels of the original image
CheckpointLike = Union[str, Path, nn.Module, None]


class InputError(ValueError):
    """A bad image, mask or click list given by the user (reported in one line, exit code 2)."""


class DeviceError(ValueError):
    """The requested device does not exist on this machine."""


# --------------------------------------------------------------------------- model and device
def default_checkpoint_help(path: Path | None = None) -> str:
    """One line telling how to create the built-in default checkpoint."""
    path = DEFAULT_CHECKPOINT if path is None else path
    return (
        f"no --checkpoint given and the default checkpoint {path} does not exist; "
        f"make it with: {DEFAULT_MODEL_RECIPE}"
    )


def resolve_checkpoint(checkpoint: str | Path | None) -> Path:
    """The checkpoint path to load; None means the built-in default.

    Raises:
        CheckpointError: the default checkpoint is missing (the message says how to create it).
    """
    if checkpoint is None:
        if not DEFAULT_CHECKPOINT.is_file():
            raise CheckpointError(default_checkpoint_help(DEFAULT_CHECKPOINT))
        return DEFAULT_CHECKPOINT
    return Path(checkpoint)


def select_device(cpu: bool = False, gpu: int | None = None) -> torch.device:
    """``--cpu`` / ``--gpu N`` to a device; with neither, CUDA if available, else the CPU.

    Raises:
        DeviceError: a GPU was asked for and does not exist.
    """
    if cpu:
        return torch.device("cpu")
    if gpu is not None:
        if gpu < 0:
            raise DeviceError(f"--gpu must be >= 0, got {gpu}")
        if not torch.cuda.is_available():
            raise DeviceError(f"--gpu {gpu}: CUDA is not available on this machine; use --cpu")
        if gpu >= torch.cuda.device_count():
            raise DeviceError(
                f"--gpu {gpu}: only {torch.cuda.device_count()} CUDA device(s) present"
            )
        return torch.device(f"cuda:{gpu}")
    return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


def load_model(checkpoint: str | Path | None, device: torch.device | str = "cpu") -> nn.Module:
    """Loads a checkpoint (None: the built-in default) in eval mode on ``device``.

    Raises:
        CheckpointError: one line naming the file and what is wrong with it.
    """
    path = resolve_checkpoint(checkpoint)
    model = load_is_model(path, device=device)
    logger.info("loaded %s on %s", path, device)
    return model


# --------------------------------------------------------------------------- files and clicks
# The server's click cap: a longer list is refused (10,000 clicks ran for minutes).
DEFAULT_MAX_CLICKS = 100


def read_image(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Reads an image file as HxWx3 uint8 RGB (grey and alpha images are converted; 16-bit
    images are scaled by the bits they use, see :func:`isegm.data.io.decode_image`).

    Raises:
        InputError: the file is missing, not a PNG/JPEG/BMP/TIFF/WebP image, or has more
            than ``max_pixels`` pixels (checked from its header, before decoding).
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a directory, not an image file")
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    try:
        image = decode_image(data, str(path), max_pixels) if data.size else None
    except ImageRefused as e:
        raise InputError(str(e)) from None
    if image is None:
        raise InputError(f"cannot read {path} as an image")
    return image


def read_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Reads a mask or label-map file as an HxW int32 array of object ids (0 background).

    The project's one mask reader (:mod:`isegm.data.mask_io`): 0/1, 0/255, trimap, label map
    1..k or palette PNG; a soft (blurred, JPEG-saved) mask is thresholded at 50 % of its
    maximum with a warning and gives one object; ignored pixels (trimap 128, palette 255) are
    background here.

    Args:
        path: PNG/BMP/... file; 8 or 16 bits.
        size: expected (H, W), if any.

    Raises:
        InputError: the file is missing, unreadable, a colour mask or of another size.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a mask file")
    if not path.is_file():
        raise InputError(f"mask not found: {path}")
    try:
        mask = read_mask_file(path, soft="threshold").objects_only()
    except DatasetError as e:
        raise InputError(str(e)) from None
    if size is not None and tuple(mask.shape) != tuple(size):
        raise InputError(
            f"mask {path} is {mask.shape[1]}x{mask.shape[0]} pixels, "
            f"the image is {size[1]}x{size[0]}"
        )
    return mask


def write_png(path: str | Path, array: np.ndarray) -> Path:
    """Writes a 2-D uint8/uint16 array as PNG, creating no directories.

    Raises:
        InputError: the path does not end in .png or cannot be written.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"{path}: masks are written as PNG, use a .png file name")
    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise InputError(f"{path}: cannot encode a {array.dtype} array as PNG")
    try:
        path.write_bytes(buf.tobytes())
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from None
    return path


_SIGNS = {"+": True, "-": False}


def parse_clicks(text: str) -> list[ClickTuple]:
    """Parses ``"x,y,+ x,y,-"`` (whitespace or ';' between clicks) into (x, y, is_positive).

    Raises:
        InputError: the list is empty or a click is malformed.
    """
    items = text.replace(";", " ").split()
    if not items:
        raise InputError('empty click list; expected e.g. --clicks "120,80,+ 200,40,-"')
    clicks: list[ClickTuple] = []
    for i, item in enumerate(items, 1):
        parts = item.split(",")
        bad = f"click {i} {item!r} is malformed; expected x,y,+ or x,y,- (pixels)"
        if len(parts) != 3 or parts[2].strip() not in _SIGNS:
            raise InputError(bad)
        try:
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise InputError(bad) from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InputError(bad)
        clicks.append((x, y, _SIGNS[parts[2].strip()]))
    return clicks


def _click_text(click: Sequence[Any]) -> str:
    x, y, positive = click
    return f"({float(x):g},{float(y):g},{'+' if positive else '-'})"


def _is_positive(value: Any) -> bool | None:
    """True/False for a bool or a number equal to +1/-1 (a row of a numpy click array);
    None for anything else ("-", "+", 0, 0.5, None, ...)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and value in (1, -1):
        return bool(value == 1)
    return None


def check_clicks(clicks: Sequence[Sequence[Any]], size: tuple[int, int]) -> list[ClickTuple]:
    """Validates clicks against an image of ``size`` (H, W) and normalises their types.

    A click is ``(x, y, is_positive)`` with finite x, y inside the image and ``is_positive`` a
    bool or the integer +1 / -1 (a string such as ``"-"`` is refused, not read as truthy).

    Raises:
        InputError: ``clicks`` is not a list of such tuples, or a click lies outside the image.
    """
    if clicks is None or isinstance(clicks, (str, bytes)) or not hasattr(clicks, "__iter__"):
        raise InputError(
            f"clicks must be a list of (x, y, is_positive) tuples, got {type(clicks).__name__}"
        )
    h, w = size
    out: list[ClickTuple] = []
    for i, click in enumerate(clicks, 1):
        try:
            x, y, positive = click
            x, y = float(x), float(y)
        except (TypeError, ValueError):
            raise InputError(f"click {i} {click!r} is not (x, y, is_positive)") from None
        is_positive = _is_positive(positive)
        if is_positive is None:
            raise InputError(
                f"click {i} {click!r}: is_positive must be True/False or +1/-1, "
                f"got {positive!r}"
            )
        if not (0 <= x < w and 0 <= y < h):
            raise InputError(
                f"click {i} {_click_text(click)} is outside the image of {w}x{h} pixels "
                f"(x must be in [0, {w}), y in [0, {h}))"
            )
        out.append((x, y, is_positive))
    return out


# --------------------------------------------------------------------------- predictor
def resolve_refine(refine: str | None, checkpoint: CheckpointLike) -> str:
    """The refinement mode of an annotation session: ``'auto'`` (or None) is ``'grabcut'`` for
    the built-in default checkpoint and ``'none'`` for any other checkpoint or model.

    Raises:
        InputError: an unknown mode.
    """
    mode = "auto" if refine is None else str(refine).strip().lower()
    if mode == "auto":
        default = checkpoint is None or (
            isinstance(checkpoint, (str, Path)) and Path(checkpoint).is_file()
            and Path(checkpoint).resolve() == DEFAULT_CHECKPOINT.resolve())
        return "grabcut" if default else "none"
    if mode not in REFINE_CHOICES:
        raise InputError(f"unknown refinement {refine!r}; choose one of auto, "
                         f"{', '.join(REFINE_CHOICES)}")
    return mode


class _NetworkOutput(BaseTransform):
    """Identity transform placed after the geometric transforms (ZoomIn, LimitLongestSide):
    on the way back it sees the probabilities at the network's resolution and keeps them, so
    the undo history stores those instead of full-resolution maps."""

    def __init__(self) -> None:
        super().__init__()
        self.last: torch.Tensor | None = None

    def transform(self, image_nd: torch.Tensor, clicks_lists: Any) -> tuple[torch.Tensor, Any]:
        self.image_changed = False
        return image_nd, clicks_lists

    def inv_transform(self, prob_map: torch.Tensor) -> torch.Tensor:
        self.last = prob_map
        return prob_map

    def reset(self) -> None:
        self.last = None


@dataclass
class _Snapshot:
    """Predictor state after a click, without any full-resolution map.

    ``states`` is :meth:`NoBRSPredictor.get_states` with every image-sized tensor (the previous
    prediction, also held by ZoomIn) replaced by None; ``net_prob`` is the network-resolution
    probability map they are rebuilt from by the same inverse transforms, so a restored state
    is bit-identical to the one the click left.
    """

    states: dict
    net_prob: torch.Tensor | None


@dataclass
class _Step:
    """One click of the current session and, for the last ``history_limit`` clicks, the state
    right after it (older clicks are replayed from the start when undone that far)."""

    click: ClickTuple
    snapshot: _Snapshot | None


def _strip_full_size(state: Any, full_shape: tuple[int, ...]) -> Any:
    """``state`` with tensors of ``full_shape`` replaced by None (nested tuples/lists/dicts)."""
    if torch.is_tensor(state):
        return None if tuple(state.shape) == full_shape else state
    if isinstance(state, dict):
        return {k: _strip_full_size(v, full_shape) for k, v in state.items()}
    if isinstance(state, (tuple, list)):
        return type(state)(_strip_full_size(v, full_shape) for v in state)
    return state


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

    Raises:
        CheckpointError: the checkpoint is missing or unreadable.

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
    ) -> None:
        if limit_longest_size is not None and limit_longest_size < 0:
            raise InputError(f"limit_longest_size must be >= 0 (0: no downscaling), got "
                             f"{limit_longest_size}")
        self.device = torch.device(device)
        self.history_limit = max(1, int(history_limit))
        if isinstance(checkpoint, nn.Module):
            self.model = checkpoint.to(self.device).eval()
        else:
            self.model = load_model(checkpoint, self.device)
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
        # The network-resolution output is what the undo history keeps (see _Snapshot).
        self._capture = _NetworkOutput()
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
        self._steps: list[_Step] = []
        self._init_prob: np.ndarray | None = None
        self._init_key: str | None = None
        self._current: np.ndarray | None = None  # the shown map (refined), None until predict
        self._net_current: np.ndarray | None = None  # the same before the refinement
        self._initial: _Snapshot | None = None
        if self._image is not None:
            zeros = self._nobrs.prev_prediction
            assert zeros is not None
            self._zeros_like = (tuple(zeros.shape), zeros.dtype)
            self._initial = self._snapshot()

    def _snapshot(self) -> _Snapshot:
        """The state after the last click (or the initial one), small: see :class:`_Snapshot`."""
        prev = self._nobrs.prev_prediction
        assert prev is not None
        states = _strip_full_size(self._nobrs.get_states(), tuple(prev.shape))
        net = self._capture.last  # None before the first click of this wrapper
        return _Snapshot(states, None if net is None else net.detach().to("cpu", copy=True))

    def _restore(self, snapshot: _Snapshot) -> None:
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
        snapshots = [s.snapshot for s in self._steps if s.snapshot is not None]
        tensors = [s.net_prob for s in snapshots if s.net_prob is not None]
        stack: list[Any] = [s.states for s in snapshots]
        while stack:
            item = stack.pop()
            if torch.is_tensor(item):
                tensors.append(item)
            elif isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, (tuple, list)):
                stack.extend(item)
        return sum(t.numel() * t.element_size() for t in tensors)

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

    def _run_click(self, clicks: list[ClickTuple]) -> _Step:
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
        return _Step(clicks[-1], self._snapshot())

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


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m isegm.predict",
        description="Segment one object of an image from clicks and write the mask as PNG.",
    )
    parser.add_argument(
        "--checkpoint",
        help=f"model checkpoint (default: {DEFAULT_CHECKPOINT})",
    )
    parser.add_argument("--image", required=True, help="input image (jpg, png, bmp, ...)")
    parser.add_argument(
        "--clicks",
        required=True,
        help='clicks in pixels, in order: "x,y,+ x,y,-" (+ object, - background)',
    )
    parser.add_argument("--output", required=True, help="output mask PNG (0 / 255)")
    parser.add_argument("--prob-output", help="also write the probability map as 8-bit PNG")
    parser.add_argument("--prev-mask", help="mask the clicks correct (non-zero = object)")
    dev = parser.add_mutually_exclusive_group()
    dev.add_argument("--cpu", action="store_true", help="run on the CPU")
    dev.add_argument("--gpu", type=int, metavar="N", help="run on CUDA device N")
    parser.add_argument("--threshold", type=float, default=0.5, help="mask threshold (0.5)")
    parser.add_argument(
        "--limit-longest-size", type=int, default=800, help="downscale larger images (800)"
    )
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help=f"largest image in pixels, checked before decoding "
                        f"({DEFAULT_MAX_PIXELS})")
    parser.add_argument("--max-clicks", type=int, default=DEFAULT_MAX_CLICKS,
                        help=f"longest click list ({DEFAULT_MAX_CLICKS})")
    parser.add_argument(
        "--zoom-in",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="zoom in on the object after the first click (on)",
    )
    add_refine_argument(parser)
    add_threads_argument(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log timings")
    return parser


def set_threads(threads: int | None) -> int:
    """Applies ``--threads`` (None: :func:`default_threads`); returns the number used.

    Raises:
        InputError: a number below 1.
    """
    if threads is not None and threads < 1:
        raise InputError(f"--threads must be >= 1, got {threads}")
    n = default_threads() if threads is None else int(threads)
    torch.set_num_threads(n)
    return n


def _glue_clicks(argv: Sequence[str]) -> list[str]:
    """``--clicks "-5,3,+"`` would read as an option to argparse: glue it as ``--clicks=...``."""
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--clicks":
            value = next(it, None)
            out.append(arg if value is None else f"--clicks={value}")
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None, model: nn.Module | None = None) -> int:
    """Runs the command line; returns the exit code (2 for any bad input).

    Args:
        argv: arguments (default ``sys.argv[1:]``).
        model: a ready model to use instead of ``--checkpoint`` (scripting and tests).
    """
    args = build_parser().parse_args(_glue_clicks(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    threads_before = torch.get_num_threads()  # main() may run inside a script or a test
    try:
        return _run(args, model)
    finally:
        torch.set_num_threads(threads_before)


def _run(args: argparse.Namespace, model: nn.Module | None) -> int:
    try:
        if not 0.0 <= args.threshold <= 1.0:
            raise InputError(f"--threshold must be in [0, 1], got {args.threshold}")
        for flag, value in (("--max-pixels", args.max_pixels), ("--max-clicks", args.max_clicks)):
            if value < 1:
                raise InputError(f"{flag} must be positive, got {value}")
        if args.limit_longest_size < 0:
            raise InputError("--limit-longest-size must be >= 0 (0: no downscaling), got "
                             f"{args.limit_longest_size}")
        device = select_device(args.cpu, args.gpu)
        set_threads(args.threads)
        parsed = parse_clicks(args.clicks)
        if len(parsed) > args.max_clicks:
            raise InputError(f"{len(parsed)} clicks, the limit is --max-clicks {args.max_clicks}")
        image = read_image(args.image, args.max_pixels)
        clicks = check_clicks(parsed, image.shape[:2])
        prev = read_mask(args.prev_mask, image.shape[:2]) if args.prev_mask else None
        for out in (args.output, args.prob_output):
            if out is not None and Path(out).suffix.lower() != ".png":
                raise InputError(f"{out}: masks are written as PNG, use a .png file name")
        predictor = Predictor(
            model if model is not None else args.checkpoint,
            device=device,
            limit_longest_size=args.limit_longest_size,
            zoom_in=args.zoom_in,
            threshold=args.threshold,
            refine=args.refine,
        )
        predictor.set_image(image)
        mask, prob = predictor.predict(clicks, prev)
        write_png(args.output, mask.astype(np.uint8) * 255)
        if args.prob_output:
            write_png(args.prob_output, np.rint(prob * 255).astype(np.uint8))
    except (InputError, CheckpointError, DeviceError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    if not mask.any():
        sys.stderr.write(
            f"warning: the mask is empty (no pixel above --threshold {args.threshold:g}; "
            f"highest probability {float(prob.max()):.2f}); wrote {args.output} anyway\n"
        )
    logger.info(
        "%d click(s) in %.2f s; %d mask pixels -> %s",
        len(clicks),
        predictor.last_predict_seconds,
        int(mask.sum()),
        args.output,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
