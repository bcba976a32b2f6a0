"""The Label Studio ML backend (``/health``, ``/versions``, ``/setup``, ``/predict``):
``keypointlabels`` clicks in percent of the image in, ``brushlabels`` in Label Studio's RLE out.
The task image is a URL: downloaded under :mod:`isegm.serve.fetch`'s rules (or decoded from a
``data:`` URL) and cached as an adapter session keyed by the URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import xml.etree.ElementTree as ET
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from isegm.serve.bodies import json_body, validate_as
from isegm.serve.errors import ApiError
from isegm.serve.formats import decode_base64, ls_rle_encode
from isegm.serve.service import Service
from isegm.serve.sessions import Session

__all__ = ["LsPredict", "add_label_studio_routes", "ls_predict_results"]


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


async def ls_predict_results(service: Service, body: LsPredict, request: Request) -> dict:
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


def add_label_studio_routes(app: FastAPI, service: Service) -> None:
    """The Label Studio ML backend routes of ``app``."""
    config = service.config

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
        await json_body(request, required=False)
        return {"model_version": config.model_name}

    @app.post("/predict", tags=["label studio"])
    async def ls_predict(request: Request) -> dict:
        """Label Studio ML backend predict: the task and the ``keypointlabels`` context
        (percent coordinates, ``is_positive``) in, ``brushlabels`` in Label Studio's RLE out."""
        body = validate_as(LsPredict, await json_body(request, required=True))
        return await ls_predict_results(service, body, request)
