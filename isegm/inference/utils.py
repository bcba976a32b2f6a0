"""Model loading for inference."""

from __future__ import annotations

from pathlib import Path

import torch

from isegm.model.checkpoint import CheckpointError, load_model_checkpoint
from isegm.model.is_model import ISModel

__all__ = ["load_is_model", "CheckpointError"]


def load_is_model(
    checkpoint: str | Path, device: str | torch.device = "cpu", variant: str | None = None
) -> ISModel:
    """Load an interactive segmentation model in eval mode, gradients off.

    Accepts this project's checkpoints and the published MST / SimpleClick / RITM-style files
    (``{'state_dict', 'config'}``; no original package needed, no pickled code executed).
    ``variant`` ('at' or 'it') is needed only for the AT/IT ablation files, whose keys and
    configs are identical.

    Raises:
        CheckpointError: one line naming the file and what is wrong with it.
    """
    return load_model_checkpoint(checkpoint, device, variant=variant, eval_mode=True)
