"""Starting ``evaluate_model.py --nproc K``: K rank processes on this machine, like torchrun.

Standard library only, on purpose: the launching process imports nothing heavy before it
starts the ranks. Importing torch and the evaluator costs about 7 s on a 2-core CPU; a launcher
that did that first, and then waited for every rank to do it again, paid it twice (issue 13's
2-process timing). The ranks get the environment ``torchrun`` gives (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); when one fails, the others are stopped.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["launch_local", "under_launcher", "rank_from_env"]

_ENV = ("RANK", "WORLD_SIZE")


def under_launcher() -> bool:
    """True in a process started by torchrun or :func:`launch_local`."""
    return all(k in os.environ for k in _ENV)


def rank_from_env() -> int:
    """This process's rank (0 without a launcher)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_local(nproc: int, argv: Sequence[str], script: str | Path) -> int:
    """Runs ``script argv`` as ``nproc`` ranks on this machine; returns the first non-zero exit
    code (the others are then terminated), else 0."""
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
           "WORLD_SIZE": str(nproc), "LOCAL_WORLD_SIZE": str(nproc)}
    procs = [subprocess.Popen([sys.executable, str(script), *argv],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)})
             for r in range(nproc)]
    code = 0
    try:
        while procs:
            for p in list(procs):
                rc = p.poll()
                if rc is None:
                    continue
                procs.remove(p)
                if rc != 0 and code == 0:
                    code = 128 - rc if rc < 0 else rc  # killed by a signal: 128 + its number
                    for other in procs:
                        other.send_signal(signal.SIGTERM)
            time.sleep(0.05)
    except KeyboardInterrupt:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait()
        return 130
    return code
