"""The command line of ``train.py`` and ``dis_train.py``: the flags and their checks.

Torch-free, so that both scripts answer ``--help`` and a bad flag before they import torch and
the training code (seconds on a busy machine); :mod:`isegm.engine.launch` runs the checked
command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from isegm.data.eval_registry import COCO_PREFIX, IMAGES_DIR_PREFIX, split_user_spec
from isegm.utils.cli import ArgumentParser

__all__ = ["build_parser", "parse_args"]


def build_parser(distributed: bool) -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="dis_train.py" if distributed else "train.py",
        description="Train an interactive segmentation model from an experiment script.",
        allow_abbrev=True,
    )
    p.add_argument(
        "model_path", type=str, help="experiment script, e.g. models/mst_tiny_photos.py"
    )
    p.add_argument(
        "--model_base_name",
        "--model-base-name",
        dest="model_base_name",
        default=None,
        help="experiment family folder (default: the script's MODEL_NAME)",
    )
    p.add_argument("--exp-name", default="", help="suffix of the numbered experiment folder")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers per process")
    p.add_argument(
        "--batch-size", type=int, default=-1, help="global batch size (default: the script's)"
    )
    p.add_argument(
        "--epochs", type=int, default=-1,
        help="number of epochs (default: the script's; the seed's scripts train the original's "
             "499 under --train-settings reference)",
    )
    p.add_argument(
        "--train-settings", choices=("reference", "project"), default=None,
        help="reference: the original code's training (default of the seed's scripts in "
             "models/: its +CL loss, AdamW 0.01 on every parameter / 0.02 under "
             "--layerwise-decay with the click embedding untrained, ignore pixels in the score "
             "loss and the click sampler, random inner-half training clicks drawn per process, "
             "lr schedule one epoch ahead, 499 epochs, bilinear-truncated MST masks, original "
             "layer init, no validation; SimpleClick: Adam); project: this project's "
             "choices (default of its tiny/photo recipes). README 'Reproducing published "
             "training'",
    )
    p.add_argument(
        "--gpus",
        "--gpu",
        dest="gpus",
        type=str,
        default=None,
        help="GPU ids, e.g. 0,1,2 (default: GPU 0 if CUDA is available, else the CPU)",
    )
    p.add_argument("--cpu", action="store_true", help="train on the CPU")
    p.add_argument(
        "--nproc",
        type=int,
        default=1 if not distributed else 2,
        help="CPU processes for dis_train.py --cpu (gloo)",
    )
    p.add_argument("--dport", type=int, default=29500, help="rendezvous port (single node)")
    p.add_argument(
        "--resume-exp", default=None, help="experiment folder (or its NNN prefix) to resume"
    )
    p.add_argument("--resume-prefix", default="last", help="checkpoint name prefix to resume from")
    p.add_argument(
        "--start-epoch",
        type=int,
        default=None,
        help="ignored: the epoch and step are restored from the resumed checkpoint",
    )
    p.add_argument(
        "--weights", default=None, help="initialise the model from this checkpoint (weights only)"
    )
    p.add_argument(
        "--img_size",
        "--img-size",
        dest="img_size",
        type=int,
        default=None,
        help="training crop size (default: the script's)",
    )
    p.add_argument(
        "--amp", action="store_true", help="mixed precision (fp16 + scaler on CUDA, bf16 on CPU)"
    )
    p.add_argument("--amp-dtype", choices=("fp16", "bf16"), default=None)
    p.add_argument("--layerwise-decay", action="store_true",
                   help="layer-wise lr decay 0.75 (weight decay 0.02 under --train-settings "
                        "reference, as the original)")
    p.add_argument("--upsample", choices=("x1", "x2", "x4"), default="x1")
    p.add_argument(
        "--random-split",
        action="store_true",
        help="plain ViT: global attention in every block instead of windows",
    )
    p.add_argument("--grad-clip", type=float, default=None, help="clip the gradient norm")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--max-steps-per-epoch", type=int, default=None, help="shorten epochs (debugging)"
    )
    p.add_argument(
        "--save-last-every", type=int, default=None, help="also write last.pth every N steps"
    )
    p.add_argument(
        "--time-limit", type=_minutes, default=None, metavar="MINUTES",
        help="stop at the first step boundary after MINUTES of training, save last.pth and exit "
             "0 with the command that continues (train in chunks of fixed wall time)",
    )
    p.add_argument("--lr", type=float, default=None,
                   help="base learning rate (default: the script's)")
    own = p.add_argument_group(
        "your own images (models/finetune.py; README 'Train on your own images')")
    own.add_argument(
        "--train-data", action="append", default=[], metavar="SPEC",
        help=f"training images: {IMAGES_DIR_PREFIX}<folder> (images/ + masks/), "
             f"{COCO_PREFIX}<annotations.json> (e.g. the server's coco.json) or "
             f"{COCO_PREFIX}<folder> (every .json in it); repeatable")
    val = own.add_mutually_exclusive_group()
    val.add_argument("--val-data", action="append", default=[], metavar="SPEC",
                     help="validation images, as --train-data; NoC@85/90 after every epoch, "
                          "best.pth keeps the lowest NoC@90")
    val.add_argument("--val-fraction", type=float, default=None, metavar="F",
                     help="hold out this fraction of the training images (by image) for "
                          "validation instead")
    own.add_argument("--images", default=None, metavar="DIR",
                     help=f"folder of the images of a {COCO_PREFIX} file (default: the JSON's "
                          f"folder)")
    own.add_argument("--categories", default=None, metavar="NAMES",
                     help=f"comma-separated {COCO_PREFIX} categories to train on (names or ids; "
                          f"default: all)")
    own.add_argument("--min-area", type=int, default=None, metavar="PIXELS",
                     help="leave out smaller objects, counted in the log (default: the "
                          "script's)")
    own.add_argument("--val-objects", type=int, default=None, metavar="N",
                     help="validate on at most N objects (default: the script's)")
    p.add_argument("--debug", action="store_true", help="one short epoch, no workers")
    p.add_argument("--config-path", default=None, help="config.yml with dataset/weight paths")
    p.add_argument("--exps-path", default=None, help="override EXPS_PATH of the config")
    # accepted for command-line compatibility with the reference (no effect)
    p.add_argument("--temp-model-path", default="", help=argparse.SUPPRESS)
    p.add_argument("--init_method", default="env://", help=argparse.SUPPRESS)
    p.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)
    return p


def _minutes(text: str) -> float:
    """``--time-limit``: a number of minutes >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of minutes: {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be >= 0 minutes, got {text}")
    return value


def parse_args(argv: Sequence[str], distributed: bool) -> argparse.Namespace:
    """Parses and checks the command line; a bad one exits with one ``error:`` line (code 2)."""
    parser = build_parser(distributed)
    args = parser.parse_args(argv)
    if not Path(args.model_path).is_file():
        parser.error(f"experiment script not found: {args.model_path}")
    if args.gpus is not None:
        ids = [g.strip() for g in args.gpus.split(",") if g.strip()]
        if not ids or not all(g.isdigit() for g in ids):
            parser.error(f"--gpus {args.gpus}: expected GPU ids such as 0 or 0,1")
    for flag, value, low in (("--workers", args.workers, 0), ("--nproc", args.nproc, 1),
                             ("--min-area", args.min_area, 0),
                             ("--val-objects", args.val_objects, 1)):
        if value is not None and value < low:
            parser.error(f"{flag} must be >= {low}, got {value}")
    for flag, specs in (("--train-data", args.train_data), ("--val-data", args.val_data)):
        for spec in specs:
            parts = split_user_spec(spec)
            if parts is None or not parts[1].strip():
                parser.error(f"{flag} {spec}: expected {IMAGES_DIR_PREFIX}<folder> or "
                             f"{COCO_PREFIX}<annotations.json>")
    if args.val_fraction is not None and not 0 < args.val_fraction < 1:
        parser.error(f"--val-fraction must be between 0 and 1, got {args.val_fraction:g}")
    if args.lr is not None and not args.lr > 0:
        parser.error(f"--lr must be > 0, got {args.lr:g}")
    uses_own = args.train_data or args.val_data or args.val_fraction is not None
    if uses_own and not args.train_data:
        parser.error("--val-data / --val-fraction need --train-data")
    return args
