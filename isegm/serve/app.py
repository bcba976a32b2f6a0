"""The annotation server's FastAPI app: JSON API, CVAT and Label Studio adapters, browser page.

Every route goes through one :class:`Service` (model, batching worker, sessions), so the page,
the API and the adapters compute masks with the same :class:`~isegm.predict.Predictor` code as
``python -m isegm.predict`` and the Tk demo. Errors are JSON ``{"error": "..."}`` with a 4xx
status naming the problem; an unexpected failure is logged and answered 500 without a
traceback.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from isegm.demo.controller import label_map_dtype
from isegm.predict import ClickTuple, InputError, Predictor
from isegm.serve.formats import (
    ImageRejected,
    b64_png,
    coco_document,
    decode_base64,
    decode_upload,
    largest_contour,
    ls_rle_encode,
    mask_summary,
    png_bytes,
)
from isegm.serve.sessions import Session, SessionLimit, SessionStore, UnknownSession
from isegm.serve.worker import BatchingWorker

__all__ = ["ApiError", "ServeConfig", "Service", "create_app"]

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass
class ServeConfig:
    """Server limits and predictor settings (command-line flags of ``python -m isegm.serve``)."""

    max_upload_bytes: int = 20 * 2**20
    max_pixels: int = 25_000_000
    max_sessions: int = 32
    max_memory_bytes: int = 2 * 2**30
    session_ttl_s: float = 3600.0
    max_clicks: int = 100
    token: str | None = None
    limit_longest_size: int = 800
    zoom_in: bool = True
    threshold: float = 0.5
    max_batch: int = 16
    model_name: str = "model"


class ApiError(Exception):
    """A request the server refuses: answered ``status`` with ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Service:
    """The shared core: one model, one batching worker, the sessions.

    Args:
        model: the network in eval mode, already on ``device``.
        device: its device.
        config: limits and predictor settings.
        num_threads: torch threads of the inference worker.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        device: torch.device | str = "cpu",
        config: ServeConfig | None = None,
        num_threads: int | None = None,
    ) -> None:
        self.model = model
        self.device = torch.device(device)
        self.config = config or ServeConfig()
        self.worker = BatchingWorker(self.config.max_batch, num_threads)
        self.store = SessionStore(
            self.make_predictor,
            max_sessions=self.config.max_sessions,
            max_bytes=self.config.max_memory_bytes,
            ttl_s=self.config.session_ttl_s,
        )

    def make_predictor(self) -> Predictor:
        """A session's predictor: the shared model, forwards through the worker."""
        c = self.config
        return Predictor(
            self.model,
            device=self.device,
            limit_longest_size=c.limit_longest_size,
            zoom_in=c.zoom_in,
            threshold=c.threshold,
            forward_runner=self.worker.run,
        )

    # -- sessions ------------------------------------------------------------------------------
    def open_session(self, data: bytes, name: str, key: str | None = None) -> Session:
        if len(data) > self.config.max_upload_bytes:
            raise ApiError(413, self._too_large(len(data)))
        image = decode_upload(data, self.config.max_pixels, name or "image")
        try:
            return self.store.create(image, name, key=key)
        except SessionLimit as e:
            raise ApiError(429, str(e)) from None

    def _too_large(self, n: int) -> str:
        return f"the upload has {n} bytes, the limit is {self.config.max_upload_bytes}"

    def session(self, session_id: str) -> Session:
        try:
            return self.store.get(session_id)
        except UnknownSession:
            raise ApiError(404, "unknown session (never created, deleted or expired)") from None

    def adapter_session(self, key: str, data_or_loader: Any, name: str) -> Session:
        """The cached session of an adapter request (by image hash) or a new one."""
        session = self.store.find(key)
        if session is None:
            data = data_or_loader() if callable(data_or_loader) else data_or_loader
            session = self.open_session(data, name, key=key)
        return session

    def predict_clicks(self, session: Session, clicks: list[ClickTuple]) -> np.ndarray:
        """Mask of a full click list on a session's image (stateless adapters); the predictor
        replays only what differs from its last call."""
        if len(clicks) > self.config.max_clicks:
            raise ApiError(400, f"{len(clicks)} clicks, the limit is {self.config.max_clicks}")
        with session.lock:
            try:
                mask, _ = session.controller.predictor.predict(clicks)
            except InputError as e:
                raise ApiError(400, str(e)) from None
        self.store.update(session)
        return mask


# --------------------------------------------------------------------------- request bodies
class CreateSession(BaseModel):
    image: str = Field(description="the image file (PNG, JPEG, ...) as base64 or a data URI")
    name: str = Field("", description="file name, kept in the COCO export")


class ClickIn(BaseModel):
    x: float = Field(description="column in pixels of the original image")
    y: float = Field(description="row in pixels of the original image")
    positive: bool = Field(True, description="true: object, false: background")


class CvatRequest(BaseModel):
    image: str = Field(description="the image file as base64")
    pos_points: list[list[float]] = Field(default_factory=list, description="[[x, y], ...]")
    neg_points: list[list[float]] = Field(default_factory=list, description="[[x, y], ...]")
    threshold: float | None = Field(None, ge=0.0, le=1.0, description="mask threshold")


_CREATE_DOC = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "name": {"type": "string"},
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


# --------------------------------------------------------------------------- app
def create_app(service: Service) -> FastAPI:
    """The FastAPI application around ``service`` (OpenAPI page at ``/docs``)."""
    config = service.config
    app = FastAPI(
        title="isegm annotation server",
        version="1.0",
        description=(
            "Click-based interactive segmentation. Create a session from an image, add "
            "clicks (x, y, positive) and get masks back as PNG and COCO RLE; finish objects "
            "and export a label map or COCO JSON. Adapters for CVAT (/cvat/interactor) and "
            "Label Studio (/health, /setup, /predict). Errors are {\"error\": message}."
        ),
    )
    app.state.service = service

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, e: ApiError) -> JSONResponse:
        return JSONResponse({"error": e.message}, status_code=e.status)

    @app.exception_handler(ImageRejected)
    async def _image_error(_: Request, e: ImageRejected) -> JSONResponse:
        return JSONResponse({"error": str(e)}, status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
        return JSONResponse({"error": message}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(e.detail)}, status_code=e.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, e: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse(
            {"error": f"internal error ({type(e).__name__}); see the server log"},
            status_code=500,
        )

    app.add_middleware(_Gate, token=config.token, max_bytes=config.max_upload_bytes)

    # -- page ------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/api/info", tags=["api"])
    def info() -> dict:
        """Model, device, limits and load."""
        stats = service.worker.stats
        return {
            "model": config.model_name,
            "device": str(service.device),
            "limits": {
                "max_upload_bytes": config.max_upload_bytes,
                "max_pixels": config.max_pixels,
                "max_sessions": config.max_sessions,
                "max_memory_bytes": config.max_memory_bytes,
                "session_ttl_s": config.session_ttl_s,
                "max_clicks": config.max_clicks,
            },
            "sessions": len(service.store),
            "session_bytes": service.store.total_bytes,
            "forwards": stats.forwards,
            "batched_requests": stats.requests,
            "max_batch_seen": stats.max_batch,
            "rss_bytes": _rss_bytes(),
        }

    # -- sessions --------------------------------------------------------------------------
    @app.post("/api/sessions", tags=["api"], status_code=201, openapi_extra=_CREATE_DOC)
    async def create_session(request: Request) -> dict:
        """Opens a session on an image: multipart field ``image`` (file) or JSON
        ``{"image": base64, "name": ...}``."""
        data, name = await _read_image_body(request, config.max_upload_bytes)
        session = await run_in_threadpool(service.open_session, data, name)
        request.state.session = session.id
        h, w = session.size
        return {"session_id": session.id, "width": w, "height": h, "name": session.name}

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

    # -- CVAT ------------------------------------------------------------------------------
    @app.post("/cvat/interactor", tags=["cvat"])
    def cvat_interactor(body: CvatRequest, request: Request) -> dict:
        """CVAT interactor contract: all points of the object in, mask and the polygon of its
        largest region out (positive points are taken before negative ones)."""
        clicks = _points(body.pos_points, True, "pos_points") + _points(
            body.neg_points, False, "neg_points"
        )
        if not clicks:
            raise ApiError(400, "no points: give at least one of pos_points / neg_points")
        key = "cvat:" + hashlib.sha256(body.image.encode("ascii", "replace")).hexdigest()
        session = service.adapter_session(key, lambda: decode_base64(body.image), "cvat")
        request.state.session = session.id
        request.state.clicks = len(clicks)
        mask = service.predict_clicks(session, clicks)
        if body.threshold is not None:
            with session.lock:
                _, prob = session.controller.predictor.predict(clicks)
            mask = prob > body.threshold
        return {
            "mask": (mask.astype(np.uint8) * 255).tolist(),
            "points": largest_contour(mask),
        }

    # -- Label Studio ML backend -----------------------------------------------------------
    @app.get("/health", tags=["label studio"])
    def ls_health() -> dict:
        """Label Studio ML backend health check."""
        return {"status": "UP", "model_class": "isegm", "model": config.model_name}

    @app.post("/setup", tags=["label studio"])
    async def ls_setup(request: Request) -> dict:
        """Label Studio ML backend setup (the project's labelling config is accepted as is)."""
        await _json_body(request, required=False)
        return {"model_version": config.model_name}

    @app.post("/predict", tags=["label studio"])
    async def ls_predict(request: Request) -> dict:
        """Label Studio ML backend predict: the task and the ``keypointlabels`` context
        (percent coordinates, ``is_positive``) in, ``brushlabels`` in Label Studio's RLE out."""
        body = await _json_body(request, required=True)
        return await run_in_threadpool(_ls_predict, service, body, request)

    return app


# --------------------------------------------------------------------------- helpers
def _points(points: list[list[float]], positive: bool, name: str) -> list[ClickTuple]:
    out = []
    for i, p in enumerate(points):
        if len(p) != 2:
            raise ApiError(422, f"{name}[{i}]: expected [x, y], got {p}")
        out.append((float(p[0]), float(p[1]), positive))
    return out


async def _json_body(request: Request, required: bool) -> dict:
    data = await request.body()
    if not data and not required:
        return {}
    ctype = request.headers.get("content-type", "")
    if data and "json" not in ctype:
        raise ApiError(415, f"expected application/json, got {ctype or 'no content type'}")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


async def _read_image_body(request: Request, max_bytes: int) -> tuple[bytes, str]:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=1, max_fields=4, max_part_size=max_bytes)
        except _BodyTooLarge:
            raise
        except Exception as e:  # noqa: BLE001 - a malformed or oversized multipart body
            status = 413 if "maximum size" in str(e) else 400
            raise ApiError(status, f"cannot parse the multipart body: {e}") from None
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise ApiError(422, "multipart body: expected a file field 'image'")
        data = await upload.read()
        name = str(form.get("name") or upload.filename or "")
        return data, Path(name).name
    if ctype.startswith("application/json"):
        body = await _json_body(request, required=True)
        try:
            parsed = CreateSession.model_validate(body)
        except Exception as e:  # noqa: BLE001 - pydantic's message, one line
            raise ApiError(422, f"JSON body: {str(e).splitlines()[0]}; expected "
                           '{"image": base64, "name": optional}') from None
        return decode_base64(parsed.image), Path(parsed.name).name
    raise ApiError(
        415,
        f"unsupported content type {ctype or '(none)'}: send multipart/form-data with a file "
        "field 'image', or application/json with a base64 'image'",
    )


def _ls_image_bytes(url: str, max_bytes: int) -> bytes:
    """Image of a Label Studio task: a data URI, or an http(s) URL (relative ``/data/...`` URLs
    are joined with ``LABEL_STUDIO_URL``; ``LABEL_STUDIO_API_KEY`` is sent as the token)."""
    if url.startswith("data:"):
        return decode_base64(url, "task image")
    if url.startswith("/"):
        base = os.environ.get("LABEL_STUDIO_URL", "").rstrip("/")
        if not base:
            raise ApiError(400, f"task image {url} is relative: set LABEL_STUDIO_URL")
        url = base + url
    if not url.startswith(("http://", "https://")):
        raise ApiError(400, f"task image {url[:80]}: only data: and http(s) URLs are read")
    headers = {}
    key = os.environ.get("LABEL_STUDIO_API_KEY")
    if key:
        headers["Authorization"] = f"Token {key}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            data = r.read(max_bytes + 1)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise ApiError(400, f"cannot download the task image {url[:80]}: {e}") from None
    if len(data) > max_bytes:
        raise ApiError(413, f"the task image {url[:80]} is larger than {max_bytes} bytes")
    return data


def _brush_names(label_config: str | None) -> tuple[str, str]:
    """(from_name, to_name) of the first BrushLabels tag of a labelling config."""
    if label_config:
        try:
            root = ET.fromstring(label_config)
        except ET.ParseError:
            raise ApiError(400, "label_config is not valid XML") from None
        for tag in root.iter():
            if tag.tag.lower() == "brushlabels":
                return tag.get("name", "tag"), tag.get("toName", "image")
    return "tag", "image"


def _ls_predict(service: Service, body: dict, request: Request) -> dict:
    tasks = body.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise ApiError(422, "tasks: expected a non-empty list of Label Studio tasks")
    params = body.get("params") if isinstance(body.get("params"), dict) else {}
    context = params.get("context") or body.get("context") or {}
    keypoints = [
        r for r in (context.get("result") or []) if isinstance(r, dict)
        and r.get("type") == "keypointlabels"
    ]
    if not keypoints:  # pre-annotation without clicks: nothing to propose
        return {"results": []}
    from_name, to_name = _brush_names(body.get("label_config"))
    results = []
    for task in tasks[:1]:  # interactive calls carry the one task being labelled
        data = task.get("data") if isinstance(task, dict) else None
        url = next((v for v in (data or {}).values() if isinstance(v, str)), None)
        if url is None:
            raise ApiError(422, "task.data: expected an image URL")
        key = "ls:" + hashlib.sha256(url.encode()).hexdigest()
        session = service.adapter_session(
            key, lambda u=url: _ls_image_bytes(u, service.config.max_upload_bytes), "task"
        )
        h, w = session.size
        clicks, label = [], None
        for i, kp in enumerate(keypoints):
            value = kp.get("value") or {}
            try:
                x = float(value["x"]) * w / 100.0
                y = float(value["y"]) * h / 100.0
            except (KeyError, TypeError, ValueError):
                raise ApiError(
                    422, f"context.result[{i}].value: expected x and y in percent"
                ) from None
            if not (np.isfinite(x) and np.isfinite(y)):
                raise ApiError(422, f"context.result[{i}].value: x and y must be finite")
            # 100 % is the right/bottom edge: the last pixel
            clicks.append((min(x, w - 1e-3), min(y, h - 1e-3), bool(kp.get("is_positive", True))))
            labels = value.get("keypointlabels") or []
            label = label or (labels[0] if labels else None)
            to_name = kp.get("to_name", to_name)
        request.state.session = session.id
        request.state.clicks = len(clicks)
        mask = service.predict_clicks(session, clicks)
        results.append(
            {
                "model_version": service.config.model_name,
                "score": 1.0,
                "result": [
                    {
                        "from_name": from_name,
                        "to_name": to_name,
                        "type": "brushlabels",
                        "original_width": w,
                        "original_height": h,
                        "image_rotation": 0,
                        "value": {
                            "format": "rle",
                            "rle": ls_rle_encode(mask),
                            "brushlabels": [label] if label else [],
                        },
                    }
                ],
            }
        )
    return {"results": results}


def _rss_bytes() -> int | None:
    """Resident memory of this process (Linux), or None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


# --------------------------------------------------------------------------- ASGI gate
class _BodyTooLarge(Exception):
    pass


class _Gate:
    """ASGI middleware: bearer token, body size limit, one log line per request."""

    def __init__(self, app: Any, token: str | None, max_bytes: int) -> None:
        self.app = app
        self.token = token
        self.max_bytes = max_bytes
        # multipart bodies carry some bytes of framing around the file
        self.body_limit = max_bytes + 64 * 1024

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        scope.setdefault("state", {})
        status = {"code": 0}

        async def send_logged(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            error = self._check(scope)
            if error is not None:
                await _send_json(send_logged, *error)
                return
            received = 0

            async def limited_receive() -> dict:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.body_limit:
                        raise _BodyTooLarge()
                return message

            try:
                await self.app(scope, limited_receive, send_logged)
            except _BodyTooLarge:
                if status["code"] == 0:
                    await _send_json(
                        send_logged, 413, f"the request body exceeds {self.max_bytes} bytes"
                    )
        finally:
            state = scope.get("state", {})
            session = str(state.get("session") or "-")[:8]
            logger.info(
                "%s %s %d session=%s clicks=%s %.1f ms",
                scope.get("method"),
                _redact(scope.get("path", "")),
                status["code"],
                session,
                state.get("clicks", "-"),
                1e3 * (time.perf_counter() - start),
            )

    def _check(self, scope: dict) -> tuple[int, str] | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get("content-length")
        if length is not None:
            try:
                if int(length) > self.body_limit:
                    return 413, f"the body has {length} bytes, the limit is {self.max_bytes}"
            except ValueError:
                return 400, "bad Content-Length header"
        if self.token is None:
            return None
        given = _credential(headers.get("authorization", ""))
        if given is None and scope.get("path") == "/":
            # the page itself: its address may carry ?token=... (the page then sends the header)
            query = scope.get("query_string", b"").decode("latin-1")
            given = dict(p.partition("=")[::2] for p in query.split("&") if p).get("token")
        if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            return 401, "missing or wrong token: send 'Authorization: Bearer <token>'"
        return None


def _credential(header: str) -> str | None:
    """The token of ``Bearer <token>``, or the password of ``Basic`` (Label Studio's auth)."""
    kind, _, value = header.partition(" ")
    if kind.lower() == "bearer":
        return value.strip()
    if kind.lower() == "basic":
        try:
            return base64.b64decode(value.strip()).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return None
    return None


def _redact(path: str) -> str:
    """Session ids are credentials: log only their first characters."""
    parts = path.split("/")
    if len(parts) > 3 and parts[1] == "api" and parts[2] == "sessions":
        parts[3] = parts[3][:8]
    return "/".join(parts)


async def _send_json(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
