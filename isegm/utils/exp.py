"""Experiment folders: ``<EXPS_PATH>/<model_base_name>/<NNN>_<exp_name>/`` with
``checkpoints/``, ``vis/``, ``logs/``, ``tb/``, a copy of the experiment script and the resolved
run configuration (``config.yaml``: arguments, paths, git revision, versions)."""

from __future__ import annotations

import errno
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import yaml

from .log import setup_logging

__all__ = [
    "create_experiment_dir",
    "find_experiment_dir",
    "find_resume_checkpoint",
    "write_run_config",
    "setup_run_logging",
    "ExperimentError",
    "FolderInUseError",
    "FolderLock",
    "remove_stale_temp_files",
    "default_file_mode",
]

logger = logging.getLogger(__name__)


class ExperimentError(ValueError):
    """An experiment folder or checkpoint to resume from cannot be found."""


class FolderInUseError(RuntimeError):
    """Another live process holds the lock of a run or experiment folder."""


class FolderLock:
    """Advisory lock of a run or experiment folder, held while a process writes into it.

    ``fcntl.flock`` on ``<folder>/.lock``, which also holds the owner's pid for the message.
    The kernel releases the lock when its process ends, however it ends (kill -9 included),
    so a killed run can always be resumed and a stale lock file never blocks anyone; two live
    processes can never write into the same folder. Without ``fcntl`` (Windows) it is a no-op.
    """

    NAME = ".lock"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._file = None

    def acquire(self) -> FolderLock:
        """Takes the lock (without waiting).

        Raises:
            FolderInUseError: another process holds it (the message names the folder and pid).
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on POSIX
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        f = open(self.folder / self.NAME, "a+", encoding="utf-8")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                f.close()
                raise
            f.seek(0)
            owner = f.read().strip() or "unknown"
            f.close()
            raise FolderInUseError(
                f"{self.folder} is in use by another process (pid {owner}); wait for it to "
                f"finish or write elsewhere"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        """Drops the lock (also done by the kernel when the process ends)."""
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def remove_stale_temp_files(folder: Path, patterns: tuple[str, ...] = ("*.tmp", "*.tmp.npz")
                            ) -> list[Path]:
    """Deletes temporary files a killed atomic write left in ``folder`` (not recursive).

    Call it only while holding the folder's :class:`FolderLock`: then no live writer owns them.
    """
    removed = []
    if Path(folder).is_dir():
        for p in sorted({p for pattern in patterns for p in Path(folder).glob(pattern)}):
            if p.is_file():
                p.unlink()
                removed.append(p)
    if removed:
        logger.info("removed %d temporary file(s) of an interrupted write in %s",
                    len(removed), folder)
    return removed


def default_file_mode() -> int:
    """The mode ``open()`` gives new files (0666 minus the umask): what atomic writes, which go
    through ``mkstemp`` (0600), should end with."""
    try:  # Linux: read it without changing it (os.umask is process-wide, not thread-safe)
        with open("/proc/self/status", encoding="ascii") as f:
            umask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def _numbered(root: Path) -> list[tuple[int, Path]]:
    out = []
    if root.is_dir():
        for p in root.iterdir():
            m = re.match(r"^(\d{3,})_", p.name)
            if p.is_dir() and m:
                out.append((int(m.group(1)), p))
    return sorted(out)


def create_experiment_dir(exps_root: Path, family: str, exp_name: str, script: Path | None) -> Path:
    """A new numbered experiment folder (``000_name``, ``001_name``, ...)."""
    root = Path(exps_root) / family
    root.mkdir(parents=True, exist_ok=True)
    existing = _numbered(root)
    number = existing[-1][0] + 1 if existing else 0
    exp = root / f"{number:03d}_{exp_name}"
    for sub in ("checkpoints", "vis", "logs", "tb"):
        (exp / sub).mkdir(parents=True, exist_ok=True)
    if script is not None and Path(script).is_file():
        stamp = datetime.now().strftime("%Y-%m-%d-%H-%M-%S")
        shutil.copy(script, exp / f"{stamp}_{Path(script).name}")
    return exp


def find_experiment_dir(exps_root: Path, family: str, resume_exp: str) -> Path:
    """The experiment folder whose name starts with ``resume_exp`` (e.g. ``003`` or
    ``003_tiny``), or a path given directly."""
    direct = Path(resume_exp)
    if direct.is_dir() and (direct / "checkpoints").is_dir():
        return direct
    candidates = [
        p for _, p in _numbered(Path(exps_root) / family) if p.name.startswith(resume_exp)
    ]
    if len(candidates) != 1:
        raise ExperimentError(
            f"--resume-exp {resume_exp!r}: expected one experiment folder in "
            f"{Path(exps_root) / family} starting with it, found {len(candidates)}"
        )
    return candidates[0]


def find_resume_checkpoint(exp_dir: Path, prefix: str = "last") -> Path:
    """``checkpoints/<prefix>*.pth`` (exactly one must match)."""
    matches = sorted((exp_dir / "checkpoints").glob(f"{prefix}*.pth"))
    if len(matches) != 1:
        raise ExperimentError(
            f"--resume-prefix {prefix!r}: expected one checkpoint "
            f"{exp_dir}/checkpoints/{prefix}*.pth, found {len(matches)}"
        )
    return matches[0]


def _git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_run_config(exp_dir: Path, args: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
    """Write the resolved configuration, git revision and environment to ``config.yaml``."""

    def plain(v: Any) -> Any:
        if isinstance(v, (str, int, float, bool)) or v is None:
            return v
        if isinstance(v, Mapping):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return str(v)

    info = {
        "args": plain(dict(args)),
        **plain(dict(extra)),
        "git": _git_revision(),
        "python": sys.version.split()[0],
        "torch": str(torch.__version__),
        "platform": platform.platform(),
        "command": " ".join(sys.argv),
        "time": datetime.now().isoformat(timespec="seconds"),
    }
    (exp_dir / "config.yaml").write_text(yaml.safe_dump(info, sort_keys=False))


def setup_run_logging(log_dir: Path | None, rank: int = 0) -> None:
    """Training logs: console + ``logs/train_<time>.log`` on rank 0, warnings only elsewhere
    (through :func:`isegm.utils.log.setup_logging`, so progress bars stay intact)."""
    log_file = None
    if log_dir is not None and rank == 0:
        log_file = Path(log_dir) / f"train_{datetime.now().strftime('%Y-%m-%d-%H-%M-%S')}.log"
    setup_logging(log_file, level=logging.INFO if rank == 0 else logging.WARNING)
