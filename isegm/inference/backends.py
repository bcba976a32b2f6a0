"""A ready inference model for a precision and a backend (issue 25).

:func:`load_inference_model` is what the evaluation, the annotation session and the server call;
:func:`with_precision` does the same for a model already loaded (the evaluator applies its
evaluation settings first). Whatever they return is called by
:class:`~isegm.inference.predictor.NoBRSPredictor` exactly like the plain model:
``net(image [B, 4, H, W], points [B, 2N, 3])['instances']`` float32 logits, and
``encode_image`` / ``forward_embedded`` (the per-click path with the cached image; for
onnxruntime from a checkpoint, an encoder graph and a click graph).

* ``fp32``: the model itself (nothing changes).
* ``bf16`` / ``fp16``: :class:`AutocastModel`, autocast around each call. The Linear weights
  (almost all of the parameters and of the work) are stored in the autocast dtype once, so a
  call does not cast them again; outputs come back in float32.
* ``int8`` (CPU): dynamic quantisation of the Linear layers (int8 weights, activations
  quantised per call; torch's fbgemm / onednn kernels).
* backend ``onnxruntime`` (CPU; fp32 or int8): the model exported to ONNX
  (:mod:`isegm.inference.onnx_export`) as an image encoder and a click graph, run by
  onnxruntime sessions (:mod:`isegm.inference.onnx_backend`); a ``.onnx`` file from
  ``python -m isegm.export`` (one full graph) runs whole per click.

Which precisions a processor offers, and the flags, are in the torch-free
:mod:`isegm.inference.backends_cli`.
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from isegm.inference.backends_cli import check_precision

__all__ = ["AutocastModel", "load_inference_model", "quantize_int8", "with_precision"]

logger = logging.getLogger(__name__)

_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


class AutocastModel(nn.Module):
    """The model run under ``torch.autocast(dtype)``; float32 in and out.

    The wrapped model is not a registered submodule, so this module has no parameters: the
    predictor, which takes its input dtype from the network's first parameter, keeps feeding
    float32. Attributes it does not have (``cfg``, ``with_prev_mask``, ``min_size_multiple``,
    ``backbone`` ...) are the wrapped model's.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype, device_type: str) -> None:
        super().__init__()
        object.__setattr__(self, "inner", model)
        self.dtype = dtype
        self.device_type = device_type
        # autocast casts a float32 weight at every call (its cache lives for one autocast
        # region): cast the Linear weights once; autocast would round the same float32 values
        # to the same bf16 ones, so the results are autocast's
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.to(dtype)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(object.__getattribute__(self, "inner"), name)

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device_type, dtype=self.dtype)

    def encode_image(self, rgb: torch.Tensor) -> dict:
        with self._autocast():
            return self.inner.encode_image(rgb)

    def forward_embedded(self, emb: dict, prev_mask: torch.Tensor | None,
                         points: torch.Tensor) -> dict:
        with self._autocast():
            out = self.inner.forward_embedded(emb, prev_mask, points)
        return _float_outputs(out, torch.float32)

    def forward(self, image: torch.Tensor, points: torch.Tensor) -> dict:
        with self._autocast():
            out = self.inner(image, points)
        return _float_outputs(out, image.dtype)


def _float_outputs(out: dict, dtype: torch.dtype) -> dict:
    """The logits (``instances``, ``instances_lowres``) in ``dtype``, the rest as they are."""
    return {k: v.to(dtype) if k.startswith("instances") and torch.is_tensor(v) else v
            for k, v in out.items()}


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` dynamically quantised to int8 (CPU).

    ``torch.ao.quantization.quantize_dynamic`` is deprecated in favour of torchao, whose CPU
    int8 path needs ``torch.compile`` to be fast; the eager fbgemm kernels used here are the
    fastest eager option measured (BENCHMARKS.md, ``benchmarks/bench_precision.py``).
    """
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notices, once per layer
        return quantize_dynamic(copy.deepcopy(model).cpu().eval(), {nn.Linear},
                                dtype=torch.qint8)


def with_precision(model: nn.Module, precision: str = "fp32", device: str | torch.device = "cpu",
                   backend: str = "torch", *, size: int | None = None,
                   source: str | Path | None = None) -> nn.Module:
    """``model`` (eval mode, on ``device``) made ready for ``precision`` and ``backend``.

    Args:
        size: square input side the onnxruntime backend exports for (default: the model's
            training size; other input sizes are exported on first use).
        source: the checkpoint the model came from (names the cached ONNX file).

    The bf16/fp16 wrapper casts the Linear weights of ``model`` in place: pass a model that
    is not used in float32 elsewhere.

    Raises:
        ValueError: a precision or backend this device or processor does not offer (one line).
    """
    device = torch.device(device)
    info = check_precision(precision, backend, device.type)
    if precision != "fp32" or backend != "torch":
        logger.info("%s, %s backend: %s", precision, backend, info)
    if backend == "onnxruntime":
        from isegm.inference.onnx_backend import OnnxModel

        return OnnxModel.from_model(model, size=size, int8=precision == "int8", source=source)
    if precision == "fp32":
        return model
    if precision == "int8":
        return quantize_int8(model)
    return AutocastModel(model, _AUTOCAST[precision], device.type)


def load_inference_model(checkpoint: str | Path, device: str | torch.device = "cpu",
                         precision: str = "fp32", backend: str = "torch", *,
                         variant: str | None = None, size: int | None = None) -> nn.Module:
    """The model of ``checkpoint`` ready to predict with ``precision`` on ``backend``.

    ``checkpoint``: any file :func:`isegm.inference.utils.load_is_model` reads, or (backend
    onnxruntime) a ``.onnx`` file written by ``python -m isegm.export``.

    Raises:
        CheckpointError: an unreadable checkpoint (one line).
        ValueError: a precision or backend this device or processor does not offer (one line).
    """
    check_precision(precision, backend, torch.device(device).type)  # before the loading
    if str(checkpoint).endswith(".onnx"):
        if backend != "onnxruntime":
            raise ValueError(f"{checkpoint}: an ONNX file needs --backend onnxruntime")
        from isegm.inference.onnx_backend import OnnxModel

        return OnnxModel.from_file(checkpoint, int8=precision == "int8")
    from isegm.inference.utils import load_is_model

    model = load_is_model(checkpoint, device, variant=variant)
    return with_precision(model, precision, device, backend, size=size, source=checkpoint)
