"""The training sampler: a seeded order per epoch that can start in the middle of an epoch, so
a resumed run sees exactly the batches the interrupted one would have seen."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["ResumableSampler"]


class ResumableSampler(torch.utils.data.Sampler):
    """Yields ``(epoch, index)`` for this process: a seeded permutation per epoch, split
    round-robin over ``world_size`` processes (so one global batch of a multi-process run is the
    same samples as the same-size batch of a single-process run), truncated to whole batches, and
    able to start at a batch inside the epoch (resume)."""

    def __init__(
        self,
        size: int,
        batch_size: int,
        world_size: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        self.size, self.batch_size = size, batch_size
        self.world_size, self.rank, self.shuffle, self.seed = world_size, rank, shuffle, seed
        self.epoch, self.start_batch = 0, 0

    def batches_per_epoch(self) -> int:
        return self.size // (self.batch_size * self.world_size)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        else:
            order = np.arange(self.size)
        n = self.batches_per_epoch() * self.batch_size * self.world_size
        mine = order[:n][self.rank :: self.world_size]
        for i in mine[self.start_batch * self.batch_size :]:
            yield self.epoch, int(i)

    def __len__(self) -> int:
        return (self.batches_per_epoch() - self.start_batch) * self.batch_size
