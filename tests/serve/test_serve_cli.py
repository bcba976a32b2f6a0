"""``python -m isegm.serve``: bad flags exit 2 with one line; the one command starts a server
that answers on 127.0.0.1 and logs one line per request."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from isegm.serve.__main__ import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--checkpoint", "no/such.pth"], ["no/such.pth"]),
        (["--port", "0"], ["--port must be positive"]),
        (["--max-sessions", "-1"], ["--max-sessions"]),
        (["--token", ""], ["--token"]),
    ],
)
def test_bad_flags_exit_2_with_one_line(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    for w in words:
        assert w in err


@pytest.mark.slow
def test_one_command_starts_the_server(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "isegm.serve", "--cpu", "--port", str(port), "--threads", "1"],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 600
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    health = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.3)
        assert health is not None and health["status"] == "UP", log.read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert b"<canvas" in r.read()
        time.sleep(0.3)
        text = log.read_text()
        assert "serving on http://127.0.0.1:" in text
        assert "GET /health 200 session=- clicks=-" in text
    finally:
        proc.terminate()
        proc.wait(20)
