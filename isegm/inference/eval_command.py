"""The command line of ``evaluate_model.py``: its flags, their checks and the device they ask for.

Parsing fills in what the rest of the evaluation reads from ``args``: ``dataset_names``,
``path_overrides``, ``explicit_settings`` (evaluation settings given on the command line) and
``effective_target`` (the IoU at which clicking stops).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from isegm.data.eval_registry import (
    COCO_PREFIX,
    EVAL_DATASETS,
    IMAGES_DIR_PREFIX,
    unknown_dataset_names,
)
from isegm.inference import eval_settings
from isegm.inference.backends_cli import PRECISIONS, add_precision_arguments, check_precision
from isegm.inference.clicker import CLICK_MODES
from isegm.inference.refine import REFINE_CHOICES
from isegm.inference.utils import DEFAULT_MODEL_FILE
from isegm.utils.cli import ArgumentParser
from isegm.utils.config import DEFAULT_CONFIG_PATH

if TYPE_CHECKING:  # this module is read before torch is imported: --help and bad flags are fast
    import torch

__all__ = ["MODES", "PRECISIONS", "REFERENCE_MODES", "UsageError", "build_parser",
           "choose_device", "parse_args"]

# eval.log names the command, as it did when this code lived in evaluate_model.py
logger = logging.getLogger("evaluate_model")

MODES = ("NoBRS",)
REFERENCE_MODES = ("RGB-BRS", "DistMap-BRS", "f-BRS-A", "f-BRS-B", "f-BRS-C", "SAM", "HQSAM",
                   "HQSAM_CUSTOM", "HQSAM_BASE", "SAM_BASE")


class UsageError(ValueError):
    """A bad flag value or an impossible request (one-line message, exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    """Every flag of ``evaluate_model.py`` (the parser also gives ``--help``)."""
    p = ArgumentParser(
        prog="evaluate_model.py",
        description="Evaluate interactive segmentation models with simulated clicks.",
        epilog="Exit codes: 0 evaluated (missing datasets skipped and listed), 1 nothing "
               "evaluated, 2 bad arguments/checkpoint/config, 130 interrupted (use --resume).",
    )
    p.add_argument("mode", nargs="?", default="NoBRS",
                   help="predictor; only NoBRS exists (the reference's BRS/SAM modes do not)")
    ckpt = p.add_mutually_exclusive_group()
    ckpt.add_argument("--checkpoint", default="",
                      help="checkpoint file(s), comma-separated, or a folder (every *.pth in "
                           "it); relative names are also looked up in INTERACTIVE_MODELS_PATH; "
                           "'grabcut' is classical OpenCV GrabCut driven by the same clicks "
                           f"(a baseline); default: weights/{DEFAULT_MODEL_FILE}")
    ckpt.add_argument("--exp-path", default="",
                      help="experiment folder (relative to EXPS_PATH, unique prefix allowed) "
                           "whose checkpoints/*.pth are all evaluated; 'path:prefix' selects "
                           "checkpoints/prefix*.pth")
    p.add_argument("--refine", default="none", metavar="MODE[,MODE]",
                   help="graph-cut refinement of each network's maps (isegm/inference/"
                        "refine.py): 'grabcut' adds a row '<model>+grabcut' after each model's "
                        "plain row (its own run key); default 'none', the network alone, as "
                        "published tables report it")
    p.add_argument("--datasets", default="GrabCut",
                   help="comma-separated dataset names (default GrabCut); known: "
                        + ", ".join(EVAL_DATASETS)
                        + f", {IMAGES_DIR_PREFIX}<folder>, {COCO_PREFIX}<annotations.json>")
    p.add_argument("--dataset-path", action="append", default=[], metavar="NAME=PATH",
                   help="use PATH for dataset NAME instead of config.yml (repeatable)")
    dev = p.add_mutually_exclusive_group()
    dev.add_argument("--gpus", "--gpu", dest="gpus", default=None,
                     help="GPU id(s); the first is used (default 0 if CUDA is available; "
                          "without CUDA: a warning and the CPU)")
    dev.add_argument("--cpu", action="store_true", help="run on the CPU")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--target-iou", type=float, default=0.95,
                        help="stop clicking at this IoU (clamped to >= 0.8; default 0.95)")
    target.add_argument("--iou-analysis", action="store_true",
                        help="run all --n-clicks clicks (target 1.01) for true mIoU curves")
    p.add_argument("--inference_size", "--inference-size", dest="inference_size", type=int,
                   default=None, help="ZoomIn crop side fed to the network (default: the "
                                      "model's training size, stored in its checkpoint)")
    p.add_argument("--n-clicks", type=int, default=20, help="click budget and NoC cap")
    p.add_argument("--min-n-clicks", type=int, default=1,
                   help="never stop before this many clicks")
    p.add_argument("--thresh", type=float, default=0.49,
                   help="probability threshold of the mask (default 0.49)")
    p.add_argument("--clicks-limit", type=int, default=None,
                   help="feed only the first N clicks to the network (-1: --n-clicks)")
    p.add_argument("--eval-mode", default="cvpr",
                   help="kept for compatibility with the reference; no effect on the results")
    p.add_argument("--eval-ritm", action="store_true",
                   help="kept for compatibility; models always run in eval mode")
    p.add_argument("--cf-n", type=int, default=0,
                   help="cascade-forward refinement: extra forward passes (0: off)")
    p.add_argument("--cf-click", type=int, default=1,
                   help="use the cascade while there are at most this many clicks")
    p.add_argument("--acf", action="store_true",
                   help="adaptive cascade: stop once a pass changes <= 20 pixels")
    p.add_argument("--clicker", choices=CLICK_MODES, default="standard",
                   help="next-click rule: the standard protocol, or MST's random top-50 draw")
    p.add_argument("--seed", type=int, default=0, help="seed of the random-top50 clicker")
    p.add_argument("--variant", choices=("at", "it"), default=None,
                   help="architecture of reference AT/IT ablation checkpoints")
    p.add_argument("--limit", type=int, default=None,
                   help="evaluate only the first N samples of each dataset")
    p.add_argument("--vis", "--vis-preds", dest="vis", action="store_true",
                   help="save an overlay per object (mask, clicks, ground truth) in <run>/vis")
    p.add_argument("--print-ious", action="store_true",
                   help="print mIoU after clicks 1..20 (forces all clicks like --iou-analysis "
                        "unless --min-n-clicks > 1)")
    p.add_argument("--save-ious", action="store_true",
                   help="also write the reference's pickled IoU lists (ious/*.pkl)")
    p.add_argument("--model-name", default=None,
                   help="label of the model in the table and plots (one checkpoint only)")
    p.add_argument("--config-path", default=str(DEFAULT_CONFIG_PATH),
                   help="config.yml with dataset and output paths (default: the repo's)")
    p.add_argument("--logs-path", default="",
                   help="output root (default <EXPS_PATH>/evaluation_logs)")
    p.add_argument("--logs-prefix", default="", help="prefix of the run folder name")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN_FOLDER",
                   help="continue an interrupted run: the same command line finds its folder; "
                        "or give the run folder")
    eval_settings.add_arguments(p)
    p.add_argument("--batch-size", type=_at_least_one, default=1,
                   help="objects evaluated in lockstep, one batched forward per click step "
                        "(default 1); results equal those of 1 (isegm/inference/lockstep.py)")
    add_precision_arguments(p, cuda=True)  # --precision, --backend (backends_cli.py)
    p.add_argument("--nproc", type=int, default=1,
                   help="evaluation processes on this machine (gloo; the samples are shared "
                        "out, rank 0 writes the results of one process; "
                        "isegm/inference/sharding.py); under torchrun the processes come from it")
    return p


def _at_least_one(text: str) -> int:
    """``--batch-size``: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parses and validates the command line (raises :class:`UsageError`)."""
    args = build_parser().parse_args(argv)
    if args.mode not in MODES:
        if args.mode in REFERENCE_MODES:
            raise UsageError(f"mode {args.mode} is not available: only NoBRS exists in this "
                             "implementation")
        raise UsageError(f"unknown mode {args.mode!r}: only NoBRS exists")
    for name, low in (("n_clicks", 1), ("min_n_clicks", 1), ("inference_size", 32),
                      ("cf_n", 0), ("cf_click", 0)):
        if getattr(args, name) is not None and getattr(args, name) < low:
            raise UsageError(f"--{name.replace('_', '-')} must be >= {low}")
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be >= 1")
    if args.threads is not None and args.threads < 1:
        raise UsageError("--threads must be >= 1")
    if not 0.0 < args.thresh < 1.0:
        raise UsageError("--thresh must be in (0, 1)")
    try:
        args.explicit_settings = eval_settings.explicit_settings(args)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.clicks_limit == -1:
        args.clicks_limit = args.n_clicks
    elif args.clicks_limit is not None and args.clicks_limit < 1:
        raise UsageError("--clicks-limit must be >= 1 (or -1 for --n-clicks)")
    args.refine_modes = ["none"]
    for mode in (m.strip().lower() for m in args.refine.split(",")):
        if mode not in REFINE_CHOICES:
            raise UsageError(f"--refine {args.refine}: unknown mode {mode!r}; choose from "
                             f"{', '.join(REFINE_CHOICES)}")
        if mode not in args.refine_modes:
            args.refine_modes.append(mode)
    if args.cpu or args.backend != "torch":  # the device is known: answer before torch loads
        try:
            check_precision(args.precision, args.backend, "cpu" if args.cpu else "cuda")
        except ValueError as e:
            raise UsageError(str(e)) from None
    args.dataset_names = list(dict.fromkeys(n.strip() for n in args.datasets.split(",")
                                            if n.strip()))
    if not args.dataset_names:
        raise UsageError("--datasets is empty")
    unknown = unknown_dataset_names(args.dataset_names)
    if unknown:
        raise UsageError(f"--datasets: unknown dataset {', '.join(map(repr, unknown))}; known: "
                         f"{', '.join(EVAL_DATASETS)}, {IMAGES_DIR_PREFIX}<folder>, "
                         f"{COCO_PREFIX}<annotations.json>")
    args.path_overrides = {}
    for item in args.dataset_path:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise UsageError(f"--dataset-path {item!r}: expected NAME=PATH")
        args.path_overrides[name.strip()] = path.strip()
    for name in args.path_overrides:
        if name not in args.dataset_names:
            logger.warning("--dataset-path %s: %s is not in --datasets", name, name)
    if args.cf_n > 0 or args.acf:
        logger.warning("--cf-n/--acf run cascade-forward here; the original release parsed and "
                       "ignored them, so its published tables were made without it (README: "
                       "Reproducing published numbers)")
    if (args.iou_analysis or args.print_ious) and args.min_n_clicks <= 1:
        args.effective_target = 1.01
    else:
        args.effective_target = max(0.8, args.target_iou)
    return args


def choose_device(args: argparse.Namespace) -> torch.device:
    """``--cpu``, else the first ``--gpus`` id on CUDA, else the CPU (one warning if a GPU
    was asked for)."""
    import torch

    if args.cpu:
        return torch.device("cpu")
    gpu = (args.gpus or "0").split(",")[0].strip() or "0"
    if torch.cuda.is_available():
        if not gpu.isdigit() or int(gpu) >= torch.cuda.device_count():
            raise UsageError(f"--gpus {args.gpus}: no such GPU "
                             f"({torch.cuda.device_count()} available)")
        return torch.device(f"cuda:{gpu}")
    if args.gpus is not None:
        logger.warning("CUDA is not available: running on the CPU (--gpus %s ignored)",
                       args.gpus)
    return torch.device("cpu")

