"""The server's one inference thread: every network forward of every session runs here.

Sessions run their :class:`~isegm.annotation.session.Predictor` in the web server's request
threads; the predictor's network step (its ``forward_runner``) hands the prepared input to
:meth:`BatchingWorker.run` and waits. The worker takes everything pending, groups it by input
shape (:func:`~isegm.inference.batched.bucket_requests`) and runs one forward per group, so the
clicks of concurrent sessions share a batch and no two forwards run at once on the device.
There is no waiting window: requests that arrive during a forward form the next batch.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import torch

from isegm.inference.batched import ForwardRequest, bucket_requests, forward_batch

__all__ = ["BatchingWorker", "WorkerStats"]

logger = logging.getLogger(__name__)


@dataclass
class WorkerStats:
    """Counters since start (read by /api/info and the benchmark)."""

    forwards: int = 0
    requests: int = 0
    max_batch: int = 0


class BatchingWorker:
    """Runs network forwards for many predictors in one daemon thread, batching by shape.

    Args:
        max_batch: at most this many requests (predictor passes) in one forward.
        num_threads: torch intra-op threads for the forwards (None: leave as is).
    """

    def __init__(self, max_batch: int = 16, num_threads: int | None = None) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.max_batch = max_batch
        self.num_threads = num_threads
        self.stats = WorkerStats()
        self._queue: queue.Queue[tuple[ForwardRequest, Future] | None] = queue.Queue()
        self._gate = threading.Event()
        self._gate.set()
        self._count_lock = threading.Lock()
        self._pending = 0
        self._thread = threading.Thread(target=self._loop, name="isegm-serve-worker", daemon=True)
        self._thread.start()

    def run(self, requests: Sequence[ForwardRequest]) -> list[torch.Tensor]:
        """The predictors' ``forward_runner``: queues the requests, blocks until their logits
        are computed (an error of the forward is raised here, in the caller's thread)."""
        if not self._thread.is_alive():
            raise RuntimeError("the inference worker has stopped")
        futures: list[Future] = []
        with self._count_lock:
            self._pending += len(requests)
        for r in requests:
            f: Future = Future()
            futures.append(f)
            self._queue.put((r, f))
        return [f.result() for f in futures]

    @property
    def pending(self) -> int:
        """Requests queued or running, not answered yet."""
        return self._pending

    def pause(self) -> None:
        """Holds the forwards back (queued requests wait) until :meth:`resume`; lets tests
        build a batch of a known composition."""
        self._gate.clear()

    def resume(self) -> None:
        self._gate.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Ends the thread after the queued forwards."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _loop(self) -> None:
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._gate.wait()
            pending = [item]
            stop = False
            while True:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                pending.append(nxt)
            try:
                self._run_pending(pending)
            finally:
                with self._count_lock:
                    self._pending -= len(pending)
            if stop:
                return

    def _run_pending(self, pending: list[tuple[ForwardRequest, Future]]) -> None:
        requests = [r for r, _ in pending]
        for group in bucket_requests(requests):
            for start in range(0, len(group), self.max_batch):
                chunk = group[start : start + self.max_batch]
                try:
                    logits = forward_batch([requests[i] for i in chunk])
                except Exception as e:  # noqa: BLE001 - hand the error to the waiting sessions
                    logger.exception("batched forward of %d request(s) failed", len(chunk))
                    for i in chunk:
                        pending[i][1].set_exception(e)
                    continue
                self.stats.forwards += 1
                self.stats.requests += len(chunk)
                self.stats.max_batch = max(self.stats.max_batch, len(chunk))
                for i, out in zip(chunk, logits):
                    pending[i][1].set_result(out)
