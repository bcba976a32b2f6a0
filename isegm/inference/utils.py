"""Model loading for inference, and the name of the built-in default model.

Torch loads on the first call (``CheckpointError`` on first use, PEP 562): the command lines
read ``DEFAULT_MODEL_FILE`` while they check their arguments, before any heavy import.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from isegm.model.checkpoint import CheckpointError
    from isegm.model.is_model import ISModel

__all__ = ["load_is_model", "CheckpointError", "DEFAULT_MODEL_FILE", "DEFAULT_MODEL_RECIPE"]

#: The built-in default model, in ``weights/`` (shared by predict, the demo, the server and
#: evaluate_model.py).
DEFAULT_MODEL_FILE = "mst_tiny_photos_bigobjects.pth"
#: How to make it again when it is missing (one line; README "Train" has every step).
DEFAULT_MODEL_RECIPE = (
    "python -m isegm.data.photos collect, then python train.py "
    "models/mst_tiny_photos_bigobjects.py --cpu --exp-name default (it starts from "
    "weights/mst_tiny_photos.pth), then python -m isegm.model.checkpoint export "
    "experiments/mst_tiny_photos_bigobjects/000_default/checkpoints/last.pth "
    "weights/mst_tiny_photos_bigobjects.pth"
)


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
    from isegm.model.checkpoint import load_model_checkpoint

    return load_model_checkpoint(checkpoint, device, variant=variant, eval_mode=True)


def __getattr__(name: str) -> Any:
    if name == "CheckpointError":
        from isegm.model.checkpoint import CheckpointError

        return CheckpointError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
