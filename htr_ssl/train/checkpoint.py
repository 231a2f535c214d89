"""Checkpoints: everything needed to resume a run exactly, written atomically.

A checkpoint's model state keeps the encoder under the `encoder.` prefix whatever the stage
(pretext or recognizer), so any checkpoint can seed a new run's encoder.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

# Reading model files and checking output folders are the inference side's job (it never imports
# training code); the training code finds these names here too.
from htr_ssl.inference.model_file import (
    LEGACY_NUMPY,
    CheckpointError,
    load,
    load_encoder,
    load_weights,
    weight_mismatch,
)
from htr_ssl.inference.runtime import DONE, OutputDirError, ensure_writable

__all__ = ["DONE", "LEGACY_NUMPY", "CheckpointError", "OutputDirError", "ensure_writable", "load",
           "load_encoder", "load_weights", "weight_mismatch"]

log = logging.getLogger(__name__)


def rng_state() -> dict[str, Any]:
    """Every generator's state as tensors and plain Python data, so that the checkpoint loads
    with `torch.load(weights_only=True)` (numpy's own state holds an ndarray)."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, cached),
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore `rng_state()`; also takes the numpy ndarray state older checkpoints hold."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, key, *rest = state["numpy"]
    if isinstance(key, torch.Tensor):
        key = key.numpy().astype(np.uint32)
    np.random.set_state((kind, key, *rest))
    random.setstate(state["python"])


def save(state: dict[str, Any], path: Path) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename: a crash or
    SIGKILL mid-write never leaves a truncated file where a good checkpoint was."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise CheckpointError(f"cannot write checkpoint {path}: {err}. Fix: free disk space or "
                              "choose a writable run directory") from err
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as err:
        raise CheckpointError(f"cannot write checkpoint {path}: {err}. Fix: free disk space or "
                              "choose a writable run directory; the previous checkpoint there "
                              "is intact") from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def clean_partial(run_dir: Path) -> None:
    """Remove temporary files of checkpoint writes that a killed run left behind."""
    for tmp in Path(run_dir).glob(".*.pt.*.tmp"):
        log.info("removing %s, a checkpoint write interrupted by a crash", tmp)
        tmp.unlink(missing_ok=True)


# run folders -------------------------------------------------------------------------------

FINISHED = "finished"


def mark_done(run_dir: Path, info: dict[str, Any]) -> None:
    """Write the `done` marker: the run, and whatever it does after training, completed."""
    path = Path(run_dir) / DONE
    tmp = path.with_name(f".{DONE}.tmp")
    tmp.write_text(json.dumps(info, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def resolve_resume(run_dir: Path, resume: str | Path | None) -> Path | str | None:
    """What a (re)started run does: the checkpoint to continue, None to start fresh, or
    FINISHED (only for `resume="auto"`) when `run_dir` holds a completed run.

    `auto` continues `run_dir/last.pt` when there is one and the run is not marked done, so
    starting a sweep again finishes what was interrupted and skips what completed. A run that
    starts (or forks a checkpoint) into `run_dir` refuses a folder holding a `done` marker or
    any checkpoint (FileExistsError): finished work is never overwritten.
    """
    run_dir = Path(run_dir)
    if resume is None or str(resume) in ("", "none", "null"):
        refuse_used(run_dir)
        return None
    if str(resume) != "auto":
        path = Path(resume)
        if not path.is_file():
            raise CheckpointError(f"resume={resume}: no such checkpoint; give a last.pt or "
                                  "best.pt of the run to continue, or resume=auto")
        if path.parent.resolve() != run_dir.resolve():  # continued in another folder
            refuse_used(run_dir)
        return path
    if (run_dir / DONE).is_file():
        return FINISHED
    last = run_dir / "last.pt"
    if last.is_file():
        return last
    refuse_used(run_dir)  # e.g. a best.pt without last.pt: a fresh start would overwrite it
    return None


def refuse_used(run_dir: Path) -> None:
    """FileExistsError when `run_dir` holds a finished run or any checkpoint."""
    run_dir = Path(run_dir)
    if (run_dir / DONE).is_file():
        raise FileExistsError(
            f"{run_dir} holds a finished run (its '{DONE}' marker is there); a new run would "
            "overwrite its checkpoints and metrics. Fix: choose a new run directory "
            "(hydra.run.dir=...), or use resume=auto, which skips finished runs")
    found = sorted(run_dir.glob("*.pt"))
    if not found:
        return
    last = run_dir / "last.pt"
    if last in found:
        raise FileExistsError(f"{run_dir} already holds a checkpoint ({last}); continue it "
                              f"with resume={last} (or resume=auto), or choose a new run "
                              "directory")
    raise FileExistsError(
        f"{run_dir} already holds a checkpoint ({', '.join(p.name for p in found)}) but no "
        f"last.pt to continue; a new run would overwrite it. Fix: choose a new run directory "
        f"(hydra.run.dir=...), and start from its weights with finetune.init_from={found[0]} "
        "if you want them")


def require_kind(ckpt: dict[str, Any], path: Path | str, kind: str, hint: str) -> None:
    """CheckpointError when `ckpt` was written by another stage than `kind` (a pretraining
    checkpoint given where a recognizer run is continued, or the reverse)."""
    found = ckpt.get("kind")
    if found is not None and found != kind:
        raise CheckpointError(f"{path} is a {found!r} checkpoint, not a {kind!r} one. "
                              f"Fix: {hint}")
