"""Interactive segmentation models: MST (multi-scale token selection) and the plain ViT."""

from .build import MODEL_CONFIGS, build_model, get_config
from .config import ModelConfig, SelectionConfig
from .is_model import ISModel

__all__ = [
    "ISModel",
    "ModelConfig",
    "SelectionConfig",
    "MODEL_CONFIGS",
    "build_model",
    "get_config",
]
