"""ONNX export of an interactive segmentation model (issue 25), and the cache of exported files.

Two forms, both at one square input side ``S`` with the batch and the click rows ``2N`` as
dynamic axes, exported with ``torch.onnx.export(dynamo=True)`` (the TorchScript exporter
cannot trace the position-embedding resize), opset :data:`OPSET`:

* the **full graph** (:func:`export_onnx`, what ``python -m isegm.export`` writes):
  ``(image [B, 4|3, S, S], points [B, 2N, 3]) -> logits [B, 1, S, S]``;
* the **pair** (:func:`export_onnx_pair`, what the onnxruntime backend runs for a model with
  ``encode_image`` / ``forward_embedded``): an *encoder* ``rgb [B, 3, S, S] ->`` the per-image
  tensor entries of the embedding (output names = the entry names: ``x``, ``x_s``, ``x_l``
  for MST, ``x`` for the plain ViT), and a *click graph* ``(those entries, prev_mask
  [B, 1, S, S] (only with a previous-mask channel), points) -> logits``. The predictor then
  runs the encoder once per image and only the click graph per click, as with torch.

  The shared position embeddings (entries ``pos*``, ``[1, N, C]``, weight-only) are constants
  of the click graph, not encoder outputs: they are the same for every image, so an embedding
  of the pair holds only batched tensors (plus the side facts ``grid`` / ``size``, which are
  plain Python values, recorded in the graph metadata and rebuilt by the backend).

MST's pseudo-inverse resampled patch kernels are weight-only and enter the graphs as constants
(:meth:`isegm.model.vit.PatchEmbed.freeze_kernels`). int8: onnxruntime's dynamic quantisation
of the MatMuls whose second input is a weight (the Linear layers), of each graph.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["OPSET", "cache_dir", "encoder_file", "export_onnx", "export_onnx_pair",
           "exported", "quantize_onnx_int8", "read_facts"]

logger = logging.getLogger(__name__)

OPSET = 18
META = "isegm"  # metadata key of the model facts the backend needs


class _LogitsOnly(nn.Module):
    """``model(image, points)['instances']``: the one output the full graph has."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        return self.model(image, points)["instances"]


class _Encoder(nn.Module):
    """``model.encode_image(rgb)``'s batched tensor entries, in the order of ``entries``."""

    def __init__(self, model: nn.Module, entries: list[str]) -> None:
        super().__init__()
        self.model = model
        self.entries = entries

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, ...]:
        emb = self.model.encode_image(rgb)
        return tuple(emb[k] for k in self.entries)


class _Clicks(nn.Module):
    """``model.forward_embedded``'s logits from the batched entries; the shared entries
    (position embeddings) are buffers, hence constants of the graph, and the side facts
    (``grid``, ``size``) Python values."""

    def __init__(self, model: nn.Module, entries: list[str], shared: dict[str, torch.Tensor],
                 static: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.entries = entries
        self.static = static
        self.shared_keys = list(shared)
        for k, v in shared.items():
            self.register_buffer(f"shared_{k}", v.detach().clone(), persistent=False)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        n = len(self.entries)
        emb: dict[str, Any] = dict(zip(self.entries, inputs[:n]))
        emb.update({k: getattr(self, f"shared_{k}") for k in self.shared_keys})
        emb.update(self.static)
        prev = inputs[n] if self.model.with_prev_mask else None
        return self.model.forward_embedded(emb, prev, inputs[-1])["instances"]


def _model_facts(model: nn.Module, size: int) -> dict[str, Any]:
    cfg = model.cfg
    return {"size": size, "img_size": int(cfg.img_size), "arch": cfg.arch,
            "with_prev_mask": bool(model.with_prev_mask),
            "min_size_multiple": int(model.min_size_multiple),
            "pos_embed_resize": getattr(model.backbone, "pos_embed_resize", "once")}


def read_facts(path: str | Path) -> dict[str, Any]:
    """The model facts an exported file carries (``{}`` for an ONNX file not written here)."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False)
             .metadata_props}
    return json.loads(props.get(META, "{}") or "{}")


def _prepared(model: nn.Module, size: int | None) -> tuple[nn.Module, int]:
    """``model`` in float32 eval mode on the CPU with its resampled kernels frozen, and the
    checked side."""
    size = int(size or model.cfg.img_size)
    if size % model.min_size_multiple:
        raise ValueError(f"--size {size} must be a multiple of {model.min_size_multiple} for "
                         "this model")
    model = model.float().cpu().eval()
    sel = model.cfg.selection
    if sel is not None:
        model.backbone.patch_embed.freeze_kernels(sel.small_patch, sel.large_patch)
    return model, size


def _example_points(size: int) -> torch.Tensor:
    """Two rows of 2 + 2 click slots (the rows are 2N: N positive then N negative)."""
    points = torch.tensor([[[size * 0.3, size * 0.4, 0], [-1, -1, -1],
                            [size * 0.6, size * 0.2, 1], [-1, -1, -1]]] * 2).floor()
    points[points < 0] = -1
    return points


def _save(module: nn.Module, args: tuple, names: tuple[list[str], list[str]],
          dynamic: tuple, facts: dict[str, Any], output: Path, opset: int) -> Path:
    """Exports ``module(*args)`` to ``output`` (written whole or not at all)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".part")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module, args, input_names=names[0], output_names=names[1], opset_version=opset,
            dynamo=True, verbose=False, dynamic_shapes=dynamic)
    program.model.metadata_props[META] = json.dumps(facts)
    program.save(str(tmp))
    os.replace(tmp, output)
    return output


def _dims() -> tuple[Any, Any]:
    return torch.export.Dim("batch", min=1), torch.export.Dim("clicks", min=1)


def export_onnx(model: nn.Module, output: str | Path, size: int | None = None,
                opset: int = OPSET) -> Path:
    """Writes ``model`` (an :class:`~isegm.model.is_model.ISModel`) as one full ONNX graph for
    square inputs of side ``size`` (default: its training size).

    Raises:
        ValueError: ``size`` is not a multiple of the model's largest patch.
    """
    model, size = _prepared(model, size)
    image = torch.rand(2, 4 if model.with_prev_mask else 3, size, size)
    batch, clicks = _dims()
    dynamic = ({0: batch}, {0: batch, 1: 2 * clicks})
    return _save(_LogitsOnly(model), (image, _example_points(size)),
                 (["image", "points"], ["logits"]), dynamic, _model_facts(model, size),
                 Path(output), opset)


def encoder_file(clicks: str | Path) -> Path:
    """The encoder graph that goes with the click graph ``clicks`` (``*.clicks.onnx``)."""
    clicks = Path(clicks)
    return clicks.with_name(clicks.name.removesuffix(".clicks.onnx") + ".encoder.onnx")


def export_onnx_pair(model: nn.Module, output: str | Path, size: int | None = None,
                     opset: int = OPSET) -> Path:
    """Writes the encoder and the click graph of ``model`` (which has ``encode_image`` /
    ``forward_embedded``): ``output`` (``*.clicks.onnx``) and :func:`encoder_file` of it.
    The encoder is written first, so an existing click graph means a complete pair.

    Raises:
        ValueError: ``size`` is not a multiple of the model's largest patch, or ``output`` does
            not end in ``.clicks.onnx``.
    """
    output = Path(output)
    if not output.name.endswith(".clicks.onnx"):
        raise ValueError(f"{output}: the click graph's name must end in .clicks.onnx")
    model, size = _prepared(model, size)
    rgb = torch.rand(2, 3, size, size)
    with torch.no_grad():
        emb = model.encode_image(rgb)
    entries = [k for k, v in emb.items() if torch.is_tensor(v) and not k.startswith("pos")]
    shared = {k: v for k, v in emb.items() if torch.is_tensor(v) and k.startswith("pos")}
    static = {k: v for k, v in emb.items() if not torch.is_tensor(v)}
    facts = {**_model_facts(model, size), "entries": entries,
             "static": {k: list(v) if isinstance(v, tuple) else v for k, v in static.items()}}
    batch, clicks = _dims()
    _save(_Encoder(model, entries), (rgb,), (["rgb"], entries), ({0: batch},),
          {**facts, "graph": "encoder"}, encoder_file(output), opset)
    prev = [torch.rand(2, 1, size, size)] if model.with_prev_mask else []
    args = (*(emb[k] for k in entries), *prev, _example_points(size))
    names = [*entries, *(["prev_mask"] if prev else []), "points"]
    dynamic = ({0: batch},) * (len(args) - 1) + ({0: batch, 1: 2 * clicks},)
    return _save(_Clicks(model, entries, shared, static), args, (names, ["logits"]),
                 (dynamic,), {**facts, "graph": "clicks"}, output, opset)


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


def _cache_name(source: str | Path | None, model: nn.Module, size: int, int8: bool,
                graph: str) -> Path:
    """A file name that changes with the checkpoint file, the settings, the graph form
    (``full`` or ``clicks``, the pair) and the versions."""
    parts: list[Any] = [torch.__version__, OPSET, size, int8, graph,
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
    suffix = ".onnx" if graph == "full" else f".{graph}.onnx"
    return cache_dir() / f"{stem}-{size}{'-int8' if int8 else ''}-{key}{suffix}"


def exported(model: nn.Module, size: int, int8: bool, source: str | Path | None,
             pair: bool = False) -> Path:
    """The cached export of ``model`` at ``size`` (written now if missing): the full graph, or
    with ``pair`` the click graph of the pair, whose encoder is :func:`encoder_file` of it."""
    path = _cache_name(source, model, size, int8, "clicks" if pair else "full")
    if path.is_file() and (not pair or encoder_file(path).is_file()):
        return path
    if not int8:
        logger.info("exporting %s to ONNX (%s, side %d): %s", source or "the model",
                    "encoder + click graph" if pair else "full graph", size, path)
        return (export_onnx_pair if pair else export_onnx)(model, path, size)
    src = exported(model, size, False, source, pair)
    if pair:
        quantize_onnx_int8(encoder_file(src), encoder_file(path))
    return quantize_onnx_int8(src, path)
