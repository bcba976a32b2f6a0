"""Interactive demo: a Tk window over a display-free controller (SPEC Part II §5).

Modules: ``worker`` (inference off the UI thread), ``render`` (drawing a controller snapshot),
``canvas`` (zoomable image widget), ``app`` (the window), ``cli`` (``python demo.py``). The
rules the window drives (clicks, objects, undo, label map) are the annotation package's
(:mod:`isegm.annotation.objects`); ``controller`` and the names below are their old import path,
kept for one release. Importing this package imports neither Tk nor torch: the names below load
on first use (PEP 562), so ``demo.py`` checks its command line first.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ControllerView", "InteractiveController", "label_map_dtype"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from isegm.annotation import objects  # their home since issue 24

        return getattr(objects, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
