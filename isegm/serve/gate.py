"""The gate in front of every route (ASGI middleware): Host check against DNS rebinding, the
token (header, cookie, or ``?token=`` once on the page), foreign ``Origin`` on state-changing
requests, JSON content type, body size limit, and one log line per request. It also names the
client (token or remote address) for the per-client quotas.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import quote, unquote

from isegm.serve.bodies import media_type
from isegm.serve.config import ServeConfig
from isegm.serve.sessions import log_text

__all__ = ["TOKEN_COOKIE", "Gate"]

logger = logging.getLogger(__name__)

_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
_WILDCARD_HOSTS = ("0.0.0.0", "::", "")
TOKEN_COOKIE = "isegm_token"


def _host_name(host: str) -> str:
    """The name of a Host header, without its port (``[::1]:8000`` -> ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Gate:
    """ASGI middleware in front of every route: Host check (DNS rebinding), token (header,
    cookie, or ``?token=`` once on the page), foreign ``Origin`` on state-changing requests,
    JSON content type, body size limit (streamed bodies included), one log line per request.
    It also names the client (token or remote address) for the per-client quota."""

    def __init__(self, app: Any, config: ServeConfig) -> None:
        self.app = app
        self.tokens = config.all_tokens
        self.max_bytes = config.max_upload_bytes
        # multipart bodies carry some bytes of framing around the file
        self.body_limit = config.max_upload_bytes + 64 * 1024
        extra = {h.lower() for h in config.allowed_hosts}
        self.hosts = {config.host.lower(), *_LOOPBACK_NAMES} | extra
        # bound to every address with a token and no --allowed-host: any name reaches it (a
        # rebinding page still has no token)
        self.any_host = "*" in extra or (
            config.host in _WILDCARD_HOSTS and bool(self.tokens) and not extra)
        self.origins = {o.rstrip("/").lower() for o in config.allowed_origins}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        scope.setdefault("state", {})
        status = {"code": 0}

        async def send_logged(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                       for k, v in scope["headers"]}
            refusal = self._check(scope, headers)
            if refusal is not None:
                await _send_json(send_logged, *refusal)
                return
            if self._token_in_address(scope, headers):
                await self._send_cookie_redirect(scope, send_logged)
                return
            if "content-length" not in headers and scope["method"] in _STATE_CHANGING:
                receive = await self._buffered(receive)
                if receive is None:
                    await _send_json(send_logged, 413,
                                     f"the request body exceeds {self.max_bytes} bytes")
                    return
            await self.app(scope, receive, send_logged)
        finally:
            state = scope.get("state", {})
            session = log_text(str(state.get("session") or "-")[:8])
            logger.info(
                "%s %s %d session=%s clicks=%s client=%s %.1f ms",
                log_text(scope.get("method", "")),
                log_text(_redact(scope.get("path", "")), 200),
                status["code"],
                session,
                state.get("clicks", "-"),
                log_text(str(state.get("client", "-"))),
                1e3 * (time.perf_counter() - start),
            )

    def _check(self, scope: dict, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, message) of a refused request, or None."""
        host = _host_name(headers.get("host", ""))
        if not self.any_host and host not in self.hosts:
            return 421, (f"this server does not answer to the Host name {host[:60]!r} (DNS "
                         "rebinding guard); the operator may allow it with --allowed-host")
        length = headers.get("content-length")
        if length is not None:
            try:
                if int(length) > self.body_limit:
                    return 413, f"the body has {length} bytes, the limit is {self.max_bytes}"
            except ValueError:
                return 400, "bad Content-Length header"
        client = (scope.get("client") or ("-",))[0]
        if self.tokens:
            given = _credential(headers.get("authorization", "")) or _cookie(headers)
            if given is None and scope.get("path") in ("/", "/docs"):
                given = _query_token(scope)
            if given is None or not any(hmac.compare_digest(given.encode(), t.encode())
                                        for t in self.tokens):
                return 401, "missing or wrong token: send 'Authorization: Bearer <token>'"
            client = "token:" + hashlib.sha256(given.encode()).hexdigest()[:12]
        scope["state"]["client"] = client
        method = scope.get("method", "")
        if method in _STATE_CHANGING:
            origin = headers.get("origin")
            if origin is not None and not self._origin_allowed(origin, headers):
                return 403, (f"cross-origin request from {origin[:80]} refused; the operator "
                             "may allow that origin with --allow-origin")
            has_body = (length not in (None, "0")) or "transfer-encoding" in headers
            if has_body and scope.get("path") != "/api/sessions":
                ctype = headers.get("content-type", "")
                if media_type(ctype) != "application/json":
                    return 415, (f"expected Content-Type application/json, got "
                                 f"{ctype[:80] or 'none'}")
        return None

    def _origin_allowed(self, origin: str, headers: dict[str, str]) -> bool:
        origin = origin.strip().rstrip("/").lower()
        own = origin.partition("://")[2] == headers.get("host", "").strip().lower()
        return own or origin in self.origins or "*" in self.origins

    def _token_in_address(self, scope: dict, headers: dict[str, str]) -> bool:
        """A page opened as ``/?token=...``: answered by a redirect that moves the token into
        a cookie (so it leaves the address bar and the history, and /docs works)."""
        return (bool(self.tokens) and scope.get("method") == "GET"
                and scope.get("path") in ("/", "/docs") and _query_token(scope) is not None
                and _credential(headers.get("authorization", "")) is None)

    async def _send_cookie_redirect(self, scope: dict, send: Any) -> None:
        token = _query_token(scope) or ""
        query = [p for p in scope.get("query_string", b"").decode("latin-1").split("&")
                 if p and not p.startswith("token=")]
        location = scope["path"] + ("?" + "&".join(query) if query else "")
        cookie = f"{TOKEN_COOKIE}={quote(token, safe='')}; Path=/; HttpOnly; SameSite=Strict"
        await send({"type": "http.response.start", "status": 303, "headers": [
            (b"location", location.encode("latin-1")), (b"set-cookie", cookie.encode("latin-1")),
            (b"cache-control", b"no-store"), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    async def _buffered(self, receive: Any) -> Any:
        """A body without Content-Length (chunked) read up to the limit: a replaying receive,
        or None when it is too large (a 413, not a parse error)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.body_limit:
                return None
            if not message.get("more_body", False):
                break
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replaying() -> dict:
            return replay.pop() if replay else await receive()

        return replaying


def _query_token(scope: dict) -> str | None:
    query = scope.get("query_string", b"").decode("latin-1")
    value = dict(p.partition("=")[::2] for p in query.split("&") if p).get("token")
    return unquote(value) if value else None


def _cookie(headers: dict[str, str]) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == TOKEN_COOKIE and value:
            return unquote(value)
    return None


def _credential(header: str) -> str | None:
    """The token of ``Bearer <token>``, or the password of ``Basic`` (Label Studio's auth)."""
    kind, _, value = header.partition(" ")
    if kind.lower() == "bearer":
        return value.strip()
    if kind.lower() == "basic":
        try:
            return base64.b64decode(value.strip()).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return None
    return None


def _redact(path: str) -> str:
    """Session ids are credentials: log only their first characters."""
    parts = path.split("/")
    if len(parts) > 3 and parts[1] == "api" and parts[2] == "sessions":
        parts[3] = parts[3][:8]
    return "/".join(parts)


async def _send_json(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

