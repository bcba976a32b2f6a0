"""A COCO instances file of the user's (``COCO:<annotations.json>``), e.g. the server's export.

``images`` entries name the files (``file_name``, resolved in the JSON's folder or in the
``images_path`` given); ``annotations`` hold polygons, RLE or compressed RLE, rasterised by
pycocotools. Crowd annotations (``iscrowd: 1``) are left out, as are annotations of categories
outside the optional filter. One sample per image with at least one annotation left; its
objects are painted into one label map, largest first, so a small object on top of a large one
stays whole (the server's export has no overlaps, so it reads back exactly).
"""
from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..base import DatasetError, ISDataset
from ..io import DATASET_MAX_PIXELS, ImageRefused, check_image_header, read_bytes, read_image
from ..sample import DSample
from .lvis import annotation_to_mask

__all__ = ["CocoFileDataset"]

logger = logging.getLogger(__name__)


class _CocoImage(NamedTuple):
    """One image of the file and its kept annotations; printed as the image path in reports."""

    path: Path
    width: int
    height: int
    annotations: tuple[dict, ...]

    def __str__(self) -> str:
        return str(self.path)


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(f"COCO file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"COCO file {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise DatasetError(f"COCO file {path}: expected an object with 'images' and "
                           f"'annotations' lists")
    return data


def _category_ids(data: dict, wanted: Sequence[str], path: Path) -> set[int]:
    """Ids of the categories named (by name or id) in ``wanted``."""
    cats = [c for c in data.get("categories") or [] if isinstance(c, dict) and "id" in c]
    by_name = {str(c.get("name")): int(c["id"]) for c in cats}
    ids = {int(c["id"]) for c in cats}
    out, unknown = set(), []
    for w in wanted:
        if w in by_name:
            out.add(by_name[w])
        elif w.isdigit() and int(w) in ids:
            out.add(int(w))
        else:
            unknown.append(w)
    if unknown:
        raise DatasetError(f"COCO file {path}: no category {', '.join(map(repr, unknown))}; "
                           f"it has {', '.join(map(repr, by_name)) or 'none'}")
    return out


def _rle(segmentation: Any, height: int, width: int) -> Any:
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation.get("counts"), list):
        return mask_utils.frPyObjects(segmentation, height, width)
    if isinstance(segmentation.get("counts"), str):  # JSON holds the compressed counts as text
        return {**segmentation, "counts": segmentation["counts"].encode("ascii")}
    return segmentation


class CocoFileDataset(ISDataset):
    """One sample per image with annotations of a COCO instances file.

    Args:
        annotations_path: the JSON file.
        images_path: folder of the images (default: the JSON's folder).
        categories: keep only these categories (names or ids); None keeps all.
        name: dataset name for reports (default: the file's stem).

    Raises:
        DatasetError: a missing or broken file, an unknown category, or no annotated image.
    """

    def __init__(self, annotations_path: str | Path, images_path: str | Path | None = None,
                 categories: Sequence[str] | None = None, name: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        path = Path(annotations_path)
        self.name = name or path.stem or "COCO"
        data = _load_json(path)
        folder = Path(images_path) if images_path is not None else path.parent
        if not folder.is_dir():
            raise DatasetError(f"COCO file {path}: images folder {folder} does not exist")
        wanted = _category_ids(data, categories, path) if categories else None

        per_image: dict[Any, list[dict]] = defaultdict(list)
        left_out: Counter[str] = Counter()
        for ann in data["annotations"]:
            if not isinstance(ann, dict) or "image_id" not in ann \
                    or not isinstance(ann.get("segmentation"), (list, dict)):
                left_out["without a segmentation"] += 1
            elif ann.get("iscrowd", 0):
                left_out["crowd"] += 1
            elif wanted is not None and ann.get("category_id") not in wanted:
                left_out["of other categories"] += 1
            else:
                per_image[ann["image_id"]].append(ann)
        samples, unannotated = [], 0
        for im in data["images"]:
            if not isinstance(im, dict) or "file_name" not in im or "id" not in im:
                raise DatasetError(f"COCO file {path}: an image entry without 'id' and "
                                   f"'file_name': {str(im)[:80]}")
            anns = per_image.pop(im["id"], [])
            if not anns:
                unannotated += 1
                continue
            samples.append(_CocoImage(folder / str(im["file_name"]), int(im.get("width", 0)),
                                      int(im.get("height", 0)), tuple(anns)))
        for why, n in sorted(left_out.items()):
            logger.info("%s: %d annotation(s) %s left out", self.name, n, why)
        if unannotated:
            logger.info("%s: %d image(s) without annotations left out", self.name, unannotated)
        if per_image:
            logger.warning("%s: %d annotation(s) name an image id the file does not list "
                           "(e.g. %r); left out", self.name,
                           sum(map(len, per_image.values())), next(iter(per_image)))
        self.dataset_samples = samples
        if not samples:
            raise DatasetError(f"COCO file {path}: no image with an annotation to use")

    def inspect(self, index: int) -> tuple[tuple[int, int], dict[int, int]]:
        """``((height, width), {object id: area})`` from the image header and the annotations,
        without decoding the image (the check of every file before training).

        Raises:
            DatasetError: a missing or unreadable image, or one whose size is not the JSON's.
        """
        from pycocotools import mask as mask_utils

        entry = self.dataset_samples[index]
        try:
            w, h = check_image_header(read_bytes(entry.path), str(entry.path), DATASET_MAX_PIXELS)
        except ImageRefused as e:
            raise DatasetError(str(e)) from None
        if (entry.width, entry.height) != (w, h) and entry.width and entry.height:
            raise DatasetError(f"image {entry.path} is {w}x{h}, its COCO entry says "
                               f"{entry.width}x{entry.height}")
        areas = {}
        for k, ann in enumerate(entry.annotations, 1):
            try:
                rle = _rle(ann["segmentation"], h, w)
                if list(rle["size"]) != [h, w]:
                    raise DatasetError(f"annotation {ann.get('id')} of {entry.path}: its mask "
                                       f"is {rle['size'][1]}x{rle['size'][0]}, the image {w}x{h}")
                areas[k] = int(mask_utils.area(rle))
            except DatasetError:
                raise
            except Exception as e:  # noqa: BLE001 - pycocotools raises bare Exception too
                raise DatasetError(f"annotation {ann.get('id')} of {entry.path}: unreadable "
                                   f"segmentation ({type(e).__name__}: {e})") from None
        return (h, w), areas

    def read_labels(self, index: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """``(image, label map, object ids)``: annotation ``k`` (1-based, file order) is the
        pixels of value ``k``; largest painted first."""
        entry = self.dataset_samples[index]
        image = read_image(entry.path)
        h, w = image.shape[:2]
        masks = [annotation_to_mask(_rle(a["segmentation"], h, w), h, w)
                 for a in entry.annotations]
        labels = np.zeros((h, w), np.int32)
        for k in sorted(range(len(masks)), key=lambda i: -int(masks[i].sum())):
            labels[masks[k]] = k + 1
        ids = [int(v) for v in np.unique(labels) if v > 0]
        return image, labels, ids

    def get_sample(self, index: int, rng: np.random.Generator | None = None) -> DSample:
        image, labels, ids = self.read_labels(index)
        return DSample(image, labels, objects_ids=ids or [1], sample_id=index,
                       image_name=self.dataset_samples[index].path.stem)
