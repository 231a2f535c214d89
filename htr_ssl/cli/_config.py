"""The one way into a console command (`command`), and DictConfig -> plain dataclasses. The
only place (with the entry points) that sees Hydra."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from htr_ssl.cli._errors import fail, user_errors
from htr_ssl.cli._paths import CONFIG_DIR
from htr_ssl.config import from_dict

T = TypeVar("T")
Task = Callable[[DictConfig], Any]


def command(config: str, prog: str, positional: str | None = None) -> Callable[[Task], Callable]:
    """`@hydra.main` of configs/<config>.yaml for the console command `prog`, and everything
    each command needs around it, in one place:

    - before Hydra: `--help` (the command's options with its config's comments), `--version`,
      `positional` (`prog X` means `prog positional=X`), and a check of the options given,
      so a typo, an unknown group choice or a missing required option is one line (exit 2)
      and no run folder is made (htr_ssl.cli._checks);
    - around the task: quiet library logging, user errors as one line (exit 2, `fail`), and a
      run folder that a failed command made but wrote nothing of its own into is removed.
    """

    def wrap(task: Task) -> Callable:
        @functools.wraps(task)
        def guarded(cfg: DictConfig) -> Any:
            quiet_logging()
            try:
                return task(cfg)
            except user_errors() as err:
                drop_empty_run_folder()
                fail(err)
            except BaseException:
                drop_empty_run_folder()
                raise

        hydra_main = hydra.main(version_base="1.3", config_path=CONFIG_DIR,
                                config_name=config)(guarded)

        @functools.wraps(task)
        def main(*cfg: Any) -> Any:
            if cfg:  # called with a config, as a @hydra.main function may be
                return hydra_main(*cfg)
            from htr_ssl.cli._checks import command_line

            sys.argv = [sys.argv[0], *command_line(config, prog, sys.argv[1:], positional)]
            return hydra_main()

        return main

    return wrap


def drop_empty_run_folder() -> None:
    """Remove the run folder Hydra made for this run when it holds only Hydra's own record
    (.hydra/, the log file) and the run lock: a command that failed before doing any work
    leaves nothing behind. A folder that existed before the run, or that holds anything the
    run wrote, is kept."""
    import shutil

    from htr_ssl.cli import _callbacks

    made = _callbacks.made_run_folder()
    if made is None:
        return
    files = [p for p in made.rglob("*") if not p.is_dir()]
    if all(".hydra" in p.relative_to(made).parts or p.suffix == ".log" or p.name == ".lock"
           for p in files):
        shutil.rmtree(made, ignore_errors=True)


def to_dataclass(cls: type[T], node: DictConfig | dict[str, Any], prefix: str | None = None) -> T:
    """Build `cls` from a config node (resolved), with `htr_ssl.config.from_dict`'s checks:
    unknown options and values of the wrong kind are errors naming the option by its full
    key (`data.labels=abc`)."""
    if prefix is None:
        prefix = f"{node._get_full_key(None)}." if isinstance(node, DictConfig) \
            and node._get_full_key(None) else ""
    raw = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    return from_dict(cls, raw, prefix)  # type: ignore[arg-type]


def resume_and_run_dir(cfg: DictConfig) -> tuple[Path | str | None, Path]:
    """`resume=` as the training functions take it (a checkpoint path, "auto" or None) and the
    run folder: a resumed checkpoint keeps writing into its own folder, or with `fork=true`
    into this run's new one; "auto" continues `run_dir`'s last.pt, or skips the run if it
    finished."""
    fork = bool(cfg.get("fork", False))
    if fork and (not cfg.resume or str(cfg.resume) == "auto"):
        raise ValueError(f"fork=true needs resume=<checkpoint> (got resume={cfg.resume}): it "
                         "continues that checkpoint in a new folder (hydra.run.dir=...)")
    if str(cfg.resume) == "auto":
        return "auto", Path(cfg.run_dir)
    if cfg.resume:
        return Path(cfg.resume), Path(cfg.run_dir) if fork else Path(cfg.resume).parent
    return None, Path(cfg.run_dir)


def hydra_record(cfg: DictConfig) -> Callable[[], None]:
    """A function that writes Hydra's `.hydra/` record (config.yaml, hydra.yaml,
    overrides.yaml) of this run into Hydra's output folder.

    The training commands set `hydra.output_subdir: null` and call it once their run is
    accepted: Hydra itself would write it first, over the record of a finished run, of a run
    in progress, or of one that a resume with other options is then refused to continue.
    """
    def write() -> None:
        if not HydraConfig.initialized():
            return
        hydra = HydraConfig.instance().cfg
        folder = Path(hydra.hydra.runtime.output_dir) / ".hydra"
        folder.mkdir(parents=True, exist_ok=True)
        for name, node in (("config.yaml", cfg), ("hydra.yaml", hydra),
                           ("overrides.yaml", hydra.hydra.overrides.task)):
            (folder / name).write_text(OmegaConf.to_yaml(node), encoding="utf-8")

    return write


def resolved(cfg: DictConfig) -> dict[str, Any]:
    """The fully resolved config as plain data, for checkpoints and logs."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def quiet_logging() -> None:
    """Keep the log about the run: libraries' chatter off, and under torchrun only rank 0's
    info lines (every rank shares Hydra's log file, so other ranks keep warnings and errors)."""
    for name in ("matplotlib", "PIL", "h5py"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if int(os.environ.get("RANK", "0")) > 0:
        logging.getLogger().setLevel(logging.WARNING)
