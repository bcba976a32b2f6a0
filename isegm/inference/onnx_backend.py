"""ONNX export of an interactive segmentation model, and onnxruntime as a predictor backend.

The exported graph is the whole forward pass ``(image [B, 4|3, S, S], points [B, 2N, 3]) ->
logits [B, 1, S, S]`` at one square input side ``S``; the batch and the number of click rows
``2N`` are dynamic axes. It is exported with ``torch.onnx.export(dynamo=True)`` (the
TorchScript exporter cannot trace the position-embedding resize); MST's pseudo-inverse
resampled patch kernels are weight-only and enter the graph as constants
(:meth:`isegm.model.vit.PatchEmbed.freeze_kernels`). int8: onnxruntime's dynamic quantisation
of the MatMuls whose second input is a weight (the Linear layers).

:class:`OnnxModel` is what the predictor calls (``net(image, points)['instances']``, like the
torch model). An input of another side is exported for that side on first use when the torch
model is at hand (a ``.pth`` source), else resized to the graph's side and back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["OPSET", "OnnxModel", "cache_dir", "export_onnx", "quantize_onnx_int8"]

logger = logging.getLogger(__name__)

OPSET = 18
_META = "isegm"  # metadata key of the model facts the predictor needs


class _LogitsOnly(nn.Module):
    """``model(image, points)['instances']``: the one output the exported graph has."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        return self.model(image, points)["instances"]


def _model_facts(model: nn.Module, size: int) -> dict[str, Any]:
    cfg = model.cfg
    return {"size": size, "img_size": int(cfg.img_size), "arch": cfg.arch,
            "with_prev_mask": bool(model.with_prev_mask),
            "min_size_multiple": int(model.min_size_multiple),
            "pos_embed_resize": getattr(model.backbone, "pos_embed_resize", "once")}


def export_onnx(model: nn.Module, output: str | Path, size: int | None = None,
                opset: int = OPSET) -> Path:
    """Writes ``model`` (an :class:`~isegm.model.is_model.ISModel`) as ONNX for square inputs
    of side ``size`` (default: its training size); batch and clicks are dynamic axes.

    Raises:
        ValueError: ``size`` is not a multiple of the model's largest patch.
    """
    size = int(size or model.cfg.img_size)
    if size % model.min_size_multiple:
        raise ValueError(f"--size {size} must be a multiple of {model.min_size_multiple} for "
                         "this model")
    model = model.float().cpu().eval()
    sel = model.cfg.selection
    if sel is not None:
        model.backbone.patch_embed.freeze_kernels(sel.small_patch, sel.large_patch)
    channels = 4 if model.with_prev_mask else 3
    image = torch.rand(2, channels, size, size)
    points = torch.tensor([[[size * 0.3, size * 0.4, 0], [-1, -1, -1],
                            [size * 0.6, size * 0.2, 1], [-1, -1, -1]]] * 2).floor()
    points[points < 0] = -1
    # the click rows are 2N (N positive then N negative slots): declared so, the trace needs it
    batch, clicks = torch.export.Dim("batch", min=1), torch.export.Dim("clicks", min=1)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".part")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            _LogitsOnly(model), (image, points), input_names=["image", "points"],
            output_names=["logits"], opset_version=opset, dynamo=True, verbose=False,
            dynamic_shapes={"image": {0: batch}, "points": {0: batch, 1: 2 * clicks}})
    program.model.metadata_props[_META] = json.dumps(_model_facts(model, size))
    program.save(str(tmp))
    os.replace(tmp, output)
    return output


def quantize_onnx_int8(src: str | Path, dst: str | Path) -> Path:
    """``src`` with the weights of its MatMul/Gemm nodes in int8, activations quantised per
    call (onnxruntime dynamic quantisation; activation-by-activation MatMuls stay float)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".part")
    logging.disable(logging.INFO)  # the quantiser logs a line per node on the root logger
    try:
        quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Gemm"],
                         extra_options={"MatMulConstBOnly": True})
    finally:
        logging.disable(logging.NOTSET)
    os.replace(tmp, dst)
    return dst


def cache_dir() -> Path:
    """Where exported models are kept: ``$ISEGM_CACHE``, else ``~/.cache/isegm/onnx``."""
    root = os.environ.get("ISEGM_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "isegm"
    return Path(root) / "onnx"


def _cache_name(source: str | Path | None, model: nn.Module, size: int, int8: bool) -> Path:
    """A file name that changes with the checkpoint file, the settings and the versions."""
    parts: list[Any] = [torch.__version__, OPSET, size, int8,
                        json.dumps(_model_facts(model, size), sort_keys=True)]
    if source is not None and Path(source).is_file():
        st = Path(source).stat()
        parts += [str(Path(source).resolve()), st.st_size, st.st_mtime_ns]
        stem = Path(source).stem
    else:  # no file: the weights themselves
        h = hashlib.sha1()
        for t in model.state_dict().values():
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        parts.append(h.hexdigest())
        stem = "model"
    key = hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()[:16]
    return cache_dir() / f"{stem}-{size}{'-int8' if int8 else ''}-{key}.onnx"


class OnnxModel(nn.Module):
    """An onnxruntime session called like the torch model (``net(image, points)``).

    No parameters (the predictor then feeds float32); ``cfg`` carries ``img_size`` and
    ``arch``; ``with_prev_mask`` and ``min_size_multiple`` are the exported model's.
    """

    def __init__(self, path: str | Path, int8: bool = False,
                 model: nn.Module | None = None, source: str | Path | None = None,
                 threads: int | None = None) -> None:
        super().__init__()
        import onnx
        import onnxruntime as ort

        facts = json.loads({p.key: p.value for p in onnx.load(
            str(path), load_external_data=False).metadata_props}.get(_META, "{}") or "{}")
        if not facts:
            raise ValueError(f"{path}: not an ONNX file written by python -m isegm.export")
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
        self._sessions: dict[int, Any] = {self.size: self._session(path)}

    def _session(self, path: str | Path) -> Any:
        return self._ort.InferenceSession(str(path), self._opts,
                                          providers=["CPUExecutionProvider"])

    @classmethod
    def from_file(cls, path: str | Path, int8: bool = False) -> OnnxModel:
        """A session of an exported ``.onnx`` (quantised to int8 in a cached copy if asked)."""
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
            return cls(q, int8=True, source=path)
        return cls(path, source=path)

    @classmethod
    def from_model(cls, model: nn.Module, size: int | None = None, int8: bool = False,
                   source: str | Path | None = None) -> OnnxModel:
        """Exports ``model`` (once: the file is cached, see :func:`cache_dir`) and opens it."""
        size = int(size or model.cfg.img_size)
        return cls(_exported(model, size, int8, source), int8, model, source)

    def _session_for(self, size: int) -> Any | None:
        if size not in self._sessions and self._torch_model is not None:
            logger.info("onnxruntime: exporting for input side %d", size)
            path = _exported(self._torch_model, size, self.int8, self._source)
            self._sessions[size] = self._session(path)
        return self._sessions.get(size)

    @torch.no_grad()
    def forward(self, image: torch.Tensor, points: torch.Tensor) -> dict:
        """``{'instances': float32 logits [B, 1, H, W]}`` on the device of ``image``."""
        h, w = (int(s) for s in image.shape[2:])
        session = self._session_for(h) if h == w else None
        scale = 1.0
        x, p = image.float(), points.float()
        if session is None:  # resize to the graph's side and back
            session, side = self._sessions[self.size], self.size
            x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
            p = p.clone()
            valid = (p[..., :2] >= 0).all(-1)
            p[..., 0] = torch.where(valid, (p[..., 0] * side / h).floor(), p[..., 0])
            p[..., 1] = torch.where(valid, (p[..., 1] * side / w).floor(), p[..., 1])
            scale = 0.0
        feed = {"image": np.ascontiguousarray(x.cpu().numpy()),
                "points": np.ascontiguousarray(p.cpu().numpy())}
        logits = torch.from_numpy(session.run(None, feed)[0])
        if scale == 0.0:
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        return {"instances": logits.to(image.device, image.dtype)}


def _exported(model: nn.Module, size: int, int8: bool, source: str | Path | None) -> Path:
    """The cached ONNX file of ``model`` at ``size`` (written now if missing)."""
    path = _cache_name(source, model, size, int8)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    if not int8:
        logger.info("exporting %s to ONNX (side %d): %s", source or "the model", size, path)
        return export_onnx(model, path, size)
    return quantize_onnx_int8(_exported(model, size, False, source), path)
