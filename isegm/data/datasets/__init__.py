"""Dataset readers and the evaluation registry (``--datasets`` name → reader).

``EVAL_DATASETS[name] = (class, config key, kwargs)``; :func:`get_eval_dataset` builds one from
a loaded ``config.yml`` (:func:`isegm.utils.config.load_config`). The config key is ``None`` for
the synthetic benchmarks, which need no files. ``ImagesDir:<path>`` reads a generic folder.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..base import DatasetError, ISDataset
from .berkeley import BerkeleyDataset
from .coco import CocoDataset
from .coco_lvis import CocoLvisDataset
from .davis import DavisDataset
from .grabcut import GrabCutDataset
from .hqseg44k import HQSeg44kDataset
from .images_dir import ImagesDirDataset
from .love_da import LoveDADataset
from .lvis import LvisDataset
from .pascalvoc import PascalVocDataset
from .photo_scenes import PhotoScenesDataset, PhotoScenesEvalDataset
from .sbd import SBDDataset, SBDEvaluationDataset
from .synthetic import SyntheticEvalDataset, SyntheticMultiScaleDataset

__all__ = [
    "EVAL_DATASETS", "IMAGES_DIR_PREFIX", "get_eval_dataset", "BerkeleyDataset", "CocoDataset",
    "CocoLvisDataset", "DavisDataset", "GrabCutDataset", "HQSeg44kDataset", "ImagesDirDataset",
    "LoveDADataset", "LvisDataset", "PascalVocDataset", "PhotoScenesDataset",
    "PhotoScenesEvalDataset", "SBDDataset", "SBDEvaluationDataset",
    "SyntheticEvalDataset", "SyntheticMultiScaleDataset",
]

IMAGES_DIR_PREFIX = "ImagesDir:"

EVAL_DATASETS: dict[str, tuple[type[ISDataset], str | None, dict[str, Any]]] = {
    "GrabCut": (GrabCutDataset, "GRABCUT_PATH", {}),
    "Berkeley": (BerkeleyDataset, "BERKELEY_PATH", {}),
    "DAVIS": (DavisDataset, "DAVIS_PATH", {"name": "DAVIS"}),
    "COCO_MVal": (DavisDataset, "COCO_MVAL_PATH", {"name": "COCO_MVal"}),
    "PascalVOC": (PascalVocDataset, "PASCALVOC_PATH", {"split": "val"}),
    "SBD": (SBDEvaluationDataset, "SBD_PATH", {"split": "val"}),
    "SBD_Train": (SBDEvaluationDataset, "SBD_PATH", {"split": "train"}),
    "LoveDA": (LoveDADataset, "IS_LoveDA_PATH", {"split": "val", "scale": "all"}),
    "LoveDASMALL": (LoveDADataset, "IS_LoveDA_PATH", {"split": "val", "scale": "small"}),
    "LoveDAMEDIUM": (LoveDADataset, "IS_LoveDA_PATH", {"split": "val", "scale": "medium"}),
    "LoveDALARGE": (LoveDADataset, "IS_LoveDA_PATH", {"split": "val", "scale": "large"}),
    "LoveDAHUGE": (LoveDADataset, "IS_LoveDA_PATH", {"split": "val", "scale": "huge"}),
    "HQSeg44k": (HQSeg44kDataset, "HQSeg44K_PATH", {"split": "val"}),
    "Synthetic": (SyntheticEvalDataset, None, {"scale": "all", "num_samples": 150}),
    "SyntheticSMALL": (SyntheticEvalDataset, None, {"scale": "small", "num_samples": 100}),
    "SyntheticMEDIUM": (SyntheticEvalDataset, None, {"scale": "medium", "num_samples": 100}),
    "SyntheticLARGE": (SyntheticEvalDataset, None, {"scale": "large", "num_samples": 100}),
    # scenes composed from the held-out photographs of PHOTOS_PATH (isegm.data.photos)
    "PhotoScenes": (PhotoScenesEvalDataset, "PHOTOS_PATH", {"scale": "all", "num_samples": 150}),
    "PhotoScenesSMALL": (PhotoScenesEvalDataset, "PHOTOS_PATH", {"scale": "small",
                                                                 "num_samples": 50}),
    "PhotoScenesMEDIUM": (PhotoScenesEvalDataset, "PHOTOS_PATH", {"scale": "medium",
                                                                  "num_samples": 50}),
    "PhotoScenesLARGE": (PhotoScenesEvalDataset, "PHOTOS_PATH", {"scale": "large",
                                                                 "num_samples": 50}),
}


def _check_path(name: str, key: str, path: Any) -> Path:
    """The dataset folder, or a one-line ``DatasetError`` naming the dataset and config key."""
    if path is None or str(path).strip() == "":
        raise DatasetError(f"dataset {name}: config key {key} is not set in config.yml")
    folder = Path(str(path)).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"dataset {name}: {key} = {folder} does not exist "
                           "(download it with download_datasets.sh or fix config.yml)")
    if not any(folder.iterdir()):
        raise DatasetError(f"dataset {name}: {key} = {folder} is empty")
    return folder


def get_eval_dataset(name: str, cfg: Mapping[str, Any], path_override: str | Path | None = None,
                     **kwargs: Any) -> ISDataset:
    """Build the evaluation dataset called ``name`` on the command line.

    Args:
        name: a key of :data:`EVAL_DATASETS`, or ``ImagesDir:<path>``.
        cfg: the loaded ``config.yml`` (a plain mapping).
        path_override: use this folder instead of the config entry.
        **kwargs: extra reader arguments (override the registry's, e.g. ``num_samples``).

    Raises:
        DatasetError: unknown name, config key missing, or folder missing or empty.
    """
    name = name.strip()
    if name.startswith(IMAGES_DIR_PREFIX):
        raw = path_override or name[len(IMAGES_DIR_PREFIX):]
        folder = _check_path(name, "the ImagesDir: path", raw)
        return ImagesDirDataset(folder, **kwargs)
    if name not in EVAL_DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(EVAL_DATASETS)}, "
                           f"{IMAGES_DIR_PREFIX}<path>")
    cls, key, defaults = EVAL_DATASETS[name]
    options = {**defaults, **kwargs}
    if key is None:
        return cls(**options)
    raw = path_override if path_override is not None else cfg.get(key)
    return cls(_check_path(name, key, raw), **options)
