"""Annotation server: a browser tool and an HTTP API (CVAT and Label Studio adapters) on one
shared model.

``python -m isegm.serve`` starts it (see :mod:`isegm.serve.__main__`); :func:`create_app` builds
the FastAPI app around a :class:`Service` (model, batching worker, sessions) for tests and
embedding. Importing this package imports neither torch nor FastAPI: the names below load
their module on first use (PEP 562), so the command line checks its flags first.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "ApiError": "isegm.serve.errors",
    "ServeConfig": "isegm.serve.config",
    "Service": "isegm.serve.service",
    "create_app": "isegm.serve.app",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
