"""Run folders belong to one run: a lock while it writes, and no resume under other options.

Two commands given the same folder would mix their configs, checkpoints and logs; a run
resumed with other data, model or schedule would overwrite results that no longer match the
options recorded next to them. Both are refused before anything is written.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from htr_ssl.train import checkpoint
from htr_ssl.train.checkpoint import CheckpointError, OutputDirError

log = logging.getLogger(__name__)

LOCK = ".lock"
# Options that change neither what is trained on nor how: a resumed run may differ in these.
HARMLESS = frozenset({
    "data.num_workers", "data.eval_batch_size", "data.crop_cache", "data.strict_images",
    "trainer.progress", "trainer.device", "trainer.log_every", "trainer.checkpoint_every",
    "trainer.compile", "trainer.reuse_memory",
})

_held: dict[Path, tuple[int, int]] = {}  # folder -> (lock file descriptor, nesting depth)


class RunDirBusy(OutputDirError):
    """Another process holds the run folder's lock."""


@contextmanager
def locked(run_dir: Path, wait: bool = False) -> Iterator[None]:
    """Hold `run_dir/.lock` exclusively for as long as the run writes to the folder.

    Without `wait`, a folder locked by another process is a RunDirBusy error at once. The lock
    is re-entrant within a process (a sweep cell holds it around the pretraining it runs) and
    goes with the process, so a killed run never leaves the folder locked.
    """
    key = Path(run_dir).resolve()
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
        try:
            yield
        finally:
            _held[key] = (fd, _held[key][1] - 1)
        return
    try:
        key.mkdir(parents=True, exist_ok=True)
        fd = os.open(key / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise OutputDirError(f"cannot write to the run directory {run_dir} "
                             f"({err.strerror or err}). Fix: choose a writable folder "
                             "(run_dir=... or hydra.run.dir=...)") from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        raise RunDirBusy(
            f"{run_dir} is in use by another htr-ssl run (process {holder or '?'}); two runs "
            "in one folder would mix their checkpoints and logs. Fix: wait for it to finish, "
            "or choose another run directory (hydra.run.dir=...)") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    _held[key] = (fd, 1)
    try:
        yield
    finally:
        del _held[key]
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def flatten(options: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"data": {"augment": {"p": 0.5}}} -> {"data.augment.p": 0.5}; tuples become lists."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return out


def changed_options(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """`option old -> new` for every option (but HARMLESS ones) that differs."""
    old, new = flatten(saved), flatten(current)

    def shown(options: dict[str, Any], key: str) -> str:
        return repr(options[key]) if key in options else "unset"

    return [f"{k} {shown(old, k)} -> {shown(new, k)}" for k in sorted(old.keys() | new.keys())
            if k not in HARMLESS and old.get(k) != new.get(k)]


def check_resume_options(saved: Mapping[str, Any] | None, current: Mapping[str, Any],
                         resume: Path, fork: bool) -> list[str]:
    """Refuse to continue `resume` under options other than the ones it was trained with
    (CheckpointError naming them), unless the run forks into a new folder. Returns the changes
    (empty for a checkpoint that predates the options record)."""
    changes = changed_options(saved, current) if saved is not None else []
    if changes and not fork:
        raise CheckpointError(
            f"resume={resume}: options differ from the run that wrote it: "
            f"{'; '.join(changes[:8])}{' (...)' if len(changes) > 8 else ''}. Continuing would "
            "train on other data, model or schedule than its folder records. Fix: resume with "
            "the run's own options, or add fork=true (and a new hydra.run.dir) to continue "
            "from that checkpoint in a new folder with the new options")
    return changes


def check_folder(run_dir: Path, resume: str | Path | None, main: bool = True) -> None:
    """The checks a run folder passes before a run writes to it (made by `begin`, before any
    data is read, and again by `fit` for callers that train without `begin`): a new run never
    replaces another's checkpoint (on every process, so all of them stop), and the folder is
    writable (checked, and created, by the main process)."""
    last = Path(run_dir) / "last.pt"
    if resume is None and last.exists():
        raise FileExistsError(f"{run_dir} already holds a checkpoint ({last}); continue it "
                              f"with resume={last} (or resume=auto) or choose a new run "
                              "directory")
    if main:
        checkpoint.ensure_writable(Path(run_dir))


HINTS = {
    "recognizer": "htr-ssl-train resume= continues a recognizer run. To fine-tune this encoder "
                  "start a new run with finetune.init_from={path}; to continue its pretraining "
                  "use htr-ssl-pretrain resume={path}",
    "pretext": "htr-ssl-pretrain resume= continues a pretraining run; to continue training this "
               "recognizer use htr-ssl-train resume={path}",
}


def begin(run_dir: Path, resume: str | Path | None, kind: str, options: Mapping[str, Any],
          fork: bool = False, main: bool = True
          ) -> tuple[Path | str | None, dict[str, Any] | None]:
    """Decide, before any data is read, what a run in `run_dir` does: (checkpoint to continue
    and its content), (None, None) to start fresh, or (FINISHED, None) to skip a finished run.

    Refuses a folder that finished work would be lost in, a checkpoint of another stage
    (`kind`), and a resume under changed options (unless `fork`).
    """
    resume = checkpoint.resolve_resume(run_dir, resume)
    if resume == checkpoint.FINISHED:
        return resume, None
    check_folder(run_dir, resume, main)
    if resume is None:
        return None, None
    ckpt = checkpoint.load(resume)
    checkpoint.require_kind(ckpt, resume, kind, HINTS[kind].format(path=resume))
    changes = check_resume_options(ckpt.get("options"), options, Path(resume), fork)
    if changes:
        log.warning("fork of %s into %s with changed options: %s", resume, run_dir,
                    "; ".join(changes))
    return resume, ckpt
