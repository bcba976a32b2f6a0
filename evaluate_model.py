#!/usr/bin/env python
"""Evaluate interactive segmentation models with simulated clicks (NoC protocol).

    python evaluate_model.py NoBRS --gpu=0 --checkpoint=weights/mst-3s-slim-448-base.pth \\
        --datasets=DAVIS,LoveDASMALL,LoveDAMEDIUM,LoveDALARGE,LoveDAHUGE \\
        --cf-n=3 --acf --n-clicks=20 --target-iou=0.9 --inference_size=448

Every object of every sample of each dataset is evaluated with each checkpoint (a file, a
comma-separated list, a folder of ``*.pth`` or ``--exp-path``; default: the built-in
``weights/mst_tiny_photos_bigobjects.pth``). The NoBRS predictor zooms on the object
(``--inference_size``), averages with the flipped input and optionally runs cascade-forward
refinement (``--cf-n/--acf/--cf-click``). One table row is printed per model x dataset.
``--batch-size N`` runs N objects in lockstep, one batched forward per click step, with the
results of N = 1 (``isegm/inference/lockstep.py``); ``--precision bf16|fp16|int8`` and
``--backend onnxruntime`` run the network in another precision or through ONNX where the
device and processor offer it (``isegm/inference/backends_cli.py``, ``backends.py``).
``torchrun --nproc_per_node K evaluate_model.py ...`` (or ``--nproc K`` on one machine, gloo)
shares the samples out over K processes; rank 0 merges their per-sample logs into the files of
one process (``isegm/inference/sharding.py``).

Output: a run folder under ``--logs-path`` (default ``<EXPS_PATH>/evaluation_logs``) whose name
is fixed by the checkpoints, the datasets and the options that change the results, holding
``summary.csv``/``summary.json``, per-sample IoUs (``ious/*.jsonl`` written sample by sample,
``ious/*.npz``), ``plots/<dataset>.png`` (mIoU vs clicks) and ``eval.log``; see
``isegm/inference/results.py``. A killed run continues where it stopped with ``--resume`` (same
command line, or ``--resume <run folder>``); finished samples are not recomputed. Without
``--resume`` an existing run folder is moved aside (``<name>.prev-<time>``), never overwritten.
A run folder in use is locked (``.lock``, released when its process ends, kill -9 included): a
second run on it stops with one line naming the folder and the other pid. A new run that fails
before finishing a sample leaves no folder behind.

Exit codes: 0 at least one model x dataset was evaluated (datasets that are not present are
reported and skipped, and listed at the end; unreadable samples are reported and skipped);
1 nothing could be evaluated (every dataset skipped); 2 bad command line (an unknown
``--datasets`` name included, checked before torch is imported), missing or broken
checkpoint, unreadable config, a ``--resume`` folder made with other options or a run folder in
use by another process (one ``error:`` line, no traceback); 130 interrupted (the finished
samples are on disk: rerun with --resume).

The evaluation itself lives in ``isegm/inference/``: the command line (``eval_command.py``), the
checkpoints (``checkpoint_selection.py``), the run folder (``run_folder.py``), one model x
dataset pair (``protocol_runner.py``) and the whole run (``evaluation_run.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# torch-free: the command line is parsed and checked (and --nproc ranks started) before torch
# and the evaluator are imported (seconds per process), so --help and a bad flag answer at once
from isegm.inference import launcher
from isegm.inference.eval_command import UsageError, build_parser, parse_args
from isegm.utils.log import reset_logging, setup_logging

# the names tests and benchmarks use from this script (re-exported from isegm.inference)
__all__ = ["REPO", "UsageError", "build_parser", "build_predictor", "get_eval_dataset",
           "load_is_model", "main", "parse_args", "run_pair"]

REPO = Path(__file__).resolve().parent  # default weights/ and experiments/

_LAZY = {"build_predictor": "isegm.inference.protocol_runner",
         "run_pair": "isegm.inference.protocol_runner",
         "get_eval_dataset": "isegm.data.datasets",
         "load_is_model": "isegm.inference.utils"}


def __getattr__(name: str) -> Any:
    """The heavy re-exports of ``__all__``, imported on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _print_line(line: str) -> None:
    print(line, flush=True)


def _error(e: BaseException) -> int:
    print(f"error: {' '.join(str(e).split())}", file=sys.stderr, flush=True)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    setup_logging()
    try:
        mute = contextlib.ExitStack()
        if launcher.rank_from_env() > 0:  # usage, help and bad flags: rank 0 reports them
            mute.enter_context(contextlib.redirect_stdout(io.StringIO()))
            mute.enter_context(contextlib.redirect_stderr(io.StringIO()))
        try:
            with mute:
                args = parse_args(argv)
                if args.nproc < 1:
                    raise UsageError("--nproc must be >= 1")
        except SystemExit as e:  # argparse: --help, or its one error line already printed
            return int(e.code or 0)
        except UsageError as e:
            return 2 if launcher.rank_from_env() > 0 else _error(e)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        if args.nproc > 1 and not launcher.under_launcher():  # start the ranks, then wait
            return launcher.launch_local(args.nproc, args.argv, Path(__file__).resolve())
        return _evaluate(args)
    finally:
        reset_logging()


def _evaluate(args: argparse.Namespace) -> int:
    """The evaluation of a checked command line (the heavy imports start here)."""
    from isegm.inference.evaluation_run import run_evaluation
    from isegm.inference.results import ResumeError
    from isegm.inference.run_folder import release_run
    from isegm.inference.utils import CheckpointError
    from isegm.utils.config import ConfigError
    from isegm.utils.exp import FolderInUseError

    # errors of the command line itself: every rank meets them alike, so only rank 0 reports
    same_in_every_rank = (UsageError, CheckpointError, ConfigError)
    try:
        return run_evaluation(args, REPO, _print_line)
    except (UsageError, CheckpointError, ConfigError, ResumeError, FolderInUseError) as e:
        if launcher.rank_from_env() == 0 or not isinstance(e, same_in_every_rank):
            _error(e)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished samples are saved; rerun with --resume to continue",
              file=sys.stderr, flush=True)
        return 130
    finally:
        release_run(args)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
