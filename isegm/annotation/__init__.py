"""The annotation core that ``python -m isegm.predict``, the Tk demo and the annotation server
stand on: image + clicks -> mask, several objects per image, and the files a user gives.

Modules, one concept each:

* ``session`` -- :class:`Predictor`: one image, its clicks, the previous mask, the undo history
  (``history``) and the graph-cut refinement hook;
* ``objects`` -- :class:`InteractiveController`: finishing objects, undo, the label map;
* ``clicks`` -- click lists (parsing the command-line text, checking tuples);
* ``io`` -- reading images and masks, writing PNG masks;
* ``runtime`` -- device, threads and model loading;
* ``defaults``, ``errors`` -- the default checkpoint and limits, the user-error types
  (torch-free: the command lines read them before torch loads).

Nothing here imports Tk, FastAPI or argparse. Importing the package imports no torch either:
the names below load their module on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module of this package that defines it
_HOMES = {
    "ClickTuple": "clicks",
    "check_clicks": "clicks",
    "parse_clicks": "clicks",
    "DEFAULT_CHECKPOINT": "defaults",
    "DEFAULT_MAX_CLICKS": "defaults",
    "DEFAULT_MAX_PIXELS": "defaults",
    "REPO_ROOT": "defaults",
    "default_checkpoint_help": "defaults",
    "resolve_checkpoint": "defaults",
    "resolve_refine": "defaults",
    "DeviceError": "errors",
    "InputError": "errors",
    "read_image": "io",
    "read_mask": "io",
    "write_png": "io",
    "ControllerView": "objects",
    "InteractiveController": "objects",
    "label_map_dtype": "objects",
    "load_model": "runtime",
    "select_device": "runtime",
    "set_threads": "runtime",
    "Predictor": "session",
}

__all__ = sorted(_HOMES)


def home_of(name: str) -> str | None:
    """The full name of the module that defines ``name`` (None: not an annotation name)."""
    module = _HOMES.get(name)
    return None if module is None else f"{__name__}.{module}"


def __getattr__(name: str) -> Any:
    module = home_of(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
