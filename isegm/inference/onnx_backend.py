"""onnxruntime as a predictor backend (issue 25): the exported graphs called like the torch model.

The export and the cache of exported files are :mod:`isegm.inference.onnx_export`.

* :class:`OnnxModel` runs one full graph per click (``net(image, points)['instances']``); it is
  what a user-supplied ``.onnx`` file from ``python -m isegm.export`` gives
  (:meth:`OnnxModel.from_file`). It has no ``encode_image``, so the predictor does not cache an
  embedding for it.
* :class:`OnnxEmbeddedModel` (what :meth:`OnnxModel.from_model` gives for a model with
  ``encode_image`` / ``forward_embedded``, i.e. the ``--backend onnxruntime`` path from a
  checkpoint) runs the exported *pair*: ``encode_image`` (the encoder graph) once per image,
  cached by the predictor, and ``forward_embedded`` (the click graph) per click. So the
  per-click path skips the image encoding, as with torch.

Input sides: an input of another (square) side is exported for that side on first use when the
torch model is at hand (a ``.pth`` source), else resized to the graph's side and the logits back
(the embedding of the pair records both sides, so ``forward_embedded`` resizes the previous mask
and the clicks the same way).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from isegm.inference.onnx_export import (
    OPSET,
    cache_dir,
    encoder_file,
    export_onnx,
    exported,
    quantize_onnx_int8,
    read_facts,
)

__all__ = ["OPSET", "OnnxEmbeddedModel", "OnnxModel", "cache_dir", "export_onnx",
           "quantize_onnx_int8"]

logger = logging.getLogger(__name__)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().float().cpu().numpy())


def _resized(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``x [B, C, h, w]`` bilinearly resized to ``size`` (itself when already that size)."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _points_to_side(points: torch.Tensor, hw: tuple[int, int], side: int) -> torch.Tensor:
    """Clicks in pixels of an ``hw`` input moved to a ``side x side`` one (padding kept)."""
    if hw == (side, side):
        return points
    p = points.clone()
    valid = (p[..., :2] >= 0).all(-1)
    for axis in (0, 1):
        p[..., axis] = torch.where(valid, (p[..., axis] * side / hw[axis]).floor(), p[..., axis])
    return p


class OnnxModel(nn.Module):
    """An onnxruntime session of a full graph, called like the torch model
    (``net(image, points)``).

    No parameters (the predictor then feeds float32); ``cfg`` carries ``img_size`` and
    ``arch``; ``with_prev_mask`` and ``min_size_multiple`` are the exported model's.

    Raises:
        ValueError: ``path`` is not a file of this kind written by this project.
    """

    _GRAPH = "full"  # the ``graph`` fact of the files this class opens (absent: full)

    def __init__(self, path: str | Path, int8: bool = False,
                 model: nn.Module | None = None, source: str | Path | None = None,
                 threads: int | None = None) -> None:
        super().__init__()
        import onnxruntime as ort

        facts = read_facts(path)
        if not facts:
            raise ValueError(f"{path}: not an ONNX file written by python -m isegm.export")
        if facts.get("graph", "full") != self._GRAPH:
            raise ValueError(f"{path}: a {facts.get('graph')} graph, expected a {self._GRAPH} "
                             "one")
        self.facts = facts
        self.path = Path(path)
        self.size = int(facts["size"])
        self.with_prev_mask = bool(facts["with_prev_mask"])
        self.min_size_multiple = int(facts["min_size_multiple"])
        self.int8 = int8
        src_cfg = getattr(model, "cfg", None)
        self.cfg = src_cfg if src_cfg is not None else SimpleNamespace(
            img_size=int(facts["img_size"]), arch=facts["arch"], selection=None)
        object.__setattr__(self, "_torch_model", model)  # exports other sizes; not a submodule
        self._source = source
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._ort, self._opts = ort, opts
        self._sessions: dict[int, Any] = {self.size: self._open(path)}

    def _session(self, path: str | Path) -> Any:
        return self._ort.InferenceSession(str(path), self._opts,
                                          providers=["CPUExecutionProvider"])

    def _open(self, path: str | Path) -> Any:
        """The session(s) of an exported file of this class's graph form."""
        return self._session(path)

    def _export(self, size: int) -> Path:
        """The cached file of the torch model at ``size`` (exported now if missing)."""
        assert self._torch_model is not None
        return exported(self._torch_model, size, self.int8, self._source)

    @classmethod
    def from_file(cls, path: str | Path, int8: bool = False) -> OnnxModel:
        """A session of an exported full-graph ``.onnx`` (quantised to int8 in a cached copy
        if asked)."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path}: no such ONNX file")
        if int8:
            st = path.stat()
            key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
            q = cache_dir() / f"{path.stem}-int8-{key.hexdigest()[:16]}.onnx"
            if not q.is_file():
                q.parent.mkdir(parents=True, exist_ok=True)
                quantize_onnx_int8(path, q)
            return OnnxModel(q, int8=True, source=path)
        return OnnxModel(path, source=path)

    @classmethod
    def from_model(cls, model: nn.Module, size: int | None = None, int8: bool = False,
                   source: str | Path | None = None) -> OnnxModel:
        """Exports ``model`` (once: the files are cached, see :func:`cache_dir`) and opens it:
        the encoder + click pair (:class:`OnnxEmbeddedModel`) for a model with
        ``encode_image`` / ``forward_embedded``, else the full graph."""
        size = int(size or model.cfg.img_size)
        if hasattr(model, "encode_image") and hasattr(model, "forward_embedded"):
            return OnnxEmbeddedModel(exported(model, size, int8, source, pair=True), int8,
                                     model, source)
        return OnnxModel(exported(model, size, int8, source), int8, model, source)

    def _side_for(self, hw: tuple[int, int]) -> int:
        """The graph side an ``hw`` input runs at: its own when square and exportable (or
        already exported), else the first graph's (the input is then resized)."""
        side = hw[0]
        if hw[0] == hw[1] and side not in self._sessions and self._torch_model is not None:
            logger.info("onnxruntime: exporting for input side %d", side)
            self._sessions[side] = self._open(self._export(side))
        return side if hw[0] == hw[1] and side in self._sessions else self.size

    @torch.no_grad()
    def forward(self, image: torch.Tensor, points: torch.Tensor) -> dict:
        """``{'instances': float32 logits [B, 1, H, W]}`` on the device of ``image``."""
        hw = (int(image.shape[2]), int(image.shape[3]))
        side = self._side_for(hw)
        feed = {"image": _numpy(_resized(image.float(), (side, side))),
                "points": _numpy(_points_to_side(points.float(), hw, side))}
        logits = torch.from_numpy(self._sessions[side].run(None, feed)[0])
        return {"instances": _resized(logits, hw).to(image.device, image.dtype)}


class OnnxEmbeddedModel(OnnxModel):
    """The encoder + click graph pair (:func:`~isegm.inference.onnx_export.export_onnx_pair`)
    with the torch model's per-click interface: ``encode_image(rgb)`` once per image,
    ``forward_embedded(emb, prev_mask, points)`` per click; ``forward`` is the two in a row.

    ``path`` is the click graph (``*.clicks.onnx``); its encoder lies beside it. An embedding
    holds the encoder outputs (batched in dim 0, the names of the torch model's entries), the
    side facts ``grid`` and ``size`` (of the graph's side, as torch's) and ``input_size`` (the
    input's ``(H, W)``, which differs from ``size`` when the input was resized to the graph's
    side); the shared position embeddings are constants of the click graph, not entries.
    """

    _GRAPH = "clicks"

    def _open(self, path: str | Path) -> Any:
        """(encoder session, click session, the side facts ``grid`` / ``size`` of the pair)."""
        static = {k: tuple(v) if isinstance(v, list) else v
                  for k, v in read_facts(path)["static"].items()}
        return self._session(encoder_file(path)), self._session(path), static

    def _export(self, size: int) -> Path:
        assert self._torch_model is not None
        return exported(self._torch_model, size, self.int8, self._source, pair=True)

    @torch.no_grad()
    def encode_image(self, rgb: torch.Tensor) -> dict:
        """The embedding of ``rgb [B, 3, H, W]`` in [0, 1] (see the class docstring)."""
        hw = (int(rgb.shape[2]), int(rgb.shape[3]))
        side = self._side_for(hw)
        out = self._sessions[side][0].run(None, {"rgb": _numpy(_resized(rgb.float(),
                                                                        (side, side)))})
        emb: dict[str, Any] = {k: torch.from_numpy(v).to(rgb.device)
                               for k, v in zip(self.facts["entries"], out)}
        emb.update(self._sessions[side][2])
        emb.update(size=(side, side), input_size=hw)
        return emb

    @torch.no_grad()
    def forward_embedded(self, emb: dict, prev_mask: torch.Tensor | None,
                         points: torch.Tensor) -> dict:
        """``{'instances': float32 logits [B, 1, H, W]}`` at the embedding's input size."""
        side = int(emb["size"][0])
        hw = tuple(emb["input_size"])
        first = emb[self.facts["entries"][0]]
        feed = {k: _numpy(emb[k]) for k in self.facts["entries"]}
        if self.with_prev_mask:
            if prev_mask is None:
                prev_mask = first.new_zeros(first.shape[0], 1, *hw)
            feed["prev_mask"] = _numpy(_resized(prev_mask.float(), (side, side)))
        feed["points"] = _numpy(_points_to_side(points.float(), hw, side))
        logits = torch.from_numpy(self._sessions[side][1].run(None, feed)[0])
        return {"instances": _resized(logits, hw).to(first.device)}

    def forward(self, image: torch.Tensor, points: torch.Tensor) -> dict:
        prev = image[:, 3:4] if self.with_prev_mask else None
        out = self.forward_embedded(self.encode_image(image[:, :3]), prev, points)
        return {"instances": out["instances"].to(image.dtype)}
