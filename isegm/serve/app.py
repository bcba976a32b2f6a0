"""The annotation server's FastAPI app: the factory, the page and ``/api/info``; the routes of
each surface live in their own module.

* :mod:`isegm.serve.api` -- the JSON session API (which the page uses);
* :mod:`isegm.serve.cvat`, :mod:`isegm.serve.label_studio` -- the adapters;
* :mod:`isegm.serve.gate` -- Host, token, Origin, content type and size checks before any
  route; errors are JSON ``{"error": "..."}`` with a 4xx status naming the problem (an
  unexpected failure is logged and answered 500 without a traceback);
* :mod:`isegm.serve.service` -- the one model, batching worker and sessions every route uses,
  so masks are those of ``python -m isegm.predict`` and the Tk demo;
* :mod:`isegm.serve.config` -- the limits (torch-free, for the command line).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from isegm.serve.api import add_api_routes
from isegm.serve.config import ServeConfig
from isegm.serve.cvat import add_cvat_routes
from isegm.serve.errors import ApiError
from isegm.serve.formats import ImageRejected
from isegm.serve.gate import Gate
from isegm.serve.label_studio import add_label_studio_routes
from isegm.serve.service import Service

__all__ = ["ApiError", "ServeConfig", "Service", "create_app"]

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"


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
    _install_error_handlers(app)

    app.add_middleware(Gate, config=config)
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

    add_api_routes(app, service)
    add_cvat_routes(app, service)
    add_label_studio_routes(app, service)
    return app


def _rss_bytes() -> int | None:
    """Resident memory of this process (Linux), or None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _install_error_handlers(app: FastAPI) -> None:
    """Answers every error of ``app`` as ``{"error": message}``: 4xx naming the problem, or
    500 with the exception's type only (the traceback goes to the log)."""

    @app.exception_handler(ApiError)  # FetchError too: a subclass
    async def _api_error(_: Request, e: ApiError) -> JSONResponse:
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
