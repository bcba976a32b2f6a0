"""``python -m isegm.predict``: segment one object of an image from clicks.

::

    python -m isegm.predict --image in.jpg --clicks "120,80,+ 200,40,-" --output mask.png

writes a 0/255 PNG mask. Bad inputs (a click outside the image, an unreadable image, a bad click
list, a missing or broken checkpoint) give one ``error:`` line on stderr and exit code 2; an
empty result mask is written with one ``warning:`` line (exit code 0). ``--threads N`` sets the
torch CPU threads (default :func:`default_threads`).

This module is the command line only. It parses and checks its arguments before torch and the
model code load, so ``--help`` and a bad argument answer in about an interpreter start. The
session behind it, the SAM-style Python API, is :class:`isegm.annotation.Predictor`::

    from isegm.annotation import Predictor
    predictor = Predictor("weights/mst_tiny_photos_bigobjects.pth", device="cpu")
    predictor.set_image(rgb)                                  # HxWx3 uint8, once per image
    mask, prob = predictor.predict([(120, 80, True)])         # (x, y, is_positive) in pixels

The names this module defined before issue 24 (``from isegm.predict import Predictor``,
``read_image``, ``load_model``, ...) still import from here for one release: they live in
:mod:`isegm.annotation` now and load from there on first use (PEP 562).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from isegm.annotation import defaults
from isegm.annotation.clicks import parse_clicks
from isegm.annotation.errors import InputError
from isegm.inference.backends_cli import add_precision_arguments, check_precision
from isegm.inference.refine import add_refine_argument
from isegm.utils.cli import (  # default_threads: re-exported (old path)
    ArgumentParser,
    add_threads_argument,
    default_threads,  # noqa: F401
)

if TYPE_CHECKING:  # torch and the model code load after the command line is checked
    from torch import nn

logger = logging.getLogger(__name__)

# Old import paths (issue 24): these names live in isegm.annotation now; kept importable from
# isegm.predict for one release, loaded on first use so that the command line stays torch-free.
_MOVED = frozenset({
    "DEFAULT_CHECKPOINT", "DEFAULT_MAX_CLICKS", "REPO_ROOT", "ClickTuple", "DeviceError",
    "Predictor", "check_clicks", "default_checkpoint_help", "load_model", "read_image",
    "read_mask", "resolve_checkpoint", "resolve_refine", "select_device", "set_threads",
    "write_png",
})
__all__ = sorted(_MOVED | {
    "CheckpointError", "InputError", "add_refine_argument", "add_threads_argument",
    "build_parser", "default_threads", "main", "parse_clicks",
})


def __getattr__(name: str) -> Any:
    if name == "CheckpointError":  # lives in isegm.model.checkpoint (imports torch)
        from isegm.inference.utils import CheckpointError

        return CheckpointError
    if name in _MOVED:
        import isegm.annotation

        return getattr(isegm.annotation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_parser() -> argparse.ArgumentParser:
    """The command line; torch-free (the defaults come from :mod:`isegm.annotation.defaults`)."""
    parser = ArgumentParser(
        prog="python -m isegm.predict",
        description="Segment one object of an image from clicks and write the mask as PNG.",
    )
    parser.add_argument("--checkpoint",
                        help=f"model checkpoint (default: {defaults.DEFAULT_CHECKPOINT})")
    parser.add_argument("--image", required=True, help="input image (jpg, png, bmp, ...)")
    parser.add_argument("--clicks", required=True,
                        help='clicks in pixels, in order: "x,y,+ x,y,-" (+ object, - background)')
    parser.add_argument("--output", required=True, help="output mask PNG (0 / 255)")
    parser.add_argument("--prob-output", help="also write the probability map as 8-bit PNG")
    parser.add_argument("--prev-mask", help="mask the clicks correct (non-zero = object)")
    dev = parser.add_mutually_exclusive_group()
    dev.add_argument("--cpu", action="store_true", help="run on the CPU")
    dev.add_argument("--gpu", type=int, metavar="N", help="run on CUDA device N")
    parser.add_argument("--threshold", type=float, default=0.5, help="mask threshold (0.5)")
    parser.add_argument("--limit-longest-size", type=int, default=800,
                        help="downscale larger images (800)")
    max_pixels, max_clicks = defaults.DEFAULT_MAX_PIXELS, defaults.DEFAULT_MAX_CLICKS
    parser.add_argument("--max-pixels", type=int, default=max_pixels,
                        help=f"largest image in pixels, checked before decoding ({max_pixels})")
    parser.add_argument("--max-clicks", type=int, default=max_clicks,
                        help=f"longest click list ({max_clicks})")
    parser.add_argument("--zoom-in", action=argparse.BooleanOptionalAction, default=True,
                        help="zoom in on the object after the first click (on)")
    add_refine_argument(parser)
    add_precision_arguments(parser, cuda=True)
    add_threads_argument(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log timings")
    return parser


def _glue_clicks(argv: Sequence[str]) -> list[str]:
    """``--clicks "-5,3,+"`` would read as an option to argparse: glue it as ``--clicks=...``."""
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--clicks":
            value = next(it, None)
            out.append(arg if value is None else f"--clicks={value}")
        else:
            out.append(arg)
    return out


def _check_values(args: argparse.Namespace) -> None:
    """The checks that need no model, before torch loads.

    Raises:
        InputError: a value out of its range.
    """
    if not 0.0 <= args.threshold <= 1.0:
        raise InputError(f"--threshold must be in [0, 1], got {args.threshold}")
    for flag, value in (("--max-pixels", args.max_pixels), ("--max-clicks", args.max_clicks)):
        if value < 1:
            raise InputError(f"{flag} must be positive, got {value}")
    if args.limit_longest_size < 0:
        raise InputError("--limit-longest-size must be >= 0 (0: no downscaling), got "
                         f"{args.limit_longest_size}")
    if args.cpu:  # otherwise the device, and so this check, waits for torch
        try:
            check_precision(args.precision, args.backend, "cpu")
        except ValueError as e:
            raise InputError(str(e)) from None


def main(argv: Sequence[str] | None = None, model: nn.Module | None = None) -> int:
    """Runs the command line; returns the exit code (2 for any bad input).

    Args:
        argv: arguments (default ``sys.argv[1:]``).
        model: a ready model to use instead of ``--checkpoint`` (scripting and tests).
    """
    args = build_parser().parse_args(_glue_clicks(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        _check_values(args)
    except InputError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    import torch

    threads_before = torch.get_num_threads()  # main() may run inside a script or a test
    try:
        return _run(args, model)
    finally:
        torch.set_num_threads(threads_before)


def _run(args: argparse.Namespace, model: nn.Module | None) -> int:
    import numpy as np

    from isegm.annotation.clicks import check_clicks
    from isegm.annotation.errors import DeviceError
    from isegm.annotation.io import read_image, read_mask, write_png
    from isegm.annotation.runtime import select_device, set_threads
    from isegm.annotation.session import Predictor
    from isegm.inference.utils import CheckpointError

    try:
        device = select_device(args.cpu, args.gpu)
        set_threads(args.threads)
        parsed = parse_clicks(args.clicks)
        if len(parsed) > args.max_clicks:
            raise InputError(f"{len(parsed)} clicks, the limit is --max-clicks {args.max_clicks}")
        image = read_image(args.image, args.max_pixels)
        clicks = check_clicks(parsed, image.shape[:2])
        prev = read_mask(args.prev_mask, image.shape[:2]) if args.prev_mask else None
        for out in (args.output, args.prob_output):
            if out is not None and Path(out).suffix.lower() != ".png":
                raise InputError(f"{out}: masks are written as PNG, use a .png file name")
        predictor = Predictor(
            model if model is not None else args.checkpoint,
            device=device,
            **defaults.session_options(args),
        )
        predictor.set_image(image)
        mask, prob = predictor.predict(clicks, prev)
        write_png(args.output, mask.astype(np.uint8) * 255)
        if args.prob_output:
            write_png(args.prob_output, np.rint(prob * 255).astype(np.uint8))
    except (InputError, CheckpointError, DeviceError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    if not mask.any():
        sys.stderr.write(
            f"warning: the mask is empty (no pixel above --threshold {args.threshold:g}; "
            f"highest probability {float(prob.max()):.2f}); wrote {args.output} anyway\n"
        )
    logger.info(
        "%d click(s) in %.2f s; %d mask pixels -> %s",
        len(clicks),
        predictor.last_predict_seconds,
        int(mask.sum()),
        args.output,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
