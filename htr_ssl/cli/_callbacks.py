"""Hydra callbacks of every command (configured under `hydra.callbacks` in configs/*.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class CheckOutputDir(Callback):
    """Check that Hydra's output folder can be written before Hydra creates it, so that an
    unwritable `hydra.run.dir` is a one-line error instead of Hydra's PermissionError."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check(config.hydra.sweep.dir, "hydra.sweep.dir")


def _check(folder: str, option: str) -> None:
    from htr_ssl.cli._config import fail
    from htr_ssl.train.checkpoint import OutputDirError, ensure_writable

    try:
        ensure_writable(Path(folder), f"{option}=...", "output folder")
    except OutputDirError as err:
        fail(err)
