"""Evaluation settings around the network, per checkpoint family (issue 11).

The published MST and SimpleClick numbers were made by evaluation scripts that differ in a few
places that change NoC (SPEC Part II §3.2-§4):

* ``drop_outside_clicks``: MST's ZoomIn drops the clicks that fall outside the crop before the
  network sees them; SimpleClick/RITM keep them.
* ``min_crop_size``: smallest ZoomIn crop side in pixels: MST 20, SimpleClick 200.
* ``davis_scale``: DAVIS is evaluated with a crop side ``1.5 x --inference_size`` on MST
  ``main`` and the 224 branches (672 or 336) and with SimpleClick's ``cvpr`` mode (672); not on
  ``mst-448`` and ``mst-1024``.
* ``pos_embed_resize``: at a size other than the training size, the original scripts first
  resize the stored position grid bicubic without antialias to the input grid and MST resizes
  that again, antialiased, per stream (``two-step``); this project's own default resizes once
  from the stored grid (``once``, antialiased, as in training). See
  :func:`isegm.model.patch_embed.inference_pos_grids`.
* ``objects``: MST ``main`` evaluates only the first object of each sample; the others all.

A checkpoint in the original's file format gets its family's settings; this project's own
checkpoints get :data:`PROJECT` (the behaviour their README figures were measured with). Every
setting can be overridden on the command line (:func:`add_arguments`).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from isegm.model.config import POS_EMBED_RESIZE_MODES

if TYPE_CHECKING:  # the flags and presets are read before torch is imported (evaluate_model.py)
    import torch

    from isegm.inference.transforms import ZoomIn

__all__ = [
    "EvalSettings",
    "FAMILY_SETTINGS",
    "OBJECT_MODES",
    "PROJECT",
    "add_arguments",
    "apply_to_model",
    "checkpoint_source",
    "crop_side",
    "explicit_settings",
    "make_zoom_in",
    "model_family",
    "resolve_settings",
    "select_objects",
    "settings_for_checkpoint",
]

logger = logging.getLogger(__name__)

OBJECT_MODES = ("all", "first")
PROJECT = "project"


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """The evaluation settings that differ between the original scripts (module docstring)."""

    drop_outside_clicks: bool = False
    min_crop_size: int = 20
    davis_scale: float = 1.0
    pos_embed_resize: str = "once"
    objects: str = "all"

    def __post_init__(self) -> None:
        if self.min_crop_size < 1:
            raise ValueError("min_crop_size must be >= 1")
        if not self.davis_scale > 0:
            raise ValueError("davis_scale must be > 0")
        if self.pos_embed_resize not in POS_EMBED_RESIZE_MODES:
            raise ValueError(f"pos_embed_resize must be one of {POS_EMBED_RESIZE_MODES}")
        if self.objects not in OBJECT_MODES:
            raise ValueError(f"objects must be one of {OBJECT_MODES}")


_MST = EvalSettings(drop_outside_clicks=True, min_crop_size=20, pos_embed_resize="two-step")
_MST_DAVIS15 = dataclasses.replace(_MST, davis_scale=1.5)

# family -> the original's settings (SPEC Part II §3.2, §3.3, §4 and the branches' zoom_in.py)
FAMILY_SETTINGS: dict[str, EvalSettings] = {
    PROJECT: EvalSettings(),
    "main": dataclasses.replace(_MST_DAVIS15, objects="first"),
    "mst-448": _MST,
    "mst-1024": _MST,
    "mst-224": _MST_DAVIS15,
    "mst-224-6s": _MST_DAVIS15,
    "mst-224-large": _MST_DAVIS15,
    "at": _MST_DAVIS15,
    "it": _MST_DAVIS15,
    "upconv": _MST_DAVIS15,
    "mst": _MST,  # an MST file of no known branch: what every MST branch shares
    "simpleclick": EvalSettings(min_crop_size=200, davis_scale=1.5, pos_embed_resize="two-step"),
}
_MST_PRESETS = ("main", "mst-448", "mst-224", "mst-224-6s", "mst-1024", "mst-224-large", "at",
                "it", "upconv")


def checkpoint_source(path: str | Path) -> str:
    """``'project'`` for this project's own checkpoint format, else ``'reference'``.

    Reads only the pickle (tensors memory-mapped), so it costs little even for ViT-B files;
    the original's files pickle foreign classes and fail the weights-only load at once.
    """
    import torch

    from isegm.model.checkpoint import CHECKPOINT_FORMAT

    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - anything that is not our format
        return "reference"
    if isinstance(data, Mapping) and data.get("format") == CHECKPOINT_FORMAT:
        return PROJECT
    return "reference"


def model_family(model: torch.nn.Module, source: str = "reference") -> str:
    """The family whose evaluation settings apply to a loaded model (SPEC Part I §1.5).

    ``project`` for this project's own files; ``simpleclick`` for a plain ViT; for MST the
    branch whose selection knobs the checkpoint's sentinels gave, else ``mst``.
    """
    if source == PROJECT:
        return PROJECT
    cfg = getattr(model, "cfg", None)
    if cfg is None:
        return PROJECT
    if cfg.arch == "plainvit":
        return "simpleclick"
    from isegm.model.build import selection_preset

    for name in _MST_PRESETS:
        if cfg.selection == selection_preset(name):
            return name
    return "mst"


def resolve_settings(family: str, overrides: Mapping[str, Any] | None = None) -> EvalSettings:
    """The family's defaults, with every non-None entry of ``overrides`` replacing its field."""
    if family not in FAMILY_SETTINGS:
        raise ValueError(f"unknown evaluation family {family!r}; known: "
                         + ", ".join(FAMILY_SETTINGS))
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    return dataclasses.replace(FAMILY_SETTINGS[family], **given)


def apply_to_model(model: torch.nn.Module, settings: EvalSettings) -> None:
    """Selects the position-embedding resize of the settings on the model's backbone."""
    backbone = getattr(model, "backbone", None)
    if backbone is not None and hasattr(backbone, "pos_embed_resize"):
        backbone.pos_embed_resize = settings.pos_embed_resize
    elif settings.pos_embed_resize != "once":
        logger.warning("the model has no position-embedding resize option: %s ignored",
                       settings.pos_embed_resize)


def crop_side(inference_size: int, dataset_name: str, settings: EvalSettings) -> int:
    """ZoomIn crop side: ``int(inference_size * davis_scale)`` on DAVIS, as the original."""
    scale = settings.davis_scale if dataset_name == "DAVIS" else 1.0
    return int(inference_size * scale)


def make_zoom_in(side: int, settings: EvalSettings) -> ZoomIn:
    """The evaluation's ZoomIn (SPEC Part II §3.3): always on, square crop of ``side``."""
    from isegm.inference.transforms import ZoomIn

    return ZoomIn(target_size=(side, side), skip_clicks=-1, expansion_ratio=1.4,
                  min_crop_size=settings.min_crop_size,
                  drop_outside_clicks=settings.drop_outside_clicks)


class _FirstObjectSample:
    """A dataset sample seen with its first object only."""

    def __init__(self, sample: Any) -> None:
        self._sample = sample
        self.objects_ids = list(sample.objects_ids)[:1]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sample, name)


class _FirstObjectDataset:
    """Dataset view whose samples have only their first object (MST ``main``)."""

    def __init__(self, dataset: Any) -> None:
        self._dataset = dataset

    def __len__(self) -> int:
        return len(self._dataset)

    def get_sample(self, index: int) -> _FirstObjectSample:
        return _FirstObjectSample(self._dataset.get_sample(index))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dataset, name)


def select_objects(dataset: Any, settings: EvalSettings) -> Any:
    """The dataset as the settings evaluate it: every object, or only the first per sample."""
    return _FirstObjectDataset(dataset) if settings.objects == "first" else dataset


# ------------------------------------------------------------------------------ command line
_FLAGS = ("drop_outside_clicks", "min_crop_size", "davis_scale", "pos_embed_resize", "objects")


def _defaults_table() -> str:
    rows = []
    for fam in ("main", "mst-448", "mst-224", "simpleclick", PROJECT):
        s = FAMILY_SETTINGS[fam]
        rows.append(f"{fam}: drop-outside {'on' if s.drop_outside_clicks else 'off'}, "
                    f"min crop {s.min_crop_size}, DAVIS x{s.davis_scale:g}, pos-embed "
                    f"{s.pos_embed_resize}, objects {s.objects}")
    return "; ".join(rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the settings' flags (default None: the checkpoint family's value)."""
    g = parser.add_argument_group(
        "evaluation settings",
        "Defaults follow the checkpoint: the original's settings for a file in the original's "
        "format, by variant (" + _defaults_table() + "; the 224 branches, AT/IT/upconv as "
        "mst-224, mst-1024 as mst-448). Each flag overrides its default; the values used are "
        "in summary.json (rows[].eval_settings).")
    g.add_argument("--eval-family", choices=list(FAMILY_SETTINGS), default=None,
                   help="take this family's defaults instead of the checkpoint's")
    g.add_argument("--drop-outside-clicks", action=argparse.BooleanOptionalAction, default=None,
                   help="drop clicks outside the ZoomIn crop before the network (MST)")
    g.add_argument("--min-crop-size", type=int, default=None,
                   help="smallest ZoomIn crop side in pixels (MST 20, SimpleClick 200)")
    g.add_argument("--davis-scale", type=float, default=None,
                   help="crop side multiplier on DAVIS (main, 224 branches, SimpleClick 1.5)")
    g.add_argument("--pos-embed-resize", choices=POS_EMBED_RESIZE_MODES, default=None,
                   help="position embeddings at another size: 'once' from the stored grid "
                        "(antialiased) or the original scripts' 'two-step'")
    g.add_argument("--objects", choices=OBJECT_MODES, default=None,
                   help="objects per sample: all, or the first only (MST main)")


def explicit_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (None: family default), plus ``eval_family``.

    Raises:
        ValueError: a value out of range (one line).
    """
    out = {k: getattr(args, k, None) for k in _FLAGS}
    if out["min_crop_size"] is not None and out["min_crop_size"] < 1:
        raise ValueError("--min-crop-size must be >= 1")
    if out["davis_scale"] is not None and not out["davis_scale"] > 0:
        raise ValueError("--davis-scale must be > 0")
    out["eval_family"] = getattr(args, "eval_family", None)
    return out


def settings_for_checkpoint(path: str | Path, model: torch.nn.Module,
                            explicit: Mapping[str, Any]) -> tuple[str, EvalSettings]:
    """(family, settings) of a loaded checkpoint, with the explicit flags applied."""
    family = explicit.get("eval_family") or model_family(model, checkpoint_source(path))
    return family, resolve_settings(family, {k: explicit.get(k) for k in _FLAGS})
