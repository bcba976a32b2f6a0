"""The CVAT adapter (``POST /cvat/interactor``): CVAT's interactor contract, all points of the
object in, its mask and the polygon of its largest region out. CVAT resends every point at
each call: sessions are cached by the image (see :meth:`Service.adapter_session`).
"""

from __future__ import annotations

import hashlib

import numpy as np
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field

from isegm.annotation.clicks import ClickTuple
from isegm.serve.errors import ApiError
from isegm.serve.formats import decode_base64, largest_contour
from isegm.serve.service import Service

__all__ = ["CvatRequest", "add_cvat_routes"]


class CvatRequest(BaseModel):
    image: str = Field(description="the image file as base64")
    pos_points: list[list[float]] = Field(default_factory=list, description="[[x, y], ...]")
    neg_points: list[list[float]] = Field(default_factory=list, description="[[x, y], ...]")
    threshold: float | None = Field(None, ge=0.0, le=1.0, description="mask threshold")


def _points(points: list[list[float]], positive: bool, name: str) -> list[ClickTuple]:
    out = []
    for i, p in enumerate(points):
        if len(p) != 2:
            raise ApiError(422, f"{name}[{i}]: expected [x, y], got {p}")
        out.append((float(p[0]), float(p[1]), positive))
    return out


def add_cvat_routes(app: FastAPI, service: Service) -> None:
    """The CVAT interactor route of ``app``."""

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
