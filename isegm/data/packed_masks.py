"""The packed-layers mask format of COCO+LVIS and multi-scale LoveDA.

``masks/<image_id>.pickle`` holds ``(encoded_layers, objs_mapping)``: a list of PNG-encoded
uint8 layers and, per global object index, its ``(layer, id)`` in those layers.
``hannotation.pickle`` maps ``image_id -> {'num_instance_masks': n, 'hierarchy': {...}}``; global
indices ``>= n`` are "stuff" masks. Both are pickles, read with the restricted
unpickler of :func:`isegm.utils.safe_pickle.load_data_pickle`: only containers and numpy
arrays, so a crafted file cannot run code; it is refused with one line naming it.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from isegm.utils.safe_pickle import DataPickleError, load_data_pickle

from .base import DatasetError

__all__ = ["read_packed_masks", "read_hannotation", "encode_layers"]


def read_packed_masks(path: str | Path) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Decode ``masks/<id>.pickle`` into H×W×L uint8 layers and the object mapping.

    Raises:
        DatasetError: the file is missing, not a pickle of that format, or a layer is corrupt.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            encoded_layers, objs_mapping = load_data_pickle(f)
    except FileNotFoundError:
        raise DatasetError(f"cannot read {path}: no such file") from None
    except DataPickleError as e:
        raise DatasetError(f"refusing packed masks {path}: it {e}") from None
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError,
            AttributeError, ImportError) as e:
        raise DatasetError(f"cannot decode packed masks {path}: {type(e).__name__}") from None
    layers = []
    for buf in encoded_layers:
        if isinstance(buf, (bytes, bytearray, memoryview)):
            data = np.frombuffer(buf, np.uint8)
        else:
            data = np.ascontiguousarray(np.asarray(buf, np.uint8).ravel())
        layer = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
        if layer is None or layer.ndim != 2:
            raise DatasetError(f"cannot decode packed masks {path}: corrupt layer")
        layers.append(layer)
    if not layers:
        raise DatasetError(f"cannot decode packed masks {path}: no layers")
    mapping = [(int(m[0]), int(m[1])) for m in objs_mapping]
    return np.stack(layers, axis=2), mapping


def read_hannotation(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """``hannotation.pickle`` as a list of ``(image_id, info)`` sorted by image id."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = load_data_pickle(f)
    except FileNotFoundError:
        raise DatasetError(f"cannot read {path}: no such file") from None
    except DataPickleError as e:
        raise DatasetError(f"refusing annotation {path}: it {e}") from None
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise DatasetError(f"cannot decode annotation {path}: {type(e).__name__}") from None
    if not isinstance(data, dict):
        raise DatasetError(f"cannot decode annotation {path}: not a mapping")
    return sorted(data.items())


def encode_layers(layers: np.ndarray) -> list[np.ndarray]:
    """PNG-encode H×W×L uint8 layers (the inverse of :func:`read_packed_masks`)."""
    out = []
    for i in range(layers.shape[2]):
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(layers[:, :, i], dtype=np.uint8))
        if not ok:
            raise ValueError("PNG encoding failed")
        out.append(buf)
    return out
