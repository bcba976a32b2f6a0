"""Unpickling files nobody vouches for, without running code from them.

Pickles name globals (classes, functions) that ``pickle`` imports and calls while loading, so a
crafted file runs whatever it names. Two readers here resolve only an allow-list:

* :class:`RestrictedUnpickler` (checkpoints): tensor-rebuilding and container globals resolve;
  every other global becomes an inert placeholder that only records its arguments and state,
  so the published MST / SimpleClick files load without their original package.
  :data:`restricted_pickle_module` passes it to ``torch.load(pickle_module=...)`` and
  :func:`plain_data` turns the placeholders into plain dicts.
* :func:`load_data_pickle` / :func:`load_npy` (dataset annotation pickles): containers and numpy
  arrays only; any other global is a :class:`DataPickleError`.

The module sits in :mod:`isegm.utils` because both the checkpoint reader
(:mod:`isegm.model.checkpoint`) and the dataset readers (:mod:`isegm.data`) use it, and datasets
must not import the model package.
"""

from __future__ import annotations

import pickle
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "RestrictedUnpickler",
    "restricted_pickle_module",
    "plain_data",
    "DataPickleError",
    "load_data_pickle",
    "load_npy",
]


class _Inert:
    """Stands for a class or function of a foreign package found in a pickle. Instances only
    record their constructor arguments and state; nothing of the foreign code runs."""

    _path = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<inert {self._path}>"


_INERT_TYPES: dict[str, type] = {}
_SAFE_GLOBALS = {
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "dict"),
    ("builtins", "list"),
    ("builtins", "tuple"),
    ("builtins", "slice"),
    ("builtins", "complex"),
    ("torch", "Size"),
    ("torch", "device"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._tensor", "_rebuild_from_type_v2"),
    ("torch", "Tensor"),
    ("torch.nn.parameter", "Parameter"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "dtype"),
}


def _inert(module: str, name: str) -> type:
    key = f"{module}.{name}"
    if key not in _INERT_TYPES:
        _INERT_TYPES[key] = type(name, (_Inert,), {"_path": key})
    return _INERT_TYPES[key]


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS or (module == "torch" and name.endswith("Storage")):
            return super().find_class(module, name)
        if module == "torch" and name in ("float32", "float64", "float16", "bfloat16", "int64"):
            return super().find_class(module, name)
        return _inert(module, name)


# Dataset annotation pickles (COCO+LVIS / LoveDA ``*.pickle``, ``lovedams.npy``) need only
# containers and numpy arrays/scalars; numpy's own pickling helpers for those, nothing else.
_DATA_GLOBALS = {
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # bytes in protocol 2 pickles
    ("collections", "OrderedDict"),
} | {("builtins", n) for n in ("set", "frozenset", "dict", "list", "tuple", "slice", "complex")}


class DataPickleError(pickle.UnpicklingError):
    """A data pickle refers to something other than containers and numpy arrays."""


class _DataUnpickler(RestrictedUnpickler):
    """The checkpoint unpickler made strict for data files: a global outside
    ``_DATA_GLOBALS`` (``os.system``, any class) is an error instead of a placeholder."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _DATA_GLOBALS:
            return pickle.Unpickler.find_class(self, module, name)
        raise DataPickleError(f"refers to {module}.{name}, which a data file may not contain "
                              f"(only containers and numpy arrays are read)")


def load_data_pickle(file: Any) -> Any:
    """Unpickles an untrusted data file (open binary file) without running code from it.

    Raises:
        DataPickleError: the file names a global other than containers / numpy arrays.
        pickle.UnpicklingError, EOFError, ValueError: a truncated or corrupt file.
    """
    return _DataUnpickler(file).load()


def load_npy(path: str | Path) -> Any:
    """``np.load(path, allow_pickle=True)`` for an untrusted ``.npy``: object arrays are read
    with :func:`load_data_pickle`, other arrays without pickle.

    Raises:
        DataPickleError, ValueError, OSError, EOFError: unsafe, corrupt or unreadable file.
    """
    import numpy as np

    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        _shape, _fortran, dtype = read_header(f)
        if not dtype.hasobject:
            return np.load(path, allow_pickle=False)
        array = load_data_pickle(f)
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{path}: the pickled payload is not an array")
    return array


restricted_pickle_module = types.ModuleType("isegm_restricted_pickle")
restricted_pickle_module.Unpickler = RestrictedUnpickler  # type: ignore[attr-defined]
restricted_pickle_module.load = lambda f, **kw: RestrictedUnpickler(f, **kw).load()  # type: ignore
restricted_pickle_module.loads = pickle.loads  # type: ignore[attr-defined]


def plain_data(obj: Any) -> Any:
    """Nested placeholders → ``{'__class__': path, 'args': ..., 'state': ...}`` dicts."""
    if isinstance(obj, type) and issubclass(obj, _Inert):
        return {"__global__": obj._path}
    if isinstance(obj, _Inert):
        state = obj.state
        if isinstance(state, dict):
            state = {k: v for k, v in state.items() if not str(k).startswith("_")}
        return {"__class__": obj._path, "state": plain_data(state)}
    if isinstance(obj, Mapping):
        return {k: plain_data(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain_data(v) for v in obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(plain_data(v) for v in obj)
    return obj
