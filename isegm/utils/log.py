"""Logging for command-line tools: console through tqdm, optional log file, progress bars.

* :func:`setup_logging` configures the root logger once per call (idempotent: the handlers it
  added before are replaced), so a script's ``main()`` can be called several times in one
  process (tests) without duplicating lines.
* Console lines go through ``tqdm.write`` so they do not break a running progress bar.
* :func:`progress_bar` is a tqdm bar on a terminal; when stderr is not a terminal (a log file,
  CI), the bar's text is sent to a logger at most every ``log_interval`` seconds instead
  (:class:`TqdmToLogger`, as RITM's ``utils/log.py``).
"""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

__all__ = [
    "TqdmLoggingHandler",
    "TqdmToLogger",
    "add_log_file",
    "close_log_file",
    "log_to_files",
    "progress_bar",
    "reset_logging",
    "setup_logging",
]

_MARK = "_isegm_log_handler"
CONSOLE_FORMAT = "%(levelname)s: %(message)s"
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TqdmLoggingHandler(logging.StreamHandler):
    """Writes records with ``tqdm.write`` (to ``stream``), keeping progress bars intact."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _remove_own_handlers(root: logging.Logger, files_only: bool = False) -> None:
    for handler in list(root.handlers):
        if getattr(handler, _MARK, False) and (
            not files_only or isinstance(handler, logging.FileHandler)
        ):
            root.removeHandler(handler)
            handler.close()


def setup_logging(
    log_file: str | Path | None = None, level: int = logging.INFO, stream: Any = None
) -> None:
    """Console (stderr, short format) and optional file (timestamped) logging on the root logger.

    Args:
        log_file: also append every record to this file (its folder is created).
        level: root level.
        stream: console stream (default ``sys.stderr`` at call time).
    """
    root = logging.getLogger()
    _remove_own_handlers(root)
    root.setLevel(level)
    console = TqdmLoggingHandler(stream if stream is not None else sys.stderr)
    console.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    setattr(console, _MARK, True)
    root.addHandler(console)
    if log_file is not None:
        add_log_file(log_file)


def add_log_file(log_file: str | Path) -> None:
    """Append every record of the root logger to ``log_file`` (replaces a previous one)."""
    root = logging.getLogger()
    _remove_own_handlers(root, files_only=True)
    path = Path(log_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FILE_FORMAT, "%Y-%m-%d %H:%M:%S"))
    setattr(handler, _MARK, True)
    root.addHandler(handler)


def close_log_file() -> None:
    """Close the file handler added by :func:`setup_logging` / :func:`add_log_file`."""
    _remove_own_handlers(logging.getLogger(), files_only=True)


def log_to_files(message: str, level: int = logging.INFO) -> None:
    """Write ``message`` to the log files only (for a line the caller prints itself)."""
    record = logging.LogRecord("isegm", level, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def reset_logging() -> None:
    """Remove every handler added by :func:`setup_logging` (console and file)."""
    _remove_own_handlers(logging.getLogger())


class TqdmToLogger(io.StringIO):
    """A file-like target for tqdm that forwards the latest bar text to a logger."""

    def __init__(self, logger: logging.Logger, level: int = logging.INFO) -> None:
        super().__init__()
        self.logger = logger
        self.level = level
        self._buf = ""

    def write(self, text: str) -> int:
        text = text.strip("\r\n\t ")
        if text:
            self._buf = text
        return len(text)

    def flush(self) -> None:
        if self._buf:
            self.logger.log(self.level, self._buf)
            self._buf = ""


def progress_bar(
    total: int,
    desc: str,
    initial: int = 0,
    logger: logging.Logger | None = None,
    log_interval: float = 30.0,
) -> tqdm:
    """A tqdm bar on a terminal, periodic log lines otherwise.

    Args:
        total: number of steps.
        desc: bar label.
        initial: steps already done (a resumed run).
        logger: where the bar goes when stderr is not a terminal.
        log_interval: minimum seconds between two log lines in that case.
    """
    if sys.stderr.isatty():
        return tqdm(total=total, initial=initial, desc=desc, leave=True, dynamic_ncols=True)
    target = TqdmToLogger(logger or logging.getLogger("progress"))
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        file=target,
        mininterval=log_interval,
        maxinterval=log_interval,
        ascii=True,
        ncols=80,
    )
