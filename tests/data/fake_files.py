"""Writers for tiny fake dataset files (imported by the data tests)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_rgb(path: Path, image: np.ndarray) -> Path:
    """Write an RGB uint8 image (any OpenCV extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def write_gray(path: Path, mask: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), mask.astype(np.uint8))
    return path


def random_image(rng: np.random.Generator, height: int = 40, width: int = 50) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
