"""Reading and writing checkpoints: this project's own, the published MST / SimpleClick / RITM
files, and MAE pretraining weights.

* **Own format** (``save_checkpoint``): ``{'format': 'isegm', 'version', 'config', 'model', ...}``
  with the config as plain data, so it loads with ``torch.load(weights_only=True)``.
* **Reference format** (``{'state_dict', 'config'}``): the config pickles classes of the original
  package. It is read with the restricted unpickler of :mod:`isegm.utils.safe_pickle`, which
  resolves only tensor-rebuilding and container globals and turns every other global into an
    inert placeholder, so no code from the file runs and the original package is not needed.
  ``main`` and ``mst-448`` pickle the same class and params; the state dict's sentinel keys and
  shapes tell the variant (SPEC §1.5).
* **MAE pretraining** (``{'model': {...}}``, unprefixed encoder keys): not a model; refused here
  with a hint, and loaded into a backbone for training by :mod:`isegm.model.pretrained`.

Every mismatch is a :class:`CheckpointError` whose one-line message names the file and the
missing / unexpected keys or mismatched shapes. Loading is strict; the only keys dropped are
listed explicitly (``_UNUSED_REFERENCE_KEYS``).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from isegm.utils.safe_pickle import plain_data, restricted_pickle_module

from .build import selection_preset
from .config import ModelConfig
from .is_model import ISModel

__all__ = [
    "CheckpointError",
    "save_checkpoint",
    "read_checkpoint",
    "load_model_checkpoint",
    "model_from_reference",
    "config_from_reference",
    "reference_state_dict_filter",
    "CHECKPOINT_FORMAT",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "isegm"
CHECKPOINT_VERSION = 1
_MST_CLASS = "isegm.model.is_adaptivevit_model.AdaptiveVitModel"
_PLAIN_CLASSES = ("isegm.model.is_plainvit_model.PlainVitModel",)
_VARIANTS = ("at", "it")


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable, of the wrong kind or does not fit the model."""


def read_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint file into plain Python data without executing code from it.

    Raises:
        CheckpointError: the file is missing, truncated/corrupt or not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as first:  # noqa: BLE001 - fall back to the restricted unpickler
        if not _looks_like_pickle_problem(first):
            raise CheckpointError(
                f"{path}: not a readable PyTorch checkpoint "
                f"(truncated or corrupt?): {_one_line(first)}"
            ) from None
        try:
            data = torch.load(
                path, map_location="cpu", weights_only=False, pickle_module=restricted_pickle_module
            )
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(
                f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {_one_line(e)}"
            ) from None
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path}: expected a dict checkpoint, found {type(data).__name__}")
    return dict(data)


def _looks_like_pickle_problem(e: Exception) -> bool:
    msg = str(e)
    return "Weights only load failed" in msg or "weights_only" in msg or "Unsupported global" in msg


def _one_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


# --------------------------------------------------------------------------- reference configs
def _param(params: Mapping, name: str, default: Any = None) -> Any:
    entry = params.get(name)
    if isinstance(entry, Mapping) and "value" in entry:
        return entry["value"]
    return default


def _block_ids(sd: Mapping[str, Tensor], pattern: str) -> list[int]:
    rx = re.compile(rf"^backbone\.blocks\.(\d+)\.{pattern}\.")
    return sorted({int(m.group(1)) for k in sd if (m := rx.match(k))})


def _detect_selection(sd: Mapping[str, Tensor], embed_dim: int, variant: str | None, path: str):
    """MST selection knobs from the sentinel keys and shapes of a reference state dict."""
    ids_score = _block_ids(sd, "score")
    ids_score_s = _block_ids(sd, "score_s")
    ids_upconv = _block_ids(sd, "sr_s")
    if ids_upconv:
        return selection_preset("upconv", score_blocks=tuple(ids_upconv))
    if ids_score_s:
        if variant not in _VARIANTS:
            raise CheckpointError(
                f"{path}: an AT/IT ablation checkpoint (the two have identical keys and configs); "
                f"pass variant='at' or variant='it'"
            )
        return selection_preset(variant, score_blocks=tuple(ids_score_s))
    if not ids_score:
        raise CheckpointError(
            f"{path}: MST checkpoint without any selection block "
            f"(no backbone.blocks.<i>.score.* keys)"
        )
    b = f"backbone.blocks.{ids_score[0]}."
    C = embed_dim
    expert = sd.get(b + "score.cross_attn.proj.expert_s.0.weight")
    cross_mlp = sd.get(b + "score.cross_mlp.fc1.weight")
    if expert is None or cross_mlp is None:
        raise CheckpointError(f"{path}: unrecognised MST selection block layout at {b}score")
    expert_ratio = expert.shape[0] / C
    mlp_ratio = cross_mlp.shape[0] / C
    family = "main" if expert_ratio == 1 else ("mst-448" if mlp_ratio == 4 else "mst-224")
    sr = sd.get(b + "score.cross_attn.sr.weight")
    return selection_preset(
        family,
        score_blocks=tuple(ids_score),
        score_sr=int(sr.shape[-1]) if sr is not None else 1,
        expert_hidden_ratio=expert_ratio,
        cross_mlp_ratio=mlp_ratio,
        use_gamma2=(b + "gamma2") in sd,
        use_score_mlp=(b + "score_mlp.fc1.weight") in sd,
    )


def config_from_reference(
    config: Mapping,
    sd: Mapping[str, Tensor],
    path: str = "<checkpoint>",
    variant: str | None = None,
) -> ModelConfig:
    """Translate a reference ``@serialize`` config (plain data) + its state dict into a
    :class:`ModelConfig`."""
    cls = config.get("class")
    params = config.get("params", {})
    bb = _param(params, "backbone_params") or {}
    neck = _param(params, "neck_params") or {}
    head = _param(params, "head_params") or {}
    if cls == _MST_CLASS:
        arch = "mst"
    elif cls in _PLAIN_CLASSES:
        arch = "plainvit"
    else:
        raise CheckpointError(
            f"{path}: unsupported model class {cls!r} (expected {_MST_CLASS} "
            f"or {_PLAIN_CLASSES[0]})"
        )
    img = bb.get("img_size", 448)
    img = int(img[0] if isinstance(img, (list, tuple)) else img)
    patch = bb.get("patch_size", 16)
    patch = int(patch[0] if isinstance(patch, (list, tuple)) else patch)
    mean, std = _param(params, "norm_mean_std", ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
    upsample = head.get("upsample", "x1")
    embed_dim = int(bb.get("embed_dim", 768))
    cfg = dict(
        arch=arch,
        img_size=img,
        patch_size=patch,
        embed_dim=embed_dim,
        depth=int(bb.get("depth", 12)),
        num_heads=int(bb.get("num_heads", 12)),
        mlp_ratio=float(bb.get("mlp_ratio", 4)),
        qkv_bias=bool(bb.get("qkv_bias", True)),
        neck_out_dims=tuple(neck.get("out_dims", (128, 256, 512, 1024))),
        head_channels={"x1": 1, "x2": 2, "x4": 4}[upsample] * int(head.get("channels", 256)),
        upsample=upsample,
        head_dropout=float(head.get("dropout_ratio", 0.1)),
        norm_radius=float(_param(params, "norm_radius", 5)),
        use_disks=bool(_param(params, "use_disks", True)),
        with_prev_mask=bool(_param(params, "with_prev_mask", True)),
        window_attention=not bool(_param(params, "random_split", False)),
        norm_mean=tuple(mean),
        norm_std=tuple(std),
    )
    if not cfg["use_disks"]:
        raise CheckpointError(
            f"{path}: distance-map click encoding (use_disks=False) is not supported"
        )
    if arch == "mst":
        cfg["selection"] = _detect_selection(sd, embed_dim, variant, path)
    return ModelConfig(**cfg)


# keys of the reference files that no forward pass uses (SimpleClick's classifier remnants and
# the up-convs of an 'x1' head); the loader drops exactly these, everything else is strict
_UNUSED_REFERENCE_KEYS = re.compile(
    r"^backbone\.(cls_token|fc_norm\.(weight|bias)|head\.(weight|bias))$"
)
_UPCONV_KEYS = re.compile(r"^head\.up_conv[12]\.")


def reference_state_dict_filter(sd: Mapping[str, Tensor], cfg: ModelConfig) -> dict[str, Tensor]:
    """Reference (MST / SimpleClick) state dict → this project's names.

    Names are already shared; this drops the keys listed in ``_UNUSED_REFERENCE_KEYS`` and, for an
    ``x1`` head, the unused up-convs, and strips a DDP ``module.`` prefix.
    """
    out = {}
    for k, v in sd.items():
        k = k[len("module.") :] if k.startswith("module.") else k
        if _UNUSED_REFERENCE_KEYS.match(k) or (cfg.upsample == "x1" and _UPCONV_KEYS.match(k)):
            continue
        out[k] = v
    return out


# --------------------------------------------------------------------------- strict loading
def _describe(keys: Iterable[str], limit: int = 6) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def _first_non_finite(sd: Mapping[str, Tensor]) -> str | None:
    """Name of the first floating-point tensor holding a NaN or an Inf, or None: such weights
    load silently and then give empty masks."""
    for key, value in sd.items():
        if torch.is_tensor(value) and (value.is_floating_point() or value.is_complex()) \
                and not bool(torch.isfinite(value).all()):
            return key
    return None


def load_state_dict_strict(
    model: nn.Module, sd: Mapping[str, Tensor], path: str, allow_missing: re.Pattern | None = None
) -> list[str]:
    """``load_state_dict`` that fails with one line listing missing / unexpected keys and shape
    mismatches. Keys matching ``allow_missing`` may be absent; returns those that were."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    allowed = [k for k in missing if allow_missing is not None and allow_missing.match(k)]
    missing = [k for k in missing if k not in allowed]
    unexpected = [k for k in sd if k not in own]
    shapes = [
        f"{k} {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sd
        if k in own and tuple(sd[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_describe(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_describe(unexpected)}")
    if shapes:
        problems.append(f"shape mismatch: {_describe(shapes, 3)}")
    if problems:
        raise CheckpointError(f"{path}: does not fit the model: " + "; ".join(problems))
    bad = _first_non_finite(sd)
    if bad is not None:
        raise CheckpointError(f"{path}: weights contain NaN or Inf (first bad tensor: {bad}); "
                              f"the file is damaged or from a diverged training run")
    model.load_state_dict(sd, strict=False)
    return allowed


def _float_dtype(sd: Mapping[str, Tensor]) -> torch.dtype:
    dtypes = {v.dtype for v in sd.values() if torch.is_tensor(v) and v.is_floating_point()}
    return torch.float64 if dtypes == {torch.float64} else torch.float32


def model_from_reference(
    ckpt: Mapping, path: str = "<checkpoint>", variant: str | None = None
) -> ISModel:
    """Build and strictly load a model from a reference-format checkpoint dict."""
    sd = ckpt["state_dict"]
    config = plain_data(ckpt.get("config"))
    if not isinstance(config, Mapping):
        raise CheckpointError(f"{path}: reference checkpoint without a model config")
    cfg = config_from_reference(config, sd, path, variant)
    model = ISModel(cfg).to(_float_dtype(sd))
    load_state_dict_strict(model, reference_state_dict_filter(sd, cfg), path)
    return model


def load_model_checkpoint(
    path: str | Path,
    device: str | torch.device = "cpu",
    variant: str | None = None,
    eval_mode: bool = True,
) -> ISModel:
    """Load an interactive model from any supported checkpoint file (see module docstring).

    The model keeps the checkpoint's float dtype (float64 weights give a float64 model).

    Raises:
        CheckpointError: one line naming the file and what is wrong.
    """
    path = str(path)
    ckpt = read_checkpoint(path)
    if ckpt.get("format") == CHECKPOINT_FORMAT:
        try:
            cfg = ModelConfig.from_dict(ckpt["config"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: malformed model config: {_one_line(e)}") from None
        sd = ckpt["model"]
        model = ISModel(cfg).to(_float_dtype(sd))
        load_state_dict_strict(model, sd, path)
    elif "state_dict" in ckpt:
        model = model_from_reference(ckpt, path, variant)
    elif "model" in ckpt and isinstance(ckpt["model"], Mapping):
        raise CheckpointError(
            f"{path}: an MAE/ImageNet pretraining file (backbone weights only), "
            f"not an interactive segmentation model; use it to initialise "
            f"training (load_mae_weights)"
        )
    else:
        raise CheckpointError(
            f"{path}: unknown checkpoint layout (top-level keys: {_describe(map(str, ckpt))})"
        )
    model = model.to(device)
    if eval_mode:
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
    return model


def save_checkpoint(path: str | Path, model: ISModel, **extra: Any) -> Path:
    """Write a self-describing checkpoint atomically (temp file + rename: a kill never leaves a
    truncated file). ``extra`` must be plain data / tensors (epoch, optimizer state, ...)."""
    model = getattr(model, "module", model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": model.cfg.to_dict(),
        "model": model.state_dict(),
        **extra,
    }
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600 files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def export_weights(src: str | Path, dst: str | Path) -> Path:
    """Write the model of any supported checkpoint as a weights-only checkpoint (no optimizer
    or trainer state): what goes into ``weights/``."""
    model = load_model_checkpoint(src, "cpu", eval_mode=False)
    return save_checkpoint(dst, model, source=Path(src).name)


if __name__ == "__main__":
    import sys

    from isegm.utils.cli import ArgumentParser

    parser = ArgumentParser(
        prog="python -m isegm.model.checkpoint",
        description="Export the model of a checkpoint (ours or a published one) without the "
        "training state.")
    parser.add_argument("command", choices=["export"])
    parser.add_argument("src")
    parser.add_argument("dst")
    args = parser.parse_args()
    try:
        print(export_weights(args.src, args.dst))
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
