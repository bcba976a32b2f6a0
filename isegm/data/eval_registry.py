"""The evaluation datasets by ``--datasets`` name, without importing their readers.

``EVAL_DATASETS[name] = (reader class, config key, reader kwargs)``, the reader class named as
``"<module of isegm.data.datasets>.<Class>"``; :func:`isegm.data.datasets.get_eval_dataset`
imports it. The config key is ``None`` for the generated benchmarks, which need no files. This
module imports nothing heavy, so ``evaluate_model.py`` refuses an unknown name (exit 2) before
it imports torch.
"""
from __future__ import annotations

from typing import Any

__all__ = ["COCO_PREFIX", "EVAL_DATASETS", "IMAGES_DIR_PREFIX", "USER_DATA_PREFIXES",
           "split_user_spec", "unknown_dataset_names"]

IMAGES_DIR_PREFIX = "ImagesDir:"
#: ``COCO:<annotations.json>``: a COCO instances file (polygons or RLE), e.g. the server's export
COCO_PREFIX = "COCO:"
#: the user's own files, for evaluation (``--datasets``) and fine-tuning (``--train-data``)
USER_DATA_PREFIXES = (IMAGES_DIR_PREFIX, COCO_PREFIX)

EVAL_DATASETS: dict[str, tuple[str, str | None, dict[str, Any]]] = {
    "GrabCut": ("grabcut.GrabCutDataset", "GRABCUT_PATH", {}),
    "Berkeley": ("berkeley.BerkeleyDataset", "BERKELEY_PATH", {}),
    "DAVIS": ("davis.DavisDataset", "DAVIS_PATH", {"name": "DAVIS"}),
    "COCO_MVal": ("davis.DavisDataset", "COCO_MVAL_PATH", {"name": "COCO_MVal"}),
    "PascalVOC": ("pascalvoc.PascalVocDataset", "PASCALVOC_PATH", {"split": "val"}),
    "SBD": ("sbd.SBDEvaluationDataset", "SBD_PATH", {"split": "val"}),
    "SBD_Train": ("sbd.SBDEvaluationDataset", "SBD_PATH", {"split": "train"}),
    "LoveDA": ("love_da.LoveDADataset", "IS_LoveDA_PATH", {"split": "val", "scale": "all"}),
    "LoveDASMALL": ("love_da.LoveDADataset", "IS_LoveDA_PATH", {"split": "val", "scale": "small"}),
    "LoveDAMEDIUM": ("love_da.LoveDADataset", "IS_LoveDA_PATH",
                     {"split": "val", "scale": "medium"}),
    "LoveDALARGE": ("love_da.LoveDADataset", "IS_LoveDA_PATH", {"split": "val", "scale": "large"}),
    "LoveDAHUGE": ("love_da.LoveDADataset", "IS_LoveDA_PATH", {"split": "val", "scale": "huge"}),
    "HQSeg44k": ("hqseg44k.HQSeg44kDataset", "HQSeg44K_PATH", {"split": "val"}),
    "Synthetic": ("synthetic.SyntheticEvalDataset", None, {"scale": "all", "num_samples": 150}),
    "SyntheticSMALL": ("synthetic.SyntheticEvalDataset", None,
                       {"scale": "small", "num_samples": 100}),
    "SyntheticMEDIUM": ("synthetic.SyntheticEvalDataset", None,
                        {"scale": "medium", "num_samples": 100}),
    "SyntheticLARGE": ("synthetic.SyntheticEvalDataset", None,
                       {"scale": "large", "num_samples": 100}),
    # scenes composed from the held-out photographs of PHOTOS_PATH (isegm.data.photos)
    "PhotoScenes": ("photo_scenes.PhotoScenesEvalDataset", "PHOTOS_PATH",
                    {"scale": "all", "num_samples": 150}),
    "PhotoScenesSMALL": ("photo_scenes.PhotoScenesEvalDataset", "PHOTOS_PATH",
                         {"scale": "small", "num_samples": 50}),
    "PhotoScenesMEDIUM": ("photo_scenes.PhotoScenesEvalDataset", "PHOTOS_PATH",
                          {"scale": "medium", "num_samples": 50}),
    "PhotoScenesLARGE": ("photo_scenes.PhotoScenesEvalDataset", "PHOTOS_PATH",
                         {"scale": "large", "num_samples": 50}),
}


def split_user_spec(spec: str) -> tuple[str, str] | None:
    """``(prefix, path)`` of ``ImagesDir:<folder>`` or ``COCO:<file.json>``; None for any other
    text (a registered name, or a typo the caller reports)."""
    spec = spec.strip()
    for prefix in USER_DATA_PREFIXES:
        if spec.startswith(prefix):
            return prefix, spec[len(prefix):]
    return None


def unknown_dataset_names(names: list[str]) -> list[str]:
    """The names that are neither a registered dataset nor ``ImagesDir:<folder>`` /
    ``COCO:<file.json>``."""
    return [n for n in names if n not in EVAL_DATASETS and split_user_spec(n) is None]
