"""Interactive segmentation models: MST (multi-scale token selection) and the plain ViT.

The names below load on first use (PEP 562), so that a command line can read the torch-free
:mod:`isegm.model.config` (e.g. ``POS_EMBED_RESIZE_MODES``) before it imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ISModel",
    "ModelConfig",
    "SelectionConfig",
    "MODEL_CONFIGS",
    "build_model",
    "get_config",
]

_WHERE = {"MODEL_CONFIGS": "build", "build_model": "build", "get_config": "build",
          "ModelConfig": "config", "SelectionConfig": "config", "ISModel": "is_model"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
