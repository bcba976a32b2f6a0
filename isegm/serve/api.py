"""The JSON session API (``/api/sessions/...``), which the browser page uses too: open a session
on an image, add clicks, undo, reset, finish objects, export the label map and COCO JSON.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from isegm.annotation.errors import InputError
from isegm.annotation.objects import label_map_dtype
from isegm.inference.refine import REFINE_CHOICES
from isegm.serve.bodies import json_body, media_type, validate_as
from isegm.serve.errors import ApiError
from isegm.serve.formats import b64_png, coco_document, decode_base64, mask_summary, png_bytes
from isegm.serve.service import Service
from isegm.serve.sessions import Session, UnknownSession

__all__ = ["add_api_routes", "finished_labels", "read_image_body", "session_state"]

RefineMode = Optional[Literal["none", "grabcut"]]
_REFINE_DOC = ("graph-cut refinement of the masks: 'grabcut' or 'none' (default: the "
               "server's, see /api/info)")


class CreateSession(BaseModel):
    image: str = Field(description="the image file (PNG, JPEG, ...) as base64 or a data URI")
    name: str = Field("", description="file name, kept in the COCO export")
    refine: RefineMode = Field(None, description=_REFINE_DOC)


class ClickIn(BaseModel):
    x: float = Field(description="column in pixels of the original image")
    y: float = Field(description="row in pixels of the original image")
    positive: StrictBool = Field(True, description="true: object, false: background")
    refine: RefineMode = Field(None, description=_REFINE_DOC + "; kept for the session's "
                               "later clicks")


_CREATE_DOC = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "name": {"type": "string"},
                        "refine": {"type": "string", "enum": ["none", "grabcut"]},
                    },
                    "required": ["image"],
                }
            },
            "application/json": {"schema": CreateSession.model_json_schema()},
        },
        "required": True,
    }
}


# --------------------------------------------------------------------------- responses
def session_state(session: Session, ms: float | None = None) -> dict:
    """What a client shows after a click, undo or reset."""
    c = session.controller
    h, w = session.size
    mask = c.current_mask
    out: dict[str, Any] = {
        "session_id": session.id,
        "width": w,
        "height": h,
        "objects": c.object_count,
        "object": c.object_count + 1,
        "clicks": [[x, y, p] for x, y, p in c.clicks],
        "mask_png": None,
        "rle": None,
        "area": 0,
        "bbox": None,
        "refine": c.predictor.refine,
        "model_ms": None if c.last_click_seconds is None else round(1e3 * c.last_click_seconds, 2),
        "ms": None if ms is None else round(ms, 2),
    }
    if mask is not None:
        out["mask_png"] = b64_png(mask)
        out.update(mask_summary(mask))
    return out


def finished_labels(session: Session) -> np.ndarray:
    """Label map of the finished objects (object k = value k, uint8 or uint16)."""
    finished = session.controller.view().finished
    assert finished is not None
    return finished.astype(label_map_dtype(int(finished.max())))


# --------------------------------------------------------------------------- requests
async def read_image_body(request: Request, max_bytes: int) -> tuple[bytes, str, str | None]:
    """(image bytes, file name, refinement mode or None) of a session-creating request."""
    ctype = request.headers.get("content-type", "")
    if media_type(ctype) == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=4, max_part_size=max_bytes)
        except Exception as e:  # noqa: BLE001 - a malformed or oversized multipart body
            status = 413 if "maximum size" in str(e) else 400
            raise ApiError(status, f"cannot parse the multipart body: {e}") from None
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise ApiError(422, "multipart body: expected a file field 'image'")
        data = await upload.read()
        name = str(form.get("name") or upload.filename or "")
        refine = form.get("refine")
        if refine is not None and refine not in REFINE_CHOICES:
            raise ApiError(422, f"multipart field 'refine' must be one of "
                           f"{', '.join(REFINE_CHOICES)}, got {str(refine)[:40]!r}")
        return data, Path(name).name, refine
    if media_type(ctype) == "application/json":
        body = await json_body(request, required=True)
        parsed = validate_as(CreateSession, body)
        return decode_base64(parsed.image), Path(parsed.name).name, parsed.refine
    raise ApiError(
        415,
        f"unsupported content type {ctype or '(none)'}: send multipart/form-data with a file "
        "field 'image', or application/json with a base64 'image'",
    )


def add_api_routes(app: FastAPI, service: Service) -> None:
    """The ``/api/sessions`` routes of ``app`` over ``service``'s sessions."""
    config = service.config

    @app.post("/api/sessions", tags=["api"], status_code=201, openapi_extra=_CREATE_DOC)
    async def create_session(request: Request) -> dict:
        """Opens a session on an image: multipart field ``image`` (file) or JSON
        ``{"image": base64, "name": ...}``."""
        data, name, refine = await read_image_body(request, config.max_upload_bytes)
        session = await run_in_threadpool(service.open_session, data, name, None,
                                          request.state.client, refine)
        request.state.session = session.id
        h, w = session.size
        return {"session_id": session.id, "width": w, "height": h, "name": session.name,
                "refine": session.controller.predictor.refine}

    @app.get("/api/sessions/{session_id}", tags=["api"])
    def get_session(session_id: str, request: Request) -> dict:
        """The current state (clicks and mask of the object in progress)."""
        session = _session(request, session_id)
        with session.lock:
            return session_state(session)

    @app.post("/api/sessions/{session_id}/clicks", tags=["api"])
    def add_click(session_id: str, click: ClickIn, request: Request) -> dict:
        """Adds a click to the object in progress; returns its mask (PNG and COCO RLE)."""
        def action(session: Session) -> None:
            if len(session.controller.clicks) >= config.max_clicks:
                raise ApiError(400, f"the object has {config.max_clicks} clicks, the limit")
            if click.refine is not None:
                session.controller.set_refine(click.refine)
            session.controller.add_click(click.x, click.y, click.positive)

        return _edit(request, session_id, action)

    @app.post("/api/sessions/{session_id}/undo", tags=["api"])
    def undo(session_id: str, request: Request) -> dict:
        """Removes the last click of the object in progress."""
        return _edit(request, session_id, lambda session: session.controller.undo_click())

    @app.post("/api/sessions/{session_id}/reset", tags=["api"])
    def reset(session_id: str, request: Request) -> dict:
        """Drops the object in progress (finished objects stay)."""
        session = _session(request, session_id)
        with session.lock:
            session.controller.reset_clicks()
            state = session_state(session)
        service.store.update(session)
        return state

    @app.post("/api/sessions/{session_id}/finish", tags=["api"])
    def finish(session_id: str, request: Request) -> dict:
        """Keeps the current mask as the next object (value k in the label map) and starts a
        new one; an empty mask is dropped (``added`` false)."""
        session = _session(request, session_id)
        with session.lock:
            added = session.controller.finish_object()
            objects = session.controller.object_count
        service.store.update(session)
        return {"session_id": session.id, "added": added, "objects": objects}

    @app.get(
        "/api/sessions/{session_id}/labels.png",
        tags=["api"],
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
    )
    def labels_png(session_id: str, request: Request) -> Response:
        """Label map of the finished objects: object k has value k (8-bit PNG, 16-bit beyond
        255 objects)."""
        session = _session(request, session_id)
        with session.lock:
            labels = finished_labels(session)
        return Response(png_bytes(labels), media_type="image/png")

    @app.get("/api/sessions/{session_id}/coco.json", tags=["api"])
    def coco_json(session_id: str, request: Request) -> dict:
        """COCO JSON of the finished objects (RLE segmentation, bbox, area; id k = value k)."""
        session = _session(request, session_id)
        with session.lock:
            labels = finished_labels(session)
        return coco_document(labels, session.name or "image.png")

    @app.delete("/api/sessions/{session_id}", tags=["api"])
    def delete_session(session_id: str, request: Request) -> dict:
        """Forgets the session, its image and its masks."""
        request.state.session = session_id
        try:
            service.store.delete(session_id)
        except UnknownSession:
            raise ApiError(404, "unknown session (never created, deleted or expired)") from None
        return {"deleted": session_id}

    def _session(request: Request, session_id: str) -> Session:
        request.state.session = session_id
        return service.session(session_id)

    def _edit(request: Request, session_id: str, action: Callable[[Session], Any]) -> dict:
        """Runs a click or an undo under the session's lock; the new state, timed."""
        session = _session(request, session_id)
        start = time.perf_counter()
        with session.lock:
            try:
                action(session)
            except InputError as e:
                raise ApiError(400, str(e)) from None
            request.state.clicks = len(session.controller.clicks)
            state = session_state(session, 1e3 * (time.perf_counter() - start))
        service.store.update(session)
        return state
