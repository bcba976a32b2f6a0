"""Old import path (before issue 24) of the multi-object rules, kept for one release.

:class:`InteractiveController`, :class:`ControllerView` and :func:`label_map_dtype` live in
:mod:`isegm.annotation.objects` now: the annotation server uses them as well, so they are no
part of the Tk demo. Import them from there (or from :mod:`isegm.annotation`).
"""

from isegm.annotation.objects import ControllerView, InteractiveController, label_map_dtype

__all__ = ["ControllerView", "InteractiveController", "label_map_dtype"]
