"""The argument parser every command of the project uses (``evaluate_model.py``, ``train.py``,
``dis_train.py``, ``demo.py``, ``python -m isegm.predict``, ``python -m isegm.serve``, ...).

It imports nothing heavy, so an entry point can parse and check its command line before it
imports torch and the model code (seconds on a busy machine), and it reports a bad argument in
one line with a pointer to ``--help`` instead of the whole usage text above it.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from isegm.utils.threads import default_threads

__all__ = ["ArgumentParser", "add_threads_argument", "default_threads"]


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line (exit code 2, as argparse):

        error: argument --target-iou: invalid float value: 'abc' (see: evaluate_model.py --help)
    """

    def error(self, message: str) -> NoReturn:
        """Prints the one error line to stderr and exits with 2 (argparse's code)."""
        message = " ".join(message.split())
        hint = f" (see: {self.prog} --help)" if self.add_help else ""
        self.exit(2, f"error: {message}{hint}\n")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
            sys.stderr.flush()
        sys.exit(status)


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads N`` (the same option for ``python -m isegm.predict`` and ``demo.py``)."""
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help=f"torch CPU threads (default: half the cores, at most 4; here {default_threads()})",
    )
