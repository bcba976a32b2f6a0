"""The annotation server under hostile clients (issue 22): task image fetching (key, origins,
redirects, deadline, pool), sessions (finished work kept, quotas, pools, single flight),
malformed input (4xx naming the problem, fuzz), Host / Origin / content type, binding, logs.

Foreign and slow hosts are played by listeners on 127.0.0.1; every loop is bounded.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from isegm.serve import ServeConfig, Service, create_app
from isegm.serve.__main__ import main as serve_main
from tests.serve.conftest import LIMIT, png_b64
from tests.serve.conftest import png_bytes as png
from tests.serve.test_api import CLICKS, click, create
from tests.serve.test_limits import error

DOCS = Path(__file__).resolve().parents[2] / "docs"


# --------------------------------------------------------------------------- local hosts
class Host:
    """An HTTP server on 127.0.0.1 that answers ``routes[path] = (status, headers, body)`` and
    records the headers of every request it gets."""

    def __init__(self, routes: dict[str, tuple[int, dict, bytes]]) -> None:
        self.routes = routes
        self.seen: list[tuple[str, dict]] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                host.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                status, headers, body = host.routes.get(self.path, (404, {}, b"no"))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v.replace("{port}", str(host.port)))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SlowHost:
    """Answers every request with headers announcing 1 MB, then one byte every ``every``
    seconds (at most ``max_bytes`` of them), like a host that never finishes."""

    def __init__(self, every: float = 0.5, max_bytes: int = 400) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.every, self.max_bytes = every, max_bytes
        self.stop = threading.Event()
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"
                         b"Content-Length: 1000000\r\n\r\n")
            for _ in range(self.max_bytes):
                if self.stop.wait(self.every):
                    break
                conn.sendall(b"\0")
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def hosts() -> Iterator:
    made = []

    def make(kind=Host, *args, **kwargs):
        h = kind(*args, **kwargs)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ls_body(url: str, clicks=((123.0, 49.0, True),), size=(240, 160), **extra) -> dict:
    w, h = size
    result = [{"type": "keypointlabels", "is_positive": p, "to_name": "image",
               "value": {"x": 100 * x / w, "y": 100 * y / h, "keypointlabels": ["Object"]}}
              for x, y, p in clicks]
    return {"tasks": [{"data": {"image": url}}], "params": {"context": {"result": result}},
            **extra}


# --------------------------------------------------------------------------- 1: key and origins
def test_label_studio_key_goes_only_to_its_origin_and_foreign_hosts_are_refused(
        make_client, hosts, image_a, monkeypatch):
    image = png(image_a)
    other = hosts(Host, {"/x.png": (200, {}, image)})
    ls = hosts(Host, {
        "/data/x.png": (200, {}, image),
        "/data/y.png": (200, {}, image),
        "/away": (302, {"Location": other.origin + "/x.png"}, b""),
        "/here": (302, {"Location": "/data/y.png"}, b""),
    })
    monkeypatch.setenv("LABEL_STUDIO_URL", ls.origin)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "k3y")
    client, _ = make_client()
    # a foreign host named by a task: refused before any connection, naming the rule
    for url in (other.origin + "/x.png", f"http://localhost:{ls.port}/data/x.png"):
        error(client.post("/predict", json=ls_body(url)), 400, "not allowed", "LABEL_STUDIO_URL")
    assert other.seen == []
    # Label Studio's own files: fetched with the key
    r = client.post("/predict", json=ls_body("/data/x.png"))
    assert r.status_code == 200, r.text
    assert ls.seen[-1] == ("/data/x.png", ls.seen[-1][1])
    assert ls.seen[-1][1]["authorization"] == "Token k3y"
    # a redirect to another origin is not followed (the key never leaves)
    error(client.post("/predict", json=ls_body(ls.origin + "/away")), 400, "another origin")
    assert other.seen == []
    # one within the origin is
    assert client.post("/predict", json=ls_body(ls.origin + "/here")).status_code == 200
    assert [p for p, _ in ls.seen][-2:] == ["/here", "/data/y.png"]


def test_allowed_origins_get_no_key_and_every_network_failure_reads_the_same(
        make_client, hosts, image_a, monkeypatch):
    other = hosts(Host, {"/x.png": (200, {}, png(image_a)), "/bad.png": (200, {}, b"nope")})
    dead = f"http://127.0.0.1:{closed_port()}"
    ls = hosts(Host, {})
    monkeypatch.setenv("LABEL_STUDIO_URL", ls.origin)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "k3y")
    client, _ = make_client(fetch_origins=(other.origin, dead))
    assert client.post("/predict", json=ls_body(other.origin + "/x.png")).status_code == 200
    assert "authorization" not in other.seen[-1][1]
    refused = error(client.post("/predict", json=ls_body(dead + "/x.png")), 502, "could not")
    missing = error(client.post("/predict", json=ls_body(ls.origin + "/none.png")), 502)
    assert refused.replace(dead, "O") == missing.replace(ls.origin, "O")  # no port scanner
    error(client.post("/predict", json=ls_body(other.origin + "/bad.png")), 415, "cannot read")


# --------------------------------------------------------------------------- 2: slow hosts
@pytest.fixture
def live_server(model) -> Iterator:
    """start(**config) -> base URL of a real uvicorn server on a free loopback port."""
    import uvicorn

    started = []

    def start(**overrides) -> str:
        port = closed_port()
        service = Service(model, "cpu", ServeConfig(limit_longest_size=LIMIT, **overrides))
        uv = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port,
                                           log_level="warning"))
        thread = threading.Thread(target=uv.run, daemon=True)
        thread.start()
        started.append((uv, thread, service))
        deadline = time.monotonic() + 120
        while not uv.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert uv.started
        return f"127.0.0.1:{port}"

    yield start
    for uv, thread, service in started:
        uv.should_exit = True
        thread.join(15)
        service.close()


def _timed(netloc: str, method: str, path: str, body: bytes | None = None,
           timeout: float = 60) -> tuple[int, float, dict]:
    start = time.monotonic()
    conn = http.client.HTTPConnection(netloc, timeout=timeout)
    try:
        conn.request(method, path, body=body,
                     headers={"Content-Type": "application/json"} if body else {})
        r = conn.getresponse()
        r.read()
        return r.status, time.monotonic() - start, dict(r.getheaders())
    except OSError:
        return 0, time.monotonic() - start, {}
    finally:
        conn.close()


@pytest.mark.slow
def test_hanging_image_hosts_do_not_freeze_the_server(live_server, hosts, monkeypatch):
    slow = hosts(SlowHost, 0.5, 400)
    monkeypatch.setenv("LABEL_STUDIO_URL", slow.origin)
    # the pages must answer well before any download could end (a blocked server answers
    # only after the deadline); a long deadline keeps that margin on a busy machine
    deadline = 6.0
    netloc = live_server(fetch_deadline_s=deadline, fetch_workers=4)
    results: list[tuple[int, float, dict]] = []
    lock = threading.Lock()

    def predict(i: int) -> None:
        body = json.dumps(ls_body(f"/data/{i}.png")).encode()
        out = _timed(netloc, "POST", "/predict", body)
        with lock:
            results.append(out)

    threads = [threading.Thread(target=predict, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    answers = [_timed(netloc, "GET", path, timeout=10)
               for path in ("/health", "/", "/api/info", "/health")]
    for status, seconds, _ in answers:
        assert status == 200 and seconds < deadline / 3, answers
    for t in threads:
        t.join(deadline + 30)
    assert len(results) == 40
    statuses = sorted({s for s, _, _ in results})
    assert set(statuses) <= {502, 503}, statuses
    assert max(sec for _, sec, _ in results) < deadline + 10
    busy = [h for s, _, h in results if s == 503]
    assert busy and all(h.get("retry-after") for h in busy)
    assert slow.accepted <= 4 * 2  # the pool bounded the downloads


# --------------------------------------------------------------------------- 3: finished work
def test_finished_work_is_never_dropped_for_a_newcomer(make_client, image_a):
    client, service = make_client()
    victim = create(client, image_a)["session_id"]
    click(client, victim, *CLICKS[0])
    assert client.post(f"/api/sessions/{victim}/finish").json()["added"]
    empty = create(client, image_a)["session_id"]
    sizes = {s.id: s.nbytes for s in service.store._sessions.values()}
    service.store.max_bytes = sizes[victim] + sizes[empty] + 1000
    # a newcomer: the empty session makes room, the finished work stays
    newcomer = create(client, image_a)["session_id"]
    assert client.get(f"/api/sessions/{empty}").status_code == 404
    coco = client.get(f"/api/sessions/{victim}/coco.json")
    assert coco.status_code == 200 and len(coco.json()["annotations"]) == 1
    click(client, newcomer, *CLICKS[0])
    client.post(f"/api/sessions/{newcomer}/finish")
    # nothing left to drop: the next one is refused, nobody's work is lost
    error(client.post("/api/sessions", files={"image": ("a.png", png(image_a), "image/png")}),
          507, "finished work")
    assert client.get(f"/api/sessions/{victim}/coco.json").status_code == 200
    assert client.get(f"/api/sessions/{newcomer}").status_code == 200


def test_the_largest_idle_session_goes_first_not_many_small_ones(make_client, image_a):
    client, service = make_client()
    tiny = np.ascontiguousarray(image_a[:40, :60])
    small = [create(client, tiny)["session_id"] for _ in range(3)]
    big_image = cv2.resize(image_a, (480, 320))
    big = create(client, big_image)["session_id"]
    held = service.store.total_bytes
    service.store.max_bytes = held + 1000  # the next tiny one needs room
    create(client, tiny)
    assert client.get(f"/api/sessions/{big}").status_code == 404
    assert all(client.get(f"/api/sessions/{s}").status_code == 200 for s in small)


def test_empty_sessions_expire_sooner_and_without_a_request(make_client, image_a):
    client, service = make_client(session_ttl_s=100, empty_session_ttl_s=10)
    now = [1000.0]
    service.store.clock = lambda: now[0]
    work = create(client, image_a)["session_id"]
    click(client, work, *CLICKS[0])
    client.post(f"/api/sessions/{work}/finish")
    empty = create(client, image_a)["session_id"]
    now[0] += 50
    assert client.get(f"/api/sessions/{empty}").status_code == 404
    assert client.get(f"/api/sessions/{work}").status_code == 200
    # the reaper releases expired sessions with no request coming in
    client2, service2 = make_client(empty_session_ttl_s=0.6)
    create(client2, image_a)
    assert len(service2.store) == 1
    for _ in range(100):
        if len(service2.store) == 0:
            break
        time.sleep(0.1)
    assert len(service2.store) == 0 and service2.store.expired == 1


# --------------------------------------------------------------------------- 4: quotas, pools
def test_per_client_quota_and_adapters_are_never_starved(make_client, image_a):
    client, service = make_client(max_client_sessions=2, max_sessions=3)
    other = TestClient(client.app, base_url="http://127.0.0.1", client=("10.0.0.7", 5))
    create(client, image_a)
    create(client, image_a)
    error(client.post("/api/sessions", files={"image": ("a.png", png(image_a), "image/png")}),
          429, "per client")
    create(other, image_a)  # another address has its own quota
    error(other.post("/api/sessions", files={"image": ("a.png", png(image_a), "image/png")}),
          429, "maximum of 3 sessions")
    # the API pool is full; the adapters still work
    r = client.post("/cvat/interactor", json={"image": png_b64(image_a), "pos_points": [[5, 5]]})
    assert r.status_code == 200, r.text


def test_quota_is_per_token_when_tokens_are_set(make_client, image_a):
    client, _ = make_client(tokens=("alice", "bob"), max_client_sessions=1)
    alice, bob = ({"Authorization": f"Bearer {t}"} for t in ("alice", "bob"))
    files = {"image": ("a.png", png(image_a), "image/png")}
    assert client.post("/api/sessions", files=files, headers=alice).status_code == 201
    error(client.post("/api/sessions", files=files, headers=alice), 429, "per client")
    assert client.post("/api/sessions", files=files, headers=bob).status_code == 201


def test_per_client_memory_quota(make_client, image_a):
    client, service = make_client(max_client_memory_bytes=1)
    error(client.post("/api/sessions", files={"image": ("a.png", png(image_a), "image/png")}),
          429, "limit per client")


# --------------------------------------------------------------------------- 5: single flight
def test_concurrent_adapter_requests_for_one_image_share_one_session(make_client, image_a):
    client, service = make_client()
    original = service.open_session

    def slow_open(*args, **kwargs):
        time.sleep(0.3)  # decoding a big image: the window the duplicates came through
        return original(*args, **kwargs)

    service.open_session = slow_open
    body = {"image": png_b64(image_a), "pos_points": [[123, 49]]}
    statuses = []

    def call() -> None:
        statuses.append(client.post("/cvat/interactor", json=body).status_code)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert statuses == [200] * 8
    assert len(service.store) == 1


# --------------------------------------------------------------------------- 6: 4xx, fuzz
def test_bad_urls_and_oversized_streamed_json_are_4xx(make_client, monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://127.0.0.1:9")
    client, _ = make_client(max_upload_bytes=1000)
    for url in ("http://127.0.0.1:9/a\nb.png", "/data/a b.png", "http://127.0.0.1:99999/x",
                "http://[::1/x", "javascript:alert(1)", "//evil.example/x.png"):
        r = client.post("/predict", json=ls_body(url))
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text)

    def chunks():
        for _ in range(50):
            yield b"x" * 10_000

    for path in ("/cvat/interactor", "/predict", "/api/sessions/x/clicks"):
        r = client.post(path, content=chunks(), headers={"content-type": "application/json"})
        error(r, 413, "exceeds 1000 bytes")


def _random_json(rng: random.Random, depth: int = 0):
    kinds = ["int", "float", "str", "bool", "null"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "int":
        return rng.choice([0, 1, -1, 5, 10**12, -(10**12)])
    if kind == "float":
        return rng.choice([0.5, -10.0, 150.0, 1e308, 99.9])
    if kind == "str":
        return rng.choice(["", "x", "false", "Obj", "data:,", "http://127.0.0.1:9/\n",
                           "data:image/png;base64,AAAA", "/data/x.png", "keypointlabels"])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = ["tasks", "data", "image", "params", "context", "result", "type", "value", "x", "y",
            "is_positive", "keypointlabels", "label_config", "pos_points", "neg_points",
            "threshold", "positive", "name"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _mutations(rng: random.Random, base: dict) -> dict:
    """A valid-looking body with one field replaced by random JSON."""
    body = json.loads(json.dumps(base))
    node, path = body, []
    while isinstance(node, (dict, list)) and node and rng.random() < 0.7:
        key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        path.append(key)
        if not isinstance(node[key], (dict, list)):
            break
        node = node[key]
    target = body
    for key in path[:-1]:
        target = target[key]
    if path:
        target[path[-1]] = _random_json(rng)
    return body


def test_fuzzed_json_bodies_never_give_a_500(make_client, image_a, monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_URL", f"http://127.0.0.1:{closed_port()}")
    client, _ = make_client()
    safe = TestClient(client.app, raise_server_exceptions=False, base_url="http://127.0.0.1")
    sid = create(client, image_a)["session_id"]
    tiny = "data:image/png;base64," + png_b64(np.zeros((8, 8, 3), np.uint8))
    bases = {
        "/predict": ls_body(tiny, size=(8, 8), label_config="<View/>"),
        "/cvat/interactor": {"image": png_b64(np.zeros((8, 8, 3), np.uint8)),
                             "pos_points": [[1, 1]], "neg_points": [[2, 2]]},
        f"/api/sessions/{sid}/clicks": {"x": 5, "y": 5, "positive": False},
        "/api/sessions": {"image": png_b64(np.zeros((8, 8, 3), np.uint8)), "name": "n"},
        "/setup": {"project": "1", "label_config": "<View/>"},
    }
    rng = random.Random(22)
    seen = set()
    for i in range(160):  # bounded
        path = rng.choice(list(bases))
        body = _random_json(rng) if i % 4 == 0 else _mutations(rng, bases[path])
        r = safe.post(path, json=body)
        seen.add(r.status_code)
        assert r.status_code < 500 or r.status_code == 502, (path, body, r.status_code, r.text)
        assert "error" in r.json() or r.status_code in (200, 201), r.text
        if path == "/api/sessions" and r.status_code == 201:
            client.delete(f"/api/sessions/{r.json()['session_id']}")
    assert any(400 <= s < 500 for s in seen)


# --------------------------------------------------------------------------- 7, 14: flags
@pytest.mark.parametrize(
    "argv, words",
    [
        (["--host", "0.0.0.0"], ["--host 0.0.0.0", "--token", "--allow-no-token"]),
        (["--host", "192.168.1.5", "--port", "8001"], ["--token"]),
        (["--limit-longest-size", "-1"], ["--limit-longest-size"]),
        (["--fetch-origin", "ftp://x"], ["--fetch-origin"]),
    ],
)
def test_unsafe_or_bad_flags_exit_2_with_one_line(argv, words, capsys):
    # a missing checkpoint as well: whatever happens, no server is started on these addresses
    assert serve_main([*argv, "--checkpoint", "no/such.pth"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    for w in words:
        assert w in err


def test_an_explicit_flag_allows_an_open_bind(capsys):
    # passes the binding rule and stops at the (missing) checkpoint
    assert serve_main(["--host", "0.0.0.0", "--allow-no-token",
                       "--checkpoint", "no/such.pth"]) == 2
    assert "no/such.pth" in capsys.readouterr().err


# --------------------------------------------------------------------------- 8: platforms
def test_cvat_function_has_no_working_looking_default_and_versions_answers(client, monkeypatch):
    text = (DOCS / "cvat" / "function.yaml").read_text()
    block = text[text.index("name: ISEGM_URL"):].splitlines()[1]
    assert block.strip() in ("value: ''", 'value: ""'), block
    import importlib.util
    from types import SimpleNamespace

    spec = importlib.util.spec_from_file_location("cvat_main", DOCS / "cvat" / "main.py")
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)
    monkeypatch.delenv("ISEGM_URL", raising=False)
    context = SimpleNamespace(user_data=SimpleNamespace(),
                              Response=lambda **kw: SimpleNamespace(**kw))
    handler.init_context(context)
    out = handler.handler(context, SimpleNamespace(body={"image": "x"}))
    assert out.status_code == 500 and "ISEGM_URL" in json.loads(out.body)["error"]
    r = client.get("/versions")
    assert r.status_code == 200 and r.json()["versions"]


# --------------------------------------------------------------------------- 9: LS schema
@pytest.mark.parametrize(
    "change, words",
    [
        (lambda b: b["params"].update(context=[1]), ["params.context"]),
        (lambda b: b["params"]["context"].update(result=5), ["params.context.result"]),
        (lambda b: b.update(tasks=[{"data": [1]}]), ["tasks[0].data"]),
        (lambda b: b["params"]["context"]["result"][0]["value"].update(keypointlabels={"a": 1}),
         ["keypointlabels"]),
        (lambda b: b["params"]["context"]["result"][0]["value"].update(keypointlabels="Obj"),
         ["keypointlabels"]),
        (lambda b: b.update(label_config=5), ["label_config"]),
        (lambda b: b["params"]["context"]["result"][0].update(is_positive="false"),
         ["is_positive", "boolean"]),
        (lambda b: b["params"]["context"]["result"][0]["value"].update(x=150), ["value.x"]),
        (lambda b: b["params"]["context"]["result"][0]["value"].update(x=-10), ["value.x"]),
    ],
)
def test_malformed_label_studio_requests_are_422_naming_the_field(client, image_a, change,
                                                                  words):
    body = ls_body("data:image/png;base64," + png_b64(image_a))
    change(body)
    message = error(client.post("/predict", json=body), 422)
    for w in words:
        assert w in message, (w, message)


def test_click_booleans_must_be_booleans(client, image_a):
    sid = create(client, image_a)["session_id"]
    error(client.post(f"/api/sessions/{sid}/clicks", json={"x": 5, "y": 5, "positive": "false"}),
          422, "positive")


# --------------------------------------------------------------------------- 10, 13: image size
def _huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header announces width x height (the pixel data is a stub)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))


def test_formats_without_a_readable_header_are_415_before_decoding(client, tmp_path):
    hdr = tmp_path / "x.hdr"
    assert cv2.imwrite(str(hdr), np.zeros((64, 64, 3), np.float32))
    for name, data in [("x.hdr", hdr.read_bytes()), ("x.pgm", b"P5\n12000 12000\n255\n" + b"\0")]:
        error(client.post("/api/sessions", files={"image": (name, data, "image/x")}), 415,
              "PNG, JPEG")


def test_one_header_check_for_cli_dataset_readers_and_server(client, tmp_path, capsys, model):
    from isegm.data.base import DatasetError
    from isegm.data.io import read_image as dataset_read_image
    from isegm.data.mask_io import read_mask_file
    from isegm.predict import main as predict_main
    from isegm.predict import read_image

    big = tmp_path / "big.png"
    big.write_bytes(_huge_png_header(30000, 30000))
    error(client.post("/api/sessions", files={"image": ("big.png", big.read_bytes(),
                                                        "image/png")}), 413, "pixels")
    for reader in (dataset_read_image, read_mask_file):
        with pytest.raises(DatasetError, match="pixels"):
            reader(big)
    assert predict_main(["--image", str(big), "--clicks", "1,1,+",
                         "--output", str(tmp_path / "m.png")], model=model) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pixels" in err and "limit is 25000000" in err
    # the limit is an option
    small = tmp_path / "small.png"
    small.write_bytes(png(np.zeros((40, 50, 3), np.uint8)))
    assert read_image(small, max_pixels=2000).shape == (40, 50, 3)
    assert predict_main(["--image", str(small), "--clicks", "1,1,+", "--max-pixels", "1000",
                         "--output", str(tmp_path / "m.png")], model=model) == 2
    assert "2000 pixels, the limit is 1000" in capsys.readouterr().err
    hdr = tmp_path / "x.hdr"
    cv2.imwrite(str(hdr), np.zeros((8, 8, 3), np.float32))
    with pytest.raises(DatasetError, match="PNG, JPEG"):
        dataset_read_image(hdr)


def test_cli_caps_clicks_and_refuses_a_negative_size(tmp_path, capsys, model):
    from isegm.predict import main as predict_main

    image = tmp_path / "i.png"
    image.write_bytes(png(np.zeros((40, 50, 3), np.uint8)))
    many = " ".join(["1,1,+"] * 10_000)
    start = time.monotonic()
    assert predict_main(["--image", str(image), "--clicks", many,
                         "--output", str(tmp_path / "m.png")], model=model) == 2
    assert time.monotonic() - start < 10
    assert "--max-clicks 100" in capsys.readouterr().err
    assert predict_main(["--image", str(image), "--clicks", "1,1,+", "--limit-longest-size",
                         "-1", "--output", str(tmp_path / "m.png")], model=model) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--limit-longest-size" in err


# --------------------------------------------------------------------------- 11: negative only
def test_background_clicks_alone_select_nothing(client, image_a):
    r = client.post("/cvat/interactor", json={"image": png_b64(image_a),
                                              "neg_points": [[123, 49]]})
    assert r.status_code == 200 and not np.asarray(r.json()["mask"]).any()
    assert r.json()["points"] == []
    sid = create(client, image_a)["session_id"]
    state = click(client, sid, 40, 20, False)
    assert state["area"] == 0
    assert click(client, sid, *CLICKS[0])["area"] > 0  # then an object click selects


# --------------------------------------------------------------------------- 12: web pages
def test_web_pages_cannot_drive_the_server(make_client, image_a):
    client, _ = make_client()
    evil = {"Origin": "http://evil.example"}
    # JSON endpoints take application/json only (no preflight-free text/plain)
    r = client.post("/predict", content=json.dumps({"tasks": [{"data": {"image": "x"}}]}),
                    headers={"Content-Type": "text/plain; x=json"})
    error(r, 415, "application/json")
    # a foreign page's state-changing request is refused, with any content type
    error(client.post("/api/sessions", files={"image": ("a.png", png(image_a), "image/png")},
                      headers=evil), 403, "evil.example")
    error(client.post("/predict", json={"tasks": []}, headers=evil), 403, "--allow-origin")
    # the page's own origin is fine
    r = client.post("/api/sessions", files={"image": ("a.png", png(image_a), "image/png")},
                    headers={"Origin": "http://127.0.0.1"})
    assert r.status_code == 201
    # DNS rebinding: a foreign Host name
    error(client.get("/api/info", headers={"Host": "evil.example"}), 421, "Host")
    assert client.get("/api/info", headers={"Host": "localhost:8000"}).status_code == 200


def test_allowed_origins_and_hosts_are_options(make_client, image_a):
    client, _ = make_client(allowed_origins=("https://app.example",),
                            allowed_hosts=("gpu-server",))
    pre = client.options("/api/sessions", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "https://app.example"
    r = client.post("/api/sessions", json={"image": png_b64(image_a)},
                    headers={"Origin": "https://app.example"})
    assert r.status_code == 201
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert client.get("/health", headers={"Host": "gpu-server:8000"}).status_code == 200
    error(client.get("/health", headers={"Host": "other"}), 421)


# --------------------------------------------------------------------------- 14: logs, cookie
def test_names_are_escaped_in_the_log(client, image_a, caplog):
    with caplog.at_level(logging.INFO, logger="isegm.serve"):
        r = client.post("/api/sessions", json={
            "image": base64.b64encode(png(image_a)).decode(),
            "name": "a\nINFO isegm.serve.app: forged"})
        assert r.status_code == 201
        client.get("/api/sessions/x%0Aforged")
    lines = [rec.getMessage() for rec in caplog.records]
    assert lines and all("\n" not in line for line in lines)
    assert any("a\\nINFO" in line for line in lines)


def test_token_in_the_address_becomes_a_cookie_and_docs_work(make_client):
    client, _ = make_client(token="s3cret")
    r = client.get("/docs?token=s3cret", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/docs"
    assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers["set-cookie"]
    assert client.get("/docs").status_code == 200  # the cookie
    assert client.get("/openapi.json").status_code == 200  # what the docs page loads
    r = client.get("/?token=s3cret&x=1", follow_redirects=False)
    assert r.headers["location"] == "/?x=1"
    fresh = TestClient(client.app, base_url="http://127.0.0.1")
    assert fresh.get("/openapi.json").status_code == 401
    assert fresh.get("/?token=wrong", follow_redirects=False).status_code == 401
