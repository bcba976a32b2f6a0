"""Where a session runs: the device, the torch CPU threads and the loaded model."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch
from torch import nn

from isegm.annotation.defaults import resolve_checkpoint
from isegm.annotation.errors import DeviceError, InputError
from isegm.inference.backends import load_inference_model, with_precision
from isegm.inference.utils import load_is_model
from isegm.utils.threads import default_threads

__all__ = ["load_model", "prepare_model", "select_device", "set_threads"]

logger = logging.getLogger(__name__)


def select_device(cpu: bool = False, gpu: int | None = None) -> torch.device:
    """``--cpu`` / ``--gpu N`` to a device; with neither, CUDA if available, else the CPU.

    Raises:
        DeviceError: a GPU was asked for and does not exist.
    """
    if cpu:
        return torch.device("cpu")
    if gpu is not None:
        if gpu < 0:
            raise DeviceError(f"--gpu must be >= 0, got {gpu}")
        if not torch.cuda.is_available():
            raise DeviceError(f"--gpu {gpu}: CUDA is not available on this machine; use --cpu")
        if gpu >= torch.cuda.device_count():
            raise DeviceError(
                f"--gpu {gpu}: only {torch.cuda.device_count()} CUDA device(s) present"
            )
        return torch.device(f"cuda:{gpu}")
    return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


def load_model(checkpoint: str | Path | None, device: torch.device | str = "cpu",
               precision: str = "fp32", backend: str = "torch") -> nn.Module:
    """Loads a checkpoint (None: the built-in default) in eval mode on ``device``, ready for
    ``precision`` and ``backend`` (``--precision`` / ``--backend``; fp32 torch is the model as
    saved).

    Raises:
        CheckpointError: one line naming the file and what is wrong with it.
        InputError: a precision or backend this device or processor does not offer.
    """
    path = resolve_checkpoint(checkpoint)
    if precision == "fp32" and backend == "torch":
        model = load_is_model(path, device=device)
    else:
        try:
            model = load_inference_model(path, device, precision=precision, backend=backend)
        except ValueError as e:
            raise InputError(str(e)) from None
    logger.info("loaded %s on %s (%s, %s)", path, device, precision, backend)
    return model


def prepare_model(model: nn.Module, device: torch.device | str = "cpu",
                  precision: str = "fp32", backend: str = "torch") -> nn.Module:
    """A model given ready-made (scripting, tests) made ready for ``precision`` and ``backend``.

    Raises:
        InputError: a precision or backend this device or processor does not offer.
    """
    model = model.to(device).eval()
    if precision == "fp32" and backend == "torch":
        return model
    if precision in ("bf16", "fp16") and backend == "torch":
        model = copy.deepcopy(model)  # the autocast wrapper casts weights in place
    try:
        return with_precision(model, precision, device, backend)
    except ValueError as e:
        raise InputError(str(e)) from None


def set_threads(threads: int | None) -> int:
    """Applies ``--threads`` (None: :func:`default_threads`); returns the number used.

    Raises:
        InputError: a number below 1.
    """
    if threads is not None and threads < 1:
        raise InputError(f"--threads must be >= 1, got {threads}")
    n = default_threads() if threads is None else int(threads)
    torch.set_num_threads(n)
    return n

