"""Annotation sessions: one image and its objects each, bounded by count, memory and age.

A session is the annotation package's :class:`~isegm.annotation.objects.InteractiveController`
(clicks, undo, finished objects, label map) around its own
:class:`~isegm.annotation.session.Predictor`; all the predictors share the server's one model
and send their forwards to the batching worker. Ids are ``secrets.token_urlsafe`` strings; a
session is reachable only through its id.

Two pools with their own bounds, so that neither can starve the other: API sessions (the
page, the JSON API) and adapter sessions (CVAT, Label Studio: caches keyed by the image, the
platforms resend all clicks). Bounds:

* count: a new API session beyond ``max_sessions`` is refused (:class:`SessionLimit`, 429); a
  new adapter session beyond ``max_adapter_sessions`` replaces the least recently used one;
* per client (token or remote address), API sessions only: ``max_client_sessions`` sessions
  and ``max_client_bytes`` bytes, beyond that :class:`SessionLimit`;
* memory (images, cached predictions, undo states, embeddings) per pool: sessions with
  nothing finished may be dropped to make room, largest and longest idle first (size times
  idle time); a session holding finished objects is never dropped for room: when the
  newcomer does not fit otherwise it is refused (:class:`MemoryFull`, 507);
* age: a session is dropped after ``ttl_s`` idle seconds if it holds finished objects, after
  ``empty_ttl_s`` if not; :meth:`SessionStore.expire` also runs from the server's reaper
  thread, so expired sessions do not wait for the next request to be released.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from isegm.annotation.objects import InteractiveController
from isegm.annotation.session import Predictor

__all__ = ["MemoryFull", "Session", "SessionLimit", "SessionStore", "UnknownSession",
           "deep_nbytes", "log_text"]

logger = logging.getLogger(__name__)


class UnknownSession(KeyError):
    """No live session has this id (never created, deleted, expired or evicted)."""


class SessionLimit(RuntimeError):
    """A count or per-client quota is reached (answered 429)."""


class MemoryFull(RuntimeError):
    """The new session does not fit in memory without dropping finished work (507)."""


def log_text(text: str, limit: int = 120) -> str:
    """``text`` safe for one log line: control characters (newlines that would forge a
    line) and non-ASCII escaped, cut to ``limit`` characters."""
    return str(text)[:limit].encode("unicode_escape").decode("ascii")


def deep_nbytes(obj: Any, _seen: set[Any] | None = None) -> int:
    """Bytes of the arrays and tensors reachable from ``obj`` (attributes, containers), each
    storage counted once; models are skipped (they are shared)."""
    seen = set() if _seen is None else _seen
    if id(obj) in seen or isinstance(obj, (nn.Module, str, bytes, int, float, bool, type(None))):
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        base = obj if obj.base is None else obj.base
        if id(base) in seen and base is not obj:
            return 0
        seen.add(id(base))
        return int(base.nbytes) if isinstance(base, np.ndarray) else int(obj.nbytes)
    if torch.is_tensor(obj):
        storage = obj.untyped_storage()
        key = ("storage", storage.data_ptr())
        if key in seen:
            return 0
        seen.add(key)
        return int(storage.nbytes())
    if isinstance(obj, dict):
        return sum(deep_nbytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return sum(deep_nbytes(v, seen) for v in obj)
    attrs = getattr(obj, "__dict__", None)
    return 0 if attrs is None else sum(deep_nbytes(v, seen) for v in attrs.values())


@dataclass(eq=False)
class Session:
    """One annotated image. Use it under ``lock`` (requests of one session run in order)."""

    id: str
    controller: InteractiveController
    name: str
    created: float
    last_used: float
    nbytes: int = 0
    owner: str = "-"
    adapter: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def has_work(self) -> bool:
        """Holds finished objects (never dropped to make room; kept for the longer TTL)."""
        return self.controller.object_count > 0

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the image."""
        image = self.controller.image
        assert image is not None
        return int(image.shape[0]), int(image.shape[1])

    def measure(self) -> int:
        self.nbytes = deep_nbytes(self.controller)
        return self.nbytes


class SessionStore:
    """Live sessions of both pools, newest use last.

    Args:
        make_predictor: a new predictor on the shared model (one per session).
        max_sessions: live API sessions at most.
        max_bytes: memory of the API sessions at most.
        ttl_s: idle seconds after which a session with finished objects is dropped.
        empty_ttl_s: the same for a session with nothing finished (None: ``ttl_s``).
        max_adapter_sessions, max_adapter_bytes: the adapter pool's bounds.
        max_client_sessions, max_client_bytes: one client's API sessions at most.
        clock: time source (tests).
    """

    def __init__(
        self,
        make_predictor: Callable[[], Predictor],
        max_sessions: int = 32,
        max_bytes: int = 2 << 30,
        ttl_s: float = 3600.0,
        empty_ttl_s: float | None = None,
        max_adapter_sessions: int = 16,
        max_adapter_bytes: int = 1 << 30,
        max_client_sessions: int | None = None,
        max_client_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.make_predictor = make_predictor
        self.max_sessions = int(max_sessions)
        self.max_bytes = int(max_bytes)
        self.ttl_s = float(ttl_s)
        self.empty_ttl_s = float(ttl_s if empty_ttl_s is None else empty_ttl_s)
        self.max_adapter_sessions = int(max_adapter_sessions)
        self.max_adapter_bytes = int(max_adapter_bytes)
        self.max_client_sessions = max_client_sessions
        self.max_client_bytes = max_client_bytes
        self.clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._by_key: dict[str, str] = {}  # adapter cache key -> session id
        self._lock = threading.Lock()
        self.evicted = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def total_bytes(self) -> int:
        return sum(s.nbytes for s in list(self._sessions.values()))

    def counts(self) -> dict[str, int]:
        """Live sessions per pool (/api/info)."""
        live = list(self._sessions.values())
        adapter = sum(s.adapter for s in live)
        return {"api": len(live) - adapter, "adapter": adapter}

    def create(self, image: np.ndarray, name: str = "", key: str | None = None,
               owner: str = "-") -> Session:
        """A new session on ``image`` (HxWx3 uint8 RGB).

        Args:
            key: adapter cache key (e.g. the image's hash): the session is in the adapter
                pool and :meth:`find` returns it.
            owner: the client (token or address) the per-client quota counts it for.

        Raises:
            SessionLimit: a count or per-client bound is reached.
            MemoryFull: it does not fit without dropping finished work.
        """
        adapter = key is not None
        with self._lock:
            self._expire()
            self._check_counts(adapter, owner)
        controller = InteractiveController(self.make_predictor())
        controller.set_image(image, name)
        now = self.clock()
        session = Session(secrets.token_urlsafe(24), controller, name, now, now,
                          owner=owner, adapter=adapter)
        session.measure()
        with self._lock:
            self._check_counts(adapter, owner)  # again: another create may have raced
            if not adapter and self.max_client_bytes is not None:
                held = sum(s.nbytes for s in self._sessions.values()
                           if s.owner == owner and not s.adapter)
                if held + session.nbytes > self.max_client_bytes:
                    raise SessionLimit(
                        f"your sessions hold {held} bytes and this image needs "
                        f"{session.nbytes}; the limit per client is {self.max_client_bytes} "
                        "bytes: delete a session first"
                    )
            self._make_room(adapter, session.nbytes, keep=None, refuse=True)
            self._sessions[session.id] = session
            if key is not None:
                self._by_key[key] = session.id
        logger.info("session %s created (%s, %dx%d, %s)", session.id[:8], log_text(name or "-"),
                    image.shape[1], image.shape[0], "adapter" if adapter else log_text(owner))
        return session

    def get(self, session_id: str) -> Session:
        """The live session with this id, marked as just used.

        Raises:
            UnknownSession: no such live session.
        """
        with self._lock:
            self._expire()
            session = self._sessions.get(session_id)
            if session is None:
                raise UnknownSession(session_id)
            session.last_used = self.clock()
            self._sessions.move_to_end(session_id)
            return session

    def find(self, key: str) -> Session | None:
        """The live session created with adapter ``key``, or None."""
        with self._lock:
            sid = self._by_key.get(key)
        if sid is None:
            return None
        try:
            return self.get(sid)
        except UnknownSession:
            return None

    def update(self, session: Session) -> None:
        """Re-measures a session after a request and drops sessions with nothing finished if
        its pool is over memory (a session that grows is never refused after the fact)."""
        session.measure()
        session.last_used = self.clock()
        with self._lock:
            self._make_room(session.adapter, 0, keep=session, refuse=False)

    def delete(self, session_id: str) -> None:
        """Drops a session.

        Raises:
            UnknownSession: no such live session.
        """
        with self._lock:
            if self._sessions.pop(session_id, None) is None:
                raise UnknownSession(session_id)
            self._forget_keys({session_id})

    def expire(self) -> int:
        """Drops the sessions idle for longer than their TTL; returns how many."""
        with self._lock:
            return self._expire()

    # -- internals (under self._lock) --------------------------------------------------------
    def _check_counts(self, adapter: bool, owner: str) -> None:
        pool = [s for s in self._sessions.values() if s.adapter == adapter]
        if adapter:
            while len(pool) >= self.max_adapter_sessions:
                # adapter sessions are caches: the least recently used makes room
                oldest = pool.pop(0)
                self._drop({oldest.id})
                self.evicted += 1
            return
        if len(pool) >= self.max_sessions:
            raise SessionLimit(
                f"the server holds its maximum of {self.max_sessions} sessions; delete one "
                "or wait until one expires"
            )
        if self.max_client_sessions is not None:
            mine = sum(s.owner == owner for s in pool)
            if mine >= self.max_client_sessions:
                raise SessionLimit(
                    f"you hold the maximum of {self.max_client_sessions} sessions per client; "
                    "delete one or wait until one expires"
                )

    def _make_room(self, adapter: bool, extra: int, keep: Session | None, refuse: bool) -> None:
        """Drops sessions of the pool with nothing finished until ``extra`` more bytes fit.

        With ``refuse``, nothing is dropped and :class:`MemoryFull` is raised when even
        dropping all of them would not make enough room."""
        limit = self.max_adapter_bytes if adapter else self.max_bytes
        pool = [s for s in self._sessions.values() if s.adapter == adapter]
        total = sum(s.nbytes for s in pool) + extra
        if total <= limit:
            return
        now = self.clock()
        victims = sorted(
            (s for s in pool if not s.has_work and s is not keep),
            key=lambda s: s.nbytes * (1.0 + max(0.0, now - s.last_used)),
            reverse=True,
        )
        if refuse and total - sum(s.nbytes for s in victims) > limit:
            raise MemoryFull(
                f"the image needs {extra} bytes of session memory and the server's "
                f"{limit} bytes are held by finished work; retry later or ask the operator "
                "for more --max-memory-mb"
            )
        dropped = set()
        for s in victims:
            if total <= limit:
                break
            total -= s.nbytes
            dropped.add(s.id)
        if dropped:
            self._drop(dropped)
            self.evicted += len(dropped)
            logger.info("%d session(s) with nothing finished dropped: the %s sessions held "
                        "more than %d bytes", len(dropped), "adapter" if adapter else "API",
                        limit)

    def _drop(self, ids: set[str]) -> None:
        for sid in ids:
            self._sessions.pop(sid, None)
        self._forget_keys(ids)

    def _forget_keys(self, ids: set[str]) -> None:
        for key in [k for k, v in self._by_key.items() if v in ids]:
            del self._by_key[key]

    def _expire(self) -> int:
        now = self.clock()
        old = {sid for sid, s in self._sessions.items()
               if now - s.last_used > (self.ttl_s if s.has_work else self.empty_ttl_s)}
        if old:
            self._drop(old)
            self.expired += len(old)
            logger.info("%d idle session(s) expired", len(old))
        return len(old)
