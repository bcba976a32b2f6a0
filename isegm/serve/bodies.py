"""Reading request bodies: content types, JSON objects, pydantic validation; a bad body is an
:class:`ApiError` naming the problem (4xx), never a traceback."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ValidationError

from isegm.serve.errors import ApiError

__all__ = ["json_body", "media_type", "validate_as"]


def media_type(ctype: str) -> str:
    """``application/json`` of ``Application/JSON; charset=utf-8``."""
    return ctype.split(";", 1)[0].strip().lower()


async def json_body(request: Request, required: bool) -> dict:
    """The JSON object of a request body ({} for an empty optional body).

    Raises:
        ApiError: 415 another content type, 400 not JSON or not an object.
    """
    data = await request.body()
    if not data and not required:
        return {}
    ctype = request.headers.get("content-type", "")
    if data and media_type(ctype) != "application/json":
        raise ApiError(415, f"expected application/json, got {ctype[:80] or 'no content type'}")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def validate_as(model: type[BaseModel], data: Any, where: str = "") -> Any:
    """``model.model_validate(data)``, a failure as a 422 naming the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        raise ApiError(422, f"{loc.lstrip('.') or 'body'}: {first['msg']}") from None
