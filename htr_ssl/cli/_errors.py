"""What a command does with an error: the user's own (one line, exit 2; a stop asked for:
where it saved and 128 + the signal) or a bug (the traceback)."""

from __future__ import annotations

import os
import sys

from htr_ssl.errors import FixableError, StoppedBySignal


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors a user causes and can fix, and stops a user asked for: shown as one clear line,
    not a traceback."""
    from htr_ssl.data.alphabet import OutOfAlphabetError
    from htr_ssl.data.image import ImageReadError
    from htr_ssl.data.readers.common import DatasetFormatError, DatasetNotFoundError
    from htr_ssl.inference.model_file import CheckpointError
    from htr_ssl.inference.runtime import OutputDirError

    errors: tuple[type[BaseException], ...] = (
        DatasetNotFoundError, DatasetFormatError, OutOfAlphabetError, ImageReadError,
        CheckpointError, OutputDirError, KeyboardInterrupt, FileExistsError, FileNotFoundError,
        ValueError, FixableError, StoppedBySignal)  # the last two: training's, by their bases
    return errors


def fail(err: BaseException) -> None:
    """Print a user error and exit with status 2 (HTR_SSL_DEBUG=1 shows the traceback).

    A run stopped by SIGTERM / Ctrl-C (a StoppedBySignal, e.g. training's TrainingInterrupted)
    prints where it saved and how to continue, and exits with 128 + the signal (143 / 130), as
    shells and schedulers expect.
    """
    if os.environ.get("HTR_SSL_DEBUG"):
        raise err
    if isinstance(err, StoppedBySignal):
        print(f"stopped: {err}", file=sys.stderr)
        raise SystemExit(err.exit_code)
    if isinstance(err, KeyboardInterrupt):
        print("interrupted (Ctrl-C)", file=sys.stderr)
        raise SystemExit(130)
    print(f"error: {err}", file=sys.stderr)
    raise SystemExit(2)
