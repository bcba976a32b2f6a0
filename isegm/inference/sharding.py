"""Evaluation over several processes (``torchrun`` or ``evaluate_model.py --nproc K``).

The samples still to evaluate are claimed one at a time from a counter the ranks share
(:meth:`ShardedLog.claim`), so a rank whose objects need fewer clicks takes more of them and
no rank waits for another's fixed share. Each rank appends its finished samples to its own
per-sample log, ``ious/<pair>.rank<r>.jsonl``, synced sample by sample as the one-process log
is; after a model x dataset pair, every rank waits at a barrier (gloo) and rank 0 merges all
logs into ``ious/<pair>.jsonl`` in dataset order, the file a one-process run writes, then
deletes the rank logs. From the merged records rank 0 writes exactly the summary, CSV/JSON,
IoU arrays and plots of a one-process run (the numbers do not depend on which process
evaluated a sample: each object's clicks depend only on its sample, and random clicks are
seeded per object).

Resuming: the samples already done are read from every log present (the merged one and any
rank's, whatever the number of ranks was), so ``--resume`` works after any rank was killed and
with another number of processes. Only rank 0 prepares the run folder (lock, ``run.json``,
moving an old run aside) and writes the outputs; the other ranks wait for it at a barrier.

``--nproc K`` starts K copies of the command line with the environment ``torchrun`` gives
(:mod:`isegm.inference.launcher`, which imports no torch); when one of them fails, the others
are stopped, as ``torchrun`` does.
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from isegm.inference.launcher import under_launcher
from isegm.inference.results import SampleLog, SampleRecord, atomic_write_text, read_sample_log

__all__ = ["Shard", "ShardedLog", "current_shard"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Shard:
    """This process's place among the evaluation processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def current_shard(timeout_s: float = 6 * 3600) -> Shard:
    """The shard from torchrun's environment (one process without it); joins the gloo group.

    The barrier timeout is long: a rank may wait for another's whole share of a dataset.
    """
    if not under_launcher():
        return Shard()
    shard = Shard(rank=int(os.environ["RANK"]), world=int(os.environ["WORLD_SIZE"]),
                  local_rank=int(os.environ.get("LOCAL_RANK", os.environ["RANK"])))
    if shard.world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(
            "gloo", timeout=datetime.timedelta(seconds=timeout_s))
    return shard


class ShardedLog:
    """The per-sample log of one model x dataset for one rank (see the module docstring).

    Args:
        path: the merged log, ``ious/<pair>.jsonl``; this rank writes ``<pair>.rank<r>.jsonl``.
        resume: keep what earlier runs finished (else this rank's log starts empty; rank 0 has
            just made a fresh run folder then).
        shard: this process's shard.
    """

    def __init__(self, path: Path, resume: bool, shard: Shard) -> None:
        self.path, self.shard = Path(path), shard
        if shard.world == 1:
            self._log = SampleLog(self.path, resume=resume)
            self.records = self._log.records
            return
        self.records: dict[int, SampleRecord] = {}
        if resume:
            for other in self._all_logs():
                self.records.update(read_sample_log(other))
        self._log = SampleLog(self._rank_path(shard.rank), resume=resume)
        self.records.update(self._log.records)
        if shard.is_main:
            self._claims_path().unlink(missing_ok=True)  # a killed run's counter
        # every rank has read the same logs (and rank 0 removed the old counter) before any
        # rank appends or claims: they all compute the same samples still to do
        shard.barrier()

    def _claims_path(self) -> Path:
        return self.path.with_name(f"{self.path.stem}.claims")

    def claim(self, todo: Sequence[int]) -> Iterator[int]:
        """The samples of ``todo`` this rank evaluates, claimed one at a time from a counter
        shared by the ranks (one byte appended per claim to ``<pair>.claims`` under ``flock``),
        so a rank that finishes its objects early takes more: no rank waits for another's
        fixed share. Every rank passes the same ``todo``."""
        if self.shard.world == 1:
            yield from todo
            return
        with open(self._claims_path(), "ab") as counter:
            while True:
                fcntl.flock(counter, fcntl.LOCK_EX)
                try:
                    position = counter.seek(0, os.SEEK_END)
                    if position >= len(todo):
                        return
                    counter.write(b".")
                    counter.flush()
                finally:
                    fcntl.flock(counter, fcntl.LOCK_UN)
                yield todo[position]

    def _rank_path(self, rank: int) -> Path:
        return self.path.with_name(f"{self.path.stem}.rank{rank}.jsonl")

    def _all_logs(self) -> list[Path]:
        ranks = sorted(self.path.parent.glob(f"{self.path.stem}.rank*.jsonl"))
        return ([self.path] if self.path.is_file() else []) + ranks

    def append(self, record: SampleRecord) -> None:
        self._log.append(record)

    def close(self) -> None:
        self._log.close()

    def merge(self) -> dict[int, SampleRecord]:
        """Waits for every rank; rank 0 writes the merged log (dataset order) and removes the
        rank logs. Returns every record (all ranks)."""
        self.close()
        if self.shard.world == 1:
            return self.records
        self.shard.barrier()
        records: dict[int, SampleRecord] = {}
        logs = self._all_logs()
        for log in logs:
            records.update(read_sample_log(log))
        if self.shard.is_main:
            atomic_write_text(self.path, "".join(records[i].to_json() + "\n"
                                                 for i in sorted(records)))
            for log in logs:
                if log != self.path:
                    log.unlink()
            self._claims_path().unlink(missing_ok=True)
        self.shard.barrier()  # nobody reads a rank log rank 0 is deleting
        self.records = records
        return records

    def __enter__(self) -> ShardedLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
