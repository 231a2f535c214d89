"""Exception bases the commands recognize without importing the code that raises them: reading
a model never loads training, yet a training stop must still end as one line and an exit code."""

from __future__ import annotations


class FixableError(Exception):
    """An error the user can fix (the message says how): a command prints it as one line."""


class StoppedBySignal(Exception):
    """A run stopped on a signal the user (or a scheduler) sent, after saving its state; the
    command exits with 128 + the signal number (143 for SIGTERM, 130 for Ctrl-C)."""

    def __init__(self, signum: int, message: str) -> None:
        self.signum = signum
        super().__init__(message)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
