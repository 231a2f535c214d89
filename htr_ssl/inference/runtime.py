"""Where and how a model runs, for reading and training alike: the device, bf16 autocast, and
an output folder that can be written. Inference imports this, never `htr_ssl.train`."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import torch

PRECISIONS = ("bf16", "fp32")
DONE = "done"  # the marker a finished run leaves in its folder


def check_precision(precision: str, key: str = "precision") -> None:
    """A clear error for a precision other than bf16 / fp32 (`key` names the config option)."""
    if precision not in PRECISIONS:
        raise ValueError(f"{key}={precision!r}; use bf16 or fp32")


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CPU and CUDA (about 2-3x faster convolutions and matmuls); losses and
    log-softmax cast their inputs to fp32 themselves. fp32: no autocast."""
    check_precision(precision)
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` picks this process's GPU when there is one, else the CPU."""
    if name == "auto":
        name = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"trainer.device={name} but no CUDA device is visible; use "
                           "trainer.device=cpu or auto")
    return torch.device(name)


class OutputDirError(RuntimeError):
    """The run directory cannot be created or written."""


def ensure_writable(run_dir: Path, option: str = "run_dir=... or hydra.run.dir=...",
                    what: str = "run directory") -> None:
    """Fail before any training (or inference) if files could not be written to `run_dir`;
    `option` is what the user sets to choose another folder."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=run_dir):
            pass
    except OSError as err:
        raise OutputDirError(
            f"cannot write to the {what} {run_dir} ({err.strerror or err}). Fix: "
            f"choose a writable folder ({option})") from err
