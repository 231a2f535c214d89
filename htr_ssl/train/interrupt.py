"""Graceful stops: SIGTERM (schedulers, `kill`) and Ctrl-C end the current step, save, exit.

A cluster that preempts a job sends SIGTERM and, some seconds later, SIGKILL. Handling the
first one lets the run write last.pt at the step it reached instead of losing everything since
the last periodic checkpoint.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from htr_ssl.errors import StoppedBySignal

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingInterrupted(StoppedBySignal):
    """Training stopped on a signal after saving; the exit status is 128 + the signal number."""

    def __init__(self, signum: int, step: int, path: Path) -> None:
        self.step, self.path = step, Path(path)
        super().__init__(
            signum,
            f"{signal.Signals(signum).name} received: stopped at step {step} and saved {path}. "
            f"Continue this run with the same command plus resume={path} (or resume=auto with "
            "the same run directory).")


class StopSignals:
    """While active, the first SIGTERM / SIGINT only records itself in `signum`, so the loop can
    finish the step and save; a second Ctrl-C raises KeyboardInterrupt at once.

    Handlers can only be installed from the main thread; elsewhere this does nothing. The
    previous handlers come back on exit.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signum is None:
            self.signum = signum

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
