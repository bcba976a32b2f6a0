"""Training sets from the user's own files (``--train-data`` / ``--val-data`` of
``models/finetune.py``), read by the evaluation's readers (``ImagesDir:`` and ``COCO:``).

Every file is checked before training starts (:func:`open_user_sets`): a missing or broken
image, a mask of another size, a broken JSON or an empty set each give one line naming the file,
all of them at once (:class:`DataCheckError`). Objects below ``min_area`` pixels are left out and
counted in the log; an image left without objects is left out too.
"""
from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..base import DatasetError, ISDataset
from ..eval_registry import COCO_PREFIX, IMAGES_DIR_PREFIX, split_user_spec
from ..mask_io import IGNORE_ID
from ..sample import DSample
from .coco_file import CocoFileDataset
from .images_dir import ImagesDirDataset

__all__ = ["DataCheckError", "UserDataOptions", "UserDataset", "open_user_reader",
           "open_user_readers", "open_user_sets"]

logger = logging.getLogger(__name__)


class DataCheckError(DatasetError):
    """Bad files found by the check before training: ``problems`` holds one line per file."""

    def __init__(self, problems: Sequence[str], summary: str) -> None:
        super().__init__(summary)
        self.problems = list(problems)


@dataclass(frozen=True)
class UserDataOptions:
    """How the user's files are read.

    Attributes:
        images: folder of the images of a ``COCO:`` file (default: the JSON's folder).
        categories: COCO categories to keep (names or ids); None keeps all.
        min_area: objects with fewer pixels are left out (counted in the log).
    """

    images: str | None = None
    categories: tuple[str, ...] | None = None
    min_area: int = 0


def open_user_readers(spec: str, options: UserDataOptions, problems: list[str]
                      ) -> list[ImagesDirDataset | CocoFileDataset]:
    """The readers of one ``ImagesDir:<folder>``, ``COCO:<file.json>`` or ``COCO:<folder>``
    spec (a folder: every ``*.json`` in it, e.g. the server's exports of several images); what
    cannot be opened is added to ``problems`` (one line each)."""
    parts = split_user_spec(spec)
    if parts is not None and parts[0] == COCO_PREFIX and Path(parts[1].strip()).is_dir():
        files = sorted(Path(parts[1].strip()).expanduser().glob("*.json"))
        if not files:
            problems.append(f"{spec}: no .json file in folder {parts[1].strip()}")
        specs = [f"{COCO_PREFIX}{f}" for f in files]
    else:
        specs = [spec]
    readers = []
    for one in specs:
        try:
            readers.append(open_user_reader(one, options))
        except DatasetError as e:
            problems.append(str(e))
    return readers


def open_user_reader(spec: str, options: UserDataOptions) -> ImagesDirDataset | CocoFileDataset:
    """The reader of one ``ImagesDir:<folder>`` or ``COCO:<file.json>`` spec.

    Raises:
        DatasetError: an unknown spec, a missing folder or file, a broken JSON, no sample.
    """
    parts = split_user_spec(spec)
    if parts is None or not parts[1].strip():
        raise DatasetError(f"--train-data/--val-data {spec!r}: expected "
                           f"{IMAGES_DIR_PREFIX}<folder> or {COCO_PREFIX}<annotations.json>")
    prefix, raw = parts
    path = Path(raw.strip()).expanduser()
    if prefix == IMAGES_DIR_PREFIX:
        if not path.is_dir():
            raise DatasetError(f"{spec}: folder {path} does not exist")
        return ImagesDirDataset(path)
    return CocoFileDataset(path, images_path=options.images, categories=options.categories)


@dataclass(frozen=True)
class _Entry:
    """One training sample: a reader's sample and the object ids kept after the check."""

    reader: int
    index: int
    ids: tuple[int, ...]
    name: str
    group: str  # the image file: a val split never shares an image with training

    def __str__(self) -> str:
        return self.name


class UserDataset(ISDataset):
    """The checked samples of one or more readers as one training or validation set.

    Args:
        readers: ``ImagesDir`` / ``COCO`` readers (see :func:`open_user_reader`).
        entries: the checked samples (from :func:`check_readers`).
        max_side: images with a longer side are scaled down to it before the augmentation
            (None: as they are, as the evaluation reads them).
        zoom_prob: share of the items cut around one object first, as the evaluation's
            ZoomIn sees it after the first click (a box 1.2-2x the object's, at least
            ``ZOOM_MIN_SIDE`` pixels, resized to ``zoom_size``); 0 for validation.
        zoom_size: longest side of such a crop (the model's size).
        **kwargs: :class:`~isegm.data.base.ISDataset` options (augmentation, clicks, ...).
    """

    name = "user data"

    def __init__(self, readers: Sequence[Any], entries: Sequence[_Entry],
                 max_side: int | None = None, zoom_prob: float = 0.0, zoom_size: int = 224,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.readers = list(readers)
        self.dataset_samples: list[_Entry] = list(entries)
        self.max_side, self.zoom_prob, self.zoom_size = max_side, zoom_prob, zoom_size

    def subset(self, keep: Sequence[int]) -> UserDataset:
        """The same files restricted to the entries ``keep``."""
        out = copy.copy(self)
        out.dataset_samples = [self.dataset_samples[i] for i in keep]
        return out

    def get_sample(self, index: int, rng: np.random.Generator | None = None) -> DSample:
        entry = self.dataset_samples[index]
        image, labels, _ = self.readers[entry.reader].read_labels(entry.index)
        keep = np.zeros(int(labels.max()) + 1 if labels.size else 1, bool)
        keep[list(entry.ids)] = True
        labels = np.where((labels > 0) & ~keep[np.maximum(labels, 0)], 0, labels)
        if rng is not None and self.zoom_prob > 0 and rng.random() < self.zoom_prob:
            image, labels = _zoom_crop(image, labels, list(entry.ids), self.zoom_size, rng)
        elif self.max_side:
            image, labels = _fit(image, labels, self.max_side, shrink_only=True)
        return DSample(image, labels, objects_ids=list(entry.ids), ignore_ids=[IGNORE_ID],
                       sample_id=index, image_name=Path(entry.name).stem)


#: the smallest zoom crop side in pixels (the MST evaluation's ZoomIn minimum)
ZOOM_MIN_SIDE = 20


def _fit(image: np.ndarray, labels: np.ndarray, side: int, shrink_only: bool = False
         ) -> tuple[np.ndarray, np.ndarray]:
    """Image and labels resized so that the longest side is ``side``."""
    h, w = image.shape[:2]
    if shrink_only and max(h, w) <= side:
        return image, labels
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    shrink = scale < 1
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return image, cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)


def _zoom_crop(image: np.ndarray, labels: np.ndarray, ids: list[int], size: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A crop around one random object (its box scaled 1.2-2x, centre jittered), resized to
    ``size``: training views like those the evaluation's ZoomIn gives the network."""
    rows, cols = np.nonzero(labels == ids[int(rng.integers(len(ids)))])
    if rows.size == 0:
        return _fit(image, labels, size, shrink_only=True)
    box = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
    side = max(box * rng.uniform(1.2, 2.0), ZOOM_MIN_SIDE)
    cy = (rows.min() + rows.max()) / 2 + rng.uniform(-0.15, 0.15) * side
    cx = (cols.min() + cols.max()) / 2 + rng.uniform(-0.15, 0.15) * side
    h, w = labels.shape
    r0, c0 = max(0, int(cy - side / 2)), max(0, int(cx - side / 2))
    r1, c1 = min(h, int(cy + side / 2) + 1), min(w, int(cx + side / 2) + 1)
    return _fit(image[r0:r1, c0:c1], labels[r0:r1, c0:c1], size)


def check_readers(readers: Sequence[Any], min_area: int, what: str
                  ) -> tuple[list[_Entry], list[str]]:
    """Checks every sample of ``readers``: ``(entries kept, one problem line per bad file)``;
    objects below ``min_area`` and samples left without objects are counted in the log."""
    entries, problems = [], []
    small = no_object = 0
    for r, reader in enumerate(readers):
        for i, sample in enumerate(reader.dataset_samples):
            try:
                _, areas = reader.inspect(i)
            except DatasetError as e:
                problems.append(str(e))
                continue
            ids = tuple(k for k, a in sorted(areas.items()) if a >= max(min_area, 1))
            small += sum(1 for a in areas.values() if a < max(min_area, 1))
            if not ids:
                no_object += 1
                continue
            image = getattr(sample, "image", None) or getattr(sample, "path", sample)
            entries.append(_Entry(r, i, ids, str(sample), str(image)))
    if small:
        logger.info("%s: %d object(s) below %d pixels left out (--min-area)", what, small,
                    min_area)
    if no_object:
        logger.info("%s: %d sample(s) without an object left out", what, no_object)
    return entries, problems


def _split_groups(entries: Sequence[_Entry], fraction: float, seed: int
                  ) -> tuple[list[int], list[int]]:
    """(train, val) entry indices: a stable fraction of the images (by a hash of the file name
    and the seed) for validation, at least one image and one left for training."""
    groups = sorted({e.group for e in entries},
                    key=lambda g: hashlib.sha1(f"{seed}:{g}".encode()).hexdigest())
    n_val = min(max(1, round(fraction * len(groups))), len(groups) - 1)
    val_groups = set(groups[:n_val])
    val = [i for i, e in enumerate(entries) if e.group in val_groups]
    train = [i for i, e in enumerate(entries) if e.group not in val_groups]
    return train, val


def open_user_sets(train_specs: Sequence[str], val_specs: Sequence[str] | None,
                   val_fraction: float | None, options: UserDataOptions, seed: int = 0,
                   ) -> tuple[UserDataset, UserDataset | None]:
    """Opens and checks the training (and validation) files: ``(train, val)``, both without
    augmentation (the caller sets it); ``val`` is None without ``val_specs`` or
    ``val_fraction``.

    The result is kept per process: the launcher checks the files before it creates the
    experiment folder, and the training process of ``train.py`` then reuses that check.

    Raises:
        DataCheckError: one line per bad file or spec, all found before training starts.
    """
    key = (tuple(train_specs), tuple(val_specs or ()), val_fraction, options, seed)
    if key not in _CHECKED:
        _CHECKED[key] = _open_user_sets(train_specs, val_specs, val_fraction, options, seed)
    train, val = _CHECKED[key]
    logger.info("training data: %d sample(s), %d object(s); validation: %s", len(train),
                sum(len(e.ids) for e in train.dataset_samples),
                f"{len(val)} sample(s), {sum(len(e.ids) for e in val.dataset_samples)} "
                f"object(s)" if val is not None else "none")
    return train, val


_CHECKED: dict[tuple, tuple[UserDataset, UserDataset | None]] = {}


def _open_user_sets(train_specs: Sequence[str], val_specs: Sequence[str] | None,
                    val_fraction: float | None, options: UserDataOptions, seed: int,
                    ) -> tuple[UserDataset, UserDataset | None]:
    problems: list[str] = []

    def readers_of(specs: Sequence[str]) -> list[Any]:
        return [r for spec in specs for r in open_user_readers(spec, options, problems)]

    train_readers = readers_of(train_specs)
    val_readers = readers_of(val_specs or [])
    train_entries, bad = check_readers(train_readers, options.min_area, "training data")
    problems += bad
    val_entries, bad = check_readers(val_readers, options.min_area, "validation data")
    problems += bad
    if not problems and not train_entries:
        problems.append(f"training data {', '.join(train_specs)}: no object of at least "
                        f"{options.min_area} pixels to train on")
    if not problems and val_specs and not val_entries:
        problems.append(f"validation data {', '.join(val_specs)}: no object to validate on")
    if not problems and val_fraction and len({e.group for e in train_entries}) < 2:
        problems.append(f"--val-fraction {val_fraction:g}: the training data has only one "
                        f"image; give --val-data or more images")
    if problems:
        raise DataCheckError(problems, f"{len(problems)} problem(s) with the training data "
                                       f"(listed above); nothing was trained")
    train = UserDataset(train_readers, train_entries)
    val = UserDataset(val_readers, val_entries) if val_specs else None
    if val_fraction:
        keep, held = _split_groups(train_entries, val_fraction, seed)
        train, val = train.subset(keep), train.subset(held)
    return train, val
