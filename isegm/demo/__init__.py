"""Interactive demo: a Tk window over a display-free controller (SPEC Part II §5).

Modules: ``controller`` (clicks, objects, undo, label map; no Tk), ``worker`` (inference off the
UI thread), ``render`` (drawing a controller snapshot), ``canvas`` (zoomable image widget),
``app`` (the window), ``cli`` (``python demo.py``). Importing this package does not import Tk.
"""

from isegm.demo.controller import ControllerView, InteractiveController, label_map_dtype

__all__ = ["ControllerView", "InteractiveController", "label_map_dtype"]
