"""``DSample``: one image with its objects, the unit every dataset returns.

Masks are stored *encoded*: an H×W×L integer array of L layers. Each object is a ``(layer, id)``
pair, so overlapping objects (and COCO+LVIS hierarchies) can live in different layers while a
flat instance map needs just one. Ignore regions are ``(layer, id)`` pairs too; in an object
mask they become -1 (the loss and the metrics skip those pixels).

Why a class and not a dict: augmentation has to move image and every layer together, drop the
objects that left the crop, and be undone before a retry. Keeping that bookkeeping here keeps
the dataset readers down to "read files, build a ``DSample``".
"""
from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence
from copy import deepcopy
from typing import Any, Callable

import numpy as np

from .masks import labels_with_sizes, resize_nearest

__all__ = ["DSample"]

logger = logging.getLogger(__name__)

def _as_mappings(ids: Sequence[Any], num_layers: int, what: str) -> list[tuple[int, int]]:
    """Normalise a list of plain ids or ``(layer, id)`` pairs to ``(layer, id)`` pairs."""
    out = []
    for item in ids:
        if isinstance(item, (tuple, list)) and len(item) == 2:
            out.append((int(item[0]), int(item[1])))
        else:
            if num_layers != 1:
                raise ValueError(
                    f"plain {what} ids are ambiguous with {num_layers} mask layers; "
                    "pass (layer, id) pairs")
            out.append((0, int(item)))
    return out


class DSample:
    """An image, its encoded object masks and the object tree.

    Args:
        image: H×W×3 uint8 RGB image (a grey H×W image is expanded to RGB).
        encoded_masks: H×W×L (or H×W) integer layers. If the size differs from the image, the
            layers are resized to it with nearest neighbour, so image and masks always align.
        objects: mapping ``key -> {'mapping': (layer, id), 'parent': key | None,
            'children': [keys]}`` (the COCO+LVIS hierarchy format), or a sequence of
            ``(layer, id)`` pairs. Ignored when ``objects_ids`` is given.
        objects_ids: list of ids in a single-layer mask, or ``(layer, id)`` pairs. Objects get
            the keys ``0..n-1`` in that order.
        ignore_ids: ids (or ``(layer, id)`` pairs) of "don't care" regions. A region applies to
            the objects of its own layer.
        sample_id: the dataset index this sample came from.
        image_name: a human-readable, unique label of the sample (usually the image file stem,
            ``<stem>#<instance>`` when one image yields several samples).
    """

    def __init__(
        self,
        image: np.ndarray,
        encoded_masks: np.ndarray,
        objects: Mapping[Hashable, Mapping[str, Any]] | Sequence[tuple[int, int]] | None = None,
        objects_ids: Sequence[Any] | None = None,
        ignore_ids: Sequence[Any] | None = None,
        sample_id: int | None = None,
        image_name: str | None = None,
    ) -> None:
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"image must be H×W×3 uint8, got shape {image.shape} dtype {image.dtype}")

        masks = np.asarray(encoded_masks)
        if masks.ndim == 2:
            masks = masks[:, :, None]
        if masks.ndim != 3:
            raise ValueError(f"encoded_masks must be H×W or H×W×L, got shape {masks.shape}")
        if masks.dtype == np.bool_:
            masks = masks.astype(np.uint8)
        if not np.issubdtype(masks.dtype, np.integer):
            raise ValueError(f"encoded_masks must hold integers, got {masks.dtype}")
        if masks.shape[:2] != image.shape[:2]:
            logger.warning("sample %s: mask size %s differs from image size %s; resizing the mask "
                           "(nearest)", image_name if image_name is not None else sample_id,
                           masks.shape[:2], image.shape[:2])
            masks = resize_nearest(masks, image.shape[0], image.shape[1])

        self.image: np.ndarray = image
        self.sample_id = sample_id
        self.image_name = image_name
        self._encoded_masks: np.ndarray = masks
        num_layers = masks.shape[2]

        self._objects: dict[Hashable, dict[str, Any]] = {}
        if objects_ids is not None:
            for key, mapping in enumerate(_as_mappings(list(objects_ids), num_layers, "object")):
                self._objects[key] = {"mapping": mapping, "parent": None, "children": []}
        elif isinstance(objects, Mapping):
            for key, info in objects.items():
                info = dict(deepcopy(info))
                if "mapping" not in info:
                    raise ValueError(f"object {key!r} has no 'mapping' (layer, id)")
                info["mapping"] = (int(info["mapping"][0]), int(info["mapping"][1]))
                info.setdefault("parent", None)
                info["children"] = list(info.get("children") or [])
                info.pop("area", None)
                self._objects[key] = info
        elif objects is not None:
            for key, mapping in enumerate(_as_mappings(list(objects), num_layers, "object")):
                self._objects[key] = {"mapping": mapping, "parent": None, "children": []}

        self._ignored_regions: list[tuple[int, int]] = _as_mappings(
            list(ignore_ids or []), num_layers, "ignore")
        for layer, _ in [o["mapping"] for o in self._objects.values()] + self._ignored_regions:
            if not 0 <= layer < num_layers:
                raise ValueError(f"layer index {layer} out of range for {num_layers} layers")

        self._areas_valid = False
        self._augmented = False
        self._original = (self.image, self._encoded_masks, deepcopy(self._objects))

    # ------------------------------------------------------------------ accessors
    @property
    def encoded_masks(self) -> np.ndarray:
        """The H×W×L layers (read-only by convention)."""
        return self._encoded_masks

    @property
    def objects(self) -> dict[Hashable, dict[str, Any]]:
        """The object tree ``key -> {'mapping', 'parent', 'children', 'area'}`` (do not mutate)."""
        self._ensure_areas()
        return self._objects

    @property
    def objects_ids(self) -> list[Hashable]:
        """Keys of the current objects, in insertion order."""
        return list(self._objects.keys())

    @property
    def root_objects(self) -> list[Hashable]:
        """Keys of objects without a parent."""
        return [k for k, info in self._objects.items() if info["parent"] is None]

    @property
    def ignored_regions(self) -> list[tuple[int, int]]:
        return list(self._ignored_regions)

    def __len__(self) -> int:
        return len(self._objects)

    def __repr__(self) -> str:
        h, w = self.image.shape[:2]
        return (f"DSample(name={self.image_name!r}, id={self.sample_id}, size={h}x{w}, "
                f"layers={self._encoded_masks.shape[2]}, objects={len(self)})")

    # ------------------------------------------------------------------ masks
    def get_object_mask(self, obj_key: Hashable) -> np.ndarray:
        """int32 H×W mask of one object: 1 object, 0 background, -1 ignore (same layer)."""
        layer, obj_id = self._objects[obj_key]["mapping"]
        layer_map = self._encoded_masks[:, :, layer]
        mask = (layer_map == obj_id).astype(np.int32)
        for ign_layer, ign_id in self._ignored_regions:
            if ign_layer == layer:
                mask[layer_map == ign_id] = -1
        return mask

    def gt_mask(self, obj_index: int = 0) -> np.ndarray:
        """int32 H×W mask of the ``obj_index``-th object (position in ``objects_ids``)."""
        keys = self.objects_ids
        if not keys:
            raise IndexError(f"sample {self.image_name or self.sample_id} has no objects")
        return self.get_object_mask(keys[obj_index])

    def get_background_mask(self) -> np.ndarray:
        """bool H×W: pixels that are zero in every layer."""
        return ~np.any(self._encoded_masks != 0, axis=2)

    def object_area(self, obj_key: Hashable) -> int:
        self._ensure_areas()
        return int(self._objects[obj_key]["area"])

    # ------------------------------------------------------------------ augmentation
    def augment(self, transform: Callable[..., Mapping[str, np.ndarray]]) -> DSample:
        """Apply ``transform(image=..., mask=...)`` to image and all layers, in place.

        Always starts from the original data, so a retry after an unlucky crop does not compound.
        Objects that vanished (area 0) are dropped. Returns ``self``.
        """
        self.reset_augmentation()
        out = transform(image=self.image, mask=self._encoded_masks)
        image, masks = out["image"], out["mask"]
        if masks.ndim == 2:
            masks = masks[:, :, None]
        if masks.shape[:2] != image.shape[:2]:
            raise ValueError(f"transform misaligned image {image.shape} and mask {masks.shape}")
        self.image = image
        self._encoded_masks = masks
        self._augmented = True
        self._areas_valid = False
        self.remove_small_objects(1)
        return self

    def reset_augmentation(self) -> None:
        """Restore the image, layers and objects given at construction."""
        if not self._augmented:
            return
        self.image, self._encoded_masks, objects = self._original
        self._objects = deepcopy(objects)
        self._augmented = False
        self._areas_valid = False

    def remove_small_objects(self, min_area: int) -> None:
        """Drop objects with fewer than ``min_area`` pixels; their children move to the parent."""
        self._ensure_areas()
        for key in [k for k, info in self._objects.items() if info["area"] < min_area]:
            self._remove_object(key)

    # ------------------------------------------------------------------ internals
    def _ensure_areas(self) -> None:
        if self._areas_valid:
            return
        areas: dict[tuple[int, int], int] = {}
        layers_used = {info["mapping"][0] for info in self._objects.values()}
        for layer in layers_used:
            ids, sizes = labels_with_sizes(self._encoded_masks[:, :, layer], exclude=())
            areas.update({(layer, int(i)): int(s) for i, s in zip(ids, sizes)})
        for info in self._objects.values():
            info["area"] = areas.get(info["mapping"], 0)
        self._areas_valid = True

    def _remove_object(self, key: Hashable) -> None:
        info = self._objects.pop(key)
        parent = info["parent"]
        for child in info["children"]:
            if child in self._objects:
                self._objects[child]["parent"] = parent
        if parent is not None and parent in self._objects:
            siblings = [c for c in self._objects[parent]["children"] if c != key]
            self._objects[parent]["children"] = siblings + list(info["children"])
