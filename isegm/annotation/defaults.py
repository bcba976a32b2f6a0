"""The built-in default model and the limits of the annotation tools, and how a session's
checkpoint and refinement are chosen from them.

Torch-free: ``python -m isegm.predict`` and ``python -m isegm.serve`` read these
while they build and check their command lines, before torch and the model code load.
Tests that need another default checkpoint patch :data:`DEFAULT_CHECKPOINT` here: every
function that reads it lives in this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from isegm.annotation.errors import InputError
from isegm.data.limits import DEFAULT_MAX_PIXELS  # the largest image the tools accept
from isegm.inference.refine import REFINE_CHOICES
from isegm.inference.utils import DEFAULT_MODEL_FILE, DEFAULT_MODEL_RECIPE

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "DEFAULT_CHECKPOINT",
    "DEFAULT_MAX_CLICKS",
    "DEFAULT_MAX_PIXELS",
    "REPO_ROOT",
    "CheckpointLike",
    "default_checkpoint_help",
    "resolve_checkpoint",
    "resolve_refine",
    "session_options",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHECKPOINT = REPO_ROOT / "weights" / DEFAULT_MODEL_FILE

# The server's click cap: a longer list is refused (10,000 clicks ran for minutes).
DEFAULT_MAX_CLICKS = 100

CheckpointLike = Union[str, Path, "nn.Module", None]


def default_checkpoint_help(path: Path | None = None) -> str:
    """One line telling how to create the built-in default checkpoint."""
    path = DEFAULT_CHECKPOINT if path is None else path
    return (
        f"no --checkpoint given and the default checkpoint {path} does not exist; "
        f"make it with: {DEFAULT_MODEL_RECIPE}"
    )


def resolve_checkpoint(checkpoint: str | Path | None) -> Path:
    """The checkpoint path to load; None means the built-in default.

    Raises:
        CheckpointError: the default checkpoint is missing (the message says how to create it).
    """
    if checkpoint is None:
        if not DEFAULT_CHECKPOINT.is_file():
            from isegm.inference.utils import CheckpointError  # loads the checkpoint code

            raise CheckpointError(default_checkpoint_help(DEFAULT_CHECKPOINT))
        return DEFAULT_CHECKPOINT
    return Path(checkpoint)


def resolve_refine(refine: str | None, checkpoint: CheckpointLike) -> str:
    """The refinement mode of an annotation session: ``'auto'`` (or None) is ``'grabcut'`` for
    the built-in default checkpoint and ``'none'`` for any other checkpoint or model.

    Raises:
        InputError: an unknown mode.
    """
    mode = "auto" if refine is None else str(refine).strip().lower()
    if mode == "auto":
        default = checkpoint is None or (
            isinstance(checkpoint, (str, Path)) and Path(checkpoint).is_file()
            and Path(checkpoint).resolve() == DEFAULT_CHECKPOINT.resolve())
        return "grabcut" if default else "none"
    if mode not in REFINE_CHOICES:
        raise InputError(f"unknown refinement {refine!r}; choose one of auto, "
                         f"{', '.join(REFINE_CHOICES)}")
    return mode


#: The command-line flags (``isegm.predict``, ``demo.py``) that are
#: :class:`~isegm.annotation.session.Predictor` keywords of the same name.
SESSION_FLAGS = ("limit_longest_size", "zoom_in", "threshold", "refine", "precision", "backend")


def session_options(args: Any) -> dict[str, Any]:
    """The parsed flags of :data:`SESSION_FLAGS` as ``Predictor`` keywords (one mapping for
    both command lines, so a new session flag is passed the same way by each)."""
    return {name: getattr(args, name) for name in SESSION_FLAGS}
