"""Command line of the demo (``python demo.py``): options, model loading, the Tk main loop.

Every problem found before the window opens (bad device, image or checkpoint, no display) is
one ``error:`` line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from isegm.inference.backends_cli import add_precision_arguments, check_precision
from isegm.inference.refine import add_refine_argument
from isegm.inference.utils import DEFAULT_MODEL_FILE
from isegm.utils.cli import ArgumentParser, add_threads_argument

if TYPE_CHECKING:  # torch and the model code load after the command line is checked
    from torch import nn

__all__ = ["build_parser", "main", "run"]

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="demo.py", description="Interactive click-based segmentation (Tk window)."
    )
    parser.add_argument(
        "--checkpoint",
        help=f"model checkpoint (default: weights/{DEFAULT_MODEL_FILE})",
    )
    dev = parser.add_mutually_exclusive_group()
    dev.add_argument("--cpu", action="store_true", help="run on the CPU")
    dev.add_argument("--gpu", type=int, metavar="N", help="run on CUDA device N")
    parser.add_argument(
        "--limit-longest-size",
        type=int,
        default=800,
        help="downscale larger images for the network (800)",
    )
    parser.add_argument("--image", help="image to open at start")
    parser.add_argument("--threshold", type=float, default=0.5, help="mask threshold (0.5)")
    parser.add_argument("--alpha", type=float, default=0.5, help="mask opacity (0.5)")
    parser.add_argument(
        "--zoom-in",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="zoom in on the object after the first click (on)",
    )
    parser.add_argument(
        "--save-path", help="Ctrl+S / Save mask write this PNG without a file dialog"
    )
    parser.add_argument(
        "--status-file", help="JSON status rewritten after every change (for scripts and tests)"
    )
    add_refine_argument(parser)
    add_precision_arguments(parser, cuda=True)
    add_threads_argument(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log timings")
    return parser


def main(argv: Sequence[str] | None = None, model: nn.Module | None = None) -> int:
    """Runs the demo until its window closes; returns the exit code.

    Args:
        argv: arguments (default ``sys.argv[1:]``).
        model: a ready model to use instead of ``--checkpoint`` (scripting and tests).
    """
    args = build_parser().parse_args(argv)
    for name in ("threshold", "alpha"):  # checked before torch and the model load
        if not 0.0 <= getattr(args, name) <= 1.0:
            sys.stderr.write(f"error: --{name} must be in [0, 1], got {getattr(args, name)}\n")
            return 2
    if args.cpu:  # otherwise the device, and so this check, waits for torch
        try:
            check_precision(args.precision, args.backend, "cpu")
        except ValueError as e:
            sys.stderr.write(f"error: {e}\n")
            return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from isegm.annotation.defaults import session_options
    from isegm.annotation.errors import DeviceError, InputError
    from isegm.annotation.io import read_image
    from isegm.annotation.runtime import select_device, set_threads
    from isegm.annotation.session import Predictor
    from isegm.inference.utils import CheckpointError

    try:
        device = select_device(args.cpu, args.gpu)
        set_threads(args.threads)
        image = read_image(args.image) if args.image else None
        predictor = Predictor(
            model if model is not None else args.checkpoint,
            device=device,
            **session_options(args),
        )
        import tkinter as tk

        try:
            root = tk.Tk(className="isegm-demo")
        except tk.TclError as e:
            raise InputError(f"cannot open the window ({e}); is DISPLAY set?") from None
    except (InputError, CheckpointError, DeviceError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 2

    from isegm.annotation.objects import InteractiveController
    from isegm.demo.app import DemoApp

    controller = InteractiveController(predictor, threshold=args.threshold)
    app = DemoApp(
        root,
        controller,
        alpha=args.alpha,
        zoom_in=args.zoom_in,
        save_path=args.save_path,
        status_file=args.status_file,
    )
    if image is not None:
        app.open_image(image, os.path.basename(args.image))
    logger.info("demo running on %s", device)
    root.mainloop()
    return 0


def run(argv: Sequence[str] | None = None, model: nn.Module | None = None) -> NoReturn:
    """:func:`main`, then end the process at once (``python demo.py``).

    Once the window is closed nothing is left to do (saves are explicit commands, finished
    before the window closes), but Python's own teardown of the torch/timm/OpenCV modules took
    2-5 s, and 5-10 s on a loaded machine, after Ctrl+Q: streams and logs are flushed and the
    process exits without it.
    """
    code = main(argv, model)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
