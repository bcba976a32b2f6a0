"""Fixtures of the annotation-server tests: the built-in default model (tiny, CPU), small
GrabCut images, a service factory and a test client."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from isegm.predict import Predictor, load_model, read_image
from isegm.serve import ServeConfig, Service, create_app

# images are downscaled so that a click costs a fraction of a second on a shared CPU
LIMIT = 256
# (GrabCut image, a click inside its object where the default model finds it)
OBJECT_CLICK = ("86016", (247, 98))


@pytest.fixture(scope="session")
def model():
    return load_model(None, "cpu")


def small_image(grabcut_dir: Path, stem: str, width: int = 240) -> np.ndarray:
    image = read_image(grabcut_dir / "data_GT" / f"{stem}.jpg")
    h, w = image.shape[:2]
    return cv2.resize(image, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB image as PNG file bytes."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def png_b64(image: np.ndarray) -> str:
    return base64.b64encode(png_bytes(image)).decode()


def decode_png(data: bytes | str) -> np.ndarray:
    raw = base64.b64decode(data) if isinstance(data, str) else data
    out = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    assert out is not None
    return out


def reference_predictor(model, config: ServeConfig) -> Predictor:
    """A plain predictor with the server's settings (no worker): what isegm.predict computes."""
    return Predictor(
        model,
        device="cpu",
        limit_longest_size=config.limit_longest_size,
        zoom_in=config.zoom_in,
        threshold=config.threshold,
    )


@pytest.fixture
def make_client(model) -> Iterator:
    """make_client(**config) -> (TestClient, Service); workers are stopped afterwards."""
    services = []

    def make(model_=None, **overrides):
        config = ServeConfig(limit_longest_size=LIMIT, **overrides)
        service = Service(model_ if model_ is not None else model, "cpu", config)
        services.append(service)
        # the Host a browser on this machine sends (the server refuses foreign Host names)
        return TestClient(create_app(service), base_url="http://127.0.0.1"), service

    yield make
    for s in services:
        s.close()


@pytest.fixture
def client(make_client):
    return make_client()[0]


@pytest.fixture(scope="module")
def server(model):
    """A real uvicorn server on a free loopback port: (base URL, service)."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    service = Service(model, "cpu", ServeConfig(limit_longest_size=LIMIT))
    uv = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port,
                                       log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 600
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}", service
    uv.should_exit = True
    thread.join(10)
    service.close()


@pytest.fixture(scope="session")
def image_a(grabcut_dir) -> np.ndarray:
    return small_image(grabcut_dir, OBJECT_CLICK[0])


@pytest.fixture(scope="session")
def image_b(grabcut_dir) -> np.ndarray:
    return small_image(grabcut_dir, "bool")
