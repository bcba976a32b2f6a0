"""Command line and process launching shared by ``train.py`` and ``dis_train.py``.

One ``main`` serves every setting (detectron2's ``launch`` pattern):

* ``train.py``: one process (CPU or one GPU);
* ``dis_train.py`` without torchrun: spawns one process per GPU of ``--gpus`` (or ``--nproc``
  CPU processes with gloo), rendezvous on localhost:``--dport``;
* ``dis_train.py`` under ``torchrun`` (multi-node): every process reads ``RANK`` /
  ``WORLD_SIZE`` / ``LOCAL_RANK`` and joins the group.

An experiment script (``models/*.py``) provides ``MODEL_NAME``, ``init_model(cfg)``,
``get_datasets(cfg) -> (trainset, valset)`` and ``get_train_config(cfg) -> (TrainConfig,
LossConfig)``; ``cfg`` holds the command-line arguments, the ``config.yml`` paths and the
run context (``device``, ``rank``, ``world_size``, ``exp_dir``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import logging
import os
import shlex
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType, SimpleNamespace

import torch

from isegm.data.base import DatasetError
from isegm.model.checkpoint import CheckpointError, load_state_dict_strict
from isegm.utils import distributed as dist_utils
from isegm.utils.config import ConfigError, load_config
from isegm.utils.exp import (
    ExperimentError,
    FolderInUseError,
    FolderLock,
    create_experiment_dir,
    find_experiment_dir,
    find_resume_checkpoint,
    remove_stale_temp_files,
    setup_run_logging,
    write_run_config,
)
from isegm.utils.log import close_log_file, log_to_files

from .cli import build_parser, parse_args
from .stopping import TrainingInterrupted
from .train_checkpoint import model_weights
from .train_step import NonFiniteLossError
from .trainer import Trainer

__all__ = ["build_parser", "main", "resume_command"]

logger = logging.getLogger(__name__)
_USER_ERRORS = (
    DatasetError,
    CheckpointError,
    ConfigError,
    ExperimentError,
    NonFiniteLossError,
    FileNotFoundError,
)


class UsageError(ValueError):
    """A bad flag or an impossible request (e.g. GPUs on a machine without CUDA)."""


def load_script(path: str) -> ModuleType:
    script = Path(path)
    if not script.is_file():
        raise UsageError(f"experiment script not found: {script}")
    spec = importlib.util.spec_from_file_location(f"isegm_exp_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    for name in ("init_model", "get_datasets", "get_train_config"):
        if not hasattr(module, name):
            raise UsageError(f"{script}: an experiment script must define {name}(cfg)")
    return module


def _devices(args: argparse.Namespace, distributed: bool) -> tuple[str, list[int]]:
    """('cpu', []) or ('cuda', gpu ids)."""
    if args.cpu:
        return "cpu", []
    if args.gpus is None:  # default: GPU 0 (train.py) or every visible GPU (dis_train.py)
        if not torch.cuda.is_available():
            return "cpu", []
        return "cuda", list(range(torch.cuda.device_count())) if distributed else [0]
    ids = [int(g) for g in args.gpus.split(",") if g.strip() != ""]
    if not torch.cuda.is_available():
        raise UsageError(
            f"--gpus {args.gpus} requested but CUDA is not available on this machine; use --cpu"
        )
    if max(ids) >= torch.cuda.device_count():
        raise UsageError(f"--gpus {args.gpus}: only {torch.cuda.device_count()} GPU(s) visible")
    return "cuda", ids


def _make_cfg(args: argparse.Namespace, script: ModuleType) -> SimpleNamespace:
    config = load_config(args.config_path)
    cfg = SimpleNamespace(**config)
    for k, v in vars(args).items():
        setattr(cfg, k, v)
    if args.exps_path:
        cfg.EXPS_PATH = str(Path(args.exps_path).resolve())
    cfg.model_base_name = args.model_base_name or getattr(
        script, "MODEL_NAME", Path(args.model_path).stem
    )
    if args.debug:
        cfg.workers = 0
        cfg.epochs = 1
        cfg.max_steps_per_epoch = cfg.max_steps_per_epoch or 5
    return cfg


_LOCKS: list[FolderLock] = []  # held until the process ends (the kernel releases them)


def _prepare_experiment(args, cfg) -> tuple[Path, Path | None]:
    """The experiment folder (locked by this process) and the checkpoint to resume from."""
    exps = Path(cfg.EXPS_PATH)
    if args.resume_exp:
        exp_dir = find_experiment_dir(exps, cfg.model_base_name, args.resume_exp)
        _LOCKS.append(FolderLock(exp_dir).acquire())
        remove_stale_temp_files(exp_dir / "checkpoints")  # of a killed save
        return exp_dir, find_resume_checkpoint(exp_dir, args.resume_prefix)
    exp_dir = create_experiment_dir(
        exps, cfg.model_base_name, args.exp_name or "run", Path(args.model_path)
    )
    _LOCKS.append(FolderLock(exp_dir).acquire())
    return exp_dir, None


def _release_experiment(exp_dir: Path | None, resumed: bool) -> None:
    """Unlocks the experiment folder; a new one without any checkpoint (the run failed or was
    stopped before its first save) is deleted."""
    if exp_dir is not None and not resumed and not any((exp_dir / "checkpoints").glob("*.pth")):
        close_log_file()
        shutil.rmtree(exp_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            exp_dir.parent.rmdir()  # the family folder, if this run made it and it is empty
    while _LOCKS:
        _LOCKS.pop().release()


def resume_command(argv: Sequence[str], exp_dir: Path, distributed: bool) -> str:
    """The command line that continues a stopped run: the same options, ``--resume-exp``
    naming its folder (``--exp-name``/``--weights`` dropped: the folder and checkpoint decide)."""
    drop = {"--exp-name", "--resume-exp", "--weights"}
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in drop:
            skip = "=" not in a
            continue
        out.append(a)
    script = "dis_train.py" if distributed else "train.py"
    return shlex.join(["python", script, *out, "--resume-exp", exp_dir.name])


def _train_config(cfg, script):
    train_cfg, loss_cfg = script.get_train_config(cfg)
    over = {}
    if cfg.batch_size > 0:
        over["batch_size"] = cfg.batch_size
    if cfg.epochs > 0:
        over["epochs"] = cfg.epochs
    if cfg.amp:
        over["amp"] = cfg.amp_dtype or ("fp16" if cfg.device.type == "cuda" else "bf16")
    if cfg.layerwise_decay:
        over["layer_decay"] = 0.75
    if getattr(cfg, "lr", None) is not None:
        over["lr"] = cfg.lr
    for key, attr in (
        ("grad_clip", "grad_clip"),
        ("max_steps_per_epoch", "max_steps_per_epoch"),
        ("save_last_every_steps", "save_last_every"),
    ):
        if getattr(cfg, attr) is not None:
            over[key] = getattr(cfg, attr)
    if cfg.time_limit is not None:
        over["time_limit_s"] = 60.0 * cfg.time_limit
    over["workers"] = cfg.workers
    over["seed"] = cfg.seed
    return dataclasses.replace(train_cfg, **over), loss_cfg


def run_worker(
    rank: int,
    world_size: int,
    args: argparse.Namespace,
    exp_dir: Path,
    resume: Path | None,
    device_type: str,
    gpu_ids: Sequence[int],
) -> None:
    """Body of every training process."""
    if device_type == "cuda":
        local = gpu_ids[rank % len(gpu_ids)] if gpu_ids else rank
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    dist_utils.init_distributed(rank, world_size, "nccl" if device_type == "cuda" else "gloo")
    try:
        setup_run_logging(exp_dir / "logs", rank)
        script = load_script(args.model_path)
        cfg = _make_cfg(args, script)
        cfg.device, cfg.rank, cfg.world_size, cfg.exp_dir = device, rank, world_size, exp_dir
        cfg.resume_checkpoint = resume  # a script that builds its model from a file reads it
        torch.manual_seed(args.seed)  # the same initial weights in every process and every run
        model = script.init_model(cfg)
        if args.weights and resume is None and not getattr(script, "LOADS_WEIGHTS", False):
            load_state_dict_strict(model, model_weights(args.weights), args.weights)
        trainset, valset = script.get_datasets(cfg)
        train_cfg, loss_cfg = _train_config(cfg, script)
        trainer = Trainer(
            model, train_cfg, loss_cfg, trainset, valset, exp_dir, device, resume=resume
        )  # a bad resume checkpoint stops here, before anything is written
        if rank == 0:
            write_run_config(
                exp_dir,
                vars(args),
                {
                    "train_cfg": dataclasses.asdict(train_cfg),
                    "loss_cfg": dataclasses.asdict(loss_cfg),
                    "model": model.cfg.to_dict(),
                    "world_size": world_size,
                    "device": str(device),
                },
            )
            logger.info("experiment folder: %s", exp_dir)
        trainer.run()
    finally:
        dist_utils.cleanup()


def _spawn_entry(rank, world_size, args, exp_dir, resume, device_type, gpu_ids):
    try:
        run_worker(rank, world_size, args, exp_dir, resume, device_type, gpu_ids)
    except TrainingInterrupted as e:
        if rank == 0:
            _report_stop(e, args, exp_dir)
        sys.exit(0 if e.time_limit else 130)
    except _USER_ERRORS + (UsageError,) as e:
        if rank == 0:
            print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(2)


def main(argv: Sequence[str] | None = None, distributed: bool = False) -> int:
    """Entry point of ``train.py`` (``distributed=False``) and ``dis_train.py``.

    Exit codes: 0 done, or stopped by ``--time-limit`` (``last.pth`` saved; one line with the
    command that continues), 2 bad input (one ``error:`` line), 130 stopped by Ctrl-C
    (``last.pth`` saved; one line with the command that resumes it).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv, distributed)
    args.argv, args.distributed = argv, distributed
    state: dict = {}
    try:
        return _run(args, distributed, state)
    except TrainingInterrupted as e:
        if state.get("exp_dir") is not None:
            _report_stop(e, args, state["exp_dir"])
        return 0 if e.time_limit else 130
    except KeyboardInterrupt:
        print("stopped before the first checkpoint; nothing to resume", file=sys.stderr)
        return 130
    except _USER_ERRORS + (UsageError, FolderInUseError) as e:
        for line in getattr(e, "problems", []):  # a data check: one line per bad file
            print(f"error: {' '.join(str(line).split())}", file=sys.stderr)
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    finally:
        _release_experiment(state.get("exp_dir"), state.get("resume") is not None)


def _report_stop(e: TrainingInterrupted, args: argparse.Namespace, exp_dir: Path) -> None:
    """The one line of a stop (Ctrl-C or the time limit): where it stopped and the exact
    command that resumes."""
    why = f"time limit of {args.time_limit:g} min reached" if e.time_limit else "stopped"
    line = (f"{why} at epoch {e.epoch} step {e.step}; resume with: "
            f"{resume_command(args.argv, exp_dir, args.distributed)}")
    log_to_files(line)
    print(line, file=sys.stderr, flush=True)


def _run(args: argparse.Namespace, distributed: bool, state: dict) -> int:
    script = load_script(args.model_path)
    if (args.train_data or args.val_data) and not getattr(script, "USER_DATA", False):
        raise UsageError(f"--train-data / --val-data are read by models/finetune.py, not by "
                         f"{args.model_path}")
    device_type, gpu_ids = _devices(args, distributed)
    env = dist_utils.torchrun_env()
    cfg = _make_cfg(args, script)
    cfg.device = torch.device(device_type)
    if env is None:
        setup_run_logging(None, 0)  # the console, for the data check's lines too
    script.get_datasets(cfg)  # fail at start on a missing dataset or annotation file
    if env is not None:  # torchrun, possibly multi-node
        rank, world, local = env
        exp_dir, resume = _shared_experiment(args, cfg, rank, world, device_type)
        if rank == 0:
            state.update(exp_dir=exp_dir, resume=resume)
        run_worker(
            rank,
            world,
            args,
            exp_dir,
            resume,
            device_type,
            [local] if device_type == "cuda" else [],
        )
        return 0
    exp_dir, resume = _prepare_experiment(args, cfg)
    state.update(exp_dir=exp_dir, resume=resume)
    world = (len(gpu_ids) if device_type == "cuda" else args.nproc) if distributed else 1
    if world == 1:
        run_worker(0, 1, args, exp_dir, resume, device_type, gpu_ids)
        return 0
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(args.dport)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the workers stop and report
    try:
        torch.multiprocessing.spawn(
            _spawn_entry, nprocs=world, args=(world, args, exp_dir, resume, device_type, gpu_ids)
        )
    except torch.multiprocessing.ProcessExitedException as e:
        if e.exit_code in (2, 130):  # the worker printed its one line
            return e.exit_code
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    return 0


def _shared_experiment(args, cfg, rank: int, world: int, device_type: str):
    """Under torchrun, rank 0 creates (or finds) the experiment folder and tells the others."""
    import torch.distributed as dist

    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(backend)  # stays up for run_worker
    payload = [None]
    if rank == 0:
        setup_run_logging(None, 0)
        payload = [_prepare_experiment(args, cfg)]
    if world > 1:
        dist.broadcast_object_list(payload, src=0)
    return payload[0]
