"""Annotation sessions: one image and its objects each, bounded by count, memory and age.

A session is the Tk demo's :class:`~isegm.demo.controller.InteractiveController` (clicks,
undo, finished objects, label map) around its own :class:`~isegm.predict.Predictor`; all the
predictors share the server's one model and send their forwards to the batching worker. Ids
are ``secrets.token_urlsafe`` strings; a session is reachable only through its id.

Bounds: at most ``max_sessions`` live sessions (a new one beyond is refused, the caller answers
429, except that an adapter request replaces the least recently used adapter session);
sessions unused for ``ttl_s`` seconds are dropped; when the sessions together hold more than
``max_bytes`` (images, cached predictions, undo states, embeddings), the least recently used
ones are dropped until they fit.
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

from isegm.demo.controller import InteractiveController
from isegm.predict import Predictor

__all__ = ["Session", "SessionLimit", "SessionStore", "UnknownSession", "deep_nbytes"]

logger = logging.getLogger(__name__)


class UnknownSession(KeyError):
    """No live session has this id (never created, deleted, expired or evicted)."""


class SessionLimit(RuntimeError):
    """``max_sessions`` sessions are live."""


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
    lock: threading.Lock = field(default_factory=threading.Lock)

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
    """Live sessions, newest use last.

    Args:
        make_predictor: a new predictor on the shared model (one per session).
        max_sessions: live sessions at most.
        max_bytes: memory of all sessions at most (least recently used are dropped).
        ttl_s: idle seconds after which a session is dropped.
        clock: time source (tests).
    """

    def __init__(
        self,
        make_predictor: Callable[[], Predictor],
        max_sessions: int = 32,
        max_bytes: int = 2 << 30,
        ttl_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.make_predictor = make_predictor
        self.max_sessions = int(max_sessions)
        self.max_bytes = int(max_bytes)
        self.ttl_s = float(ttl_s)
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

    def create(self, image: np.ndarray, name: str = "", key: str | None = None) -> Session:
        """A new session on ``image`` (HxWx3 uint8 RGB).

        Args:
            key: adapter cache key (e.g. the image's hash); :meth:`find` returns the session.

        Raises:
            SessionLimit: ``max_sessions`` are live.
        """
        with self._lock:
            self._expire()
            if len(self._sessions) >= self.max_sessions and key is not None:
                self._drop_oldest_adapter_session()
            if len(self._sessions) >= self.max_sessions:
                raise SessionLimit(
                    f"the server holds its maximum of {self.max_sessions} sessions; delete one "
                    "or wait until one expires"
                )
        controller = InteractiveController(self.make_predictor())
        controller.set_image(image, name)
        now = self.clock()
        session = Session(secrets.token_urlsafe(24), controller, name, now, now)
        session.measure()
        with self._lock:
            if len(self._sessions) >= self.max_sessions:  # raced with another create
                raise SessionLimit(f"the server holds its maximum of {self.max_sessions} sessions")
            self._sessions[session.id] = session
            if key is not None:
                self._by_key[key] = session.id
            self._evict_over_memory(keep=session)
        logger.info("session %s created (%s, %dx%d)", session.id[:8], name or "-",
                    image.shape[1], image.shape[0])
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
        """Re-measures a session after a request and drops others if memory is over."""
        session.measure()
        session.last_used = self.clock()
        with self._lock:
            self._evict_over_memory(keep=session)

    def delete(self, session_id: str) -> None:
        """Drops a session.

        Raises:
            UnknownSession: no such live session.
        """
        with self._lock:
            if self._sessions.pop(session_id, None) is None:
                raise UnknownSession(session_id)
            self._forget_keys({session_id})

    # -- internals (under self._lock) --------------------------------------------------------
    def _forget_keys(self, ids: set[str]) -> None:
        for key in [k for k, v in self._by_key.items() if v in ids]:
            del self._by_key[key]

    def _drop_oldest_adapter_session(self) -> None:
        """Adapter sessions are caches (the platform resends all clicks): at the session limit,
        the least recently used one makes room for a new adapter request."""
        keyed = set(self._by_key.values())
        oldest = next((sid for sid in self._sessions if sid in keyed), None)
        if oldest is not None:
            del self._sessions[oldest]
            self._forget_keys({oldest})
            self.evicted += 1

    def _expire(self) -> None:
        limit = self.clock() - self.ttl_s
        old = [sid for sid, s in self._sessions.items() if s.last_used < limit]
        for sid in old:
            del self._sessions[sid]
        if old:
            self.expired += len(old)
            self._forget_keys(set(old))
            logger.info("%d session(s) expired after %.0f s idle", len(old), self.ttl_s)

    def _evict_over_memory(self, keep: Session) -> None:
        total = sum(s.nbytes for s in self._sessions.values())
        dropped = set()
        for sid in list(self._sessions):
            if total <= self.max_bytes:
                break
            if sid == keep.id:
                continue
            total -= self._sessions.pop(sid).nbytes
            dropped.add(sid)
        if dropped:
            self.evicted += len(dropped)
            self._forget_keys(dropped)
            logger.info(
                "%d least recently used session(s) dropped: sessions held more than %d bytes",
                len(dropped), self.max_bytes,
            )
