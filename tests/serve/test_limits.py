"""Bad input and limits: each a 4xx JSON error naming the problem; the server keeps working;
sessions bounded by count, memory (LRU) and time to live; bearer token."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.serve.conftest import png_b64
from tests.serve.conftest import png_bytes as png
from tests.serve.test_api import CLICKS, click, create


def error(r, status: int, *words: str) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    message = r.json()["error"]
    assert "Traceback" not in message
    for w in words:
        assert w in message, (w, message)
    return message


def test_bad_requests_are_4xx_json_naming_the_problem(make_client, image_a):
    client, _ = make_client(max_upload_bytes=150_000, max_pixels=50_000, max_clicks=3)
    small = image_a[:100, :100]
    sid = create(client, image_a)["session_id"]
    # upload limits: bytes (multipart and base64) and pixels
    big = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    error(client.post("/api/sessions", files={"image": ("n.png", png(big), "image/png")}),
          413, "limit")
    error(client.post("/api/sessions", json={"image": base64.b64encode(png(big)).decode()}),
          413, "limit")
    many = np.zeros((300, 200, 3), np.uint8)  # 60000 pixels, compresses to a few bytes
    error(client.post("/api/sessions", files={"image": ("m.png", png(many), "image/png")}),
          413, "pixels", "50000")
    # corrupt image, wrong content type, bad base64, missing field, bad JSON
    error(client.post("/api/sessions", files={"image": ("c.png", png(small)[:200], "image/png")}),
          400, "cannot decode")
    error(client.post("/api/sessions", files={"image": ("t.txt", b"hello", "text/plain")}),
          415, "cannot read", "PNG, JPEG")
    error(client.post("/api/sessions", content=b"x", headers={"content-type": "text/plain"}),
          415, "content type")
    error(client.post("/api/sessions", json={"image": "not base64!"}), 400, "base64")
    error(client.post("/api/sessions", json={"name": "x"}), 422, "image")
    error(client.post("/api/sessions", files={"other": ("a.png", png(small), "image/png")}),
          422, "image")
    error(client.post("/api/sessions", content=b"{", headers={"content-type": "application/json"}),
          400, "JSON")
    # clicks: outside the image, malformed, unknown session, too many
    error(client.post(f"/api/sessions/{sid}/clicks", json={"x": 240, "y": 5, "positive": True}),
          400, "outside the image")
    error(client.post(f"/api/sessions/{sid}/clicks", json={"x": -1, "y": 5}), 400, "outside")
    error(client.post(f"/api/sessions/{sid}/clicks", json={"x": "a", "y": 5}), 422, "x")
    error(client.post(f"/api/sessions/{sid}/clicks", json={"y": 5}), 422, "x")
    error(client.post("/api/sessions/nope/clicks", json={"x": 1, "y": 1}), 404, "unknown session")
    error(client.delete("/api/sessions/nope"), 404, "unknown session")
    error(client.get("/api/sessions/nope/coco.json"), 404, "unknown session")
    error(client.get("/no/such/route"), 404)
    error(client.put("/api/sessions"), 405)
    for c in CLICKS:
        click(client, sid, *c)
    error(client.post(f"/api/sessions/{sid}/clicks", json={"x": 5, "y": 5}), 400, "limit")
    # the server still works and the rejected clicks left no trace
    state = client.get(f"/api/sessions/{sid}").json()
    assert state["clicks"] == [list(c) for c in CLICKS]


def test_maximum_sessions(make_client, image_a):
    client, service = make_client(max_sessions=2)
    first = create(client, image_a)["session_id"]
    create(client, image_a)
    r = client.post("/api/sessions", files={"image": ("a.png", png(image_a), "image/png")})
    error(r, 429, "maximum of 2 sessions")
    client.delete(f"/api/sessions/{first}")
    create(client, image_a)
    assert len(service.store) == 2


def test_least_recently_used_sessions_are_dropped_over_the_memory_bound(make_client, image_a):
    client, service = make_client()
    a = create(client, image_a)["session_id"]
    click(client, a, *CLICKS[0])
    b = create(client, image_a)["session_id"]
    click(client, b, *CLICKS[0])
    per_session = service.store.total_bytes / 2
    assert per_session > image_a.nbytes  # images, predictions and undo states are counted
    client.get(f"/api/sessions/{a}")  # a is now more recent than b
    service.store.max_bytes = int(2.5 * per_session)
    c = create(client, image_a)["session_id"]
    click(client, c, *CLICKS[0])  # three sessions do not fit: b, the least recent, goes
    assert client.get(f"/api/sessions/{b}").status_code == 404
    assert client.get(f"/api/sessions/{a}").status_code == 200
    assert client.get(f"/api/sessions/{c}").status_code == 200
    assert service.store.evicted == 1
    assert service.store.total_bytes <= service.store.max_bytes


def test_idle_sessions_expire(make_client, image_a):
    client, service = make_client(session_ttl_s=60, empty_session_ttl_s=60)
    now = [1000.0]
    service.store.clock = lambda: now[0]
    old = create(client, image_a)["session_id"]
    now[0] += 40
    kept = create(client, image_a)["session_id"]
    now[0] += 30  # old: 70 s idle, kept: 30 s
    error(client.get(f"/api/sessions/{old}"), 404, "unknown session")
    assert client.get(f"/api/sessions/{kept}").status_code == 200
    now[0] += 59  # a request refreshes the session
    assert client.get(f"/api/sessions/{kept}").status_code == 200
    assert service.store.expired == 1


@pytest.mark.parametrize(
    "headers, status",
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Bearer s3cret"}, 200),
        ({"Authorization": "Basic " + base64.b64encode(b"ls:s3cret").decode()}, 200),
    ],
)
def test_token_guards_every_endpoint(make_client, headers, status):
    client, _ = make_client(token="s3cret")
    for method, path in [("get", "/api/info"), ("get", "/health"), ("get", "/"),
                         ("get", "/docs"), ("post", "/setup")]:
        r = getattr(client, method)(path, headers=headers)
        assert r.status_code == status, (path, r.status_code)
        if status == 401:
            assert "token" in r.json()["error"]
    r = client.post("/api/sessions/x/undo", headers=headers)
    assert r.status_code == (401 if status == 401 else 404)


def test_page_accepts_the_token_in_its_address(make_client):
    client, _ = make_client(token="s3cret")
    assert client.get("/?token=nope").status_code == 401
    assert client.get("/api/info?token=s3cret").status_code == 401  # not in API addresses
    assert client.get("/?token=s3cret").status_code == 200  # then a cookie holds it


def test_a_failing_forward_is_a_json_500_and_the_server_goes_on(make_client, model, image_a):
    client, _ = make_client()
    sid = create(client, image_a)["session_id"]
    original = model.forward_embedded

    def broken(*args, **kwargs):
        raise RuntimeError("simulated device failure")

    model.forward_embedded = broken
    try:
        safe = TestClient(client.app, raise_server_exceptions=False, base_url="http://127.0.0.1")
        r = safe.post(f"/api/sessions/{sid}/clicks", json={"x": 123, "y": 49, "positive": True})
    finally:
        del model.forward_embedded
    assert model.forward_embedded == original
    assert r.status_code == 500
    assert r.json() == {"error": "internal error (RuntimeError); see the server log"}
    assert client.get(f"/api/sessions/{sid}").json()["clicks"] == []  # the click was not kept
    click(client, sid, *CLICKS[0])  # the worker and the session still work


@pytest.mark.parametrize("ctype", ["application/json", "multipart/form-data; boundary=abc"])
def test_streamed_body_without_length_is_cut_at_the_limit(make_client, ctype):
    client, _ = make_client(max_upload_bytes=1000)

    def chunks():
        for _ in range(100):
            yield b"x" * 10_000

    r = client.post("/api/sessions", content=chunks(), headers={"content-type": ctype})
    error(r, 413, "exceeds 1000 bytes")


def test_adapter_sessions_make_room_for_each_other_not_for_api_sessions(make_client, image_a):
    """Adapter sessions are a pool of their own: a new image replaces the least recently used
    one, and a full API pool never starves the adapters (nor the reverse)."""
    client, service = make_client(max_sessions=1, max_adapter_sessions=1)
    api = create(client, image_a)["session_id"]
    images = [np.ascontiguousarray(image_a[:, ::-1]), np.ascontiguousarray(image_a[::-1])]
    for image in images:  # two different images: the second replaces the first cache entry
        r = client.post("/cvat/interactor",
                        json={"image": png_b64(image), "pos_points": [[120, 80]]})
        assert r.status_code == 200, r.text
    assert len(service.store) == 2 and service.store.evicted == 1
    assert service.store.counts() == {"api": 1, "adapter": 1}
    assert client.get(f"/api/sessions/{api}").status_code == 200
    error(client.post("/api/sessions", files={"image": ("a.png", png(image_a), "image/png")}),
          429, "maximum of 1 sessions")
