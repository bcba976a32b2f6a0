"""Reading the checkpoints a training run starts from: the weights of any model file
(``--weights``: this project's, MAE pretraining, the published files) and this trainer's own
checkpoints (``--resume``), checked to hold tensors before anything is loaded."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import torch

from isegm.model.checkpoint import CheckpointError, read_checkpoint

__all__ = ["model_weights", "read_quietly", "state_dict_of"]


def state_dict_of(ckpt: dict, key: str, path: str | Path) -> dict:
    """``ckpt[key]`` checked to be a dict of tensors (a checkpoint is data from outside)."""
    sd = ckpt.get(key)
    if not isinstance(sd, Mapping):
        raise CheckpointError(
            f"{path}: its '{key}' entry is {type(sd).__name__}, not a dict of weights"
        )
    bad = [str(k) for k, v in sd.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(
            f"{path}: its '{key}' entry holds {len(bad)} non-tensor value(s), e.g. {bad[0]!r}"
        )
    return dict(sd)


def read_quietly(path: str | Path) -> dict:
    """:func:`read_checkpoint` without torch's unpickler warnings about foreign pickles (the
    file is refused or read safely either way; its one-line error says what is wrong)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return read_checkpoint(path)


def model_weights(path: str | Path) -> dict:
    """The model weights of a checkpoint for ``--weights``: ``'model'`` (this project's files,
    MAE) or ``'state_dict'`` (the published files), read without running code from the file.

    Raises:
        CheckpointError: one line naming the file and what is wrong.
    """
    ckpt = read_quietly(path)
    for key in ("model", "state_dict"):
        if key in ckpt:
            return state_dict_of(ckpt, key, path)
    raise CheckpointError(
        f"{path}: no model weights in this file (no 'model' or 'state_dict' entry)"
    )
