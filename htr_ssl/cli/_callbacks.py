"""Hydra callbacks of every command (configured under `hydra.callbacks` in configs/*.yaml)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

_made: tuple[Path, Path] | None = None  # (run folder, the top-most of it that Hydra makes)


class CheckOutputDir(Callback):
    """Check that Hydra's output folder can be written before Hydra creates it, so that an
    unwritable `hydra.run.dir` is a one-line error instead of Hydra's PermissionError; and
    note which part of the run folder does not exist yet, so that a command that fails
    before doing any work can remove it (`made_run_folder`)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check(config, "run", note=True)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check(config, "sweep")


def made_run_folder() -> Path | None:
    """The top-most folder Hydra made for this run's output folder (None when the folder
    existed before, or in a sweep)."""
    from hydra.core.hydra_config import HydraConfig

    if _made is None or not HydraConfig.initialized():
        return None
    folder, top = _made
    if Path(os.path.abspath(HydraConfig.get().runtime.output_dir)) != folder:
        return None
    return top


def _check(config: DictConfig, mode: str, note: bool = False) -> None:
    global _made
    from hydra.core.hydra_config import HydraConfig

    # The folder may name `${hydra:runtime.choices...}` (htr-ssl-experiment does), which
    # resolves only once Hydra's own config is registered; Hydra does the same a moment later.
    HydraConfig.instance().set_config(config)
    folder = Path(os.path.abspath(config.hydra[mode].dir))
    if note:  # before the check, which makes the folder
        new = [p for p in (folder, *folder.parents) if not p.exists()]
        _made = (folder, new[-1]) if new else None
    _check_folder(config.hydra[mode].dir, f"hydra.{mode}.dir")


def _check_folder(folder: str, option: str) -> None:
    from htr_ssl.cli._errors import fail
    from htr_ssl.inference.runtime import OutputDirError, ensure_writable

    try:
        ensure_writable(Path(folder), f"{option}=...", "output folder")
    except OutputDirError as err:
        fail(err)
