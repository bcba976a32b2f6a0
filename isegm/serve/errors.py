"""The error a request is refused with: answered ``status`` with JSON ``{"error": message}``.

Torch- and FastAPI-free, so the download rules (:mod:`isegm.serve.fetch`) and the command line
use it too; :func:`isegm.serve.app.create_app` turns it into the response.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ApiError"]


class ApiError(Exception):
    """A request the server refuses: answered ``status`` with ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
