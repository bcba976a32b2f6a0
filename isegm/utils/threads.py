"""How many torch CPU threads a command uses by default (no argparse, no torch: the annotation
core and the command lines both read it)."""

from __future__ import annotations

import os

__all__ = ["default_threads"]


def default_threads() -> int:
    """Torch CPU threads used when ``--threads`` is not given: half the cores this process may
    use, at most 4. On a 2-core machine that is 1: with another job on the machine, 2 threads
    made one click of the tiny model take 12.8 s instead of 1.35 s (threads that wait for each
    other's core); small models gain little from more threads even when the machine is idle."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(4, cores // 2))
