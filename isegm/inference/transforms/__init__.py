"""Test-time transforms of the NoBRS predictor (SPEC Part II §4)."""

from isegm.inference.transforms.base import BaseTransform, SigmoidForPred
from isegm.inference.transforms.flip import AddHorizontalFlip
from isegm.inference.transforms.limit_longest_side import LimitLongestSide
from isegm.inference.transforms.zoom_in import ZoomIn

__all__ = ["AddHorizontalFlip", "BaseTransform", "LimitLongestSide", "SigmoidForPred", "ZoomIn"]
