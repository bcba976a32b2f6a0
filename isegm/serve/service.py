"""The server's shared core: one model, one batching worker, the sessions, the downloads.

Every route goes through one :class:`Service`, so the page, the API and the adapters compute
masks with the same :class:`~isegm.annotation.session.Predictor` code as
``python -m isegm.predict`` and the Tk demo.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from typing import Any

import numpy as np
import torch

from isegm.annotation.clicks import ClickTuple
from isegm.annotation.errors import InputError
from isegm.annotation.session import Predictor
from isegm.serve.config import ServeConfig
from isegm.serve.errors import ApiError
from isegm.serve.fetch import Fetcher
from isegm.serve.formats import decode_upload
from isegm.serve.sessions import MemoryFull, Session, SessionLimit, SessionStore, UnknownSession
from isegm.serve.worker import BatchingWorker

__all__ = ["Service"]

logger = logging.getLogger(__name__)


class Service:
    """The shared core: one model, one batching worker, the sessions.

    Args:
        model: the network in eval mode, already on ``device``.
        device: its device.
        config: limits and predictor settings.
        num_threads: torch threads of the inference worker.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        device: torch.device | str = "cpu",
        config: ServeConfig | None = None,
        num_threads: int | None = None,
    ) -> None:
        self.model = model
        self.device = torch.device(device)
        self.config = config or ServeConfig()
        c = self.config
        self.worker = BatchingWorker(c.max_batch, num_threads)
        self.store = SessionStore(
            self.make_predictor,
            max_sessions=c.max_sessions,
            max_bytes=c.max_memory_bytes,
            ttl_s=c.session_ttl_s,
            empty_ttl_s=c.empty_session_ttl_s,
            max_adapter_sessions=c.max_adapter_sessions,
            max_adapter_bytes=c.max_adapter_memory_bytes,
            max_client_sessions=c.max_client_sessions,
            max_client_bytes=c.max_client_memory_bytes,
        )
        self.fetcher = Fetcher(c.max_upload_bytes, c.fetch_deadline_s, c.fetch_workers,
                               c.fetch_origins)
        self._flights: dict[str, Future] = {}
        self._flights_lock = threading.Lock()
        # expired sessions are released on time, not at the next request
        self._stop = threading.Event()
        period = max(0.5, min(60.0, min(c.session_ttl_s, c.empty_session_ttl_s) / 10))
        self._reaper = threading.Thread(target=self._reap, args=(period,), daemon=True,
                                        name="isegm-serve-reaper")
        self._reaper.start()

    def _reap(self, period: float) -> None:
        while not self._stop.wait(period):
            try:
                self.store.expire()
            except Exception:  # noqa: BLE001 - the reaper must not die
                logger.exception("session expiry failed")

    def close(self) -> None:
        """Stops the worker, the reaper and the download pool."""
        self._stop.set()
        self.fetcher.close()
        self.worker.stop()

    def make_predictor(self) -> Predictor:
        """A session's predictor: the shared model, forwards through the worker."""
        c = self.config
        return Predictor(
            self.model,
            device=self.device,
            limit_longest_size=c.limit_longest_size,
            zoom_in=c.zoom_in,
            threshold=c.threshold,
            forward_runner=self.worker.run,
            refine=c.refine,
        )

    # -- sessions ------------------------------------------------------------------------------
    def open_session(self, data: bytes, name: str, key: str | None = None,
                     client: str = "-", refine: str | None = None) -> Session:
        if len(data) > self.config.max_upload_bytes:
            raise ApiError(413, self._too_large(len(data)))
        image = decode_upload(data, self.config.max_pixels, name or "image")
        try:
            session = self.store.create(image, name, key=key, owner=client)
            if refine is not None:
                session.controller.set_refine(refine)
            return session
        except SessionLimit as e:
            raise ApiError(429, str(e)) from None
        except MemoryFull as e:
            raise ApiError(507, str(e)) from None

    def _too_large(self, n: int) -> str:
        return f"the upload has {n} bytes, the limit is {self.config.max_upload_bytes}"

    def session(self, session_id: str) -> Session:
        try:
            return self.store.get(session_id)
        except UnknownSession:
            raise ApiError(404, "unknown session (never created, deleted or expired)") from None

    def adapter_session(self, key: str, data_or_loader: Any, name: str) -> Session:
        """The cached session of an adapter request (by image hash) or a new one.

        Single flight per key: concurrent requests for one new image wait for the first one's
        session (or its error) instead of each decoding the image into an orphan session."""
        while True:
            session = self.store.find(key)
            if session is not None:
                return session
            with self._flights_lock:
                flight = self._flights.get(key)
                leader = flight is None
                if leader:
                    flight = self._flights[key] = Future()
            assert flight is not None
            if not leader:
                return flight.result()  # the leader's session, or its error for this image
            try:
                data = data_or_loader() if callable(data_or_loader) else data_or_loader
                session = self.open_session(data, name, key=key)
            except BaseException as e:
                flight.set_exception(e)
                raise
            else:
                flight.set_result(session)
                return session
            finally:
                with self._flights_lock:
                    self._flights.pop(key, None)

    def predict_clicks(self, session: Session, clicks: list[ClickTuple]) -> np.ndarray:
        """Mask of a full click list on a session's image (stateless adapters); the predictor
        replays only what differs from its last call."""
        if len(clicks) > self.config.max_clicks:
            raise ApiError(400, f"{len(clicks)} clicks, the limit is {self.config.max_clicks}")
        with session.lock:
            try:
                mask, _ = session.controller.predictor.predict(clicks)
            except InputError as e:
                raise ApiError(400, str(e)) from None
        self.store.update(session)
        return mask
