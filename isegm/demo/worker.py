"""One background thread that runs the controller's commands, so the window never blocks.

The UI thread submits commands (a name and a function of the controller) and polls results with
Tk's ``after``; commands run strictly in submission order, so clicks made while a prediction runs
are queued and predicted in order, and an undo or a save queued behind them sees their result.
Only the worker thread touches the controller after it starts.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from isegm.annotation.errors import InputError
from isegm.annotation.objects import ControllerView, InteractiveController
from isegm.inference.utils import CheckpointError

__all__ = ["InferenceWorker", "Result"]

logger = logging.getLogger(__name__)

Command = Callable[[InteractiveController], Any]
_EXPECTED = (InputError, CheckpointError, ValueError, OSError)


@dataclass(frozen=True)
class Result:
    """Outcome of one command.

    Attributes:
        job: id returned by :meth:`InferenceWorker.submit`.
        name: the command's name.
        value: what the command returned (None on error).
        error: one-line message if it failed, else None.
        view: the controller's state after the command.
        seconds: wall time of the command.
    """

    job: int
    name: str
    value: Any
    error: str | None
    view: ControllerView
    seconds: float


class InferenceWorker:
    """Runs commands on the controller in a daemon thread.

    Args:
        controller: the controller; only this worker may call it from now on.
    """

    def __init__(self, controller: InteractiveController) -> None:
        self._controller = controller
        self._jobs: queue.Queue[tuple[int, str, Command] | None] = queue.Queue()
        self._results: queue.Queue[Result] = queue.Queue()
        self._next_job = 0
        self._pending = 0  # submitted minus polled; touched by the submitting thread only
        self._running: str | None = None  # name of the command in progress (worker thread)
        self._thread = threading.Thread(target=self._run, name="isegm-demo-worker", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Commands submitted whose results have not been polled yet."""
        return self._pending

    def submit(self, name: str, command: Command) -> int:
        """Queues ``command(controller)``; returns its job id at once."""
        self._next_job += 1
        self._pending += 1
        self._jobs.put((self._next_job, name, command))
        return self._next_job

    def poll(self) -> list[Result]:
        """Results finished since the last poll, in order (never blocks)."""
        out = []
        while True:
            try:
                out.append(self._results.get_nowait())
            except queue.Empty:
                break
        self._pending -= len(out)
        return out

    def wait(self, timeout: float = 60.0) -> list[Result]:
        """Blocks until every submitted command is done and returns the results (scripts, tests)."""
        out: list[Result] = []
        deadline = time.monotonic() + timeout
        while self._pending > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self._pending} demo command(s) still running")
            try:
                out.append(self._results.get(timeout=remaining))
            except queue.Empty:
                continue
            self._pending -= 1
        return out

    def stop(self, timeout: float = 5.0, keep: tuple[str, ...] = ("save",),
             keep_timeout: float = 60.0) -> bool:
        """Drops the queued commands except those named in ``keep`` and asks the thread to end.

        Waits up to ``timeout`` for a command in progress (a prediction cannot be interrupted;
        the thread is a daemon), or up to ``keep_timeout`` while a kept command (a save) is
        queued or running, so quitting right after Ctrl+S still writes the file. Returns True
        if the thread has ended.
        """
        kept = []
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None and job[1] in keep:
                kept.append(job)
        for job in kept:
            self._jobs.put(job)
        self._jobs.put(None)
        waiting_for_kept = bool(kept) or self._running in keep
        self._thread.join(keep_timeout if waiting_for_kept else timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job_id, name, command = job
            self._running = name
            start = time.perf_counter()
            value, error = None, None
            try:
                value = command(self._controller)
            except _EXPECTED as e:
                error = str(e).splitlines()[0] if str(e) else type(e).__name__
                logger.warning("%s: %s", name, error)
            except Exception as e:  # noqa: BLE001 - report, keep the worker alive
                logger.exception("demo command %s failed", name)
                error = f"{type(e).__name__}: {e}".splitlines()[0]
            self._results.put(
                Result(
                    job_id,
                    name,
                    value,
                    error,
                    self._controller.view(),
                    time.perf_counter() - start,
                )
            )
            self._running = None
