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
        _check(config, "run")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check(config, "sweep")


def _check(config: DictConfig, mode: str) -> None:
    from hydra.core.hydra_config import HydraConfig

    # The folder may name `${hydra:runtime.choices...}` (htr-ssl-experiment does), which
    # resolves only once Hydra's own config is registered; Hydra does the same a moment later.
    HydraConfig.instance().set_config(config)
    _check_folder(config.hydra[mode].dir, f"hydra.{mode}.dir")


def _check_folder(folder: str, option: str) -> None:
    from htr_ssl.cli._config import fail
    from htr_ssl.train.checkpoint import OutputDirError, ensure_writable

    try:
        ensure_writable(Path(folder), f"{option}=...", "output folder")
    except OutputDirError as err:
        fail(err)
