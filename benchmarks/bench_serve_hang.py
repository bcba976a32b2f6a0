"""/health latency while 40 Label Studio /predict requests hang on a slow host (issue 22).

A 127.0.0.1 listener plays the host (one byte every 0.5 s); the server runs in-process on a
free loopback port with the default 20 s download deadline and 4 download workers.

    python benchmarks/bench_serve_hang.py
"""
import json
import os
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvicorn  # noqa: E402

from isegm.annotation import load_model  # noqa: E402
from isegm.serve import ServeConfig, Service, create_app  # noqa: E402
from tests.serve.test_security import SlowHost, _timed, closed_port, ls_body  # noqa: E402

slow = SlowHost(0.5, 400)
os.environ["LABEL_STUDIO_URL"] = slow.origin
port = closed_port()
service = Service(load_model(None, "cpu"), "cpu", ServeConfig(fetch_deadline_s=20.0))
uv = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning"))
threading.Thread(target=uv.run, daemon=True).start()
while not uv.started:
    time.sleep(0.05)
netloc = f"127.0.0.1:{port}"
results = []
def predict(i):
    results.append(_timed(netloc, "POST", "/predict", json.dumps(ls_body(f"/data/{i}.png")).encode()))
ts = [threading.Thread(target=predict, args=(i,)) for i in range(40)]
for t in ts:
    t.start()
time.sleep(1.0)
lat = []
for _ in range(20):
    s, sec, _ = _timed(netloc, "GET", "/health", timeout=10)
    assert s == 200
    lat.append(sec)
    time.sleep(0.2)
for t in ts:
    t.join(60)
print(f"/health under 40 hanging downloads: median {1e3*statistics.median(lat):.1f} ms, max {1e3*max(lat):.1f} ms (20 calls)")
print("predict statuses", Counter(s for s, _, _ in results), "longest", f"{max(x for _, x, _ in results):.1f} s")
uv.should_exit = True
slow.close()
service.close()
