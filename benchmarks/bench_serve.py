#!/usr/bin/env python
"""Load benchmark of the annotation server: K concurrent clients on loopback.

Each client opens a session on its own 640x480 image (GrabCut photos, resized) and makes
``--clicks`` clicks (object clicks inside the ground truth, background clicks outside it, drawn
by a seeded generator, alternating), waiting for each answer before the next click, as an
annotator does. Reported per K: click latency p50/p95 (client side, HTTP included), clicks per
second, errors (non-200 answers), the server's overhead per click (latency minus the
Predictor's own time ``model_ms`` reported by the server, median), the largest batch the
worker formed and the server's RSS. Then ``--rss-sessions`` sessions are opened (two clicks
each, kept) and the RSS is reported again.

Targets (issue 14, measured on an idle machine): 8 clients x 20 clicks with 0 errors and p95
<= 3x the single-client latency; server overhead <= 15 ms per click at 640x480.

    python benchmarks/bench_serve.py [--clients 1,8] [--clicks 20] [--threads 2]
    python benchmarks/bench_serve.py --url http://127.0.0.1:8000   # a running server

The server is started as a subprocess on 127.0.0.1 unless ``--url`` names one; only loopback
addresses are accepted, and the number of requests is bounded by ``--max-requests``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SIZE = (640, 480)


class Client:
    """One keep-alive HTTP connection to the server."""

    def __init__(self, host: str, port: int, token: str | None) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=300)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str | None = None) -> tuple[int, dict]:
        headers = dict(self.headers)
        if content_type:
            headers["Content-Type"] = content_type
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        try:
            return r.status, json.loads(data) if data else {}
        except ValueError:
            return r.status, {"error": data[:200].decode("latin-1")}

    def create(self, png: bytes, name: str) -> tuple[int, dict]:
        boundary = uuid.uuid4().hex
        body = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
            f"filename=\"{name}\"\r\nContent-Type: image/png\r\n\r\n"
        ).encode() + png + f"\r\n--{boundary}--\r\n".encode()
        return self.request("POST", "/api/sessions", body, f"multipart/form-data; boundary={boundary}")

    def click(self, sid: str, x: float, y: float, positive: bool) -> tuple[int, dict]:
        body = json.dumps({"x": x, "y": y, "positive": positive}).encode()
        return self.request("POST", f"/api/sessions/{sid}/clicks", body, "application/json")

    def close(self) -> None:
        self.conn.close()


def load_images(grabcut: Path, n: int) -> list[tuple[str, bytes, np.ndarray]]:
    """n (name, PNG bytes, object mask) at 640x480, cycling through the GrabCut photos."""
    photos = sorted((grabcut / "data_GT").glob("*.jpg"))
    if not photos:
        sys.exit(f"error: no GrabCut photos in {grabcut / 'data_GT'} (use --grabcut)")
    out = []
    for i in range(n):
        path = photos[i % len(photos)]
        image = cv2.resize(cv2.imread(str(path)), SIZE, interpolation=cv2.INTER_AREA)
        gt_path = next((grabcut / "boundary_GT").glob(f"{path.stem}.*"))
        gt = cv2.resize(cv2.imread(str(gt_path), 0), SIZE, interpolation=cv2.INTER_NEAREST) == 255
        ok, buf = cv2.imencode(".png", image)
        out.append((f"{path.stem}_{i}.png", buf.tobytes(), gt))
    return out


def click_plan(gt: np.ndarray, n: int, seed: int) -> list[tuple[float, float, bool]]:
    """Object click at the deepest ground-truth pixel, then alternating background / object
    clicks at seeded random pixels outside / inside the ground truth."""
    dist = cv2.distanceTransform(np.pad(gt, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    clicks = [(float(x), float(y), True)]
    rng = np.random.default_rng(seed)
    inside, outside = np.argwhere(gt), np.argwhere(~gt)
    for k in range(1, n):
        positive = k % 2 == 0
        pool = inside if positive and len(inside) else outside
        py, px = pool[rng.integers(len(pool))]
        clicks.append((float(px), float(py), positive))
    return clicks


def run_clients(host: str, port: int, token: str | None, k: int, clicks: int,
                images: list, seed: int) -> dict:
    """K clients at once, each on its own image; latency statistics of the click requests."""
    latencies: list[float] = []
    overheads: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(k)

    def client(i: int) -> None:
        c = Client(host, port, token)
        name, png, gt = images[i]
        try:
            status, info = c.create(png, name)
            if status != 201:
                with lock:
                    errors.append(f"create {status}: {info.get('error')}")
                return
            sid = info["session_id"]
            plan = click_plan(gt, clicks, seed + i)
            barrier.wait()
            for x, y, positive in plan:
                start = time.perf_counter()
                status, state = c.click(sid, x, y, positive)
                ms = 1e3 * (time.perf_counter() - start)
                with lock:
                    if status != 200:
                        errors.append(f"click {status}: {state.get('error')}")
                        continue
                    latencies.append(ms)
                    if state.get("model_ms") is not None:
                        overheads.append(ms - state["model_ms"])
            c.request("DELETE", f"/api/sessions/{sid}")
        except (OSError, http.client.HTTPException, threading.BrokenBarrierError) as e:
            with lock:
                errors.append(f"{type(e).__name__}: {e}")
        finally:
            c.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(k)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    q = np.percentile(latencies, [50, 95]) if latencies else [float("nan")] * 2
    return {
        "clients": k,
        "clicks": len(latencies),
        "errors": len(errors),
        "error_examples": errors[:3],
        "p50_ms": float(q[0]),
        "p95_ms": float(q[1]),
        "clicks_per_s": len(latencies) / wall if wall else 0.0,
        "overhead_ms": statistics.median(overheads) if overheads else float("nan"),
        "wall_s": wall,
    }


def info(host: str, port: int, token: str | None) -> dict:
    c = Client(host, port, token)
    try:
        return c.request("GET", "/api/info")[1]
    finally:
        c.close()


def many_sessions(host: str, port: int, token: str | None, n: int, images: list) -> dict:
    """Opens n sessions with two clicks each (kept), reports the server's RSS, deletes them."""
    c = Client(host, port, token)
    sids, errors = [], 0
    try:
        for i in range(n):
            name, png, gt = images[i % len(images)]
            status, out = c.create(png, name)
            if status != 201:
                errors += 1
                continue
            sids.append(out["session_id"])
            for x, y, p in click_plan(gt, 2, i):
                errors += c.click(out["session_id"], x, y, p)[0] != 200
        after = info(host, port, token)
        for sid in sids:
            c.request("DELETE", f"/api/sessions/{sid}")
    finally:
        c.close()
    return {"sessions_opened": len(sids), "errors": errors, "live_sessions": after["sessions"],
            "session_mib": after["session_bytes"] / 2**20,
            "rss_mib": (after.get("rss_bytes") or 0) / 2**20}


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, int, Path]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = Path(tempfile.mkstemp(prefix="bench_serve_", suffix=".log")[1])
    cmd = [sys.executable, "-m", "isegm.serve", "--host", "127.0.0.1", "--port", str(port),
           "--max-sessions", str(max(args.rss_sessions, max(args.clients)) + 8),
           # every client of the benchmark is 127.0.0.1: one client for the per-client quota
           "--max-client-sessions", str(max(args.rss_sessions, max(args.clients)) + 8),
           "--max-client-memory-mb", str(args.max_memory_mb),
           "--max-memory-mb", str(args.max_memory_mb)]
    if args.checkpoint:
        cmd += ["--checkpoint", args.checkpoint]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.refine:
        cmd += ["--refine", args.refine]
    cmd += ["--gpu", str(args.gpu)] if args.gpu is not None else ["--cpu"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"error: the server exited (code {proc.returncode}); log: {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.terminate()
        sys.exit(f"error: the server did not start in 180 s; log: {log}")
    return proc, port, log


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="a running server on loopback (default: start one)")
    p.add_argument("--token", help="bearer token of the server given by --url")
    p.add_argument("--clients", default="1,8", help="comma-separated K values (1,8)")
    p.add_argument("--clicks", type=int, default=20, help="clicks per client (20)")
    p.add_argument("--rss-sessions", type=int, default=100, help="sessions for the RSS check")
    p.add_argument("--max-requests", type=int, default=5000, help="upper bound of requests")
    p.add_argument("--grabcut", default=str(ROOT.parent / "shared" / "datasets" / "GrabCut"))
    p.add_argument("--checkpoint", help="model of the started server (default: built-in)")
    p.add_argument("--threads", type=int, help="torch threads of the started server")
    p.add_argument("--refine", choices=("auto", "grabcut", "none"),
                   help="graph-cut refinement of the started server (default: its own, auto)")
    p.add_argument("--gpu", type=int, help="CUDA device of the started server (default: CPU)")
    p.add_argument("--max-memory-mb", type=int, default=2048, help="session memory bound")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args()
    args.clients = [int(k) for k in args.clients.split(",") if k]
    if not args.clients or min(args.clients) < 1 or args.clicks < 1:
        sys.exit("error: --clients and --clicks must be positive")
    total = sum(k * (args.clicks + 2) for k in args.clients) + 4 * args.rss_sessions
    if total > args.max_requests:
        sys.exit(f"error: {total} requests planned, more than --max-requests {args.max_requests}")

    proc = None
    if args.url:
        url = urlparse(args.url)
        if url.hostname not in LOOPBACK:
            sys.exit(f"error: {args.url} is not a loopback address (127.0.0.1 only)")
        host, port, token = url.hostname, url.port or 80, args.token
    else:
        proc, port, log = start_server(args)
        host, token = "127.0.0.1", None
        print(f"server: pid {proc.pid}, port {port}, log {log}")
    images = load_images(Path(args.grabcut), max(max(args.clients), min(args.rss_sessions, 50)))
    results = {"runs": [], "config": vars(args)}
    try:
        before = info(host, port, token)
        print(f"model {before['model']} on {before['device']}; RSS at start "
              f"{(before.get('rss_bytes') or 0) / 2**20:.0f} MiB")
        # warm-up (first forwards allocate)
        run_clients(host, port, token, 1, 2, images, args.seed)
        print(f"{'K':>3} {'clicks':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} "
              f"{'clicks/s':>8} {'overhead ms':>11} {'max batch':>9} {'RSS MiB':>8}")
        for k in args.clients:
            r = run_clients(host, port, token, k, args.clicks, images, args.seed)
            after = info(host, port, token)
            r["max_batch_seen"] = after["max_batch_seen"]
            r["rss_mib"] = (after.get("rss_bytes") or 0) / 2**20
            results["runs"].append(r)
            print(f"{k:>3} {r['clicks']:>6} {r['errors']:>6} {r['p50_ms']:>8.1f} "
                  f"{r['p95_ms']:>8.1f} {r['clicks_per_s']:>8.2f} {r['overhead_ms']:>11.1f} "
                  f"{r['max_batch_seen']:>9} {r['rss_mib']:>8.0f}")
            for e in r["error_examples"]:
                print(f"    error: {e}")
        single = next((r for r in results["runs"] if r["clients"] == 1), None)
        if single:
            for r in results["runs"]:
                if r["clients"] > 1:
                    ratio = r["p95_ms"] / single["p50_ms"]
                    r["p95_over_single"] = ratio
                    print(f"K={r['clients']}: p95 / single-client p50 = {ratio:.2f} (target <= 3)")
        if args.rss_sessions:
            s = many_sessions(host, port, token, args.rss_sessions, images)
            results["many_sessions"] = s
            print(f"after {s['sessions_opened']} sessions (2 clicks each, {s['errors']} errors): "
                  f"{s['live_sessions']} live, {s['session_mib']:.0f} MiB in sessions, "
                  f"server RSS {s['rss_mib']:.0f} MiB")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    errors = sum(r["errors"] for r in results["runs"])
    return 1 if errors else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
