"""How a training run stops early and cleanly: Ctrl-C or the time limit end the run at the next
step boundary, after ``last.pth`` is saved, so ``--resume-exp`` continues exactly."""

from __future__ import annotations

import signal
from typing import Any

__all__ = ["TrainingInterrupted", "StopRequest", "ignore_sigint"]


class TrainingInterrupted(Exception):
    """Ctrl-C (SIGINT) or the time limit stopped the run at a step boundary after ``last.pth``
    was saved.

    Attributes:
        epoch, step: where the saved checkpoint resumes.
        time_limit: True when ``TrainConfig.time_limit_s`` ran out (a planned stop), False for
            Ctrl-C.
    """

    def __init__(self, epoch: int, step: int, time_limit: bool = False) -> None:
        super().__init__(f"stopped at epoch {epoch} step {step}")
        self.epoch, self.step, self.time_limit = epoch, step, time_limit


class StopRequest:
    """SIGINT handler for the training loop: the first Ctrl-C asks to stop at the next step
    boundary (so ``last.pth`` resumes exactly); a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopRequest:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: Ctrl-C is not ours to handle
            self._previous = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def ignore_sigint(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C to the trainer (which stops at a step boundary)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
