"""Dataset readers and the evaluation registry (``--datasets`` name → reader).

``EVAL_DATASETS`` (:mod:`isegm.data.eval_registry`, torch-free) maps a name to (reader, config
key, kwargs); :func:`get_eval_dataset` builds one from a loaded ``config.yml``
(:func:`isegm.utils.config.load_config`). The config key is ``None`` for the synthetic
benchmarks, which need no files. ``ImagesDir:<path>`` reads a generic folder.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..base import DatasetError, ISDataset
from ..eval_registry import COCO_PREFIX, EVAL_DATASETS, IMAGES_DIR_PREFIX
from .berkeley import BerkeleyDataset
from .coco import CocoDataset
from .coco_file import CocoFileDataset
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
    "COCO_PREFIX", "EVAL_DATASETS", "IMAGES_DIR_PREFIX", "get_eval_dataset", "BerkeleyDataset",
    "CocoDataset", "CocoFileDataset",
    "CocoLvisDataset", "DavisDataset", "GrabCutDataset", "HQSeg44kDataset", "ImagesDirDataset",
    "LoveDADataset", "LvisDataset", "PascalVocDataset", "PhotoScenesDataset",
    "PhotoScenesEvalDataset", "SBDDataset", "SBDEvaluationDataset",
    "SyntheticEvalDataset", "SyntheticMultiScaleDataset",
]


def _check_path(name: str, key: str, path: Any, flag: str | None = None) -> Path:
    """The dataset folder, or a one-line ``DatasetError`` naming the dataset, where its path
    came from (``flag``: the command-line text that gave it; None: ``key`` of config.yml) and
    the fix for that source."""
    if path is None or str(path).strip() == "":
        raise DatasetError(f"dataset {name}: config key {key} is not set in config.yml (set it, "
                           f"or give --dataset-path {name}=PATH)")
    folder = Path(str(path)).expanduser()
    source = flag or f"{key} = {folder} (config.yml)"
    if not folder.is_dir():
        fix = (f"fix the path of {flag}" if flag else
               f"download it with ./download_datasets.sh, fix {key} in config.yml or give "
               f"--dataset-path {name}=PATH")
        raise DatasetError(f"dataset {name}: {source}: folder {folder} does not exist ({fix})")
    if not any(folder.iterdir()):
        raise DatasetError(f"dataset {name}: {source}: folder {folder} is empty")
    return folder


def get_eval_dataset(name: str, cfg: Mapping[str, Any], path_override: str | Path | None = None,
                     **kwargs: Any) -> ISDataset:
    """Build the evaluation dataset called ``name`` on the command line.

    Args:
        name: a key of :data:`EVAL_DATASETS`, ``ImagesDir:<path>`` or ``COCO:<file.json>``.
        cfg: the loaded ``config.yml`` (a plain mapping).
        path_override: use this folder instead of the config entry.
        **kwargs: extra reader arguments (override the registry's, e.g. ``num_samples``).

    Raises:
        DatasetError: unknown name, config key missing, or folder missing or empty.
    """
    name = name.strip()
    if name.startswith(IMAGES_DIR_PREFIX):
        raw = path_override or name[len(IMAGES_DIR_PREFIX):]
        flag = f"--dataset-path {name}={raw}" if path_override else name
        folder = _check_path(name, "the ImagesDir: path", raw, flag)
        return ImagesDirDataset(folder, **kwargs)
    if name.startswith(COCO_PREFIX):
        raw = path_override or name[len(COCO_PREFIX):]
        return CocoFileDataset(Path(str(raw)).expanduser(), **kwargs)
    if name not in EVAL_DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(EVAL_DATASETS)}, "
                           f"{IMAGES_DIR_PREFIX}<path>, {COCO_PREFIX}<annotations.json>")
    class_path, key, defaults = EVAL_DATASETS[name]
    module, _, class_name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(f"{__name__}.{module}"), class_name)
    options = {**defaults, **kwargs}
    if key is None:
        return cls(**options)
    if path_override is not None:
        flag = f"--dataset-path {name}={path_override}"
        return cls(_check_path(name, key, path_override, flag), **options)
    return cls(_check_path(name, key, cfg.get(key)), **options)
