"""How a refused or failed request is answered: JSON ``{"error": "..."}`` with a status that
names the problem (4xx), or 500 with the exception's type only (the traceback goes to the log).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from isegm.serve.fetch import FetchError
from isegm.serve.formats import ImageRejected

__all__ = ["ApiError", "install_error_handlers"]

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the server refuses: answered ``status`` with ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def install_error_handlers(app: FastAPI) -> None:
    """Answers every error of ``app`` as ``{"error": message}`` (no traceback to the client)."""

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
