"""Process-group helpers (detectron2 ``comm`` style): one ``main`` for 1..N processes.

Works under ``torchrun`` (reads ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``) and under
``torch.multiprocessing.spawn``; NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = [
    "get_rank",
    "get_world_size",
    "is_main_process",
    "barrier",
    "all_reduce_mean",
    "init_distributed",
    "torchrun_env",
    "cleanup",
]


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def barrier() -> None:
    if is_initialized() and get_world_size() > 1:
        dist.barrier()


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean over processes (a no-op with one process)."""
    if is_initialized() and get_world_size() > 1:
        t = t.clone()
        dist.all_reduce(t)
        t /= get_world_size()
    return t


def all_reduce_min(t: torch.Tensor) -> torch.Tensor:
    if is_initialized() and get_world_size() > 1:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return t


def torchrun_env() -> tuple[int, int, int] | None:
    """``(rank, world_size, local_rank)`` if launched by torchrun, else None."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return (
            int(os.environ["RANK"]),
            int(os.environ["WORLD_SIZE"]),
            int(os.environ.get("LOCAL_RANK", 0)),
        )
    return None


def init_distributed(rank: int, world_size: int, backend: str) -> None:
    """Join the process group (rendezvous from ``MASTER_ADDR`` / ``MASTER_PORT``)."""
    if world_size > 1 and not is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world_size)


def cleanup() -> None:
    if is_initialized():
        dist.destroy_process_group()
