"""Downloads of Label Studio task images: only from allowed origins, with a total deadline,
a byte cap while reading, and a small pool of their own.

Label Studio names the task image by URL, so the server fetches what a request tells it to.
Without rules that is a request forgery tool: the LS API key would go to any host, the
distinct network errors map the internal network, and a host that sends one byte every few
seconds holds a thread for hours. The rules here:

* ``data:`` URLs are decoded, nothing is fetched;
* http(s) URLs are fetched only from ``LABEL_STUDIO_URL``'s origin (scheme, host, port) and the
  origins the operator allows (``--fetch-origin``); relative ``/data/...`` URLs are joined with
  ``LABEL_STUDIO_URL``; everything else is a 400 naming the rule;
* ``LABEL_STUDIO_API_KEY`` is sent only to ``LABEL_STUDIO_URL``'s origin; redirects are followed
  (at most :data:`MAX_REDIRECTS`) only within the origin of the URL;
* one total deadline per download (a watchdog shuts the socket down when it passes, whatever
  the server sends) and the byte cap while reading;
* downloads run in their own bounded pool, never in the web server's threads, so the page,
  ``/health`` and the session API answer while downloads hang; a full pool is a 503 with
  ``Retry-After``; concurrent requests for one URL share one download;
* every network failure is the same message (no port scanner).
"""

from __future__ import annotations

import http.client
import logging
import math
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import urljoin, urlsplit

from isegm.serve.errors import ApiError

__all__ = ["FetchError", "Fetcher", "MAX_REDIRECTS", "normalize_origin", "origin_of"]

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 3
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = {301, 302, 303, 307, 308}

Origin = tuple[str, str, int]


class FetchError(ApiError):
    """A task image that is not fetched: answered ``status`` with ``{"error": message}``."""


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x21 or ord(c) == 0x7F for c in text)


def origin_of(url: str) -> Origin:
    """(scheme, host, port) of an http(s) URL.

    Raises:
        FetchError: not an absolute http(s) URL with a host, or a control character in it.
    """
    if _has_control(url):
        raise FetchError(400, "the task image URL contains a control character or a space")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchError(400, "the task image URL is malformed (bad host or port)") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise FetchError(
            400, "task images are read from data: URLs or http(s) URLs of LABEL_STUDIO_URL's "
            "origin (or an origin allowed with --fetch-origin), got "
            f"{(scheme or 'no') + ' URL'}"
        )
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def normalize_origin(text: str) -> Origin:
    """An origin given as ``http://host[:port]`` (the option's form)."""
    return origin_of(text.rstrip("/") + "/")


def _origin_text(origin: Origin) -> str:
    scheme, host, port = origin
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + ("" if _DEFAULT_PORTS[scheme] == port else f":{port}")


class Fetcher:
    """Fetches task images under the rules of the module docstring.

    Args:
        max_bytes: the byte cap (the upload limit).
        deadline_s: total seconds one download may take, redirects included.
        workers: concurrent downloads at most (more are refused with 503).
        allowed_origins: origins fetched besides ``LABEL_STUDIO_URL``'s.
        environ: where ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY`` are read (at each
            call, so a test or an embedding may change them).
    """

    def __init__(self, max_bytes: int, deadline_s: float = 20.0, workers: int = 4,
                 allowed_origins: Iterable[str] = (), environ: Mapping[str, str] = os.environ
                 ) -> None:
        self.max_bytes = int(max_bytes)
        self.deadline_s = float(deadline_s)
        self.workers = int(workers)
        self.allowed = {normalize_origin(o) for o in allowed_origins}
        self.environ = environ
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="isegm-fetch")
        self._lock = threading.RLock()
        self._busy = 0
        self._inflight: dict[str, Future] = {}

    # -- policy ----------------------------------------------------------------------------
    def _ls_base(self) -> str:
        return self.environ.get("LABEL_STUDIO_URL", "").strip().rstrip("/")

    def resolve(self, url: str) -> str:
        """The absolute URL to fetch for a task's image URL (relative ones joined with
        ``LABEL_STUDIO_URL``), after the origin rule.

        Raises:
            FetchError: 400 naming the rule it breaks.
        """
        if _has_control(url):
            raise FetchError(400, "the task image URL contains a control character or a space")
        if url.startswith("/") and not url.startswith("//"):
            base = self._ls_base()
            if not base:
                raise FetchError(400, "the task image URL is relative: set LABEL_STUDIO_URL")
            url = base + url
        origin = origin_of(url)
        base = self._ls_base()
        ls_origin = normalize_origin(base) if base else None
        if origin != ls_origin and origin not in self.allowed:
            raise FetchError(
                400, f"task image host {_origin_text(origin)} is not allowed: images are "
                "fetched only from LABEL_STUDIO_URL's origin and the origins given with "
                "--fetch-origin (or sent as data: URLs)"
            )
        return url

    # -- pool ------------------------------------------------------------------------------
    def submit(self, url: str) -> Future:
        """The download of ``url`` (already :meth:`resolve`-d) as a future of its bytes; one
        shared download per URL while it runs.

        Raises:
            FetchError: 503 with Retry-After when all workers are busy.
        """
        with self._lock:
            running = self._inflight.get(url)
            if running is not None:
                return running
            if self._busy >= self.workers:
                raise FetchError(
                    503, f"all {self.workers} image downloads are busy; retry later",
                    {"Retry-After": str(max(1, math.ceil(self.deadline_s)))},
                )
            self._busy += 1
            future = self._pool.submit(self._download, url)
            self._inflight[url] = future
        future.add_done_callback(lambda _: self._release(url))
        return future

    def _release(self, url: str) -> None:
        with self._lock:
            self._busy -= 1
            self._inflight.pop(url, None)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- download (pool threads) -----------------------------------------------------------
    def _download(self, url: str) -> bytes:
        deadline = time.monotonic() + self.deadline_s
        start = url
        for _ in range(MAX_REDIRECTS + 1):
            origin = origin_of(url)
            status, location, data = self._get(url, origin, deadline)
            if status in _REDIRECTS:
                target = urljoin(url, location or "")
                if origin_of(target) != origin:
                    logger.info("task image %s redirects to another origin: refused",
                                _log_url(start))
                    raise FetchError(400, "the task image URL redirects to another origin; "
                                     "redirects are followed only within one origin")
                url = target
                continue
            if status != 200:
                logger.info("task image %s: HTTP %d", _log_url(url), status)
                raise self._failed(origin)
            return data
        logger.info("task image %s: more than %d redirects", _log_url(start), MAX_REDIRECTS)
        raise self._failed(origin_of(start))

    def _failed(self, origin: Origin) -> FetchError:
        return FetchError(502, f"could not fetch the task image from {_origin_text(origin)}")

    def _get(self, url: str, origin: Origin, deadline: float) -> tuple[int, str | None, bytes]:
        """One GET: (status, Location header, body of a 200)."""
        scheme, host, port = origin
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {"User-Agent": "isegm-serve", "Accept": "image/*"}
        base = self._ls_base()
        key = self.environ.get("LABEL_STUDIO_API_KEY")
        if key and base and origin == normalize_origin(base):
            headers["Authorization"] = f"Token {key}"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._failed(origin)
        if scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=remaining, context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=remaining)
        expired = threading.Event()

        def watchdog() -> None:  # a read blocked past the deadline ends here
            expired.set()
            sock = conn.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        timer = threading.Timer(remaining, watchdog)
        timer.daemon = True
        timer.start()
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            if response.status in _REDIRECTS:
                return response.status, response.getheader("Location"), b""
            if response.status != 200:
                return response.status, None, b""
            length = response.getheader("Content-Length")
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                raise FetchError(413, f"the task image has {length} bytes, the limit is "
                                 f"{self.max_bytes}")
            chunks, size = [], 0
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError("deadline")
                chunk = response.read1(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_bytes:
                    raise FetchError(413, f"the task image is larger than {self.max_bytes} "
                                     "bytes, the limit")
                chunks.append(chunk)
            if expired.is_set():
                raise TimeoutError("deadline")
            return 200, None, b"".join(chunks)
        except FetchError:
            raise
        except Exception as e:  # noqa: BLE001 - every network failure is the same answer
            why = f"deadline of {self.deadline_s:g} s" if expired.is_set() else type(e).__name__
            logger.info("task image %s not fetched: %s", _log_url(url), why)
            raise self._failed(origin) from None
        finally:
            timer.cancel()
            conn.close()


def _log_url(url: str) -> str:
    """A URL for the log: escaped, without its query (it may carry credentials)."""
    cut = url.split("?", 1)[0][:120]
    return cut.encode("unicode_escape").decode("ascii")
