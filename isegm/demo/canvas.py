"""The image canvas: fit-to-window display, wheel zoom around the cursor, drag to pan, and
mouse clicks mapped to image pixels.

Left press = positive click. Right (button 3) or middle (button 2, the right button on macOS)
released within 0.5 s and 3 px of the press = negative click; a longer drag pans. Only the visible
part of the image is resized for display, so zooming into large images stays cheap. Every
redraw (new content, zoom, pan, resize) emits the virtual event ``<<ViewChanged>>``.
"""

from __future__ import annotations

import logging
import math
import time
import tkinter as tk
from collections.abc import Sequence
from typing import Callable

import numpy as np
from PIL import Image, ImageTk

__all__ = ["ImageCanvas", "Marker"]

logger = logging.getLogger(__name__)

Marker = tuple[float, float, bool, bool]  # (x, y, is_positive, pending) in image pixels
ClickCallback = Callable[[int, int, bool], None]

_ZOOM_STEP = 1.2
_MAX_SCALE = 20.0
_CLICK_MAX_MOVE = 3  # px: a right press+release moving less is a click, not a pan
_CLICK_MAX_SECONDS = 0.5
_POSITIVE = "#00d000"
_NEGATIVE = "#ff2020"


class ImageCanvas(tk.Canvas):
    """A canvas showing one RGB image.

    Args:
        master: parent widget.
        on_click: called with (x, y, is_positive), x/y the integer pixel of the image under
            the pointer; clicks outside the image are ignored.
        marker_radius: radius of the click markers in screen pixels.
    """

    def __init__(
        self, master: tk.Misc, on_click: ClickCallback, marker_radius: int = 5, **kw
    ) -> None:
        kw.setdefault("background", "#303030")
        kw.setdefault("highlightthickness", 0)
        kw.setdefault("cursor", "crosshair")
        super().__init__(master, **kw)
        self._on_click = on_click
        self.marker_radius = marker_radius
        self._pil: Image.Image | None = None
        self._photo: ImageTk.PhotoImage | None = None
        self._markers: list[Marker] = []
        self._scale = 1.0
        self._offset = (0.0, 0.0)  # canvas position of the image's top-left corner
        self._fit_mode = True
        self._drag: tuple[int, int, float, float, float, bool] | None = None

        self.bind("<Configure>", lambda e: self._on_resize())
        self.bind("<ButtonPress-1>", self._on_left)
        for b in (2, 3):
            self.bind(f"<ButtonPress-{b}>", self._on_press)
            self.bind(f"<B{b}-Motion>", self._on_motion)
            self.bind(f"<ButtonRelease-{b}>", self._on_release)
        self.bind("<MouseWheel>", lambda e: self._on_wheel(e, 1 if e.delta > 0 else -1))
        self.bind("<Button-4>", lambda e: self._on_wheel(e, 1))  # X11 wheel up
        self.bind("<Button-5>", lambda e: self._on_wheel(e, -1))

    # -- content ---------------------------------------------------------------------------
    def set_image(self, rgb: np.ndarray | None, reset_view: bool = False) -> None:
        """Shows ``rgb`` (HxWx3 uint8); ``reset_view`` fits a new image to the window."""
        old_size = None if self._pil is None else self._pil.size
        self._pil = None if rgb is None else Image.fromarray(rgb)
        if reset_view or self._pil is None or self._pil.size != old_size:
            self.fit()
        else:
            self._redraw()

    def set_markers(self, markers: Sequence[Marker]) -> None:
        """Click markers to draw on top (pending ones hollow)."""
        self._markers = list(markers)
        self._draw_markers()

    # -- geometry ----------------------------------------------------------------------------
    def _canvas_size(self) -> tuple[int, int]:
        return max(1, self.winfo_width()), max(1, self.winfo_height())

    def _fit_scale(self) -> float:
        if self._pil is None:
            return 1.0
        cw, ch = self._canvas_size()
        w, h = self._pil.size
        return min(cw / w, ch / h)

    def fit(self) -> None:
        """Whole image in the window, centred."""
        self._fit_mode = True
        self._scale = self._fit_scale()
        self._clamp()
        self._redraw()

    def _clamp(self) -> None:
        """Centres the image along an axis where it is smaller than the window, otherwise keeps
        the window covered."""
        if self._pil is None:
            return
        cw, ch = self._canvas_size()
        w, h = self._pil.size
        ox, oy = self._offset
        sw, sh = w * self._scale, h * self._scale
        ox = (cw - sw) / 2 if sw <= cw else min(0.0, max(cw - sw, ox))
        oy = (ch - sh) / 2 if sh <= ch else min(0.0, max(ch - sh, oy))
        self._offset = (ox, oy)

    def canvas_to_image(self, cx: float, cy: float) -> tuple[float, float]:
        """Canvas point → continuous image coordinates (pixel x spans [x, x + 1))."""
        return (cx - self._offset[0]) / self._scale, (cy - self._offset[1]) / self._scale

    def image_to_canvas(self, x: float, y: float) -> tuple[float, float]:
        """Continuous image coordinates → canvas point."""
        return self._offset[0] + x * self._scale, self._offset[1] + y * self._scale

    def image_box_on_screen(self) -> tuple[int, int, int, int] | None:
        """(x0, y0, x1, y1) screen (root) coordinates covered by the whole image at this zoom."""
        if self._pil is None:
            return None
        w, h = self._pil.size
        rx, ry = self.winfo_rootx(), self.winfo_rooty()
        x0, y0 = self.image_to_canvas(0, 0)
        x1, y1 = self.image_to_canvas(w, h)
        return (round(rx + x0), round(ry + y0), round(rx + x1), round(ry + y1))

    def image_origin_on_screen(self) -> tuple[float, float]:
        """Screen (root) position of the image's top-left corner; pixel (x, y) is centred at
        ``origin + (x + 0.5, y + 0.5) * scale``."""
        return self.winfo_rootx() + self._offset[0], self.winfo_rooty() + self._offset[1]

    @property
    def scale(self) -> float:
        return self._scale

    def zoom(self, factor: float, cx: float, cy: float) -> None:
        """Zooms by ``factor`` keeping the canvas point (cx, cy) fixed."""
        if self._pil is None:
            return
        fit = self._fit_scale()
        new = min(max(self._scale * factor, fit), max(_MAX_SCALE, fit))
        if new == self._scale:
            return
        x, y = self.canvas_to_image(cx, cy)
        self._scale = new
        self._offset = (cx - x * new, cy - y * new)
        self._fit_mode = math.isclose(new, fit)
        self._clamp()
        self._redraw()

    def pan(self, dx: float, dy: float) -> None:
        self._offset = (self._offset[0] + dx, self._offset[1] + dy)
        self._clamp()
        self._redraw()

    # -- drawing -------------------------------------------------------------------------------
    def _on_resize(self) -> None:
        if self._fit_mode:
            self.fit()
        else:
            self._clamp()
            self._redraw()

    def _redraw(self) -> None:
        self.delete("image")
        self._photo = None
        if self._pil is not None:
            cw, ch = self._canvas_size()
            w, h = self._pil.size
            x0, y0 = self.canvas_to_image(0, 0)
            x1, y1 = self.canvas_to_image(cw, ch)
            left, top = max(0, math.floor(x0)), max(0, math.floor(y0))
            right, bottom = min(w, math.ceil(x1)), min(h, math.ceil(y1))
            if right > left and bottom > top:
                crop = self._pil.crop((left, top, right, bottom))
                px, py = self.image_to_canvas(left, top)
                qx, qy = self.image_to_canvas(right, bottom)
                size = (max(1, round(qx) - round(px)), max(1, round(qy) - round(py)))
                resample = Image.NEAREST if self._scale >= 2 else Image.BILINEAR
                self._photo = ImageTk.PhotoImage(crop.resize(size, resample))
                self.create_image(
                    round(px), round(py), anchor="nw", image=self._photo, tags="image"
                )
        self._draw_markers()
        self.event_generate("<<ViewChanged>>")

    def _draw_markers(self) -> None:
        self.delete("marker")
        if self._pil is None:
            return
        r = self.marker_radius
        for x, y, positive, pending in self._markers:
            cx, cy = self.image_to_canvas(x + 0.5, y + 0.5)
            color = _POSITIVE if positive else _NEGATIVE
            self.create_oval(
                cx - r,
                cy - r,
                cx + r,
                cy + r,
                fill="" if pending else color,
                outline=color if pending else "white",
                width=2 if pending else 1,
                tags="marker",
            )
        self.tag_raise("marker")

    # -- mouse -----------------------------------------------------------------------------------
    def _pixel_at(self, cx: float, cy: float) -> tuple[int, int] | None:
        if self._pil is None:
            return None
        x, y = self.canvas_to_image(cx, cy)
        w, h = self._pil.size
        if 0 <= x < w and 0 <= y < h:
            return int(x), int(y)
        return None

    def _on_left(self, event: tk.Event) -> None:
        self.focus_set()
        pixel = self._pixel_at(event.x, event.y)
        if pixel is not None:
            self._on_click(pixel[0], pixel[1], True)

    def _on_press(self, event: tk.Event) -> None:
        self.focus_set()
        ox, oy = self._offset
        self._drag = (event.x, event.y, time.monotonic(), ox, oy, False)

    def _on_motion(self, event: tk.Event) -> None:
        if self._drag is None:
            return
        x0, y0, t0, ox, oy, moved = self._drag
        if not moved and max(abs(event.x - x0), abs(event.y - y0)) <= _CLICK_MAX_MOVE:
            return
        self._drag = (x0, y0, t0, ox, oy, True)
        self._offset = (ox + event.x - x0, oy + event.y - y0)
        self._clamp()
        self._fit_mode = False
        self._redraw()

    def _on_release(self, event: tk.Event) -> None:
        drag, self._drag = self._drag, None
        if drag is None:
            return
        x0, y0, t0, _, _, moved = drag
        quick = time.monotonic() - t0 <= _CLICK_MAX_SECONDS
        still = max(abs(event.x - x0), abs(event.y - y0)) <= _CLICK_MAX_MOVE
        if not moved and quick and still:
            pixel = self._pixel_at(x0, y0)
            if pixel is not None:
                self._on_click(pixel[0], pixel[1], False)

    def _on_wheel(self, event: tk.Event, direction: int) -> None:
        self.zoom(_ZOOM_STEP if direction > 0 else 1 / _ZOOM_STEP, event.x, event.y)
