"""``ISDataset``: the torch dataset all readers derive from, and ``DatasetError``.

A reader implements ``get_sample(index) -> DSample`` and fills ``dataset_samples``; this class
turns a sample into a training item: augmentation, small-object removal and click simulation.

Reproducibility: every random decision of an item (which sample when ``epoch_len > 0``, the
augmentation, stuff masks, the clicks) comes from one generator seeded with
``(seed, epoch, index)``. The same item is therefore identical in any worker, process or
restarted run; resuming training at epoch ``e`` only needs ``set_epoch(e)``.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np
import torch

from .points_sampler import MultiPointSampler
from .sample import DSample

__all__ = ["DatasetError", "ISDataset"]

logger = logging.getLogger(__name__)

#: After this many augmentations that lose every object, keep the empty sample.
MAX_AUGMENT_ATTEMPTS = 50


class DatasetError(RuntimeError):
    """A dataset folder or file is missing or unreadable.

    The message is one line naming the folder or file, so an evaluator can report it and go on.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ISDataset(torch.utils.data.Dataset):
    """Base of every interactive-segmentation dataset.

    Args:
        augmentator: ``transform(image=..., mask=...)`` callable, usually from
            :func:`isegm.data.transforms.train_augmentator`. Albumentations pipelines are
            re-seeded per item; other callables are used as they are (not reproducible).
        points_sampler: click simulator; a ``MultiPointSampler(12)`` by default.
        min_object_area: objects smaller than this (after augmentation) are dropped.
        keep_background_prob: probability of keeping an augmentation that lost every object
            (negative: always keep); otherwise the augmentation is redrawn.
        with_image_info: also return ``'image_info'`` (the sample index).
        epoch_len: items per epoch; -1 walks the whole split in order, > 0 draws that many
            samples per epoch (a fresh, reproducible draw every epoch).
        seed: base seed of every random decision.

    Items are ``{'images': float32 [3,H,W] in [0,1], 'points': float32 [2N,3] (y, x, index),
    'instances': float32 [1,H,W]}``; see :mod:`isegm.data.points_sampler` for the click layout.
    """

    #: Human-readable dataset name (evaluation tables use it).
    name: str = "ISDataset"

    def __init__(
        self,
        augmentator: Callable[..., Any] | None = None,
        points_sampler: MultiPointSampler | None = None,
        min_object_area: int = 0,
        keep_background_prob: float = 0.0,
        with_image_info: bool = False,
        epoch_len: int = -1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.augmentator = augmentator
        self.points_sampler = points_sampler if points_sampler is not None \
            else MultiPointSampler(max_num_points=12)
        self.min_object_area = int(min_object_area)
        self.keep_background_prob = float(keep_background_prob)
        self.with_image_info = bool(with_image_info)
        self.epoch_len = int(epoch_len)
        if int(seed) < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = int(seed)
        self.epoch = 0
        self.dataset_samples: list[Any] = []

    # ------------------------------------------------------------------ hooks
    def get_sample(self, index: int, rng: np.random.Generator | None = None) -> DSample:
        """Read sample ``index``. ``rng`` drives any randomness of the reader (e.g. stuff)."""
        raise NotImplementedError

    def get_samples_number(self) -> int:
        """Number of samples in the split (independent of ``epoch_len``)."""
        return len(self.dataset_samples)

    # ------------------------------------------------------------------ torch API
    def __len__(self) -> int:
        return self.epoch_len if self.epoch_len > 0 else self.get_samples_number()

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose items ``__getitem__`` returns.

        DataLoader workers copy the dataset when an iterator is created, so call this before
        iterating (with ``persistent_workers=True`` index with ``(epoch, index)`` tuples instead).
        """
        self.epoch = int(epoch)

    def item_rng(self, index: int, epoch: int | None = None) -> np.random.Generator:
        """The generator of item ``index`` in ``epoch`` (default: the current epoch)."""
        epoch = self.epoch if epoch is None else int(epoch)
        return np.random.default_rng([self.seed, epoch, int(index)])

    def sample_rng(self, index: int) -> np.random.Generator:
        """Epoch-independent generator, for readers called without one (e.g. evaluation)."""
        return np.random.default_rng([self.seed, 0xE7A1, int(index)])

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Any]:
        if isinstance(index, (tuple, list)):
            epoch, index = int(index[0]), int(index[1])
        else:
            epoch, index = self.epoch, int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        rng = self.item_rng(index, epoch)

        num_samples = self.get_samples_number()
        if num_samples == 0:
            raise DatasetError(f"{self.name}: the dataset has no samples")
        sample_index = int(rng.integers(num_samples)) if self.epoch_len > 0 else index

        sample = self.get_sample(sample_index, rng)
        sample = self.augment_sample(sample, rng)
        # Area-0 objects (e.g. fully overwritten LVIS masks) can never be clicked: drop them too.
        sample.remove_small_objects(max(self.min_object_area, 1))

        points, mask = self.points_sampler.sample(sample, rng)
        image = np.ascontiguousarray(sample.image.transpose(2, 0, 1), dtype=np.float32) / 255.0
        output = {
            "images": torch.from_numpy(image),
            "points": torch.from_numpy(points),
            "instances": torch.from_numpy(mask),
        }
        if self.with_image_info:
            output["image_info"] = sample_index
        return output

    def augment_sample(self, sample: DSample, rng: np.random.Generator) -> DSample:
        """Augment until at least one object survives (or the empty sample may be kept)."""
        if self.augmentator is None:
            return sample
        # imported here: albumentations costs about 1 s to import, and evaluation never augments
        from .transforms import seed_transform

        for _ in range(MAX_AUGMENT_ATTEMPTS):
            seed_transform(self.augmentator, int(rng.integers(2**63)))
            sample.augment(self.augmentator)
            if len(sample) > 0 or self.keep_background_prob < 0.0 \
                    or rng.random() < self.keep_background_prob:
                return sample
        logger.debug("%s: sample %s lost every object in %d augmentations; keeping it empty",
                     self.name, sample.sample_id, MAX_AUGMENT_ATTEMPTS)
        return sample
