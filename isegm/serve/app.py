"""The annotation server's FastAPI app: JSON API, CVAT and Label Studio adapters, browser page.

Every route goes through one :class:`Service` (model, batching worker, sessions), so the page,
the API and the adapters compute masks with the same :class:`~isegm.predict.Predictor` code as
``python -m isegm.predict`` and the Tk demo. Errors are JSON ``{"error": "..."}`` with a 4xx
status naming the problem; an unexpected failure is logged and answered 500 without a
traceback.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Optional
from urllib.parse import quote, unquote

import numpy as np
import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from isegm.data.io import DEFAULT_MAX_PIXELS
from isegm.demo.controller import label_map_dtype
from isegm.inference.refine import REFINE_CHOICES
from isegm.predict import DEFAULT_MAX_CLICKS, ClickTuple, InputError, Predictor
from isegm.serve.fetch import Fetcher, FetchError
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
from isegm.serve.sessions import (
    MemoryFull,
    Session,
    SessionLimit,
    SessionStore,
    UnknownSession,
    log_text,
)
from isegm.serve.worker import BatchingWorker

__all__ = ["ApiError", "ServeConfig", "Service", "create_app"]

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass
class ServeConfig:
    """Server limits and predictor settings (command-line flags of ``python -m isegm.serve``)."""

    max_upload_bytes: int = 20 * 2**20
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_sessions: int = 32
    max_memory_bytes: int = 2 * 2**30
    # a session with finished objects is kept this long idle, one with nothing finished less
    session_ttl_s: float = 3600.0
    empty_session_ttl_s: float = 600.0
    # per client (token, or remote address without tokens): API sessions and their memory
    max_client_sessions: int = 8
    max_client_memory_bytes: int = 2**30
    # CVAT / Label Studio sessions: a pool of their own
    max_adapter_sessions: int = 16
    max_adapter_memory_bytes: int = 2**30
    max_clicks: int = DEFAULT_MAX_CLICKS
    token: str | None = None
    tokens: tuple[str, ...] = ()  # more tokens (one per user: the quota is per token)
    # the address bound: with the loopback names, the Host headers accepted
    host: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()  # more Host names ("*": any)
    allowed_origins: tuple[str, ...] = ()  # foreign web origins allowed (CORS)
    # Label Studio task images
    fetch_origins: tuple[str, ...] = ()  # origins fetched besides LABEL_STUDIO_URL's
    fetch_deadline_s: float = 20.0
    fetch_workers: int = 4
    limit_longest_size: int = 800
    zoom_in: bool = True
    refine: str = "none"  # graph-cut refinement of new sessions (python -m isegm.serve: auto)
    threshold: float = 0.5
    max_batch: int = 16
    model_name: str = "model"


    @property
    def all_tokens(self) -> tuple[str, ...]:
        return tuple(t for t in ((self.token,) if self.token else ()) + self.tokens if t)


class ApiError(Exception):
    """A request the server refuses: answered ``status`` with ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


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
        c = self.config
        self.worker = BatchingWorker(c.max_batch, num_threads)
        self.store = SessionStore(
            self.make_predictor,
            max_sessions=c.max_sessions,
            max_bytes=c.max_memory_bytes,
            ttl_s=c.session_ttl_s,
            empty_ttl_s=c.empty_session_ttl_s,
            max_adapter_sessions=c.max_adapter_sessions,
            max_adapter_bytes=c.max_adapter_memory_bytes,
            max_client_sessions=c.max_client_sessions,
            max_client_bytes=c.max_client_memory_bytes,
        )
        self.fetcher = Fetcher(c.max_upload_bytes, c.fetch_deadline_s, c.fetch_workers,
                               c.fetch_origins)
        self._flights: dict[str, Future] = {}
        self._flights_lock = threading.Lock()
        # expired sessions are released on time, not at the next request
        self._stop = threading.Event()
        period = max(0.5, min(60.0, min(c.session_ttl_s, c.empty_session_ttl_s) / 10))
        self._reaper = threading.Thread(target=self._reap, args=(period,), daemon=True,
                                        name="isegm-serve-reaper")
        self._reaper.start()

    def _reap(self, period: float) -> None:
        while not self._stop.wait(period):
            try:
                self.store.expire()
            except Exception:  # noqa: BLE001 - the reaper must not die
                logger.exception("session expiry failed")

    def close(self) -> None:
        """Stops the worker, the reaper and the download pool."""
        self._stop.set()
        self.fetcher.close()
        self.worker.stop()

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
            refine=c.refine,
        )

    # -- sessions ------------------------------------------------------------------------------
    def open_session(self, data: bytes, name: str, key: str | None = None,
                     client: str = "-", refine: str | None = None) -> Session:
        if len(data) > self.config.max_upload_bytes:
            raise ApiError(413, self._too_large(len(data)))
        image = decode_upload(data, self.config.max_pixels, name or "image")
        try:
            session = self.store.create(image, name, key=key, owner=client)
            if refine is not None:
                session.controller.set_refine(refine)
            return session
        except SessionLimit as e:
            raise ApiError(429, str(e)) from None
        except MemoryFull as e:
            raise ApiError(507, str(e)) from None

    def _too_large(self, n: int) -> str:
        return f"the upload has {n} bytes, the limit is {self.config.max_upload_bytes}"

    def session(self, session_id: str) -> Session:
        try:
            return self.store.get(session_id)
        except UnknownSession:
            raise ApiError(404, "unknown session (never created, deleted or expired)") from None

    def adapter_session(self, key: str, data_or_loader: Any, name: str) -> Session:
        """The cached session of an adapter request (by image hash) or a new one.

        Single flight per key: concurrent requests for one new image wait for the first one's
        session (or its error) instead of each decoding the image into an orphan session."""
        while True:
            session = self.store.find(key)
            if session is not None:
                return session
            with self._flights_lock:
                flight = self._flights.get(key)
                leader = flight is None
                if leader:
                    flight = self._flights[key] = Future()
            assert flight is not None
            if not leader:
                return flight.result()  # the leader's session, or its error for this image
            try:
                data = data_or_loader() if callable(data_or_loader) else data_or_loader
                session = self.open_session(data, name, key=key)
            except BaseException as e:
                flight.set_exception(e)
                raise
            else:
                flight.set_result(session)
                return session
            finally:
                with self._flights_lock:
                    self._flights.pop(key, None)

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


class CvatRequest(BaseModel):
    image: str = Field(description="the image file as base64")
    pos_points: list[list[float]] = Field(default_factory=list, description="[[x, y], ...]")
    neg_points: list[list[float]] = Field(default_factory=list, description="[[x, y], ...]")
    threshold: float | None = Field(None, ge=0.0, le=1.0, description="mask threshold")


# Label Studio ML backend /predict (the fields this server reads; others are allowed)
class LsKeypointValue(BaseModel):
    model_config = ConfigDict(extra="allow")
    x: float = Field(ge=0.0, le=100.0, allow_inf_nan=False, description="percent of the width")
    y: float = Field(ge=0.0, le=100.0, allow_inf_nan=False, description="percent of the height")
    keypointlabels: list[str] = Field(default_factory=list)


class LsResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = ""
    value: dict[str, Any] = Field(default_factory=dict)
    is_positive: StrictBool = True
    to_name: str | None = None


class LsContext(BaseModel):
    model_config = ConfigDict(extra="allow")
    result: list[LsResult] = Field(default_factory=list)


class LsParams(BaseModel):
    model_config = ConfigDict(extra="allow")
    context: LsContext | None = None


class LsTask(BaseModel):
    model_config = ConfigDict(extra="allow")
    data: dict[str, Any]


class LsPredict(BaseModel):
    model_config = ConfigDict(extra="allow")
    tasks: list[LsTask] = Field(min_length=1)
    params: LsParams | None = None
    context: LsContext | None = None
    label_config: str | None = None


def validate_as(model: type[BaseModel], data: Any, where: str = "") -> Any:
    """``model.model_validate(data)``, a failure as a 422 naming the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        raise ApiError(422, f"{loc.lstrip('.') or 'body'}: {first['msg']}") from None


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
    @app.exception_handler(FetchError)
    async def _api_error(_: Request, e: ApiError | FetchError) -> JSONResponse:
        return JSONResponse({"error": e.message}, status_code=e.status, headers=e.headers)

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

    app.add_middleware(_Gate, config=config)
    if config.allowed_origins:  # outermost: answers the CORS preflight of allowed origins
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.allowed_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

    # -- page ------------------------------------------------------------------------------
    # async routes that do not touch the sessions: they answer without a worker thread
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/api/info", tags=["api"])
    async def info() -> dict:
        """Model, device, limits and load."""
        stats = service.worker.stats
        return {
            "model": config.model_name,
            "device": str(service.device),
            "refine": config.refine,
            "limits": {
                "max_upload_bytes": config.max_upload_bytes,
                "max_pixels": config.max_pixels,
                "max_sessions": config.max_sessions,
                "max_memory_bytes": config.max_memory_bytes,
                "session_ttl_s": config.session_ttl_s,
                "empty_session_ttl_s": config.empty_session_ttl_s,
                "max_client_sessions": config.max_client_sessions,
                "max_client_memory_bytes": config.max_client_memory_bytes,
                "max_adapter_sessions": config.max_adapter_sessions,
                "max_adapter_memory_bytes": config.max_adapter_memory_bytes,
                "max_clicks": config.max_clicks,
            },
            "sessions": len(service.store),
            "sessions_by_pool": service.store.counts(),
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
        data, name, refine = await _read_image_body(request, config.max_upload_bytes)
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
    async def ls_health() -> dict:
        """Label Studio ML backend health check."""
        return {"status": "UP", "model_class": "isegm", "model": config.model_name}

    @app.get("/versions", tags=["label studio"])
    async def ls_versions() -> dict:
        """Model versions (some Label Studio versions ask): the one loaded model."""
        return {"versions": [config.model_name], "model_dir": ""}

    @app.post("/setup", tags=["label studio"])
    async def ls_setup(request: Request) -> dict:
        """Label Studio ML backend setup (the project's labelling config is accepted as is)."""
        await _json_body(request, required=False)
        return {"model_version": config.model_name}

    @app.post("/predict", tags=["label studio"])
    async def ls_predict(request: Request) -> dict:
        """Label Studio ML backend predict: the task and the ``keypointlabels`` context
        (percent coordinates, ``is_positive``) in, ``brushlabels`` in Label Studio's RLE out."""
        body = validate_as(LsPredict, await _json_body(request, required=True))
        return await _ls_predict(service, body, request)

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
    if data and _media_type(ctype) != "application/json":
        raise ApiError(415, f"expected application/json, got {ctype[:80] or 'no content type'}")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


async def _read_image_body(request: Request, max_bytes: int
                           ) -> tuple[bytes, str, str | None]:
    """(image bytes, file name, refinement mode or None) of a session-creating request."""
    ctype = request.headers.get("content-type", "")
    if _media_type(ctype) == "multipart/form-data":
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
    if _media_type(ctype) == "application/json":
        body = await _json_body(request, required=True)
        parsed = validate_as(CreateSession, body)
        return decode_base64(parsed.image), Path(parsed.name).name, parsed.refine
    raise ApiError(
        415,
        f"unsupported content type {ctype or '(none)'}: send multipart/form-data with a file "
        "field 'image', or application/json with a base64 'image'",
    )


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


async def _ls_task_session(service: Service, url: str) -> Session:
    """The session of a task image: cached by URL, else decoded from a ``data:`` URL or
    downloaded under :mod:`isegm.serve.fetch`'s rules (in its pool, not a web thread)."""
    key = "ls:" + hashlib.sha256(url.encode()).hexdigest()
    session = service.store.find(key)
    if session is not None:
        return session
    if url.startswith("data:"):
        loader: Any = lambda: decode_base64(url, "task image")  # noqa: E731
    else:
        future = service.fetcher.submit(service.fetcher.resolve(url))
        try:
            loader = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)),
                                            service.fetcher.deadline_s + 5)
        except asyncio.TimeoutError:  # the watchdog ends the download itself before this
            raise ApiError(502, "could not fetch the task image (deadline)") from None
    return await run_in_threadpool(service.adapter_session, key, loader, "task")


async def _ls_predict(service: Service, body: LsPredict, request: Request) -> dict:
    context = (body.params.context if body.params else None) or body.context or LsContext()
    keypoints = [(i, r) for i, r in enumerate(context.result) if r.type == "keypointlabels"]
    where = "params.context" if body.params and body.params.context else "context"
    if not keypoints:  # pre-annotation without clicks: nothing to propose
        return {"results": []}
    from_name, to_name = _brush_names(body.label_config)
    task = body.tasks[0]  # interactive calls carry the one task being labelled
    url = next((v for v in task.data.values() if isinstance(v, str)), None)
    if url is None:
        raise ApiError(422, "tasks[0].data: expected an image URL")
    values = [(validate_as(LsKeypointValue, r.value, f"{where}.result[{i}].value"), r)
              for i, r in keypoints]
    session = await _ls_task_session(service, url)
    h, w = session.size
    clicks, label = [], None
    for value, kp in values:
        # 100 % is the right/bottom edge: the last pixel
        x = min(value.x * w / 100.0, w - 1e-3)
        y = min(value.y * h / 100.0, h - 1e-3)
        clicks.append((x, y, kp.is_positive))
        label = label or (value.keypointlabels[0] if value.keypointlabels else None)
        to_name = kp.to_name or to_name
    request.state.session = session.id
    request.state.clicks = len(clicks)
    mask = await run_in_threadpool(service.predict_clicks, session, clicks)
    rle = await run_in_threadpool(ls_rle_encode, mask)
    result = {
        "from_name": from_name,
        "to_name": to_name,
        "type": "brushlabels",
        "original_width": w,
        "original_height": h,
        "image_rotation": 0,
        "value": {"format": "rle", "rle": rle, "brushlabels": [label] if label else []},
    }
    return {"results": [{"model_version": service.config.model_name, "score": 1.0,
                         "result": [result]}]}


def _rss_bytes() -> int | None:
    """Resident memory of this process (Linux), or None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


# --------------------------------------------------------------------------- ASGI gate
_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
_WILDCARD_HOSTS = ("0.0.0.0", "::", "")
TOKEN_COOKIE = "isegm_token"


def _media_type(ctype: str) -> str:
    """``application/json`` of ``Application/JSON; charset=utf-8``."""
    return ctype.split(";", 1)[0].strip().lower()


def _host_name(host: str) -> str:
    """The name of a Host header, without its port (``[::1]:8000`` -> ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class _Gate:
    """ASGI middleware in front of every route: Host check (DNS rebinding), token (header,
    cookie, or ``?token=`` once on the page), foreign ``Origin`` on state-changing requests,
    JSON content type, body size limit (streamed bodies included), one log line per request.
    It also names the client (token or remote address) for the per-client quota."""

    def __init__(self, app: Any, config: ServeConfig) -> None:
        self.app = app
        self.tokens = config.all_tokens
        self.max_bytes = config.max_upload_bytes
        # multipart bodies carry some bytes of framing around the file
        self.body_limit = config.max_upload_bytes + 64 * 1024
        extra = {h.lower() for h in config.allowed_hosts}
        self.hosts = {config.host.lower(), *_LOOPBACK_NAMES} | extra
        # bound to every address with a token and no --allowed-host: any name reaches it (a
        # rebinding page still has no token)
        self.any_host = "*" in extra or (
            config.host in _WILDCARD_HOSTS and bool(self.tokens) and not extra)
        self.origins = {o.rstrip("/").lower() for o in config.allowed_origins}

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
            headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                       for k, v in scope["headers"]}
            refusal = self._check(scope, headers)
            if refusal is not None:
                await _send_json(send_logged, *refusal)
                return
            if self._token_in_address(scope, headers):
                await self._send_cookie_redirect(scope, send_logged)
                return
            if "content-length" not in headers and scope["method"] in _STATE_CHANGING:
                receive = await self._buffered(receive)
                if receive is None:
                    await _send_json(send_logged, 413,
                                     f"the request body exceeds {self.max_bytes} bytes")
                    return
            await self.app(scope, receive, send_logged)
        finally:
            state = scope.get("state", {})
            session = log_text(str(state.get("session") or "-")[:8])
            logger.info(
                "%s %s %d session=%s clicks=%s client=%s %.1f ms",
                log_text(scope.get("method", "")),
                log_text(_redact(scope.get("path", "")), 200),
                status["code"],
                session,
                state.get("clicks", "-"),
                log_text(str(state.get("client", "-"))),
                1e3 * (time.perf_counter() - start),
            )

    def _check(self, scope: dict, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, message) of a refused request, or None."""
        host = _host_name(headers.get("host", ""))
        if not self.any_host and host not in self.hosts:
            return 421, (f"this server does not answer to the Host name {host[:60]!r} (DNS "
                         "rebinding guard); the operator may allow it with --allowed-host")
        length = headers.get("content-length")
        if length is not None:
            try:
                if int(length) > self.body_limit:
                    return 413, f"the body has {length} bytes, the limit is {self.max_bytes}"
            except ValueError:
                return 400, "bad Content-Length header"
        client = (scope.get("client") or ("-",))[0]
        if self.tokens:
            given = _credential(headers.get("authorization", "")) or _cookie(headers)
            if given is None and scope.get("path") in ("/", "/docs"):
                given = _query_token(scope)
            if given is None or not any(hmac.compare_digest(given.encode(), t.encode())
                                        for t in self.tokens):
                return 401, "missing or wrong token: send 'Authorization: Bearer <token>'"
            client = "token:" + hashlib.sha256(given.encode()).hexdigest()[:12]
        scope["state"]["client"] = client
        method = scope.get("method", "")
        if method in _STATE_CHANGING:
            origin = headers.get("origin")
            if origin is not None and not self._origin_allowed(origin, headers):
                return 403, (f"cross-origin request from {origin[:80]} refused; the operator "
                             "may allow that origin with --allow-origin")
            has_body = (length not in (None, "0")) or "transfer-encoding" in headers
            if has_body and scope.get("path") != "/api/sessions":
                ctype = headers.get("content-type", "")
                if _media_type(ctype) != "application/json":
                    return 415, (f"expected Content-Type application/json, got "
                                 f"{ctype[:80] or 'none'}")
        return None

    def _origin_allowed(self, origin: str, headers: dict[str, str]) -> bool:
        origin = origin.strip().rstrip("/").lower()
        own = origin.partition("://")[2] == headers.get("host", "").strip().lower()
        return own or origin in self.origins or "*" in self.origins

    def _token_in_address(self, scope: dict, headers: dict[str, str]) -> bool:
        """A page opened as ``/?token=...``: answered by a redirect that moves the token into
        a cookie (so it leaves the address bar and the history, and /docs works)."""
        return (bool(self.tokens) and scope.get("method") == "GET"
                and scope.get("path") in ("/", "/docs") and _query_token(scope) is not None
                and _credential(headers.get("authorization", "")) is None)

    async def _send_cookie_redirect(self, scope: dict, send: Any) -> None:
        token = _query_token(scope) or ""
        query = [p for p in scope.get("query_string", b"").decode("latin-1").split("&")
                 if p and not p.startswith("token=")]
        location = scope["path"] + ("?" + "&".join(query) if query else "")
        cookie = f"{TOKEN_COOKIE}={quote(token, safe='')}; Path=/; HttpOnly; SameSite=Strict"
        await send({"type": "http.response.start", "status": 303, "headers": [
            (b"location", location.encode("latin-1")), (b"set-cookie", cookie.encode("latin-1")),
            (b"cache-control", b"no-store"), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    async def _buffered(self, receive: Any) -> Any:
        """A body without Content-Length (chunked) read up to the limit: a replaying receive,
        or None when it is too large (a 413, not a parse error)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.body_limit:
                return None
            if not message.get("more_body", False):
                break
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replaying() -> dict:
            return replay.pop() if replay else await receive()

        return replaying


def _query_token(scope: dict) -> str | None:
    query = scope.get("query_string", b"").decode("latin-1")
    value = dict(p.partition("=")[::2] for p in query.split("&") if p).get("token")
    return unquote(value) if value else None


def _cookie(headers: dict[str, str]) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == TOKEN_COOKIE and value:
            return unquote(value)
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
