"""The Tk window of the demo: toolbar, image canvas, options panel and status line.

Everything that takes time (reading files, the model) runs on the worker thread
(:mod:`isegm.demo.worker`); this module only turns gestures into commands, polls their results
with ``after`` and draws the controller's snapshots, so the window stays responsive. Clicks made
while a prediction runs are drawn hollow until their own prediction arrives.

Optional automation hooks: ``save_path`` makes Ctrl+S / "Save mask" write there without a file
dialog, and ``status_file`` receives a JSON summary after every change (clicks, objects, busy,
the image's rectangle on the screen), which scripts and the Xvfb test poll.
"""

from __future__ import annotations

import json
import logging
import os
import tkinter as tk
from pathlib import Path
from tkinter import filedialog, messagebox, ttk
from typing import Any

import numpy as np

from isegm.annotation.io import read_image, read_mask
from isegm.annotation.objects import ControllerView, InteractiveController
from isegm.demo.canvas import ImageCanvas
from isegm.demo.render import render_view
from isegm.demo.worker import InferenceWorker, Result

__all__ = ["DemoApp", "WINDOW_TITLE"]

logger = logging.getLogger(__name__)

WINDOW_TITLE = "MST interactive segmentation"
_POLL_MS = 30
_IMAGE_TYPES = [("Images", "*.jpg *.jpeg *.png *.bmp *.tif *.tiff *.webp"), ("All files", "*")]
_HELP = (
    "Left click: object\n"
    "Right click: background\n"
    "Right/middle drag: pan\n"
    "Wheel: zoom\n\n"
    "Space: finish object\n"
    "Ctrl+Z: undo click\n"
    "Ctrl+R: reset clicks\n"
    "Ctrl+O: load image\n"
    "Ctrl+M: load mask\n"
    "Ctrl+S: save mask\n"
    "Ctrl+Q: quit"
)


class DemoApp:
    """The demo window around a controller.

    Args:
        root: the Tk root window.
        controller: handed over to the app's worker thread.
        alpha: initial mask opacity.
        zoom_in: initial state of the zoom-in checkbox (the predictor's setting).
        save_path: if set, saving writes here without asking.
        status_file: if set, a JSON status file rewritten after every change.
    """

    def __init__(
        self,
        root: tk.Tk,
        controller: InteractiveController,
        alpha: float = 0.5,
        zoom_in: bool = True,
        save_path: str | Path | None = None,
        status_file: str | Path | None = None,
    ) -> None:
        self.root = root
        self.save_path = None if save_path is None else Path(save_path)
        self.status_file = None if status_file is None else Path(status_file)
        self.worker = InferenceWorker(controller)
        self._view = ControllerView(threshold=controller.threshold)
        self._pending_clicks: list[tuple[int, int, bool]] = []
        self._saved: list[str] = []
        self._last_error: str | None = None
        self._message = "Load an image (Ctrl+O)"
        self._closed = False
        self._updating = False

        self.threshold = tk.DoubleVar(value=controller.threshold)
        self.alpha = tk.DoubleVar(value=alpha)
        self.zoom_in = tk.BooleanVar(value=zoom_in)

        root.title(WINDOW_TITLE)
        root.minsize(960, 480)
        root.geometry("1100x720")
        self._build_menu()
        self._build_toolbar()
        self._build_body()
        self._bind_keys()
        root.protocol("WM_DELETE_WINDOW", self.close)
        self._refresh_status()
        self.root.after(_POLL_MS, self._poll)

    # -- layout ------------------------------------------------------------------------------
    def _build_menu(self) -> None:
        menu = tk.Menu(self.root)
        file_menu = tk.Menu(menu, tearoff=False)
        file_menu.add_command(label="Load image...", accelerator="Ctrl+O", command=self.ask_image)
        file_menu.add_command(label="Load mask...", accelerator="Ctrl+M", command=self.ask_mask)
        file_menu.add_command(label="Save mask...", accelerator="Ctrl+S", command=self.save_mask)
        file_menu.add_separator()
        file_menu.add_command(label="Quit", accelerator="Ctrl+Q", command=self.close)
        menu.add_cascade(label="File", menu=file_menu)
        edit_menu = tk.Menu(menu, tearoff=False)
        edit_menu.add_command(label="Undo click", accelerator="Ctrl+Z", command=self.undo_click)
        edit_menu.add_command(label="Reset clicks", accelerator="Ctrl+R", command=self.reset_clicks)
        edit_menu.add_command(
            label="Finish object", accelerator="Space", command=self.finish_object
        )
        menu.add_cascade(label="Edit", menu=edit_menu)
        view_menu = tk.Menu(menu, tearoff=False)
        view_menu.add_command(label="Fit image to window", command=lambda: self.canvas.fit())
        menu.add_cascade(label="View", menu=view_menu)
        self.root.config(menu=menu)

    def _button(self, parent: tk.Misc, text: str, command: Any) -> ttk.Button:
        button = ttk.Button(parent, text=text, command=command, takefocus=False)
        button.pack(side=tk.LEFT, padx=2, pady=2)
        return button

    def _build_toolbar(self) -> None:
        bar = ttk.Frame(self.root)
        bar.pack(side=tk.TOP, fill=tk.X)
        self._button(bar, "Load image", self.ask_image)
        self._button(bar, "Load mask", self.ask_mask)
        self._button(bar, "Save mask", self.save_mask)
        ttk.Separator(bar, orient=tk.VERTICAL).pack(side=tk.LEFT, fill=tk.Y, padx=6)
        self._button(bar, "Undo click", self.undo_click)
        self._button(bar, "Reset clicks", self.reset_clicks)
        self._button(bar, "Finish object", self.finish_object)

    def _build_body(self) -> None:
        self.status = ttk.Label(self.root, anchor="w", relief=tk.SUNKEN, padding=(4, 2))
        self.status.pack(side=tk.BOTTOM, fill=tk.X)

        side = ttk.Frame(self.root, padding=6)
        side.pack(side=tk.RIGHT, fill=tk.Y)
        ttk.Checkbutton(
            side,
            text="Zoom in on the object",
            variable=self.zoom_in,
            command=self._zoom_in_changed,
            takefocus=False,
        ).pack(anchor="w", pady=(0, 8))
        for label, var, command in (
            ("Prediction threshold", self.threshold, self._threshold_changed),
            ("Mask opacity (alpha)", self.alpha, lambda _v: self._render()),
        ):
            tk.Scale(
                side,
                label=label,
                variable=var,
                from_=0.0,
                to=1.0,
                resolution=0.01,
                orient=tk.HORIZONTAL,
                length=200,
                command=command,
                takefocus=False,
            ).pack(anchor="w", pady=4)
        ttk.Label(side, text=_HELP, justify=tk.LEFT, foreground="#555").pack(anchor="w", pady=8)

        self.canvas = ImageCanvas(self.root, on_click=self.add_click, width=800, height=600)
        self.canvas.pack(side=tk.LEFT, fill=tk.BOTH, expand=True, padx=4, pady=4)
        self.canvas.focus_set()
        self.canvas.bind("<<ViewChanged>>", lambda _e: self._view_changed())

    def _bind_keys(self) -> None:
        keys = {
            "<space>": self.finish_object,
            "<Control-z>": self.undo_click,
            "<Control-r>": self.reset_clicks,
            "<Control-o>": self.ask_image,
            "<Control-m>": self.ask_mask,
            "<Control-s>": self.save_mask,
            "<Control-q>": self.close,
        }
        for key, command in keys.items():
            self.root.bind(key, lambda _e, c=command: (c(), "break")[1])

    # -- commands (UI thread → worker) -------------------------------------------------------
    def _submit(self, name: str, command: Any) -> None:
        self.worker.submit(name, command)
        self._refresh_status()

    def open_image(self, image: np.ndarray, name: str = "") -> None:
        """Shows an already read image (``--image``)."""
        self._submit("image", lambda c: c.set_image(image, name))

    def ask_image(self) -> None:
        path = filedialog.askopenfilename(title="Load image", filetypes=_IMAGE_TYPES)
        if path:
            name = os.path.basename(path)
            self._submit("image", lambda c: c.set_image(read_image(path), name))

    def ask_mask(self) -> None:
        path = filedialog.askopenfilename(title="Load mask", filetypes=_IMAGE_TYPES)
        if path:
            self._submit("load_mask", lambda c: c.load_mask(read_mask(path)))

    def save_mask(self) -> None:
        path: str | Path | None = self.save_path
        if path is None:
            path = filedialog.asksaveasfilename(
                title="Save mask",
                defaultextension=".png",
                initialfile="mask.png",
                filetypes=[("PNG", "*.png")],
            )
        if path:
            self._submit("save", lambda c: c.save_mask(path))

    def add_click(self, x: int, y: int, is_positive: bool) -> None:
        self._pending_clicks.append((x, y, is_positive))
        self._draw_markers()
        self._submit("click", lambda c: c.add_click(x, y, is_positive))

    def undo_click(self) -> None:
        self._submit("undo", lambda c: c.undo_click())

    def reset_clicks(self) -> None:
        self._submit("reset", lambda c: c.reset_clicks())

    def finish_object(self) -> None:
        self._submit("finish", lambda c: c.finish_object())

    def _threshold_changed(self, _value: str) -> None:
        value = float(self.threshold.get())
        self._render()
        self._submit("threshold", lambda c: c.set_threshold(value))

    def _zoom_in_changed(self) -> None:
        enabled = bool(self.zoom_in.get())
        self._submit("zoom_in", lambda c: c.set_zoom_in(enabled))

    def close(self) -> None:
        """Ctrl+Q / window close: queued clicks are dropped, a queued save is finished."""
        if self._closed:
            return
        self._closed = True
        self._message = "closing"
        self._write_status(self.worker.pending > 0)
        self.worker.stop(timeout=0.5)
        self.root.destroy()

    # -- results (worker → UI thread) ------------------------------------------------------------
    def _poll(self) -> None:
        if self._closed:
            return
        results = self.worker.poll()
        if results:
            old_image = self._view.image
            self._updating = True  # one status write, once label and canvas agree
            try:
                for result in results:
                    self._apply(result)
                self._render(reset_view=self._view.image is not old_image)
            finally:
                self._updating = False
            self._refresh_status()
        self.root.after(_POLL_MS, self._poll)

    def _view_changed(self) -> None:
        """Zoom, pan or resize: the image moved on the screen."""
        if not self._updating:
            self._write_status(self.worker.pending > 0)

    def _apply(self, result: Result) -> None:
        self._view = result.view
        if result.name == "click" and self._pending_clicks:
            self._pending_clicks.pop(0)
        if result.error is not None:
            self._last_error = result.error
            self._message = f"error: {result.error}"
            if result.name in ("image", "load_mask", "save"):
                messagebox.showerror(WINDOW_TITLE, result.error, parent=self.root)
            return
        self._last_error = None
        self._message = self._describe(result)

    def _describe(self, result: Result) -> str:
        view = result.view
        if result.name == "click":
            t = view.last_click_seconds
            return "click predicted" + (f" in {t:.2f} s" if t is not None else "")
        if result.name == "save":
            self._saved.append(str(result.value))
            return f"saved {result.value}"
        if result.name == "finish":
            return f"object {view.object_count} finished" if result.value else "nothing to finish"
        if result.name == "undo":
            return "click undone" if result.value else "no click to undo"
        if result.name == "image":
            h, w = view.image.shape[:2] if view.image is not None else (0, 0)
            return f"loaded {view.image_name or 'image'} ({w}x{h})"
        if result.name == "load_mask":
            return "mask loaded: click to correct it"
        if result.name == "reset":
            return "clicks reset"
        if result.name == "threshold":
            return f"threshold {view.threshold:.2f}"
        if result.name == "zoom_in":
            return "zoom-in changed"
        return result.name

    # -- drawing ---------------------------------------------------------------------------------
    def _render(self, reset_view: bool = False) -> None:
        rgb = render_view(self._view, float(self.alpha.get()), float(self.threshold.get()))
        self.canvas.set_image(rgb, reset_view=reset_view)
        self._draw_markers()

    def _draw_markers(self) -> None:
        markers = [(x, y, p, False) for x, y, p in self._view.clicks]
        markers += [(x, y, p, True) for x, y, p in self._pending_clicks]
        self.canvas.set_markers(markers)

    def _refresh_status(self) -> None:
        view = self._view
        busy = self.worker.pending > 0
        parts = []
        if view.image is not None:
            h, w = view.image.shape[:2]
            parts.append(f"{view.image_name or 'image'} {w}x{h}")
            parts.append(f"object {view.object_count + 1}, {len(view.clicks)} click(s)")
            if view.last_click_seconds is not None:
                parts.append(f"{view.last_click_seconds:.2f} s/click")
        parts.append(f"working ({self.worker.pending} queued)" if busy else self._message)
        self.status.configure(
            text="  |  ".join(parts), foreground="#b00000" if self._last_error and not busy else ""
        )
        title = WINDOW_TITLE + (f" - {view.image_name}" if view.image_name else "")
        self.root.title(title + (" [busy]" if busy else ""))
        self._write_status(busy)

    def _write_status(self, busy: bool) -> None:
        if self.status_file is None:
            return
        view = self._view
        self.root.update_idletasks()  # geometry and pixels on screen match what is written
        status = {
            "image": view.image_name,
            "image_size": None
            if view.image is None
            else [view.image.shape[1], view.image.shape[0]],
            "clicks": len(view.clicks),
            "pending_clicks": len(self._pending_clicks),
            "objects": view.object_count,
            "busy": busy,
            "last_click_seconds": view.last_click_seconds,
            "threshold": view.threshold,
            "saved": self._saved,
            "error": self._last_error,
            "message": self._message,
            "image_box": self.canvas.image_box_on_screen(),
            "image_origin": list(self.canvas.image_origin_on_screen()),
            "scale": self.canvas.scale,
        }
        tmp = self.status_file.with_name(self.status_file.name + ".tmp")
        try:
            tmp.write_text(json.dumps(status))
            os.replace(tmp, self.status_file)
        except OSError as e:
            logger.warning("cannot write the status file %s: %s", self.status_file, e)
